//! In-app notifications (the notifications service).

use async_graphql::{Context, ID, Object, Subscription};
use futures::{Stream, StreamExt};
use herald_platform::ErrorCode;
use serde::Deserialize;

use super::parse_uuid;
use crate::context::ContextExt;
use crate::error::{GqlResult, IntoGql, gql_error};
use crate::limits::list_cost;
use crate::live::{LiveHub, PER_USER};
use crate::types::*;

#[derive(Default)]
pub struct NotificationQuery;

#[derive(Deserialize)]
struct Count {
    count: i32,
}

#[derive(Deserialize)]
struct Changed {
    changed: i32,
}

#[Object]
impl NotificationQuery {
    /// The caller's notifications, newest first.
    #[graphql(complexity = "list_cost(first.unwrap_or(20), child_complexity)")]
    async fn get_notifications(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(20)")] first: Option<i32>,
        after: Option<String>,
        #[graphql(default_with = "Some(false)")] unread_only: Option<bool>,
    ) -> GqlResult<NotificationConnection> {
        let caller = ctx.caller()?;
        let (first, unread_only) = (first.unwrap_or(20), unread_only.unwrap_or(false));
        let mut url = url::Url::parse("http://x/notifications")
            .map_err(|e| gql_error(ErrorCode::Internal, e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("first", &first.to_string())
            .append_pair("unreadOnly", &unread_only.to_string());
        if let Some(after) = &after {
            url.query_pairs_mut().append_pair("after", after);
        }
        let path = format!("{}?{}", url.path(), url.query().unwrap_or_default());
        ctx.services()
            .notifications
            .get(&path, Some(caller.claims))
            .await
            .gql()
    }

    async fn get_unread_notifications_count(&self, ctx: &Context<'_>) -> GqlResult<i32> {
        let caller = ctx.caller()?;
        let count: Count = ctx
            .services()
            .notifications
            .get("/notifications/unread-count", Some(caller.claims))
            .await
            .gql()?;
        Ok(count.count)
    }
}

#[derive(Default)]
pub struct NotificationMutation;

#[Object]
impl NotificationMutation {
    async fn mark_notification_as_read(
        &self,
        ctx: &Context<'_>,
        id: ID,
    ) -> GqlResult<Notification> {
        let caller = ctx.caller()?;
        let id = parse_uuid(&id, ErrorCode::NotFound, "notification")?;
        let path = format!("/notifications/{id}/read");
        ctx.services()
            .notifications
            .post(&path, &serde_json::json!({}), Some(caller.claims))
            .await
            .gql()
    }

    /// Marks every unread notification of the caller read; returns how many changed.
    async fn mark_all_notifications_as_read(&self, ctx: &Context<'_>) -> GqlResult<i32> {
        let caller = ctx.caller()?;
        let changed: Changed = ctx
            .services()
            .notifications
            .post(
                "/notifications/read-all",
                &serde_json::json!({}),
                Some(caller.claims),
            )
            .await
            .gql()?;
        Ok(changed.changed)
    }
}

#[derive(Default)]
pub struct NotificationSubscription;

#[Subscription]
impl NotificationSubscription {
    /// The caller's new notifications as they arrive; one deferred past the caller's quiet
    /// hours arrives when they end. The connection closes (4403) when its token expires.
    async fn notification_received(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = GqlResult<Notification>> + use<>> {
        let caller = ctx.caller()?;
        let changes = listen(ctx, caller.claims.sub).await?;
        let notifications = changes.filter_map(|change| {
            let shown = change
                .notification
                .and_then(|shown| serde_json::from_value::<Notification>(shown).ok());
            std::future::ready(shown.map(Ok))
        });
        Ok(notifications)
    }

    /// The caller's unread count each time it changes (a notification arrived, or some were
    /// read). The connection closes (4403) when its token expires.
    async fn unread_count_changed(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = GqlResult<i32>> + use<>> {
        let caller = ctx.caller()?;
        let claims = caller.claims.clone();
        let notifications = ctx.services().notifications.clone();
        let changes = listen(ctx, caller.claims.sub).await?;
        let unread = move || {
            let (notifications, claims) = (notifications.clone(), claims.clone());
            async move {
                let count: Count = notifications
                    .get("/notifications/unread-count", Some(&claims))
                    .await
                    .gql()?;
                Ok(count.count)
            }
        };
        // Counted once now, so that the first change shown is a change.
        let mut last = unread().await?;
        let counts = changes.then(move |_| unread()).filter_map(move |count| {
            let changed = match count {
                Ok(count) if count == last => None,
                Ok(count) => {
                    last = count;
                    Some(Ok(count))
                }
                Err(e) => Some(Err(e)),
            };
            std::future::ready(changed)
        });
        Ok(counts)
    }
}

/// The caller's live changes, or why there are none.
async fn listen(
    ctx: &Context<'_>,
    user_id: uuid::Uuid,
) -> GqlResult<impl Stream<Item = herald_events::LiveChange> + Send + use<>> {
    let hub = ctx.data_opt::<LiveHub>().ok_or_else(|| {
        gql_error(
            ErrorCode::Internal,
            "live notifications are not served here",
        )
    })?;
    hub.listen(user_id).await.ok_or_else(|| {
        gql_error(
            ErrorCode::RateLimited,
            format!("at most {PER_USER} live subscriptions at once per user"),
        )
    })
}
