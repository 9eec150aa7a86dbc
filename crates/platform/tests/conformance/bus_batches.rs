//! Handlers that take events in batches: what a consumer holds at once is handled together,
//! and each delivery is still settled alone with its own event's outcome.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::anyhow;
use async_trait::async_trait;
use herald_events::Envelope;
use herald_platform::backend_tests;
use herald_platform::bus::{BatchOutcomes, EventHandler, HandlerError, QueueSpec};
use herald_platform::testing::BackendSet;
use uuid::Uuid;

use crate::support::{QUIET, TestBus, event, eventually, lock, on_bus, options};

backend_tests!(
every bus: events_held_together_are_handled_together_and_settled_one_by_one(threads = 4));

/// Enough time for the deliveries behind a shipment to gather into the next batch.
const SHIPPING_TIME: Duration = Duration::from_millis(20);

/// Ships orders in batches. A batch holding `breaks_batch` fails as a whole; `late` fails
/// its first delivery on its own.
struct Shipments {
    breaks_batch: Uuid,
    late: Uuid,
    state: Mutex<ShipmentsState>,
}

#[derive(Default)]
struct ShipmentsState {
    batch_sizes: Vec<usize>,
    late_failed: bool,
    late_deliveries: usize,
    shipped: HashMap<Uuid, usize>,
}

impl Shipments {
    /// The outcome of one event within a batch that goes through.
    fn ship(&self, state: &mut ShipmentsState, event: &Envelope) -> Result<(), HandlerError> {
        if event.id == self.late {
            state.late_deliveries += 1;
            if !state.late_failed {
                state.late_failed = true;
                return Err(HandlerError::Retry(anyhow!("the carrier is not open yet")));
            }
        }
        *state.shipped.entry(event.id).or_default() += 1;
        Ok(())
    }
}

#[async_trait]
impl EventHandler for Shipments {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        tokio::time::sleep(SHIPPING_TIME).await;
        let mut state = lock(&self.state);
        self.ship(&mut state, event)
    }

    fn batches(&self, event: &Envelope) -> bool {
        event.event_type.starts_with("order.")
    }

    async fn handle_batch(&self, events: &[Envelope]) -> Result<BatchOutcomes, HandlerError> {
        tokio::time::sleep(SHIPPING_TIME).await;
        let mut state = lock(&self.state);
        state.batch_sizes.push(events.len());
        if events.iter().any(|e| e.id == self.breaks_batch) {
            return Err(HandlerError::Retry(anyhow!("the warehouse lost the batch")));
        }
        Ok(events.iter().map(|e| self.ship(&mut state, e)).collect())
    }
}

async fn events_held_together_are_handled_together_and_settled_one_by_one(set: BackendSet) {
    on_bus(set, async |bus: &TestBus| {
        bus.declare(&[QueueSpec::new("shipping", &["order.*"])])
            .await;
        let events: Vec<Envelope> = (0..40).map(|_| event("order.confirmed")).collect();
        let handler = Arc::new(Shipments {
            breaks_batch: events[25].id,
            late: events[30].id,
            state: Mutex::default(),
        });
        bus.publish(&events).await;

        let consumer = bus.consume("shipping", handler.clone(), options(16));
        eventually("all 40 orders shipped", || {
            lock(&handler.state).shipped.len() >= 40
        })
        .await;
        tokio::time::sleep(QUIET).await;
        consumer.stop().await;

        let state = lock(&handler.state);
        let mut shipped: Vec<Uuid> = state.shipped.keys().copied().collect();
        shipped.sort();
        let mut published: Vec<Uuid> = events.iter().map(|e| e.id).collect();
        published.sort();
        assert_eq!(shipped, published);
        assert!(
            state.shipped.values().all(|n| *n == 1),
            "every order ships once: {:?}",
            state.shipped
        );
        assert!(
            state.batch_sizes.iter().any(|n| *n > 1),
            "events waiting together were handled together: {:?}",
            state.batch_sizes
        );
        assert!(
            state.batch_sizes.iter().all(|n| *n <= 16),
            "a batch holds at most the consumer's concurrency: {:?}",
            state.batch_sizes
        );
        assert_eq!(state.late_deliveries, 2, "the late order is retried alone");
    })
    .await;
}
