//! The scheduler service: it keeps the calendar of cron jobs, claims each due run once
//! however many replicas run ([`store::claim`]), and hands the run to the service that
//! owns the job's data with a `scheduler.job_due` event through its outbox. That service
//! runs it ([`herald_platform::jobs`]) and answers with `scheduler.job_finished`, which is
//! recorded as the run's outcome. After downtime a job runs once, not once per missed tick.

pub mod api;
pub mod client;
pub mod store;

/// The tests over real storage, each on the embedded backends and on the real servers;
/// `tests/backends.rs` runs them (the `backend-tests` feature).
#[cfg(all(feature = "backend-tests", not(test)))]
pub mod tests {
    mod client;

    /// Every module's tests, for the harness.
    pub const CASES: &[&[herald_platform::testing::harness::Case]] =
        &[client::CASES, crate::store::tests::CASES];
}

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use chrono::Utc;
use herald_events::{
    Envelope, JOB_ORDER_CHECKS, JOB_PROMOTIONS, JOB_RECOMMENDATION_DIGEST, JobFinished,
};
use herald_platform::Settings;
use herald_platform::auth::TokenVerifier;
use herald_platform::bus::{Bus, EventHandler, HandlerError};
use herald_platform::db::{Database, Migrations};
use herald_platform::http::BuiltService;
use herald_platform::outbox::{Outbox, first_delivery};
use herald_platform::service::ServiceParts;
use herald_platform::telemetry::MetricDoc;
use tokio_util::sync::CancellationToken;

use herald_platform::cron::Schedule;

pub const SERVICE: &str = "scheduler";

/// The scheduler service's metrics.
pub const METRICS: &[MetricDoc] = &[MetricDoc::counter(
    "scheduler_runs_claimed_total",
    "Job runs this scheduler found due and claimed, by job.",
)];
/// How long the record of each run is kept (the jobs keep their last outcome).
const RUNS_KEPT: chrono::Duration = chrono::Duration::days(14);
/// How often old runs are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// The queue of `scheduler.job_finished`, and the consumer's name in the inbox.
pub const QUEUE: &str = "scheduler";

pub fn migrations() -> Migrations {
    Migrations {
        sqlite: sqlx::migrate!("./migrations/sqlite"),
        postgres: sqlx::migrate!("./migrations/postgres"),
    }
}

/// This service, as `herald` runs and looks after it.
pub const DESCRIPTOR: herald_platform::service::ServiceDescriptor =
    herald_platform::service::ServiceDescriptor {
        name: SERVICE,
        migrations: Some(migrations),
        metrics: METRICS,
    };

pub async fn connect_database(settings: &Settings) -> anyhow::Result<Database> {
    herald_platform::service::open_storage(settings, SERVICE, &migrations()).await
}

/// The configured jobs and their schedules (None: switched off).
pub fn configured_jobs(
    settings: &Settings,
) -> anyhow::Result<Vec<(&'static str, Option<Schedule>)>> {
    [
        (
            JOB_PROMOTIONS,
            "schedule_promotions",
            &settings.schedule_promotions,
        ),
        (
            JOB_RECOMMENDATION_DIGEST,
            "schedule_recommendation_digest",
            &settings.schedule_recommendation_digest,
        ),
        (
            JOB_ORDER_CHECKS,
            "schedule_order_checks",
            &settings.schedule_order_checks,
        ),
    ]
    .into_iter()
    .map(|(job, setting, expression)| {
        let schedule = if expression.trim().is_empty() {
            None
        } else {
            Some(expression.parse::<Schedule>().map_err(|e| {
                anyhow!(
                    "invalid {}: {e}",
                    herald_platform::config::env_name(setting)
                )
            })?)
        };
        Ok((job, schedule))
    })
    .collect()
}

/// This process among the replicas, in the record of runs.
fn runner_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "herald".to_owned());
    format!(
        "{host}:{}:{}",
        std::process::id(),
        &uuid::Uuid::now_v7().simple().to_string()[24..]
    )
}

