//! The users service's HTTP API.

use std::sync::{Arc, OnceLock};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{FromRef, Path, State};
use axum::response::Response;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use herald_events::{Envelope, Role, SignInFailures, UserRegistered};
use herald_platform::auth::{Caller, KeySet, ServiceCall, TokenVerifier};
use herald_platform::db::Database;
use herald_platform::http::created;
use herald_platform::outbox::Outbox;
use herald_platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::SERVICE;
use crate::domain::{Email, Password, PreferencesPatch, UserName};
use crate::sessions::{AuthPayload, Sessions};
use crate::store::{self, InsertError, NewUser, User};
use crate::throttle::{SIGN_IN_WINDOW, Throttles};

#[derive(Clone)]
pub struct UsersState {
    pub db: Database,
    pub outbox: Outbox,
    pub sessions: Sessions,
    pub key_set: Arc<KeySet>,
    pub verifier: TokenVerifier,
    pub throttles: Throttles,
}

impl FromRef<UsersState> for TokenVerifier {
    fn from_ref(state: &UsersState) -> TokenVerifier {
        state.verifier.clone()
    }
}

pub fn router(state: UsersState) -> Router {
    Router::new()
        .route("/users", post(register))
        .route("/sessions", post(login))
        .route("/sessions/refresh", post(refresh))
        .route("/users/{id}/token-version", get(token_version))
        .route("/users/me", get(me))
        .route("/users/me/preferences", patch(update_preferences))
        .route("/users/{id}", get(user_by_id))
        .route("/keys", get(keys))
        .with_state(state)
}

#[derive(Debug, Deserialize)]
pub struct RegisterRequest {
    pub name: String,
    pub email: String,
    pub password: String,
    /// The address the request came from, as the gateway saw it (registrations are
    /// limited per client).
    #[serde(default)]
    pub client: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// The address the request came from, as the gateway saw it (failures are counted per
    /// account and client).
    #[serde(default)]
    pub client: Option<String>,
}

async fn register(
    State(state): State<UsersState>,
    _call: ServiceCall,
    Json(req): Json<RegisterRequest>,
) -> ApiResult<Response> {
    state
        .throttles
        .registration_attempt(req.client.as_deref())
        .await?;
    let name = UserName::parse(&req.name)?;
    let email = Email::parse(&req.email)?;
    let password = Password::parse(&req.password)?;
    let user = create_user(&state, &name, &email, &password, Role::Customer).await?;
    metrics::counter!("users_registered_total").increment(1);
    Ok(created(state.sessions.start(user).await?))
}

/// Creates an account and its `user.registered` event in one transaction.
pub(crate) async fn create_user(
    state: &UsersState,
    name: &UserName,
    email: &Email,
    password: &Password,
    role: Role,
) -> ApiResult<User> {
    let hash = hash_password(password).await?;
    let mut tx = state.db.begin().await?;
    let new = NewUser {
        id: Uuid::now_v7(),
        name: name.as_str(),
        email: email.as_str(),
        password_hash: &hash,
        role,
    };
    let user = match store::insert_user(&mut tx, &new).await {
        Ok(user) => user,
        Err(InsertError::EmailTaken) => {
            return Err(ApiError::conflict(format!(
                "{} is already registered",
                email.as_str()
            )));
        }
        Err(InsertError::Db(e)) => return Err(e.into()),
    };
    let event = UserRegistered {
        user_id: user.id,
        name: user.name.clone(),
        email: user.email.clone(),
        role: user.role,
        preferences: user.preferences.clone(),
        preferences_version: user.preferences_version,
    };
    state
        .outbox
        .add(
            &mut tx,
            &Envelope::new(SERVICE, Some(user.id.to_string()), &event),
        )
        .await?;
    state.outbox.commit(tx).await?;
    Ok(user)
}

async fn login(
    State(state): State<UsersState>,
    _call: ServiceCall,
    Json(req): Json<LoginRequest>,
) -> ApiResult<Json<AuthPayload>> {
    let wrong = || ApiError::unauthenticated("wrong email or password");
    let Ok(email) = Email::parse(&req.email) else {
        return Err(wrong());
    };
    let client = req.client.as_deref();
    state.throttles.sign_in_attempt(&email, client).await?;
    let found = store::find_credentials(&state.db, email.as_str()).await?;
    // Verify against a dummy hash when the account is unknown, so timing does not tell.
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), hash),
        None => (None, dummy_hash().to_owned()),
    };
    let ok = verify_password(req.password, hash).await?;
    if !ok {
        metrics::counter!("users_login_failures_total").increment(1);
    }
    match user {
        Some(user) if ok => {
            state.throttles.signed_in(&email, client).await;
            Ok(Json(state.sessions.start(user).await?))
        }
        Some(user) => {
            if let Some(failures) = state.throttles.failed(user.id).await {
                tell_owner(&state, user.id, failures, client).await?;
            }
            Err(wrong())
        }
        None => Err(wrong()),
    }
}

