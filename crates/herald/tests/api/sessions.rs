//! Identity that stays true: short access tokens, refresh tokens good once (a reused one
//! signs its family out), tokens refused once their account's credentials changed or the
//! account is gone.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use herald_events::Role;
use herald_platform::auth::SigningKey;
use herald_test_support::{BackendSet, TestApp, backend_tests};
use serde_json::{Value, json};
use uuid::Uuid;

backend_tests!(
    every bus: refresh_tokens_rotate_and_a_reused_one_signs_the_family_out,
    tokens_stop_working_when_the_account_changes_or_is_gone
);

const LOGIN: &str = "mutation($email: String!, $password: String!) {
    loginUser(input: {email: $email, password: $password}) { token refreshToken user { id } } }";
const REFRESH: &str =
    "mutation($token: String!) { refreshToken(token: $token) { token refreshToken user { id } } }";

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

async fn refresh(app: &TestApp, token: &str) -> herald_test_support::Gql {
    app.graphql(None, REFRESH, json!({ "token": token })).await
}

async fn refresh_tokens_rotate_and_a_reused_one_signs_the_family_out(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let email = &format!("ada-{}@example.com", Uuid::now_v7());
    app.register("Ada", email, "correct horse battery")
        .await
        .data();
    let signed_in = app
        .graphql(
            None,
            LOGIN,
            json!({ "email": email, "password": "correct horse battery" }),
        )
        .await;
    let first = signed_in.data()["loginUser"].clone();
    // Access tokens live 15 minutes by default.
    let access = claims(first["token"].as_str().unwrap());
    assert_eq!(
        access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap(),
        900
    );
    let first_refresh = first["refreshToken"].as_str().unwrap().to_owned();

    // A refresh gives a new pair for the same user, and the new token works.
    let second = refresh(&app, &first_refresh).await.data()["refreshToken"].clone();
    assert_eq!(second["user"]["id"], first["user"]["id"]);
    assert_ne!(second["refreshToken"], first["refreshToken"]);
    let me = app
        .graphql(second["token"].as_str(), "{ getUser { id } }", json!({}))
        .await;
    assert_eq!(me.data()["getUser"]["id"], first["user"]["id"]);
    let third = refresh(&app, second["refreshToken"].as_str().unwrap())
        .await
        .data()["refreshToken"]
        .clone();

    // The first one again: refused, and the family it began is signed out with it.
    let reused = refresh(&app, &first_refresh).await;
    assert_eq!(
        reused.error_code(),
        Some("UNAUTHENTICATED"),
        "{}",
        reused.body
    );
    let latest = refresh(&app, third["refreshToken"].as_str().unwrap()).await;
    assert_eq!(
        latest.error_code(),
        Some("UNAUTHENTICATED"),
        "{}",
        latest.body
    );
    // Nonsense and empty tokens are refused the same way.
    for token in ["nonsense", ""] {
        let refused = refresh(&app, token).await;
        assert_eq!(
            refused.error_code(),
            Some("UNAUTHENTICATED"),
            "{}",
            refused.body
        );
    }
    // Another sign-in is another family, untouched.
    let again = app
        .graphql(
            None,
            LOGIN,
            json!({ "email": email, "password": "correct horse battery" }),
        )
        .await;
    let fresh = again.data()["loginUser"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    refresh(&app, &fresh).await.data();
    app.cleanup().await;
}

/// Waits until `token` is refused on `getUser` (the gateway keeps an account's version
/// for a few seconds).
async fn refused_soon(app: &TestApp, token: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let me = app
            .graphql(Some(token), "{ getUser { id } }", json!({}))
            .await;
        if me.error_code() == Some("UNAUTHENTICATED") {
            return me.body["errors"][0]["message"].as_str().unwrap().to_owned();
        }
        assert!(Instant::now() < deadline, "still accepted: {}", me.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn tokens_stop_working_when_the_account_changes_or_is_gone(set: BackendSet) {
    let key = SigningKey::generate().unwrap();
    let app = TestApp::spawn_with(set, |s| s.signing_key = Some(key.to_base64())).await;
    let email = &format!("ada-{}@example.com", Uuid::now_v7());
    let registered = app.register("Ada", email, "correct horse battery").await;
    let ada_token = registered.data()["registerUser"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let ada_id: Uuid = registered.data()["registerUser"]["user"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let signed_in = app
        .graphql(
            None,
            LOGIN,
            json!({ "email": email, "password": "correct horse battery" }),
        )
        .await;
    let refresh_token = signed_in.data()["loginUser"]["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();

    // What a new password or role does: every earlier token and refresh token is refused.
    let db = herald_users::connect_database(&app.settings).await.unwrap();
    let mut tx = db.begin().await.unwrap();
    herald_users::sessions::sign_out_everywhere(&mut tx, ada_id)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let why = refused_soon(&app, &ada_token).await;
    assert!(why.contains("sign in again"), "{why}");
    let refused = refresh(&app, &refresh_token).await;
    assert_eq!(
        refused.error_code(),
        Some("UNAUTHENTICATED"),
        "{}",
        refused.body
    );
    // Signing in again gives tokens of the new version.
    let again = app
        .graphql(
            None,
            LOGIN,
            json!({ "email": email, "password": "correct horse battery" }),
        )
        .await;
    let token = again.data()["loginUser"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let me = app
        .graphql(Some(&token), "{ getUser { id } }", json!({}))
        .await;
    assert_eq!(me.data()["getUser"]["id"], ada_id.to_string());

    // A validly signed token of an account that does not exist orders nothing.
    // (The configured key names itself by its public key, as the users service sees it.)
    let ghost = SigningKey::from_base64(&key.to_base64())
        .unwrap()
        .issue(Uuid::now_v7(), Role::Customer, 1, Duration::from_secs(600))
        .unwrap();
    let order = app
        .graphql(
            Some(&ghost),
            "mutation($id: ID!) { placeOrder(input: {items: [{productId: $id, quantity: 1}]}) { id } }",
            json!({ "id": Uuid::now_v7() }),
        )
        .await;
    assert_eq!(
        order.error_code(),
        Some("UNAUTHENTICATED"),
        "{}",
        order.body
    );
    assert!(
        order.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("no longer exists"),
        "{}",
        order.body
    );
    app.cleanup().await;
}
