//! The in-app notifications.
//!
//! A notification is visible from its `deliver_at` on: at once, or when the recipient's
//! quiet hours end. Every read takes "now" from the service's clock.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use herald_platform::bulk::SqlType::{BigInt, Text};
use herald_platform::bulk::{JsonRows, ROWS_PER_STATEMENT, select_rows};
use herald_platform::db::{Backend, Database, Tx, to_datetime};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

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
    /// When it reached the user's list: its creation, or the end of the quiet hours that
    /// deferred it. Lists are newest first by this.
    pub created_at: DateTime<Utc>,
    pub read_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, user_id, type, priority, title, body, data, deliver_at, read_at";

pub(crate) fn decode_error(message: String) -> sqlx::Error {
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
        created_at: to_datetime(row.try_get("deliver_at")?),
        read_at: read_at.map(to_datetime),
    })
}

/// A draft's `data` as stored: JSON text, or NULL.
pub(crate) fn data_column(draft: &Draft) -> Option<String> {
    match &draft.data {
        None | Some(serde_json::Value::Null) => None,
        Some(value) => Some(value.to_string()),
    }
}

/// Stores the drafts as unread in-app notifications, each visible from its time, keyed by
/// dedupe key in the answer. Call it only for drafts whose decision was recorded in the
/// same transaction ([`crate::decision_log::record_decisions`]): that record, one per
/// dedupe key, is what keeps a notification from being stored twice.
#[tracing::instrument(skip_all, fields(drafts = drafts.len()))]
pub async fn insert_notifications(
    tx: &mut Tx,
    drafts: &[(&Draft, DateTime<Utc>)],
    now: DateTime<Utc>,
) -> Result<HashMap<String, Notification>, sqlx::Error> {
    let mut stored = HashMap::with_capacity(drafts.len());
    let sql = format!(
        "INSERT INTO notifications
            (id, user_id, type, priority, title, body, data, dedupe_key, created_at, deliver_at)
         {}",
        select_rows(
            Backend::of(tx),
            1,
            &[
                ("id", Text),
                ("user_id", Text),
                ("type", Text),
                ("priority", Text),
                ("title", Text),
                ("body", Text),
                ("data", Text),
                ("dedupe_key", Text),
                ("created_at", BigInt),
                ("deliver_at", BigInt),
            ],
        )
    );
    for chunk in drafts.chunks(ROWS_PER_STATEMENT) {
        let mut rows = JsonRows::new();
        for (draft, deliver_at) in chunk {
            let id = Uuid::now_v7();
            rows.push(&(
                id,
                draft.user_id,
                draft.notification_type.as_str(),
                draft.priority().as_str(),
                &draft.title,
                &draft.body,
                data_column(draft),
                &draft.dedupe_key,
                now.timestamp_micros(),
                deliver_at.timestamp_micros(),
            ))?;
            stored.insert(
                draft.dedupe_key.clone(),
                Notification {
                    id,
                    user_id: draft.user_id,
                    notification_type: draft.notification_type,
                    priority: draft.priority(),
                    title: draft.title.clone(),
                    body: draft.body.clone(),
                    data: draft.data.clone().filter(|data| !data.is_null()),
                    read: false,
                    // Stored in microseconds.
                    created_at: to_datetime(deliver_at.timestamp_micros()),
                    read_at: None,
                },
            );
        }
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(rows.finish())
            .execute(&mut **tx)
            .await?;
    }
    Ok(stored)
}

fn unread_filter(unread_only: bool) -> &'static str {
    // Spelled like the partial index's predicate so both engines can use that index.
    if unread_only {
        " AND read_at IS NULL"
    } else {
        ""
    }
}

/// A page of the user's notifications, as read from storage.
#[derive(Debug)]
pub struct ListedPage {
    /// Newest first, `page.first + 1` of them at most, so the caller can tell whether
    /// another page follows.
    pub rows: Vec<Notification>,
    /// How many there are in all, when asked.
    pub total_count: Option<i64>,
    /// On a first page: when the next of the user's notifications that wait for their time
    /// becomes visible (until then the page stays as it is, unless the inbox changes).
    pub next_visible: Option<DateTime<Utc>>,
}

