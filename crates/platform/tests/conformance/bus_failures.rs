//! Handlers that fail, duplicates, and stopping: at-least-once delivery with exactly-once
//! effects.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use async_trait::async_trait;
use herald_events::Envelope;
use herald_platform::backend_tests;
use herald_platform::bus::{ConsumerOptions, EventHandler, HandlerError, QueueSpec};
use herald_platform::db::Database;
use herald_platform::outbox::first_delivery;
use herald_platform::testing::BackendSet;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::support::{
    QUIET, Recorder, TestBus, WAIT, dead_lettered, event, eventually, lock, on_bus, options,
};

backend_tests!(
    every bus: a_retried_event_takes_effect_once_without_holding_back_the_others(threads = 4),
    a_long_backoff_does_not_hold_back_a_shorter_one(threads = 4),
    a_duplicate_event_is_delivered_twice_and_takes_effect_once(threads = 4),
    shutdown_waits_for_the_running_handler_and_acknowledges_its_message(threads = 4),
    a_rejected_event_is_dead_lettered_at_once_and_never_delivered_again(threads = 4),
    an_early_event_is_handled_again_soon_without_spending_an_attempt(threads = 4)
);

/// Fails the first delivery of one event and records when each effect happened.
struct FailsOnce {
    failing: Uuid,
    state: Mutex<FailsOnceState>,
}

#[derive(Default)]
struct FailsOnceState {
    failed_at: Option<Instant>,
    deliveries: HashMap<Uuid, usize>,
    effects: Vec<(Uuid, Instant)>,
}

#[async_trait]
impl EventHandler for FailsOnce {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        let mut state = lock(&self.state);
        *state.deliveries.entry(event.id).or_default() += 1;
        if event.id == self.failing && state.failed_at.is_none() {
            state.failed_at = Some(Instant::now());
            return Err(HandlerError::Retry(anyhow!(
                "the payment provider is unavailable"
            )));
        }
        state.effects.push((event.id, Instant::now()));
        Ok(())
    }
}

async fn a_retried_event_takes_effect_once_without_holding_back_the_others(set: BackendSet) {
    on_bus(set, async |bus: &TestBus| {
        bus.declare(&[QueueSpec::new("payments", &["order.*"])])
            .await;
        let failing = event("order.placed");
        let handler = Arc::new(FailsOnce {
            failing: failing.id,
            state: Mutex::default(),
        });
        let mut events = vec![failing.clone()];
        events.extend((0..20).map(|_| event("order.placed")));
        bus.publish(&events).await;

        // One at a time, and a long delay: a retry that held its slot until redelivery
        // would stall the rest for a second.
        let options = ConsumerOptions {
            retry_delay: Duration::from_secs(1),
            ..options(1)
        };
        let earliest_retry = options.retry_delay.mul_f64(1.0 - options.jitter);
        let consumer = bus.consume("payments", handler.clone(), options);
        eventually("all 21 effects", || {
            lock(&handler.state).effects.len() >= 21
        })
        .await;
        tokio::time::sleep(QUIET).await;
        consumer.stop().await;

        let state = lock(&handler.state);
        let mut effects: Vec<Uuid> = state.effects.iter().map(|(id, _)| *id).collect();
        effects.sort();
        let mut published: Vec<Uuid> = events.iter().map(|e| e.id).collect();
        published.sort();
        assert_eq!(effects, published, "every event takes effect exactly once");
        assert_eq!(
            state.deliveries[&failing.id], 2,
            "the failed event is delivered again"
        );
        let failed_at = state.failed_at.expect("the first delivery failed");
        for (id, at) in &state.effects {
            if *id == failing.id {
                assert!(
                    *at >= failed_at + earliest_retry - Duration::from_millis(50),
                    "retried too early"
                );
            } else {
                assert!(
                    *at < failed_at + earliest_retry,
                    "an event waited behind the retry"
                );
            }
        }
    })
    .await;
}

/// Fails each planned event a number of times, then accepts it; records every delivery.
struct FailsTimes {
    failures: HashMap<Uuid, usize>,
    deliveries: Mutex<HashMap<Uuid, Vec<Instant>>>,
}

impl FailsTimes {
    fn deliveries(&self, id: Uuid) -> Vec<Instant> {
        lock(&self.deliveries).get(&id).cloned().unwrap_or_default()
    }
}

#[async_trait]
impl EventHandler for FailsTimes {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        let mut deliveries = lock(&self.deliveries);
        let seen = deliveries.entry(event.id).or_default();
        seen.push(Instant::now());
        if seen.len() <= self.failures.get(&event.id).copied().unwrap_or(0) {
            return Err(HandlerError::Retry(anyhow!("the warehouse is offline")));
        }
        Ok(())
    }
}

