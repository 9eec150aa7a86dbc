//! `importUsers` through the public API: an admin brings customers in, all or nothing;
//! they are not welcomed, cannot sign in without a password, and a promotion reaches them.

use std::time::Duration;

use herald::ServiceName;
use herald_test_support::{BackendSet, TestApp, backend_tests, eventually};

use crate::notifications::welcome;
use serde_json::{Value, json};

backend_tests!(imported_customers_are_reached_but_not_welcomed);

const IMPORT: &str =
    "mutation($i: ImportUsersInput!) { importUsers(input: $i) { created skipped } }";

async fn imported_customers_are_reached_but_not_welcomed(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let admin = app.admin().await;
    let ada = app.customer("Ada").await;
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let email = |name: &str| format!("{name}-{tag}@shop.example");
    let users = json!([
        { "name": "Imported One", "email": email("one") },
        { "name": "Imported Two", "email": email("two"),
          "preferences": { "promotions": false, "timezone": "Asia/Tokyo" } },
        { "name": "Imported Three", "email": email("three"),
          "preferences": { "categories": ["tea"] } },
    ]);

    // Customers may not; a bad row anywhere refuses the whole list, naming it.
    let refused = app
        .graphql(Some(&ada.token), IMPORT, json!({ "i": { "users": users } }))
        .await;
    assert_eq!(refused.error_code(), Some("FORBIDDEN"));
    let mut bad = users.clone();
    bad[2]["email"] = json!("three at example");
    let refused = app
        .graphql(Some(&admin.token), IMPORT, json!({ "i": { "users": bad } }))
        .await;
    assert_eq!(refused.error_code(), Some("BAD_USER_INPUT"));
    let error = refused.errors()[0].clone();
    assert_eq!(error["extensions"]["rows"][0]["index"], 2, "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("users[2]"),
        "{error}"
    );

    // The welcomes of the two registered are counted before anything is imported.
    for who in [&admin, &ada] {
        welcome(&app, who).await;
    }
    let security = async || {
        app.metric(
            ServiceName::Notifications,
            "notifications_decisions_total",
            "type=\"SECURITY\"",
        )
        .await
    };
    let security_before = security().await;
    // Imported once; the same list again is all skipped.
    for expected in [
        json!({ "created": 3, "skipped": 0 }),
        json!({ "created": 0, "skipped": 3 }),
    ] {
        let imported = app
            .graphql(
                Some(&admin.token),
                IMPORT,
                json!({ "i": { "users": users } }),
            )
            .await;
        assert_eq!(imported.data()["importUsers"], expected);
    }

    // No password yet: no sign-in.
    let login = app.login(&email("one"), "anything at all").await;
    assert_eq!(login.error_code(), Some("UNAUTHENTICATED"));

    // A promotion reaches those who want promotions (the admin, Ada, One and Three),
    // which shows the notifications service knows them.
    let created = app
        .graphql(
            Some(&admin.token),
            "mutation($i: PromotionInput!) { createPromotion(input: $i) { id } }",
            json!({ "i": { "title": "Welcome offer", "body": "For our customers" } }),
        )
        .await;
    let id = created.data()["createPromotion"]["id"].clone();
    let sent: Value = eventually(Duration::from_secs(20), "the promotion sent", || async {
        let list = app
            .graphql(
                Some(&admin.token),
                "{ promotions { id status recipients } }",
                json!({}),
            )
            .await;
        list.data()["promotions"]
            .as_array()?
            .iter()
            .find(|p| p["id"] == id && p["status"] == "SENT")
            .cloned()
    })
    .await;
    assert_eq!(sent["recipients"], 4, "{sent}");
    // And none of the imported was welcomed: no SECURITY decision was added.
    let security_after = security().await;
    assert_eq!(
        security_after, security_before,
        "no welcome for imported customers"
    );
    app.cleanup().await;
}
