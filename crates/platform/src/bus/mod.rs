//! The event bus: publish CloudEvents, consume them per service queue.
//!
//! Three backends sit behind [`Bus`]: an in-process bus durable in SQLite (the default),
//! RabbitMQ and Kafka. All follow the same semantics, checked by one conformance suite:
//! - every queue named by the topology receives each event whose type matches one of its
//!   bindings (topic patterns: `*` is one word, `#` zero or more), even if its consumer is
//!   not running yet;
//! - `publish` returns once the events are durable (SQLite commit / publisher confirms /
//!   `acks=all`);
//! - a message is acknowledged only after its handler returned `Ok` (at-least-once), so
//!   handlers must be idempotent (see [`crate::outbox::first_delivery`]);
//! - a handler's `Retry` error delivers the message again later, with exponential backoff
//!   and jitter ([`ConsumerOptions`]), without holding back the messages behind it; after
//!   the last attempt, or at once for a `Reject` or a body that is no event, the message
//!   goes to the consumer's [`DeadLetterSink`] and only then leaves the queue;
//! - [`Bus::requeue`] puts one event back into one queue (replaying a dead letter).
//!
//! A handler may take some event types in batches ([`EventHandler::handle_batch`]): the
//! deliveries a consumer holds at once are then handled together, and each is still
//! settled alone with its own event's outcome (see [`batch`]).

mod batch;
mod delivery;
mod embedded;
mod kafka;
mod names;
mod options;
mod pattern;
mod rabbitmq;

use std::sync::Arc;

use async_trait::async_trait;
use herald_events::Envelope;
use tokio_util::sync::CancellationToken;

pub use batch::BatchOutcomes;
pub use delivery::{DeadLetterSink, DeadMessage};
pub use embedded::EmbeddedBus;
pub use kafka::{KafkaBus, KafkaOptions};
pub use options::ConsumerOptions;
pub use pattern::topic_matches;
pub use rabbitmq::RabbitBus;

use crate::config::Settings;

/// One consuming queue and the event types routed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSpec {
    pub name: String,
    pub bindings: Vec<String>,
}

impl QueueSpec {
    pub fn new(name: &str, bindings: &[&str]) -> Self {
        QueueSpec {
            name: name.to_owned(),
            bindings: bindings.iter().map(|b| (*b).to_owned()).collect(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// Transient: deliver the message again later.
    #[error("retry: {0:#}")]
    Retry(anyhow::Error),
    /// Permanent: the message can never be handled (malformed, unknown type).
    #[error("reject: {0:#}")]
    Reject(anyhow::Error),
    /// Early: an event this one needs (another service's, on another path) has not been
    /// handled yet. Handled again in place every 250 ms, for 3 s at most, before it counts
    /// as a failed attempt ([`HandlerError::Retry`]).
    #[error("not yet: {0:#}")]
    NotYet(anyhow::Error),
}

impl From<sqlx::Error> for HandlerError {
    fn from(e: sqlx::Error) -> Self {
        HandlerError::Retry(e.into())
    }
}

impl From<anyhow::Error> for HandlerError {
    fn from(e: anyhow::Error) -> Self {
        HandlerError::Retry(e)
    }
}

#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError>;

    /// Whether `event` is handled in batches with [`EventHandler::handle_batch`].
    fn batches(&self, _event: &Envelope) -> bool {
        false
    }

    /// Handles events that [`EventHandler::batches`] accepts, together. `Ok` holds each
    /// event's outcome in order, once what succeeded is committed; `Err` means none had an
    /// effect, and each is then handled again alone with [`EventHandler::handle`]. (This
    /// default handles them one after the other, so an `Err` may follow effects: handlers
    /// are idempotent.)
    async fn handle_batch(&self, events: &[Envelope]) -> Result<BatchOutcomes, HandlerError> {
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events {
            outcomes.push(self.handle(event).await);
        }
        Ok(outcomes)
    }
}

#[async_trait]
pub trait BusBackend: Send + Sync + 'static {
    /// Declares queues and their bindings (idempotent).
    async fn declare(&self, queues: &[QueueSpec]) -> anyhow::Result<()>;
    /// Returns once every event is durably routed to its queues.
    async fn publish(&self, events: &[Envelope]) -> anyhow::Result<()>;
    /// Puts `event` into `queue` alone, whatever its bindings; returns once it is durable.
    async fn requeue(&self, queue: &str, event: &Envelope) -> anyhow::Result<()>;
    /// Consumes `queue` until `shutdown` is cancelled, finishing in-flight messages. Messages
    /// it gives up on go to `dead_letters` before they are acknowledged.
    async fn consume(
        &self,
        queue: &str,
        handler: Arc<dyn EventHandler>,
        options: ConsumerOptions,
        dead_letters: Arc<dyn DeadLetterSink>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()>;
    /// Messages in `queue` not yet acknowledged (RabbitMQ: ready ones only; the embedded
    /// bus also counts those being handled and waiting for a retry).
    async fn depth(&self, queue: &str) -> anyhow::Result<u64>;
    async fn ping(&self) -> bool;
    /// Whether every consumer this instance runs is receiving: on Kafka, has joined its
    /// consumer group and been given its share of the partitions (which takes a few seconds
    /// after a start). Part of a service's readiness.
    fn consumers_ready(&self) -> bool {
        true
    }
    fn name(&self) -> &'static str;
    /// Deletes `queues` with their messages and everything kept beside them (retry levels,
    /// consumer offsets): tests and operators. Nothing to delete in the embedded bus, whose
    /// file goes with its directory.
    async fn delete_topology(&self, _queues: &[QueueSpec]) -> anyhow::Result<()> {
        Ok(())
    }
}

/// The bus handle services hold.
#[derive(Clone)]
pub struct Bus {
    backend: Arc<dyn BusBackend>,
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("backend", &self.backend.name())
            .finish()
    }
}

impl Bus {
    /// Connects the backend the settings name and declares `topology`, so that events
    /// published before a consumer first runs still reach its queue.
    pub async fn connect(settings: &Settings, topology: &[QueueSpec]) -> anyhow::Result<Bus> {
        let backend: Arc<dyn BusBackend> = match (&settings.amqp_url, &settings.kafka_brokers) {
            (Some(url), _) => Arc::new(RabbitBus::connect(url, &settings.bus_prefix).await?),
            (None, Some(brokers)) => Arc::new(
                KafkaBus::connect(
                    brokers,
                    &settings.bus_prefix,
                    KafkaOptions::from_settings(settings),
                )
                .await?,
            ),
            (None, None) => {
                Arc::new(EmbeddedBus::open(&settings.data_dir.join("bus.sqlite")).await?)
            }
        };
        let bus = Bus { backend };
        bus.backend.declare(topology).await?;
        Ok(bus)
    }

