//! Backends isolated per test, a recording handler, and waits that fail instead of hanging.

use std::panic::{AssertUnwindSafe, resume_unwind};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::FutureExt;
use herald_events::Envelope;
use herald_platform::bus::{
    Bus, BusBackend, ConsumerOptions, DeadLetterSink, DeadMessage, EmbeddedBus, EventHandler,
    HandlerError, KafkaBus, KafkaOptions, QueueSpec, RabbitBus,
};
use herald_platform::db::{Database, Migrations};
use herald_platform::deadletters::{DeadLetter, DeadLetters};
use herald_platform::testing::{BackendSet, real_backends, unique_prefix};
use sqlx::migrate::Migrator;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The longest any wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long to watch for deliveries that must not happen.
pub const QUIET: Duration = Duration::from_millis(300);

pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `scenario` on `set`'s bus, cleaning up after it even when it fails.
pub async fn on_bus(set: BackendSet, scenario: impl AsyncFn(&TestBus)) {
    let bus = TestBus::open(set).await;
    let outcome = AssertUnwindSafe(scenario(&bus)).catch_unwind().await;
    bus.cleanup().await;
    if let Err(panic) = outcome {
        resume_unwind(panic);
    }
}

/// One test's bus: a fresh SQLite file, or a unique prefix whose exchange and queues are
/// deleted at the end.
pub struct TestBus {
    pub set: BackendSet,
    prefix: String,
    dir: tempfile::TempDir,
    current: Mutex<Option<OpenBus>>,
    declared: Mutex<Vec<QueueSpec>>,
    databases: Mutex<Vec<Database>>,
    consumers: CancellationToken,
}

impl TestBus {
    async fn open(set: BackendSet) -> TestBus {
        let dir = tempfile::tempdir().expect("creating a temporary directory");
        let prefix = unique_prefix();
        let current = Mutex::new(Some(open_backend(set, &dir, &prefix).await));
        TestBus {
            set,
            prefix,
            dir,
            current,
            declared: Mutex::new(Vec::new()),
            databases: Mutex::new(Vec::new()),
            consumers: CancellationToken::new(),
        }
    }

    pub fn backend(&self) -> Arc<dyn BusBackend> {
        lock(&self.current)
            .as_ref()
            .expect("the bus is open")
            .clone()
    }

    /// The bus prefix: names the RabbitMQ exchange, queues and connections of this test.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Drops this instance and opens another on the same storage, as a process restart does.
    pub async fn restart(&self) {
        let old = lock(&self.current).take();
        drop(old);
        let reopened = open_backend(self.set, &self.dir, &self.prefix).await;
        *lock(&self.current) = Some(reopened);
    }

    pub async fn declare(&self, queues: &[QueueSpec]) {
        lock(&self.declared).extend_from_slice(queues);
        self.backend()
            .declare(queues)
            .await
            .expect("declaring queues");
    }

    pub async fn publish(&self, events: &[Envelope]) {
        tokio::time::timeout(WAIT, self.backend().publish(events))
            .await
            .expect("publishing timed out")
            .expect("publishing failed");
    }

    pub async fn depth(&self, queue: &str) -> u64 {
        self.backend()
            .depth(queue)
            .await
            .expect("reading the queue depth")
    }

    /// The bus handle services hold, over this test's backend.
    pub fn bus(&self) -> Bus {
        Bus::from_backend(self.backend())
    }

    /// Starts consuming `queue` in the background until [`Consumer::stop`], which fails if
    /// any message was dead-lettered.
    pub fn consume(
        &self,
        queue: &str,
        handler: Arc<dyn EventHandler>,
        options: ConsumerOptions,
    ) -> Consumer {
        let unexpected = Arc::new(UnexpectedDeadLetters::default());
        let mut consumer = self.consume_with(queue, handler, options, unexpected.clone());
        consumer.unexpected = Some(unexpected);
        consumer
    }

    /// Starts consuming `queue`, giving up on messages into `dead_letters`.
    pub fn consume_with(
        &self,
        queue: &str,
        handler: Arc<dyn EventHandler>,
        options: ConsumerOptions,
        dead_letters: Arc<dyn DeadLetterSink>,
    ) -> Consumer {
        let backend = self.backend();
        let stop = self.consumers.child_token();
        let queue = queue.to_owned();
        let task = tokio::spawn({
            let stop = stop.clone();
            async move {
                backend
                    .consume(&queue, handler, options, dead_letters, stop)
                    .await
            }
        });
        Consumer {
            stop,
            task,
            unexpected: None,
        }
    }

