//! The Kafka bus: one topic per queue, `{prefix}.{queue}`, consumed by the consumer group of
//! the same name; beside it one topic per retry level, `{prefix}.{queue}.retry.{n}`, where a
//! failed message waits until it is due and is then put back into its queue's topic.
//!
//! Kafka has no exchange: the publisher routes. Each event goes to the topic of every
//! declared queue one of whose bindings matches its type. The bindings are kept in the
//! compacted topic `{prefix}.bindings` (a record per queue, keyed by its name), read when
//! the bus connects, so they outlive the process that declared them; and every service
//! declares the whole contract's topology on start, so each publisher knows every queue.
//! The lanes stay apart
//! as on RabbitMQ: the critical and standard queues are separate topics with their own
//! consumer groups, so a backlog in one never delays the other.
//!
//! Guarantees, as on the other buses (the conformance suite checks them):
//! - `publish` returns once every copy is acknowledged by all in-sync replicas
//!   (`acks=all`), from an idempotent producer (a retried send is not written twice);
//! - a message's offset is committed only after its handler returned and what it did was
//!   committed (or it went to a retry level or the dead-letter store): at-least-once, with
//!   the consumers' inbox making redeliveries harmless;
//! - events of one ordering key ([`Envelope::ordering_key`]: an order's events by the order's
//!   id) go to one partition and are handled one after the other, in order; other keys are
//!   handled at once, up to the consumer's concurrency (see [`ledger`]).
//!
//! Topics are created when declared (`HERALD_KAFKA_PARTITIONS` partitions each; retry levels
//! one), as brokers are often set not to create them on first use.

mod consumer;
mod ledger;
mod retry;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use herald_events::Envelope;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use super::batch::Coalescing;
use super::delivery::sample_forever;
use super::names::Names;
use super::{BusBackend, ConsumerOptions, DeadLetterSink, EventHandler, QueueSpec, topic_matches};

/// How long a call to the brokers (metadata, offsets, topic creation) may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a published message may wait for the brokers before `publish` fails (the outbox
/// then publishes it again later).
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// Which delivery of a message this is (1 for the first), carried across retries.
const ATTEMPT_HEADER: &str = "x-herald-attempt";
/// When a message in a retry level is due back in its queue (Unix milliseconds).
const DUE_HEADER: &str = "x-herald-due-ms";

/// How Herald uses Kafka, from the settings (`HERALD_KAFKA_*`).
#[derive(Debug, Clone, Copy)]
pub struct KafkaOptions {
    /// Partitions of each queue's topic when Herald creates it.
    pub partitions: u32,
    /// Records in one produce batch per partition (`batch.num.messages`).
    pub batch_messages: u32,
}

impl KafkaOptions {
    pub fn from_settings(settings: &crate::config::Settings) -> KafkaOptions {
        KafkaOptions {
            partitions: settings.kafka_partitions,
            batch_messages: settings.kafka_batch_messages,
        }
    }
}

pub struct KafkaBus {
    names: Names,
    brokers: String,
    partitions: i32,
    producer: FutureProducer<Logged>,
    admin: AdminClient<Logged>,
    /// Topics known to exist (created or found by this instance).
    topics: tokio::sync::Mutex<HashSet<String>>,
    /// Declared queues and their bindings: where `publish` routes.
    routes: std::sync::RwLock<Vec<QueueSpec>>,
    /// Per consumer running (by a number of its own): whether it joined its group yet.
    joined: std::sync::Mutex<HashMap<u64, Arc<AtomicBool>>>,
    next_consumer: AtomicU64,
    /// Offset readers of the queues' groups, for their lag.
    lag_readers: std::sync::Mutex<HashMap<String, Arc<BaseConsumer<Logged>>>>,
}

