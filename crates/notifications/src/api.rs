//! The notifications service's HTTP API. Every route acts for the caller of the token.

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRef, Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use herald_platform::auth::{Caller, TokenVerifier};
use herald_platform::db::Database;
use herald_platform::paging::{PageInfo, take_page};
use herald_platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::Clock;
use crate::domain::PageRequest;
use crate::store::{self, Notification};
use crate::unread::UnreadCounts;

#[derive(Clone)]
pub struct NotificationsState {
    pub db: Database,
    pub unread: UnreadCounts,
    pub verifier: TokenVerifier,
    pub clock: Clock,
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
        .route("/notifications/read-all", post(mark_all_read))
        .route("/notifications/{id}/read", post(mark_read))
        .with_state(state)
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    pub first: Option<i64>,
    pub after: Option<String>,
    pub unread_only: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationPage {
    pub nodes: Vec<Notification>,
    pub page_info: PageInfo,
    pub total_count: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadCount {
    pub count: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadAll {
    pub changed: u64,
}

async fn list_notifications(
    State(state): State<NotificationsState>,
    Caller(claims): Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<NotificationPage>> {
    let Query(query) = query.map_err(|e| ApiError::bad_input(e.body_text()))?;
    let page = PageRequest::parse(
        query.first,
        query.after.as_deref(),
        query.unread_only.unwrap_or(false),
    )?;
    let now = state.clock.now();
    let mut tx = store::begin_snapshot(&state.db).await?;
    let rows = store::list_notifications(&mut tx, claims.sub, &page, now).await?;
    let total_count =
        store::count_notifications(&mut *tx, claims.sub, page.unread_only, now).await?;
    tx.commit().await?;
    let (nodes, page_info) = take_page(rows, page.first, |n| n.id);
    Ok(Json(NotificationPage {
        nodes,
        page_info,
        total_count,
    }))
}

async fn unread_count(
    State(state): State<NotificationsState>,
    Caller(claims): Caller,
) -> ApiResult<Json<UnreadCount>> {
    let count = state.unread.get(&state.db, claims.sub).await?;
    Ok(Json(UnreadCount { count }))
}

async fn mark_read(
    State(state): State<NotificationsState>,
    Caller(claims): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Notification>> {
    let not_found = || ApiError::not_found(format!("no notification {id}"));
    // A malformed id names no notification of the caller's, like another user's id.
    let Ok(notification_id) = id.parse::<Uuid>() else {
        return Err(not_found());
    };
    let notification = store::mark_read(&state.db, claims.sub, notification_id, state.clock.now())
        .await?
        .ok_or_else(not_found)?;
    state.unread.changed(claims.sub).await;
    Ok(Json(notification))
}

async fn mark_all_read(
    State(state): State<NotificationsState>,
    Caller(claims): Caller,
) -> ApiResult<Json<ReadAll>> {
    let changed = store::mark_all_read(&state.db, claims.sub, state.clock.now()).await?;
    if changed > 0 {
        state.unread.changed(claims.sub).await;
    }
    Ok(Json(ReadAll { changed }))
}
