//! The in-process bus, durable in SQLite: a message is a row in its queue until a
//! handler succeeds, so events published before a crash are delivered after restart.
//!
//! It serves one process; services running as separate processes use RabbitMQ.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use async_trait::async_trait;
use futures::future::join_all;
use herald_events::Envelope;
use sqlx::Row;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::batch::Coalescing;
use super::delivery::{
    SAMPLE_EVERY, Verdict, dead_letter, judge, record_lag, record_sample, store_retry_delay,
};
use super::{BusBackend, ConsumerOptions, DeadLetterSink, EventHandler, QueueSpec, topic_matches};
use crate::db::{Database, now_micros};

/// How long a claimed message stays invisible to other claims while its handler runs.
const LEASE: Duration = Duration::from_secs(300);
/// Polling interval when no wake-up arrives (delayed retries becoming due).
const POLL: Duration = Duration::from_millis(200);

pub struct EmbeddedBus {
    db: Database,
    bindings: Mutex<Vec<(String, String)>>,
    wakers: Mutex<HashMap<String, Arc<Notify>>>,
}

impl EmbeddedBus {
    pub async fn open(path: &Path) -> anyhow::Result<EmbeddedBus> {
        let db = Database::connect_sqlite(path, 4).await?;
        for ddl in [
            "CREATE TABLE IF NOT EXISTS bus_bindings (
                queue TEXT NOT NULL, pattern TEXT NOT NULL, PRIMARY KEY (queue, pattern))",
            "CREATE TABLE IF NOT EXISTS bus_messages (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                queue TEXT NOT NULL,
                event_id TEXT NOT NULL,
                body TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                available_at INTEGER NOT NULL,
                locked_until INTEGER NOT NULL DEFAULT 0)",
            "CREATE INDEX IF NOT EXISTS bus_messages_due ON bus_messages (queue, available_at, seq)",
        ] {
            sqlx::query(ddl)
                .execute(db.pool())
                .await
                .context("creating bus tables")?;
        }
        let rows = sqlx::query("SELECT queue, pattern FROM bus_bindings")
            .fetch_all(db.pool())
            .await?;
        let bindings = rows
            .iter()
            .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(EmbeddedBus {
            db,
            bindings: Mutex::new(bindings),
            wakers: Mutex::new(HashMap::new()),
        })
    }

    fn waker(&self, queue: &str) -> Arc<Notify> {
        let mut wakers = self.wakers.lock().unwrap_or_else(|p| p.into_inner());
        wakers.entry(queue.to_owned()).or_default().clone()
    }

    fn queues_for(&self, event_type: &str) -> Vec<String> {
        let bindings = self.bindings.lock().unwrap_or_else(|p| p.into_inner());
        let mut queues: Vec<String> = bindings
            .iter()
            .filter(|(_, pattern)| topic_matches(pattern, event_type))
            .map(|(queue, _)| queue.clone())
            .collect();
        queues.sort();
        queues.dedup();
        queues
    }

    /// Claims up to `limit` due messages of `queue`, counting the delivery in `attempts`.
    async fn claim(&self, queue: &str, limit: usize) -> anyhow::Result<Vec<Claimed>> {
        let now = now_micros();
        let rows = sqlx::query(
            "UPDATE bus_messages SET locked_until = $1, attempts = attempts + 1
             WHERE seq IN (SELECT seq FROM bus_messages
                           WHERE queue = $2 AND available_at <= $3 AND locked_until <= $3
                           ORDER BY seq LIMIT $4)
             RETURNING seq, body, attempts, available_at",
        )
        .bind(now + LEASE.as_micros() as i64)
        .bind(queue)
        .bind(now)
        .bind(limit as i64)
        .fetch_all(self.db.pool())
        .await?;
        let mut claimed = rows
            .iter()
            .map(|r| {
                Ok(Claimed {
                    seq: r.try_get(0)?,
                    body: r.try_get(1)?,
                    attempts: r.try_get(2)?,
                    available_at: r.try_get(3)?,
                })
            })
            .collect::<Result<Vec<Claimed>, sqlx::Error>>()?;
        claimed.sort_by_key(|m| m.seq);
        Ok(claimed)
    }

    /// Handles one claimed message and decides what becomes of its row.
    async fn settle_one(
        &self,
        queue: &str,
        consumer: &Consumer,
        message: &Claimed,
    ) -> (i64, Settlement) {
        let now = now_micros();
        record_lag(
            queue,
            Duration::from_micros(u64::try_from(now - message.available_at).unwrap_or(0)),
        );
        let attempt = u32::try_from(message.attempts).unwrap_or(u32::MAX).max(1);
        let body = message.body.as_bytes();
        let judged = judge(
            queue,
            consumer.handler.as_ref(),
            body,
            attempt,
            &consumer.options,
        )
        .await;
        let later = |delay: Duration, attempts: i64| Settlement::Later {
            available_at: now_micros() + delay.as_micros() as i64,
            attempts,
        };
        let settlement = match &judged.verdict {
            Verdict::Handled => Settlement::Remove,
            Verdict::Retry(delay) => later(*delay, message.attempts),
            Verdict::DeadLetter(error) => {
                let stored = dead_letter(
                    consumer.dead_letters.as_ref(),
                    queue,
                    &judged,
                    body,
                    error,
                    attempt,
                )
                .await;
                if stored {
                    Settlement::Remove
                } else {
                    // The same attempt comes again once the store may work.
                    later(store_retry_delay(&consumer.options), message.attempts - 1)
                }
            }
        };
        (message.seq, settlement)
    }

    async fn settle(&self, settlements: &[(i64, Settlement)]) -> anyhow::Result<()> {
        let mut tx = self.db.begin().await?;
        for (seq, settlement) in settlements {
            match settlement {
                Settlement::Remove => {
                    sqlx::query("DELETE FROM bus_messages WHERE seq = $1")
                        .bind(seq)
                        .execute(&mut *tx)
                        .await?;
                }
                Settlement::Later {
                    available_at,
                    attempts,
                } => {
                    sqlx::query(
                        "UPDATE bus_messages SET locked_until = 0, available_at = $1, attempts = $2
                         WHERE seq = $3",
                    )
                    .bind(available_at)
                    .bind(attempts)
                    .bind(seq)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Ready messages (due and not being handled, as RabbitMQ counts them) and how long the
    /// oldest of them has been due.
    async fn sample(&self, queue: &str) -> anyhow::Result<(u64, Duration)> {
        let now = now_micros();
        let row = sqlx::query(
            "SELECT COUNT(*), MIN(available_at) FROM bus_messages
             WHERE queue = $1 AND available_at <= $2 AND locked_until <= $2",
        )
        .bind(queue)
        .bind(now)
        .fetch_one(self.db.pool())
        .await?;
        let depth: i64 = row.try_get(0)?;
        let oldest: Option<i64> = row.try_get(1)?;
        let age = oldest.map_or(Duration::ZERO, |at| {
            Duration::from_micros(u64::try_from(now - at).unwrap_or(0))
        });
        Ok((u64::try_from(depth).unwrap_or(0), age))
    }

    async fn sample_forever(&self, queue: &str) {
        loop {
            match self.sample(queue).await {
                Ok((depth, age)) => record_sample(queue, depth, age),
                Err(e) => {
                    tracing::debug!(queue, error = format!("{e:#}"), "sampling the queue failed")
                }
            }
            tokio::time::sleep(SAMPLE_EVERY).await;
        }
    }

    async fn consume_until(
        &self,
        queue: &str,
        consumer: &Consumer,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        // Leases held by an earlier run of this process died with it. (One consumer per
        // queue and process: the embedded bus serves a single process.)
        sqlx::query("UPDATE bus_messages SET locked_until = 0 WHERE queue = $1")
            .bind(queue)
            .execute(self.db.pool())
            .await?;
        let waker = self.waker(queue);
        while !shutdown.is_cancelled() {
            let batch = match self.claim(queue, consumer.options.concurrency.max(1)).await {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(queue, error = format!("{e:#}"), "claiming messages failed");
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            };
            if batch.is_empty() {
                tokio::select! {
                    _ = waker.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                    _ = shutdown.cancelled() => {}
                }
                continue;
            }
            let settlements = join_all(
                batch
                    .iter()
                    .map(|message| self.settle_one(queue, consumer, message)),
            )
            .await;
            // Settling must not be lost: without it the messages are redelivered after the lease.
            let mut backoff = Duration::from_millis(50);
            while let Err(e) = self.settle(&settlements).await {
                tracing::warn!(
                    queue,
                    error = format!("{e:#}"),
                    "acknowledging messages failed"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
        Ok(())
    }
}

struct Claimed {
    seq: i64,
    body: String,
    /// Deliveries so far, this one included.
    attempts: i64,
    /// When the message became due: published, or its retry delay ended.
    available_at: i64,
}

enum Settlement {
    Remove,
    /// Deliver again at `available_at`, with `attempts` deliveries counted so far.
    Later {
        available_at: i64,
        attempts: i64,
    },
}

struct Consumer {
    handler: Arc<dyn EventHandler>,
    options: ConsumerOptions,
    dead_letters: Arc<dyn DeadLetterSink>,
}

#[async_trait]
impl BusBackend for EmbeddedBus {
    async fn declare(&self, queues: &[QueueSpec]) -> anyhow::Result<()> {
        let mut tx = self.db.begin().await?;
        for q in queues {
            for pattern in &q.bindings {
                sqlx::query(
                    "INSERT INTO bus_bindings (queue, pattern) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                )
                .bind(&q.name)
                .bind(pattern)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        let mut bindings = self.bindings.lock().unwrap_or_else(|p| p.into_inner());
        for q in queues {
            for pattern in &q.bindings {
                let pair = (q.name.clone(), pattern.clone());
                if !bindings.contains(&pair) {
                    bindings.push(pair);
                }
            }
        }
        bindings.sort();
        Ok(())
    }

    async fn publish(&self, events: &[Envelope]) -> anyhow::Result<()> {
        let now = now_micros();
        let mut touched: Vec<String> = Vec::new();
        let mut tx = self.db.begin().await?;
        for event in events {
            let body = serde_json::to_string(event)?;
            for queue in self.queues_for(&event.event_type) {
                sqlx::query(
                    "INSERT INTO bus_messages (queue, event_id, body, available_at) VALUES ($1, $2, $3, $4)",
                )
                .bind(&queue)
                .bind(event.id.to_string())
                .bind(&body)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                if !touched.contains(&queue) {
                    touched.push(queue);
                }
            }
        }
        tx.commit().await?;
        for queue in touched {
            self.waker(&queue).notify_one();
        }
        Ok(())
    }

    async fn requeue(&self, queue: &str, event: &Envelope) -> anyhow::Result<()> {
        let known = {
            let bindings = self.bindings.lock().unwrap_or_else(|p| p.into_inner());
            bindings.iter().any(|(q, _)| q == queue)
        };
        anyhow::ensure!(known, "no queue {queue} is declared on the bus");
        sqlx::query(
            "INSERT INTO bus_messages (queue, event_id, body, available_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(queue)
        .bind(event.id.to_string())
        .bind(serde_json::to_string(event)?)
        .bind(now_micros())
        .execute(self.db.pool())
        .await?;
        self.waker(queue).notify_one();
        Ok(())
    }

    async fn consume(
        &self,
        queue: &str,
        handler: Arc<dyn EventHandler>,
        options: ConsumerOptions,
        dead_letters: Arc<dyn DeadLetterSink>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let consumer = Consumer {
            handler: Coalescing::wrap(handler, options.concurrency),
            options,
            dead_letters,
        };
        tokio::select! {
            consumed = self.consume_until(queue, &consumer, &shutdown) => consumed,
            () = self.sample_forever(queue) => Ok(()),
        }
    }

    async fn depth(&self, queue: &str) -> anyhow::Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM bus_messages WHERE queue = $1")
            .bind(queue)
            .fetch_one(self.db.pool())
            .await?;
        Ok(n as u64)
    }

    async fn ping(&self) -> bool {
        self.db.ping().await
    }

    fn name(&self) -> &'static str {
        "embedded"
    }
}
