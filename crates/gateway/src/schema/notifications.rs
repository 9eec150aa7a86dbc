//! In-app notifications (the notifications service).

use async_graphql::{Context, ID, Object};
use herald_platform::ErrorCode;
use serde::Deserialize;

use super::parse_uuid;
use crate::context::ContextExt;
use crate::error::{GqlResult, IntoGql, gql_error};
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
            .get(&path, Some(caller.token))
            .await
            .gql()
    }

    async fn get_unread_notifications_count(&self, ctx: &Context<'_>) -> GqlResult<i32> {
        let caller = ctx.caller()?;
        let count: Count = ctx
            .services()
            .notifications
            .get("/notifications/unread-count", Some(caller.token))
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
            .post(&path, &serde_json::json!({}), Some(caller.token))
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
                Some(caller.token),
            )
            .await
            .gql()?;
        Ok(changed.changed)
    }
}