impl KafkaBus {
    /// Connects to `brokers` (`host:port,…`), failing fast when none answers; declares
    /// nothing yet.
    pub async fn connect(
        brokers: &str,
        prefix: &str,
        options: KafkaOptions,
    ) -> anyhow::Result<KafkaBus> {
        let producer: FutureProducer<Logged> = client_config(brokers)
            .set("client.id", format!("herald-{prefix}-publisher"))
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            .set(
                "batch.num.messages",
                options.batch_messages.max(1).to_string(),
            )
            .set("message.timeout.ms", millis(DELIVERY_TIMEOUT))
            .create_with_context(Logged)
            .context("creating the Kafka producer (HERALD_KAFKA_BROKERS)")?;
        let admin: AdminClient<Logged> = client_config(brokers)
            .set("client.id", format!("herald-{prefix}-admin"))
            .create_with_context(Logged)
            .context("creating the Kafka admin client")?;
        let bus = KafkaBus {
            names: Names::new(prefix),
            brokers: brokers.to_owned(),
            partitions: i32::try_from(options.partitions.clamp(1, 1024)).unwrap_or(1),
            producer,
            admin,
            topics: tokio::sync::Mutex::new(HashSet::new()),
            routes: std::sync::RwLock::new(Vec::new()),
            joined: std::sync::Mutex::new(HashMap::new()),
            next_consumer: AtomicU64::new(0),
            lag_readers: std::sync::Mutex::new(HashMap::new()),
        };
        bus.metadata(Duration::from_secs(5))
            .await
            .context("connecting to Kafka (HERALD_KAFKA_BROKERS)")?;
        let known = bus.read_bindings().await?;
        *bus.routes.write().unwrap_or_else(|p| p.into_inner()) = known;
        Ok(bus)
    }

    /// The bindings kept in `{prefix}.bindings`, the latest record of each queue.
    async fn read_bindings(&self) -> anyhow::Result<Vec<QueueSpec>> {
        let topic = self.names.bindings();
        if !self.topic_exists(&topic).await? {
            return Ok(Vec::new());
        }
        let mut config = client_config(&self.brokers);
        tokio::task::spawn_blocking(move || {
            let reader: BaseConsumer<Logged> = config
                .set("group.id", format!("{topic}.reader"))
                .set("enable.auto.commit", "false")
                .create_with_context(Logged)
                .context("creating a Kafka client to read the bindings")?;
            let (low, high) = reader
                .fetch_watermarks(&topic, 0, CALL_TIMEOUT)
                .with_context(|| format!("reading the offsets of {topic}"))?;
            let mut queues: Vec<QueueSpec> = Vec::new();
            if high <= low {
                return Ok(queues);
            }
            let mut from = TopicPartitionList::new();
            from.add_partition_offset(&topic, 0, Offset::Offset(low))?;
            reader.assign(&from)?;
            let deadline = std::time::Instant::now() + CALL_TIMEOUT;
            let mut next = low;
            while next < high {
                anyhow::ensure!(
                    std::time::Instant::now() < deadline,
                    "reading {topic} took longer than {CALL_TIMEOUT:?} (at {next} of {high})"
                );
                let Some(polled) = reader.poll(Duration::from_millis(200)) else {
                    continue;
                };
                let message = polled.with_context(|| format!("reading {topic}"))?;
                next = message.offset() + 1;
                let Some(queue) = message.key() else {
                    continue;
                };
                let name = String::from_utf8_lossy(queue).into_owned();
                queues.retain(|q| q.name != name);
                let Some(bindings) = message.payload() else {
                    continue; // forgotten
                };
                let Ok(bindings) = serde_json::from_slice::<Vec<String>>(bindings) else {
                    tracing::warn!(queue = name, "unreadable bindings in {topic}; skipped");
                    continue;
                };
                queues.push(QueueSpec { name, bindings });
            }
            Ok(queues)
        })
        .await?
    }

