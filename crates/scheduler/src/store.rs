//! The calendar (`jobs`) and the record of runs (`job_runs`).
//!
//! Claiming a run moves the job's `next_run_at` forward with a compare-and-set on the due
//! time it read, in the transaction that records the run and puts `scheduler.job_due` in the
//! outbox: of any number of replicas that see the same due time, one claims it. The run
//! table's `UNIQUE (job, due_at)` says the same a second time.

use chrono::{DateTime, Utc};
use herald_events::{Envelope, JobDue, JobFinished};
use herald_platform::db::{Database, Tx, to_datetime};
use herald_platform::outbox::Outbox;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::SERVICE;
use herald_platform::cron::Schedule;

/// A job as admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub name: String,
    pub schedule: String,
    pub enabled: bool,
    pub next_run_at: Option<DateTime<Utc>>,
    pub last_run_at: Option<DateTime<Utc>>,
    pub last_outcome: Option<String>,
}

/// One run of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    pub id: Uuid,
    pub job: String,
    pub due_at: DateTime<Utc>,
    pub manual: bool,
    pub runner: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub ok: Option<bool>,
    pub outcome: Option<String>,
}

/// A job whose time has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    pub name: String,
    pub schedule: String,
    pub due_at: i64,
}

/// A flag column: BOOLEAN on PostgreSQL, INTEGER 0/1 on SQLite.
fn flag(row: &AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    row.try_get::<bool, _>(column)
        .or_else(|_| row.try_get::<i64, _>(column).map(|v| v != 0))
}

