//! Accounts and preferences (the users service).

use async_graphql::{Context, ID, Object};
use herald_platform::ErrorCode;
use herald_users::accounts::{LoginRequest, RegisterRequest, may_read};
use herald_users::resets::{NewPassword, ResetRequest};

use super::parse_uuid;
use crate::context::ContextExt;
use crate::error::{GqlResult, IntoGql};
use crate::types::*;

#[derive(Default)]
pub struct UserQuery;

#[Object]
impl UserQuery {
    /// The caller, or (admins only) another user by id.
    async fn get_user(&self, ctx: &Context<'_>, id: Option<ID>) -> GqlResult<User> {
        let caller = ctx.caller()?;
        let accounts = &ctx.services().accounts;
        let user = match id {
            None => accounts.me(caller.claims).await,
            Some(id) => {
                // Whoever may not read others is refused first, even for an id of no one.
                may_read(caller.claims, id.as_str()).gql()?;
                let id = parse_uuid(&id, ErrorCode::NotFound, "user")?;
                accounts.user(caller.claims, id).await
            }
        };
        user.map(User::from).gql()
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
        let request = RegisterRequest {
            name: input.name,
            email: input.email,
            password: input.password,
            client: ctx.client(),
        };
        ctx.services()
            .accounts
            .register(&request)
            .await
            .map(AuthPayload::from)
            .gql()
    }

    async fn login_user(&self, ctx: &Context<'_>, input: LoginInput) -> GqlResult<AuthPayload> {
        let request = LoginRequest {
            email: input.email,
            password: input.password,
            client: ctx.client(),
        };
        ctx.services()
            .accounts
            .login(&request)
            .await
            .map(AuthPayload::from)
            .gql()
    }

    /// Sends the account of `email`, if there is one, a single-use link (valid an hour) to
    /// set a new password, by email and in-app. Always true, as fast whether or not the
    /// account exists.
    async fn request_password_reset(&self, ctx: &Context<'_>, email: String) -> GqlResult<bool> {
        let request = ResetRequest {
            email,
            client: ctx.client(),
        };
        ctx.services()
            .accounts
            .request_password_reset(&request)
            .await
            .gql()?;
        Ok(true)
    }

    /// Sets a new password with a reset link's token, and signs in; every earlier session
    /// of the account ends. BAD_USER_INPUT for a used, expired, superseded or altered link.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        input: ResetPasswordInput,
    ) -> GqlResult<AuthPayload> {
        let request = NewPassword {
            token: input.token,
            password: input.password,
            client: ctx.client(),
        };
        ctx.services()
            .accounts
            .reset_password(&request)
            .await
            .map(AuthPayload::from)
            .gql()
    }

    /// Trades a refresh token for a new pair; UNAUTHENTICATED for a used, revoked or
    /// expired one (and a used one signs its whole family out).
    async fn refresh_token(&self, ctx: &Context<'_>, token: String) -> GqlResult<AuthPayload> {
        ctx.services()
            .accounts
            .refresh(&token)
            .await
            .map(AuthPayload::from)
            .gql()
    }

    /// Brings customers in (ADMIN): all or nothing, an email already known skipped; they
    /// have no password until they reset one, and are not welcomed.
    async fn import_users(
        &self,
        ctx: &Context<'_>,
        input: ImportUsersInput,
    ) -> GqlResult<ImportUsersPayload> {
        let caller = ctx.admin()?;
        ctx.services()
            .accounts
            .import_users(caller.claims, &input.into())
            .await
            .map(ImportUsersPayload::from)
            .gql()
    }

    async fn update_user_preferences(
        &self,
        ctx: &Context<'_>,
        input: PreferencesInput,
    ) -> GqlResult<User> {
        let caller = ctx.caller()?;
        ctx.services()
            .accounts
            .update_preferences(caller.claims, &input.into())
            .await
            .map(User::from)
            .gql()
    }
}
