//! GraphQL over WebSocket, by the book of `graphql-transport-ws` (the protocol of the npm
//! `graphql-ws` client, GraphiQL, Apollo and urql), and the older `graphql-ws` protocol of
//! `subscriptions-transport-ws`, which differs only in its message names.
//!
//! A connection must send `connection_init` within the init timeout (else 4408), once
//! (4429); an invalid or expired token there is refused (4403), and the connection closes
//! with 4403 when its token expires. `subscribe` before the acknowledgement is 4401, a
//! second one with a running id 4409, anything that is not a protocol message 4400, a
//! message over the size limit 1009. A request refused before it runs (syntax, validation,
//! limits) is answered with `error`; its results with `next`, then `complete`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_graphql::{Request, Response, ServerError};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::stream::{BoxStream, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_stream::StreamMap;

use super::Edge;
use super::budget::Spender;
use super::client::ClientAddr;
use crate::context::RequestAuth;
use crate::operations::Operations;

/// Server pings (keepalives) on an idle connection.
const KEEPALIVE: Duration = Duration::from_secs(30);

/// The two subprotocols, told apart by the `Sec-WebSocket-Protocol` the client chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `graphql-transport-ws`
    TransportWs,
    /// `graphql-ws` (subscriptions-transport-ws)
    Legacy,
}

impl Protocol {
    pub const NAMES: [&'static str; 2] = ["graphql-transport-ws", "graphql-ws"];

    /// The protocol the upgrade agreed on; `graphql-transport-ws` when the client named none.
    pub fn agreed(name: Option<&str>) -> Protocol {
        match name {
            Some("graphql-ws") => Protocol::Legacy,
            _ => Protocol::TransportWs,
        }
    }

    fn next(self) -> &'static str {
        match self {
            Protocol::TransportWs => "next",
            Protocol::Legacy => "data",
        }
    }

    fn keepalive(self) -> Value {
        match self {
            Protocol::TransportWs => json!({ "type": "ping" }),
            Protocol::Legacy => json!({ "type": "ka" }),
        }
    }
}

/// Close codes of `graphql-transport-ws` (and RFC 6455's for a message too big).
mod close {
    pub const NORMAL: u16 = 1000;
    pub const TOO_BIG: u16 = 1009;
    pub const BAD_REQUEST: u16 = 4400;
    pub const UNAUTHORIZED: u16 = 4401;
    pub const FORBIDDEN: u16 = 4403;
    pub const INIT_TIMEOUT: u16 = 4408;
    pub const SUBSCRIBER_EXISTS: u16 = 4409;
    pub const TOO_MANY_INITS: u16 = 4429;
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<Value>,
    },
    Ping {},
    Pong {},
    #[serde(alias = "start")]
    Subscribe {
        id: String,
        payload: Box<Request>,
    },
    #[serde(alias = "stop")]
    Complete {
        id: String,
    },
    ConnectionTerminate {},
}

/// Open sockets per client, so one client cannot hold every connection.
pub struct OpenSockets {
    per_client: u32,
    counts: Mutex<HashMap<IpAddr, u32>>,
}

impl OpenSockets {
    pub fn new(per_client: u32) -> OpenSockets {
        OpenSockets {
            per_client,
            counts: Mutex::default(),
        }
    }

    /// A slot for one more socket of `client`, or None when it holds its limit.
    pub fn open(self: &Arc<Self>, client: ClientAddr) -> Option<SocketSlot> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let count = counts.entry(client.0).or_default();
        if self.per_client > 0 && *count >= self.per_client {
            return None;
        }
        *count += 1;
        metrics::gauge!("gateway_websockets_open").increment(1.0);
        Some(SocketSlot {
            sockets: self.clone(),
            client,
        })
    }
}

/// An open socket's place in [`OpenSockets`], given back when dropped.
pub struct SocketSlot {
    sockets: Arc<OpenSockets>,
    client: ClientAddr,
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        metrics::gauge!("gateway_websockets_open").decrement(1.0);
        let mut counts = self
            .sockets
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(count) = counts.get_mut(&self.client.0) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.client.0);
            }
        }
    }
}

/// What one connection needs.
pub struct Connection {
    pub operations: Operations,
    pub edge: Arc<Edge>,
    pub protocol: Protocol,
    pub client: ClientAddr,
    /// The token of the upgrade request's `Authorization` header, if any.
    pub header_token: Option<String>,
    pub slot: SocketSlot,
}

