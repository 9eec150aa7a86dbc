//! The RabbitMQ bus: one durable topic exchange `{prefix}.events`, a durable queue
//! `{prefix}.{name}` per [`QueueSpec`], and beside it a delay queue `{prefix}.{name}.retry`
//! that dead-letters retried messages back into the queue once their delay expired.
//!
//! Connections are supervised here, not by lapin's auto-recover (it did not recover from
//! broker restarts): a failed publishing connection is dropped and opened again on the next
//! call, and a consumer reconnects with backoff until it is shut down.

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use futures::future::try_join_all;
use futures::{FutureExt, StreamExt};
use herald_events::Envelope;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::publisher_confirm::{Confirmation, PublisherConfirm};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::uri::AMQPUri;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, Consumer, ExchangeKind};
use tokio::sync::Mutex;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{BusBackend, ConsumerOptions, EventHandler, HandlerError, QueueSpec, handle_recorded};

/// Bounds the TCP connect and the AMQP handshake, so a wrong URL fails instead of hanging.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A blocked or half-open connection fails the publish instead of hanging it.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stopping consumer waits for its in-flight handlers.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Closing a connection whose socket is gone waits for a reply that never comes.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
const RECONNECT_MIN: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(5);
/// Which delivery of a message this is (1 for the first), carried across retries.
const ATTEMPT_HEADER: &str = "x-herald-attempt";
const PERSISTENT: u8 = 2;
const REPLY_SUCCESS: u16 = 200;

pub struct RabbitBus {
    names: Names,
    publisher: Arc<Publisher>,
    /// Bindings declared through this instance, declared again when a consumer reconnects.
    declared: std::sync::Mutex<HashMap<String, Vec<String>>>,
}

