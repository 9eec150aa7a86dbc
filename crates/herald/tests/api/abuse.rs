//! Budgets and throttles: a client or user over its budget waits (429, Retry-After);
//! guessing passwords slows the guesser down without locking the owner out; registrations
//! are limited per client. Clients are told apart by the proxy header the gateway trusts
//! here, so one test can be an attacker and the owner at once.

use std::time::Duration;

use herald_test_support::{
    ADMIN_EMAIL, ADMIN_PASSWORD, BackendSet, TestApp, backend_tests, eventually,
};
use serde_json::{Value, json};

backend_tests!(
    every bus: guessing_slows_the_guesser_and_never_locks_the_owner_out,
    spraying_one_password_over_many_accounts_slows_the_client,
    registrations_are_limited_per_client,
    clients_and_users_over_their_budget_wait
);

const ATTACKER: &str = "203.0.113.9";
const OWNER: &str = "198.51.100.7";

struct Answer {
    status: u16,
    retry_after: Option<u64>,
    body: Value,
}

impl Answer {
    /// The codes of the answer's errors (one per failed alias), in order.
    fn codes(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .map(|e| e["extensions"]["code"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn count(&self, code: &str) -> usize {
        self.codes().iter().filter(|c| *c == code).count()
    }
}

/// Posts `query` to the gateway as `client`.
async fn post(app: &TestApp, client: &str, token: Option<&str>, body: Value) -> Answer {
    let mut request = app
        .http()
        .post(format!("{}/graphql", app.gateway))
        .header("x-forwarded-for", client)
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let body = response.json().await.unwrap();
    Answer {
        status,
        retry_after,
        body,
    }
}

/// One request of `n` aliased sign-ins.
fn sign_ins(n: usize, email: &str, password: &str) -> Value {
    let aliases: String = (0..n)
        .map(|i| {
            format!(
                "a{i}: loginUser(input: {{email: {email:?}, password: {password:?}}}) {{ token }} "
            )
        })
        .collect();
    json!({ "query": format!("mutation {{ {aliases} }}") })
}

async fn spawn(set: BackendSet, adjust: impl FnOnce(&mut herald_platform::Settings)) -> TestApp {
    TestApp::spawn_with(set, |settings| {
        settings.trusted_proxy_header = Some("X-Forwarded-For".to_owned());
        adjust(settings);
    })
    .await
}

async fn guessing_slows_the_guesser_and_never_locks_the_owner_out(set: BackendSet) {
    let app = spawn(set, |s| {
        s.login_failures_per_account_client = 5;
        s.login_failures_alert = 5;
    })
    .await;
    // Ten guesses in one request, as aliases: five pass, the others wait.
    let guesses = post(&app, ATTACKER, None, sign_ins(10, ADMIN_EMAIL, "guess")).await;
    assert_eq!(guesses.count("UNAUTHENTICATED"), 5, "{}", guesses.body);
    assert_eq!(guesses.count("RATE_LIMITED"), 5, "{}", guesses.body);
    assert_eq!(guesses.retry_after, Some(1), "{}", guesses.body);
    let limited = guesses.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["extensions"]["code"] == "RATE_LIMITED")
        .unwrap();
    assert_eq!(limited["extensions"]["retryAfter"], 1, "{limited}");

    // Even the right password waits, from the guesser's address…
    let right = post(
        &app,
        ATTACKER,
        None,
        sign_ins(1, ADMIN_EMAIL, ADMIN_PASSWORD),
    )
    .await;
    assert_eq!(right.codes(), ["RATE_LIMITED"], "{}", right.body);
    // …while the owner, elsewhere, signs in as ever.
    let owner = post(&app, OWNER, None, sign_ins(1, ADMIN_EMAIL, ADMIN_PASSWORD)).await;
    assert!(
        owner.body["data"]["a0"]["token"].is_string(),
        "{}",
        owner.body
    );

    // The waits grow: after the first one (the wait the answer told, which is what is under
    // test here), one more guess passes, and the next waits 2 s.
    let told = Duration::from_secs(guesses.retry_after.unwrap());
    tokio::time::sleep(told + Duration::from_millis(100)).await;
    let again = post(&app, ATTACKER, None, sign_ins(2, ADMIN_EMAIL, "guess")).await;
    assert_eq!(again.count("UNAUTHENTICATED"), 1, "{}", again.body);
    assert_eq!(again.count("RATE_LIMITED"), 1, "{}", again.body);
    assert_eq!(again.retry_after, Some(2), "{}", again.body);

    // The owner is told, once.
    let admin = app.admin().await;
    let warning = eventually(Duration::from_secs(20), "the SECURITY warning", || async {
        let answer = app
            .graphql(
                Some(&admin.token),
                "{ getNotifications(first: 50) { nodes { type title body } } }",
                json!({}),
            )
            .await;
        let warnings: Vec<Value> = answer.data()["getNotifications"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["title"] == "Failed sign-in attempts on your account")
            .cloned()
            .collect();
        (!warnings.is_empty()).then_some(warnings)
    })
    .await;
    assert_eq!(warning.len(), 1);
    assert_eq!(warning[0]["type"], "SECURITY");
    assert!(
        warning[0]["body"].as_str().unwrap().contains(ATTACKER),
        "{}",
        warning[0]
    );
    app.cleanup().await;
}

async fn spraying_one_password_over_many_accounts_slows_the_client(set: BackendSet) {
    let app = spawn(set, |s| {
        s.login_failures_per_client = 5;
    })
    .await;
    let aliases: String = (0..8)
        .map(|i| {
            format!("a{i}: loginUser(input: {{email: \"user{i}@example.com\", password: \"Winter2026!\"}}) {{ token }} ")
        })
        .collect();
    let spray = json!({ "query": format!("mutation {{ {aliases} }}") });
    let sprayed = post(&app, ATTACKER, None, spray).await;
    assert_eq!(sprayed.count("UNAUTHENTICATED"), 5, "{}", sprayed.body);
    assert_eq!(sprayed.count("RATE_LIMITED"), 3, "{}", sprayed.body);
    // Another client is not held back, and the admin still signs in from anywhere else.
    let elsewhere = post(
        &app,
        OWNER,
        None,
        sign_ins(1, "user1@example.com", "Summer"),
    )
    .await;
    assert_eq!(elsewhere.codes(), ["UNAUTHENTICATED"], "{}", elsewhere.body);
    let admin = post(&app, OWNER, None, sign_ins(1, ADMIN_EMAIL, ADMIN_PASSWORD)).await;
    assert!(
        admin.body["data"]["a0"]["token"].is_string(),
        "{}",
        admin.body
    );
    app.cleanup().await;
}

async fn registrations_are_limited_per_client(set: BackendSet) {
    let app = spawn(set, |s| {
        s.registrations_per_client_per_hour = 3;
    })
    .await;
    let stamp = herald_test_support::unique();
    let aliases: String = (0..5)
        .map(|i| {
            format!("a{i}: registerUser(input: {{name: \"N{i}\", email: \"n{i}-{stamp}@example.com\", password: \"correct horse\"}}) {{ token }} ")
        })
        .collect();
    let registered = post(
        &app,
        ATTACKER,
        None,
        json!({ "query": format!("mutation {{ {aliases} }}") }),
    )
    .await;
    let tokens = registered.body["data"]
        .as_object()
        .map(|data| data.values().filter(|v| v["token"].is_string()).count())
        .unwrap_or(0);
    assert_eq!(tokens, 3, "{}", registered.body);
    assert_eq!(registered.count("RATE_LIMITED"), 2, "{}", registered.body);
    assert!(
        registered.retry_after.is_some_and(|s| s >= 1),
        "{}",
        registered.body
    );
    // Another client registers.
    let other = post(
        &app,
        OWNER,
        None,
        json!({ "query": format!("mutation {{ registerUser(input: {{name: \"O\", email: \"o-{stamp}@example.com\", password: \"correct horse\"}}) {{ token }} }}") }),
    )
    .await;
    assert!(
        other.body["data"]["registerUser"]["token"].is_string(),
        "{}",
        other.body
    );
    app.cleanup().await;
}

async fn clients_and_users_over_their_budget_wait(set: BackendSet) {
    let app = spawn(set, |s| {
        s.rate_limit_client_per_minute = 10;
        s.rate_limit_user_per_minute = 4;
    })
    .await;
    let trivial = json!({ "query": "{ __typename }" });
    for _ in 0..10 {
        let answer = post(&app, ATTACKER, None, trivial.clone()).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let refused = post(&app, ATTACKER, None, trivial.clone()).await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.codes(), ["RATE_LIMITED"]);
    // One operation per 6 s comes back.
    assert!(
        refused.retry_after.is_some_and(|s| (1..=6).contains(&s)),
        "{:?}",
        refused.retry_after
    );
    assert_eq!(
        refused.body["errors"][0]["extensions"]["retryAfter"],
        refused.retry_after.unwrap()
    );

    // A batch spends one per operation: 3 batches of 3, and one that starts within the
    // budget, pass; then the client waits.
    let batch = json!([{ "query": "{ __typename }" }, { "query": "{ __typename }" }, { "query": "{ __typename }" }]);
    for _ in 0..4 {
        assert_eq!(post(&app, OWNER, None, batch.clone()).await.status, 200);
    }
    assert_eq!(post(&app, OWNER, None, batch).await.status, 429);

    // A signed-in user has a budget of their own, wherever they send from.
    let ada = app.customer("Ada").await;
    for i in 0..4 {
        let client = format!("192.0.2.{i}");
        let answer = post(&app, &client, Some(&ada.token), trivial.clone()).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let over = post(&app, "192.0.2.50", Some(&ada.token), trivial.clone()).await;
    assert_eq!(over.status, 429, "{}", over.body);
    // Someone else from that address is not.
    let bob = app.customer("Bob").await;
    let fine = post(&app, "192.0.2.50", Some(&bob.token), trivial).await;
    assert_eq!(fine.status, 200, "{}", fine.body);
    app.cleanup().await;
}
