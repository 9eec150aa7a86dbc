//! The record of every decision (`notification_decisions`), the promotions counted from
//! it for the daily cap, and what became of each notification on each channel (the
//! `deliveries` view).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use herald_platform::db::{Backend, Database, Tx, to_datetime};
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use crate::decision::Decision;
use crate::domain::{Draft, NotificationType};
use crate::store::{decode_error, rows_per_statement, values_list};

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
    for chunk in decided.chunks(rows_per_statement(tx)) {
        let sql = format!(
            "INSERT INTO notification_decisions
                (dedupe_key, user_id, type, outcome, reason, channels, decided_at, deliver_at)
             VALUES {}
             ON CONFLICT DO NOTHING
             RETURNING dedupe_key",
            values_list(chunk.len(), 8)
        );
        let mut query = sqlx::query(&sql);
        for (draft, decision) in chunk {
            let channels = serde_json::to_string(decision.channels())
                .map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
            query = query
                .bind(draft.dedupe_key.clone())
                .bind(draft.user_id.to_string())
                .bind(draft.notification_type.as_str())
                .bind(decision.outcome().as_str())
                .bind(decision.reason().map(|r| r.as_str()))
                .bind(channels)
                .bind(decided_at.timestamp_micros())
                .bind(decision.until().map(|until| until.timestamp_micros()));
        }
        for row in query.fetch_all(&mut **tx).await? {
            recorded.insert(row.try_get::<String, _>("dedupe_key")?);
        }
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
    for chunk in users.chunks(rows_per_statement(tx)) {
        let placeholders: Vec<String> = (4..4 + chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT user_id, decided_at FROM notification_decisions
             WHERE type = $1 AND outcome IN ('SENT', 'DEFERRED')
               AND decided_at >= $2 AND decided_at < $3 AND user_id IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql)
            .bind(NotificationType::Promotion.as_str())
            .bind(from.timestamp_micros())
            .bind(to.timestamp_micros());
        for user in chunk {
            query = query.bind(user.to_string());
        }
        for row in query.fetch_all(&mut **tx).await? {
            let user: String = row.try_get("user_id")?;
            let user = user
                .parse()
                .map_err(|e| decode_error(format!("user id: {e}")))?;
            decided.push((user, to_datetime(row.try_get("decided_at")?)));
        }
    }
    Ok(decided)
}

/// Serializes deciding promotions for `users` (sorted, so that two fan-outs wait for each
/// other instead of deadlocking) until the transaction ends, so that two at once cannot
/// both see the last one of the day's allowance. SQLite transactions are serial already.
#[tracing::instrument(skip_all, fields(users = users.len()))]
pub async fn lock_promotion_allowance(
    tx: &mut Tx,
    backend: Backend,
    users: &[Uuid],
) -> Result<(), sqlx::Error> {
    if backend != Backend::Postgres || users.is_empty() {
        return Ok(());
    }
    for chunk in users.chunks(rows_per_statement(tx)) {
        let sql = format!(
            "SELECT pg_advisory_xact_lock(hashtext('herald.promotions:' || u)) FROM (VALUES {}) AS v(u)",
            values_list(chunk.len(), 1)
        );
        let mut query = sqlx::query(&sql);
        for user in chunk {
            query = query.bind(user.to_string());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
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
