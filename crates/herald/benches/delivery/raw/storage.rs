//! The storage alone: notification-sized rows inserted in multi-row statements (the limit),
//! and one row a transaction from many writers at once (the consumer's way of writing).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::future::try_join_all;
use herald_platform::Settings;
use herald_platform::db::{Database, now_micros};
use herald_platform::testing::drop_schema;
use uuid::Uuid;

/// Transactions at once in the one-row-a-transaction measurement: as many as a service's
/// consumer runs handlers.
pub const WRITERS: usize = 32;

/// Notification-sized rows into a fresh table of the storage the settings name: `count`
/// in statements of `per_statement` rows one after the other, then `count` more each in a
/// transaction of its own from [`WRITERS`] writers at once, the way the notifications
/// consumer writes.
pub async fn inserts(
    settings: &Settings,
    count: usize,
    per_statement: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let db = Database::connect(settings, "bench").await?;
    sqlx::query(
        "CREATE TABLE bench_notifications (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            type TEXT NOT NULL,
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            data TEXT,
            created_at BIGINT NOT NULL)",
    )
    .execute(db.pool())
    .await
    .context("creating the benchmark's table")?;
    let batched = multi_row_insert(&db, &NotificationRow::many(count), per_statement).await;
    let one_by_one = row_per_transaction(&db, &NotificationRow::many(count)).await;
    drop_schema(&db).await;
    Ok((batched?, one_by_one?))
}

async fn multi_row_insert(
    db: &Database,
    rows: &[NotificationRow],
    per_statement: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for chunk in rows.chunks(per_statement) {
        let sql = insert_sql(chunk.len());
        let query = chunk.iter().fold(
            sqlx::query(sqlx::AssertSqlSafe(sql.as_str())),
            |query, row| row.bind(query),
        );
        query.execute(db.pool()).await.context("inserting rows")?;
    }
    Ok(started.elapsed())
}

async fn row_per_transaction(db: &Database, rows: &[NotificationRow]) -> anyhow::Result<Duration> {
    let sql = insert_sql(1);
    let next = AtomicUsize::new(0);
    let writer = || async {
        while let Some(row) = rows.get(next.fetch_add(1, Ordering::Relaxed)) {
            let mut tx = db.begin().await?;
            row.bind(sqlx::query(sqlx::AssertSqlSafe(sql.as_str())))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
        }
        anyhow::Ok(())
    };
    let started = Instant::now();
    try_join_all((0..WRITERS).map(|_| writer()))
        .await
        .context("inserting rows one by one")?;
    Ok(started.elapsed())
}

fn insert_sql(rows: usize) -> String {
    format!(
        "INSERT INTO bench_notifications (id, user_id, type, title, body, data, created_at)
         VALUES {}",
        values_list(rows, NotificationRow::COLUMNS)
    )
}

/// A row the size of a stored ORDER_UPDATE.
struct NotificationRow {
    id: String,
    user_id: String,
    title: String,
    body: String,
    data: String,
    created_at: i64,
}

impl NotificationRow {
    const COLUMNS: usize = 7;

    fn many(count: usize) -> Vec<NotificationRow> {
        (0..count).map(|_| NotificationRow::new()).collect()
    }

    fn new() -> NotificationRow {
        let order_id = Uuid::now_v7();
        NotificationRow {
            id: Uuid::now_v7().to_string(),
            user_id: Uuid::now_v7().to_string(),
            title: format!(
                "Your order #{} is confirmed",
                &order_id.simple().to_string()[24..]
            ),
            body: "6 items, €75.00. We will tell you as soon as it ships; you can follow it \
                   under My orders."
                .to_owned(),
            data: format!(r#"{{"orderId":"{order_id}","status":"CONFIRMED"}}"#),
            created_at: now_micros(),
        }
    }

    fn bind<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
        query
            .bind(self.id.clone())
            .bind(self.user_id.clone())
            .bind("ORDER_UPDATE")
            .bind(self.title.clone())
            .bind(self.body.clone())
            .bind(self.data.clone())
            .bind(self.created_at)
    }
}

/// `($1, $2), ($3, $4)` for 2 rows of 2 columns.
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
