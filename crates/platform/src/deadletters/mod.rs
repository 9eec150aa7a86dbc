//! Dead letters: the messages a consumer gave up on (the last attempt failed, the handler
//! rejected them, or they were no event), kept in the consuming service's own database
//! with the error and the attempts made, until an admin replays or discards them.
//!
//! A replay puts the stored event back into its queue alone ([`Bus::requeue`]); the
//! handler's inbox ([`crate::outbox::first_delivery`]) keeps an effect that had already
//! happened from happening twice.

mod admin;

pub use admin::{DeadLetterAdmin, DeadLettersApi, DeadLettersOverHttp, router};

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use herald_events::Envelope;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use uuid::Uuid;

use crate::bus::{Bus, DeadLetterSink, DeadMessage};
use crate::db::{Database, now_micros, to_datetime};

/// Longer handler errors are cut to this many characters.
const MAX_ERROR_CHARS: usize = 4000;
/// The most dead letters one listing returns.
pub const MAX_LISTED: i64 = 500;
const REPLAY_BATCH: i64 = 100;

pub(crate) async fn create_tables(db: &Database) -> anyhow::Result<()> {
    for ddl in [
        "CREATE TABLE IF NOT EXISTS herald_dead_letters (
            id TEXT PRIMARY KEY,
            queue TEXT NOT NULL,
            event_id TEXT,
            event_type TEXT NOT NULL,
            envelope TEXT NOT NULL,
            error TEXT NOT NULL,
            attempts BIGINT NOT NULL,
            failed_at BIGINT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS herald_dead_letters_queue
            ON herald_dead_letters (queue, failed_at)",
        // One dead letter per event and queue, however often a redelivered copy fails.
        "CREATE UNIQUE INDEX IF NOT EXISTS herald_dead_letters_event
            ON herald_dead_letters (queue, event_id)",
    ] {
        sqlx::query(ddl)
            .execute(db.pool())
            .await
            .context("creating the dead-letter table")?;
    }
    Ok(())
}

/// A message a consumer gave up on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub id: Uuid,
    pub queue: String,
    /// `unknown` when the message was no event envelope.
    pub event_type: String,
    /// None when the message was no event envelope.
    pub event_id: Option<String>,
    pub error: String,
    pub attempts: u32,
    pub failed_at: DateTime<Utc>,
    /// The event's `data`; for a message that was no event, its body (as JSON if it is JSON).
    pub payload: Value,
    /// The message as it was stored: the whole envelope, or the body that was no envelope.
    #[serde(skip)]
    pub envelope: String,
}

