//! Consuming one queue's topic as its consumer group: messages of different keys handled at
//! once up to the concurrency, one key's in order ([`Ledger`]), each settled (handled, parked
//! in a retry level, or written to the dead-letter store) before its offset is committed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::task::{JoinError, JoinSet};
use tokio_util::sync::CancellationToken;

use super::ledger::{Held, Ledger};
use super::{
    ATTEMPT_HEADER, DUE_HEADER, KafkaBus, Logged, group_member_config, header, unix_millis,
};
use crate::bus::delivery::{Verdict, dead_letter, judge, record_lag, store_retry_delay};
use crate::bus::{ConsumerOptions, DeadLetterSink, EventHandler};

/// How long a stopping consumer waits for its in-flight handlers.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest pause between two attempts to park a message in its retry level.
const PARK_RETRY_MAX: Duration = Duration::from_secs(5);

/// now − publish timestamp of the message received last, for the oldest-message gauge.
#[derive(Default)]
pub(super) struct LastLag(AtomicU64);

impl LastLag {
    pub(super) fn get(&self) -> Duration {
        Duration::from_millis(self.0.load(Ordering::Relaxed))
    }

    fn observe(&self, queue: &str, message: &OwnedMessage) {
        let Some(stamp) = message.timestamp().to_millis() else {
            return;
        };
        let lag = Duration::from_millis(
            u64::try_from(unix_millis(SystemTime::now()) - stamp).unwrap_or(0),
        );
        record_lag(queue, lag);
        self.0.store(
            u64::try_from(lag.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }
}

pub(super) struct QueueConsumer<'a> {
    pub bus: &'a KafkaBus,
    pub queue: &'a str,
    pub topic: &'a str,
    pub levels: &'a [String],
    pub handler: Arc<dyn EventHandler>,
    pub options: ConsumerOptions,
    pub dead_letters: Arc<dyn DeadLetterSink>,
    pub last_lag: &'a LastLag,
    /// Set once the group gave this consumer its partitions.
    pub joined: Arc<AtomicBool>,
}

type Shared = Arc<OwnedMessage>;

impl QueueConsumer<'_> {
    pub(super) async fn run(&self, shutdown: &CancellationToken) -> anyhow::Result<()> {
        let assignments = Arc::new(Assignments::default());
        let consumer: StreamConsumer<GroupMember> =
            group_member_config(&self.bus.brokers, self.topic)
                .create_with_context(GroupMember {
                    assignments: assignments.clone(),
                    joined: self.joined.clone(),
                })
                .with_context(|| format!("creating the Kafka consumer of {}", self.topic))?;
        consumer
            .subscribe(&[self.topic])
            .with_context(|| format!("subscribing to {}", self.topic))?;
        let settler = Arc::new(Settler {
            bus_producer: self.bus.producer.clone(),
            queue: self.queue.to_owned(),
            levels: self.levels.to_vec(),
            handler: self.handler.clone(),
            options: self.options.clone(),
            dead_letters: self.dead_letters.clone(),
        });
        let concurrency = self.options.concurrency.max(1);
        let mut ledger: Ledger<Shared> = Ledger::default();
        let mut running = Running::default();
        let mut idle = Idle::default();
        let mut watch = tokio::time::interval(IDLE_CHECK);
        let mut commit_tick = tokio::time::interval(COMMIT_EVERY);
        let mut settled_since_commit = false;
        loop {
            let room = running.tasks.len() < concurrency && ledger.waiting() < concurrency;
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = watch.tick() => {
                    if idle.stuck(self, &assignments).await {
                        tracing::warn!(queue = self.queue,
                            "the group gave this consumer no partition while messages wait and nobody takes them; joining it again");
                        consumer.unsubscribe();
                        consumer
                            .subscribe(&[self.topic])
                            .with_context(|| format!("subscribing to {} again", self.topic))?;
                    }
                }
                Some(joined) = running.tasks.join_next_with_id() => {
                    running.finished(joined, &mut ledger, &settler, &assignments);
                    while let Some(joined) = running.tasks.try_join_next_with_id() {
                        running.finished(joined, &mut ledger, &settler, &assignments);
                    }
                    settled_since_commit = true;
                }
                _ = commit_tick.tick(), if settled_since_commit => {
                    self.commit(&consumer, &mut ledger, &assignments, CommitMode::Async);
                    settled_since_commit = false;
                }
                received = consumer.recv(), if room => match received {
                    Ok(message) => {
                        let message = Arc::new(message.detach());
                        self.last_lag.observe(self.queue, &message);
                        let held = Held {
                            partition: message.partition(),
                            offset: message.offset(),
                            epoch: assignments.epoch(message.partition()),
                            key: message.key().unwrap_or_default().to_vec(),
                            message,
                        };
                        if let Some(now) = ledger.receive(held) {
                            running.start(now, &settler);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(queue = self.queue, error = %e, "receiving from Kafka failed");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                },
            }
        }
        // Handlers finish (their effect is done; the inbox makes a redelivery harmless), then
        // what they settled is committed before the consumer leaves its group.
        let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while let Some(joined) = running.tasks.join_next_with_id().await {
                running.finished(joined, &mut ledger, &settler, &assignments);
            }
        })
        .await;
        if drained.is_err() {
            tracing::warn!(
                queue = self.queue,
                "handlers still running after {DRAIN_TIMEOUT:?}; their messages will be delivered again"
            );
            running.tasks.abort_all();
        }
        self.commit(&consumer, &mut ledger, &assignments, CommitMode::Sync);
        // Closing leaves the group at once (its partitions go to the other members without
        // waiting for the session to time out); it blocks, so not on a runtime thread.
        tokio::task::spawn_blocking(move || drop(consumer))
            .await
            .context("closing the Kafka consumer")?;
        Ok(())
    }

    fn commit(
        &self,
        consumer: &StreamConsumer<GroupMember>,
        ledger: &mut Ledger<Shared>,
        assignments: &Assignments,
        mode: CommitMode,
    ) {
        let commits = ledger.commits(|p| assignments.epoch(p));
        if commits.is_empty() {
            return;
        }
        let mut offsets = TopicPartitionList::new();
        for (partition, offset) in commits {
            if let Err(e) =
                offsets.add_partition_offset(self.topic, partition, Offset::Offset(offset))
            {
                tracing::warn!(queue = self.queue, error = %e, "an offset to commit was refused");
            }
        }
        if let Err(e) = consumer.commit(&offsets, mode) {
            // Not lost: the messages are delivered again, and the inbox makes that harmless.
            tracing::warn!(queue = self.queue, error = %e, "committing offsets failed");
        }
    }
}

