//! Ordering and sharing: one key's events handled in the order they were published while
//! other keys go on at once, and two consumers of one queue (two replicas of a service)
//! sharing its messages, each handled once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use herald_events::Envelope;
use herald_platform::backend_tests;
use herald_platform::bus::{EventHandler, HandlerError, QueueSpec};
use herald_platform::testing::BackendSet;

use crate::support::{Recorder, TestBus, event, lock, on_bus, options};

backend_tests!(
    every bus: one_orders_events_are_handled_in_order_while_other_orders_go_on(threads = 4),
    two_consumers_of_one_queue_share_it_and_handle_each_event_once(threads = 4)
);

const ORDERS: usize = 8;
const EVENTS_PER_ORDER: usize = 25;

/// Records, per order, the sequence numbers in the order they were handled, and how many
/// handlers ran at once at most.
#[derive(Default)]
struct Sequences {
    handled: Mutex<HashMap<String, Vec<u64>>>,
    running: AtomicUsize,
    most: AtomicUsize,
}

#[async_trait]
impl EventHandler for Sequences {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        // Later events of an order would overtake earlier ones if they ran at once.
        let seq = event.data["seq"].as_u64().unwrap_or_default();
        tokio::time::sleep(Duration::from_millis(if seq.is_multiple_of(3) {
            15
        } else {
            1
        }))
        .await;
        lock(&self.handled)
            .entry(event.ordering_key())
            .or_default()
            .push(seq);
        self.running.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

/// On Kafka an order's events share a partition and its consumer hands them to the handler
/// one after the other; different orders are handled at once. The other buses deliver
/// every event too, without that promise (their handlers tolerate any order).
async fn one_orders_events_are_handled_in_order_while_other_orders_go_on(set: BackendSet) {
    on_bus(set, async |bus: &TestBus| {
        bus.declare(&[QueueSpec::new("ordered", &["order.*"])])
            .await;
        let orders: Vec<String> = (0..ORDERS)
            .map(|_| uuid::Uuid::now_v7().to_string())
            .collect();
        let mut events = Vec::new();
        for seq in 0..EVENTS_PER_ORDER {
            for order in &orders {
                let mut e = event("order.updated");
                e.data = serde_json::json!({ "order_id": order, "seq": seq });
                events.push(e);
            }
        }
        for chunk in events.chunks(50) {
            bus.publish(chunk).await;
        }
        let handler = Arc::new(Sequences::default());
        let consumer = bus.consume("ordered", handler.clone(), options(16));
        crate::support::eventually("every event handled", || {
            lock(&handler.handled).values().map(Vec::len).sum::<usize>()
                == ORDERS * EVENTS_PER_ORDER
        })
        .await;
        consumer.stop().await;
        let handled = lock(&handler.handled).clone();
        assert_eq!(handled.len(), ORDERS);
        for (order, seqs) in &handled {
            let mut sorted = seqs.clone();
            sorted.sort_unstable();
            assert_eq!(
                sorted,
                (0..EVENTS_PER_ORDER as u64).collect::<Vec<_>>(),
                "{order}"
            );
            if bus.set == BackendSet::Kafka {
                assert_eq!(seqs, &sorted, "order {order} handled out of order");
            }
        }
        assert!(
            handler.most.load(Ordering::SeqCst) > 1,
            "different orders must be handled at once"
        );
    })
    .await;
}

/// Two consumers of one queue, as two replicas of a service run: together they handle each
/// event once, and (on Kafka, where the queue's partitions are shared out) both take part.
async fn two_consumers_of_one_queue_share_it_and_handle_each_event_once(set: BackendSet) {
    on_bus(set, async |bus: &TestBus| {
        bus.declare(&[QueueSpec::new("shared", &["order.*"])]).await;
        let first = Recorder::new();
        let second = Recorder::new();
        let a = bus.consume("shared", first.clone(), options(8));
        let b = bus.consume("shared", second.clone(), options(8));
        // Let both join before the events come, so the work is shared from the start.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let events: Vec<Envelope> = (0..120)
            .map(|i| {
                let mut e = event("order.placed");
                e.data =
                    serde_json::json!({ "order_id": uuid::Uuid::now_v7().to_string(), "i": i });
                e
            })
            .collect();
        bus.publish(&events).await;
        crate::support::eventually("120 events handled", || {
            first.deliveries().len() + second.deliveries().len() >= 120
        })
        .await;
        tokio::time::sleep(crate::support::QUIET).await;
        a.stop().await;
        b.stop().await;
        let mut ids: Vec<_> = first
            .deliveries()
            .iter()
            .chain(second.deliveries().iter())
            .map(|e| e.id)
            .collect();
        assert_eq!(ids.len(), 120, "each event once");
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 120);
        if bus.set == BackendSet::Kafka {
            assert!(
                !first.deliveries().is_empty() && !second.deliveries().is_empty(),
                "both members take part: {} and {}",
                first.deliveries().len(),
                second.deliveries().len()
            );
        }
    })
    .await;
}