impl RabbitBus {
    /// Connects (failing fast when the broker is unreachable); declares nothing yet.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<RabbitBus> {
        let publisher = Arc::new(Publisher {
            url: url.to_owned(),
            name: format!("herald {prefix} publisher"),
            session: Mutex::new(None),
            sessions_opened: AtomicU64::new(0),
        });
        publisher
            .ensure_open(&mut *publisher.session.lock().await)
            .await?;
        Ok(RabbitBus {
            names: Names {
                prefix: prefix.to_owned(),
            },
            publisher,
            declared: std::sync::Mutex::new(HashMap::new()),
        })
    }

    /// Deletes the exchange and `queues` with their retry queues and messages (tests, operators).
    pub async fn delete_topology(&self, queues: &[QueueSpec]) -> anyhow::Result<()> {
        let channel = self.publisher.scratch_channel().await?;
        let deleted = async {
            for spec in queues {
                for queue in [
                    self.names.queue(&spec.name),
                    self.names.retry_queue(&spec.name),
                ] {
                    channel
                        .queue_delete(&queue, QueueDeleteOptions::default())
                        .await
                        .with_context(|| format!("deleting queue {queue}"))?;
                }
            }
            let exchange = self.names.exchange();
            channel
                .exchange_delete(&exchange, ExchangeDeleteOptions::default())
                .await
                .with_context(|| format!("deleting exchange {exchange}"))
        }
        .await;
        close_channel(&channel).await;
        let mut declared = self.declared.lock().unwrap_or_else(|p| p.into_inner());
        for spec in queues {
            declared.remove(&spec.name);
        }
        deleted
    }

    async fn declare_on(&self, channel: &Channel, queues: &[QueueSpec]) -> anyhow::Result<()> {
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        let exchange = self.names.exchange();
        channel
            .exchange_declare(
                &exchange,
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .with_context(|| format!("declaring exchange {exchange}"))?;
        for spec in queues {
            let queue = self.names.queue(&spec.name);
            channel
                .queue_declare(&queue, durable, FieldTable::default())
                .await
                .with_context(|| format!("declaring queue {queue}"))?;
            for pattern in &spec.bindings {
                channel
                    .queue_bind(
                        &queue,
                        &exchange,
                        pattern,
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .with_context(|| format!("binding queue {queue} to {pattern}"))?;
            }
            let retry_queue = self.names.retry_queue(&spec.name);
            let mut dead_letter = FieldTable::default();
            dead_letter.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString("".into()),
            );
            dead_letter.insert(
                "x-dead-letter-routing-key".into(),
                AMQPValue::LongString(queue.into()),
            );
            channel
                .queue_declare(&retry_queue, durable, dead_letter)
                .await
                .with_context(|| format!("declaring queue {retry_queue}"))?;
        }
        Ok(())
    }

    /// Opens a dedicated connection consuming `queue`, declaring its topology first so that
    /// it also comes back after a broker lost its state.
    async fn subscribe(
        &self,
        queue: &str,
        options: &ConsumerOptions,
    ) -> anyhow::Result<Subscription> {
        let name = format!("herald {} consumer {queue}", self.names.prefix);
        let connection = open_connection(&self.publisher.url, name).await?;
        let bindings = {
            let declared = self.declared.lock().unwrap_or_else(|p| p.into_inner());
            declared.get(queue).cloned().unwrap_or_default()
        };
        let spec = QueueSpec {
            name: queue.to_owned(),
            bindings,
        };
        let tag = format!("{}-{}", queue, uuid::Uuid::now_v7().simple());
        let started = async {
            let channel = connection
                .create_channel()
                .await
                .context("opening a channel")?;
            self.declare_on(&channel, std::slice::from_ref(&spec))
                .await?;
            let prefetch = u16::try_from(options.concurrency.max(1)).unwrap_or(u16::MAX);
            channel
                .basic_qos(prefetch, BasicQosOptions::default())
                .await
                .context("setting prefetch")?;
            let consumer = channel
                .basic_consume(
                    &self.names.queue(queue),
                    &tag,
                    BasicConsumeOptions::default(),
                    FieldTable::default(),
                )
                .await
                .context("starting the consumer")?;
            anyhow::Ok((channel, consumer))
        }
        .await;
        match started {
            Ok((channel, consumer)) => Ok(Subscription {
                connection,
                channel,
                consumer,
                tag,
            }),
            Err(e) => {
                close_connection(&connection).await;
                Err(e)
            }
        }
    }
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
                properties: BasicProperties::default()
                    .with_delivery_mode(PERSISTENT)
                    .with_content_type("application/json".into())
                    .with_message_id(event.id.to_string().into())
                    .with_type(event.event_type.as_str().into()),
                mandatory: false,
            })
            .collect();
        self.publisher.publish(&messages).await
    }

    async fn consume(
        &self,
        queue: &str,
        handler: Arc<dyn EventHandler>,
        options: ConsumerOptions,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let settler = Arc::new(Settler {
            queue: queue.to_owned(),
            retry_queue: self.names.retry_queue(queue),
            handler,
            options,
            publisher: self.publisher.clone(),
        });
        let mut backoff = RECONNECT_MIN;
        while !shutdown.is_cancelled() {
            match self.subscribe(queue, &settler.options).await {
                Ok(subscription) => {
                    backoff = RECONNECT_MIN;
                    match subscription.run(&settler, &shutdown).await {
                        Stopped::Shutdown => return Ok(()),
                        Stopped::Lost(e) => {
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

    /// Ready messages only: those being handled or waiting in the retry queue are not counted.
    async fn depth(&self, queue: &str) -> anyhow::Result<u64> {
        let name = self.names.queue(queue);
        let channel = self.publisher.scratch_channel().await?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        let inspected = channel
            .queue_declare(&name, passive, FieldTable::default())
            .await;
        close_channel(&channel).await;
        let inspected = inspected.with_context(|| format!("inspecting queue {name}"))?;
        Ok(u64::from(inspected.message_count()))
    }

    async fn ping(&self) -> bool {
        self.publisher
            .ensure_open(&mut *self.publisher.session.lock().await)
            .await
            .is_ok()
    }

    fn name(&self) -> &'static str {
        "rabbitmq"
    }
}

#[derive(Debug, Clone)]
struct Names {
    prefix: String,
}

impl Names {
    fn exchange(&self) -> String {
        format!("{}.events", self.prefix)
    }

    fn queue(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }

    fn retry_queue(&self, name: &str) -> String {
        format!("{}.{name}.retry", self.prefix)
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
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, connection.close(REPLY_SUCCESS, "closing")).await;
}

async fn close_channel(channel: &Channel) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, channel.close(REPLY_SUCCESS, "closing")).await;
}

/// The publishing connection and its confirm-mode channel, opened on first use and again
/// after any failure.
struct Publisher {
    url: String,
    name: String,
    session: Mutex<Option<Session>>,
    sessions_opened: AtomicU64,
}

struct Session {
    id: u64,
    connection: Connection,
    confirms: Channel,
}

impl Session {
    fn is_open(&self) -> bool {
        self.connection.status().connected() && self.confirms.status().connected()
    }

    fn close_in_background(self) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { close_connection(&self.connection).await });
        }
    }
}

/// One message to publish with confirms.
struct Outgoing<'a> {
    exchange: &'a str,
    routing_key: &'a str,
    body: &'a [u8],
    properties: BasicProperties,
    /// Fail when no queue takes the message, instead of dropping it (an event no queue
    /// binds is dropped, as on the embedded bus).
    mandatory: bool,
}

