//! Promotions: admins' campaigns, kept and sent by the notifications service (ADMIN).

use async_graphql::{Context, Object};
use herald_platform::ErrorCode;

use crate::context::ContextExt;
use crate::error::{GqlResult, IntoGql, gql_error};
use crate::limits::list_cost;
use crate::types::{Promotion, PromotionInput};

#[derive(Default)]
pub struct PromotionQuery;

#[Object]
impl PromotionQuery {
    /// Newest first, with their status and recipients so far (ADMIN).
    #[graphql(complexity = "list_cost(first.unwrap_or(20), child_complexity)")]
    async fn promotions(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(20)")] first: Option<i32>,
    ) -> GqlResult<Vec<Promotion>> {
        let caller = ctx.admin()?;
        let first = first.unwrap_or(20);
        if !(1..=100).contains(&first) {
            return Err(gql_error(
                ErrorCode::BadUserInput,
                "first must be between 1 and 100",
            ));
        }
        ctx.services()
            .notifications
            .get(&format!("/promotions?first={first}"), Some(caller.claims))
            .await
            .gql()
    }
}

#[derive(Default)]
pub struct PromotionMutation;

#[Object]
impl PromotionMutation {
    /// Schedules a campaign for `sendAt` (or now) to every user with promotions on, or to
    /// those interested in its category (ADMIN). Each user's channels, quiet hours and daily
    /// cap apply.
    async fn create_promotion(
        &self,
        ctx: &Context<'_>,
        input: PromotionInput,
    ) -> GqlResult<Promotion> {
        let caller = ctx.admin()?;
        ctx.services()
            .notifications
            .post("/promotions", &input, Some(caller.claims))
            .await
            .gql()
    }
}