    /// Puts `body` into `queue` as it is, as a producer that does not speak CloudEvents would.
    pub async fn publish_raw(&self, queue: &str, body: &str) {
        match self.set {
            BackendSet::Embedded => {
                let db = Database::connect_sqlite(&self.dir.path().join("bus.sqlite"), 1)
                    .await
                    .expect("opening the embedded bus file");
                sqlx::query(
                    "INSERT INTO bus_messages (queue, event_id, body, available_at) VALUES ($1, '', $2, 0)",
                )
                .bind(queue)
                .bind(body)
                .execute(db.pool())
                .await
                .expect("inserting a raw message");
                db.close().await;
            }
            BackendSet::Real => {
                let real = real_backends().expect("real backends");
                let connection = lapin::Connection::connect(
                    &real.amqp_url,
                    lapin::ConnectionProperties::default(),
                )
                .await
                .expect("connecting to RabbitMQ");
                let channel = connection.create_channel().await.expect("a channel");
                channel
                    .confirm_select(lapin::options::ConfirmSelectOptions::default())
                    .await
                    .expect("confirms");
                let confirm = channel
                    .basic_publish(
                        "".into(),
                        format!("{}.{queue}", self.prefix).into(),
                        lapin::options::BasicPublishOptions {
                            mandatory: true,
                            ..Default::default()
                        },
                        body.as_bytes(),
                        lapin::BasicProperties::default().with_delivery_mode(2),
                    )
                    .await
                    .expect("publishing a raw message")
                    .await
                    .expect("the broker's confirm");
                assert!(
                    matches!(confirm, lapin::Confirmation::Ack(None)),
                    "the raw message was not routed: {confirm:?}"
                );
                let _ = connection.close(200, "done".into()).await;
            }
            BackendSet::Kafka => {
                use rdkafka::producer::{FutureProducer, FutureRecord};
                let real = real_backends().expect("real backends");
                let producer: FutureProducer = rdkafka::ClientConfig::new()
                    .set("bootstrap.servers", &real.kafka_brokers)
                    .create()
                    .expect("a Kafka producer");
                let topic = format!("{}.{queue}", self.prefix);
                producer
                    .send(
                        FutureRecord::<str, str>::to(&topic).payload(body),
                        Duration::from_secs(5),
                    )
                    .await
                    .map_err(|(e, _)| e)
                    .expect("publishing a raw message");
            }
        }
    }

    /// The dead-letter store of a service database (see [`TestBus::database`]).
    pub async fn dead_letters(&self) -> DeadLetters {
        DeadLetters::new(self.database().await)
    }

    /// A service database with the inbox: a SQLite file, or a PostgreSQL schema dropped at
    /// the end.
    pub async fn database(&self) -> Database {
        let db = match self.set {
            BackendSet::Embedded => {
                Database::connect_sqlite(&self.dir.path().join("service.sqlite"), 4).await
            }
            BackendSet::Real | BackendSet::Kafka => {
                let real = real_backends().expect("real backends");
                Database::connect_postgres(&real.database_url, &format!("{}_conf", self.prefix), 4)
                    .await
            }
        }
        .expect("connecting the service database");
        lock(&self.databases).push(db.clone());
        let none = Migrations {
            sqlite: Migrator::DEFAULT,
            postgres: Migrator::DEFAULT,
        };
        herald_platform::service::prepare_storage(&db, &none)
            .await
            .expect("creating the inbox");
        db
    }

    async fn cleanup(&self) {
        self.consumers.cancel();
        let backend = lock(&self.current).clone();
        if let Some(backend) = backend {
            let queues = lock(&self.declared).clone();
            if let Err(e) = backend.delete_topology(&queues).await {
                eprintln!("deleting the test's topology failed: {e:#}");
            }
        }
        let databases = std::mem::take(&mut *lock(&self.databases));
        for db in databases {
            if let Some(schema) = db.schema() {
                let drop = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
                if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(drop.as_str()))
                    .execute(db.pool())
                    .await
                {
                    eprintln!("dropping schema {schema} failed: {e}");
                }
            }
            db.close().await;
        }
    }
}

type OpenBus = Arc<dyn BusBackend>;

async fn open_backend(set: BackendSet, dir: &tempfile::TempDir, prefix: &str) -> OpenBus {
    match set {
        BackendSet::Embedded => {
            let bus = EmbeddedBus::open(&dir.path().join("bus.sqlite")).await;
            Arc::new(bus.expect("opening the embedded bus"))
        }
        BackendSet::Real => {
            let real = real_backends().expect("real backends");
            let bus = RabbitBus::connect(&real.amqp_url, prefix).await;
            Arc::new(bus.expect("connecting to RabbitMQ"))
        }
        BackendSet::Kafka => {
            let real = real_backends().expect("real backends");
            let options = KafkaOptions {
                partitions: 3,
                batch_messages: 1,
            };
            let bus = KafkaBus::connect(&real.kafka_brokers, prefix, options).await;
            Arc::new(bus.expect("connecting to Kafka"))
        }
    }
}