impl Publisher {
    async fn ensure_open<'s>(
        &self,
        slot: &'s mut Option<Session>,
    ) -> anyhow::Result<&'s mut Session> {
        let session = match slot.take() {
            Some(session) if session.is_open() => session,
            stale => {
                if let Some(stale) = stale {
                    stale.close_in_background();
                }
                let connection = open_connection(&self.url, self.name.clone()).await?;
                let confirms = connection
                    .create_channel()
                    .await
                    .context("opening a channel")?;
                confirms
                    .confirm_select(ConfirmSelectOptions::default())
                    .await
                    .context("enabling publisher confirms")?;
                let id = self.sessions_opened.fetch_add(1, Ordering::Relaxed);
                Session {
                    id,
                    connection,
                    confirms,
                }
            }
        };
        Ok(slot.insert(session))
    }

    /// A short-lived channel for topology and inspection: a failed operation (a passive
    /// declare of a missing queue) closes only this channel.
    async fn scratch_channel(&self) -> anyhow::Result<Channel> {
        let mut slot = self.session.lock().await;
        let session = self.ensure_open(&mut slot).await?;
        session
            .connection
            .create_channel()
            .await
            .context("opening a channel")
    }

    /// Returns once the broker confirmed every message; any failure fails the whole batch.
    async fn publish(&self, messages: &[Outgoing<'_>]) -> anyhow::Result<()> {
        // Publishing under the lock keeps messages in the order their confirm tags were
        // taken; the confirms are awaited after it is released.
        let (session_id, pending) = {
            let mut slot = self.session.lock().await;
            let session = self.ensure_open(&mut slot).await?;
            let session_id = session.id;
            // A blocked connection (broker out of memory or disk) stops taking frames.
            let sent = tokio::time::timeout(CONFIRM_TIMEOUT, send_all(&session.confirms, messages))
                .await
                .map_err(|_| anyhow!("RabbitMQ took no messages within {CONFIRM_TIMEOUT:?}"))
                .and_then(|sent| sent.map_err(anyhow::Error::from));
            match sent {
                Ok(pending) => (session_id, pending),
                Err(e) => {
                    if let Some(session) = slot.take() {
                        session.close_in_background();
                    }
                    return Err(e).context("publishing to RabbitMQ");
                }
            }
        };
        let failure = match tokio::time::timeout(CONFIRM_TIMEOUT, try_join_all(pending)).await {
            Ok(Ok(confirmations)) => {
                let refused = confirmations
                    .iter()
                    .filter(|c| !matches!(c, Confirmation::Ack(None)))
                    .count();
                if refused == 0 {
                    return Ok(());
                }
                // The broker answered, so the connection is fine; the caller sends again.
                return Err(anyhow!(
                    "RabbitMQ refused {refused} of {} messages (nack or unroutable)",
                    messages.len()
                ));
            }
            Ok(Err(e)) => anyhow::Error::from(e).context("awaiting publisher confirms"),
            Err(_) => anyhow!("no publisher confirms within {CONFIRM_TIMEOUT:?}"),
        };
        let mut slot = self.session.lock().await;
        if slot.as_ref().is_some_and(|s| s.id == session_id)
            && let Some(session) = slot.take()
        {
            session.close_in_background();
        }
        Err(failure)
    }
}

async fn send_all(
    channel: &Channel,
    messages: &[Outgoing<'_>],
) -> lapin::Result<Vec<PublisherConfirm>> {
    let mut pending = Vec::with_capacity(messages.len());
    for message in messages {
        let options = BasicPublishOptions {
            mandatory: message.mandatory,
            ..BasicPublishOptions::default()
        };
        let confirm = channel
            .basic_publish(
                message.exchange,
                message.routing_key,
                options,
                message.body,
                message.properties.clone(),
            )
            .await?;
        pending.push(confirm);
    }
    Ok(pending)
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if let Some(session) = self.session.get_mut().take() {
            session.close_in_background();
        }
    }
}

/// One consumer connection, from its first delivery to its shutdown or loss.
struct Subscription {
    connection: Connection,
    channel: Channel,
    consumer: Consumer,
    tag: String,
}

enum Stopped {
    Shutdown,
    Lost(anyhow::Error),
}