    /// Deletes the topics of `queues` and their retry levels, and their consumer groups
    /// (tests, operators).
    async fn delete_queues(&self, queues: &[QueueSpec]) -> anyhow::Result<()> {
        let prefixes: Vec<String> = queues.iter().map(|q| self.names.queue(&q.name)).collect();
        let remaining = {
            let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
            routes.retain(|r| !queues.iter().any(|q| q.name == r.name));
            routes.len()
        };
        let bindings = self.names.bindings();
        let metadata = self.metadata(CALL_TIMEOUT).await?;
        let doomed: Vec<String> = metadata
            .into_iter()
            .filter(|(topic, _)| {
                prefixes
                    .iter()
                    .any(|p| topic == p || topic.starts_with(&format!("{p}.retry.")))
                    || (remaining == 0 && *topic == bindings)
            })
            .map(|(topic, _)| topic)
            .collect();
        if remaining > 0 {
            // A record without a value (a tombstone) forgets a queue's bindings.
            for queue in queues {
                let record = FutureRecord::<[u8], [u8]>::to(&bindings).key(queue.name.as_bytes());
                self.producer
                    .send(record, DELIVERY_TIMEOUT)
                    .await
                    .map_err(|(e, _)| e)
                    .with_context(|| format!("forgetting the bindings of {}", queue.name))?;
            }
        }
        if !doomed.is_empty() {
            let names: Vec<&str> = doomed.iter().map(String::as_str).collect();
            let options = AdminOptions::new().operation_timeout(Some(CALL_TIMEOUT));
            let results = self
                .admin
                .delete_topics(&names, &options)
                .await
                .context("deleting topics")?;
            for result in results {
                match result {
                    Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                    Err((topic, code)) => anyhow::bail!("deleting topic {topic}: {code}"),
                }
            }
        }
        let groups: Vec<String> = queues
            .iter()
            .flat_map(|q| {
                let group = self.names.queue(&q.name);
                [group.clone(), format!("{group}.retry")]
            })
            .collect();
        self.lag_readers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|group, _| !groups.contains(group));
        let groups: Vec<&str> = groups.iter().map(String::as_str).collect();
        // Groups that never consumed are unknown to the broker; that is no failure.
        let _ = self
            .admin
            .delete_groups(
                &groups,
                &AdminOptions::new().operation_timeout(Some(CALL_TIMEOUT)),
            )
            .await;
        let mut topics = self.topics.lock().await;
        topics.retain(|t| !doomed.contains(t));
        Ok(())
    }

    /// Creates `topics` (with `partitions` partitions each) unless this instance knows they
    /// exist; a topic that already exists is no failure.
    async fn ensure_topics(&self, topics: &[String], partitions: i32) -> anyhow::Result<()> {
        let mut known = self.topics.lock().await;
        let missing: Vec<&String> = topics.iter().filter(|t| !known.contains(*t)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        let new: Vec<NewTopic<'_>> = missing
            .iter()
            .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(-1)))
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(CALL_TIMEOUT));
        let results = tokio::time::timeout(CALL_TIMEOUT, self.admin.create_topics(&new, &options))
            .await
            .map_err(|_| anyhow!("no answer from Kafka within {CALL_TIMEOUT:?}"))?
            .context("creating topics")?;
        for result in results {
            match result {
                Ok(topic) | Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                    known.insert(topic);
                }
                Err((topic, code)) => anyhow::bail!("creating topic {topic}: {code}"),
            }
        }
        Ok(())
    }

    async fn topic_exists(&self, topic: &str) -> anyhow::Result<bool> {
        if self.topics.lock().await.contains(topic) {
            return Ok(true);
        }
        let exists = self
            .metadata(CALL_TIMEOUT)
            .await?
            .iter()
            .any(|(name, partitions)| name == topic && *partitions > 0);
        if exists {
            self.topics.lock().await.insert(topic.to_owned());
        }
        Ok(exists)
    }

    /// A client in `group` (without joining it) that reads its committed offsets; one per
    /// group, kept.
    fn lag_reader(&self, group: &str) -> anyhow::Result<Arc<BaseConsumer<Logged>>> {
        let mut readers = self.lag_readers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(reader) = readers.get(group) {
            return Ok(reader.clone());
        }
        let reader: BaseConsumer<Logged> = client_config(&self.brokers)
            .set("group.id", group)
            .set("client.id", format!("herald-offsets-{group}"))
            .set("enable.auto.commit", "false")
            .create_with_context(Logged)
            .context("creating a Kafka client to read offsets")?;
        let reader = Arc::new(reader);
        readers.insert(group.to_owned(), reader.clone());
        Ok(reader)
    }

    fn joined_lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<AtomicBool>>> {
        self.joined.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The topics on the brokers and their partition counts.
    async fn metadata(&self, timeout: Duration) -> anyhow::Result<Vec<(String, usize)>> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || {
            let metadata = producer
                .client()
                .fetch_metadata(None, timeout)
                .context("reading the brokers' metadata")?;
            Ok(metadata
                .topics()
                .iter()
                .map(|t| (t.name().to_owned(), t.partitions().len()))
                .collect())
        })
        .await?
    }

    /// The queues whose bindings match `event_type`.
    fn routes_of(&self, event_type: &str) -> Vec<String> {
        let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
        routes
            .iter()
            .filter(|q| q.bindings.iter().any(|b| topic_matches(b, event_type)))
            .map(|q| self.names.queue(&q.name))
            .collect()
    }

    /// Sends `body` to `topic` keyed by `key`; returns once the brokers acknowledged it.
    async fn send(
        &self,
        topic: &str,
        key: &[u8],
        body: &[u8],
        headers: OwnedHeaders,
        timestamp: SystemTime,
    ) -> anyhow::Result<()> {
        let record = FutureRecord::to(topic)
            .key(key)
            .payload(body)
            .headers(headers)
            .timestamp(unix_millis(timestamp));
        self.producer
            .send(record, DELIVERY_TIMEOUT)
            .await
            .map(|_| ())
            .map_err(|(e, _)| anyhow::Error::from(e))
            .with_context(|| format!("publishing to Kafka topic {topic}"))
    }

    /// Consumer lag of `queue`'s group: per partition of its topic, the high watermark less
    /// the committed offset (the low watermark when the group committed nothing yet).
    async fn lag(&self, queue: &str) -> anyhow::Result<u64> {
        let topic = self.names.queue(queue);
        let group = topic.clone();
        let reader = self.lag_reader(&group)?;
        tokio::task::spawn_blocking(move || {
            let metadata = reader
                .fetch_metadata(Some(&topic), CALL_TIMEOUT)
                .with_context(|| format!("reading the metadata of {topic}"))?;
            let partitions: Vec<i32> = metadata
                .topics()
                .iter()
                .filter(|t| t.name() == topic)
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            anyhow::ensure!(!partitions.is_empty(), "no Kafka topic {topic}");
            let mut wanted = TopicPartitionList::new();
            for &partition in &partitions {
                wanted.add_partition(&topic, partition);
            }
            let committed = reader
                .committed_offsets(wanted, CALL_TIMEOUT)
                .with_context(|| format!("reading the committed offsets of {group}"))?;
            let mut lag = 0u64;
            for partition in partitions {
                let (low, high) = reader
                    .fetch_watermarks(&topic, partition, CALL_TIMEOUT)
                    .with_context(|| format!("reading the offsets of {topic}/{partition}"))?;
                let done = committed
                    .find_partition(&topic, partition)
                    .and_then(|p| match p.offset() {
                        Offset::Offset(o) => Some(o),
                        _ => None,
                    })
                    .unwrap_or(low)
                    .max(low);
                lag += u64::try_from(high - done).unwrap_or(0);
            }
            Ok(lag)
        })
        .await?
    }
}