/// `user.sign_in_failures`, so the account's owner hears of them.
async fn tell_owner(
    state: &UsersState,
    user_id: Uuid,
    failures: u32,
    client: Option<&str>,
) -> ApiResult<()> {
    let event = SignInFailures {
        user_id,
        failures,
        window_minutes: u32::try_from(SIGN_IN_WINDOW.as_secs() / 60).unwrap_or(u32::MAX),
        client: client.map(str::to_owned),
    };
    let mut tx = state.db.begin().await?;
    state
        .outbox
        .add(
            &mut tx,
            &Envelope::new(SERVICE, Some(user_id.to_string()), &event),
        )
        .await?;
    state.outbox.commit(tx).await?;
    Ok(())
}

async fn me(State(state): State<UsersState>, Caller(claims): Caller) -> ApiResult<Json<User>> {
    let user = store::find_user(&state.db, claims.sub).await?;
    user.map(Json)
        .ok_or_else(|| ApiError::unauthenticated("the account of this token no longer exists"))
}

async fn user_by_id(
    State(state): State<UsersState>,
    Caller(claims): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<User>> {
    let id: Uuid = id
        .parse()
        .map_err(|_| ApiError::bad_input(format!("'{id}' is not a user id")))?;
    if id != claims.sub && !claims.is_admin() {
        return Err(ApiError::forbidden("only admins can read other users"));
    }
    let user = store::find_user(&state.db, id).await?;
    user.map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no user {id}")))
}

async fn update_preferences(
    State(state): State<UsersState>,
    Caller(claims): Caller,
    Json(patch): Json<PreferencesPatch>,
) -> ApiResult<Json<User>> {
    let mut tx = state.db.begin().await?;
    let user = crate::preferences::change(&mut tx, &state.db, &state.outbox, claims.sub, patch)
        .await?
        .ok_or_else(|| ApiError::unauthenticated("the account of this token no longer exists"))?;
    state.outbox.commit(tx).await?;
    Ok(Json(user))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// A refresh token for a new pair (each is good once).
async fn refresh(
    State(state): State<UsersState>,
    _call: ServiceCall,
    body: Result<Json<RefreshRequest>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<AuthPayload>> {
    let Json(request) = body.map_err(|e| ApiError::bad_input(e.body_text()))?;
    Ok(Json(state.sessions.refresh(&request.refresh_token).await?))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TokenVersion {
    pub version: i64,
}

/// The version of an account's credentials, for the gateway to check tokens by; NOT_FOUND
/// when the account does not exist (any more).
async fn token_version(
    State(state): State<UsersState>,
    call: ServiceCall,
    Path(id): Path<String>,
) -> ApiResult<Json<TokenVersion>> {
    call.only_from(&["gateway"])?;
    let id: Uuid = id
        .parse()
        .map_err(|_| ApiError::bad_input(format!("'{id}' is not a user id")))?;
    store::token_version(&state.db, id)
        .await?
        .map(|version| Json(TokenVersion { version }))
        .ok_or_else(|| ApiError::not_found(format!("no user {id}")))
}

async fn keys(State(state): State<UsersState>) -> Json<KeySet> {
    Json(state.key_set.as_ref().clone())
}

/// Runs Argon2id work off the async worker threads, at most two per core at once: each
/// takes ~19 MiB and tens of milliseconds of CPU, so a flood of sign-ins waits its turn
/// instead of taking every blocking thread and gigabytes with them.
async fn argon2<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
    static SLOTS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
    let slots = SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores * 2)
    });
    let _slot = slots
        .acquire()
        .await
        .map_err(|e| anyhow::anyhow!("password hashing closed: {e}"))?;
    Ok(tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| anyhow::anyhow!("password hashing task failed: {e}"))?)
}

async fn hash_password(password: &Password) -> ApiResult<String> {
    let password = password.expose().to_owned();
    let hash = argon2(move || {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await?
    .map_err(|e| anyhow::anyhow!("hashing password: {e}"))?;
    Ok(hash)
}

async fn verify_password(password: String, hash: String) -> ApiResult<bool> {
    argon2(move || {
        PasswordHash::new(&hash)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::default()
            .hash_password(b"not a real password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}
