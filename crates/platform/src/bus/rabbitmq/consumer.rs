//! Consuming one queue: a connection of its own, handlers running up to the prefetch, and
//! every delivery settled: acknowledged (in batches, see [`super::acks`]), parked in a retry
//! level, or written to the dead-letter store.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context, anyhow};
use futures::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, Consumer};
use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

use super::acks::{AckAction, AckWindow};
use super::publisher::{Outgoing, Publisher};
use super::{
    PERSISTENT, RECONNECT_MAX, RabbitBus, close_channel, close_connection, open_connection,
    unix_seconds,
};
use crate::bus::delivery::{Verdict, dead_letter, judge, record_lag, store_retry_delay};
use crate::bus::names::Names;
use crate::bus::{ConsumerOptions, DeadLetterSink, EventHandler, QueueSpec};

/// How long a stopping consumer waits for its in-flight handlers.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// Which delivery of a message this is (1 for the first), carried across retries.
const ATTEMPT_HEADER: &str = "x-herald-attempt";

impl RabbitBus {
    /// Opens a dedicated connection consuming `queue`, declaring its topology first so that
    /// it also comes back after a broker lost its state.
    pub(super) async fn subscribe(
        &self,
        queue: &str,
        options: &ConsumerOptions,
    ) -> anyhow::Result<Subscription> {
        let name = format!("herald {} consumer {queue}", self.names.prefix);
        let connection = open_connection(self.publisher.url(), name).await?;
        let bindings = {
            let declared = self.declared.lock().unwrap_or_else(|p| p.into_inner());
            declared.get(queue).cloned().unwrap_or_default()
        };
        let spec = QueueSpec {
            name: queue.to_owned(),
            bindings,
        };
        let tag = format!("{}-{}", queue, uuid::Uuid::now_v7().simple());
        let prefetch = options.concurrency.clamp(1, usize::from(u16::MAX));
        let started = async {
            let channel = connection
                .create_channel()
                .await
                .context("opening a channel")?;
            self.declare_on(&channel, std::slice::from_ref(&spec))
                .await?;
            self.declare_retry_levels(&connection, queue, options)
                .await?;
            channel
                .basic_qos(
                    u16::try_from(prefetch).unwrap_or(u16::MAX),
                    BasicQosOptions::default(),
                )
                .await
                .context("setting prefetch")?;
            let consumer = channel
                .basic_consume(
                    self.names.queue(queue).into(),
                    tag.as_str().into(),
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
                prefetch,
            }),
            Err(e) => {
                close_connection(&connection).await;
                Err(e)
            }
        }
    }
}

/// One consumer connection, from its first delivery to its shutdown or loss.
pub(super) struct Subscription {
    connection: Connection,
    channel: Channel,
    consumer: Consumer,
    tag: String,
    prefetch: usize,
}

pub(super) enum Stopped {
    Shutdown,
    Lost(anyhow::Error),
}

/// How a handled delivery is settled with the broker.
enum Settled {
    Ack,
    Requeue,
}

/// The running handlers of one channel and the acknowledgements they owe.
struct InFlight {
    tasks: JoinSet<Settled>,
    tags: HashMap<tokio::task::Id, u64>,
    window: AckWindow,
}

impl InFlight {
    fn start(&mut self, settler: &Arc<Settler>, delivery: Delivery) {
        let tag = delivery.delivery_tag;
        self.window.delivered(tag);
        let task = self.tasks.spawn(settler.clone().settle(delivery));
        self.tags.insert(task.id(), tag);
    }

    fn finished(&mut self, joined: Result<(tokio::task::Id, Settled), JoinError>) {
        let (id, settled) = match joined {
            Ok((id, settled)) => (id, settled),
            // Aborted, or a panic outside the handler: the broker delivers it again.
            Err(e) => (e.id(), Settled::Requeue),
        };
        if let Some(tag) = self.tags.remove(&id) {
            match settled {
                Settled::Ack => self.window.handled(tag),
                Settled::Requeue => self.window.requeue(tag),
            }
        }
    }

    /// Collects every handler that finished by now, so one ack covers them all.
    fn finished_meanwhile(&mut self) {
        while let Some(joined) = self.tasks.try_join_next_with_id() {
            self.finished(joined);
        }
    }
}

async fn tell_broker(channel: &Channel, actions: Vec<AckAction>) -> lapin::Result<()> {
    for action in actions {
        match action {
            AckAction::AckThrough(tag) => {
                channel
                    .basic_ack(tag, BasicAckOptions { multiple: true })
                    .await?
            }
            AckAction::Ack(tag) => channel.basic_ack(tag, BasicAckOptions::default()).await?,
            AckAction::Requeue(tag) => {
                let requeue = BasicNackOptions {
                    requeue: true,
                    multiple: false,
                };
                channel.basic_nack(tag, requeue).await?
            }
        }
    }
    Ok(())
}

