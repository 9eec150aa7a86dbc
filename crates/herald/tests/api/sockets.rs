//! The WebSocket protocol by its book: each misbehaviour closes the connection with the
//! code `graphql-transport-ws` gives it; sizes and counts are bounded.

use futures::{SinkExt, StreamExt};
use herald_test_support::{BackendSet, TestApp, backend_tests};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::live::{Live, Socket};

backend_tests!(
    every bus: misbehaving_connections_are_closed_with_the_protocols_codes,
    sockets_are_bounded_in_size_and_number,
    the_older_graphql_ws_protocol_is_spoken_too
);

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .unwrap();
}

/// The next text message, as JSON.
async fn next(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(std::time::Duration::from_secs(20), socket.next())
            .await
            .expect("a message within 20 s")
            .expect("open")
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

async fn acknowledged(app: &TestApp) -> Socket {
    let mut socket = Live::open(app).await;
    send(&mut socket, json!({ "type": "connection_init" })).await;
    assert_eq!(next(&mut socket).await["type"], "connection_ack");
    socket
}

async fn misbehaving_connections_are_closed_with_the_protocols_codes(set: BackendSet) {
    let app = TestApp::spawn_with(set, |s| s.ws_init_timeout_ms = 500).await;

    // No connection_init within the timeout: 4408.
    let mut silent = Live::open(&app).await;
    assert_eq!(Live::closed(&mut silent).await.0, 4408);

    // Subscribing before the acknowledgement: 4401.
    let mut eager = Live::open(&app).await;
    send(
        &mut eager,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": "{ __typename }" } }),
    )
    .await;
    assert_eq!(Live::closed(&mut eager).await.0, 4401);

    // A second connection_init: 4429.
    let mut twice = acknowledged(&app).await;
    send(&mut twice, json!({ "type": "connection_init" })).await;
    assert_eq!(Live::closed(&mut twice).await.0, 4429);

    // A subscription id that is running already: 4409.
    let ada = app.customer("Ada").await;
    let mut duplicate = Live::open(&app).await;
    send(&mut duplicate, json!({ "type": "connection_init", "payload": { "Authorization": format!("bearer {}", ada.token) } })).await;
    assert_eq!(next(&mut duplicate).await["type"], "connection_ack");
    for _ in 0..2 {
        send(&mut duplicate, json!({ "id": "same", "type": "subscribe", "payload": { "query": "subscription { unreadCountChanged }" } })).await;
    }
    assert_eq!(Live::closed(&mut duplicate).await.0, 4409);

    // Not a protocol message: 4400.
    for garbage in [
        json!({ "type": "next", "id": "1" }),
        json!([1, 2]),
        json!({ "type": "subscribe", "id": "1" }),
    ] {
        let mut confused = acknowledged(&app).await;
        send(&mut confused, garbage.clone()).await;
        assert_eq!(Live::closed(&mut confused).await.0, 4400, "{garbage}");
    }
    let mut binary = acknowledged(&app).await;
    binary
        .send(Message::binary(vec![0xff, 0xfe]))
        .await
        .unwrap();
    assert_eq!(Live::closed(&mut binary).await.0, 4400);

    // A request refused before it runs is an `error`, and the socket stays open.
    let mut socket = acknowledged(&app).await;
    let deep = format!("{{ {} }}", "__typename { ".repeat(100) + &"}".repeat(100));
    send(
        &mut socket,
        json!({ "id": "a", "type": "subscribe", "payload": { "query": deep } }),
    )
    .await;
    let refused = next(&mut socket).await;
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(
        refused["payload"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );
    send(
        &mut socket,
        json!({ "id": "b", "type": "subscribe", "payload": { "query": "{ __typename }" } }),
    )
    .await;
    let answer = next(&mut socket).await;
    assert_eq!(answer["type"], "next", "{answer}");
    assert_eq!(answer["payload"]["data"]["__typename"], "Query");
    assert_eq!(next(&mut socket).await["type"], "complete");
    // Pings are answered.
    send(&mut socket, json!({ "type": "ping" })).await;
    assert_eq!(next(&mut socket).await["type"], "pong");
    app.cleanup().await;
}

async fn sockets_are_bounded_in_size_and_number(set: BackendSet) {
    let app = TestApp::spawn_with(set, |s| {
        s.max_body_bytes = 64 * 1024;
        s.ws_connections_per_client = 2;
    })
    .await;
    // A message over the body limit: 1009.
    let mut big = acknowledged(&app).await;
    let query = format!("{{ __typename }} # {}", "x".repeat(100 * 1024));
    let _ = big
        .send(Message::text(
            json!({ "id": "1", "type": "subscribe", "payload": { "query": query } }).to_string(),
        ))
        .await;
    assert_eq!(Live::closed(&mut big).await.0, 1009);

    // Two open sockets per client here; the third is refused before the upgrade.
    let _first = acknowledged(&app).await;
    let _second = acknowledged(&app).await;
    let url = format!("{}/graphql", app.gateway.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            let body: Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
        }
        other => panic!("the third socket was not refused: {other:?}"),
    }
    app.cleanup().await;
}

async fn the_older_graphql_ws_protocol_is_spoken_too(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let url = format!("{}/graphql", app.gateway.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-ws".parse().unwrap());
    let (mut socket, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], "graphql-ws");
    send(
        &mut socket,
        json!({ "type": "connection_init", "payload": {} }),
    )
    .await;
    assert_eq!(next(&mut socket).await["type"], "connection_ack");
    send(
        &mut socket,
        json!({ "id": "1", "type": "start", "payload": { "query": "{ __typename }" } }),
    )
    .await;
    let data = next(&mut socket).await;
    assert_eq!(data["type"], "data", "{data}");
    assert_eq!(data["payload"]["data"]["__typename"], "Query");
    assert_eq!(next(&mut socket).await["type"], "complete");
    app.cleanup().await;
}
