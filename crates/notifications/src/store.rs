//! The in-app notifications and the record of every decision.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use herald_platform::db::{Backend, Database, Tx, now_micros, to_datetime};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::decision::Decision;
use crate::domain::{Draft, NotificationType, PageRequest, Priority};

/// An in-app notification as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub id: Uuid,
    pub user_id: Uuid,
    #[serde(rename = "type")]
    pub notification_type: NotificationType,
    pub priority: Priority,
    pub title: String,
    pub body: String,
    pub data: Option<serde_json::Value>,
    pub read: bool,
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, user_id, type, priority, title, body, data, created_at, read_at";

fn decode_error(message: String) -> sqlx::Error {
    sqlx::Error::Decode(message.into())
}

fn notification_from_row(row: &AnyRow) -> Result<Notification, sqlx::Error> {
    let id: String = row.try_get("id")?;
    let user_id: String = row.try_get("user_id")?;
    let notification_type: String = row.try_get("type")?;
    let priority: String = row.try_get("priority")?;
    let data: Option<String> = row.try_get("data")?;
    let read_at: Option<i64> = row.try_get("read_at")?;
    Ok(Notification {
        id: id
            .parse()
            .map_err(|e| decode_error(format!("notification id: {e}")))?,
        user_id: user_id
            .parse()
            .map_err(|e| decode_error(format!("user id: {e}")))?,
        notification_type: NotificationType::parse(&notification_type).ok_or_else(|| {
            decode_error(format!("unknown notification type {notification_type}"))
        })?,
        priority: Priority::parse(&priority)
            .ok_or_else(|| decode_error(format!("unknown priority {priority}")))?,
        title: row.try_get("title")?,
        body: row.try_get("body")?,
        data: data
            .map(|d| serde_json::from_str(&d))
            .transpose()
            .map_err(|e| decode_error(format!("notification data: {e}")))?,
        read: read_at.is_some(),
        created_at: to_datetime(row.try_get("created_at")?),
        read_at: read_at.map(to_datetime),
    })
}

/// Rows per multi-row INSERT, well under both engines' limit of bound parameters.
const ROWS_PER_INSERT: usize = 200;

/// `($1, $2), ($3, $4)` for 2 rows of 2 columns: the VALUES of a multi-row insert.
fn values_list(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let placeholders: Vec<String> = (1..=columns)
                .map(|column| format!("${}", row * columns + column))
                .collect();
            format!("({})", placeholders.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

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
    for chunk in decided.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO notification_decisions
                (dedupe_key, user_id, type, outcome, reason, channels, decided_at)
             VALUES {}
             ON CONFLICT DO NOTHING
             RETURNING dedupe_key",
            values_list(chunk.len(), 7)
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
                .bind(decided_at.timestamp_micros());
        }
        for row in query.fetch_all(&mut **tx).await? {
            recorded.insert(row.try_get::<String, _>("dedupe_key")?);
        }
    }
    Ok(recorded)
}

/// Stores the drafts as unread in-app notifications, keyed by dedupe key in the answer; a
/// dedupe key that already has a notification is left out.
#[tracing::instrument(skip_all, fields(drafts = drafts.len()))]
pub async fn insert_notifications(
    tx: &mut Tx,
    drafts: &[&Draft],
) -> Result<HashMap<String, Notification>, sqlx::Error> {
    let mut stored = HashMap::with_capacity(drafts.len());
    let created_at = now_micros();
    for chunk in drafts.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO notifications
                (id, user_id, type, priority, title, body, data, dedupe_key, created_at)
             VALUES {}
             ON CONFLICT (dedupe_key) DO NOTHING
             RETURNING {COLUMNS}, dedupe_key",
            values_list(chunk.len(), 9)
        );
        let mut query = sqlx::query(&sql);
        for draft in chunk {
            let data = match &draft.data {
                None | Some(serde_json::Value::Null) => None,
                Some(value) => Some(value.to_string()),
            };
            query = query
                .bind(Uuid::now_v7().to_string())
                .bind(draft.user_id.to_string())
                .bind(draft.notification_type.as_str())
                .bind(draft.priority().as_str())
                .bind(draft.title.clone())
                .bind(draft.body.clone())
                .bind(data)
                .bind(draft.dedupe_key.clone())
                .bind(created_at);
        }
        for row in query.fetch_all(&mut **tx).await? {
            stored.insert(row.try_get("dedupe_key")?, notification_from_row(&row)?);
        }
    }
    Ok(stored)
}

