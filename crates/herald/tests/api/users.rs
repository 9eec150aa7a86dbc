use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use herald_test_support::{BackendSet, TestApp, backend_tests, eventually, unique};
use serde_json::json;

backend_tests!(
    every bus: registration_is_validated,
    login_checks_the_password,
    bad_tokens_are_unauthenticated,
    customers_cannot_read_other_users,
    preferences_are_validated_and_kept,
    expired_tokens_are_unauthenticated,
    admin_account_exists_once,
    a_configured_signing_key_signs_tokens_across_restarts,
);

async fn registration_is_validated(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let email = format!("ada-{}@example.com", unique());
    let first = app.register("Ada", &email, "long enough pw").await;
    assert_eq!(
        first.data()["registerUser"]["user"]["email"],
        email.as_str()
    );
    assert_eq!(first.data()["registerUser"]["user"]["role"], "CUSTOMER");

    // The same address in other case and with spaces is the same account.
    let again = app
        .register(
            "Ada Again",
            &format!("  {}  ", email.to_uppercase()),
            "long enough pw",
        )
        .await;
    assert_eq!(again.error_code(), Some("CONFLICT"), "{:?}", again.body);

    for (name, email, password) in [
        ("Bob", "not-an-email", "long enough pw"),
        ("Bob", "bob@", "long enough pw"),
        ("Bob", "bob@example.com", "short"),
        ("   ", "bob@example.com", "long enough pw"),
    ] {
        let response = app.register(name, email, password).await;
        assert_eq!(
            response.error_code(),
            Some("BAD_USER_INPUT"),
            "{name}/{email}/{password}: {:?}",
            response.body
        );
    }
    app.cleanup().await;
}

async fn login_checks_the_password(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let email = format!("grace-{}@example.com", unique());
    app.register("Grace", &email, "the right password")
        .await
        .data();

    let ok = app.login(&email.to_uppercase(), "the right password").await;
    assert!(
        ok.data()["loginUser"]["token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    let wrong = app.login(&email, "the wrong password").await;
    assert_eq!(wrong.error_code(), Some("UNAUTHENTICATED"));
    let unknown = app.login("nobody@example.com", "the right password").await;
    assert_eq!(unknown.error_code(), Some("UNAUTHENTICATED"));
    app.cleanup().await;
}

async fn bad_tokens_are_unauthenticated(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let me = app.customer("Tess").await;
    let query = "{ getUser { id } }";
    assert_eq!(
        app.graphql(Some(&me.token), query, json!({})).await.data()["getUser"]["id"],
        me.user_id.as_str()
    );

    let missing = app.graphql(None, query, json!({})).await;
    assert_eq!(missing.error_code(), Some("UNAUTHENTICATED"));
    let garbage = app.graphql(Some("garbage"), query, json!({})).await;
    assert_eq!(garbage.error_code(), Some("UNAUTHENTICATED"));

    // Change the payload (the role) but keep the signature.
    let parts: Vec<&str> = me.token.split('.').collect();
    let payload = String::from_utf8(base64_url_decode(parts[1])).unwrap();
    let forged_payload = payload.replace("CUSTOMER", "ADMIN");
    assert_ne!(payload, forged_payload);
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        base64_url_encode(forged_payload.as_bytes()),
        parts[2]
    );
    let response = app.graphql(Some(&forged), query, json!({})).await;
    assert_eq!(response.error_code(), Some("UNAUTHENTICATED"));
    app.cleanup().await;
}

async fn expired_tokens_are_unauthenticated(set: BackendSet) {
    let app = TestApp::spawn_with(set, |s| s.token_ttl_secs = 1).await;
    let me = app.customer("Brief").await;
    let query = "{ getUser { id } }";
    // Taken while valid (the gateway now keeps it as verified)...
    let fresh = app.graphql(Some(&me.token), query, json!({})).await;
    assert_eq!(fresh.data()["getUser"]["id"], me.user_id.as_str());
    // ...and refused once past its second of validity and the verifier's five seconds of
    // clock leeway, kept or not.
    let started = std::time::Instant::now();
    eventually(
        Duration::from_secs(15),
        "the token to be refused",
        || async {
            let response = app.graphql(Some(&me.token), query, json!({})).await;
            (response.error_code() == Some("UNAUTHENTICATED")).then_some(())
        },
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "refused too early"
    );
    app.cleanup().await;
}

async fn customers_cannot_read_other_users(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let alice = app.customer("Alice").await;
    let bob = app.customer("Bob").await;
    let query = "query($id: ID) { getUser(id: $id) { id email } }";

    let own = app
        .graphql(Some(&alice.token), query, json!({ "id": alice.user_id }))
        .await;
    assert_eq!(own.data()["getUser"]["id"], alice.user_id.as_str());
    let other = app
        .graphql(Some(&alice.token), query, json!({ "id": bob.user_id }))
        .await;
    assert_eq!(other.error_code(), Some("FORBIDDEN"));

    let admin = app.admin().await;
    let by_admin = app
        .graphql(Some(&admin.token), query, json!({ "id": bob.user_id }))
        .await;
    assert_eq!(by_admin.data()["getUser"]["id"], bob.user_id.as_str());
    let unknown = app
        .graphql(
            Some(&admin.token),
            query,
            json!({ "id": uuid::Uuid::now_v7().to_string() }),
        )
        .await;
    assert_eq!(unknown.error_code(), Some("NOT_FOUND"));
    let malformed = app
        .graphql(Some(&admin.token), query, json!({ "id": "../keys" }))
        .await;
    assert_eq!(malformed.error_code(), Some("NOT_FOUND"));
    app.cleanup().await;
}

const UPDATE_PREFERENCES: &str = "mutation($input: PreferencesInput!) {
  updateUserPreferences(input: $input) {
    preferences { promotions orderUpdates recommendations inventoryAlerts categories channels timezone quietHoursStart quietHoursEnd }
  }
}";

