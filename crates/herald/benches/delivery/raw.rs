//! The raw limits: what a backend set's storage and bus do alone on this machine, measured
//! in the same run as the end-to-end figures they are the baseline of.

mod buses;
mod kafka;
mod storage;

use std::time::Duration;

use herald_events::{Envelope, Event, OrderConfirmed};
use herald_platform::bus::{topic_matches, topology};
use herald_platform::testing::isolated_settings;
use herald_test_support::BackendSet;

use self::buses::{Routing, through_herald_bus, through_lapin};
use self::storage::{WRITERS, inserts};
use crate::report::{Kind, Measurement, thousands};
use crate::workload::bodies;

/// Rows per INSERT statement on PostgreSQL.
const ROWS_PER_STATEMENT: usize = 1_000;
/// Rows per INSERT statement on SQLite: binding `$N` parameters there costs time quadratic
/// in their number (each is looked up by name), so 1,000-row statements run at a sixth of
/// the speed of 100-row ones.
const SQLITE_ROWS_PER_STATEMENT: usize = 100;

/// Every raw measurement of `set`: its storage's batched insert and its bus alone; on the
/// real servers also RabbitMQ through lapin, or Kafka through rdkafka, without Herald's bus
/// code.
pub async fn limits(set: BackendSet, orders: &[Envelope]) -> anyhow::Result<Vec<Measurement>> {
    let dir = tempfile::tempdir()?;
    let mut settings = isolated_settings(set, dir.path());
    crate::deployed_pools(&mut settings);
    let count = orders.len();
    let (storage, per_statement, herald_bus, herald_bus_kind) = match set {
        BackendSet::Embedded => (
            "SQLite",
            SQLITE_ROWS_PER_STATEMENT,
            "embedded bus",
            Kind::Limit,
        ),
        BackendSet::Real => (
            "PostgreSQL",
            ROWS_PER_STATEMENT,
            "Herald's bus on RabbitMQ",
            Kind::Part,
        ),
        BackendSet::Kafka => (
            "PostgreSQL",
            ROWS_PER_STATEMENT,
            "Herald's bus on Kafka",
            Kind::Part,
        ),
    };
    eprintln!("[{set:?}] {storage}: inserting {count} rows, twice");
    let (batched, one_by_one) = inserts(&settings, count, per_statement).await?;
    let mut measured = vec![
        Measurement::new(
            set,
            Kind::Limit,
            format!(
                "{storage}: INSERT, {} rows a statement",
                thousands(per_statement as f64)
            ),
            count,
            batched,
        ),
        Measurement::new(
            set,
            Kind::Part,
            format!("{storage}: one row a transaction, {WRITERS} writers at once"),
            count,
            one_by_one,
        ),
    ];
    eprintln!("[{set:?}] {herald_bus}: {count} messages");
    let times = through_herald_bus(&settings, orders).await?;
    measured.extend(times.rows(set, herald_bus_kind, herald_bus, "no-op handler", count));
    if let Some(url) = &settings.amqp_url {
        eprintln!("[{set:?}] RabbitMQ through lapin: {count} messages");
        let bodies = bodies(orders)?;
        let times = through_lapin(url, &bodies, Routing::OneQueue).await?;
        measured.extend(times.rows(
            set,
            Kind::Limit,
            "RabbitMQ via lapin",
            "`multiple` acks",
            count,
        ));
        let fanout = queues_taking(OrderConfirmed::TYPE);
        eprintln!("[{set:?}] RabbitMQ through lapin, {fanout} queues: {count} messages");
        let times = through_lapin(url, &bodies, Routing::Fanout(fanout)).await?;
        measured.extend(times.rows(
            set,
            Kind::Part,
            &format!("RabbitMQ via lapin, topic exchange into {fanout} queues"),
            "every queue",
            count,
        ));
    }
    if let Some(brokers) = &settings.kafka_brokers {
        eprintln!("[{set:?}] Kafka through rdkafka: {count} messages");
        let bodies = bodies(orders)?;
        let times = kafka::through_rdkafka(brokers, settings.kafka_batch_messages, &bodies).await?;
        measured.extend(times.rows(
            set,
            Kind::Limit,
            "Kafka via rdkafka",
            "a commit every 100",
            count,
        ));
    }
    Ok(measured)
}

/// How many queues of Herald's topology an event of `event_type` goes to (for
/// `order.confirmed`: the notifications service's critical lane and the recommendations
/// service's queue).
fn queues_taking(event_type: &str) -> usize {
    topology()
        .iter()
        .filter(|queue| {
            queue
                .bindings
                .iter()
                .any(|pattern| topic_matches(pattern, event_type))
        })
        .count()
}

/// How long a bus took to take the messages, then to hand them all to a consumer.
struct BusTimes {
    publish: Duration,
    consume: Duration,
}

impl BusTimes {
    /// Publishing, consuming, and both one after the other: the figure a run through the
    /// bus is compared with (`kind`).
    fn rows(
        &self,
        set: BackendSet,
        kind: Kind,
        bus: &str,
        consumer: &str,
        count: usize,
    ) -> [Measurement; 3] {
        [
            Measurement::new(
                set,
                Kind::Part,
                format!("{bus}: publish, 1,000 a batch"),
                count,
                self.publish,
            ),
            Measurement::new(
                set,
                Kind::Part,
                format!("{bus}: consume, {consumer}"),
                count,
                self.consume,
            ),
            Measurement::new(
                set,
                kind,
                format!("{bus}: publish, then consume"),
                count,
                self.publish + self.consume,
            ),
        ]
    }
}
