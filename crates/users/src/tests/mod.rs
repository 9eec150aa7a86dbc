//! Tests over real storage and cache, on every backend set.

#![allow(clippy::unwrap_used)]

mod accounts;
mod import;
mod resets;
mod sessions;

/// Every module's tests, for the harness.
pub const CASES: &[&[herald_platform::testing::harness::Case]] = &[
    crate::store::tests::CASES,
    accounts::CASES,
    import::CASES,
    resets::CASES,
    sessions::CASES,
];

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use herald_events::Role;
use herald_platform::Settings;
use herald_platform::auth::{Claims, KeySet, ServiceKey, SigningKey, TokenVerifier};
use herald_platform::cache::Cache;
use herald_platform::db::Database;
use herald_platform::http::{Readiness, service_router};
use herald_platform::outbox::Outbox;
use herald_platform::testing::{BackendSet, drop_schema, isolated_settings, migrated_database};
use uuid::Uuid;

use crate::accounts::Accounts;
use crate::api::UsersState;
use crate::sessions::Sessions;
use crate::throttle::Throttles;
use crate::{SERVICE, migrations};

/// One users service on fresh storage and cache, without the bus (the outbox is read, not
/// relayed): its accounts and its routes.
pub(crate) struct TestService {
    pub db: Database,
    pub accounts: Accounts,
    pub router: Router,
    pub service_key: ServiceKey,
    signing_key: Arc<SigningKey>,
    verifier: TokenVerifier,
    public_url: String,
    _dir: tempfile::TempDir,
}

impl TestService {
    /// A service whose settings `configure` changed first.
    pub async fn start_with(set: BackendSet, configure: impl FnOnce(&mut Settings)) -> TestService {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = isolated_settings(set, dir.path());
        configure(&mut settings);
        let db = migrated_database(&settings, SERVICE, &migrations()).await;
        let cache = Cache::connect(&settings).await.unwrap();
        let signing_key = Arc::new(SigningKey::generate().unwrap());
        let key_set = KeySet {
            keys: vec![signing_key.public_key().clone()],
        };
        let service_key = ServiceKey::generate();
        let verifier = TokenVerifier::new(&key_set.keys)
            .unwrap()
            .for_service(&service_key, SERVICE);
        let sessions = Sessions::new(
            db.clone(),
            signing_key.clone(),
            Duration::from_secs(settings.token_ttl_secs),
            Duration::from_secs(settings.refresh_token_ttl_secs),
        );
        let accounts = Accounts::new(
            db.clone(),
            Outbox::new(db.clone()),
            sessions,
            Throttles::new(&settings, cache),
            &settings.public_url,
        );
        let state = UsersState {
            accounts: accounts.clone(),
            key_set: Arc::new(key_set),
            verifier: verifier.clone(),
        };
        let router = service_router(SERVICE, crate::api::router(state), Readiness::default());
        TestService {
            db,
            accounts,
            router,
            service_key,
            signing_key,
            verifier,
            public_url: settings.public_url.trim_end_matches('/').to_owned(),
            _dir: dir,
        }
    }

    /// The verified claims of a fresh token for `user` in `role`, as the gateway hands
    /// them on.
    pub fn claims(&self, user: Uuid, role: Role) -> Claims {
        self.verify(
            &self
                .signing_key
                .issue(user, role, 1, Duration::from_secs(600))
                .unwrap(),
        )
    }

    /// The claims of an access token the service issued.
    pub fn verify(&self, token: &str) -> Claims {
        self.verifier.verify(token).unwrap()
    }

    /// Where reset links point (HERALD_PUBLIC_URL).
    pub fn public_url(&self) -> String {
        self.public_url.clone()
    }

    /// Drops the test's PostgreSQL schema.
    pub async fn finish(self) {
        drop_schema(&self.db).await;
    }
}
