//! Connections to the real servers: bounded start-up, and recovery when the broker drops them.

use std::time::{Duration, Instant};

use herald_platform::backend_tests;
use herald_platform::bus::{QueueSpec, RabbitBus};
use herald_platform::cache::RedisCache;
use herald_platform::testing::BackendSet;
use herald_platform::testing::harness::RABBITMQCTL;

use crate::support::{Recorder, TestBus, event, on_bus, options};

backend_tests!(
    real only: publisher_and_consumer_recover_when_the_broker_drops_their_connections(
        threads = 4,
        needs = &[RABBITMQCTL]
    );
    no backend: connecting_the_bus_to_a_server_that_never_answers_fails_in_bounded_time,
    connecting_the_cache_to_a_server_that_never_answers_fails_in_bounded_time
);

/// A port that accepts connections and never says a word, like a wrong service behind a URL.
async fn silent_server() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a port");
    let addr = listener.local_addr().expect("local address");
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (addr, task)
}

async fn connecting_the_bus_to_a_server_that_never_answers_fails_in_bounded_time() {
    let (addr, server) = silent_server().await;
    let started = Instant::now();
    let rabbit = RabbitBus::connect(&format!("amqp://guest:guest@{addr}/%2f"), "silent").await;
    let error = format!("{:#}", rabbit.err().expect("connected to a silent server"));
    eprintln!("failed after {:?}: {error}", started.elapsed());
    assert!(error.contains("RabbitMQ"), "unclear error: {error}");
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "took {:?}",
        started.elapsed()
    );
    server.abort();
}

async fn connecting_the_cache_to_a_server_that_never_answers_fails_in_bounded_time() {
    let (addr, server) = silent_server().await;
    let started = Instant::now();
    let redis = RedisCache::connect(&format!("redis://{addr}")).await;
    let error = format!("{:#}", redis.err().expect("connected to a silent server"));
    eprintln!("failed after {:?}: {error}", started.elapsed());
    assert!(error.contains("Redis"), "unclear error: {error}");
    assert!(
        started.elapsed() < Duration::from_secs(7),
        "took {:?}",
        started.elapsed()
    );
    server.abort();
}

/// Closes, from the broker's side, every connection whose name mentions `prefix`; returns how
/// many.
fn close_connections_named(prefix: &str) -> usize {
    let listed = std::process::Command::new("rabbitmqctl")
        .args([
            "-q",
            "list_connections",
            "--no-table-headers",
            "pid",
            "client_properties",
        ])
        .output()
        .expect("running rabbitmqctl");
    assert!(
        listed.status.success(),
        "rabbitmqctl list_connections: {}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listing = String::from_utf8_lossy(&listed.stdout);
    let pids: Vec<&str> = listing
        .lines()
        .filter(|line| line.contains(prefix))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    for pid in &pids {
        let closed = std::process::Command::new("rabbitmqctl")
            .args([
                "-q",
                "close_connection",
                pid,
                "conformance: simulated broker restart",
            ])
            .status()
            .expect("running rabbitmqctl");
        assert!(closed.success(), "closing connection {pid}");
    }
    pids.len()
}

async fn publisher_and_consumer_recover_when_the_broker_drops_their_connections() {
    on_bus(BackendSet::Real, async |bus: &TestBus| {
        bus.declare(&[QueueSpec::new("resilient", &["order.*"])])
            .await;
        let recorder = Recorder::new();
        let consumer = bus.consume("resilient", recorder.clone(), options(4));
        bus.publish(&[event("order.placed")]).await;
        recorder.exactly(1).await;

        let closed = close_connections_named(bus.prefix());
        assert_eq!(closed, 2, "the publisher's and the consumer's connections");
        // Like the outbox relay: a publish on the dropped connection fails, the next reconnects.
        let backend = bus.backend();
        let paid = event("order.paid");
        let mut failures = 0;
        while let Err(e) = backend.publish(std::slice::from_ref(&paid)).await {
            failures += 1;
            assert!(
                failures < 2,
                "publishing still fails after reconnecting: {e:#}"
            );
        }
        assert_eq!(recorder.exactly(2).await, ["order.paid", "order.placed"]);
        consumer.stop().await;
    })
    .await;
}
