//! The users service: accounts, password hashes, roles, notification preferences and
//! token issuing. It alone holds the signing key; it publishes `user.registered` and
//! `user.preferences_updated` through its outbox.

pub mod accounts;
pub mod api;
pub mod consumer;
pub mod domain;
pub mod import;
mod passwords;
pub mod preferences;
pub mod resets;
pub mod sessions;
pub mod store;
pub mod throttle;

/// The tests over real storage, each on the embedded backends and on the real servers;
/// `tests/backends.rs` runs them (the `backend-tests` feature).
#[cfg(all(feature = "backend-tests", not(test)))]
pub mod tests;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use herald_events::Role;
use herald_platform::Settings;
use herald_platform::auth::{KeySet, ServiceKey, SigningKey, TokenVerifier};
use herald_platform::bus::Bus;
use herald_platform::cache::Cache;
use herald_platform::db::{Database, Migrations};
use herald_platform::http::BuiltService;
use herald_platform::service::ServiceParts;
use herald_platform::telemetry::MetricDoc;
use tokio_util::sync::CancellationToken;

use crate::accounts::Accounts;
use crate::api::UsersState;
use crate::domain::{Email, Password, UserName};

pub const SERVICE: &str = "users";

/// The users service's metrics.
pub const METRICS: &[MetricDoc] = &[
    MetricDoc::counter("users_registered_total", "Accounts registered."),
    MetricDoc::counter("users_imported_total", "Customers created by imports."),
    MetricDoc::counter(
        "users_password_resets_throttled_total",
        "Password reset requests refused because their email or client asked too often.",
    ),
    MetricDoc::counter(
        "users_passwords_reset_total",
        "Passwords set through a reset link.",
    ),
    MetricDoc::counter(
        "users_login_failures_total",
        "Sign-ins with a wrong email or password.",
    ),
    MetricDoc::counter(
        "users_refresh_token_reuse_total",
        "Refresh tokens presented a second time (their family is revoked).",
    ),
    MetricDoc::counter(
        "users_sign_ins_throttled_total",
        "Sign-in attempts refused because their client must wait after failures.",
    ),
    MetricDoc::counter(
        "users_registrations_throttled_total",
        "Registrations refused because their client registered too many accounts.",
    ),
];

pub fn migrations() -> Migrations {
    Migrations {
        sqlite: sqlx::migrate!("./migrations/sqlite"),
        postgres: sqlx::migrate!("./migrations/postgres"),
    }
}

/// This service, as `herald` runs and looks after it.
pub const DESCRIPTOR: herald_platform::service::ServiceDescriptor =
    herald_platform::service::ServiceDescriptor {
        name: SERVICE,
        migrations: Some(migrations),
        metrics: METRICS,
    };

pub async fn connect_database(settings: &Settings) -> anyhow::Result<Database> {
    herald_platform::service::open_storage(settings, SERVICE, &migrations()).await
}

/// Builds the users service: storage, keys, the admin account, the outbox relay, the API.
pub async fn build(
    settings: &Settings,
    bus: &Bus,
    cache: &Cache,
    service_key: &ServiceKey,
    shutdown: CancellationToken,
) -> anyhow::Result<Started> {
    let mut parts = ServiceParts::open(&DESCRIPTOR, settings, bus, shutdown).await?;
    parts.needs_cache(cache);
    let db = parts.db.clone();
    let signing_key = match &settings.signing_key {
        Some(encoded) => SigningKey::from_base64(encoded).context("HERALD_SIGNING_KEY")?,
        None => load_or_create_signing_key(&db).await?,
    };
    let key_set = KeySet {
        keys: vec![signing_key.public_key().clone()],
    };
    let tokens = TokenVerifier::new(&key_set.keys)?;
    let verifier = tokens.for_service(service_key, SERVICE);
    let accounts = Accounts::new(
        db.clone(),
        parts.outbox.clone(),
        sessions::Sessions::new(
            db.clone(),
            Arc::new(signing_key),
            Duration::from_secs(settings.token_ttl_secs),
            Duration::from_secs(settings.refresh_token_ttl_secs),
        ),
        throttle::Throttles::new(settings, cache.clone()),
        &settings.public_url,
    );
    if let (Some(email), Some(password)) = (&settings.admin_email, &settings.admin_password) {
        ensure_admin(&db, &accounts, email, password).await?;
    }
    parts.consume(
        consumer::QUEUE,
        Arc::new(consumer::UsersConsumer {
            db,
            outbox: parts.outbox.clone(),
        }),
    );
    let state = UsersState {
        accounts: accounts.clone(),
        key_set: Arc::new(key_set),
        verifier,
    };
    Ok(Started {
        service: parts.finish(api::router(state.clone()), state.verifier.clone()),
        accounts,
        tokens,
    })
}

/// The users service, built: what to serve and run, and its accounts for the other
/// services of this process to call directly.
pub struct Started {
    pub service: BuiltService,
    pub accounts: Accounts,
    /// Checks the tokens this service signs, for the other services of this process (what
    /// a process without the users service fetches from `/keys`).
    pub tokens: TokenVerifier,
}

/// The oldest stored key signs; a new one is generated on first start. Replicas starting
/// at once each insert one and then all agree on the oldest.
async fn load_or_create_signing_key(db: &Database) -> anyhow::Result<SigningKey> {
    if store::signing_keys(db).await?.is_empty() {
        let key = SigningKey::generate()?;
        store::insert_signing_key(db, key.kid(), &STANDARD.encode(key.pkcs8())).await?;
    }
    let keys = store::signing_keys(db).await?;
    let (kid, pkcs8) = keys.first().context("no signing key after creating one")?;
    SigningKey::from_pkcs8(
        kid,
        &STANDARD
            .decode(pkcs8)
            .context("stored signing key is not base64")?,
    )
}

/// Makes sure the configured admin account exists; never creates a second one.
async fn ensure_admin(
    db: &Database,
    accounts: &Accounts,
    email: &str,
    password: &str,
) -> anyhow::Result<()> {
    let invalid = |setting: &str, e: herald_platform::ApiError| {
        anyhow::Error::new(herald_platform::config::ConfigError::new(
            setting,
            e.to_string(),
        ))
    };
    let email = Email::parse(email).map_err(|e| invalid("admin_email", e))?;
    let password = Password::parse(password).map_err(|e| invalid("admin_password", e))?;
    if store::find_credentials(db, email.as_str()).await?.is_some() {
        return Ok(());
    }
    let name = UserName::parse("Admin").map_err(|e| invalid("admin_email", e))?;
    match accounts
        .create_user(&name, &email, &password, Role::Admin)
        .await
    {
        Ok(user) => {
            tracing::info!(user_id = %user.id, email = email.as_str(), "created the admin account");
            Ok(())
        }
        // Another replica created it a moment ago.
        Err(e) if e.code() == herald_platform::ErrorCode::Conflict => Ok(()),
        Err(e) => Err(anyhow::anyhow!("creating the admin account: {e:#}")),
    }
}