/// The scheduler: the calendar and where runs are claimed.
#[derive(Clone, Debug)]
pub struct Scheduler {
    pub db: Database,
    pub outbox: Outbox,
    pub runner: String,
}

impl Scheduler {
    /// Claims every job due now; returns the runs this replica claimed.
    pub async fn tick(&self) -> anyhow::Result<usize> {
        let now = Utc::now();
        let mut claimed = 0;
        for due in store::due_jobs(&self.db, now).await? {
            let next = match due.schedule.parse::<Schedule>() {
                Ok(schedule) => schedule.next_after(now),
                Err(e) => {
                    tracing::error!(job = due.name, error = %e, "stored schedule does not parse; skipping");
                    continue;
                }
            };
            if let Some(run) =
                store::claim(&self.db, &self.outbox, &due, next, &self.runner, now).await?
            {
                tracing::info!(job = run.job, run_id = %run.run_id, due_at = %run.due_at, "job due");
                metrics::counter!("scheduler_runs_claimed_total", "job" => run.job.clone())
                    .increment(1);
                claimed += 1;
            }
        }
        Ok(claimed)
    }

    fn spawn_ticker(
        self,
        every: Duration,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(every);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut pruned_at: Option<std::time::Instant> = None;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = interval.tick() => {}
                }
                if let Err(e) = self.tick().await {
                    tracing::warn!(error = format!("{e:#}"), "scheduler tick failed");
                }
                if pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                    pruned_at = Some(std::time::Instant::now());
                    let before = Utc::now() - RUNS_KEPT;
                    match store::prune_runs(&self.db, before).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(runs = n, "forgot old job runs"),
                        Err(e) => tracing::warn!(error = %e, "pruning job runs failed"),
                    }
                }
            }
        })
    }
}

/// Records `scheduler.job_finished`.
struct Outcomes {
    db: Database,
}

#[async_trait]
impl EventHandler for Outcomes {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        let finished: JobFinished = event
            .payload()
            .map_err(|e| HandlerError::Reject(anyhow!("{} {}: {e}", event.event_type, event.id)))?;
        let mut tx = self.db.begin().await?;
        if !first_delivery(&mut tx, QUEUE, event).await? {
            tx.rollback().await?;
            return Ok(());
        }
        store::finished(&mut tx, &finished, Utc::now()).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The scheduler service, built: what to serve and run, and its scheduler for the other
/// services of this process to call directly.
pub struct Started {
    pub service: BuiltService,
    pub scheduler: Scheduler,
}

/// Builds the scheduler: its calendar in sync with the settings, the ticker, the consumer
/// of outcomes, the outbox relay, the admin API.
pub async fn build(
    settings: &Settings,
    bus: &Bus,
    verifier: TokenVerifier,
    shutdown: CancellationToken,
) -> anyhow::Result<Started> {
    let jobs = configured_jobs(settings)?;
    let mut parts = ServiceParts::open(&DESCRIPTOR, settings, bus, shutdown).await?;
    store::sync_jobs(&parts.db, &jobs, Utc::now())
        .await
        .context("updating the calendar")?;
    let scheduler = Scheduler {
        db: parts.db.clone(),
        outbox: parts.outbox.clone(),
        runner: runner_name(),
    };
    let ticker = scheduler.clone().spawn_ticker(
        Duration::from_millis(settings.scheduler_tick_ms),
        parts.shutdown(),
    );
    parts.run(ticker);
    parts.consume(
        QUEUE,
        Arc::new(Outcomes {
            db: parts.db.clone(),
        }),
    );
    let state = api::SchedulerState {
        scheduler: scheduler.clone(),
        verifier: verifier.clone(),
    };
    Ok(Started {
        service: parts.finish(api::router(state), verifier),
        scheduler,
    })
}
