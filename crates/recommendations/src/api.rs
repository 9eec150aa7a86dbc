//! The recommendations service's HTTP API; both routes act for the caller.
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
use serde::{Deserialize, Serialize};

use crate::activity::{Activity, ActivityInput};
use crate::advisor::{Advisor, MAX_LIMIT};
use crate::recommender::Recommendation;

/// Recommendations returned when the request does not say how many.
pub const DEFAULT_LIMIT: usize = 10;

#[derive(Clone)]
pub struct RecommendationsState {
    pub advisor: Advisor,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recorded {
    pub recorded: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct RecommendationsQuery {
    pub limit: Option<String>,
}

/// The `limit` parameter: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
pub fn parse_limit(raw: Option<&str>) -> ApiResult<usize> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LIMIT);
    };
    raw.trim()
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| ApiError::bad_input(format!("limit must be 1 to {MAX_LIMIT}")))
}

async fn record_activity(
    State(state): State<RecommendationsState>,
    Caller(claims): Caller,
    input: Result<Json<ActivityInput>, JsonRejection>,
) -> ApiResult<Json<Recorded>> {
    let Json(input) = input.map_err(|e| ApiError::bad_input(e.body_text()))?;
    let activity = Activity::parse(&input)?;
    state.advisor.record_activity(claims.sub, &activity).await?;
    Ok(Json(Recorded { recorded: true }))
}

async fn recommendations(
    State(state): State<RecommendationsState>,
    Caller(claims): Caller,
    query: Result<Query<RecommendationsQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<Recommendation>>> {
    let Query(query) = query.map_err(|e| ApiError::bad_input(e.body_text()))?;
    let limit = parse_limit(query.limit.as_deref())?;
    Ok(Json(
        state.advisor.recommendations(claims.sub, limit).await?,
    ))
}