async fn a_long_backoff_does_not_hold_back_a_shorter_one(set: BackendSet) {
    on_bus(set, async |bus: &TestBus| {
        bus.declare(&[QueueSpec::new("backoff", &["order.*"])])
            .await;
        // Delays of about 100 ms after the first failure and 1 s after the second.
        let options = ConsumerOptions {
            retry_delay: Duration::from_millis(100),
            backoff_factor: 10.0,
            ..options(4)
        };
        let slow = event("order.placed");
        let quick = event("order.paid");
        let handler = Arc::new(FailsTimes {
            failures: HashMap::from([(slow.id, 2), (quick.id, 1)]),
            deliveries: Mutex::default(),
        });
        let consumer = bus.consume("backoff", handler.clone(), options);
        bus.publish(std::slice::from_ref(&slow)).await;
        eventually("the slow event's second failure", || {
            handler.deliveries(slow.id).len() >= 2
        })
        .await;
        // The slow event now waits about a second; the quick one fails once and waits 100 ms.
        bus.publish(std::slice::from_ref(&quick)).await;
        eventually("both events handled", || {
            handler.deliveries(slow.id).len() >= 3 && handler.deliveries(quick.id).len() >= 2
        })
        .await;
        tokio::time::sleep(QUIET).await;
        consumer.stop().await;

        let slow = handler.deliveries(slow.id);
        let quick = handler.deliveries(quick.id);
        assert_eq!((slow.len(), quick.len()), (3, 2), "deliveries");
        assert!(
            quick[1] < slow[2],
            "the quick retry came {:?} after the slow one",
            quick[1] - slow[2]
        );
        assert!(
            slow[2] - slow[1] >= Duration::from_millis(750),
            "the second backoff is the longer one"
        );
    })
    .await;
}

/// Records one effect per event id through the inbox, however often it is delivered.
struct RecordsEffects {
    db: Database,
    deliveries: AtomicUsize,
}