impl DeadLetter {
    fn from_row(row: &AnyRow) -> anyhow::Result<DeadLetter> {
        let id: String = row.try_get("id")?;
        let envelope: String = row.try_get("envelope")?;
        let payload = match serde_json::from_str::<Envelope>(&envelope) {
            Ok(event) => event.data,
            Err(_) => serde_json::from_str(&envelope).unwrap_or_else(|_| json!(envelope)),
        };
        Ok(DeadLetter {
            id: id.parse().context("a dead letter's id is not a UUID")?,
            queue: row.try_get("queue")?,
            event_type: row.try_get("event_type")?,
            event_id: row.try_get("event_id")?,
            error: row.try_get("error")?,
            attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(0),
            failed_at: to_datetime(row.try_get("failed_at")?),
            payload,
            envelope,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("dead letter {0} is not an event envelope and cannot be replayed; discard it")]
    NotAnEvent(Uuid),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<sqlx::Error> for ReplayError {
    fn from(e: sqlx::Error) -> Self {
        ReplayError::Unexpected(e.into())
    }
}

/// A service's dead letters, in its own database.
#[derive(Clone, Debug)]
pub struct DeadLetters {
    db: Database,
}

const COLUMNS: &str = "id, queue, event_id, event_type, envelope, error, attempts, failed_at";

impl DeadLetters {
    pub fn new(db: Database) -> DeadLetters {
        DeadLetters { db }
    }

    /// Keeps a message `queue`'s consumer gave up on after `attempts` deliveries. A message
    /// of the same event and queue stored before is replaced (a redelivered copy).
    #[tracing::instrument(skip_all, fields(queue))]
    pub async fn store(
        &self,
        queue: &str,
        message: DeadMessage<'_>,
        error: &str,
        attempts: u32,
    ) -> anyhow::Result<()> {
        let (event_id, event_type, envelope) = match message {
            DeadMessage::Event(event) => (
                Some(event.id.to_string()),
                event.event_type.clone(),
                serde_json::to_string(event)?,
            ),
            DeadMessage::Unreadable(body) => (
                None,
                "unknown".to_owned(),
                String::from_utf8_lossy(body).into_owned(),
            ),
        };
        let error: String = error.chars().take(MAX_ERROR_CHARS).collect();
        let failed_at = now_micros();
        // Not an upsert: a pooled SQLite connection that read the schema before the unique
        // index existed refuses `ON CONFLICT (queue, event_id)` when it prepares it.
        let mut tx = self.db.begin().await?;
        let replaced = sqlx::query(
            "UPDATE herald_dead_letters SET envelope = $1, error = $2, attempts = $3, failed_at = $4
             WHERE queue = $5 AND event_id = $6",
        )
        .bind(&envelope)
        .bind(&error)
        .bind(i64::from(attempts))
        .bind(failed_at)
        .bind(queue)
        .bind(&event_id)
        .execute(&mut *tx)
        .await
        .context("storing a dead letter")?;
        if replaced.rows_affected() == 0 {
            sqlx::query(
                "INSERT INTO herald_dead_letters
                    (id, queue, event_id, event_type, envelope, error, attempts, failed_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(Uuid::now_v7().to_string())
            .bind(queue)
            .bind(&event_id)
            .bind(event_type)
            .bind(&envelope)
            .bind(&error)
            .bind(i64::from(attempts))
            .bind(failed_at)
            .execute(&mut *tx)
            .await
            .context("storing a dead letter")?;
        }
        tx.commit().await.context("storing a dead letter")?;
        Ok(())
    }

    /// The newest `first` dead letters, of one queue or of all.
    #[tracing::instrument(skip_all)]
    pub async fn list(&self, queue: Option<&str>, first: i64) -> anyhow::Result<Vec<DeadLetter>> {
        let first = first.clamp(0, MAX_LISTED);
        let rows = match queue {
            Some(queue) => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM herald_dead_letters WHERE queue = $1
                     ORDER BY failed_at DESC, id DESC LIMIT $2"
                )))
                .bind(queue)
                .bind(first)
                .fetch_all(self.db.pool())
                .await
            }
            None => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {COLUMNS} FROM herald_dead_letters
                     ORDER BY failed_at DESC, id DESC LIMIT $1"
                )))
                .bind(first)
                .fetch_all(self.db.pool())
                .await
            }
        }
        .context("listing dead letters")?;
        rows.iter().map(DeadLetter::from_row).collect()
    }

    #[tracing::instrument(skip_all, fields(%id))]
    pub async fn get(&self, id: Uuid) -> anyhow::Result<Option<DeadLetter>> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM herald_dead_letters WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(self.db.pool())
        .await
        .context("reading a dead letter")?;
        row.as_ref().map(DeadLetter::from_row).transpose()
    }

    /// Deletes a dead letter for good; false if there is none with this id.
    #[tracing::instrument(skip_all, fields(%id))]
    pub async fn discard(&self, id: Uuid) -> anyhow::Result<bool> {
        let deleted = sqlx::query("DELETE FROM herald_dead_letters WHERE id = $1")
            .bind(id.to_string())
            .execute(self.db.pool())
            .await
            .context("discarding a dead letter")?;
        Ok(deleted.rows_affected() == 1)
    }

    /// Puts the dead letter's event back into its queue alone, then forgets it; false if
    /// there is none with this id. Two replays of one dead letter at once requeue it once.
    #[tracing::instrument(skip_all, fields(%id))]
    pub async fn replay(&self, id: Uuid, bus: &Bus) -> Result<bool, ReplayError> {
        let mut tx = self.db.begin().await?;
        let row =
            sqlx::query("DELETE FROM herald_dead_letters WHERE id = $1 RETURNING queue, envelope")
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let queue: String = row.try_get(0)?;
        let envelope: String = row.try_get(1)?;
        let event =
            serde_json::from_str::<Envelope>(&envelope).map_err(|_| ReplayError::NotAnEvent(id))?;
        bus.requeue(&queue, &event).await?;
        // Should the commit fail now, the event was requeued and its dead letter stays: a
        // second replay is a duplicate delivery, which the handler's inbox absorbs.
        tx.commit().await?;
        tracing::info!(queue, event_id = %event.id, "replayed a dead letter");
        Ok(true)
    }

    /// Replays every dead letter of `queue` (or of all queues) stored before this call,
    /// oldest first, except those that are no event; returns how many.
    #[tracing::instrument(skip_all)]
    pub async fn replay_all(&self, queue: Option<&str>, bus: &Bus) -> anyhow::Result<u64> {
        // Letters that fail again while this runs come back with a later time and wait
        // for the next call, so an always-failing message cannot keep this going.
        let started = now_micros();
        let mut after = String::new();
        let mut replayed = 0;
        loop {
            let ids: Vec<String> = match queue {
                Some(queue) => {
                    sqlx::query_scalar(
                        "SELECT id FROM herald_dead_letters
                         WHERE failed_at <= $1 AND id > $2 AND queue = $3 ORDER BY id LIMIT $4",
                    )
                    .bind(started)
                    .bind(&after)
                    .bind(queue)
                    .bind(REPLAY_BATCH)
                    .fetch_all(self.db.pool())
                    .await
                }
                None => {
                    sqlx::query_scalar(
                        "SELECT id FROM herald_dead_letters
                         WHERE failed_at <= $1 AND id > $2 ORDER BY id LIMIT $3",
                    )
                    .bind(started)
                    .bind(&after)
                    .bind(REPLAY_BATCH)
                    .fetch_all(self.db.pool())
                    .await
                }
            }
            .context("listing dead letters to replay")?;
            let Some(last) = ids.last() else {
                return Ok(replayed);
            };
            after = last.clone();
            for id in ids {
                let id: Uuid = id.parse().context("a dead letter's id is not a UUID")?;
                match self.replay(id, bus).await {
                    Ok(true) => replayed += 1,
                    Ok(false) | Err(ReplayError::NotAnEvent(_)) => {}
                    Err(ReplayError::Unexpected(e)) => return Err(e),
                }
            }
        }
    }
}

#[async_trait]
impl DeadLetterSink for DeadLetters {
    async fn dead_letter(
        &self,
        queue: &str,
        message: DeadMessage<'_>,
        error: &str,
        attempts: u32,
    ) -> anyhow::Result<()> {
        self.store(queue, message, error, attempts).await
    }
}
