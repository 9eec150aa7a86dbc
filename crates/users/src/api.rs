//! The users service's HTTP API, for Herald's services: every route but `/keys` serves
//! [`Accounts`], which other services in this process call directly.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRef, Path, State};
use axum::response::Response;
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use herald_platform::auth::{Caller, KeySet, ServiceCall, TokenVerifier};
use herald_platform::http::created;
use herald_platform::{ApiError, ApiResult};
use uuid::Uuid;

use crate::accounts::{
    Accepted, Accounts, AccountsApi, LoginRequest, RefreshRequest, RegisterRequest, TokenVersion,
    no_user,
};
use crate::domain::PreferencesPatch;
use crate::import::{ImportOutcome, ImportRequest};
use crate::resets::{NewPassword, ResetRequest};
use crate::sessions::AuthPayload;
use crate::store::User;

#[derive(Clone)]
pub struct UsersState {
    pub accounts: Accounts,
    pub key_set: Arc<KeySet>,
    pub verifier: TokenVerifier,
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
        .route("/password-resets", post(request_password_reset))
        .route("/password-resets/redeem", post(reset_password))
        .route("/users/{id}/token-version", get(token_version))
        .route("/users/import", post(import_users))
        .route("/users/me", get(me))
        .route("/users/me/preferences", patch(update_preferences))
        .route("/users/{id}", get(user_by_id))
        .route("/keys", get(keys))
        .with_state(state)
}

async fn register(
    State(state): State<UsersState>,
    _call: ServiceCall,
    Json(request): Json<RegisterRequest>,
) -> ApiResult<Response> {
    Ok(created(state.accounts.register(&request).await?))
}

async fn login(
    State(state): State<UsersState>,
    _call: ServiceCall,
    Json(request): Json<LoginRequest>,
) -> ApiResult<Json<AuthPayload>> {
    Ok(Json(state.accounts.login(&request).await?))
}

async fn me(State(state): State<UsersState>, Caller(claims): Caller) -> ApiResult<Json<User>> {
    Ok(Json(state.accounts.me(&claims).await?))
}

async fn user_by_id(
    State(state): State<UsersState>,
    Caller(claims): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<User>> {
    let id = parse_user_id(&id)?;
    Ok(Json(state.accounts.user(&claims, id).await?))
}

async fn update_preferences(
    State(state): State<UsersState>,
    Caller(claims): Caller,
    Json(patch): Json<PreferencesPatch>,
) -> ApiResult<Json<User>> {
    Ok(Json(
        state.accounts.update_preferences(&claims, &patch).await?,
    ))
}

/// Customers brought in by an admin (the acting user of the service credential).
async fn import_users(
    State(state): State<UsersState>,
    Caller(claims): Caller,
    body: Result<Json<ImportRequest>, JsonRejection>,
) -> ApiResult<Json<ImportOutcome>> {
    let Json(request) = body.map_err(|e| ApiError::bad_input(e.body_text()))?;
    Ok(Json(state.accounts.import_users(&claims, &request).await?))
}

/// A reset link asked for (accepted whether or not the account exists).
async fn request_password_reset(
    State(state): State<UsersState>,
    _call: ServiceCall,
    body: Result<Json<ResetRequest>, JsonRejection>,
) -> ApiResult<Json<Accepted>> {
    let Json(request) = body.map_err(|e| ApiError::bad_input(e.body_text()))?;
    state.accounts.request_password_reset(&request).await?;
    Ok(Json(Accepted { accepted: true }))
}

/// A reset link used: the new password set, and a new session.
async fn reset_password(
    State(state): State<UsersState>,
    _call: ServiceCall,
    body: Result<Json<NewPassword>, JsonRejection>,
) -> ApiResult<Json<AuthPayload>> {
    let Json(request) = body.map_err(|e| ApiError::bad_input(e.body_text()))?;
    Ok(Json(state.accounts.reset_password(&request).await?))
}

/// A refresh token for a new pair (each is good once).
async fn refresh(
    State(state): State<UsersState>,
    _call: ServiceCall,
    body: Result<Json<RefreshRequest>, JsonRejection>,
) -> ApiResult<Json<AuthPayload>> {
    let Json(request) = body.map_err(|e| ApiError::bad_input(e.body_text()))?;
    Ok(Json(state.accounts.refresh(&request.refresh_token).await?))
}

/// The version of an account's credentials; NOT_FOUND when the account does not exist
/// (any more). Only the gateway, which checks tokens by it, may ask across processes.
async fn token_version(
    State(state): State<UsersState>,
    call: ServiceCall,
    Path(id): Path<String>,
) -> ApiResult<Json<TokenVersion>> {
    call.only_from(&["gateway"])?;
    let id = parse_user_id(&id)?;
    state
        .accounts
        .token_version(id)
        .await?
        .map(|version| Json(TokenVersion { version }))
        .ok_or_else(|| no_user(id))
}

fn parse_user_id(id: &str) -> ApiResult<Uuid> {
    id.parse()
        .map_err(|_| ApiError::bad_input(format!("'{id}' is not a user id")))
}

async fn keys(State(state): State<UsersState>) -> Json<KeySet> {
    Json(state.key_set.as_ref().clone())
}
