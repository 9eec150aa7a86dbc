//! Personalized recommendations and the browsing signals behind them (the
//! recommendations service).

use async_graphql::{Context, Object};
use herald_platform::ErrorCode;
use serde_json::json;

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
        ctx.services()
            .recommendations
            .get(
                &format!("/recommendations?limit={limit}"),
                Some(caller.claims),
            )
            .await
            .gql()
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
        let body = match input.kind {
            ActivityType::Search => {
                let query = input.query.ok_or_else(|| {
                    gql_error(ErrorCode::BadUserInput, "a SEARCH activity needs a query")
                })?;
                json!({ "type": input.kind, "query": query })
            }
            kind => {
                let id = input.product_id.ok_or_else(|| {
                    gql_error(
                        ErrorCode::BadUserInput,
                        "a VIEW, CART or WISHLIST activity needs a productId",
                    )
                })?;
                let id = parse_uuid(&id, ErrorCode::NotFound, "product")?;
                json!({ "type": kind, "productId": id })
            }
        };
        let answer: serde_json::Value = ctx
            .services()
            .recommendations
            .post("/activity", &body, Some(caller.claims))
            .await
            .gql()?;
        Ok(answer["recorded"].as_bool().unwrap_or(true))
    }
}
