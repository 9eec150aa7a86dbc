//! Password resets: a link for existing accounts only (the answer the same either way),
//! single use, an hour, superseded by a newer one; the new password signs in and every
//! earlier token stops working; requests limited per address and client. In process and
//! over HTTP alike.

use std::sync::Arc;
use std::time::Duration;

use herald_events::{Event, PasswordChanged, PasswordResetRequested, Role};
use herald_platform::ErrorCode;
use herald_platform::backend_tests;
use herald_platform::testing::{BackendSet, outbox_events, serve_on_loopback};

use super::TestService;
use crate::accounts::{AccountsApi, AccountsOverHttp, LoginRequest, RegisterRequest};
use crate::resets::{NewPassword, ResetRequest};

backend_tests!(a_reset_link_works_once_for_its_newest_request_and_signs_out_the_rest);

/// The reset links announced for `email`'s account so far, oldest first.
async fn links(s: &TestService, user: uuid::Uuid) -> Vec<String> {
    outbox_events(&s.db)
        .await
        .into_iter()
        .filter(|e| e.event_type == PasswordResetRequested::TYPE)
        .map(|e| e.payload::<PasswordResetRequested>().unwrap())
        .filter(|r| r.user_id == user)
        .map(|r| r.link)
        .collect()
}

/// Waits for the `n`th link of the user (requests are handled after their answer).
async fn nth_link(s: &TestService, user: uuid::Uuid, n: usize) -> String {
    for _ in 0..200 {
        if let Some(link) = links(s, user).await.get(n - 1) {
            return link.clone();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no reset link number {n}");
}

fn token_of(link: &str) -> String {
    link.split_once("token=").unwrap().1.to_owned()
}

fn request(email: &str, client: &str) -> ResetRequest {
    ResetRequest {
        email: email.to_owned(),
        client: Some(client.to_owned()),
    }
}

fn new_password(token: &str, password: &str, client: &str) -> NewPassword {
    NewPassword {
        token: token.to_owned(),
        password: password.to_owned(),
        client: Some(client.to_owned()),
    }
}

async fn a_reset_link_works_once_for_its_newest_request_and_signs_out_the_rest(set: BackendSet) {
    let s = TestService::start_with(set, |_| {}).await;
    let http: Arc<dyn AccountsApi> = Arc::new(AccountsOverHttp::new(
        serve_on_loopback(s.router.clone(), &s.service_key, "gateway", "users").await,
    ));
    let here: Arc<dyn AccountsApi> = Arc::new(s.accounts.clone());
    for (i, (how, accounts)) in [("in process", &here), ("over HTTP", &http)]
        .into_iter()
        .enumerate()
    {
        let email = format!("ada{i}@example.com");
        let client = format!("10.0.1.{i}");
        let ada = accounts
            .register(&RegisterRequest {
                name: "Ada".to_owned(),
                email: email.clone(),
                password: "correct horse".to_owned(),
                client: None,
            })
            .await
            .unwrap();
        let old_version = s.verify(&ada.token).ver;

        // Unknown and known addresses answer alike; only the known one gets a link.
        accounts
            .request_password_reset(&request(&format!("nobody{i}@example.com"), &client))
            .await
            .unwrap();
        accounts
            .request_password_reset(&request(&email, &client))
            .await
            .unwrap();
        let first = nth_link(&s, ada.user.id, 1).await;
        assert!(
            first.starts_with(&format!("{}/reset-password?token=", s.public_url())),
            "{first}"
        );
        let bad = accounts
            .request_password_reset(&request("not an address", &client))
            .await
            .unwrap_err();
        assert_eq!(bad.code(), ErrorCode::BadUserInput, "{how}");

        // A newer request supersedes the first link.
        accounts
            .request_password_reset(&request(&email, &client))
            .await
            .unwrap();
        let second = nth_link(&s, ada.user.id, 2).await;
        for refused in [
            new_password(&token_of(&first), "a new long password", &client),
            new_password(
                &format!("{}x", token_of(&second)),
                "a new long password",
                &client,
            ),
            new_password("", "a new long password", &client),
        ] {
            let error = accounts.reset_password(&refused).await.unwrap_err();
            assert_eq!(error.code(), ErrorCode::BadUserInput, "{how}: {error}");
        }
        let short = accounts
            .reset_password(&new_password(&token_of(&second), "short", &client))
            .await
            .unwrap_err();
        assert_eq!(short.code(), ErrorCode::BadUserInput, "{how}");

        // Used: signed in with the new password, the old one and old tokens refused.
        let reset = accounts
            .reset_password(&new_password(
                &token_of(&second),
                "a new long password",
                &client,
            ))
            .await
            .unwrap();
        assert_eq!(reset.user.id, ada.user.id);
        assert!(
            s.verify(&reset.token).ver > old_version,
            "{how}: a new token version"
        );
        let again = accounts
            .reset_password(&new_password(
                &token_of(&second),
                "another long password",
                &client,
            ))
            .await
            .unwrap_err();
        assert_eq!(again.code(), ErrorCode::BadUserInput, "{how}: used once");
        let refreshed = accounts.refresh(&ada.refresh_token).await.unwrap_err();
        assert_eq!(refreshed.code(), ErrorCode::Unauthenticated, "{how}");
        let login = |password: &str| LoginRequest {
            email: email.clone(),
            password: password.to_owned(),
            client: Some(client.clone()),
        };
        assert!(
            accounts.login(&login("a new long password")).await.is_ok(),
            "{how}"
        );
        assert_eq!(
            accounts
                .login(&login("correct horse"))
                .await
                .unwrap_err()
                .code(),
            ErrorCode::Unauthenticated
        );
        let changed = outbox_events(&s.db)
            .await
            .into_iter()
            .filter(|e| e.event_type == PasswordChanged::TYPE)
            .filter(|e| e.payload::<PasswordChanged>().unwrap().user_id == ada.user.id)
            .count();
        assert_eq!(changed, 1, "{how}: its owner is told once");
        assert_eq!(
            s.accounts
                .user(&s.claims(ada.user.id, Role::Admin), ada.user.id)
                .await
                .unwrap()
                .token_version,
            s.verify(&reset.token).ver
        );
    }

    // An expired link is refused.
    let email = "late@example.com";
    let late = s
        .accounts
        .register(&RegisterRequest {
            name: "Late".to_owned(),
            email: email.to_owned(),
            password: "correct horse".to_owned(),
            client: None,
        })
        .await
        .unwrap();
    s.accounts
        .request_password_reset(&request(email, "10.0.2.1"))
        .await
        .unwrap();
    let link = nth_link(&s, late.user.id, 1).await;
    sqlx::query("UPDATE password_resets SET expires_at = 0")
        .execute(s.db.pool())
        .await
        .unwrap();
    let expired = s
        .accounts
        .reset_password(&new_password(
            &token_of(&link),
            "a new long password",
            "10.0.2.1",
        ))
        .await
        .unwrap_err();
    assert_eq!(expired.code(), ErrorCode::BadUserInput);

    // Limited per address (3 an hour), whatever the client.
    let mut refused = None;
    for attempt in 0..5 {
        let client = format!("10.0.3.{attempt}");
        if let Err(e) = s
            .accounts
            .request_password_reset(&request(email, &client))
            .await
        {
            refused = Some((attempt, e));
            break;
        }
    }
    let (attempt, error) = refused.expect("the address is limited");
    assert_eq!(error.code(), ErrorCode::RateLimited);
    assert_eq!(attempt, 2, "1 request before, 2 more pass");

    // And per client (10 an hour), whatever the addresses, known or not.
    for n in 0..10 {
        s.accounts
            .request_password_reset(&request(&format!("who{n}@example.com"), "10.0.6.1"))
            .await
            .unwrap();
    }
    let refused = s
        .accounts
        .request_password_reset(&request("who10@example.com", "10.0.6.1"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::RateLimited);
    s.finish().await;
}
