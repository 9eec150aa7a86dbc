//! One contract, two implementations: accounts called in process and accounts called over
//! HTTP (with a service credential) answer every operation alike, errors included.

use std::sync::Arc;

use herald_events::{Event, Role, SignInFailures};
use herald_platform::ErrorCode;
use herald_platform::backend_tests;
use herald_platform::testing::serve_on_loopback;
use herald_platform::testing::{BackendSet, outbox_events};
use uuid::Uuid;

use super::TestService;
use crate::accounts::{AccountsApi, AccountsOverHttp, LoginRequest, RegisterRequest};
use crate::domain::PreferencesPatch;

backend_tests!(both_implementations_keep_one_contract);

/// The service's accounts directly, and the same service's routes on a loopback port,
/// called as `caller`.
async fn implementations(
    s: &TestService,
    caller: &'static str,
) -> Vec<(&'static str, Arc<dyn AccountsApi>)> {
    vec![
        ("in process", Arc::new(s.accounts.clone())),
        ("over HTTP", Arc::new(over_http(s, caller).await)),
    ]
}

async fn over_http(s: &TestService, caller: &'static str) -> AccountsOverHttp {
    AccountsOverHttp::new(
        serve_on_loopback(s.router.clone(), &s.service_key, caller, "users").await,
    )
}

fn registration(name: &str, email: &str, client: &str) -> RegisterRequest {
    RegisterRequest {
        name: name.to_owned(),
        email: email.to_owned(),
        password: "correct horse".to_owned(),
        client: Some(client.to_owned()),
    }
}

fn login(email: &str, password: &str, client: &str) -> LoginRequest {
    LoginRequest {
        email: email.to_owned(),
        password: password.to_owned(),
        client: Some(client.to_owned()),
    }
}

#[track_caller]
fn assert_code<T: std::fmt::Debug>(
    answer: herald_platform::ApiResult<T>,
    code: ErrorCode,
    how: &str,
) -> String {
    let error = answer.unwrap_err();
    assert_eq!(error.code(), code, "{how}: {error}");
    error.to_string()
}

