//! The buses alone: Herald's own (either backend) with a handler that does nothing, and
//! RabbitMQ through lapin without any of Herald's code.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use futures::StreamExt;
use herald_events::{Envelope, Event, OrderConfirmed};
use herald_platform::Settings;
use herald_platform::bus::{
    ConsumerOptions, DeadLetterSink, DeadMessage, EventHandler, HandlerError, QueueSpec,
};
use herald_platform::testing::{TestBus, unique_prefix};
use lapin::Confirmation;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio_util::sync::CancellationToken;

use super::BusTimes;

/// Messages published before waiting for their confirms.
const PUBLISH_BATCH: usize = 1_000;
/// Unacknowledged deliveries the raw RabbitMQ consumer may hold.
const PREFETCH: u16 = 1_000;
/// Deliveries settled by one `basic.ack` with `multiple = true`.
const ACK_EVERY: usize = 100;
/// The longest a bus may take before the run is abandoned.
const TIMEOUT: Duration = Duration::from_secs(600);

/// Herald's own bus as the settings name it: publish in batches, then consume with a
/// handler that does nothing, as many at once as a service's consumer.
pub async fn through_herald_bus(
    settings: &Settings,
    orders: &[Envelope],
) -> anyhow::Result<BusTimes> {
    let queue = QueueSpec::new("bench", &[OrderConfirmed::TYPE]);
    let bus = TestBus::connect(settings, vec![queue.clone()]).await;
    let started = Instant::now();
    for batch in orders.chunks(PUBLISH_BATCH) {
        bus.bus().publish(batch).await?;
    }
    let publish = started.elapsed();

    let handler = Arc::new(Counting::new(orders.len()));
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let consumer = bus.bus().spawn_consumer(
        &queue.name,
        handler.clone(),
        ConsumerOptions::default(),
        Arc::new(NoDeadLetters),
        shutdown.clone(),
    );
    let all_seen = tokio::time::timeout(TIMEOUT, handler.all_seen.notified()).await;
    let consume = started.elapsed();
    shutdown.cancel();
    consumer.await?;
    bus.finish().await;
    all_seen.context("the bus did not deliver every message in time")?;
    Ok(BusTimes { publish, consume })
}

/// A handler that only counts, and tells when it saw the last message.
struct Counting {
    seen: AtomicUsize,
    expected: usize,
    all_seen: tokio::sync::Notify,
}

impl Counting {
    fn new(expected: usize) -> Counting {
        Counting {
            seen: AtomicUsize::new(0),
            expected,
            all_seen: tokio::sync::Notify::new(),
        }
    }
}

#[async_trait]
impl EventHandler for Counting {
    async fn handle(&self, _event: &Envelope) -> Result<(), HandlerError> {
        if self.seen.fetch_add(1, Ordering::Relaxed) + 1 == self.expected {
            self.all_seen.notify_one();
        }
        Ok(())
    }
}

/// The counting handler never fails, so nothing may end up here.
struct NoDeadLetters;

#[async_trait]
impl DeadLetterSink for NoDeadLetters {
    async fn dead_letter(
        &self,
        queue: &str,
        _message: DeadMessage<'_>,
        error: &str,
        _attempts: u32,
    ) -> anyhow::Result<()> {
        anyhow::bail!("a message of {queue} was dead-lettered in the benchmark: {error}")
    }
}

/// Where the raw RabbitMQ measurement sends its messages.
#[derive(Debug, Clone, Copy)]
pub enum Routing {
    /// Into one queue through the default exchange: the broker's limit.
    OneQueue,
    /// Through a topic exchange into this many queues bound to `order.confirmed`, each
    /// consumed: what the broker does for every order event in Herald's topology.
    Fanout(usize),
}

