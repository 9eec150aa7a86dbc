//! Transactional outbox and inbox.
//!
//! A service that changes state and emits an event writes both in one transaction
//! ([`Outbox::add`]); the [`relay`] publishes committed rows and deletes them once the
//! bus confirmed. A consumer records each event id it handled in the inbox inside the
//! transaction of its effect ([`first_delivery`]), so a redelivered event has no second
//! effect.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use herald_events::Envelope;
use sqlx::{AssertSqlSafe, Row};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::bulk::{ROWS_PER_STATEMENT, json_list, select_list};
use crate::bus::Bus;
use crate::db::{Backend, Database, Tx, now_micros};

const BATCH: i64 = 500;
const POLL: Duration = Duration::from_millis(500);
/// How often the relay reports the age of the oldest event it has not published yet.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);

pub(crate) async fn create_tables(db: &Database) -> anyhow::Result<()> {
    let outbox = match db.backend() {
        Backend::Sqlite => {
            "CREATE TABLE IF NOT EXISTS herald_outbox (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                envelope TEXT NOT NULL,
                created_at BIGINT NOT NULL)"
        }
        Backend::Postgres => {
            "CREATE TABLE IF NOT EXISTS herald_outbox (
                seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                envelope TEXT NOT NULL,
                created_at BIGINT NOT NULL)"
        }
    };
    let inbox = "CREATE TABLE IF NOT EXISTS herald_inbox (
        consumer TEXT NOT NULL,
        event_id TEXT NOT NULL,
        processed_at BIGINT NOT NULL,
        PRIMARY KEY (consumer, event_id))";
    for ddl in [outbox, inbox] {
        sqlx::query(ddl)
            .execute(db.pool())
            .await
            .context("creating outbox and inbox")?;
    }
    crate::deadletters::create_tables(db).await
}

