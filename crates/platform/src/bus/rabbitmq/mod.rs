//! The RabbitMQ bus: one durable topic exchange `{prefix}.events`, a durable queue
//! `{prefix}.{name}` per [`QueueSpec`], and beside it one delay queue per retry level,
//! `{prefix}.{name}.retry.{n}`, whose TTL is that level's delay and which dead-letters its
//! expired messages back into the queue (see [`topology`]).
//!
//! Connections are supervised here, not by lapin's auto-recover (it did not recover from
//! broker restarts): a failed publishing connection is dropped and opened again on the next
//! call, and a consumer reconnects with backoff until it is shut down.

mod acks;
mod consumer;
mod publisher;
mod topology;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use herald_events::Envelope;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable;
use lapin::uri::AMQPUri;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tokio_util::sync::CancellationToken;

use self::consumer::Settler;
use self::publisher::{Outgoing, Publisher};
use super::batch::Coalescing;
use super::delivery::sample_forever;
use super::names::Names;
use super::{BusBackend, ConsumerOptions, DeadLetterSink, EventHandler, QueueSpec};

/// Bounds the TCP connect and the AMQP handshake, so a wrong URL fails instead of hanging.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Closing a connection whose socket is gone waits for a reply that never comes.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
const RECONNECT_MIN: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(5);
const PERSISTENT: u8 = 2;
const REPLY_SUCCESS: u16 = 200;

pub struct RabbitBus {
    names: Names,
    publisher: Arc<Publisher>,
    /// Bindings declared through this instance, declared again when a consumer reconnects.
    declared: std::sync::Mutex<HashMap<String, Vec<String>>>,
    /// Retry levels declared by this instance's consumers, per queue (for `delete_topology`).
    retry_levels: std::sync::Mutex<HashMap<String, u32>>,
}