/// Why a connection ends.
struct Closing(u16, String);

impl Connection {
    pub async fn serve(self, mut socket: WebSocket) {
        let ending = self.run(&mut socket).await;
        if let Err(Closing(code, mut reason)) = ending {
            // A close frame carries at most 123 bytes of reason.
            while reason.len() > 123 {
                reason.pop();
            }
            let frame = CloseFrame {
                code,
                reason: reason.into(),
            };
            let _ = socket.send(Message::Close(Some(frame))).await;
        }
        drop(self.slot);
    }

    async fn run(&self, socket: &mut WebSocket) -> Result<(), Closing> {
        let init_deadline = Instant::now() + self.edge.socket_init_timeout;
        let mut auth: Option<RequestAuth> = None;
        let mut expires: Option<Instant> = None;
        let mut running: StreamMap<String, BoxStream<'static, Option<Response>>> = StreamMap::new();
        let mut keepalive = tokio::time::interval_at(Instant::now() + KEEPALIVE, KEEPALIVE);
        loop {
            tokio::select! {
                incoming = socket.recv() => {
                    let text = match incoming {
                        None | Some(Ok(Message::Close(_))) => return Ok(()),
                        Some(Err(e)) => return Err(read_failure(&e, self.edge.max_message)),
                        Some(Ok(Message::Text(text))) => text.to_string(),
                        Some(Ok(Message::Binary(bytes))) => String::from_utf8(bytes.to_vec())
                            .map_err(|_| Closing(close::BAD_REQUEST, "messages are JSON text".into()))?,
                        Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    };
                    let message: ClientMessage = serde_json::from_str(&text).map_err(|e| {
                        Closing(close::BAD_REQUEST, format!("invalid message: {e}"))
                    })?;
                    match message {
                        ClientMessage::ConnectionInit { payload } => {
                            if auth.is_some() {
                                return Err(Closing(close::TOO_MANY_INITS, "Too many initialisation requests".into()));
                            }
                            let token = payload
                                .as_ref()
                                .and_then(init_token)
                                .or_else(|| self.header_token.clone());
                            let verified = self.edge.identity.authenticate(token.as_deref()).await;
                            if let Some(refusal) = verified.refusal() {
                                return Err(Closing(close::FORBIDDEN, format!("Forbidden: {refusal}")));
                            }
                            expires = verified.expires_in().map(|left| Instant::now() + left);
                            auth = Some(verified);
                            send(socket, json!({ "type": "connection_ack" })).await?;
                        }
                        ClientMessage::Ping {} => {
                            if self.protocol == Protocol::TransportWs {
                                send(socket, json!({ "type": "pong" })).await?;
                            }
                        }
                        ClientMessage::Pong {} => {}
                        ClientMessage::Subscribe { id, payload } => {
                            let Some(auth) = &auth else {
                                return Err(Closing(close::UNAUTHORIZED, "Unauthorized".into()));
                            };
                            if running.contains_key(&id) {
                                return Err(Closing(close::SUBSCRIBER_EXISTS, format!("Subscriber for {id} already exists")));
                            }
                            if let Err(refused) = self.spend(auth) {
                                let errors = vec![refused];
                                send(socket, json!({ "id": id, "type": "error", "payload": errors })).await?;
                                continue;
                            }
                            let request = (*payload).data(auth.clone()).data(self.client);
                            let results = self
                                .operations
                                .execute_stream(request)
                                .map(Some)
                                .chain(futures::stream::once(async { None }))
                                .boxed();
                            running.insert(id, results);
                        }
                        ClientMessage::Complete { id } => {
                            running.remove(&id);
                        }
                        ClientMessage::ConnectionTerminate {} => {
                            return Err(Closing(close::NORMAL, "terminated".into()));
                        }
                    }
                }
                Some((id, result)) = running.next(), if !running.is_empty() => {
                    match result {
                        Some(response) if is_refusal(&response) => {
                            running.remove(&id);
                            let errors = serde_json::to_value(&response.errors).unwrap_or_default();
                            send(socket, json!({ "id": id, "type": "error", "payload": errors })).await?;
                        }
                        Some(response) => {
                            let payload = serde_json::to_value(&response).unwrap_or_default();
                            send(socket, json!({ "id": id, "type": self.protocol.next(), "payload": payload })).await?;
                        }
                        None => send(socket, json!({ "id": id, "type": "complete" })).await?,
                    }
                }
                _ = tokio::time::sleep_until(init_deadline), if auth.is_none() => {
                    return Err(Closing(close::INIT_TIMEOUT, "Connection initialisation timeout".into()));
                }
                _ = sleep_until_some(expires), if expires.is_some() => {
                    return Err(Closing(close::FORBIDDEN, "Forbidden: the token expired; connect again with a new one".into()));
                }
                _ = keepalive.tick() => send(socket, self.protocol.keepalive()).await?,
            }
        }
    }