async fn both_implementations_keep_one_contract(set: BackendSet) {
    let s = TestService::start_with(set, |settings| {
        settings.registrations_per_client_per_hour = 2;
        settings.login_failures_per_account_client = 2;
        settings.login_failures_alert = 2;
    })
    .await;
    for (how, users) in implementations(&s, "gateway").await {
        // Each implementation its own clients and accounts: the cache and storage are shared.
        let client = |name: &str| format!("{how} {name}");
        let email = |name: &str| {
            format!(
                "{name}.{}@example.com",
                how.replace(' ', "-").to_lowercase()
            )
        };

        // Registering starts a session whose token names the new customer.
        let ada = users
            .register(&registration(" Ada ", &email("ada"), &client("ada")))
            .await
            .unwrap();
        assert_eq!(
            (ada.user.name.as_str(), ada.user.role),
            ("Ada", Role::Customer),
            "{how}"
        );
        assert_eq!(ada.user.email, email("ada"), "{how}");
        let ada_claims = s.verify(&ada.token);
        assert_eq!(ada_claims.sub, ada.user.id, "{how}");
        let message = assert_code(
            users
                .register(&registration("Ada", &email("ADA"), &client("again")))
                .await,
            ErrorCode::Conflict,
            how,
        );
        assert!(message.contains("already registered"), "{how}: {message}");
        for bad in [
            registration("", &email("nameless"), &client("nameless")),
            registration("Bad", "not an email", &client("bad email")),
            RegisterRequest {
                password: "short".to_owned(),
                ..registration("Short", &email("short"), &client("short"))
            },
        ] {
            assert_code(users.register(&bad).await, ErrorCode::BadUserInput, how);
        }
        // A client that registered its share waits, whatever it sends.
        for n in 0..2 {
            let name = format!("crowd{n}");
            assert_code(
                users
                    .register(&registration(&name, "not an email", &client("crowd")))
                    .await,
                ErrorCode::BadUserInput,
                how,
            );
        }
        let message = assert_code(
            users
                .register(&registration("Late", &email("late"), &client("crowd")))
                .await,
            ErrorCode::RateLimited,
            how,
        );
        assert!(message.contains("try again in"), "{how}: {message}");

        // Signing in: the right password starts a session, anything else is one answer.
        let signed_in = users
            .login(&login(&email("ADA"), "correct horse", &client("laptop")))
            .await
            .unwrap();
        assert_eq!(signed_in.user.id, ada.user.id, "{how}");
        assert_eq!(s.verify(&signed_in.token).sub, ada.user.id, "{how}");
        for (user, password) in [
            (email("ada"), "wrong horse"),
            (email("nobody"), "correct horse"),
            ("not an email".to_owned(), "correct horse"),
        ] {
            let message = assert_code(
                users
                    .login(&login(&user, password, &client("laptop")))
                    .await,
                ErrorCode::Unauthenticated,
                how,
            );
            assert_eq!(message, "wrong email or password", "{how}");
        }
        // Failures slow their client down on that account (even the right password
        // waits), not the owner elsewhere; the owner hears of them.
        assert_code(
            users
                .login(&login(&email("ada"), "wrong horse", &client("guesser")))
                .await,
            ErrorCode::Unauthenticated,
            how,
        );
        assert_code(
            users
                .login(&login(&email("ada"), "wrong horse", &client("guesser")))
                .await,
            ErrorCode::Unauthenticated,
            how,
        );
        let message = assert_code(
            users
                .login(&login(&email("ada"), "correct horse", &client("guesser")))
                .await,
            ErrorCode::RateLimited,
            how,
        );
        assert!(
            message.contains("too many failed sign-ins"),
            "{how}: {message}"
        );
        users
            .login(&login(&email("ada"), "correct horse", &client("phone")))
            .await
            .unwrap();
        let alerts = outbox_events(&s.db)
            .await
            .into_iter()
            .filter(|e| e.event_type == SignInFailures::TYPE)
            .filter(|e| e.payload::<SignInFailures>().unwrap().user_id == ada.user.id)
            .count();
        assert_eq!(alerts, 1, "{how}");

        // Refreshing trades a refresh token once; a used one comes back and signs its
        // whole family out, the others stay.
        let next = users.refresh(&signed_in.refresh_token).await.unwrap();
        assert_eq!(next.user.id, ada.user.id, "{how}");
        assert_ne!(next.refresh_token, signed_in.refresh_token, "{how}");
        let message = assert_code(
            users.refresh(&signed_in.refresh_token).await,
            ErrorCode::Unauthenticated,
            how,
        );
        assert!(message.contains("used already"), "{how}: {message}");
        assert_code(
            users.refresh(&next.refresh_token).await,
            ErrorCode::Unauthenticated,
            how,
        );
        assert_code(
            users.refresh("not a refresh token").await,
            ErrorCode::Unauthenticated,
            how,
        );
        users.refresh(&ada.refresh_token).await.unwrap();

        // Reading accounts: one's own, any for an admin, nobody else's.
        let me = users.me(&ada_claims).await.unwrap();
        assert_eq!(me.email, email("ada"));
        // Every field as the service keeps it, versions included, whichever way it came.
        assert_eq!(me, s.accounts.me(&ada_claims).await.unwrap(), "{how}");
        assert!(me.token_version >= 1, "{how}: {me:?}");
        let gone = s.claims(Uuid::now_v7(), Role::Customer);
        assert_code(users.me(&gone).await, ErrorCode::Unauthenticated, how);
        let bob = users
            .register(&registration("Bob", &email("bob"), &client("bob")))
            .await
            .unwrap();
        assert_eq!(
            users.user(&ada_claims, ada.user.id).await.unwrap().name,
            "Ada",
            "{how}"
        );
        let message = assert_code(
            users.user(&ada_claims, bob.user.id).await,
            ErrorCode::Forbidden,
            how,
        );
        assert_eq!(message, "only admins can read other users", "{how}");
        let admin = s.claims(Uuid::now_v7(), Role::Admin);
        assert_eq!(
            users.user(&admin, bob.user.id).await.unwrap().name,
            "Bob",
            "{how}"
        );
        let nobody = Uuid::now_v7();
        let message = assert_code(users.user(&admin, nobody).await, ErrorCode::NotFound, how);
        assert_eq!(message, format!("no user {nobody}"), "{how}");

        // Preferences: a change is kept, an invalid one refused, nobody's is refused.
        let change = PreferencesPatch {
            promotions: Some(false),
            timezone: Some("Europe/Berlin".to_owned()),
            quiet_hours_start: Some(Some("22:00".to_owned())),
            quiet_hours_end: Some(Some("07:00".to_owned())),
            ..Default::default()
        };
        let changed = users
            .update_preferences(&ada_claims, &change)
            .await
            .unwrap();
        assert!(!changed.preferences.promotions, "{how}");
        assert_eq!(changed.preferences.timezone, "Europe/Berlin", "{how}");
        let cleared = PreferencesPatch {
            quiet_hours_start: Some(None),
            quiet_hours_end: Some(None),
            ..Default::default()
        };
        let changed = users
            .update_preferences(&ada_claims, &cleared)
            .await
            .unwrap();
        assert_eq!(changed.preferences.quiet_hours_start, None, "{how}");
        assert_eq!(
            users.me(&ada_claims).await.unwrap().preferences,
            changed.preferences,
            "{how}"
        );
        let invalid = PreferencesPatch {
            timezone: Some("Mars/Olympus".to_owned()),
            ..Default::default()
        };
        assert_code(
            users.update_preferences(&ada_claims, &invalid).await,
            ErrorCode::BadUserInput,
            how,
        );
        assert_code(
            users.update_preferences(&gone, &change).await,
            ErrorCode::Unauthenticated,
            how,
        );

        // The version tokens are checked by, and none for an account that does not exist.
        assert_eq!(
            users.token_version(ada.user.id).await.unwrap(),
            Some(ada_claims.ver),
            "{how}"
        );
        assert_eq!(users.token_version(nobody).await.unwrap(), None, "{how}");
    }

    // Across processes, only the gateway asks for versions; every other call is any
    // service's.
    let from_orders = over_http(&s, "orders").await;
    let someone = Uuid::now_v7();
    assert_code(
        from_orders.token_version(someone).await,
        ErrorCode::Forbidden,
        "orders",
    );
    let admin = s.claims(Uuid::now_v7(), Role::Admin);
    assert_code(
        from_orders.user(&admin, someone).await,
        ErrorCode::NotFound,
        "orders",
    );
    s.finish().await;
}