#[async_trait]
impl BusBackend for KafkaBus {
    /// Creates the queues' topics, and records their bindings (those already kept, and
    /// the new ones) in the bindings topic before publishing routes by them.
    async fn declare(&self, queues: &[QueueSpec]) -> anyhow::Result<()> {
        let topics: Vec<String> = queues.iter().map(|q| self.names.queue(&q.name)).collect();
        self.ensure_topics(&topics, self.partitions).await?;
        let bindings_topic = self.names.bindings();
        self.ensure_topics(std::slice::from_ref(&bindings_topic), 1)
            .await?;
        let changed: Vec<QueueSpec> = {
            let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
            queues
                .iter()
                .filter_map(|spec| {
                    let mut merged = routes
                        .iter()
                        .find(|r| r.name == spec.name)
                        .map_or_else(Vec::new, |r| r.bindings.clone());
                    let before = merged.len();
                    for pattern in &spec.bindings {
                        if !merged.contains(pattern) {
                            merged.push(pattern.clone());
                        }
                    }
                    let new = before < merged.len() || before == 0;
                    new.then(|| QueueSpec {
                        name: spec.name.clone(),
                        bindings: merged,
                    })
                })
                .collect()
        };
        for spec in &changed {
            let body = serde_json::to_vec(&spec.bindings)?;
            self.send(
                &bindings_topic,
                spec.name.as_bytes(),
                &body,
                OwnedHeaders::new(),
                SystemTime::now(),
            )
            .await
            .with_context(|| format!("recording the bindings of {}", spec.name))?;
        }
        let mut routes = self.routes.write().unwrap_or_else(|p| p.into_inner());
        for spec in changed {
            routes.retain(|r| r.name != spec.name);
            routes.push(spec);
        }
        Ok(())
    }

