//! The email outbox (`email_deliveries`) and the record of each attempt
//! (`delivery_attempts`).
//!
//! A row is QUEUED in the transaction that decided its notification, due at once or when
//! the recipient's quiet hours end. A worker leases due rows (PostgreSQL replicas skip each
//! other's rows), sends them and marks each SENT, due again later, FAILED, or SUPPRESSED
//! when the recipient switched it off meanwhile.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use herald_platform::bulk::SqlType::{BigInt, Text};
use herald_platform::bulk::{JsonRows, ROWS_PER_STATEMENT, select_rows};
use herald_platform::db::{Backend, Database, Tx, to_datetime};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::decision::SuppressionReason;
use crate::domain::{Draft, NotificationType, Priority, Recipient};
use crate::store::data_column;

pub const CHANNEL: &str = "EMAIL";

/// An email's state in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EmailStatus {
    Queued,
    Sent,
    Failed,
    Suppressed,
}

impl EmailStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            EmailStatus::Queued => "QUEUED",
            EmailStatus::Sent => "SENT",
            EmailStatus::Failed => "FAILED",
            EmailStatus::Suppressed => "SUPPRESSED",
        }
    }
}

/// An email to send, as the worker claimed it.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedEmail {
    pub id: Uuid,
    pub dedupe_key: String,
    pub user_id: Uuid,
    pub to_name: String,
    pub to_address: String,
    pub notification_type: NotificationType,
    pub title: String,
    pub body: String,
    pub data: Option<serde_json::Value>,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// An email's row, for operators and tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailRecord {
    pub id: Uuid,
    pub dedupe_key: String,
    pub notification_type: String,
    pub status: String,
    /// Why it was SUPPRESSED.
    pub reason: Option<String>,
    pub attempts: i64,
    pub due_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// One attempt to deliver, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRecord {
    pub channel: String,
    pub status: String,
    pub reason: Option<String>,
    pub error: Option<String>,
    pub attempted_at: DateTime<Utc>,
}

fn decode_error(message: String) -> sqlx::Error {
    sqlx::Error::Decode(message.into())
}

fn uuid_column(row: &AnyRow, column: &str) -> Result<Uuid, sqlx::Error> {
    let raw: String = row.try_get(column)?;
    raw.parse()
        .map_err(|e| decode_error(format!("{column}: {e}")))
}

fn priority_rank(priority: Priority) -> i64 {
    match priority {
        Priority::Critical => 0,
        Priority::Standard => 1,
    }
}

/// An email the decision asks for: to whom, of what, due when.
pub type EmailRequest<'a> = (&'a Recipient, &'a Draft, DateTime<Utc>);

