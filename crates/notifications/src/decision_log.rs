//! The record of every decision (`notification_decisions`), the promotions counted from
//! it for the daily cap, and what became of each notification on each channel (the
//! `deliveries` view).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use herald_platform::bulk::SqlType::{BigInt, Text};
use herald_platform::bulk::{JsonRows, ROWS_PER_STATEMENT, json_list, select_list, select_rows};
use herald_platform::db::{Backend, Database, Tx, to_datetime};
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use crate::decision::Decision;
use crate::domain::{Draft, NotificationType};
use crate::store::decode_error;

/// Records how each draft was decided and returns the dedupe keys recorded now. A key
/// decided before is left out and nothing is written for it: the caller must then have no
/// further effect for that draft.
#[tracing::instrument(skip_all, fields(drafts = decided.len()))]
pub async fn record_decisions(
    tx: &mut Tx,
    decided: &[(&Draft, &Decision)],
    decided_at: DateTime<Utc>,
) -> Result<HashSet<String>, sqlx::Error> {
    let mut recorded = HashSet::with_capacity(decided.len());
    let sql = format!(
        "INSERT INTO notification_decisions
            (dedupe_key, user_id, type, outcome, reason, channels, decided_at, deliver_at)
         {}
         ON CONFLICT DO NOTHING
         RETURNING dedupe_key",
        select_rows(
            Backend::of(tx),
            1,
            &[
                ("dedupe_key", Text),
                ("user_id", Text),
                ("type", Text),
                ("outcome", Text),
                ("reason", Text),
                ("channels", Text),
                ("decided_at", BigInt),
                ("deliver_at", BigInt),
            ],
        )
    );
    for chunk in decided.chunks(ROWS_PER_STATEMENT) {
        let mut rows = JsonRows::new();
        for (draft, decision) in chunk {
            let channels = serde_json::to_string(decision.channels())
                .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
            rows.push(&(
                &draft.dedupe_key,
                draft.user_id,
                draft.notification_type.as_str(),
                decision.outcome().as_str(),
                decision.reason().map(|r| r.as_str()),
                channels,
                decided_at.timestamp_micros(),
                decision.until().map(|until| until.timestamp_micros()),
            ))?;
        }
        let keys: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(rows.finish())
            .fetch_all(&mut **tx)
            .await?;
        recorded.extend(keys);
    }
    Ok(recorded)
}

/// When each of `users` was sent (or deferred) a promotion decided in `[from, to)`.
#[tracing::instrument(skip_all, fields(users = users.len()))]
pub async fn promotions_decided(
    tx: &mut Tx,
    users: &[Uuid],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<(Uuid, DateTime<Utc>)>, sqlx::Error> {
    let mut decided = Vec::new();
    // One index probe per user. PostgreSQL is told so (a LATERAL subquery it cannot
    // flatten, planned for each statement): it estimates the decisions of today it has no
    // statistics for yet at one row, and would scan the whole table once per user it asks
    // about, the cost growing with every page a campaign adds.
    let backend = Backend::of(tx);
    let users_list = select_list(backend, 4);
    let today = "d.type = $1 AND d.outcome IN ('SENT', 'DEFERRED')
         AND d.decided_at >= $2 AND d.decided_at < $3";
    let sql = match backend {
        Backend::Postgres => format!(
            "SELECT u.value AS user_id, d.decided_at FROM ({users_list}) AS u
             CROSS JOIN LATERAL (SELECT d.decided_at FROM notification_decisions d
                                 WHERE d.user_id = u.value AND {today} OFFSET 0) AS d"
        ),
        Backend::Sqlite => format!(
            "SELECT d.user_id, d.decided_at FROM ({users_list}) AS u
             JOIN notification_decisions d ON d.user_id = u.value WHERE {today}"
        ),
    };
    for chunk in users.chunks(ROWS_PER_STATEMENT) {
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .persistent(false)
            .bind(NotificationType::Promotion.as_str())
            .bind(from.timestamp_micros())
            .bind(to.timestamp_micros())
            .bind(json_list(chunk)?)
            .fetch_all(&mut **tx)
            .await?;
        for row in rows {
            let user: String = row.try_get("user_id")?;
            let user = user
                .parse()
                .map_err(|e| decode_error(format!("user id: {e}")))?;
            decided.push((user, to_datetime(row.try_get("decided_at")?)));
        }
    }
    Ok(decided)
}

/// A recorded decision, for operators and tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DecisionRecord {
    pub dedupe_key: String,
    pub user_id: Uuid,
    #[serde(rename = "type")]
    pub notification_type: String,
    pub outcome: String,
    pub reason: Option<String>,
    pub channels: Vec<String>,
    pub decided_at: DateTime<Utc>,
    /// When a DEFERRED notification is delivered.
    pub deliver_at: Option<DateTime<Utc>>,
}

/// The user's recorded decisions, oldest first.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn decisions_for_user(
    db: &Database,
    user_id: Uuid,
) -> Result<Vec<DecisionRecord>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT dedupe_key, user_id, type, outcome, reason, channels, decided_at, deliver_at
         FROM notification_decisions WHERE user_id = $1 ORDER BY decided_at, dedupe_key",
    )
    .bind(user_id.to_string())
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let user: String = row.try_get("user_id")?;
            let channels: String = row.try_get("channels")?;
            Ok(DecisionRecord {
                dedupe_key: row.try_get("dedupe_key")?,
                user_id: user
                    .parse()
                    .map_err(|e| decode_error(format!("user id: {e}")))?,
                notification_type: row.try_get("type")?,
                outcome: row.try_get("outcome")?,
                reason: row.try_get("reason")?,
                channels: serde_json::from_str(&channels)
                    .map_err(|e| decode_error(format!("decision channels: {e}")))?,
                decided_at: to_datetime(row.try_get("decided_at")?),
                deliver_at: row
                    .try_get::<Option<i64>, _>("deliver_at")?
                    .map(to_datetime),
            })
        })
        .collect()
}

/// One notification on one channel, as the `deliveries` view shows it to operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    pub dedupe_key: String,
    #[serde(rename = "type")]
    pub notification_type: String,
    /// `IN_APP`, `EMAIL`, or None for a notification suppressed on every channel.
    pub channel: Option<String>,
    pub status: String,
    pub reason: Option<String>,
    pub attempts: i64,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

/// The user's deliveries on every channel, oldest first.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn deliveries_for_user(
    db: &Database,
    user_id: Uuid,
) -> Result<Vec<DeliveryRecord>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT dedupe_key, type, channel, status, reason, attempts, error, at
         FROM deliveries WHERE user_id = $1 ORDER BY at, dedupe_key, channel",
    )
    .bind(user_id.to_string())
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(DeliveryRecord {
                dedupe_key: row.try_get("dedupe_key")?,
                notification_type: row.try_get("type")?,
                channel: row.try_get("channel")?,
                status: row.try_get("status")?,
                reason: row.try_get("reason")?,
                attempts: row.try_get("attempts")?,
                error: row.try_get("error")?,
                at: to_datetime(row.try_get("at")?),
            })
        })
        .collect()
}
