//! The replica of who watches which product, kept from `product.watched`, and the
//! watchers of one product with their preferences for a fan-out.

use herald_events::ProductWatched;
use herald_platform::db::{Tx, now_micros};
use sqlx::Row;
use uuid::Uuid;

use crate::domain::Recipient;
use crate::recipients::{columns_of, recipient_from_row};

/// Keeps the watch; returns false when it was kept before.
#[tracing::instrument(skip_all, fields(product_id = %watch.product_id, user_id = %watch.user_id))]
pub async fn record_watch(tx: &mut Tx, watch: &ProductWatched) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO watches (product_id, user_id, watched_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(watch.product_id.to_string())
    .bind(watch.user_id.to_string())
    .bind(now_micros())
    .execute(&mut **tx)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// One page of the product's watchers by user id after `after` (None: from the start),
/// each with the replica of their preferences (None: the user is unknown here).
#[tracing::instrument(skip_all, fields(product_id = %product_id, limit))]
pub async fn watchers_page(
    tx: &mut Tx,
    product_id: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<(Uuid, Option<Recipient>)>, sqlx::Error> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT w.user_id AS watcher_id, {}
         FROM watches w LEFT JOIN recipients r ON r.user_id = w.user_id
         WHERE w.product_id = $1 AND w.user_id > $2
         ORDER BY w.user_id LIMIT $3",
        columns_of("r")
    )))
    .bind(product_id.to_string())
    .bind(after.map(|id| id.to_string()).unwrap_or_default())
    .bind(limit)
    .fetch_all(&mut **tx)
    .await?;
    rows.iter()
        .map(|row| {
            let watcher: String = row.try_get("watcher_id")?;
            let watcher = watcher
                .parse()
                .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
            let known = row.try_get::<Option<String>, _>("user_id")?.is_some();
            let recipient = if known {
                Some(recipient_from_row(row)?)
            } else {
                None
            };
            Ok((watcher, recipient))
        })
        .collect()
}