    async fn publish(&self, events: &[Envelope]) -> anyhow::Result<()> {
        let now = SystemTime::now();
        let bodies = events
            .iter()
            .map(serde_json::to_vec)
            .collect::<Result<Vec<_>, _>>()?;
        let keys: Vec<String> = events.iter().map(Envelope::ordering_key).collect();
        let routes: Vec<Vec<String>> = events
            .iter()
            .map(|e| self.routes_of(&e.event_type))
            .collect();
        let mut sends = Vec::new();
        for (((event, body), key), topics) in events.iter().zip(&bodies).zip(&keys).zip(&routes) {
            for topic in topics {
                sends.push(self.send(topic, key.as_bytes(), body, event_headers(event, 1), now));
            }
        }
        for sent in futures::future::join_all(sends).await {
            sent?;
        }
        Ok(())
    }

    /// Into `queue`'s topic alone: no other queue bound to the event's type sees it. Fails
    /// when the queue's topic does not exist.
    async fn requeue(&self, queue: &str, event: &Envelope) -> anyhow::Result<()> {
        let topic = self.names.queue(queue);
        anyhow::ensure!(
            self.topic_exists(&topic).await?,
            "no queue {queue}: Kafka has no topic {topic}"
        );
        let body = serde_json::to_vec(event)?;
        self.send(
            &topic,
            event.ordering_key().as_bytes(),
            &body,
            event_headers(event, 1),
            SystemTime::now(),
        )
        .await
        .with_context(|| format!("putting event {} back into {topic}", event.id))
    }

