//! Kafka without Herald: rdkafka alone producing the same messages and consuming them.

use std::time::{Duration, Instant};

use anyhow::Context;
use herald_platform::testing::unique_prefix;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};

use super::BusTimes;

/// Messages sent before waiting for their acknowledgements.
const PUBLISH_BATCH: usize = 1_000;
/// Messages consumed between two offset commits.
const COMMIT_EVERY: usize = 100;
const PARTITIONS: i32 = 6;
const TIMEOUT: Duration = Duration::from_secs(600);

/// The client's limit with Herald's settings (`acks=all`, idempotent, `batch_messages`
/// records a batch): every body into one topic of Herald's partition count, acknowledgements
/// awaited per batch of sends, then one consumer of a new group reading them all, committing
/// every [`COMMIT_EVERY`].
pub async fn through_rdkafka(
    brokers: &str,
    batch_messages: u32,
    bodies: &[Vec<u8>],
) -> anyhow::Result<BusTimes> {
    let topic = format!("{}.bench.rdkafka", unique_prefix());
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let options = AdminOptions::new();
    admin
        .create_topics(
            &[NewTopic::new(
                &topic,
                PARTITIONS,
                TopicReplication::Fixed(-1),
            )],
            &options,
        )
        .await?
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|(topic, code)| anyhow::anyhow!("creating {topic}: {code}"))?;
    let measured = tokio::time::timeout(TIMEOUT, async {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            .set("batch.num.messages", batch_messages.to_string())
            .create()?;
        let keys: Vec<String> = (0..bodies.len()).map(|i| i.to_string()).collect();
        let started = Instant::now();
        for (bodies, keys) in bodies.chunks(PUBLISH_BATCH).zip(keys.chunks(PUBLISH_BATCH)) {
            let sends = bodies.iter().zip(keys).map(|(body, key)| {
                producer.send(
                    FutureRecord::to(&topic).key(key).payload(body),
                    Duration::from_secs(30),
                )
            });
            for sent in futures::future::join_all(sends).await {
                sent.map_err(|(e, _)| e).context("producing")?;
            }
        }
        let publish = started.elapsed();

        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", &topic)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "100")
            .create()?;
        consumer.subscribe(&[&topic])?;
        let started = Instant::now();
        let mut seen = 0;
        while seen < bodies.len() {
            let message = consumer.recv().await?;
            seen += 1;
            if seen % COMMIT_EVERY == 0 || seen == bodies.len() {
                consumer.commit_message(&message, CommitMode::Async)?;
            }
        }
        let consume = started.elapsed();
        anyhow::Ok(BusTimes { publish, consume })
    })
    .await;
    if let Err(e) = admin.delete_topics(&[&topic], &AdminOptions::new()).await {
        eprintln!("deleting {topic} failed: {e}");
    }
    measured.context("Kafka did not take and deliver every message in time")?
}
