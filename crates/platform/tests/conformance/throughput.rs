//! How fast a consumer drains its queue: a measurement, not a check, so it is ignored by
//! default. Run it with
//! `cargo test -p herald-platform --all-features --test conformance -- --ignored --nocapture throughput`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use herald_events::Envelope;
use herald_platform::backend_tests;
use herald_platform::bus::{EventHandler, HandlerError, QueueSpec};
use herald_platform::testing::BackendSet;

use crate::support::{TestBus, event, on_bus, options};

backend_tests!(
every bus: throughput_of_a_consumer_draining_its_queue(
    threads = 4,
    ignore = "a measurement: run by hand with --ignored --nocapture"
));

const MESSAGES: usize = 50_000;

#[derive(Default)]
struct Counts(AtomicUsize);

#[async_trait]
impl EventHandler for Counts {
    async fn handle(&self, _event: &Envelope) -> Result<(), HandlerError> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

async fn throughput_of_a_consumer_draining_its_queue(set: BackendSet) {
    on_bus(set, async |bus: &TestBus| {
        for concurrency in [32, 256] {
            let queue = format!("bench{concurrency}");
            bus.declare(&[QueueSpec::new(&queue, &[&format!("{queue}.*")])])
                .await;
            let events: Vec<Envelope> = (0..MESSAGES)
                .map(|_| event(&format!("{queue}.tick")))
                .collect();
            for batch in events.chunks(1000) {
                bus.publish(batch).await;
            }
            let handler = Arc::new(Counts::default());
            let started = Instant::now();
            let consumer = bus.consume(&queue, handler.clone(), options(concurrency));
            while handler.0.load(Ordering::Relaxed) < MESSAGES {
                assert!(started.elapsed() < Duration::from_secs(300), "too slow");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let elapsed = started.elapsed();
            consumer.stop().await;
            eprintln!(
                "{:?}, concurrency {concurrency}: {MESSAGES} messages in {elapsed:.2?}, {:.0} msg/s",
                bus.set,
                MESSAGES as f64 / elapsed.as_secs_f64()
            );
        }
    })
    .await;
}