fn optional_flag(row: &AnyRow, column: &str) -> Result<Option<bool>, sqlx::Error> {
    row.try_get::<Option<bool>, _>(column).or_else(|_| {
        row.try_get::<Option<i64>, _>(column)
            .map(|v| v.map(|v| v != 0))
    })
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

/// Makes the calendar match the configured jobs (None: switched off). A job whose schedule
/// is unchanged keeps its next run, even one in the past: it runs once on the next tick.
pub async fn sync_jobs(
    db: &Database,
    jobs: &[(&str, Option<Schedule>)],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    for (name, schedule) in jobs {
        let text = schedule.as_ref().map(|s| s.to_string()).unwrap_or_default();
        let enabled = schedule.is_some();
        let next = schedule
            .as_ref()
            .and_then(|s| s.next_after(now))
            .map(micros);
        let stored = sqlx::query("SELECT schedule, enabled FROM jobs WHERE name = $1")
            .bind(*name)
            .fetch_optional(db.pool())
            .await?;
        match stored {
            None => {
                sqlx::query(
                    "INSERT INTO jobs (name, schedule, enabled, next_run_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(*name)
                .bind(&text)
                .bind(enabled)
                .bind(next)
                .execute(db.pool())
                .await?;
            }
            Some(row) => {
                let same = row.try_get::<String, _>("schedule")? == text
                    && flag(&row, "enabled")? == enabled;
                if !same {
                    tracing::info!(job = name, schedule = text, "schedule changed");
                    sqlx::query(
                        "UPDATE jobs SET schedule = $1, enabled = $2, next_run_at = $3 WHERE name = $4",
                    )
                    .bind(&text)
                    .bind(enabled)
                    .bind(next)
                    .bind(*name)
                    .execute(db.pool())
                    .await?;
                }
            }
        }
    }
    Ok(())
}

/// The enabled jobs due at `now`.
pub async fn due_jobs(db: &Database, now: DateTime<Utc>) -> Result<Vec<Due>, sqlx::Error> {
    sqlx::query(
        "SELECT name, schedule, next_run_at FROM jobs
         WHERE enabled = $1 AND next_run_at IS NOT NULL AND next_run_at <= $2 ORDER BY name",
    )
    .bind(true)
    .bind(micros(now))
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|row| {
        Ok(Due {
            name: row.try_get("name")?,
            schedule: row.try_get("schedule")?,
            due_at: row.try_get("next_run_at")?,
        })
    })
    .collect()
}

async fn record_run(
    tx: &mut Tx,
    outbox: &Outbox,
    due: &JobDue,
    runner: &str,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO job_runs (id, job, due_at, manual, runner, started_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(due.run_id.to_string())
    .bind(&due.job)
    .bind(micros(due.due_at))
    .bind(due.manual)
    .bind(runner)
    .bind(micros(now))
    .execute(&mut **tx)
    .await?;
    outbox.add(tx, &Envelope::new(SERVICE, None, due)).await
}

/// Claims the run of `due` and moves the job to `next`; None when another replica claimed
/// it first (or the job changed meanwhile).
pub async fn claim(
    db: &Database,
    outbox: &Outbox,
    due: &Due,
    next: Option<DateTime<Utc>>,
    runner: &str,
    now: DateTime<Utc>,
) -> Result<Option<JobDue>, sqlx::Error> {
    let run = JobDue {
        job: due.name.clone(),
        run_id: Uuid::now_v7(),
        due_at: to_datetime(due.due_at),
        manual: false,
    };
    let mut tx = db.begin().await?;
    let moved = sqlx::query(
        "UPDATE jobs SET next_run_at = $1, last_run_id = $2, last_run_at = $3, last_outcome = $4
         WHERE name = $5 AND next_run_at = $6 AND enabled = $7",
    )
    .bind(next.map(micros))
    .bind(run.run_id.to_string())
    .bind(micros(now))
    .bind("running")
    .bind(&due.name)
    .bind(due.due_at)
    .bind(true)
    .execute(&mut *tx)
    .await?;
    if moved.rows_affected() != 1 {
        tx.rollback().await?;
        return Ok(None);
    }
    record_run(&mut tx, outbox, &run, runner, now).await?;
    outbox.commit(tx).await?;
    Ok(Some(run))
}

/// Starts a run of `job` now, whatever its schedule; None when there is no such job.
pub async fn trigger(
    db: &Database,
    outbox: &Outbox,
    job: &str,
    runner: &str,
    now: DateTime<Utc>,
) -> Result<Option<JobDue>, sqlx::Error> {
    let run = JobDue {
        job: job.to_owned(),
        run_id: Uuid::now_v7(),
        due_at: now,
        manual: true,
    };
    let mut tx = db.begin().await?;
    let known = sqlx::query(
        "UPDATE jobs SET last_run_id = $1, last_run_at = $2, last_outcome = $3 WHERE name = $4",
    )
    .bind(run.run_id.to_string())
    .bind(micros(now))
    .bind("running")
    .bind(job)
    .execute(&mut *tx)
    .await?;
    if known.rows_affected() != 1 {
        tx.rollback().await?;
        return Ok(None);
    }
    record_run(&mut tx, outbox, &run, runner, now).await?;
    outbox.commit(tx).await?;
    Ok(Some(run))
}

/// Records what a run did; the job shows it when it is the job's latest run.
pub async fn finished(
    tx: &mut Tx,
    finished: &JobFinished,
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE job_runs SET finished_at = $1, ok = $2, outcome = $3 WHERE id = $4")
        .bind(micros(now))
        .bind(finished.ok)
        .bind(&finished.outcome)
        .bind(finished.run_id.to_string())
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE jobs SET last_outcome = $1 WHERE name = $2 AND last_run_id = $3")
        .bind(&finished.outcome)
        .bind(&finished.job)
        .bind(finished.run_id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Forgets the runs that started before `before`; returns how many. The jobs keep their
/// last outcome.
pub async fn prune_runs(db: &Database, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let pruned = sqlx::query("DELETE FROM job_runs WHERE started_at < $1")
        .bind(micros(before))
        .execute(db.pool())
        .await?;
    Ok(pruned.rows_affected())
}

/// Every job, by name.
pub async fn jobs(db: &Database) -> Result<Vec<JobView>, sqlx::Error> {
    sqlx::query(
        "SELECT name, schedule, enabled, next_run_at, last_run_at, last_outcome FROM jobs ORDER BY name",
    )
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|row| {
        Ok(JobView {
            name: row.try_get("name")?,
            schedule: row.try_get("schedule")?,
            enabled: flag(row, "enabled")?,
            next_run_at: row
                .try_get::<Option<i64>, _>("next_run_at")?
                .map(to_datetime),
            last_run_at: row
                .try_get::<Option<i64>, _>("last_run_at")?
                .map(to_datetime),
            last_outcome: row.try_get("last_outcome")?,
        })
    })
    .collect()
}

/// The job's latest runs, newest first.
pub async fn runs(db: &Database, job: &str, limit: i64) -> Result<Vec<RunView>, sqlx::Error> {
    sqlx::query(
        "SELECT id, job, due_at, manual, runner, started_at, finished_at, ok, outcome
         FROM job_runs WHERE job = $1 ORDER BY started_at DESC, id DESC LIMIT $2",
    )
    .bind(job)
    .bind(limit)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(|row| {
        let id: String = row.try_get("id")?;
        Ok(RunView {
            id: id.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
            job: row.try_get("job")?,
            due_at: to_datetime(row.try_get("due_at")?),
            manual: flag(row, "manual")?,
            runner: row.try_get("runner")?,
            started_at: to_datetime(row.try_get("started_at")?),
            finished_at: row
                .try_get::<Option<i64>, _>("finished_at")?
                .map(to_datetime),
            ok: optional_flag(row, "ok")?,
            outcome: row.try_get("outcome")?,
        })
    })
    .collect()
}

#[cfg(all(feature = "backend-tests", not(test)))]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use chrono::Duration;
    use herald_platform::backend_tests;
    use herald_platform::testing::{BackendSet, drop_schema, isolated_settings, migrated_database};

    use super::*;
    use crate::{SERVICE, migrations};

    backend_tests!(each_due_time_is_claimed_once_and_old_runs_are_pruned);

    async fn each_due_time_is_claimed_once_and_old_runs_are_pruned(set: BackendSet) {
        let dir = tempfile::tempdir().unwrap();
        let settings = isolated_settings(set, dir.path());
        let db = migrated_database(&settings, SERVICE, &migrations()).await;
        let outbox = Outbox::new(db.clone());
        let every_minute: Schedule = "* * * * *".parse().unwrap();
        let start = Utc::now() - Duration::days(30);
        sync_jobs(&db, &[("promotions", Some(every_minute.clone()))], start)
            .await
            .unwrap();
        // A month of downtime later the job is due once, not once per missed minute.
        let now = Utc::now();
        let due = due_jobs(&db, now).await.unwrap();
        assert_eq!(due.len(), 1, "{set:?}");
        let next = every_minute.next_after(now);
        let first = claim(&db, &outbox, &due[0], next, "a", start)
            .await
            .unwrap();
        let second = claim(&db, &outbox, &due[0], next, "b", now).await.unwrap();
        assert!(first.is_some() && second.is_none(), "claimed once");
        assert!(due_jobs(&db, now).await.unwrap().is_empty());
        trigger(&db, &outbox, "promotions", "a", now)
            .await
            .unwrap()
            .unwrap();
        assert!(
            trigger(&db, &outbox, "nope", "a", now)
                .await
                .unwrap()
                .is_none()
        );

        // The scheduled run started a month ago (as far as the record goes), the manual one now.
        assert_eq!(prune_runs(&db, now - Duration::days(14)).await.unwrap(), 1);
        let left = runs(&db, "promotions", 10).await.unwrap();
        assert_eq!(left.len(), 1);
        assert!(left[0].manual);
        drop_schema(&db).await;
    }
}