#[async_trait]
impl EventHandler for RecordsEffects {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        self.deliveries.fetch_add(1, Ordering::SeqCst);
        let mut tx = self.db.begin().await?;
        if first_delivery(&mut tx, "conformance", event).await? {
            sqlx::query("INSERT INTO conformance_effects (event_id) VALUES ($1)")
                .bind(event.id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

async fn a_duplicate_event_is_delivered_twice_and_takes_effect_once(set: BackendSet) {
    on_bus(set, async |bus: &TestBus| {
        let db = bus.database().await;
        sqlx::query("CREATE TABLE conformance_effects (event_id TEXT NOT NULL)")
            .execute(db.pool())
            .await
            .expect("creating the effects table");
        bus.declare(&[QueueSpec::new("effects", &["order.*"])])
            .await;
        let twice = event("order.placed");
        let once = event("order.paid");
        bus.publish(std::slice::from_ref(&twice)).await;
        bus.publish(std::slice::from_ref(&twice)).await;
        bus.publish(std::slice::from_ref(&once)).await;

        let handler = Arc::new(RecordsEffects {
            db: db.clone(),
            deliveries: AtomicUsize::new(0),
        });
        let consumer = bus.consume("effects", handler.clone(), options(4));
        eventually("3 deliveries", || {
            handler.deliveries.load(Ordering::SeqCst) >= 3
        })
        .await;
        tokio::time::sleep(QUIET).await;
        consumer.stop().await;

        assert_eq!(
            handler.deliveries.load(Ordering::SeqCst),
            3,
            "at-least-once: both copies arrive"
        );
        let effects: Vec<String> =
            sqlx::query_scalar("SELECT event_id FROM conformance_effects ORDER BY event_id")
                .fetch_all(db.pool())
                .await
                .expect("reading effects");
        let mut expected = vec![twice.id.to_string(), once.id.to_string()];
        expected.sort();
        assert_eq!(effects, expected, "one effect per event id");
    })
    .await;
}

/// Takes its time over the first event it gets.
#[derive(Default)]
struct Slow {
    started: Notify,
    finished: AtomicBool,
    calls: AtomicUsize,
}

#[async_trait]
impl EventHandler for Slow {
    async fn handle(&self, _event: &Envelope) -> Result<(), HandlerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.started.notify_one();
        tokio::time::sleep(Duration::from_millis(500)).await;
        self.finished.store(true, Ordering::SeqCst);
        Ok(())
    }
}

async fn shutdown_waits_for_the_running_handler_and_acknowledges_its_message(set: BackendSet) {
    on_bus(set, async |bus: &TestBus| {
        bus.declare(&[QueueSpec::new("slow", &["order.*"])]).await;
        bus.publish(&[event("order.placed")]).await;
        let slow = Arc::new(Slow::default());
        let consumer = bus.consume("slow", slow.clone(), options(4));
        tokio::time::timeout(WAIT, slow.started.notified())
            .await
            .expect("the handler started");

        consumer.stop().await;
        assert!(
            slow.finished.load(Ordering::SeqCst),
            "consume returned before its handler finished"
        );

        let marker = event("order.paid");
        bus.publish(std::slice::from_ref(&marker)).await;
        let recorder = Recorder::new();
        let consumer = bus.consume("slow", recorder.clone(), options(4));
        assert_eq!(
            recorder.exactly(1).await,
            ["order.paid"],
            "the handled message came back"
        );
        consumer.stop().await;
        assert_eq!(slow.calls.load(Ordering::SeqCst), 1);
        assert_eq!(bus.depth("slow").await, 0);
    })
    .await;
}

/// Rejects `order.garbled`, accepts the rest; remembers every delivery.
#[derive(Default)]
struct RejectsGarbled {
    deliveries: Mutex<Vec<String>>,
}

#[async_trait]
impl EventHandler for RejectsGarbled {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        lock(&self.deliveries).push(event.event_type.clone());
        if event.event_type == "order.garbled" {
            return Err(HandlerError::Reject(anyhow!("no such order")));
        }
        Ok(())
    }
}

async fn a_rejected_event_is_dead_lettered_at_once_and_never_delivered_again(set: BackendSet) {
    on_bus(set, async |bus: &TestBus| {
        bus.declare(&[QueueSpec::new("strict", &["order.*"])]).await;
        let store = bus.dead_letters().await;
        let garbled = event("order.garbled");
        bus.publish(&[garbled.clone(), event("order.placed")]).await;
        let handler = Arc::new(RejectsGarbled::default());
        let consumer = bus.consume_with(
            "strict",
            handler.clone(),
            options(1),
            Arc::new(store.clone()),
        );
        let letters = dead_lettered(&store, 1).await;
        // Longer than a retry delay: a rejected message must not come back as a retry would.
        tokio::time::sleep(options(1).retry_delay + QUIET).await;
        consumer.stop().await;
        let mut deliveries = lock(&handler.deliveries).clone();
        deliveries.sort();
        assert_eq!(deliveries, ["order.garbled", "order.placed"]);
        assert_eq!(bus.depth("strict").await, 0);

        let letter = &letters[0];
        assert_eq!(letter.queue, "strict");
        assert_eq!(letter.event_type, "order.garbled");
        assert_eq!(letter.event_id, Some(garbled.id.to_string()));
        assert_eq!(letter.attempts, 1, "a rejection is not retried");
        assert!(letter.error.contains("no such order"), "{}", letter.error);
        assert_eq!(letter.payload, garbled.data);
    })
    .await;
}

/// Early for an event until `ready` is set; records how often each event was handled.
struct EarlyUntilReady {
    ready: AtomicBool,
    handled: Mutex<HashMap<Uuid, usize>>,
    effects: AtomicUsize,
}

#[async_trait]
impl EventHandler for EarlyUntilReady {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        *lock(&self.handled).entry(event.id).or_default() += 1;
        if !self.ready.load(Ordering::SeqCst) {
            return Err(HandlerError::NotYet(anyhow!("the buyer is not known yet")));
        }
        self.effects.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

async fn an_early_event_is_handled_again_soon_without_spending_an_attempt(set: BackendSet) {
    on_bus(set, async |bus: &TestBus| {
        bus.declare(&[QueueSpec::new("orders-early", &["order.*"])])
            .await;
        let early = event("order.confirmed");
        bus.publish(std::slice::from_ref(&early)).await;
        let handler = Arc::new(EarlyUntilReady {
            ready: AtomicBool::new(false),
            handled: Mutex::default(),
            effects: AtomicUsize::new(0),
        });
        // Two attempts and a long backoff: a NotYet spending an attempt would wait a minute,
        // or be dead-lettered.
        let options = ConsumerOptions {
            max_attempts: 2,
            retry_delay: Duration::from_secs(60),
            ..options(4)
        };
        let consumer = bus.consume("orders-early", handler.clone(), options);
        eventually("handled early twice", || {
            lock(&handler.handled).get(&early.id).copied().unwrap_or(0) >= 2
        })
        .await;
        let made_ready = Instant::now();
        handler.ready.store(true, Ordering::SeqCst);
        eventually("the effect", || handler.effects.load(Ordering::SeqCst) == 1).await;
        assert!(
            made_ready.elapsed() < Duration::from_secs(5),
            "handled again within the pause, not after the backoff: {:?}",
            made_ready.elapsed()
        );
        tokio::time::sleep(QUIET).await;
        consumer.stop().await;
        assert_eq!(handler.effects.load(Ordering::SeqCst), 1);
    })
    .await;
}
