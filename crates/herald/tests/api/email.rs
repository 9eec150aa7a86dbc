//! Email through the whole system: a notification becomes an email in the mailbox, and its
//! one-click unsubscribe link switches that type off.

use std::time::Duration;

use herald_test_support::{BackendSet, TestApp, backend_tests, eventually};
use serde_json::json;

backend_tests!(every bus: an_order_email_arrives_and_its_unsubscribe_link_switches_order_updates_off);

async fn an_order_email_arrives_and_its_unsubscribe_link_switches_order_updates_off(
    set: BackendSet,
) {
    let app = TestApp::spawn(set).await;
    let admin = app.admin().await;
    let buyer = app.customer("Mailed").await;
    let channels =
        "mutation { updateUserPreferences(input: { channels: [IN_APP, EMAIL] }) { id } }";
    app.graphql(Some(&buyer.token), channels, json!({}))
        .await
        .data();

    let product = app
        .graphql(
            Some(&admin.token),
            "mutation { createProduct(input: { name: \"Beans\", category: \"coffee\", priceCents: 1250, stock: 50 }) { id } }",
            json!({}),
        )
        .await
        .data()["createProduct"]["id"]
        .clone();
    let order = "mutation($p: ID!) { placeOrder(input: { items: [{ productId: $p, quantity: 1 }] }) { id } }";

    // The channel change reaches the notifications service as an event of its own, so an
    // order placed in the same instant may still be decided in-app only: order until one
    // is decided with the new preferences (normally the first).
    let mailbox = app.data_dir().join("mailbox");
    let confirmed_email = || {
        std::fs::read_dir(&mailbox).ok().and_then(|entries| {
            entries
                .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
                .find(|text| text.contains("is confirmed"))
        })
    };
    let mut email = None;
    for _ in 0..5 {
        app.graphql(Some(&buyer.token), order, json!({ "p": product }))
            .await
            .data();
        let wait = tokio::time::Instant::now() + Duration::from_secs(5);
        while email.is_none() && tokio::time::Instant::now() < wait {
            email = confirmed_email();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if email.is_some() {
            break;
        }
    }
    let email = email.expect("an order email");
    assert!(email.contains("Mailed"), "the user's name: {email}");
    assert!(
        email.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "{email}"
    );
    let token = email
        .split("unsubscribe?token=")
        .nth(1)
        .and_then(|rest| {
            rest.split(|c: char| c == '>' || c.is_whitespace() || c == '"')
                .next()
        })
        .expect("an unsubscribe link")
        .to_owned();

    // A GET (a mail scanner following the link) changes nothing; a forged token neither.
    let url = format!("{}/unsubscribe?token={token}", app.gateway);
    assert_eq!(app.http().get(&url).send().await.unwrap().status(), 200);
    let forged = format!("{}/unsubscribe?token={}x", app.gateway, token);
    assert_eq!(app.http().post(&forged).send().await.unwrap().status(), 400);
    let prefs = "{ getUser { preferences { orderUpdates } } }";
    let before = app.graphql(Some(&buyer.token), prefs, json!({})).await;
    assert_eq!(
        before.data()["getUser"]["preferences"]["orderUpdates"],
        true
    );

    let one_click = app
        .http()
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(one_click.status(), 200);
    eventually(
        Duration::from_secs(10),
        "order updates switched off",
        || async {
            let now = app.graphql(Some(&buyer.token), prefs, json!({})).await;
            (now.data()["getUser"]["preferences"]["orderUpdates"] == false).then_some(())
        },
    )
    .await;
    app.cleanup().await;
}