/// RabbitMQ without Herald: persistent messages into durable queues, confirms awaited per
/// batch, then every queue consumed at once, each with one `basic.ack` (`multiple = true`)
/// per [`ACK_EVERY`].
pub async fn through_lapin(
    url: &str,
    bodies: &[Vec<u8>],
    routing: Routing,
) -> anyhow::Result<BusTimes> {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .context("connecting to RabbitMQ")?;
    let prefix = unique_prefix();
    let (exchange, routing_key, queues) = match routing {
        Routing::OneQueue => {
            let queue = format!("{prefix}.bench.lapin");
            (String::new(), queue.clone(), vec![queue])
        }
        Routing::Fanout(n) => (
            format!("{prefix}.bench.events"),
            OrderConfirmed::TYPE.to_owned(),
            (1..=n)
                .map(|i| format!("{prefix}.bench.lapin.{i}"))
                .collect(),
        ),
    };
    let setup = connection.create_channel().await?;
    let measured = tokio::time::timeout(TIMEOUT, async {
        declare(&setup, &exchange, &routing_key, &queues).await?;
        let channel = connection.create_channel().await?;
        let publish = publish_confirmed(&channel, &exchange, &routing_key, bodies).await?;
        let mut channels = Vec::with_capacity(queues.len());
        for _ in &queues {
            channels.push(connection.create_channel().await?);
        }
        let started = Instant::now();
        let consumers = channels
            .iter()
            .zip(&queues)
            .map(|(channel, queue)| consume_acking_in_batches(channel, queue, bodies.len()));
        futures::future::try_join_all(consumers).await?;
        let consume = started.elapsed();
        anyhow::Ok(BusTimes { publish, consume })
    })
    .await;
    // Cleaning up after the measurement: a failure here (RabbitMQ sometimes answers the
    // delete on a channel it is closing) leaves only this run's uniquely named queues.
    for queue in &queues {
        if let Err(e) = setup
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await
        {
            eprintln!("deleting {queue} failed: {e}");
        }
    }
    if !exchange.is_empty()
        && let Err(e) = setup
            .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
            .await
    {
        eprintln!("deleting {exchange} failed: {e}");
    }
    if let Err(e) = connection.close(200, "benchmark done".into()).await {
        eprintln!("closing the lapin connection failed: {e}");
    }
    measured.context("RabbitMQ did not take and deliver every message in time")?
}

/// The durable queues, and unless the default exchange routes, the durable topic exchange
/// binding each of them to `routing_key`.
async fn declare(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    queues: &[String],
) -> anyhow::Result<()> {
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    if !exchange.is_empty() {
        let options = ExchangeDeclareOptions {
            durable: true,
            ..ExchangeDeclareOptions::default()
        };
        channel
            .exchange_declare(
                exchange.into(),
                ExchangeKind::Topic,
                options,
                FieldTable::default(),
            )
            .await?;
    }
    for queue in queues {
        channel
            .queue_declare(queue.as_str().into(), durable, FieldTable::default())
            .await?;
        if !exchange.is_empty() {
            channel
                .queue_bind(
                    queue.as_str().into(),
                    exchange.into(),
                    routing_key.into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await?;
        }
    }
    Ok(())
}

async fn publish_confirmed(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    bodies: &[Vec<u8>],
) -> anyhow::Result<Duration> {
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let persistent = BasicProperties::default().with_delivery_mode(2);
    let started = Instant::now();
    for batch in bodies.chunks(PUBLISH_BATCH) {
        let mut confirms = Vec::with_capacity(batch.len());
        for body in batch {
            let options = BasicPublishOptions::default();
            confirms.push(
                channel
                    .basic_publish(
                        exchange.into(),
                        routing_key.into(),
                        options,
                        body,
                        persistent.clone(),
                    )
                    .await?,
            );
        }
        for confirm in confirms {
            let confirmation = confirm.await?;
            anyhow::ensure!(
                matches!(confirmation, Confirmation::Ack(None)),
                "RabbitMQ did not take a message: {confirmation:?}"
            );
        }
    }
    Ok(started.elapsed())
}

async fn consume_acking_in_batches(
    channel: &Channel,
    queue: &str,
    expected: usize,
) -> anyhow::Result<Duration> {
    channel
        .basic_qos(PREFETCH, BasicQosOptions::default())
        .await?;
    let mut deliveries = channel
        .basic_consume(
            queue.into(),
            "bench".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let started = Instant::now();
    for received in 1..=expected {
        let delivery = deliveries
            .next()
            .await
            .context("the consumer stopped early")??;
        if received % ACK_EVERY == 0 || received == expected {
            channel
                .basic_ack(delivery.delivery_tag, BasicAckOptions { multiple: true })
                .await?;
        }
    }
    Ok(started.elapsed())
}