/// A page of the user's notifications visible at `now`, newest first, with how many there
/// are in all when `with_total`. One statement, so the page and its count see the same
/// snapshot and cost one round trip. A cursor that names none of the user's notifications
/// ends the list.
#[tracing::instrument(skip_all, fields(user_id = %user_id, unread_only = page.unread_only))]
pub async fn list_page(
    db: &Database,
    user_id: Uuid,
    page: &PageRequest,
    now: DateTime<Utc>,
    with_total: bool,
) -> Result<ListedPage, sqlx::Error> {
    let filter = unread_filter(page.unread_only);
    let visible = format!("user_id = $1 AND deliver_at <= $3{filter}");
    let after = if page.after.is_some() {
        " AND (deliver_at, id) <
            (SELECT c.deliver_at, c.id FROM notifications c WHERE c.id = $4 AND c.user_id = $1)"
    } else {
        ""
    };
    // Uncorrelated subqueries: both engines run them once per statement, not per row.
    let total = if with_total {
        format!(", (SELECT COUNT(*) FROM notifications WHERE {visible}) AS total_count")
    } else {
        String::new()
    };
    let next = if page.after.is_none() {
        ", (SELECT MIN(deliver_at) FROM notifications WHERE user_id = $1 AND deliver_at > $3)
            AS next_visible"
    } else {
        ""
    };
    let sql = format!(
        "SELECT {COLUMNS}{total}{next} FROM notifications
         WHERE {visible}{after}
         ORDER BY deliver_at DESC, id DESC LIMIT $2"
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(user_id.to_string())
        .bind(page.first + 1)
        .bind(now.timestamp_micros());
    if let Some(after) = page.after {
        query = query.bind(after.to_string());
    }
    let rows = query.fetch_all(db.pool()).await?;
    let nodes = rows
        .iter()
        .map(notification_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let total_count = match rows.first() {
        _ if !with_total => None,
        Some(row) => Some(row.try_get::<i64, _>("total_count")?),
        // No row carries the count: an empty first page means none; past the last page
        // it is asked on its own.
        None if page.after.is_none() => Some(0),
        None => Some(count_notifications(db.pool(), user_id, page.unread_only, now).await?),
    };
    let next_visible = match rows.first() {
        Some(row) if page.after.is_none() => row
            .try_get::<Option<i64>, _>("next_visible")?
            .map(to_datetime),
        // An empty first page: none is visible, so any waiting one would be the next.
        None if page.after.is_none() => next_to_come(db, user_id, now).await?,
        _ => None,
    };
    Ok(ListedPage {
        rows: nodes,
        total_count,
        next_visible,
    })
}

/// When the first of the user's notifications still waiting at `now` becomes visible.
async fn next_to_come(
    db: &Database,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    let next: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(deliver_at) FROM notifications WHERE user_id = $1 AND deliver_at > $2",
    )
    .bind(user_id.to_string())
    .bind(now.timestamp_micros())
    .fetch_one(db.pool())
    .await?;
    Ok(next.map(to_datetime))
}

/// How many of the user's notifications are visible at `now`.
#[tracing::instrument(skip_all, fields(user_id = %user_id, unread_only))]
pub async fn count_notifications<'c>(
    executor: impl sqlx::Executor<'c, Database = sqlx::Any>,
    user_id: Uuid,
    unread_only: bool,
    now: DateTime<Utc>,
) -> Result<i64, sqlx::Error> {
    let filter = unread_filter(unread_only);
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND deliver_at <= $2{filter}"
    )))
    .bind(user_id.to_string())
    .bind(now.timestamp_micros())
    .fetch_one(executor)
    .await
}

/// The user's unread notifications visible at `now`, and whether more are waiting for
/// their time (then a cached count would soon be wrong).
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn count_unread_and_waiting(
    db: &Database,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(i64, bool), sqlx::Error> {
    let row = sqlx::query(
        "SELECT COALESCE(SUM(CASE WHEN deliver_at <= $2 THEN 1 ELSE 0 END), 0) AS visible,
                COALESCE(SUM(CASE WHEN deliver_at > $2 THEN 1 ELSE 0 END), 0) AS waiting
         FROM notifications WHERE user_id = $1 AND read_at IS NULL",
    )
    .bind(user_id.to_string())
    .bind(now.timestamp_micros())
    .fetch_one(db.pool())
    .await?;
    let visible: i64 = row.try_get("visible")?;
    let waiting: i64 = row.try_get("waiting")?;
    Ok((visible, waiting > 0))
}

/// Marks the user's notification read (the first read time stays); None if the user has
/// no such notification visible at `now`.
#[tracing::instrument(skip_all, fields(user_id = %user_id, notification_id = %id))]
pub async fn mark_read(
    db: &Database,
    user_id: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<Notification>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE notifications SET read_at = COALESCE(read_at, $1)
         WHERE id = $2 AND user_id = $3 AND deliver_at <= $1
         RETURNING {COLUMNS}"
    )))
    .bind(now.timestamp_micros())
    .bind(id.to_string())
    .bind(user_id.to_string())
    .fetch_optional(db.pool())
    .await?
    .as_ref()
    .map(notification_from_row)
    .transpose()
}

/// Marks every unread notification of the user visible at `now` read; returns how many
/// changed. Those still waiting for their time stay unread.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn mark_all_read(
    db: &Database,
    user_id: Uuid,
    now: DateTime<Utc>,
) -> Result<u64, sqlx::Error> {
    let changed = sqlx::query(
        "UPDATE notifications SET read_at = $1
         WHERE user_id = $2 AND deliver_at <= $1 AND read_at IS NULL",
    )
    .bind(now.timestamp_micros())
    .bind(user_id.to_string())
    .execute(db.pool())
    .await?;
    Ok(changed.rows_affected())
}
