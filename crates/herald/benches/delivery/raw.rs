//! The raw limits: what a backend set's storage and bus do alone on this machine, measured
//! in the same run as the end-to-end figures they are the baseline of.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use futures::StreamExt;
use futures::future::try_join_all;
use herald_events::{Envelope, Event, OrderConfirmed};
use herald_platform::Settings;
use herald_platform::bus::{
    ConsumerOptions, DeadLetterSink, DeadMessage, EventHandler, HandlerError, QueueSpec,
};
use herald_platform::db::{Database, now_micros};
use herald_platform::testing::{TestBus, drop_schema, isolated_settings, unique_prefix};
use herald_test_support::BackendSet;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::report::{Kind, Measurement, thousands};
use crate::workload::bodies;

/// Rows per INSERT statement on PostgreSQL.
const ROWS_PER_STATEMENT: usize = 1_000;
/// Rows per INSERT statement on SQLite: binding `$N` parameters there costs time quadratic
/// in their number (each is looked up by name), so 1,000-row statements run at a sixth of
/// the speed of 100-row ones.
const SQLITE_ROWS_PER_STATEMENT: usize = 100;
/// Transactions at once in the one-row-a-transaction measurement: as many as a service's
/// consumer runs handlers.
const WRITERS: usize = 32;
/// Messages published before waiting for their confirms.
const PUBLISH_BATCH: usize = 1_000;
/// Unacknowledged deliveries the raw RabbitMQ consumer may hold.
const PREFETCH: u16 = 1_000;
/// Deliveries settled by one `basic.ack` with `multiple = true`.
const ACK_EVERY: usize = 100;
/// The longest a raw measurement may take before the run is abandoned.
const TIMEOUT: Duration = Duration::from_secs(600);

/// Every raw measurement of `set`: its storage's batched insert and its bus alone; on the
/// real servers also RabbitMQ through lapin, without Herald's bus code.
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
        let times = through_lapin(url, &bodies(orders)?).await?;
        measured.extend(times.rows(
            set,
            Kind::Limit,
            "RabbitMQ via lapin",
            "`multiple` acks",
            count,
        ));
    }
    Ok(measured)
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
                format!("{bus}: publish, confirmed 1,000 at a time"),
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

/// Notification-sized rows into a fresh table of the storage the settings name: `count`
/// in statements of `per_statement` rows one after the other, then `count` more each in a
/// transaction of its own from [`WRITERS`] writers at once, the way the notifications
/// consumer writes.
async fn inserts(
    settings: &Settings,
    count: usize,
    per_statement: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let db = Database::connect(settings, "bench").await?;
    sqlx::query(
        "CREATE TABLE bench_notifications (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            type TEXT NOT NULL,
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            data TEXT,
            created_at BIGINT NOT NULL)",
    )
    .execute(db.pool())
    .await
    .context("creating the benchmark's table")?;
    let batched = multi_row_insert(&db, &NotificationRow::many(count), per_statement).await;
    let one_by_one = row_per_transaction(&db, &NotificationRow::many(count)).await;
    drop_schema(&db).await;
    Ok((batched?, one_by_one?))
}

async fn multi_row_insert(
    db: &Database,
    rows: &[NotificationRow],
    per_statement: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    for chunk in rows.chunks(per_statement) {
        let sql = insert_sql(chunk.len());
        let query = chunk
            .iter()
            .fold(sqlx::query(&sql), |query, row| row.bind(query));
        query.execute(db.pool()).await.context("inserting rows")?;
    }
    Ok(started.elapsed())
}

async fn row_per_transaction(db: &Database, rows: &[NotificationRow]) -> anyhow::Result<Duration> {
    let sql = insert_sql(1);
    let next = AtomicUsize::new(0);
    let writer = || async {
        while let Some(row) = rows.get(next.fetch_add(1, Ordering::Relaxed)) {
            let mut tx = db.begin().await?;
            row.bind(sqlx::query(&sql)).execute(&mut *tx).await?;
            tx.commit().await?;
        }
        anyhow::Ok(())
    };
    let started = Instant::now();
    try_join_all((0..WRITERS).map(|_| writer()))
        .await
        .context("inserting rows one by one")?;
    Ok(started.elapsed())
}

fn insert_sql(rows: usize) -> String {
    format!(
        "INSERT INTO bench_notifications (id, user_id, type, title, body, data, created_at)
         VALUES {}",
        values_list(rows, NotificationRow::COLUMNS)
    )
}

/// A row the size of a stored ORDER_UPDATE.
struct NotificationRow {
    id: String,
    user_id: String,
    title: String,
    body: String,
    data: String,
    created_at: i64,
}

impl NotificationRow {
    const COLUMNS: usize = 7;

    fn many(count: usize) -> Vec<NotificationRow> {
        (0..count).map(|_| NotificationRow::new()).collect()
    }

    fn new() -> NotificationRow {
        let order_id = Uuid::now_v7();
        NotificationRow {
            id: Uuid::now_v7().to_string(),
            user_id: Uuid::now_v7().to_string(),
            title: format!(
                "Your order #{} is confirmed",
                &order_id.simple().to_string()[24..]
            ),
            body: "6 items, €75.00. We will tell you as soon as it ships; you can follow it \
                   under My orders."
                .to_owned(),
            data: format!(r#"{{"orderId":"{order_id}","status":"CONFIRMED"}}"#),
            created_at: now_micros(),
        }
    }

    fn bind<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        query
            .bind(self.id.clone())
            .bind(self.user_id.clone())
            .bind("ORDER_UPDATE")
            .bind(self.title.clone())
            .bind(self.body.clone())
            .bind(self.data.clone())
            .bind(self.created_at)
    }
}

/// `($1, $2), ($3, $4)` for 2 rows of 2 columns.
fn values_list(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| {
            let placeholders: Vec<String> = (1..=columns)
                .map(|column| format!("${}", row * columns + column))
                .collect();
            format!("({})", placeholders.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Herald's own bus as the settings name it: publish in batches, then consume with a
/// handler that does nothing, as many at once as a service's consumer.
async fn through_herald_bus(settings: &Settings, orders: &[Envelope]) -> anyhow::Result<BusTimes> {
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

/// RabbitMQ without Herald: persistent messages into a durable queue, confirms awaited per
/// batch, then consumed with one `basic.ack` (`multiple = true`) per [`ACK_EVERY`].
async fn through_lapin(url: &str, bodies: &[Vec<u8>]) -> anyhow::Result<BusTimes> {
    let connection = Connection::connect(url, ConnectionProperties::default())
        .await
        .context("connecting to RabbitMQ")?;
    let queue = format!("{}.bench.lapin", unique_prefix());
    let setup = connection.create_channel().await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    setup
        .queue_declare(&queue, durable, FieldTable::default())
        .await?;
    let measured = tokio::time::timeout(TIMEOUT, async {
        let publish =
            publish_confirmed(&connection.create_channel().await?, &queue, bodies).await?;
        let consume =
            consume_acking_in_batches(&connection.create_channel().await?, &queue, bodies.len())
                .await?;
        anyhow::Ok(BusTimes { publish, consume })
    })
    .await;
    setup
        .queue_delete(&queue, QueueDeleteOptions::default())
        .await?;
    connection.close(200, "benchmark done").await?;
    measured.context("RabbitMQ did not take and deliver every message in time")?
}

async fn publish_confirmed(
    channel: &Channel,
    queue: &str,
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
                    .basic_publish("", queue, options, body, persistent.clone())
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
            queue,
            "bench",
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
