//! In-app notifications (the notifications service).

use async_graphql::{Context, ID, Object, Subscription};
use futures::{Stream, StreamExt};
use herald_notifications::inbox::ListQuery;
use herald_platform::ErrorCode;

use super::parse_uuid;
use crate::context::ContextExt;
use crate::error::{GqlResult, IntoGql, gql_error};
use crate::limits::list_cost;
use crate::live::{LiveHub, PER_USER};
use crate::types::*;

#[derive(Default)]
pub struct NotificationQuery;

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
        let query = ListQuery {
            first: Some(i64::from(first.unwrap_or(20))),
            after,
            unread_only: Some(unread_only.unwrap_or(false)),
            without_total: !ctx.look_ahead().field("totalCount").exists(),
        };
        let page = ctx
            .services()
            .inbox
            .list(caller.claims, &query)
            .await
            .gql()?;
        ctx.read_under(page.version);
        Ok(page.into())
    }

    async fn get_unread_notifications_count(&self, ctx: &Context<'_>) -> GqlResult<i32> {
        let caller = ctx.caller()?;
        let unread = ctx
            .services()
            .inbox
            .unread_count(caller.claims)
            .await
            .gql()?;
        ctx.read_under(unread.version);
        Ok(i32::try_from(unread.count).unwrap_or(i32::MAX))
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
        let read = ctx
            .services()
            .inbox
            .mark_read(caller.claims, id)
            .await
            .gql()?;
        Ok(read.into())
    }

    /// Marks every unread notification of the caller read; returns how many changed.
    async fn mark_all_notifications_as_read(&self, ctx: &Context<'_>) -> GqlResult<i32> {
        let caller = ctx.caller()?;
        let changed = ctx
            .services()
            .inbox
            .mark_all_read(caller.claims)
            .await
            .gql()?;
        Ok(i32::try_from(changed).unwrap_or(i32::MAX))
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

    /// The caller's unread count now, then each time it changes (a notification arrived,
    /// or some were read). The connection closes (4403) when its token expires.
    async fn unread_count_changed(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<impl Stream<Item = GqlResult<i32>> + use<>> {
        let caller = ctx.caller()?;
        let claims = caller.claims.clone();
        let inbox = ctx.services().inbox.clone();
        // Listening starts before the first count, so no change falls between the two.
        let changes = listen(ctx, caller.claims.sub).await?;
        let unread = move || {
            let (inbox, claims) = (inbox.clone(), claims.clone());
            async move {
                let unread = inbox.unread_count(&claims).await.gql()?;
                Ok(i32::try_from(unread.count).unwrap_or(i32::MAX))
            }
        };
        // The count as it is when the subscription starts: a badge needs it, and a client
        // that asked for it separately could miss a change in between.
        let first = unread().await?;
        let mut last = first;
        let changes = changes.then(move |_| unread()).filter_map(move |count| {
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
        let counts = futures::stream::once(std::future::ready(Ok(first))).chain(changes);
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