/// Queues the emails, a few statements for the whole set; returns the dedupe keys queued
/// now (a notification's email queued before is left out).
#[tracing::instrument(skip_all, fields(emails = requests.len()))]
pub async fn queue_emails(
    tx: &mut Tx,
    requests: &[EmailRequest<'_>],
    now: DateTime<Utc>,
) -> Result<HashSet<String>, sqlx::Error> {
    let mut queued = HashSet::with_capacity(requests.len());
    let sql = format!(
        "INSERT INTO email_deliveries
            (id, dedupe_key, user_id, to_name, to_address, type, priority_rank, title, body,
             data, status, attempts, due_at, leased_until, created_at)
         {}
         ON CONFLICT (dedupe_key) DO NOTHING
         RETURNING dedupe_key",
        select_rows(
            Backend::of(tx),
            1,
            &[
                ("id", Text),
                ("dedupe_key", Text),
                ("user_id", Text),
                ("to_name", Text),
                ("to_address", Text),
                ("type", Text),
                ("priority_rank", BigInt),
                ("title", Text),
                ("body", Text),
                ("data", Text),
                ("status", Text),
                ("attempts", BigInt),
                ("due_at", BigInt),
                ("leased_until", BigInt),
                ("created_at", BigInt),
            ],
        )
    );
    for chunk in requests.chunks(ROWS_PER_STATEMENT) {
        let mut rows = JsonRows::new();
        for (recipient, draft, due_at) in chunk {
            rows.push(&(
                Uuid::now_v7(),
                &draft.dedupe_key,
                recipient.user_id,
                &recipient.name,
                &recipient.email,
                draft.notification_type.as_str(),
                priority_rank(draft.priority()),
                &draft.title,
                &draft.body,
                data_column(draft),
                EmailStatus::Queued.as_str(),
                0_i64,
                due_at.timestamp_micros(),
                0_i64,
                now.timestamp_micros(),
            ))?;
        }
        let keys: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(rows.finish())
            .fetch_all(&mut **tx)
            .await?;
        queued.extend(keys);
    }
    Ok(queued)
}

fn queued_from_row(row: &AnyRow) -> Result<QueuedEmail, sqlx::Error> {
    let notification_type: String = row.try_get("type")?;
    let data: Option<String> = row.try_get("data")?;
    Ok(QueuedEmail {
        id: uuid_column(row, "id")?,
        dedupe_key: row.try_get("dedupe_key")?,
        user_id: uuid_column(row, "user_id")?,
        to_name: row.try_get("to_name")?,
        to_address: row.try_get("to_address")?,
        notification_type: NotificationType::parse(&notification_type).ok_or_else(|| {
            decode_error(format!("unknown notification type {notification_type}"))
        })?,
        title: row.try_get("title")?,
        body: row.try_get("body")?,
        data: data
            .map(|d| serde_json::from_str(&d))
            .transpose()
            .map_err(|e| decode_error(format!("email data: {e}")))?,
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
    })
}

/// Leases up to `limit` emails due at `now` until `now + lease`, critical ones first, then
/// the longest due. One short statement: replicas skip the rows another one is leasing.
#[tracing::instrument(skip_all, fields(limit))]
pub async fn claim_due(
    db: &Database,
    now: DateTime<Utc>,
    lease: Duration,
    limit: i64,
) -> Result<Vec<QueuedEmail>, sqlx::Error> {
    let skip_locked = match db.backend() {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE email_deliveries SET leased_until = $1
         WHERE id IN (
            SELECT id FROM email_deliveries
            WHERE status = 'QUEUED' AND due_at <= $2 AND leased_until <= $2
            ORDER BY priority_rank, due_at, id LIMIT $3{skip_locked})
         RETURNING id, dedupe_key, user_id, to_name, to_address, type, priority_rank, title,
                   body, data, attempts, due_at"
    )))
    .bind((now + lease).timestamp_micros())
    .bind(now.timestamp_micros())
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in &rows {
        let rank: i64 = row.try_get("priority_rank")?;
        let due_at: i64 = row.try_get("due_at")?;
        claimed.push(((rank, due_at), queued_from_row(row)?));
    }
    // RETURNING keeps no order.
    claimed.sort_by(|(a, x), (b, y)| a.cmp(b).then(x.id.cmp(&y.id)));
    Ok(claimed.into_iter().map(|(_, email)| email).collect())
}

/// Gives leased emails back unsent (the worker is stopping).
pub async fn release(db: &Database, ids: &[Uuid]) -> Result<(), sqlx::Error> {
    for id in ids {
        sqlx::query("UPDATE email_deliveries SET leased_until = 0 WHERE id = $1")
            .bind(id.to_string())
            .execute(db.pool())
            .await?;
    }
    Ok(())
}

/// What became of one attempt to send an email.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    Sent,
    /// Failed; due again at this time.
    RetryAt(DateTime<Utc>, String),
    /// Failed for the last time.
    Failed(String),
    /// Not sent: the recipient no longer wants it.
    Suppressed(SuppressionReason),
}

