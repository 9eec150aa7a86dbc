//! The recommendations service's HTTP API, for Herald's services: both routes act for the
//! user of the service credential, through the same [`Recommendations`] other services in
//! this process call directly.
//!
//! - `POST /activity` `{"type":"VIEW"|"CART"|"WISHLIST","productId":"…"}` or
//!   `{"type":"SEARCH","query":"…"}` → `{"recorded": true}`
//! - `GET /recommendations?limit=10` → `[{"productId","score","reason"}]`

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRef, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use herald_platform::auth::{Caller, TokenVerifier};
use herald_platform::{ApiError, ApiResult};
use serde::Deserialize;

use crate::activity::ActivityInput;
use crate::recommendations::{Recommendations, RecommendationsApi, Recorded, bad_limit};
use crate::recommender::Recommendation;

#[derive(Clone)]
pub struct RecommendationsState {
    pub recommendations: Recommendations,
    pub verifier: TokenVerifier,
}

impl FromRef<RecommendationsState> for TokenVerifier {
    fn from_ref(state: &RecommendationsState) -> TokenVerifier {
        state.verifier.clone()
    }
}

pub fn router(state: RecommendationsState) -> Router {
    Router::new()
        .route("/activity", post(record_activity))
        .route("/recommendations", get(recommendations))
        .with_state(state)
}

#[derive(Debug, Default, Deserialize)]
pub struct RecommendationsQuery {
    pub limit: Option<String>,
}

async fn record_activity(
    State(state): State<RecommendationsState>,
    Caller(claims): Caller,
    input: Result<Json<ActivityInput>, JsonRejection>,
) -> ApiResult<Json<Recorded>> {
    let Json(input) = input.map_err(|e| ApiError::bad_input(e.body_text()))?;
    state
        .recommendations
        .record_activity(&claims, &input)
        .await?;
    Ok(Json(Recorded { recorded: true }))
}

async fn recommendations(
    State(state): State<RecommendationsState>,
    Caller(claims): Caller,
    query: Result<Query<RecommendationsQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<Recommendation>>> {
    let Query(query) = query.map_err(|e| ApiError::bad_input(e.body_text()))?;
    let limit = query
        .limit
        .map(|raw| raw.trim().parse::<i64>().map_err(|_| bad_limit()))
        .transpose()?;
    Ok(Json(
        state
            .recommendations
            .recommendations(&claims, limit)
            .await?,
    ))
}