    /// A subscription spends the client's budget, and its user's when signed in.
    fn spend(&self, auth: &RequestAuth) -> Result<(), Value> {
        let mut spenders = vec![Spender::client(self.client)];
        spenders.extend(auth.user_id().map(Spender::User));
        self.edge.spend(&spenders, 1).map_err(|wait| {
            serde_json::to_value(super::rate_limited_error(wait)).unwrap_or_default()
        })
    }
}

/// A request refused before it ran: errors only, none at a field.
fn is_refusal(response: &Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response
            .errors
            .iter()
            .all(|e: &ServerError| e.path.is_empty())
}

/// The token of an init payload: `Authorization` (either case; `Bearer ` optional) or
/// `token`.
fn init_token(payload: &Value) -> Option<String> {
    ["Authorization", "authorization", "token"]
        .iter()
        .find_map(|key| payload.get(key)?.as_str())
        .map(|value| {
            herald_platform::auth::bearer_token(value)
                .unwrap_or(value)
                .trim()
                .to_owned()
        })
        .filter(|token| !token.is_empty())
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn send(socket: &mut WebSocket, message: Value) -> Result<(), Closing> {
    socket
        .send(Message::Text(message.to_string().into()))
        .await
        // The peer is gone: nothing more to say to it.
        .map_err(|_| Closing(close::NORMAL, String::new()))
}

/// A message over the limit is refused with 1009; any other read failure ends quietly.
fn read_failure(error: &axum::Error, max_message: usize) -> Closing {
    let text = error.to_string().to_lowercase();
    if text.contains("too long") || text.contains("too big") || text.contains("capacity") {
        Closing(
            close::TOO_BIG,
            format!("a message is at most {max_message} bytes"),
        )
    } else {
        Closing(close::NORMAL, String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_of_both_protocols_parse() {
        for text in [
            r#"{"type":"connection_init"}"#,
            r#"{"type":"connection_init","payload":{"Authorization":"Bearer x"}}"#,
            r#"{"type":"subscribe","id":"1","payload":{"query":"subscription { unreadCountChanged }"}}"#,
            r#"{"type":"start","id":"1","payload":{"query":"{ __typename }","variables":null}}"#,
            r#"{"type":"complete","id":"1"}"#,
            r#"{"type":"stop","id":"1"}"#,
            r#"{"type":"ping","payload":{"at":1}}"#,
            r#"{"type":"pong"}"#,
            r#"{"type":"connection_terminate"}"#,
        ] {
            assert!(
                serde_json::from_str::<ClientMessage>(text).is_ok(),
                "{text}"
            );
        }
        for text in [
            r#"{"type":"subscribe","payload":{"query":"{ a }"}}"#,
            r#"{"type":"subscribe","id":"1"}"#,
            r#"{"type":"next","id":"1","payload":{}}"#,
            r#"{"id":"1"}"#,
            "[]",
        ] {
            assert!(
                serde_json::from_str::<ClientMessage>(text).is_err(),
                "{text}"
            );
        }
    }

    #[test]
    fn init_tokens_come_in_several_spellings() {
        for payload in [
            json!({ "Authorization": "Bearer abc" }),
            json!({ "authorization": "bearer abc" }),
            json!({ "token": "abc" }),
            json!({ "Authorization": "abc" }),
        ] {
            assert_eq!(init_token(&payload).as_deref(), Some("abc"), "{payload}");
        }
        assert_eq!(init_token(&json!({ "token": "" })), None);
        assert_eq!(init_token(&json!({})), None);
    }
}