/// Records that `consumer` handles `event_id` now; false if it already did.
/// Call inside the transaction of the effect.
pub async fn first_delivery(
    tx: &mut Tx,
    consumer: &str,
    event: &Envelope,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO herald_inbox (consumer, event_id, processed_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(consumer)
    .bind(event.id.to_string())
    .bind(now_micros())
    .execute(&mut **tx)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// [`first_delivery`] for several events at once, a statement per 2,000: the ids of those
/// `consumer` handles now for the first time. Call inside the transaction of their effect.
pub async fn first_deliveries(
    tx: &mut Tx,
    consumer: &str,
    events: &[&Envelope],
) -> Result<HashSet<Uuid>, sqlx::Error> {
    let sql = format!(
        "INSERT INTO herald_inbox (consumer, event_id, processed_at)
         SELECT $1, e.value, $2 FROM ({}) AS e WHERE true
         ON CONFLICT DO NOTHING RETURNING event_id",
        select_list(Backend::of(tx), 3)
    );
    let mut first = HashSet::with_capacity(events.len());
    for chunk in events.chunks(ROWS_PER_STATEMENT) {
        let ids: Vec<String> = sqlx::query_scalar(AssertSqlSafe(sql.as_str()))
            .bind(consumer)
            .bind(now_micros())
            .bind(json_list(chunk.iter().map(|event| event.id))?)
            .fetch_all(&mut **tx)
            .await?;
        for id in ids {
            first.insert(id.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?);
        }
    }
    Ok(first)
}

/// Takes back the inbox entries of events whose effect is left out of the transaction (to
/// be handled again later), so their redelivery is a first delivery.
pub async fn forget_deliveries(
    tx: &mut Tx,
    consumer: &str,
    event_ids: &[Uuid],
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "DELETE FROM herald_inbox WHERE consumer = $1 AND event_id IN ({})",
        select_list(Backend::of(tx), 2)
    );
    for chunk in event_ids.chunks(ROWS_PER_STATEMENT) {
        sqlx::query(AssertSqlSafe(sql.as_str()))
            .persistent(false)
            .bind(consumer)
            .bind(json_list(chunk)?)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// A service's outbox: add events inside a transaction, then wake the relay.
#[derive(Clone, Debug)]
pub struct Outbox {
    db: Database,
    wake: Arc<Notify>,
}

impl Outbox {
    pub fn new(db: Database) -> Outbox {
        Outbox {
            db,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Adds `event` to the transaction's outbox, carrying the current trace (unless it
    /// names one already).
    pub async fn add(&self, tx: &mut Tx, event: &Envelope) -> Result<(), sqlx::Error> {
        let traced;
        let event = match (&event.traceparent, crate::trace::outgoing()) {
            (None, Some(traceparent)) => {
                traced = Envelope {
                    traceparent: Some(traceparent),
                    ..event.clone()
                };
                &traced
            }
            _ => event,
        };
        let body = serde_json::to_string(event).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        sqlx::query("INSERT INTO herald_outbox (envelope, created_at) VALUES ($1, $2)")
            .bind(body)
            .bind(now_micros())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Commits `tx` and wakes the relay for the events it added.
    pub async fn commit(&self, tx: Tx) -> Result<(), sqlx::Error> {
        tx.commit().await?;
        self.wake.notify_one();
        Ok(())
    }

    /// Publishes committed events until `shutdown`; what is left is published on next start.
    /// Every few seconds it reports how old `service`'s oldest unpublished event is
    /// (`outbox_oldest_event_age_seconds`), whether or not the bus takes events.
    pub fn spawn_relay(
        &self,
        bus: Bus,
        shutdown: CancellationToken,
        service: &'static str,
    ) -> tokio::task::JoinHandle<()> {
        let outbox = self.clone();
        tokio::spawn(async move {
            let mut backoff = POLL;
            let mut sampled = tokio::time::Instant::now() - SAMPLE_EVERY;
            while !shutdown.is_cancelled() {
                if sampled.elapsed() >= SAMPLE_EVERY {
                    sampled = tokio::time::Instant::now();
                    match outbox.oldest_age().await {
                        Ok(age) => {
                            metrics::gauge!("outbox_oldest_event_age_seconds", "service" => service)
                                .set(age.as_secs_f64());
                        }
                        Err(e) => {
                            tracing::debug!(error = format!("{e:#}"), "outbox age not sampled");
                        }
                    }
                }
                match outbox.relay_batch(&bus).await {
                    Ok(n) if n as i64 == BATCH => continue,
                    Ok(_) => {
                        backoff = POLL;
                        tokio::select! {
                            _ = outbox.wake.notified() => {}
                            _ = tokio::time::sleep(POLL) => {}
                            _ = shutdown.cancelled() => {}
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = format!("{e:#}"), "outbox relay failed; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = shutdown.cancelled() => {}
                        }
                        backoff = (backoff * 2).min(Duration::from_secs(10));
                    }
                }
            }
        })
    }

    /// How long the oldest event not yet published has waited (zero when none waits).
    pub async fn oldest_age(&self) -> Result<Duration, sqlx::Error> {
        let oldest: Option<i64> =
            sqlx::query_scalar("SELECT created_at FROM herald_outbox ORDER BY seq LIMIT 1")
                .fetch_optional(self.db.pool())
                .await?;
        let waited = oldest.map_or(0, |created| now_micros().saturating_sub(created).max(0));
        Ok(Duration::from_micros(waited as u64))
    }

    /// Publishes one batch and deletes it; returns how many were published.
    pub async fn relay_batch(&self, bus: &Bus) -> anyhow::Result<usize> {
        let published = match self.db.backend() {
            // Replicas relaying at once skip each other's rows; the lock lasts until the
            // rows are deleted after the bus confirmed them.
            Backend::Postgres => {
                let mut tx = self.db.begin().await?;
                let rows = sqlx::query(
                    "SELECT seq, envelope FROM herald_outbox ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED",
                )
                .bind(BATCH)
                .fetch_all(&mut *tx)
                .await?;
                let seqs = publish_rows(bus, &rows).await?;
                delete_rows(&mut tx, &seqs).await?;
                tx.commit().await?;
                seqs.len()
            }
            // One process owns a SQLite file; a read transaction held across the publish
            // could not be upgraded to the delete once other writers committed.
            Backend::Sqlite => {
                let rows =
                    sqlx::query("SELECT seq, envelope FROM herald_outbox ORDER BY seq LIMIT $1")
                        .bind(BATCH)
                        .fetch_all(self.db.pool())
                        .await?;
                let seqs = publish_rows(bus, &rows).await?;
                let mut conn = self.db.pool().acquire().await?;
                delete_rows(&mut conn, &seqs).await?;
                seqs.len()
            }
        };
        metrics::counter!("outbox_relayed_total").increment(published as u64);
        Ok(published)
    }
}

/// Publishes outbox rows; returns their sequence numbers.
async fn publish_rows(bus: &Bus, rows: &[sqlx::any::AnyRow]) -> anyhow::Result<Vec<i64>> {
    let mut seqs = Vec::with_capacity(rows.len());
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        seqs.push(row.try_get::<i64, _>(0)?);
        let body: String = row.try_get(1)?;
        events.push(
            serde_json::from_str::<Envelope>(&body).context("outbox row is not an envelope")?,
        );
    }
    bus.publish(&events).await?;
    Ok(seqs)
}

async fn delete_rows(conn: &mut sqlx::AnyConnection, seqs: &[i64]) -> Result<(), sqlx::Error> {
    for chunk in seqs.chunks(100) {
        let list = chunk
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(",");
        sqlx::query(AssertSqlSafe(format!(
            "DELETE FROM herald_outbox WHERE seq IN ({list})"
        )))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
