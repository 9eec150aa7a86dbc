//! Scheduled jobs, kept by the scheduler service (ADMIN).

use async_graphql::{Context, Object};

use crate::context::ContextExt;
use crate::error::{GqlResult, IntoGql};
use crate::types::ScheduledJob;

#[derive(Default)]
pub struct SchedulerQuery;

#[Object]
impl SchedulerQuery {
    /// Every job with its schedule, next run and last outcome (ADMIN).
    async fn scheduled_jobs(&self, ctx: &Context<'_>) -> GqlResult<Vec<ScheduledJob>> {
        let caller = ctx.admin()?;
        let jobs = ctx.services().scheduler.jobs(caller.claims).await.gql()?;
        Ok(jobs.into_iter().map(ScheduledJob::from).collect())
    }
}

#[derive(Default)]
pub struct SchedulerMutation;

#[Object]
impl SchedulerMutation {
    /// Runs a job now, whatever its schedule (ADMIN). NOT_FOUND for an unknown name.
    async fn run_scheduled_job(&self, ctx: &Context<'_>, name: String) -> GqlResult<bool> {
        let caller = ctx.admin()?;
        ctx.services()
            .scheduler
            .run_job(caller.claims, &name)
            .await
            .gql()?;
        Ok(true)
    }
}
