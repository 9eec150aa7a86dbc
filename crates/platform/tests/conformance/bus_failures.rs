//! Handlers that fail, duplicates, and stopping: at-least-once delivery with exactly-once
//! effects.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use async_trait::async_trait;
use herald_events::Envelope;
use herald_platform::bus::{EventHandler, HandlerError, QueueSpec};
use herald_platform::db::Database;
use herald_platform::outbox::first_delivery;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::support::{
    QUIET, Recorder, TestBus, WAIT, event, eventually, lock, on_each_bus, options,
};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retried_event_takes_effect_once_without_holding_back_the_others() {
    on_each_bus(async |bus: &TestBus| {
        bus.declare(&[QueueSpec::new("payments", &["order.*"])])
            .await;
        let failing = event("order.placed");
        let handler = std::sync::Arc::new(FailsOnce {
            failing: failing.id,
            state: Mutex::default(),
        });
        let mut events = vec![failing.clone()];
        events.extend((0..20).map(|_| event("order.placed")));
        bus.publish(&events).await;

        // One at a time: a retry that held its slot until redelivery would stall the rest.
        let consumer = bus.consume("payments", handler.clone(), options(1));
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
        let delay = options(1).retry_delay;
        for (id, at) in &state.effects {
            if *id == failing.id {
                assert!(
                    *at >= failed_at + delay - Duration::from_millis(50),
                    "retried too early"
                );
            } else {
                assert!(*at < failed_at + delay, "an event waited behind the retry");
            }
        }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_duplicate_event_is_delivered_twice_and_takes_effect_once() {
    on_each_bus(async |bus: &TestBus| {
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

        let handler = std::sync::Arc::new(RecordsEffects {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn shutdown_waits_for_the_running_handler_and_acknowledges_its_message() {
    on_each_bus(async |bus: &TestBus| {
        bus.declare(&[QueueSpec::new("slow", &["order.*"])]).await;
        bus.publish(&[event("order.placed")]).await;
        let slow = std::sync::Arc::new(Slow::default());
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rejected_event_is_dropped_and_never_delivered_again() {
    on_each_bus(async |bus: &TestBus| {
        bus.declare(&[QueueSpec::new("strict", &["order.*"])]).await;
        bus.publish(&[event("order.garbled"), event("order.placed")])
            .await;
        let handler = std::sync::Arc::new(RejectsGarbled::default());
        let consumer = bus.consume("strict", handler.clone(), options(1));
        eventually("both deliveries", || lock(&handler.deliveries).len() >= 2).await;
        // Longer than a retry delay: a rejected message must not come back as a retry would.
        tokio::time::sleep(options(1).retry_delay + QUIET).await;
        consumer.stop().await;
        let mut deliveries = lock(&handler.deliveries).clone();
        deliveries.sort();
        assert_eq!(deliveries, ["order.garbled", "order.placed"]);
        assert_eq!(bus.depth("strict").await, 0);
    })
    .await;
}
