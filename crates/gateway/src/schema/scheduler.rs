//! Scheduled jobs, kept by the scheduler service (ADMIN).

use async_graphql::{Context, Object};
use serde_json::json;

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
        ctx.services()
            .scheduler
            .get("/jobs", Some(caller.claims))
            .await
            .gql()
    }
}

#[derive(Default)]
pub struct SchedulerMutation;

#[Object]
impl SchedulerMutation {
    /// Runs a job now, whatever its schedule (ADMIN). NOT_FOUND for an unknown name.
    async fn run_scheduled_job(&self, ctx: &Context<'_>, name: String) -> GqlResult<bool> {
        let caller = ctx.admin()?;
        let path = format!("/jobs/{}/run", urlencode(&name));
        ctx.services()
            .scheduler
            .post::<_, serde_json::Value>(&path, &json!({}), Some(caller.claims))
            .await
            .gql()?;
        Ok(true)
    }
}

/// A path segment, percent-encoded.
fn urlencode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
