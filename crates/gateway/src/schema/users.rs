//! Accounts and preferences (the users service).

use async_graphql::{Context, ID, Object};
use herald_platform::ErrorCode;

use super::parse_uuid;
use crate::context::ContextExt;
use crate::error::{GqlResult, IntoGql, gql_error};
use crate::types::*;

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
            .get(&path, Some(caller.claims))
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
        let input = FromClient {
            input: &input,
            client: ctx.client(),
        };
        ctx.services()
            .users
            .post("/users", &input, None)
            .await
            .gql()
    }

    async fn login_user(&self, ctx: &Context<'_>, input: LoginInput) -> GqlResult<AuthPayload> {
        let input = FromClient {
            input: &input,
            client: ctx.client(),
        };
        ctx.services()
            .users
            .post("/sessions", &input, None)
            .await
            .gql()
    }

    /// Trades a refresh token for a new pair; UNAUTHENTICATED for a used, revoked or
    /// expired one (and a used one signs its whole family out).
    async fn refresh_token(&self, ctx: &Context<'_>, token: String) -> GqlResult<AuthPayload> {
        let request = RefreshRequest {
            refresh_token: &token,
        };
        ctx.services()
            .users
            .post("/sessions/refresh", &request, None)
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
            .patch("/users/me/preferences", &input, Some(caller.claims))
            .await
            .gql()
    }
}
