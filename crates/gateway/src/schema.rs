//! The GraphQL schema: the contract's operations, each a call to the owning service.

use async_graphql::{Context, EmptySubscription, ID, MergedObject, Object, Schema};
use herald_platform::ErrorCode;
use serde::Deserialize;

use crate::context::ContextExt;
use crate::error::{GqlResult, IntoGql, gql_error};
use crate::types::*;

pub type HeraldSchema = Schema<Query, Mutation, EmptySubscription>;

#[derive(MergedObject, Default)]
pub struct Query(UserQuery, NotificationQuery);

#[derive(MergedObject, Default)]
pub struct Mutation(UserMutation, NotificationMutation);

#[derive(Default)]
pub struct UserQuery;

#[Object]
impl UserQuery {
    /// The caller, or (admins only) another user by id.
    async fn get_user(&self, ctx: &Context<'_>, id: Option<ID>) -> GqlResult<User> {
        let caller = ctx.caller()?;
        let path = match id {
            None => "/users/me".to_owned(),
            Some(id) => {
                if !caller.claims.is_admin() && id.as_str() != caller.claims.sub.to_string() {
                    return Err(gql_error(
                        ErrorCode::Forbidden,
                        "only admins can read other users",
                    ));
                }
                let id = parse_uuid(&id, ErrorCode::NotFound, "user")?;
                format!("/users/{id}")
            }
        };
        ctx.services()
            .users
            .get(&path, Some(caller.token))
            .await
            .gql()
    }
}

#[derive(Default)]
pub struct UserMutation;

#[Object]
impl UserMutation {
    async fn register_user(
        &self,
        ctx: &Context<'_>,
        input: RegisterUserInput,
    ) -> GqlResult<AuthPayload> {
        ctx.services()
            .users
            .post("/users", &input, None)
            .await
            .gql()
    }

    async fn login_user(&self, ctx: &Context<'_>, input: LoginInput) -> GqlResult<AuthPayload> {
        ctx.services()
            .users
            .post("/sessions", &input, None)
            .await
            .gql()
    }

    async fn update_user_preferences(
        &self,
        ctx: &Context<'_>,
        input: PreferencesInput,
    ) -> GqlResult<User> {
        let caller = ctx.caller()?;
        ctx.services()
            .users
            .patch("/users/me/preferences", &input, Some(caller.token))
            .await
            .gql()
    }
}

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

/// Ids are UUIDs; anything else cannot name an existing thing.
fn parse_uuid(id: &ID, code: ErrorCode, what: &str) -> GqlResult<uuid::Uuid> {
    id.parse::<uuid::Uuid>()
        .map_err(|_| gql_error(code, format!("no {what} {}", id.as_str())))
}