/// How often a consumer commits what it settled meanwhile (one commit covers them all; a
/// crash redelivers at most this much more, which the inbox absorbs).
const COMMIT_EVERY: Duration = Duration::from_millis(200);
/// How often a consumer holding no partition looks whether its group is stuck.
const IDLE_CHECK: Duration = Duration::from_secs(10);
/// How long the group's lag must stand still, this consumer holding nothing, before it
/// joins the group again.
const STUCK_AFTER: Duration = Duration::from_secs(20);

/// Watches for a group that gave out no partition: tansu 0.6, after the group's leader died
/// without leaving (a replica killed), forms the next generation without a leader, and
/// every member is assigned nothing. A member that holds nothing while the group's lag
/// stands still joins again (with a new member id, which makes it the leader).
#[derive(Default)]
struct Idle {
    since: Option<(std::time::Instant, u64)>,
}

impl Idle {
    async fn stuck(&mut self, consumer: &QueueConsumer<'_>, assignments: &Assignments) -> bool {
        if assignments.held() > 0 {
            self.since = None;
            return false;
        }
        let Ok(lag) = consumer.bus.lag(consumer.queue).await else {
            return false;
        };
        match self.since {
            Some((since, before)) if lag > 0 && lag >= before => {
                if since.elapsed() >= STUCK_AFTER {
                    self.since = None;
                    return true;
                }
                false
            }
            _ => {
                self.since = (lag > 0).then(|| (std::time::Instant::now(), lag));
                false
            }
        }
    }
}

/// The handlers running, and which message each handles.
#[derive(Default)]
struct Running {
    tasks: JoinSet<()>,
    held: HashMap<tokio::task::Id, Held<Shared>>,
}

impl Running {
    fn start(&mut self, held: Held<Shared>, settler: &Arc<Settler>) {
        let task = self
            .tasks
            .spawn(settler.clone().settle(held.message.clone()));
        self.held.insert(task.id(), held);
    }

    fn finished(
        &mut self,
        joined: Result<(tokio::task::Id, ()), JoinError>,
        ledger: &mut Ledger<Shared>,
        settler: &Arc<Settler>,
        assignments: &Assignments,
    ) {
        let (id, settled) = match joined {
            Ok((id, ())) => (id, true),
            Err(e) => (e.id(), false),
        };
        let Some(held) = self.held.remove(&id) else {
            return;
        };
        if !settled {
            // Aborted at shutdown: unsettled, so never committed; delivered again later.
            return;
        }
        let next = ledger.settled(held.partition, held.offset, held.epoch, &held.key, |p| {
            assignments.epoch(p)
        });
        if let Some(next) = next {
            self.start(next, settler);
        }
    }
}

/// Settles one message: handles it and decides what becomes of it.
struct Settler {
    bus_producer: rdkafka::producer::FutureProducer<Logged>,
    queue: String,
    levels: Vec<String>,
    handler: Arc<dyn EventHandler>,
    options: ConsumerOptions,
    dead_letters: Arc<dyn DeadLetterSink>,
}

