//! Live notifications: GraphQL subscriptions over a WebSocket (`graphql-transport-ws`).

use std::collections::VecDeque;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use herald::ServiceName;
use herald_test_support::{BackendSet, Session, TestApp, backend_tests};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::notifications::unread_count;

backend_tests!(
    every bus: a_subscriber_sees_their_own_notifications_and_unread_count_live,
    a_subscription_without_a_valid_token_is_refused,
    bad_or_too_many_subscriptions_get_a_code
);

/// Generous: the suite runs many Herald instances at once on two cores.
const WAIT: Duration = Duration::from_secs(20);

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One subscription socket, acknowledged.
pub struct Live {
    socket: Socket,
    /// Messages of other subscriptions read while waiting for one's: the order in which
    /// two subscriptions' messages arrive is not fixed, so none is dropped.
    kept: VecDeque<Value>,
}

impl Live {
    /// A socket that has said nothing yet.
    pub async fn open(app: &TestApp) -> Socket {
        let url = format!("{}/graphql", app.gateway.replacen("http", "ws", 1));
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let (socket, _) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the gateway takes WebSockets on /graphql");
        socket
    }

    /// Waits for the server to close `socket`; its close code and reason.
    pub async fn closed(socket: &mut Socket) -> (u16, String) {
        loop {
            let message = tokio::time::timeout(WAIT, socket.next())
                .await
                .expect("the server closes within 20 s");
            match message {
                Some(Ok(Message::Close(Some(frame)))) => {
                    return (frame.code.into(), frame.reason.to_string());
                }
                Some(Ok(Message::Close(None))) | None | Some(Err(_)) => {
                    return (1005, String::new());
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    async fn connect(app: &TestApp, init: Value) -> Live {
        let socket = Live::open(app).await;
        let mut live = Live {
            socket,
            kept: VecDeque::new(),
        };
        live.send(json!({ "type": "connection_init", "payload": init }))
            .await;
        let ack = live.next_message().await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        live
    }

    async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
    }

    async fn subscribe(&mut self, id: &str, query: &str) {
        self.send(json!({ "id": id, "type": "subscribe", "payload": { "query": query } }))
            .await;
    }

    /// The next protocol message (pings answered and skipped).
    async fn next_message(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("a message within 20 s")
                .expect("the socket is open")
                .unwrap();
            let Message::Text(text) = message else {
                continue;
            };
            let message: Value = serde_json::from_str(&text).unwrap();
            if message["type"] == "ping" {
                self.send(json!({ "type": "pong" })).await;
                continue;
            }
            return message;
        }
    }

    /// The next payload of subscription `id`; the others' are kept for their turn.
    async fn next_of(&mut self, id: &str) -> Value {
        if let Some(at) = self.kept.iter().position(|m| m["id"] == id) {
            return self.kept.remove(at).expect("found");
        }
        loop {
            let message = self.next_message().await;
            if message["id"] == id {
                return message;
            }
            self.kept.push_back(message);
        }
    }

    /// The next notification of `kind` pushed on subscription `id`; others (a welcome
    /// still arriving) are skipped.
    async fn next_notification(&mut self, id: &str, kind: &str) -> Value {
        loop {
            let message = self.next_of(id).await;
            assert_eq!(message["type"], "next", "{message}");
            let notification = &message["payload"]["data"]["notificationReceived"];
            if notification["type"] == kind {
                return notification.clone();
            }
        }
    }

    /// Reads the unread counts pushed on subscription `id` until one is `expected`.
    async fn until_count(&mut self, id: &str, expected: i64) {
        let mut seen = Vec::new();
        let waited = tokio::time::timeout(WAIT, async {
            loop {
                let message = self.next_of(id).await;
                assert_eq!(message["type"], "next", "{message}");
                let count = message["payload"]["data"]["unreadCountChanged"].clone();
                if count == expected {
                    return;
                }
                seen.push(count);
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "no unread count of {expected} within 20 s; pushed: {seen:?}"
        );
    }

    /// Every message kept or arriving within `quiet`.
    async fn drain(&mut self, quiet: Duration) -> Vec<Value> {
        let mut messages: Vec<Value> = self.kept.drain(..).collect();
        while let Ok(Some(Ok(Message::Text(text)))) =
            tokio::time::timeout(quiet, self.socket.next()).await
        {
            messages.push(serde_json::from_str(&text).unwrap());
        }
        messages
    }
}

fn bearer(who: &Session) -> Value {
    json!({ "Authorization": format!("Bearer {}", who.token) })
}

async fn a_subscriber_sees_their_own_notifications_and_unread_count_live(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let admin = app.admin().await;
    let ada = app.customer("Ada").await;
    let bob = app.customer("Bob").await;
    let product = app
        .graphql(
            Some(&admin.token),
            "mutation($input: ProductInput!) { createProduct(input: $input) { id } }",
            json!({ "input": { "name": "Moka Pot", "category": "coffee", "priceCents": 3900, "stock": 10 } }),
        )
        .await;
    let product_id = product.data()["createProduct"]["id"].clone();

    let mut ada_live = Live::connect(&app, bearer(&ada)).await;
    ada_live
        .subscribe(
            "arrivals",
            "subscription { notificationReceived { id type priority title data read } }",
        )
        .await;
    ada_live
        .subscribe("unread", "subscription { unreadCountChanged }")
        .await;
    let mut bob_live = Live::connect(&app, json!({ "token": bob.token })).await;
    bob_live
        .subscribe(
            "arrivals",
            "subscription { notificationReceived { id type } }",
        )
        .await;
    // The protocol acknowledges no subscription: the gateway's metrics tell when they
    // listen (each test runs in a process of its own).
    app.live_subscriptions(3).await;
    // The count comes at once: Ada has at most her welcome so far.
    let first = ada_live.next_of("unread").await;
    let first = &first["payload"]["data"]["unreadCountChanged"];
    assert!(first == 0 || first == 1, "[{set:?}] {first}");

    let placed = app
        .graphql(
            Some(&ada.token),
            "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id status } }",
            json!({ "input": { "items": [{ "productId": product_id, "quantity": 1 }] } }),
        )
        .await;
    let order = placed.data()["placeOrder"].clone();
    assert_eq!(order["status"], "CONFIRMED");

    let notification = ada_live.next_notification("arrivals", "ORDER_UPDATE").await;
    assert_eq!(notification["priority"], "CRITICAL");
    // Each event of a subscription counts as an operation of its root field.
    let events = app
        .metric(
            ServiceName::Gateway,
            "graphql_operations_total",
            r#"field="notificationReceived""#,
        )
        .await;
    assert!(events >= 1.0, "[{set:?}] {events}");
    assert_eq!(notification["data"]["orderId"], order["id"]);
    assert_eq!(notification["read"], false);
    let unread = unread_count(&app, &ada).await;
    assert!(unread >= 1, "[{set:?}] {unread}");
    ada_live.until_count("unread", unread).await;

    app.graphql(
        Some(&ada.token),
        "mutation { markAllNotificationsAsRead }",
        json!({}),
    )
    .await
    .data();
    ada_live.until_count("unread", 0).await;

    // Bob hears nothing of Ada's (his own welcome may still arrive).
    for message in bob_live.drain(Duration::from_millis(500)).await {
        let pushed = &message["payload"]["data"]["notificationReceived"];
        assert_ne!(pushed["type"], "ORDER_UPDATE", "[{set:?}] {message}");
    }
    app.cleanup().await;
}

async fn a_subscription_without_a_valid_token_is_refused(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    // Over plain HTTP a subscription is bad input, not a server error.
    let ada = app.customer("Ada").await;
    let over_http = app
        .graphql(
            Some(&ada.token),
            "subscription { notificationReceived { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        over_http.body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "[{set:?}] {}",
        over_http.body
    );
    // Without a token the connection opens, and a subscription is refused.
    let mut live = Live::connect(&app, json!({})).await;
    live.subscribe("arrivals", "subscription { notificationReceived { id } }")
        .await;
    let refused = live.next_of("arrivals").await;
    assert_eq!(
        errors_of(&refused)[0]["extensions"]["code"],
        "UNAUTHENTICATED",
        "[{set:?}] {refused}"
    );
    // With a token that is not one, the connection itself is refused (4403).
    let mut socket = Live::open(&app).await;
    socket
        .send(Message::text(
            json!({ "type": "connection_init", "payload": { "Authorization": "Bearer not-a-token" } })
                .to_string(),
        ))
        .await
        .unwrap();
    let (code, _) = Live::closed(&mut socket).await;
    assert_eq!(code, 4403, "[{set:?}]");
    app.cleanup().await;
}

/// The errors of a subscription's answer (`error`, or `next` carrying errors).
fn errors_of(message: &Value) -> Value {
    if message["type"] == "error" {
        message["payload"].clone()
    } else {
        message["payload"]["errors"].clone()
    }
}

async fn bad_or_too_many_subscriptions_get_a_code(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let ada = app.customer("Ada").await;
    let mut live = Live::connect(&app, bearer(&ada)).await;
    live.subscribe("garbled", "subscription { notificationReceived { nope } }")
        .await;
    let garbled = live.next_of("garbled").await;
    assert_eq!(
        errors_of(&garbled)[0]["extensions"]["code"],
        "BAD_USER_INPUT",
        "[{set:?}] {garbled}"
    );
    let allowed = 16;
    for i in 0..allowed {
        live.subscribe(&format!("s{i}"), "subscription { unreadCountChanged }")
            .await;
    }
    app.live_subscriptions(allowed).await;
    live.subscribe("one-too-many", "subscription { unreadCountChanged }")
        .await;
    let refused = live.next_of("one-too-many").await;
    assert_eq!(
        errors_of(&refused)[0]["extensions"]["code"],
        "RATE_LIMITED",
        "[{set:?}] {refused}"
    );
    app.cleanup().await;
}
