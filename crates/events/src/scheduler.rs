//! Events of the scheduler: a job's run is due, and what became of it.
//!
//! The scheduler owns the calendar (which job runs when, once across replicas); the service
//! that owns a job's data does its work when it hears [`JobDue`], and answers with
//! [`JobFinished`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Event;

/// The scheduled promotions whose time has come are sent (notifications).
pub const JOB_PROMOTIONS: &str = "promotions";
/// One RECOMMENDATION per opted-in user with new top picks (recommendations).
pub const JOB_RECOMMENDATION_DIGEST: &str = "recommendation-digest";
/// Stuck orders reported to admins, late deliveries told to their customers (orders).
pub const JOB_ORDER_CHECKS: &str = "order-checks";

/// Every job, in the order `scheduledJobs` lists them.
pub const JOBS: [&str; 3] = [JOB_PROMOTIONS, JOB_RECOMMENDATION_DIGEST, JOB_ORDER_CHECKS];

/// `scheduler.job_due`: run `job` now. Published once per due time (or manual trigger).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobDue {
    pub job: String,
    pub run_id: Uuid,
    /// The schedule's time this run is for (the trigger's time for a manual run).
    pub due_at: DateTime<Utc>,
    pub manual: bool,
}

impl Event for JobDue {
    const TYPE: &'static str = "scheduler.job_due";
}

/// `scheduler.job_finished`: what a run did, e.g. `ok: 1200 notifications` or `error: …`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobFinished {
    pub job: String,
    pub run_id: Uuid,
    pub ok: bool,
    pub outcome: String,
}

impl Event for JobFinished {
    const TYPE: &'static str = "scheduler.job_finished";
}