impl Subscription {
    async fn run(self, settler: &Arc<Settler>, shutdown: &CancellationToken) -> Stopped {
        let Subscription {
            connection,
            channel,
            mut consumer,
            tag,
        } = self;
        // Prefetch bounds the unacknowledged deliveries, hence the handlers running at once.
        let mut in_flight = JoinSet::new();
        let stopped = loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break Stopped::Shutdown,
                Some(_) = in_flight.join_next() => {}
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        in_flight.spawn(settler.clone().settle(delivery));
                    }
                    Some(Err(e)) => break Stopped::Lost(e.into()),
                    None => break Stopped::Lost(anyhow!("the consumer was cancelled or its channel closed")),
                },
            }
        };
        if matches!(stopped, Stopped::Shutdown)
            && let Err(e) = channel
                .basic_cancel(&tag, BasicCancelOptions::default())
                .await
        {
            tracing::debug!(queue = settler.queue, error = %e, "cancelling the consumer failed");
        }
        // Handlers finish even when the connection is gone: their effect is done, and the
        // inbox makes the redelivery of an unacknowledged message harmless.
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while in_flight.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                queue = settler.queue,
                "handlers still running after {DRAIN_TIMEOUT:?}; their messages will be delivered again"
            );
            in_flight.abort_all();
        }
        // Prefetched deliveries never handed to a handler return to the queue with the channel.
        close_channel(&channel).await;
        close_connection(&connection).await;
        stopped
    }
}

/// Handles one delivery and settles it with the broker.
struct Settler {
    queue: String,
    retry_queue: String,
    handler: Arc<dyn EventHandler>,
    options: ConsumerOptions,
    publisher: Arc<Publisher>,
}

impl Settler {
    async fn settle(self: Arc<Self>, delivery: Delivery) {
        let queue = self.queue.as_str();
        let attempt = attempt_of(&delivery.properties);
        let outcome = match serde_json::from_slice::<Envelope>(&delivery.data) {
            Ok(event) => AssertUnwindSafe(handle_recorded(queue, self.handler.as_ref(), &event))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    tracing::error!(queue, event_id = %event.id, "handler panicked; will retry");
                    Err(HandlerError::Retry(anyhow!("handler panicked")))
                }),
            Err(e) => {
                tracing::error!(queue, error = %e, "dropping a message that is not an event envelope");
                metrics::counter!("bus_consumed_total", "queue" => queue.to_owned(), "outcome" => "reject")
                    .increment(1);
                Err(HandlerError::Reject(e.into()))
            }
        };
        let settled = match outcome {
            Ok(()) | Err(HandlerError::Reject(_)) => {
                delivery.acker.ack(BasicAckOptions::default()).await
            }
            Err(HandlerError::Retry(_)) => match self.schedule_retry(&delivery, attempt).await {
                Ok(()) => delivery.acker.ack(BasicAckOptions::default()).await,
                Err(e) => {
                    tracing::warn!(
                        queue,
                        error = format!("{e:#}"),
                        "scheduling a retry failed; requeueing"
                    );
                    // Waiting first keeps a broken retry path from redelivering in a tight loop.
                    tokio::time::sleep(self.options.delay_for_attempt(attempt).min(RECONNECT_MAX))
                        .await;
                    let requeue = BasicNackOptions {
                        requeue: true,
                        ..BasicNackOptions::default()
                    };
                    delivery.acker.nack(requeue).await
                }
            },
        };
        if let Err(e) = settled {
            tracing::warn!(queue, error = %e, "settling a message failed; it will be delivered again");
        }
    }

    /// Parks a copy in the retry queue until its delay expires; RabbitMQ then dead-letters it
    /// back into the queue. Per-message TTLs only expire at the head of the retry queue, so
    /// a long delay holds back shorter ones behind it; acceptable while delays stay short.
    async fn schedule_retry(&self, delivery: &Delivery, attempt: u32) -> anyhow::Result<()> {
        let delay = self.options.delay_for_attempt(attempt);
        let mut headers: BTreeMap<ShortString, AMQPValue> = delivery
            .properties
            .headers()
            .as_ref()
            .map(|h| h.inner().clone())
            .unwrap_or_default();
        // The broker records each dead-lettering there; the attempt header is ours.
        headers.remove("x-death");
        headers.insert(
            ATTEMPT_HEADER.into(),
            AMQPValue::LongLongInt(i64::from(attempt) + 1),
        );
        let properties = delivery
            .properties
            .clone()
            .with_headers(FieldTable::from(headers))
            .with_delivery_mode(PERSISTENT)
            .with_expiration(delay.as_millis().to_string().into());
        let copy = Outgoing {
            exchange: "",
            routing_key: &self.retry_queue,
            body: &delivery.data,
            properties,
            mandatory: true,
        };
        self.publisher.publish(&[copy]).await
    }
}

fn attempt_of(properties: &BasicProperties) -> u32 {
    let value = properties
        .headers()
        .as_ref()
        .and_then(|h| h.inner().get(ATTEMPT_HEADER));
    let attempt = match value {
        Some(AMQPValue::LongLongInt(n)) => *n,
        Some(AMQPValue::LongInt(n)) => i64::from(*n),
        Some(AMQPValue::LongUInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortInt(n)) => i64::from(*n),
        Some(AMQPValue::ShortUInt(n)) => i64::from(*n),
        _ => 1,
    };
    u32::try_from(attempt).unwrap_or(1).max(1)
}