impl Subscription {
    pub(super) async fn run(self, settler: &Arc<Settler>, shutdown: &CancellationToken) -> Stopped {
        let Subscription {
            connection,
            channel,
            mut consumer,
            tag,
            prefetch,
        } = self;
        let queue = settler.queue.as_str();
        // Prefetch bounds the unacknowledged deliveries, hence the handlers running at once.
        let mut in_flight = InFlight {
            tasks: JoinSet::new(),
            tags: HashMap::new(),
            window: AckWindow::new(prefetch),
        };
        let stopped = loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break Stopped::Shutdown,
                Some(joined) = in_flight.tasks.join_next_with_id() => {
                    in_flight.finished(joined);
                    in_flight.finished_meanwhile();
                    if let Err(e) = tell_broker(&channel, in_flight.window.take()).await {
                        break Stopped::Lost(anyhow::Error::from(e).context("acknowledging"));
                    }
                }
                next = consumer.next() => match next {
                    Some(Ok(delivery)) => {
                        settler.observe_lag(&delivery.properties);
                        in_flight.start(settler, delivery);
                    }
                    Some(Err(e)) => break Stopped::Lost(e.into()),
                    None => break Stopped::Lost(anyhow!("the consumer was cancelled or its channel closed")),
                },
            }
        };
        if matches!(stopped, Stopped::Shutdown)
            && let Err(e) = channel
                .basic_cancel(tag.as_str().into(), BasicCancelOptions::default())
                .await
        {
            tracing::debug!(queue, error = %e, "cancelling the consumer failed");
        }
        // Handlers finish even when the connection is gone: their effect is done, and the
        // inbox makes the redelivery of an unacknowledged message harmless.
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while let Some(joined) = in_flight.tasks.join_next_with_id().await {
                in_flight.finished(joined);
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                queue,
                "handlers still running after {DRAIN_TIMEOUT:?}; their messages will be delivered again"
            );
            in_flight.tasks.abort_all();
        }
        if let Err(e) = tell_broker(&channel, in_flight.window.take_all()).await {
            tracing::warn!(queue, error = %e, "acknowledging failed; the messages will be delivered again");
        }
        // Prefetched deliveries never handed to a handler return to the queue with the channel.
        close_channel(&channel).await;
        close_connection(&connection).await;
        stopped
    }
}

/// Handles one delivery and decides how it is settled.
pub(super) struct Settler {
    queue: String,
    names: Names,
    handler: Arc<dyn EventHandler>,
    options: ConsumerOptions,
    publisher: Arc<Publisher>,
    dead_letters: Arc<dyn DeadLetterSink>,
    /// now − publish timestamp of the message delivered last, in milliseconds.
    last_lag_ms: AtomicU64,
}

impl Settler {
    pub(super) fn new(
        queue: &str,
        names: Names,
        handler: Arc<dyn EventHandler>,
        options: ConsumerOptions,
        publisher: Arc<Publisher>,
        dead_letters: Arc<dyn DeadLetterSink>,
    ) -> Settler {
        Settler {
            queue: queue.to_owned(),
            names,
            handler,
            options,
            publisher,
            dead_letters,
            last_lag_ms: AtomicU64::new(0),
        }
    }

    pub(super) fn queue(&self) -> &str {
        &self.queue
    }

    pub(super) fn options(&self) -> &ConsumerOptions {
        &self.options
    }

    pub(super) fn last_lag(&self) -> Duration {
        Duration::from_millis(self.last_lag_ms.load(Ordering::Relaxed))
    }

    fn observe_lag(&self, properties: &BasicProperties) {
        let Some(stamp) = properties.timestamp() else {
            return;
        };
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let lag = now.saturating_sub(Duration::from_secs(*stamp));
        record_lag(&self.queue, lag);
        self.last_lag_ms.store(
            u64::try_from(lag.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    async fn settle(self: Arc<Self>, delivery: Delivery) -> Settled {
        let queue = self.queue.as_str();
        let attempt = attempt_of(&delivery.properties);
        let judged = judge(
            queue,
            self.handler.as_ref(),
            &delivery.data,
            attempt,
            &self.options,
        )
        .await;
        match &judged.verdict {
            Verdict::Handled => Settled::Ack,
            Verdict::Retry(delay) => match self.schedule_retry(&delivery, attempt, *delay).await {
                Ok(()) => Settled::Ack,
                Err(e) => {
                    tracing::warn!(
                        queue,
                        error = format!("{e:#}"),
                        "scheduling a retry failed; requeueing"
                    );
                    // Waiting first keeps a broken retry path from redelivering in a tight loop.
                    tokio::time::sleep((*delay).min(RECONNECT_MAX)).await;
                    Settled::Requeue
                }
            },
            Verdict::DeadLetter(error) => {
                let stored = dead_letter(
                    self.dead_letters.as_ref(),
                    queue,
                    &judged,
                    &delivery.data,
                    error,
                    attempt,
                )
                .await;
                if stored {
                    Settled::Ack
                } else {
                    // The same attempt comes again once the store may work.
                    tokio::time::sleep(store_retry_delay(&self.options)).await;
                    Settled::Requeue
                }
            }
        }
    }

    /// Parks a copy in the delay queue of this attempt's level until `delay` passed; RabbitMQ
    /// then dead-letters it back into the queue. The copy's own expiration carries the
    /// jitter and is at most the level's TTL, so within one level a message waits at most
    /// the jitter's spread (±20 % of the level's delay by default) behind the one ahead.
    async fn schedule_retry(
        &self,
        delivery: &Delivery,
        attempt: u32,
        delay: Duration,
    ) -> anyhow::Result<()> {
        let level = attempt.clamp(1, self.options.retry_levels().max(1));
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
        // The timestamp becomes the time the copy is due again, so the lag measured when it
        // comes back is time spent waiting in the queue, not the backoff.
        let due = unix_seconds(SystemTime::now() + delay);
        let properties = delivery
            .properties
            .clone()
            .with_headers(FieldTable::from(headers))
            .with_delivery_mode(PERSISTENT)
            .with_timestamp(due)
            .with_expiration(delay.as_millis().to_string().into());
        let level_queue = self.names.retry_level(&self.queue, level);
        let copy = Outgoing {
            exchange: "",
            routing_key: &level_queue,
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