async fn preferences_are_validated_and_kept(set: BackendSet) {
    let mut app = TestApp::spawn(set).await;
    let me = app.customer("Pat").await;

    let defaults = app
        .graphql(
            Some(&me.token),
            "{ getUser { preferences { promotions channels timezone quietHoursStart } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        defaults.data()["getUser"]["preferences"],
        json!({ "promotions": true, "channels": ["IN_APP"], "timezone": "UTC", "quietHoursStart": null })
    );

    let input = json!({ "input": {
        "promotions": false, "categories": ["Coffee", "tea"], "channels": ["IN_APP", "EMAIL"],
        "timezone": "Europe/Berlin", "quietHoursStart": "22:00", "quietHoursEnd": "07:30"
    }});
    let updated = app
        .graphql(Some(&me.token), UPDATE_PREFERENCES, input)
        .await;
    let expected = json!({
        "promotions": false, "orderUpdates": true, "recommendations": true, "inventoryAlerts": true,
        "categories": ["coffee", "tea"], "channels": ["IN_APP", "EMAIL"], "timezone": "Europe/Berlin",
        "quietHoursStart": "22:00", "quietHoursEnd": "07:30"
    });
    assert_eq!(
        updated.data()["updateUserPreferences"]["preferences"],
        expected
    );

    for bad in [
        json!({ "timezone": "Mars/Olympus_Mons" }),
        json!({ "quietHoursStart": "25:00", "quietHoursEnd": "07:00" }),
        json!({ "quietHoursStart": null }),
        json!({ "channels": [] }),
    ] {
        let response = app
            .graphql(Some(&me.token), UPDATE_PREFERENCES, json!({ "input": bad }))
            .await;
        assert_eq!(
            response.error_code(),
            Some("BAD_USER_INPUT"),
            "{bad}: {:?}",
            response.body
        );
    }

    app.restart().await;
    let after = app
        .graphql(Some(&me.token), UPDATE_PREFERENCES, json!({ "input": {} }))
        .await;
    assert_eq!(
        after.data()["updateUserPreferences"]["preferences"],
        expected
    );
    app.cleanup().await;
}

async fn admin_account_exists_once(set: BackendSet) {
    let mut app = TestApp::spawn(set).await;
    let admin = app.admin().await;
    let role = app
        .graphql(Some(&admin.token), "{ getUser { role } }", json!({}))
        .await;
    assert_eq!(role.data()["getUser"]["role"], "ADMIN");
    app.restart().await;
    let again = app.admin().await;
    assert_eq!(again.user_id, admin.user_id);
    let duplicate = app
        .register(
            "Mallory",
            herald_test_support::ADMIN_EMAIL,
            "another password",
        )
        .await;
    assert_eq!(duplicate.error_code(), Some("CONFLICT"));
    app.cleanup().await;
}

fn base64_url_decode(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).expect("base64url")
}

fn base64_url_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

async fn a_configured_signing_key_signs_tokens_across_restarts(set: BackendSet) {
    let key = herald_platform::auth::SigningKey::generate().unwrap();
    let mut app = TestApp::spawn_with(set, |s| s.signing_key = Some(key.to_base64())).await;
    let me = app.customer("Keyed").await;
    let header: serde_json::Value =
        serde_json::from_slice(&base64_url_decode(me.token.split('.').next().unwrap())).unwrap();
    let configured = herald_platform::auth::SigningKey::from_base64(&key.to_base64()).unwrap();
    assert_eq!(header["kid"], configured.kid());
    app.restart().await;
    let response = app
        .graphql(Some(&me.token), "{ getUser { id } }", json!({}))
        .await;
    assert_eq!(response.data()["getUser"]["id"], me.user_id.as_str());
    app.cleanup().await;
}
