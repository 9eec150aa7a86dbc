//! The replica of users' notification preferences, kept from `user.*` events.
//!
//! Events may arrive twice or out of order: a write applies only when it carries a higher
//! `preferences_version` than the stored one.

use std::collections::HashMap;

use herald_events::{Channel, Preferences, Role};
use herald_platform::bulk::SqlType::{BigInt, Bool, Text};
use herald_platform::bulk::{JsonRows, ROWS_PER_STATEMENT, json_list, select_list, select_rows};
use herald_platform::db::{Backend, Tx, now_micros};
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::domain::Recipient;

const COLUMNS: &str = "user_id, name, email, role, promotions, order_updates, recommendations, \
     inventory_alerts, categories, channels, timezone, quiet_hours_start, quiet_hours_end, \
     preferences_version";

/// The replica's columns as read through the table alias `alias`, for joins.
pub(crate) fn columns_of(alias: &str) -> String {
    COLUMNS
        .split(',')
        .map(|column| format!("{alias}.{}", column.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn decode_error(e: impl std::error::Error + Send + Sync + 'static) -> sqlx::Error {
    sqlx::Error::Decode(Box::new(e))
}

/// A flag column: BOOLEAN on PostgreSQL, INTEGER 0/1 on SQLite (see the migration).
fn flag(row: &AnyRow, column: &str) -> Result<bool, sqlx::Error> {
    row.try_get::<bool, _>(column)
        .or_else(|_| row.try_get::<i64, _>(column).map(|v| v != 0))
}

pub(crate) fn recipient_from_row(row: &AnyRow) -> Result<Recipient, sqlx::Error> {
    let user_id: String = row.try_get("user_id")?;
    let role: String = row.try_get("role")?;
    let categories: String = row.try_get("categories")?;
    let channels: String = row.try_get("channels")?;
    Ok(Recipient {
        user_id: user_id.parse().map_err(decode_error)?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        role: Role::parse(&role)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown role {role}").into()))?,
        preferences: Preferences {
            promotions: flag(row, "promotions")?,
            order_updates: flag(row, "order_updates")?,
            recommendations: flag(row, "recommendations")?,
            inventory_alerts: flag(row, "inventory_alerts")?,
            categories: serde_json::from_str(&categories).map_err(decode_error)?,
            channels: serde_json::from_str::<Vec<Channel>>(&channels).map_err(decode_error)?,
            timezone: row.try_get("timezone")?,
            quiet_hours_start: row.try_get("quiet_hours_start")?,
            quiet_hours_end: row.try_get("quiet_hours_end")?,
        },
        preferences_version: row.try_get("preferences_version")?,
    })
}

fn json(value: &impl serde::Serialize) -> Result<String, sqlx::Error> {
    serde_json::to_string(value).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// Inserts each recipient, or replaces the stored preferences where the recipient's are
/// newer (preferences may have arrived first); who each is (name, email, role) is set from
/// here whatever the version. Two statements per [`ROWS_PER_STATEMENT`] recipients.
#[tracing::instrument(skip_all, fields(recipients = recipients.len()))]
pub async fn upsert_recipients(tx: &mut Tx, recipients: &[Recipient]) -> Result<(), sqlx::Error> {
    let rows = select_rows(
        Backend::of(tx),
        1,
        &[
            ("user_id", Text),
            ("name", Text),
            ("email", Text),
            ("role", Text),
            ("promotions", Bool),
            ("order_updates", Bool),
            ("recommendations", Bool),
            ("inventory_alerts", Bool),
            ("categories", Text),
            ("channels", Text),
            ("timezone", Text),
            ("quiet_hours_start", Text),
            ("quiet_hours_end", Text),
            ("preferences_version", BigInt),
            ("updated_at", BigInt),
        ],
    );
    let upsert = format!(
        "INSERT INTO recipients ({COLUMNS}, updated_at)
         {rows}
         ON CONFLICT (user_id) DO UPDATE SET
            name = excluded.name, email = excluded.email, role = excluded.role,
            promotions = excluded.promotions, order_updates = excluded.order_updates,
            recommendations = excluded.recommendations, inventory_alerts = excluded.inventory_alerts,
            categories = excluded.categories, channels = excluded.channels,
            timezone = excluded.timezone, quiet_hours_start = excluded.quiet_hours_start,
            quiet_hours_end = excluded.quiet_hours_end,
            preferences_version = excluded.preferences_version, updated_at = excluded.updated_at
         WHERE recipients.preferences_version < excluded.preferences_version"
    );
    let identities = format!(
        "UPDATE recipients SET name = r.name, email = r.email, role = r.role
         FROM ({rows}) AS r WHERE recipients.user_id = r.user_id"
    );
    let now = now_micros();
    for chunk in recipients.chunks(ROWS_PER_STATEMENT) {
        let mut rows = JsonRows::new();
        for r in chunk {
            let p = &r.preferences;
            rows.push(&(
                r.user_id,
                &r.name,
                &r.email,
                r.role.as_str(),
                p.promotions,
                p.order_updates,
                p.recommendations,
                p.inventory_alerts,
                json(&p.categories)?,
                json(&p.channels)?,
                &p.timezone,
                &p.quiet_hours_start,
                &p.quiet_hours_end,
                r.preferences_version,
                now,
            ))?;
        }
        let rows = rows.finish();
        sqlx::query(sqlx::AssertSqlSafe(upsert.as_str()))
            .bind(&rows)
            .execute(&mut **tx)
            .await?;
        sqlx::query(sqlx::AssertSqlSafe(identities.as_str()))
            .bind(&rows)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Replaces the user's preferences if `version` is newer than the stored one. Preferences
/// that arrive before the user's registration (both travel the same lane and may overtake
/// each other, or commit while this runs) are kept at once as a recipient without a name
/// or address yet, so nothing is decided on stale ones meanwhile: who the user is comes
/// from the registration alone, whichever commits first.
#[tracing::instrument(skip_all, fields(user_id = %user_id, version))]
pub async fn apply_preferences(
    tx: &mut Tx,
    user_id: Uuid,
    preferences: &Preferences,
    version: i64,
) -> Result<(), sqlx::Error> {
    let p = preferences;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO recipients ({COLUMNS}, updated_at)
         VALUES ($1, '', '', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (user_id) DO UPDATE SET
            promotions = excluded.promotions, order_updates = excluded.order_updates,
            recommendations = excluded.recommendations, inventory_alerts = excluded.inventory_alerts,
            categories = excluded.categories, channels = excluded.channels,
            timezone = excluded.timezone, quiet_hours_start = excluded.quiet_hours_start,
            quiet_hours_end = excluded.quiet_hours_end,
            preferences_version = excluded.preferences_version, updated_at = excluded.updated_at
         WHERE recipients.preferences_version < excluded.preferences_version"
    )))
    .bind(user_id.to_string())
    .bind(Role::Customer.as_str())
    .bind(p.promotions)
    .bind(p.order_updates)
    .bind(p.recommendations)
    .bind(p.inventory_alerts)
    .bind(json(&p.categories)?)
    .bind(json(&p.channels)?)
    .bind(&p.timezone)
    .bind(p.quiet_hours_start.clone())
    .bind(p.quiet_hours_end.clone())
    .bind(version)
    .bind(now_micros())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The user's replica, read in a transaction or on a plain connection.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn find_recipient(
    conn: &mut sqlx::AnyConnection,
    user_id: Uuid,
) -> Result<Option<Recipient>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM recipients WHERE user_id = $1"
    )))
    .bind(user_id.to_string())
    .fetch_optional(conn)
    .await?
    .as_ref()
    .map(recipient_from_row)
    .transpose()
}

