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
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use futures::future::join_all;
use herald_events::Envelope;
use sqlx::Row;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{
    BusBackend, ConsumerOptions, EventHandler, HandlerError, QueueSpec, handle_recorded,
    topic_matches,
};
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

    /// Claims up to `limit` due messages of `queue`.
    async fn claim(&self, queue: &str, limit: usize) -> anyhow::Result<Vec<(i64, String, i64)>> {
        let now = now_micros();
        let rows = sqlx::query(
            "UPDATE bus_messages SET locked_until = $1, attempts = attempts + 1
             WHERE seq IN (SELECT seq FROM bus_messages
                           WHERE queue = $2 AND available_at <= $3 AND locked_until <= $3
                           ORDER BY seq LIMIT $4)
             RETURNING seq, body, attempts",
        )
        .bind(now + LEASE.as_micros() as i64)
        .bind(queue)
        .bind(now)
        .bind(limit as i64)
        .fetch_all(self.db.pool())
        .await?;
        let mut claimed = rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<Vec<(i64, String, i64)>, sqlx::Error>>()?;
        claimed.sort_by_key(|(seq, _, _)| *seq);
        Ok(claimed)
    }

    async fn settle(&self, done: &[i64], retry: &[(i64, i64)]) -> anyhow::Result<()> {
        let mut tx = self.db.begin().await?;
        for seq in done {
            sqlx::query("DELETE FROM bus_messages WHERE seq = $1")
                .bind(seq)
                .execute(&mut *tx)
                .await?;
        }
        for (seq, available_at) in retry {
            sqlx::query(
                "UPDATE bus_messages SET locked_until = 0, available_at = $1 WHERE seq = $2",
            )
            .bind(available_at)
            .bind(seq)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
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

    async fn consume(
        &self,
        queue: &str,
        handler: Arc<dyn EventHandler>,
        options: ConsumerOptions,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        // Leases held by an earlier run of this process died with it. (One consumer per
        // queue and process: the embedded bus serves a single process.)
        sqlx::query("UPDATE bus_messages SET locked_until = 0 WHERE queue = $1")
            .bind(queue)
            .execute(self.db.pool())
            .await?;
        let waker = self.waker(queue);
        while !shutdown.is_cancelled() {
            let batch = match self.claim(queue, options.concurrency.max(1)).await {
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
            let outcomes = join_all(batch.iter().map(|(seq, body, attempts)| {
                let handler = handler.clone();
                async move {
                    let outcome = match serde_json::from_str::<Envelope>(body) {
                        // A panicking handler must not stop the consumer: retry the message.
                        Ok(event) => AssertUnwindSafe(handle_recorded(queue, handler.as_ref(), &event))
                            .catch_unwind()
                            .await
                            .unwrap_or_else(|_| Err(HandlerError::Retry(anyhow::anyhow!("handler panicked")))),
                        Err(e) => {
                            tracing::error!(queue, seq, error = %e, "dropping a malformed envelope");
                            metrics::counter!("bus_consumed_total", "queue" => queue.to_owned(), "outcome" => "reject")
                                .increment(1);
                            Err(HandlerError::Reject(anyhow::anyhow!("malformed envelope: {e}")))
                        }
                    };
                    (*seq, *attempts, outcome)
                }
            }))
            .await;
            let mut done = Vec::new();
            let mut retry = Vec::new();
            for (seq, attempts, outcome) in outcomes {
                match outcome {
                    Ok(()) | Err(HandlerError::Reject(_)) => done.push(seq),
                    Err(HandlerError::Retry(_)) => {
                        let delay = options.delay_for_attempt(attempts as u32);
                        retry.push((seq, now_micros() + delay.as_micros() as i64));
                    }
                }
            }
            // Settling must not be lost: without it the messages are redelivered after the lease.
            let mut backoff = Duration::from_millis(50);
            while let Err(e) = self.settle(&done, &retry).await {
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
