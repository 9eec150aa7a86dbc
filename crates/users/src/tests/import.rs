//! Importing customers: all or nothing, an email known skipped (also across racing
//! imports), no password, one event for the batch; in process and over HTTP alike.

use std::sync::Arc;

use herald_events::{Event, Role, UserRegistered, UsersImported};
use herald_platform::ErrorCode;
use herald_platform::backend_tests;
use herald_platform::testing::{BackendSet, outbox_events, serve_on_loopback};
use uuid::Uuid;

use super::TestService;
use crate::accounts::{AccountsApi, AccountsOverHttp, LoginRequest, RegisterRequest};
use crate::domain::PreferencesPatch;
use crate::import::{ImportOutcome, ImportRequest, ImportRow};

backend_tests!(
    an_import_takes_all_rows_or_none_and_skips_known_emails,
    racing_imports_of_overlapping_lists_create_each_customer_once
);

fn row(name: &str, email: &str) -> ImportRow {
    ImportRow {
        name: name.to_owned(),
        email: email.to_owned(),
        preferences: None,
    }
}

/// The `user.imported` events in the outbox, oldest first.
async fn imports(s: &TestService) -> Vec<UsersImported> {
    outbox_events(&s.db)
        .await
        .into_iter()
        .filter(|e| e.event_type == UsersImported::TYPE)
        .map(|e| e.payload::<UsersImported>().unwrap())
        .collect()
}

async fn an_import_takes_all_rows_or_none_and_skips_known_emails(set: BackendSet) {
    let s = TestService::start_with(set, |_| {}).await;
    let admin = s.claims(Uuid::now_v7(), Role::Admin);
    let customer = s.claims(Uuid::now_v7(), Role::Customer);
    let http: Arc<dyn AccountsApi> = Arc::new(AccountsOverHttp::new(
        serve_on_loopback(s.router.clone(), &s.service_key, "gateway", "users").await,
    ));
    let here: Arc<dyn AccountsApi> = Arc::new(s.accounts.clone());
    s.accounts
        .register(&RegisterRequest {
            name: "Known".to_owned(),
            email: "known@example.com".to_owned(),
            password: "correct horse".to_owned(),
            client: None,
        })
        .await
        .unwrap();

    for (how, accounts) in [("in process", &here), ("over HTTP", &http)] {
        let tag = if how == "in process" { "a" } else { "b" };
        // A customer may not import.
        let refused = accounts
            .import_users(&customer, &ImportRequest::default())
            .await
            .unwrap_err();
        assert_eq!(refused.code(), ErrorCode::Forbidden, "{how}");

        // One bad row: nothing is created, and every bad row is named.
        let mut request = ImportRequest {
            users: vec![
                row("Ada", &format!("ada-{tag}@example.com")),
                row("Bob", "bob at example"),
                row("Cy", &format!("cy-{tag}@example.com")),
                row(&"x".repeat(500), &format!("dan-{tag}@example.com")),
            ],
        };
        let refused = accounts.import_users(&admin, &request).await.unwrap_err();
        assert_eq!(refused.code(), ErrorCode::BadUserInput, "{how}: {refused}");
        let rows = refused.body().rows.expect("the rows named");
        assert_eq!(
            rows.iter().map(|r| r.index).collect::<Vec<_>>(),
            [1, 3],
            "{how}"
        );
        assert!(refused.to_string().contains("users[1]"), "{how}: {refused}");

        // Fixed: created, with their preferences; a known email and a repeat skipped.
        request.users[1] = row("Bob", &format!("bob-{tag}@example.com"));
        request.users[3] = row("Dan", "KNOWN@example.com");
        request.users[0].preferences = Some(PreferencesPatch {
            promotions: Some(false),
            categories: Some(vec!["Coffee".to_owned()]),
            timezone: Some("Europe/Berlin".to_owned()),
            ..PreferencesPatch::default()
        });
        request
            .users
            .push(row("Ada twice", &format!("ADA-{tag}@example.com")));
        let outcome = accounts.import_users(&admin, &request).await.unwrap();
        assert_eq!(
            outcome,
            ImportOutcome {
                created: 3,
                skipped: 2
            },
            "{how}"
        );
        let again = accounts.import_users(&admin, &request).await.unwrap();
        assert_eq!(
            again,
            ImportOutcome {
                created: 0,
                skipped: 5
            },
            "{how}"
        );

        // No password: nobody signs in, whatever they try.
        for password in ["", "correct horse", "x"] {
            let refused = accounts
                .login(&LoginRequest {
                    email: format!("ada-{tag}@example.com"),
                    password: password.to_owned(),
                    client: None,
                })
                .await
                .unwrap_err();
            assert_eq!(refused.code(), ErrorCode::Unauthenticated, "{how}");
        }
    }

    // One event per import that created someone, carrying the batch as registered.
    let batches = imports(&s).await;
    assert_eq!(batches.len(), 2);
    let ada: &UserRegistered = batches[0]
        .users
        .iter()
        .find(|u| u.email == "ada-a@example.com")
        .unwrap();
    assert_eq!(ada.role, Role::Customer);
    assert!(!ada.preferences.promotions);
    assert_eq!(ada.preferences.categories, ["coffee"]);
    assert_eq!(ada.preferences.timezone, "Europe/Berlin");
    assert_eq!(ada.preferences_version, 1);
    assert_eq!(batches[0].users.len(), 3);
    let cy = s
        .accounts
        .user(&admin, batches[0].users[2].user_id)
        .await
        .unwrap();
    assert_eq!(cy.email, "cy-a@example.com");
    assert!(cy.preferences.promotions, "defaults when none are given");
    s.finish().await;
}

async fn racing_imports_of_overlapping_lists_create_each_customer_once(set: BackendSet) {
    let s = TestService::start_with(set, |_| {}).await;
    let admin = s.claims(Uuid::now_v7(), Role::Admin);
    let list = |from: usize, to: usize| ImportRequest {
        users: (from..to)
            .map(|i| row(&format!("Customer {i}"), &format!("c{i}@example.com")))
            .collect(),
    };
    let (first, second) = (list(0, 600), list(300, 900));
    let (a, b) = tokio::join!(
        s.accounts.import_users(&admin, &first),
        s.accounts.import_users(&admin, &second)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.created + b.created, 900, "{a:?} {b:?}");
    assert_eq!(a.skipped + b.skipped, 300, "{a:?} {b:?}");
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
        .fetch_one(s.db.pool())
        .await
        .unwrap();
    assert_eq!(count, 900);
    let announced: usize = imports(&s)
        .await
        .iter()
        .map(|batch| batch.users.len())
        .sum();
    assert_eq!(announced, 900, "each created customer announced once");
    s.finish().await;
}
