//! The retry levels of one queue: a message whose `n`-th attempt failed waits in
//! `{prefix}.{queue}.retry.{n}` with the time it is due; this forwarder, the consumer group
//! `{prefix}.{queue}.retry`, puts each back into the queue's topic once due and then commits
//! it.
//!
//! Every message of one level waits about as long (the level's delay, ±jitter), so a level
//! is read in order, head first; a long delay never holds back a short one, which waits in
//! another level's topic. Messages read ahead of the head wait in memory; a level that holds
//! many is paused until they went out.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};
use rdkafka::producer::FutureRecord;
use rdkafka::{Message, Offset, TopicPartitionList};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{
    DELIVERY_TIMEOUT, DUE_HEADER, KafkaBus, Logged, group_member_config, header, unix_millis,
};

/// Messages read ahead in one level partition before it is paused, and resumed below.
const READ_AHEAD: usize = 256;
const RESUME_BELOW: usize = 64;

pub(super) async fn forward_when_due(
    bus: &KafkaBus,
    queue: &str,
    topic: &str,
    levels: &[String],
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    if levels.is_empty() {
        shutdown.cancelled().await;
        return Ok(());
    }
    let group = format!("{topic}.retry");
    let consumer: StreamConsumer<Logged> = group_member_config(&bus.brokers, &group)
        .create_with_context(Logged)
        .with_context(|| format!("creating the Kafka consumer {group}"))?;
    let names: Vec<&str> = levels.iter().map(String::as_str).collect();
    consumer
        .subscribe(&names)
        .with_context(|| format!("subscribing to {}", names.join(", ")))?;
    let mut waiting: BTreeMap<(String, i32), VecDeque<OwnedMessage>> = BTreeMap::new();
    let mut paused: Vec<(String, i32)> = Vec::new();
    loop {
        let next_due = waiting.values().filter_map(|q| q.front()).map(due_at).min();
        let wake = next_due.map_or_else(
            || Instant::now() + Duration::from_secs(3600),
            |due| Instant::now() + due.duration_since(SystemTime::now()).unwrap_or_default(),
        );
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep_until(wake), if next_due.is_some() => {
                if let Err(e) = forward_due(bus, queue, topic, &consumer, &mut waiting).await {
                    tracing::warn!(queue, error = format!("{e:#}"), "putting due retries back failed; trying again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                paused.retain(|tp| {
                    let few = waiting.get(tp).is_none_or(|q| q.len() < RESUME_BELOW);
                    if few {
                        resume(&consumer, tp);
                    }
                    !few
                });
            }
            received = consumer.recv() => match received {
                Ok(message) => {
                    let tp = (message.topic().to_owned(), message.partition());
                    let level = waiting.entry(tp.clone()).or_default();
                    level.push_back(message.detach());
                    if level.len() >= READ_AHEAD && !paused.contains(&tp) {
                        pause(&consumer, &tp);
                        paused.push(tp);
                    }
                }
                Err(e) => {
                    tracing::warn!(queue, error = %e, "receiving from a retry level failed");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            },
        }
    }
    tokio::task::spawn_blocking(move || drop(consumer))
        .await
        .context("closing the Kafka retry consumer")?;
    Ok(())
}

/// Puts every message whose time came back into the queue's topic, committing each level
/// partition past what went out.
async fn forward_due(
    bus: &KafkaBus,
    queue: &str,
    topic: &str,
    consumer: &StreamConsumer<Logged>,
    waiting: &mut BTreeMap<(String, i32), VecDeque<OwnedMessage>>,
) -> anyhow::Result<()> {
    let now = SystemTime::now();
    for ((level, partition), messages) in waiting.iter_mut() {
        let mut forwarded = None;
        while let Some(message) = messages.front() {
            if due_at(message) > now {
                break;
            }
            let headers = without_due(message.headers());
            let mut record = FutureRecord::to(topic)
                .payload(message.payload().unwrap_or_default())
                .headers(headers)
                .timestamp(unix_millis(now));
            if let Some(key) = message.key() {
                record = record.key(key);
            }
            let sent = bus
                .producer
                .send(record, DELIVERY_TIMEOUT)
                .await
                .map_err(|(e, _)| anyhow::Error::from(e))
                .with_context(|| format!("putting a retry of {queue} back into {topic}"));
            if let Err(e) = sent {
                commit(consumer, level, *partition, forwarded);
                return Err(e);
            }
            forwarded = Some(message.offset());
            messages.pop_front();
        }
        commit(consumer, level, *partition, forwarded);
    }
    waiting.retain(|_, q| !q.is_empty());
    Ok(())
}

fn commit(consumer: &StreamConsumer<Logged>, level: &str, partition: i32, last: Option<i64>) {
    let Some(last) = last else {
        return;
    };
    let mut offsets = TopicPartitionList::new();
    if offsets
        .add_partition_offset(level, partition, Offset::Offset(last + 1))
        .is_ok()
        && let Err(e) = consumer.commit(&offsets, CommitMode::Async)
    {
        // The messages are forwarded again later: a duplicate the inbox absorbs.
        tracing::warn!(level, error = %e, "committing a retry level failed");
    }
}

fn due_at(message: &OwnedMessage) -> SystemTime {
    let due = header(message.headers(), DUE_HEADER)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    SystemTime::UNIX_EPOCH + Duration::from_millis(due)
}

fn without_due(headers: Option<&OwnedHeaders>) -> OwnedHeaders {
    let mut kept = OwnedHeaders::new();
    if let Some(headers) = headers {
        for h in headers.iter().filter(|h| h.key != DUE_HEADER) {
            kept = kept.insert(Header {
                key: h.key,
                value: h.value,
            });
        }
    }
    kept
}

fn partition_list(tp: &(String, i32)) -> TopicPartitionList {
    let mut list = TopicPartitionList::new();
    list.add_partition(&tp.0, tp.1);
    list
}

fn pause(consumer: &StreamConsumer<Logged>, tp: &(String, i32)) {
    if let Err(e) = consumer.pause(&partition_list(tp)) {
        tracing::debug!(level = tp.0, error = %e, "pausing a retry level failed");
    }
}

fn resume(consumer: &StreamConsumer<Logged>, tp: &(String, i32)) {
    if let Err(e) = consumer.resume(&partition_list(tp)) {
        tracing::debug!(level = tp.0, error = %e, "resuming a retry level failed");
    }
}