pub struct Consumer {
    stop: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
    unexpected: Option<Arc<UnexpectedDeadLetters>>,
}

impl Consumer {
    /// Asks the consumer to shut down and waits until `consume` returned.
    pub async fn stop(self) {
        self.stop.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the consumer did not stop in time")
            .expect("the consumer panicked")
            .expect("the consumer failed");
        if let Some(unexpected) = self.unexpected {
            let letters = lock(&unexpected.letters).clone();
            assert!(
                letters.is_empty(),
                "messages were dead-lettered: {letters:?}"
            );
        }
    }
}

/// The dead-letter sink of scenarios where no message may be given up on.
#[derive(Default)]
pub struct UnexpectedDeadLetters {
    letters: Mutex<Vec<String>>,
}

#[async_trait]
impl DeadLetterSink for UnexpectedDeadLetters {
    async fn dead_letter(
        &self,
        queue: &str,
        message: DeadMessage<'_>,
        error: &str,
        attempts: u32,
    ) -> anyhow::Result<()> {
        lock(&self.letters).push(format!("{queue}: {message:?} after {attempts}: {error}"));
        Ok(())
    }
}

/// The options every scenario uses unless it needs others: short retries, doubling.
pub fn options(concurrency: usize) -> ConsumerOptions {
    ConsumerOptions {
        concurrency,
        max_attempts: 5,
        retry_delay: Duration::from_millis(300),
        backoff_factor: 2.0,
        jitter: 0.2,
        max_retry_delay: Duration::from_secs(2),
    }
}

/// Options for dead-letter scenarios: `max_attempts` attempts, 50 ms apart, then 150 ms, …
pub fn quick_retries(concurrency: usize, max_attempts: u32) -> ConsumerOptions {
    ConsumerOptions {
        concurrency,
        max_attempts,
        retry_delay: Duration::from_millis(50),
        backoff_factor: 3.0,
        jitter: 0.2,
        max_retry_delay: Duration::from_secs(2),
    }
}

/// Waits until the store holds `n` dead letters (of any queue), then watches a quiet period
/// for more; returns them, newest first.
pub async fn dead_lettered(store: &DeadLetters, n: usize) -> Vec<DeadLetter> {
    let deadline = Instant::now() + WAIT;
    loop {
        let letters = store.list(None, 500).await.expect("listing dead letters");
        if letters.len() >= n {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {n} dead letters, got {letters:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(QUIET).await;
    let letters = store.list(None, 500).await.expect("listing dead letters");
    assert_eq!(
        letters.len(),
        n,
        "expected exactly {n} dead letters: {letters:?}"
    );
    letters
}

pub fn event(event_type: &str) -> Envelope {
    Envelope {
        specversion: "1.0".to_owned(),
        id: uuid::Uuid::now_v7(),
        source: "/herald/conformance".to_owned(),
        event_type: event_type.to_owned(),
        time: chrono::Utc::now(),
        subject: None,
        datacontenttype: "application/json".to_owned(),
        data: serde_json::json!({ "note": "conformance" }),
        traceparent: None,
    }
}

/// Waits until `done` holds, failing after [`WAIT`].
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {WAIT:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A handler that accepts every event and remembers each delivery.
#[derive(Default)]
pub struct Recorder {
    deliveries: Mutex<Vec<Envelope>>,
}

impl Recorder {
    pub fn new() -> Arc<Recorder> {
        Arc::default()
    }

    pub fn deliveries(&self) -> Vec<Envelope> {
        lock(&self.deliveries).clone()
    }

    /// Waits for `n` deliveries, then watches a quiet period for more; returns their types
    /// sorted.
    pub async fn exactly(&self, n: usize) -> Vec<String> {
        eventually(&format!("{n} deliveries"), || {
            lock(&self.deliveries).len() >= n
        })
        .await;
        tokio::time::sleep(QUIET).await;
        let mut types: Vec<String> = lock(&self.deliveries)
            .iter()
            .map(|e| e.event_type.clone())
            .collect();
        types.sort();
        assert_eq!(
            types.len(),
            n,
            "expected exactly {n} deliveries, got {types:?}"
        );
        types
    }
}

#[async_trait]
impl EventHandler for Recorder {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        lock(&self.deliveries).push(event.clone());
        Ok(())
    }
}
