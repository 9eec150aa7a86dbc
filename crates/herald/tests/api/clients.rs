//! The clients people already use, as they come: the npm `graphql-ws` client, graphql-js
//! introspection with its default options, and GraphiQL in a real (headless) Chromium.

use std::time::Duration;

use herald_test_support::clients::{CHROMIUM, NODE, Script, chromium, scripts};
use herald_test_support::{BackendSet, TestApp, backend_tests};
use serde_json::json;

backend_tests!(
    every bus: the_graphql_ws_client_subscribes_and_hears_refusals(needs = &[NODE]),
    a_subscription_ends_when_its_token_expires(needs = &[NODE]),
    graphql_js_introspection_builds_the_schema(needs = &[NODE]),
    graphiql_in_chromium_finds_notification_and_receives_a_push(needs = &[NODE, CHROMIUM])
);

const WAIT: Duration = Duration::from_secs(60);

fn ws_url(app: &TestApp) -> String {
    format!("{}/graphql", app.gateway.replacen("http", "ws", 1))
}

async fn the_graphql_ws_client_subscribes_and_hears_refusals(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let ada = app.customer("Ada").await;
    let mut live = Script::start(
        "graphql-ws.mjs",
        &json!({
            "url": ws_url(&app),
            "token": ada.token,
            "query": "subscription { notificationReceived { id type title data } }",
            "take": 10,
        }),
    );
    assert_eq!(live.next_event(WAIT).await["event"], "connected");
    app.live_subscriptions(1).await;
    let order_id = app.kettle_ordered_by(&ada.token).await.1;
    let pushed = loop {
        let event = live.next_event(WAIT).await;
        assert_eq!(event["event"], "next", "[{set:?}] {event}");
        let notification = event["result"]["data"]["notificationReceived"].clone();
        if notification["type"] == "ORDER_UPDATE" {
            break notification;
        }
    };
    assert_eq!(pushed["data"]["orderId"], order_id, "[{set:?}] {pushed}");
    drop(live);

    // A query the schema does not have: the client's error handler gets the errors.
    let events = Script::start(
        "graphql-ws.mjs",
        &json!({ "url": ws_url(&app), "token": ada.token, "query": "subscription { nope }" }),
    )
    .rest(WAIT)
    .await;
    let error = events
        .iter()
        .find(|e| e["event"] == "error")
        .expect("an error");
    assert_eq!(
        error["error"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{events:?}"
    );

    // A token that is not one: the connection is refused with 4403.
    let events = Script::start(
        "graphql-ws.mjs",
        &json!({ "url": ws_url(&app), "token": "forged", "query": "subscription { unreadCountChanged }" }),
    )
    .rest(WAIT)
    .await;
    let closed = events
        .iter()
        .find(|e| e["event"] == "closed")
        .expect("closed");
    assert_eq!(closed["code"], 4403, "{events:?}");
    app.cleanup().await;
}

async fn a_subscription_ends_when_its_token_expires(set: BackendSet) {
    // The scripts' packages first: installing them must not spend the token's 3 s.
    scripts();
    let app = TestApp::spawn_with(set, |s| s.token_ttl_secs = 3).await;
    let ada = app.customer("Ada").await;
    let mut live = Script::start(
        "graphql-ws.mjs",
        &json!({ "url": ws_url(&app), "token": ada.token, "query": "subscription { unreadCountChanged }", "take": 100 }),
    );
    assert_eq!(live.next_event(WAIT).await["event"], "connected");
    // The count comes at once (Ada's welcome may or may not be in it yet).
    let first = live.next_event(WAIT).await;
    let count = &first["result"]["data"]["unreadCountChanged"];
    assert!(count == 0 || count == 1, "{first}");
    // No event needed: the connection closes at the token's expiry, within seconds.
    let started = std::time::Instant::now();
    let events = live.rest(WAIT).await;
    let closed = events
        .iter()
        .find(|e| e["event"] == "closed")
        .expect("closed");
    assert_eq!(closed["code"], 4403, "{events:?}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    app.cleanup().await;
}

async fn graphql_js_introspection_builds_the_schema(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let script = Script::start(
        "introspect.mjs",
        &json!({ "url": format!("{}/graphql", app.gateway) }),
    );
    let events = script.rest(WAIT).await;
    let schema = &events[0];
    assert_eq!(schema["status"], 200, "{events:?}");
    assert_eq!(schema["notification"], true, "{events:?}");
    assert_eq!(schema["subscription"], "Subscription", "{events:?}");
    app.cleanup().await;
}

async fn graphiql_in_chromium_finds_notification_and_receives_a_push(set: BackendSet) {
    let chromium = chromium();
    let app = TestApp::spawn(set).await;
    let ada = app.customer("Ada").await;
    let mut page = Script::start(
        "graphiql.mjs",
        &json!({
            "url": format!("{}/graphql", app.gateway),
            "token": ada.token,
            "query": "subscription { notificationReceived { type title } }",
            "expect": "ORDER_UPDATE",
            "chromium": chromium,
            "screenshot": std::env::temp_dir().join("herald-graphiql-failure.png"),
        }),
    );
    let loaded = page.next_event(WAIT).await;
    assert_eq!(loaded["event"], "loaded", "{loaded}");
    let docs = page.next_event(WAIT).await;
    assert_eq!(docs["event"], "docs", "{docs}");
    assert!(
        docs["found"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "Notification"),
        "{docs}"
    );
    let subscribed = page.next_event(WAIT).await;
    assert_eq!(subscribed["event"], "subscribed", "{subscribed}");
    app.live_subscriptions(1).await;
    app.kettle_ordered_by(&ada.token).await;
    let result = page.next_event(WAIT).await;
    assert_eq!(result["event"], "result", "{result}");
    assert!(
        result["result"].as_str().unwrap().contains("ORDER_UPDATE"),
        "{result}"
    );
    assert_eq!(result["pageErrors"], json!([]), "{result}");
    app.cleanup().await;
}
