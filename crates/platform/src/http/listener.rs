//! The accept loop every server uses: a deadline for a request's headers, a cap on the
//! connections one address holds open, unparseable requests answered in JSON, the peer's
//! address for handlers, and a shutdown that lets in-flight requests finish (for a while).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::client_errors::{ErrorShape, ParseErrorsAsJson};
use crate::ErrorCode;

/// The address a connection comes from (`ConnectInfo<PeerAddr>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// What one connection may hold.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// How long a client has to send a request's headers (slow senders hold a connection
    /// and a task for nothing).
    pub header_read_timeout: Duration,
    /// Connections open at once from one peer address (IPv6 by its /64); `None`: no cap.
    pub per_peer: Option<usize>,
    /// How long shutdown waits for in-flight requests before dropping them.
    pub drain: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(10),
            per_peer: None,
            drain: Duration::from_secs(10),
        }
    }
}

/// Serves `router` on `listener` until `shutdown`. Handlers see the peer's address as
/// `ConnectInfo<PeerAddr>`; requests hyper cannot parse are answered in `shape`.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shape: ErrorShape,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(30));
    let graceful = GracefulShutdown::new();
    let open = Arc::new(OpenConnections::default());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: let connections close first.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        let Some(slot) = open.admit(peer.ip(), limits.per_peer) else {
            metrics::counter!("http_connections_refused_total").increment(1);
            tokio::spawn(refuse(stream, shape));
            continue;
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "setting TCP_NODELAY failed");
        }
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(PeerAddr(peer)));
            router.clone().oneshot(request)
        });
        let io = TokioIo::new(ParseErrorsAsJson::new(stream, shape));
        let connection = builder
            .serve_connection_with_upgrades(io, service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::trace!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after {:?}; closing", limits.drain);
    }
    Ok(())
}

/// A 429 for a peer over its connection cap, written without reading its request.
async fn refuse(mut stream: tokio::net::TcpStream, shape: ErrorShape) {
    let body = shape.body(
        ErrorCode::RateLimited,
        "too many open connections from this address",
    );
    let status = StatusCode::TOO_MANY_REQUESTS;
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         retry-after: 1\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default(),
        body.len()
    );
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&body).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// Connections open per peer (IPv4, or IPv6 /64).
#[derive(Default)]
struct OpenConnections {
    counts: Mutex<HashMap<IpAddr, usize>>,
}

impl OpenConnections {
    fn admit(self: &Arc<Self>, peer: IpAddr, cap: Option<usize>) -> Option<ConnectionSlot> {
        let Some(cap) = cap else {
            return Some(ConnectionSlot { open: None });
        };
        let peer = per_subscriber(peer);
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let count = counts.entry(peer).or_default();
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(ConnectionSlot {
            open: Some((self.clone(), peer)),
        })
    }
}

/// Held while a connection is open; gives its place back when dropped.
struct ConnectionSlot {
    open: Option<(Arc<OpenConnections>, IpAddr)>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let Some((open, peer)) = self.open.take() else {
            return;
        };
        let mut counts = open.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = counts.get_mut(&peer) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&peer);
            }
        }
    }
}

/// An IPv4 address (IPv4-mapped IPv6 ones included), or an IPv6 address's /64: the block
/// one subscriber usually holds and can pick any address of.
pub fn per_subscriber(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::V6(octets.into())
            }
        },
        v4 => v4,
    }
}
