//! Promotions: admins' campaigns, kept and sent by the notifications service (ADMIN).

use async_graphql::{Context, Object};
use herald_notifications::promotions::{AudienceQuery, PromotionsQuery};

use crate::context::ContextExt;
use crate::error::{GqlResult, IntoGql};
use crate::limits::list_cost;
use crate::types::{Promotion, PromotionInput};

#[derive(Default)]
pub struct PromotionQuery;

#[Object]
impl PromotionQuery {
    /// How many users a promotion created now would reach (ADMIN): those with promotions
    /// on, and with a category, who prefer it or showed interest in it.
    async fn promotion_audience(
        &self,
        ctx: &Context<'_>,
        category: Option<String>,
    ) -> GqlResult<i32> {
        let caller = ctx.admin()?;
        let users = ctx
            .services()
            .promotions
            .promotion_audience(caller.claims, &AudienceQuery { category })
            .await
            .gql()?;
        Ok(i32::try_from(users).unwrap_or(i32::MAX))
    }

    /// Newest first, with their status and recipients so far (ADMIN).
    #[graphql(complexity = "list_cost(first.unwrap_or(20), child_complexity)")]
    async fn promotions(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(20)")] first: Option<i32>,
    ) -> GqlResult<Vec<Promotion>> {
        let caller = ctx.admin()?;
        let query = PromotionsQuery {
            first: Some(first.unwrap_or(20).into()),
        };
        let promotions = ctx
            .services()
            .promotions
            .promotions(caller.claims, &query)
            .await
            .gql()?;
        Ok(promotions.into_iter().map(Promotion::from).collect())
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
            .promotions
            .create_promotion(caller.claims, &input.into())
            .await
            .map(Promotion::from)
            .gql()
    }
}
