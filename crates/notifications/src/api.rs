//! The notifications service's HTTP API, for Herald's services: every route acts for the
//! user of the service credential, through the same [`Inbox`] other services in this
//! process call directly.

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRef, Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use herald_platform::auth::{Caller, TokenVerifier};
use herald_platform::{ApiError, ApiResult};
use uuid::Uuid;

use crate::inbox::{
    Inbox, InboxApi, InboxVersion, ListQuery, NotificationPage, ReadAll, Unchanged, UnreadCount,
    no_notification,
};
use crate::store::Notification;

#[derive(Clone)]
pub struct NotificationsState {
    pub inbox: Inbox,
    pub verifier: TokenVerifier,
}

impl FromRef<NotificationsState> for TokenVerifier {
    fn from_ref(state: &NotificationsState) -> TokenVerifier {
        state.verifier.clone()
    }
}

pub fn router(state: NotificationsState) -> Router {
    Router::new()
        .route("/notifications", get(list_notifications))
        .route("/notifications/unread-count", get(unread_count))
        .route("/notifications/unchanged-since", post(unchanged_since))
        .route("/notifications/read-all", post(mark_all_read))
        .route("/notifications/{id}/read", post(mark_read))
        .with_state(state)
}

async fn list_notifications(
    State(state): State<NotificationsState>,
    Caller(claims): Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<NotificationPage>> {
    let Query(query) = query.map_err(|e| ApiError::bad_input(e.body_text()))?;
    Ok(Json(state.inbox.list(&claims, &query).await?))
}

async fn unread_count(
    State(state): State<NotificationsState>,
    Caller(claims): Caller,
) -> ApiResult<Json<UnreadCount>> {
    Ok(Json(state.inbox.unread_count(&claims).await?))
}

async fn unchanged_since(
    State(state): State<NotificationsState>,
    Caller(claims): Caller,
    version: Result<Json<InboxVersion>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<Json<Unchanged>> {
    let Json(version) = version.map_err(|e| ApiError::bad_input(e.body_text()))?;
    let unchanged = state.inbox.unchanged_since(&claims, &version).await?;
    Ok(Json(Unchanged { unchanged }))
}

async fn mark_read(
    State(state): State<NotificationsState>,
    Caller(claims): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Notification>> {
    // A malformed id names no notification of the caller's, like another user's id.
    let Ok(notification_id) = id.parse::<Uuid>() else {
        return Err(no_notification(id));
    };
    Ok(Json(state.inbox.mark_read(&claims, notification_id).await?))
}

async fn mark_all_read(
    State(state): State<NotificationsState>,
    Caller(claims): Caller,
) -> ApiResult<Json<ReadAll>> {
    let changed = state.inbox.mark_all_read(&claims).await?;
    Ok(Json(ReadAll { changed }))
}