    pub fn from_backend(backend: Arc<dyn BusBackend>) -> Bus {
        Bus { backend }
    }

    pub async fn declare(&self, queues: &[QueueSpec]) -> anyhow::Result<()> {
        self.backend.declare(queues).await
    }

    pub async fn publish(&self, events: &[Envelope]) -> anyhow::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        self.backend.publish(events).await?;
        for e in events {
            metrics::counter!("bus_published_total", "type" => e.event_type.clone()).increment(1);
        }
        Ok(())
    }

    /// Puts `event` into `queue` alone (not to the other queues bound to its type).
    pub async fn requeue(&self, queue: &str, event: &Envelope) -> anyhow::Result<()> {
        self.backend.requeue(queue, event).await
    }

    /// Starts consuming `queue` in the background; messages it gives up on go to
    /// `dead_letters` (the service's own [`crate::deadletters::DeadLetters`]).
    pub fn spawn_consumer(
        &self,
        queue: &str,
        handler: Arc<dyn EventHandler>,
        options: ConsumerOptions,
        dead_letters: Arc<dyn DeadLetterSink>,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let backend = self.backend.clone();
        let queue = queue.to_owned();
        // Dead letters counted from zero, so an alert sees the first one.
        metrics::counter!("bus_dead_lettered_total", "queue" => queue.clone()).increment(0);
        tokio::spawn(async move {
            let consumed = backend
                .consume(&queue, handler, options, dead_letters, shutdown)
                .await;
            if let Err(e) = consumed {
                tracing::error!(queue, error = format!("{e:#}"), "consumer stopped");
            }
        })
    }

    pub async fn depth(&self, queue: &str) -> anyhow::Result<u64> {
        self.backend.depth(queue).await
    }

    pub async fn ping(&self) -> bool {
        self.backend.ping().await
    }

    /// See [`BusBackend::consumers_ready`].
    pub fn consumers_ready(&self) -> bool {
        self.backend.consumers_ready()
    }

    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// Deletes `queues` and their messages on the broker (see
    /// [`BusBackend::delete_topology`]).
    pub async fn delete_topology(&self, queues: &[QueueSpec]) -> anyhow::Result<()> {
        self.backend.delete_topology(queues).await
    }
}

/// The queues and bindings of the event contract.
pub fn topology() -> Vec<QueueSpec> {
    herald_events::TOPOLOGY
        .iter()
        .map(|(name, bindings)| QueueSpec::new(name, bindings))
        .collect()
}