impl Settler {
    async fn settle(self: Arc<Self>, message: Shared) {
        let queue = self.queue.as_str();
        let attempt = attempt_of(message.headers());
        let body = message.payload().unwrap_or_default();
        loop {
            let judged = judge(queue, self.handler.as_ref(), body, attempt, &self.options).await;
            match &judged.verdict {
                Verdict::Handled => return,
                Verdict::Retry(delay) => {
                    let mut pause = Duration::from_millis(100);
                    loop {
                        match self.park(&message, attempt, *delay).await {
                            Ok(()) => return,
                            Err(e) => {
                                tracing::warn!(
                                    queue,
                                    error = format!("{e:#}"),
                                    "parking a message for its retry failed; trying again"
                                );
                                tokio::time::sleep(pause).await;
                                pause = (pause * 2).min(PARK_RETRY_MAX);
                            }
                        }
                    }
                }
                Verdict::DeadLetter(error) => {
                    let stored = dead_letter(
                        self.dead_letters.as_ref(),
                        queue,
                        &judged,
                        body,
                        error,
                        attempt,
                    )
                    .await;
                    if stored {
                        return;
                    }
                    // The same attempt comes again once the store may work.
                    tokio::time::sleep(store_retry_delay(&self.options)).await;
                }
            }
        }
    }

    /// Puts a copy into the retry level of this attempt, due after `delay`; the level's
    /// forwarder puts it back into the queue's topic then ([`super::retry`]).
    async fn park(
        &self,
        message: &OwnedMessage,
        attempt: u32,
        delay: Duration,
    ) -> anyhow::Result<()> {
        let level =
            usize::try_from(attempt.clamp(1, self.options.retry_levels().max(1))).unwrap_or(1);
        let topic = self
            .levels
            .get(level - 1)
            .context("no retry level for this attempt")?;
        let due = SystemTime::now() + delay;
        let mut headers = OwnedHeaders::new();
        if let Some(kept) = message.headers() {
            for h in kept.iter() {
                if h.key != ATTEMPT_HEADER && h.key != DUE_HEADER {
                    headers = headers.insert(Header {
                        key: h.key,
                        value: h.value,
                    });
                }
            }
        }
        let headers = headers
            .insert(Header {
                key: ATTEMPT_HEADER,
                value: Some(&(attempt + 1).to_string()),
            })
            .insert(Header {
                key: DUE_HEADER,
                value: Some(&unix_millis(due).to_string()),
            });
        let mut record = rdkafka::producer::FutureRecord::to(topic)
            .payload(message.payload().unwrap_or_default())
            .headers(headers)
            .timestamp(unix_millis(due));
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        self.bus_producer
            .send(record, super::DELIVERY_TIMEOUT)
            .await
            .map(|_| ())
            .map_err(|(e, _)| anyhow::Error::from(e))
            .with_context(|| format!("publishing to retry level {topic}"))
    }
}

fn attempt_of(headers: Option<&OwnedHeaders>) -> u32 {
    header(headers, ATTEMPT_HEADER)
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(1)
        .max(1)
}

/// Which assignment of each partition is the current one: bumped when the group takes a
/// partition from this consumer and when it gives one, inside the rebalance callbacks, so a
/// message received afterwards carries the new epoch.
#[derive(Default)]
pub(super) struct Assignments {
    epochs: Mutex<HashMap<i32, u64>>,
    next: AtomicU64,
    /// Partitions this consumer holds now.
    held: AtomicU64,
}

impl Assignments {
    pub(super) fn epoch(&self, partition: i32) -> u64 {
        let epochs = self.epochs.lock().unwrap_or_else(|p| p.into_inner());
        epochs.get(&partition).copied().unwrap_or(0)
    }

    fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }

    fn renew(&self, partitions: &TopicPartitionList) {
        let mut epochs = self.epochs.lock().unwrap_or_else(|p| p.into_inner());
        for element in partitions.elements() {
            let epoch = self.next.fetch_add(1, Ordering::Relaxed) + 1;
            epochs.insert(element.partition(), epoch);
        }
    }
}

/// The context of a consumer in a group: rebalances renew [`Assignments`].
pub(super) struct GroupMember {
    assignments: Arc<Assignments>,
    joined: Arc<AtomicBool>,
}

impl ClientContext for GroupMember {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        Logged.log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        Logged.error(error, reason);
    }
}

impl ConsumerContext for GroupMember {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(partitions) = rebalance {
            tracing::debug!(partitions = partitions.count(), "Kafka partitions revoked");
            self.assignments.renew(partitions);
            self.assignments.held.store(0, Ordering::Relaxed);
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => {
                tracing::debug!(partitions = partitions.count(), "Kafka partitions assigned");
                self.assignments.renew(partitions);
                self.assignments
                    .held
                    .store(partitions.count() as u64, Ordering::Relaxed);
                self.joined.store(true, Ordering::Relaxed);
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "Kafka rebalance failed"),
            Rebalance::Revoke(_) => {}
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            tracing::debug!(error = %e, "a Kafka offset commit failed; its messages come again");
        }
    }
}