impl RabbitBus {
    /// Connects (failing fast when the broker is unreachable); declares nothing yet.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<RabbitBus> {
        let publisher = Arc::new(Publisher::new(url, format!("herald {prefix} publisher")));
        publisher.ping().await?;
        Ok(RabbitBus {
            names: Names::new(prefix),
            publisher,
            declared: std::sync::Mutex::new(HashMap::new()),
            retry_levels: std::sync::Mutex::new(HashMap::new()),
        })
    }

    async fn consume_until(
        &self,
        settler: &Arc<Settler>,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<()> {
        let queue = settler.queue();
        let mut backoff = RECONNECT_MIN;
        while !shutdown.is_cancelled() {
            match self.subscribe(queue, settler.options()).await {
                Ok(subscription) => {
                    backoff = RECONNECT_MIN;
                    match subscription.run(settler, shutdown).await {
                        consumer::Stopped::Shutdown => return Ok(()),
                        consumer::Stopped::Lost(e) => {
                            tracing::warn!(
                                queue,
                                error = format!("{e:#}"),
                                "consumer lost; reconnecting"
                            );
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(queue, error = format!("{e:#}"), retry_in = ?backoff, "starting consumer failed");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.cancelled() => {}
            }
            backoff = (backoff * 2).min(RECONNECT_MAX);
        }
        Ok(())
    }
}

/// The properties every published event carries. The timestamp (whole seconds) is when it
/// entered its queue, so consumers can measure their lag.
fn event_properties(event: &Envelope) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_content_type("application/json".into())
        .with_message_id(event.id.to_string().into())
        .with_type(event.event_type.as_str().into())
        .with_timestamp(unix_seconds(std::time::SystemTime::now()))
}

fn unix_seconds(at: std::time::SystemTime) -> u64 {
    at.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[async_trait]
impl BusBackend for RabbitBus {
    async fn declare(&self, queues: &[QueueSpec]) -> anyhow::Result<()> {
        let channel = self.publisher.scratch_channel().await?;
        let declared = self.declare_on(&channel, queues).await;
        close_channel(&channel).await;
        declared?;
        let mut known = self.declared.lock().unwrap_or_else(|p| p.into_inner());
        for spec in queues {
            let bindings = known.entry(spec.name.clone()).or_default();
            for pattern in &spec.bindings {
                if !bindings.contains(pattern) {
                    bindings.push(pattern.clone());
                }
            }
        }
        Ok(())
    }

    async fn publish(&self, events: &[Envelope]) -> anyhow::Result<()> {
        let exchange = self.names.exchange();
        let bodies = events
            .iter()
            .map(serde_json::to_vec)
            .collect::<Result<Vec<_>, _>>()?;
        let messages: Vec<Outgoing<'_>> = events
            .iter()
            .zip(&bodies)
            .map(|(event, body)| Outgoing {
                exchange: &exchange,
                routing_key: &event.event_type,
                body,
                properties: event_properties(event),
                mandatory: false,
            })
            .collect();
        self.publisher.publish(&messages).await
    }

    /// Through the default exchange, which routes by queue name: no other queue bound to the
    /// event's type sees it. Fails when the queue does not exist (mandatory).
    async fn requeue(&self, queue: &str, event: &Envelope) -> anyhow::Result<()> {
        let body = serde_json::to_vec(event)?;
        let queue = self.names.queue(queue);
        let message = Outgoing {
            exchange: "",
            routing_key: &queue,
            body: &body,
            properties: event_properties(event),
            mandatory: true,
        };
        self.publisher
            .publish(std::slice::from_ref(&message))
            .await
            .with_context(|| format!("putting event {} back into {queue}", event.id))
    }

    async fn consume(
        &self,
        queue: &str,
        handler: Arc<dyn EventHandler>,
        options: ConsumerOptions,
        dead_letters: Arc<dyn DeadLetterSink>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let handler = Coalescing::wrap(handler, options.concurrency);
        let settler = Arc::new(Settler::new(
            queue,
            self.names.clone(),
            handler,
            options,
            self.publisher.clone(),
            dead_letters,
        ));
        tokio::select! {
            consumed = self.consume_until(&settler, &shutdown) => consumed,
            () = sample_forever(settler.queue(), || self.depth(settler.queue()), || settler.last_lag()) => Ok(()),
        }
    }

    /// Ready messages only: those being handled or waiting in a retry level are not counted.
    async fn depth(&self, queue: &str) -> anyhow::Result<u64> {
        let name = self.names.queue(queue);
        let channel = self.publisher.scratch_channel().await?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let inspected = channel
            .queue_declare(name.as_str().into(), passive, FieldTable::default())
            .await;
        close_channel(&channel).await;
        let inspected = inspected.with_context(|| format!("inspecting queue {name}"))?;
        Ok(u64::from(inspected.message_count()))
    }

    async fn ping(&self) -> bool {
        self.publisher.ping().await.is_ok()
    }

    fn name(&self) -> &'static str {
        "rabbitmq"
    }

    async fn delete_topology(&self, queues: &[QueueSpec]) -> anyhow::Result<()> {
        self.delete_queues(queues).await
    }
}

async fn open_connection(url: &str, name: String) -> anyhow::Result<Connection> {
    let mut uri: AMQPUri = url
        .parse()
        .map_err(|e: String| anyhow!(e))
        .context("parsing the AMQP URL (HERALD_AMQP_URL)")?;
    if uri.query.connection_timeout.is_none() {
        uri.query.connection_timeout = Some(CONNECT_TIMEOUT.as_secs() * 1000);
    }
    let properties = ConnectionProperties::default().with_connection_name(name.into());
    tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect_uri(uri, properties))
        .await
        .map_err(|_| anyhow!("no answer from RabbitMQ within {CONNECT_TIMEOUT:?}"))
        .and_then(|connected| connected.map_err(anyhow::Error::from))
        .context("connecting to RabbitMQ (HERALD_AMQP_URL)")
}

async fn close_connection(connection: &Connection) {
    let _ = tokio::time::timeout(
        CLOSE_TIMEOUT,
        connection.close(REPLY_SUCCESS, "closing".into()),
    )
    .await;
}

async fn close_channel(channel: &Channel) {
    let _ = tokio::time::timeout(
        CLOSE_TIMEOUT,
        channel.close(REPLY_SUCCESS, "closing".into()),
    )
    .await;
}
