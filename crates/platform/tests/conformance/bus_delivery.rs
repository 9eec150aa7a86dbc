//! Routing, durability and depth: where published events end up, and that they stay there.

use herald_platform::backend_tests;
use herald_platform::bus::QueueSpec;
use herald_platform::testing::BackendSet;

use crate::support::{Recorder, TestBus, event, on_bus, options};

backend_tests!(
    every bus: events_reach_exactly_the_queues_whose_bindings_match(threads = 4),
    events_published_before_the_consumer_runs_are_delivered_when_it_starts(threads = 4),
    events_and_bindings_survive_a_restart(threads = 4),
    depth_counts_the_messages_waiting_in_a_queue(threads = 4),
    publishers_on_many_tasks_at_once_lose_nothing(threads = 4),
    a_requeued_event_reaches_its_queue_alone(threads = 4)
);

async fn events_reach_exactly_the_queues_whose_bindings_match(set: BackendSet) {
    on_bus(set, async |bus: &TestBus| {
        bus.declare(&[
            QueueSpec::new("exact", &["order.placed"]),
            QueueSpec::new("one_word", &["order.*"]),
            QueueSpec::new("any_words", &["order.#"]),
            QueueSpec::new("two_bindings", &["user.*", "#.changed", "user.registered"]),
        ])
        .await;
        let types = [
            "order.placed",
            "order.status.changed",
            "order",
            "user.registered",
            "product.viewed",
        ];
        bus.publish(&types.map(event)).await;

        let expected: [(&str, &[&str]); 4] = [
            ("exact", &["order.placed"]),
            ("one_word", &["order.placed"]),
            (
                "any_words",
                &["order", "order.placed", "order.status.changed"],
            ),
            // user.registered matches two of its bindings and still arrives once.
            ("two_bindings", &["order.status.changed", "user.registered"]),
        ];
        for (queue, types) in expected {
            let recorder = Recorder::new();
            let consumer = bus.consume(queue, recorder.clone(), options(8));
            assert_eq!(recorder.exactly(types.len()).await, types, "queue {queue}");
            consumer.stop().await;
        }
    })
    .await;
}

async fn events_published_before_the_consumer_runs_are_delivered_when_it_starts(set: BackendSet) {
    on_bus(set, async |bus: &TestBus| {
        bus.declare(&[QueueSpec::new("late", &["order.*"])]).await;
        let events = ["order.placed", "order.paid", "order.shipped"].map(event);
        bus.publish(&events).await;

        let recorder = Recorder::new();
        let consumer = bus.consume("late", recorder.clone(), options(8));
        assert_eq!(
            recorder.exactly(3).await,
            ["order.paid", "order.placed", "order.shipped"]
        );
        let mut delivered: Vec<_> = recorder.deliveries().iter().map(|e| e.id).collect();
        let mut published = events.map(|e| e.id);
        delivered.sort();
        published.sort();
        assert_eq!(delivered, published, "each event once, as published");
        consumer.stop().await;
    })
    .await;
}

async fn events_and_bindings_survive_a_restart(set: BackendSet) {
    on_bus(set, async |bus: &TestBus| {
        bus.declare(&[
            QueueSpec::new("durable", &["order.*"]),
            QueueSpec::new("other", &["order.placed"]),
        ])
        .await;
        // A later release adds a binding to an existing queue.
        bus.declare(&[QueueSpec::new("durable", &["#.placed"])])
            .await;
        let before: Vec<_> = (0..5).map(|_| event("order.paid")).collect();
        bus.publish(&before).await;

        bus.restart().await;
        // Bindings are durable too: no declare after the restart. order.placed matches both
        // bindings of `durable` and must still arrive there once.
        bus.publish(&[event("order.placed")]).await;
        let recorder = Recorder::new();
        let consumer = bus.consume("durable", recorder.clone(), options(8));
        let mut expected = vec!["order.paid"; 5];
        expected.push("order.placed");
        assert_eq!(recorder.exactly(6).await, expected);
        consumer.stop().await;
        assert_eq!(bus.depth("other").await, 1);
    })
    .await;
}

async fn depth_counts_the_messages_waiting_in_a_queue(set: BackendSet) {
    on_bus(set, async |bus: &TestBus| {
        bus.declare(&[
            QueueSpec::new("orders", &["order.*"]),
            QueueSpec::new("users", &["user.*"]),
        ])
        .await;
        assert_eq!(bus.depth("orders").await, 0);
        bus.publish(
            &[
                "order.placed",
                "order.paid",
                "order.shipped",
                "order.placed",
            ]
            .map(event),
        )
        .await;
        bus.publish(&[event("user.registered")]).await;
        assert_eq!(bus.depth("orders").await, 4);
        assert_eq!(bus.depth("users").await, 1);

        let recorder = Recorder::new();
        let consumer = bus.consume("orders", recorder.clone(), options(8));
        recorder.exactly(4).await;
        consumer.stop().await;
        assert_eq!(
            bus.depth("orders").await,
            0,
            "handled messages leave the queue"
        );
        assert_eq!(bus.depth("users").await, 1);
    })
    .await;
}

async fn publishers_on_many_tasks_at_once_lose_nothing(set: BackendSet) {
    on_bus(set, async |bus: &TestBus| {
        bus.declare(&[QueueSpec::new("busy", &["order.*"])]).await;
        let backend = bus.backend();
        let publishers: Vec<_> = (0..20)
            .map(|_| {
                let backend = backend.clone();
                tokio::spawn(async move {
                    let events: Vec<_> = (0..10).map(|_| event("order.placed")).collect();
                    backend.publish(&events).await.map(|()| events)
                })
            })
            .collect();
        let mut published = Vec::new();
        for publisher in publishers {
            let events = publisher
                .await
                .expect("publisher task")
                .expect("publishing");
            published.extend(events.into_iter().map(|e| e.id));
        }

        let recorder = Recorder::new();
        let consumer = bus.consume("busy", recorder.clone(), options(32));
        recorder.exactly(200).await;
        consumer.stop().await;
        let mut delivered: Vec<_> = recorder.deliveries().iter().map(|e| e.id).collect();
        delivered.sort();
        published.sort();
        assert_eq!(delivered, published);
    })
    .await;
}

async fn a_requeued_event_reaches_its_queue_alone(set: BackendSet) {
    on_bus(set, async |bus: &TestBus| {
        bus.declare(&[
            QueueSpec::new("left", &["order.placed"]),
            QueueSpec::new("right", &["order.*"]),
        ])
        .await;
        let replayed = event("order.placed");
        bus.bus()
            .requeue("left", &replayed)
            .await
            .expect("requeueing");
        assert_eq!(bus.depth("left").await, 1);
        assert_eq!(bus.depth("right").await, 0, "the other bound queue");

        let recorder = Recorder::new();
        let consumer = bus.consume("left", recorder.clone(), options(8));
        assert_eq!(recorder.exactly(1).await, ["order.placed"]);
        assert_eq!(recorder.deliveries()[0], replayed, "the event as it was");
        consumer.stop().await;
        assert_eq!(bus.depth("right").await, 0);

        let nowhere = bus.bus().requeue("nowhere", &replayed).await;
        assert!(
            nowhere.is_err(),
            "a queue that does not exist takes nothing"
        );
    })
    .await;
}
