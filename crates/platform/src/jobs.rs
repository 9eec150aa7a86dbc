//! Running scheduled jobs where their data lives.
//!
//! The scheduler publishes `scheduler.job_due`; a service that owns jobs consumes it with a
//! [`JobsConsumer`] over its [`Job`]s, which runs the job named in the event and answers
//! with `scheduler.job_finished` through the service's outbox. A job must be idempotent: a
//! run cut short (a crash, a failed attempt) is delivered and run again.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::anyhow;
use async_trait::async_trait;
use herald_events::{Envelope, Event, JobDue, JobFinished};

use crate::bus::{EventHandler, HandlerError};
use crate::db::Database;
use crate::outbox::{Outbox, first_delivery};

/// One job a service runs.
#[async_trait]
pub trait Job: Send + Sync + 'static {
    /// The job's name, one of `herald_events::JOBS`.
    fn name(&self) -> &'static str;
    /// Does the work; the answer is the run's outcome in words ("3 notifications").
    async fn run(&self, due: &JobDue) -> anyhow::Result<String>;
}

/// The consumer of a service's `scheduler.job_due` queue.
pub struct JobsConsumer {
    /// The consumer's name in the inbox.
    consumer: &'static str,
    db: Database,
    outbox: Outbox,
    jobs: HashMap<&'static str, Arc<dyn Job>>,
}

impl JobsConsumer {
    pub fn new(
        consumer: &'static str,
        db: Database,
        outbox: Outbox,
        jobs: Vec<Arc<dyn Job>>,
    ) -> JobsConsumer {
        // Errors counted from zero, so an alert sees the first one.
        for job in &jobs {
            metrics::counter!("scheduler_job_runs_total", "job" => job.name(), "outcome" => "error")
                .increment(0);
        }
        JobsConsumer {
            consumer,
            db,
            outbox,
            jobs: jobs.into_iter().map(|job| (job.name(), job)).collect(),
        }
    }

    async fn report(&self, due: &JobDue, ok: bool, outcome: String) -> Result<(), sqlx::Error> {
        let finished = JobFinished {
            job: due.job.clone(),
            run_id: due.run_id,
            ok,
            outcome,
        };
        let mut tx = self.db.begin().await?;
        self.outbox
            .add(&mut tx, &Envelope::new(self.consumer, None, &finished))
            .await?;
        self.outbox.commit(tx).await
    }
}

#[async_trait]
impl EventHandler for JobsConsumer {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        if event.event_type != JobDue::TYPE {
            return Ok(());
        }
        let due: JobDue = event
            .payload()
            .map_err(|e| HandlerError::Reject(anyhow!("{} {}: {e}", JobDue::TYPE, event.id)))?;
        // Every service with jobs hears of every due job: the others are not its own.
        let Some(job) = self.jobs.get(due.job.as_str()) else {
            return Ok(());
        };
        let started = std::time::Instant::now();
        let result = job.run(&due).await;
        metrics::histogram!("scheduler_job_duration_seconds", "job" => job.name())
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(outcome) => {
                metrics::counter!("scheduler_job_runs_total", "job" => job.name(), "outcome" => "ok")
                    .increment(1);
                tracing::info!(job = job.name(), run_id = %due.run_id, outcome, "job done");
                let finished = JobFinished {
                    job: due.job.clone(),
                    run_id: due.run_id,
                    ok: true,
                    outcome: format!("ok: {outcome}"),
                };
                let mut tx = self.db.begin().await?;
                if first_delivery(&mut tx, self.consumer, event).await? {
                    self.outbox
                        .add(&mut tx, &Envelope::new(self.consumer, None, &finished))
                        .await?;
                }
                self.outbox.commit(tx).await?;
                Ok(())
            }
            Err(e) => {
                metrics::counter!("scheduler_job_runs_total", "job" => job.name(), "outcome" => "error")
                    .increment(1);
                tracing::warn!(job = job.name(), run_id = %due.run_id, error = format!("{e:#}"), "job failed; retrying");
                // Reported without an inbox entry: the retry runs the job again.
                self.report(&due, false, format!("error: {e:#}")).await?;
                Err(HandlerError::Retry(e))
            }
        }
    }
}
