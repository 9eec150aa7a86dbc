use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::http::{Method, StatusCode};
use herald_events::{Envelope, Role};
use herald_platform::backend_tests;
use herald_platform::bus::{ConsumerOptions, EventHandler, HandlerError, QueueSpec};
use herald_platform::db::Database;
use herald_platform::deadletters::DeadLetters;
use herald_platform::testing::{
    BackendSet, TestBus, TestKey, call, drop_schema, isolated_settings, join_tasks,
};
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::StockRoom;
use crate::{SERVICE, build};

backend_tests!(a_placed_order_is_published_on_the_bus);

/// Collects every event its queue receives.
#[derive(Default)]
struct Listener {
    events: Mutex<Vec<Envelope>>,
}

#[async_trait]
impl EventHandler for Listener {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(event.clone());
        Ok(())
    }
}

async fn a_placed_order_is_published_on_the_bus(set: BackendSet) {
    let dir = tempfile::tempdir().unwrap();
    let stock_room = StockRoom::start().await;
    let mut settings = isolated_settings(set, dir.path());
    settings.products_url = Some(stock_room.url());
    let topology = vec![QueueSpec::new("order-listener", &["order.*"])];
    let bus = TestBus::connect(&settings, topology).await;
    let key = TestKey::generate(crate::SERVICE);
    stock_room.trust(&key);
    let shutdown = CancellationToken::new();
    // Products over HTTP, at `settings.products_url`.
    let service = build(
        &settings,
        bus.bus(),
        key.verifier.clone(),
        None,
        shutdown.clone(),
    )
    .await
    .unwrap()
    .service;
    let listener = Arc::new(Listener::default());
    let listening = bus.bus().spawn_consumer(
        "order-listener",
        listener.clone(),
        ConsumerOptions::default(),
        Arc::new(DeadLetters::new(
            crate::connect_database(&settings).await.unwrap(),
        )),
        shutdown.clone(),
    );

    let beans = stock_room.add("Espresso Beans", 1_250, "EUR", 10);
    let ada = Uuid::now_v7();
    let token = key.token(ada, Role::Customer);
    let body = json!({ "items": [{ "productId": beans, "quantity": 2 }] });
    let (status, order) = call(
        &service.router,
        Method::POST,
        "/orders",
        Some(&token),
        Some(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{set:?} {order}");

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let types: Vec<String> = listener
            .events
            .lock()
            .unwrap()
            .iter()
            .map(|e| e.event_type.clone())
            .collect();
        if types.len() >= 2 {
            assert_eq!(types, ["order.placed", "order.confirmed"]);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no events within 20 s on {set:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, ready) = call(&service.router, Method::GET, "/ready", None, None).await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(ready["checks"]["orders_database"], "up");

    shutdown.cancel();
    join_tasks(service.tasks.into_iter().chain([listening])).await;
    bus.finish().await;
    drop_schema(&Database::connect(&settings, SERVICE).await.unwrap()).await;
}
