//! The scheduler's HTTP API, for admins, through the same [`Scheduler`] other services in
//! this process call directly.
//!
//! - `GET /jobs` → `[{"name","schedule","enabled","nextRunAt","lastRunAt","lastOutcome"}]`
//! - `POST /jobs/{name}/run` → `{"runId": "…"}`: runs the job now, whatever its schedule
//! - `GET /jobs/{name}/runs?first=20` → the job's latest runs, newest first

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRef, Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use herald_platform::auth::{Caller, TokenVerifier};
use herald_platform::{ApiError, ApiResult};

use crate::Scheduler;
use crate::client::{RunsQuery, SchedulerApi, Triggered, may_see_jobs};
use crate::store::{JobView, RunView};

#[derive(Clone)]
pub struct SchedulerState {
    pub scheduler: Scheduler,
    pub verifier: TokenVerifier,
}

impl FromRef<SchedulerState> for TokenVerifier {
    fn from_ref(state: &SchedulerState) -> TokenVerifier {
        state.verifier.clone()
    }
}

pub fn router(state: SchedulerState) -> Router {
    Router::new()
        .route("/jobs", get(list_jobs))
        .route("/jobs/{name}/run", post(run_job))
        .route("/jobs/{name}/runs", get(list_runs))
        .with_state(state)
}

async fn list_jobs(
    State(state): State<SchedulerState>,
    Caller(claims): Caller,
) -> ApiResult<Json<Vec<JobView>>> {
    Ok(Json(state.scheduler.jobs(&claims).await?))
}

async fn run_job(
    State(state): State<SchedulerState>,
    Caller(claims): Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Triggered>> {
    Ok(Json(state.scheduler.run_job(&claims, &name).await?))
}

async fn list_runs(
    State(state): State<SchedulerState>,
    Caller(claims): Caller,
    Path(name): Path<String>,
    query: Result<Query<RunsQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<RunView>>> {
    // Before the request is read, so others learn nothing from its mistakes.
    may_see_jobs(&claims)?;
    let Query(query) = query.map_err(|e| ApiError::bad_input(e.body_text()))?;
    Ok(Json(state.scheduler.runs(&claims, &name, &query).await?))
}
