//! The scheduler, as other services use it: the jobs, running one now, a job's runs.
//! [`SchedulerApi`] is the one way to call it, with two implementations: [`Scheduler`]
//! itself, in the same process (no HTTP, no JSON, no second token check), and
//! [`SchedulerOverHttp`], across processes with a service credential. The HTTP routes of
//! `api` serve the second with the first, so both run the same code.

use chrono::Utc;
use herald_platform::auth::Claims;
use herald_platform::http::ServiceClient;
use herald_platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Scheduler;
use crate::store::{self, JobView, RunView};

/// The run a job started by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Triggered {
    pub run_id: Uuid,
}

/// How many of a job's runs to list: 1 to 500, 20 when left out.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct RunsQuery {
    pub first: Option<i64>,
}

/// The scheduler's operations, for admins only (FORBIDDEN for anyone else).
#[async_trait::async_trait]
pub trait SchedulerApi: Send + Sync + 'static {
    /// Every job, by name, with its schedule, next run and last outcome.
    async fn jobs(&self, acting: &Claims) -> ApiResult<Vec<JobView>>;
    /// Runs the job now, whatever its schedule; NOT_FOUND for an unknown name.
    async fn run_job(&self, acting: &Claims, name: &str) -> ApiResult<Triggered>;
    /// The job's latest runs, newest first; NOT_FOUND for an unknown name.
    async fn runs(&self, acting: &Claims, name: &str, query: &RunsQuery)
    -> ApiResult<Vec<RunView>>;
}

/// Only admins see and run scheduled jobs.
pub(crate) fn may_see_jobs(acting: &Claims) -> ApiResult<()> {
    if acting.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only admins see and run scheduled jobs",
        ))
    }
}

fn no_job(name: &str) -> ApiError {
    ApiError::not_found(format!("no scheduled job is named {name:?}"))
}

#[async_trait::async_trait]
impl SchedulerApi for Scheduler {
    async fn jobs(&self, acting: &Claims) -> ApiResult<Vec<JobView>> {
        may_see_jobs(acting)?;
        Ok(store::jobs(&self.db).await?)
    }

    async fn run_job(&self, acting: &Claims, name: &str) -> ApiResult<Triggered> {
        may_see_jobs(acting)?;
        let run = store::trigger(&self.db, &self.outbox, name, &self.runner, Utc::now())
            .await?
            .ok_or_else(|| no_job(name))?;
        tracing::info!(job = name, run_id = %run.run_id, by = %acting.sub, "job run by hand");
        Ok(Triggered { run_id: run.run_id })
    }

    async fn runs(
        &self,
        acting: &Claims,
        name: &str,
        query: &RunsQuery,
    ) -> ApiResult<Vec<RunView>> {
        may_see_jobs(acting)?;
        let first = query.first.unwrap_or(20);
        if !(1..=500).contains(&first) {
            return Err(ApiError::bad_input("first must be 1 to 500"));
        }
        if !store::jobs(&self.db)
            .await?
            .iter()
            .any(|job| job.name == name)
        {
            return Err(no_job(name));
        }
        Ok(store::runs(&self.db, name, first).await?)
    }
}

/// The scheduler of another process.
#[derive(Clone, Debug)]
pub struct SchedulerOverHttp {
    service: ServiceClient,
}

impl SchedulerOverHttp {
    /// `service` calls the scheduler service.
    pub fn new(service: ServiceClient) -> SchedulerOverHttp {
        SchedulerOverHttp { service }
    }
}

/// A job's name as a path segment, percent-encoded.
fn segment(name: &str) -> String {
    url::form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[async_trait::async_trait]
impl SchedulerApi for SchedulerOverHttp {
    async fn jobs(&self, acting: &Claims) -> ApiResult<Vec<JobView>> {
        self.service.get("/jobs", Some(acting)).await
    }

    async fn run_job(&self, acting: &Claims, name: &str) -> ApiResult<Triggered> {
        let path = format!("/jobs/{}/run", segment(name));
        self.service.post(&path, &(), Some(acting)).await
    }

    async fn runs(
        &self,
        acting: &Claims,
        name: &str,
        query: &RunsQuery,
    ) -> ApiResult<Vec<RunView>> {
        let mut path = format!("/jobs/{}/runs", segment(name));
        if let Some(first) = query.first {
            path.push_str(&format!("?first={first}"));
        }
        self.service.get(&path, Some(acting)).await
    }
}
