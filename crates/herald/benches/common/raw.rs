//! The raw cost of writing notification-sized rows straight to the notifications
//! service's storage (PostgreSQL: `COPY`; SQLite, which has none: `INSERT … SELECT` of
//! 2,000 rows a statement in one transaction): the baseline the campaign and customers
//! benchmarks measure against in the same run.

use std::time::{Duration, Instant};

use anyhow::Context;
use herald_platform::Settings;
use herald_platform::bulk::{JsonRows, ROWS_PER_STATEMENT, SqlType, select_rows};
use herald_platform::db::{Database, now_micros};
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};
use uuid::Uuid;

/// A notification-sized row: the columns of `notifications`, a ~40 B title, a ~60 B body.
fn row_values(i: usize) -> [String; 10] {
    let user = Uuid::now_v7();
    [
        Uuid::now_v7().to_string(),
        user.to_string(),
        "PROMOTION".to_owned(),
        "STANDARD".to_owned(),
        "Spring sale".to_owned(),
        "20 % off everything until Sunday".to_owned(),
        format!("{{\"promotionId\":\"{}\",\"n\":{i}}}", Uuid::nil()),
        format!("promotion:{}:{user}", Uuid::nil()),
        now_micros().to_string(),
        now_micros().to_string(),
    ]
}

const RAW_TABLE: &str = "CREATE TABLE raw_notifications (
    id TEXT PRIMARY KEY, user_id TEXT NOT NULL, type TEXT NOT NULL, priority TEXT NOT NULL,
    title TEXT NOT NULL, body TEXT NOT NULL, data TEXT, dedupe_key TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL, deliver_at BIGINT NOT NULL)";

/// A PostgreSQL connection in the service's schema, for COPY (which `sqlx::Any` lacks).
pub async fn pg(settings: &Settings, db: &Database) -> anyhow::Result<PgConnection> {
    let url = settings
        .database_url
        .as_deref()
        .context("no database URL")?;
    let mut conn = PgConnection::connect(url).await?;
    let schema = db.schema().context("no schema")?;
    conn.execute(sqlx::AssertSqlSafe(format!(
        "SET search_path = \"{schema}\""
    )))
    .await?;
    Ok(conn)
}

pub async fn raw_copy(settings: &Settings, db: &Database, rows: usize) -> anyhow::Result<Duration> {
    let mut conn = pg(settings, db).await?;
    conn.execute(RAW_TABLE).await?;
    let data: Vec<Vec<u8>> = (0..rows)
        .collect::<Vec<_>>()
        .chunks(10_000)
        .map(|chunk| {
            chunk
                .iter()
                .map(|i| row_values(*i).join("\t") + "\n")
                .collect::<String>()
                .into_bytes()
        })
        .collect();
    let started = Instant::now();
    let mut copy = conn
        .copy_in_raw("COPY raw_notifications FROM STDIN")
        .await?;
    for chunk in data {
        copy.send(chunk).await?;
    }
    let copied = copy.finish().await?;
    let took = started.elapsed();
    anyhow::ensure!(copied as usize == rows, "copied {copied} of {rows}");
    conn.execute("DROP TABLE raw_notifications").await?;
    Ok(took)
}

/// SQLite's fastest bulk write through the platform's storage: one transaction of
/// `INSERT … SELECT` statements, each unpacking 2,000 rows from one JSON parameter (a
/// multi-row `VALUES` of 100 rows a statement took 21 s for the million).
pub async fn raw_inserts(db: &Database, rows: usize) -> anyhow::Result<Duration> {
    sqlx::query(RAW_TABLE).execute(db.pool()).await?;
    let values: Vec<[String; 10]> = (0..rows).map(row_values).collect();
    let text = SqlType::Text;
    let sql = format!(
        "INSERT INTO raw_notifications {}",
        select_rows(
            db.backend(),
            1,
            &[
                ("id", text),
                ("user_id", text),
                ("type", text),
                ("priority", text),
                ("title", text),
                ("body", text),
                ("data", text),
                ("dedupe_key", text),
                ("created_at", SqlType::BigInt),
                ("deliver_at", SqlType::BigInt),
            ]
        )
    );
    let started = Instant::now();
    let mut tx = db.begin().await?;
    for chunk in values.chunks(ROWS_PER_STATEMENT) {
        let mut json = JsonRows::new();
        for row in chunk {
            json.push(row)?;
        }
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(json.finish())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    let took = started.elapsed();
    sqlx::query("DROP TABLE raw_notifications")
        .execute(db.pool())
        .await?;
    Ok(took)
}
