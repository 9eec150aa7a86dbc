//! Personalized recommendations and the browsing signals behind them (the
//! recommendations service).

use async_graphql::{Context, Object};
use herald_platform::ErrorCode;
use herald_recommendations::activity::ActivityInput;
use herald_recommendations::recommender::SignalKind;

use super::parse_uuid;
use crate::context::ContextExt;
use crate::error::{GqlResult, IntoGql, gql_error};
use crate::limits::list_cost;
use crate::types::{ActivityType, Recommendation, UserActivityInput};

#[derive(Default)]
pub struct RecommendationQuery;

#[Object]
impl RecommendationQuery {
    /// The caller's top picks, each with the reason it was picked.
    #[graphql(complexity = "list_cost(limit.unwrap_or(10), child_complexity)")]
    async fn get_recommendations(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "Some(10)")] limit: Option<i32>,
    ) -> GqlResult<Vec<Recommendation>> {
        let caller = ctx.caller()?;
        let limit = limit.unwrap_or(10);
        let picks = ctx
            .services()
            .recommendations
            .recommendations(caller.claims, Some(i64::from(limit)))
            .await
            .gql()?;
        Ok(picks.into_iter().map(Recommendation::from).collect())
    }
}

#[derive(Default)]
pub struct RecommendationMutation;

#[Object]
impl RecommendationMutation {
    /// Records a browsing signal (purchases come from orders).
    async fn create_user_activity(
        &self,
        ctx: &Context<'_>,
        input: UserActivityInput,
    ) -> GqlResult<bool> {
        let caller = ctx.caller()?;
        let kind = Some(SignalKind::from(input.kind).as_str().to_owned());
        let activity = match input.kind {
            ActivityType::Search => {
                let query = input.query.ok_or_else(|| {
                    gql_error(ErrorCode::BadUserInput, "a SEARCH activity needs a query")
                })?;
                ActivityInput {
                    kind,
                    product_id: None,
                    query: Some(query),
                }
            }
            _ => {
                let id = input.product_id.ok_or_else(|| {
                    gql_error(
                        ErrorCode::BadUserInput,
                        "a VIEW, CART or WISHLIST activity needs a productId",
                    )
                })?;
                let id = parse_uuid(&id, ErrorCode::NotFound, "product")?;
                ActivityInput {
                    kind,
                    product_id: Some(id.to_string()),
                    query: None,
                }
            }
        };
        ctx.services()
            .recommendations
            .record_activity(caller.claims, &activity)
            .await
            .gql()?;
        Ok(true)
    }
}