/// A read-only transaction whose statements all see one snapshot, so a page and its
/// total agree. SQLite transactions read from one snapshot already.
pub async fn begin_snapshot(db: &Database) -> Result<Tx, sqlx::Error> {
    let mut tx = db.begin().await?;
    if db.backend() == Backend::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
    }
    Ok(tx)
}

fn unread_filter(unread_only: bool) -> &'static str {
    // Spelled like the partial index's predicate so both engines can use that index.
    if unread_only {
        " AND read_at IS NULL"
    } else {
        ""
    }
}

/// One page of the user's notifications, newest first, with one extra row when more follow.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn list_notifications(
    tx: &mut Tx,
    user_id: Uuid,
    page: &PageRequest,
) -> Result<Vec<Notification>, sqlx::Error> {
    let filter = unread_filter(page.unread_only);
    let after = if page.after.is_some() {
        " AND id < $3"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM notifications WHERE user_id = $1{filter}{after}
         ORDER BY id DESC LIMIT $2"
    );
    let mut query = sqlx::query(&sql)
        .bind(user_id.to_string())
        .bind(page.first + 1);
    if let Some(after) = page.after {
        query = query.bind(after.to_string());
    }
    query
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(notification_from_row)
        .collect()
}

#[tracing::instrument(skip_all, fields(user_id = %user_id, unread_only))]
pub async fn count_notifications<'c>(
    executor: impl sqlx::Executor<'c, Database = sqlx::Any>,
    user_id: Uuid,
    unread_only: bool,
) -> Result<i64, sqlx::Error> {
    let filter = unread_filter(unread_only);
    sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM notifications WHERE user_id = $1{filter}"
    ))
    .bind(user_id.to_string())
    .fetch_one(executor)
    .await
}

/// Marks the user's notification read (the first read time stays); None if the user has
/// no such notification.
#[tracing::instrument(skip_all, fields(user_id = %user_id, notification_id = %id))]
pub async fn mark_read(
    db: &Database,
    user_id: Uuid,
    id: Uuid,
) -> Result<Option<Notification>, sqlx::Error> {
    sqlx::query(&format!(
        "UPDATE notifications SET read_at = COALESCE(read_at, $1)
         WHERE id = $2 AND user_id = $3
         RETURNING {COLUMNS}"
    ))
    .bind(now_micros())
    .bind(id.to_string())
    .bind(user_id.to_string())
    .fetch_optional(db.pool())
    .await?
    .as_ref()
    .map(notification_from_row)
    .transpose()
}

/// Marks every unread notification of the user read; returns how many changed.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn mark_all_read(db: &Database, user_id: Uuid) -> Result<u64, sqlx::Error> {
    let changed =
        sqlx::query("UPDATE notifications SET read_at = $1 WHERE user_id = $2 AND read_at IS NULL")
            .bind(now_micros())
            .bind(user_id.to_string())
            .execute(db.pool())
            .await?;
    Ok(changed.rows_affected())
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
}

/// The user's recorded decisions, oldest first.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn decisions_for_user(
    db: &Database,
    user_id: Uuid,
) -> Result<Vec<DecisionRecord>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT dedupe_key, user_id, type, outcome, reason, channels, decided_at
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
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::values_list;

    #[test]
    fn a_multi_row_insert_numbers_its_placeholders_row_by_row() {
        assert_eq!(values_list(1, 3), "($1, $2, $3)");
        assert_eq!(values_list(2, 2), "($1, $2), ($3, $4)");
    }
}
