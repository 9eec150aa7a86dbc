//! The TCP listener every server uses: connections whose unparseable requests are answered
//! in JSON, and the peer's address for handlers.

use std::io;
use std::net::SocketAddr;

use axum::extract::connect_info::Connected;
use axum::serve::IncomingStream;
use tokio::net::{TcpListener, TcpStream};

use super::client_errors::{ErrorShape, ParseErrorsAsJson};

pub struct Listener {
    inner: TcpListener,
    shape: ErrorShape,
}

impl Listener {
    pub fn new(inner: TcpListener, shape: ErrorShape) -> Listener {
        Listener { inner, shape }
    }
}

impl axum::serve::Listener for Listener {
    type Io = ParseErrorsAsJson<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "setting TCP_NODELAY failed");
        }
        (ParseErrorsAsJson::new(stream, self.shape), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// The address a connection comes from (`ConnectInfo<PeerAddr>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

impl Connected<IncomingStream<'_, Listener>> for PeerAddr {
    fn connect_info(stream: IncomingStream<'_, Listener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}
