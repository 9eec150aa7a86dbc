//! The scheduler's HTTP API, for admins.
//!
//! - `GET /jobs` → `[{"name","schedule","enabled","nextRunAt","lastRunAt","lastOutcome"}]`
//! - `POST /jobs/{name}/run` → `{"runId": "…"}`: runs the job now, whatever its schedule
//! - `GET /jobs/{name}/runs?first=20` → the job's latest runs, newest first

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRef, Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::Utc;
use herald_platform::auth::{Caller, TokenVerifier};
use herald_platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Scheduler;
use crate::store::{self, JobView, RunView};

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

fn admin_only(caller: &Caller) -> ApiResult<()> {
    if caller.0.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only admins see and run scheduled jobs",
        ))
    }
}

async fn list_jobs(
    State(state): State<SchedulerState>,
    caller: Caller,
) -> ApiResult<Json<Vec<JobView>>> {
    admin_only(&caller)?;
    Ok(Json(store::jobs(&state.scheduler.db).await?))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Triggered {
    pub run_id: Uuid,
}

async fn run_job(
    State(state): State<SchedulerState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Json<Triggered>> {
    admin_only(&caller)?;
    let scheduler = &state.scheduler;
    let run = store::trigger(
        &scheduler.db,
        &scheduler.outbox,
        &name,
        &scheduler.runner,
        Utc::now(),
    )
    .await?
    .ok_or_else(|| ApiError::not_found(format!("no scheduled job is named {name:?}")))?;
    tracing::info!(job = name, run_id = %run.run_id, by = %caller.0.sub, "job run by hand");
    Ok(Json(Triggered { run_id: run.run_id }))
}

#[derive(Debug, Default, Deserialize)]
struct RunsQuery {
    first: Option<i64>,
}

async fn list_runs(
    State(state): State<SchedulerState>,
    caller: Caller,
    Path(name): Path<String>,
    query: Result<Query<RunsQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<RunView>>> {
    admin_only(&caller)?;
    let Query(query) = query.map_err(|e| ApiError::bad_input(e.body_text()))?;
    let first = query.first.unwrap_or(20);
    if !(1..=500).contains(&first) {
        return Err(ApiError::bad_input("first must be 1 to 500"));
    }
    if !store::jobs(&state.scheduler.db)
        .await?
        .iter()
        .any(|job| job.name == name)
    {
        return Err(ApiError::not_found(format!(
            "no scheduled job is named {name:?}"
        )));
    }
    Ok(Json(store::runs(&state.scheduler.db, &name, first).await?))
}