/// Records what became of each attempted email, in one transaction: the email's status,
/// attempts, next due time or error, and a row of its own in `delivery_attempts`.
#[tracing::instrument(skip_all, fields(emails = attempted.len()))]
pub async fn record_attempts(
    db: &Database,
    attempted: &[(&QueuedEmail, AttemptOutcome)],
    now: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    if attempted.is_empty() {
        return Ok(());
    }
    let backend = db.backend();
    let update = format!(
        "UPDATE email_deliveries SET status = r.status,
            attempts = email_deliveries.attempts + r.tried,
            due_at = COALESCE(r.due_at, email_deliveries.due_at), sent_at = r.sent_at,
            last_error = r.error, reason = r.reason, leased_until = 0
         FROM ({}) AS r
         WHERE email_deliveries.id = r.id",
        select_rows(
            backend,
            1,
            &[
                ("id", Text),
                ("status", Text),
                ("tried", BigInt),
                ("due_at", BigInt),
                ("sent_at", BigInt),
                ("error", Text),
                ("reason", Text),
            ],
        )
    );
    let insert = format!(
        "INSERT INTO delivery_attempts (id, delivery_id, channel, status, reason, error, attempted_at)
         {}",
        select_rows(
            backend,
            1,
            &[
                ("id", Text),
                ("delivery_id", Text),
                ("channel", Text),
                ("status", Text),
                ("reason", Text),
                ("error", Text),
                ("attempted_at", BigInt),
            ],
        )
    );
    let mut tx = db.begin().await?;
    for chunk in attempted.chunks(ROWS_PER_STATEMENT) {
        let mut emails = JsonRows::new();
        let mut attempts = JsonRows::new();
        for (email, outcome) in chunk {
            let (status, due_at, error, reason) = match outcome {
                AttemptOutcome::Sent => (EmailStatus::Sent, None, None, None),
                AttemptOutcome::RetryAt(due_at, error) => {
                    (EmailStatus::Queued, Some(*due_at), Some(error), None)
                }
                AttemptOutcome::Failed(error) => (EmailStatus::Failed, None, Some(error), None),
                AttemptOutcome::Suppressed(reason) => {
                    (EmailStatus::Suppressed, None, None, Some(reason.as_str()))
                }
            };
            let sent_at = (status == EmailStatus::Sent).then_some(now.timestamp_micros());
            // Suppressing sends nothing: not an attempt of the mail server.
            let tried = i64::from(status != EmailStatus::Suppressed);
            emails.push(&(
                email.id,
                status.as_str(),
                tried,
                due_at.map(|t| t.timestamp_micros()),
                sent_at,
                error,
                reason,
            ))?;
            let attempt_status = match outcome {
                AttemptOutcome::Sent => EmailStatus::Sent,
                AttemptOutcome::RetryAt(..) | AttemptOutcome::Failed(_) => EmailStatus::Failed,
                AttemptOutcome::Suppressed(_) => EmailStatus::Suppressed,
            };
            attempts.push(&(
                Uuid::now_v7(),
                email.id,
                CHANNEL,
                attempt_status.as_str(),
                reason,
                error,
                now.timestamp_micros(),
            ))?;
        }
        sqlx::query(sqlx::AssertSqlSafe(update.as_str()))
            .bind(emails.finish())
            .execute(&mut *tx)
            .await?;
        sqlx::query(sqlx::AssertSqlSafe(insert.as_str()))
            .bind(attempts.finish())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await
}

/// Queues a FAILED email again, due at `now` with its attempts reset (a replayed dead
/// letter); false when it is not FAILED.
#[tracing::instrument(skip_all, fields(email_id = %id))]
pub async fn requeue_failed(
    db: &Database,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let changed = sqlx::query(
        "UPDATE email_deliveries SET status = 'QUEUED', attempts = 0, due_at = $1, leased_until = 0
         WHERE id = $2 AND status = 'FAILED'",
    )
    .bind(now.timestamp_micros())
    .bind(id.to_string())
    .execute(db.pool())
    .await?;
    Ok(changed.rows_affected() == 1)
}

/// Emails waiting to be sent, due or not.
pub async fn queue_depth(db: &Database) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM email_deliveries WHERE status = 'QUEUED'")
        .fetch_one(db.pool())
        .await
}

/// The user's emails, oldest first.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn emails_for_user(
    db: &Database,
    user_id: Uuid,
) -> Result<Vec<EmailRecord>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, dedupe_key, type, status, reason, attempts, due_at, sent_at, last_error
         FROM email_deliveries WHERE user_id = $1 ORDER BY created_at, id",
    )
    .bind(user_id.to_string())
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(EmailRecord {
                id: uuid_column(row, "id")?,
                dedupe_key: row.try_get("dedupe_key")?,
                notification_type: row.try_get("type")?,
                status: row.try_get("status")?,
                reason: row.try_get("reason")?,
                attempts: row.try_get("attempts")?,
                due_at: to_datetime(row.try_get("due_at")?),
                sent_at: row.try_get::<Option<i64>, _>("sent_at")?.map(to_datetime),
                last_error: row.try_get("last_error")?,
            })
        })
        .collect()
}

/// The attempts made on one delivery, oldest first.
#[tracing::instrument(skip_all, fields(delivery_id = %delivery_id))]
pub async fn attempts_for(
    db: &Database,
    delivery_id: Uuid,
) -> Result<Vec<AttemptRecord>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT channel, status, reason, error, attempted_at FROM delivery_attempts
         WHERE delivery_id = $1 ORDER BY attempted_at, id",
    )
    .bind(delivery_id.to_string())
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(AttemptRecord {
                channel: row.try_get("channel")?,
                status: row.try_get("status")?,
                reason: row.try_get("reason")?,
                error: row.try_get("error")?,
                attempted_at: to_datetime(row.try_get("attempted_at")?),
            })
        })
        .collect()
}