/// The replicas of those of `user_ids` that have one, by user id.
#[tracing::instrument(skip_all, fields(users = user_ids.len()))]
pub async fn find_recipients(
    conn: &mut sqlx::AnyConnection,
    user_ids: &[Uuid],
) -> Result<HashMap<Uuid, Recipient>, sqlx::Error> {
    let mut found = HashMap::with_capacity(user_ids.len());
    let sql = format!(
        "SELECT {COLUMNS} FROM recipients WHERE user_id IN ({})",
        select_list(Backend::of(conn), 1)
    );
    for chunk in user_ids.chunks(ROWS_PER_STATEMENT) {
        // Planned each time: a plan cached while the table was small would scan it.
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .persistent(false)
            .bind(json_list(chunk)?)
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            let recipient = recipient_from_row(&row)?;
            found.insert(recipient.user_id, recipient);
        }
    }
    Ok(found)
}

/// One page of the ADMIN recipients, by user id after `after` (None: from the start).
#[tracing::instrument(skip_all, fields(limit))]
pub async fn admins_page(
    tx: &mut Tx,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<Recipient>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM recipients WHERE role = $1 AND user_id > $2
         ORDER BY user_id LIMIT $3"
    )))
    .bind(Role::Admin.as_str())
    .bind(after.map(|id| id.to_string()).unwrap_or_default())
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(recipient_from_row)
    .collect()
}