    async fn consume(
        &self,
        queue: &str,
        handler: Arc<dyn EventHandler>,
        options: ConsumerOptions,
        dead_letters: Arc<dyn DeadLetterSink>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<()> {
        let topic = self.names.queue(queue);
        self.ensure_topics(std::slice::from_ref(&topic), self.partitions)
            .await?;
        let levels: Vec<String> = (1..=options.retry_levels())
            .map(|level| self.names.retry_level(queue, level))
            .collect();
        self.ensure_topics(&levels, 1).await?;
        let handler = Coalescing::wrap(handler, options.concurrency);
        let last_lag = consumer::LastLag::default();
        let number = self.next_consumer.fetch_add(1, Ordering::Relaxed);
        let joined = Arc::new(AtomicBool::new(false));
        self.joined_lock().insert(number, joined.clone());
        let consumer = consumer::QueueConsumer {
            bus: self,
            queue,
            topic: &topic,
            levels: &levels,
            handler,
            options,
            dead_letters,
            last_lag: &last_lag,
            joined,
        };
        let consumed = tokio::select! {
            consumed = async {
                tokio::try_join!(
                    consumer.run(&shutdown),
                    retry::forward_when_due(self, queue, &topic, &levels, &shutdown),
                )
            } => consumed.map(|_| ()),
            () = sample_forever(queue, || self.lag(queue), || last_lag.get()) => Ok(()),
        };
        self.joined_lock().remove(&number);
        consumed
    }

    fn consumers_ready(&self) -> bool {
        self.joined_lock()
            .values()
            .all(|joined| joined.load(Ordering::Relaxed))
    }

    /// Consumer lag: messages published to the queue's topic and not committed by its
    /// group (those handled now included; those waiting in a retry level not).
    async fn depth(&self, queue: &str) -> anyhow::Result<u64> {
        self.lag(queue).await
    }

    async fn ping(&self) -> bool {
        self.metadata(Duration::from_secs(2)).await.is_ok()
    }

    fn name(&self) -> &'static str {
        "kafka"
    }

    async fn delete_topology(&self, queues: &[QueueSpec]) -> anyhow::Result<()> {
        self.delete_queues(queues).await
    }
}

/// Settings every client shares.
fn client_config(brokers: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("socket.connection.setup.timeout.ms", "5000")
        .set("log_level", "4");
    config
}

/// A consumer in `group`: offsets committed by Herald, never by the client; a new group
/// starts from the oldest message kept; a member that stops heart-beating leaves after 10 s,
/// and one that stops polling after 60 s (also how long a rebalance waits for the members
/// to join again: with the default 5 minutes, a replica killed without leaving its group
/// holds back its successor for that long).
fn group_member_config(brokers: &str, group: &str) -> ClientConfig {
    let mut config = client_config(brokers);
    config
        .set("group.id", group)
        .set("client.id", format!("herald-{group}"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "1000")
        .set("max.poll.interval.ms", "60000")
        .set("fetch.wait.max.ms", "100");
    config
}

fn millis(duration: Duration) -> String {
    duration.as_millis().to_string()
}

fn unix_millis(at: SystemTime) -> i64 {
    at.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn event_headers(event: &Envelope, attempt: u32) -> OwnedHeaders {
    OwnedHeaders::new()
        .insert(Header {
            key: "content-type",
            value: Some("application/cloudevents+json"),
        })
        .insert(Header {
            key: "ce_type",
            value: Some(event.event_type.as_str()),
        })
        .insert(Header {
            key: ATTEMPT_HEADER,
            value: Some(&attempt.to_string()),
        })
}

/// A header's value as text, if the message has it.
fn header<'a, H: Headers>(headers: Option<&'a H>, key: &str) -> Option<&'a str> {
    headers?
        .iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

/// librdkafka's log and errors, through `tracing`.
#[derive(Clone, Copy, Default)]
struct Logged;

impl ClientContext for Logged {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => tracing::error!(facility, "librdkafka: {message}"),
            RDKafkaLogLevel::Warning => tracing::warn!(facility, "librdkafka: {message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(facility, "librdkafka: {message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!(facility, "librdkafka: {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        // Brokers going away and coming back are reported here; the clients reconnect.
        tracing::warn!(error = %error, "Kafka: {reason}");
    }
}

/// Consumers outside a queue's group (retry levels, offset readers) keep the defaults.
impl rdkafka::consumer::ConsumerContext for Logged {}
