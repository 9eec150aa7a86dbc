use std::time::Duration;

use axum::http::{Method, StatusCode};
use herald_events::Role;
use herald_platform::backend_tests;
use herald_platform::bus::topology;
use herald_platform::db::Database;
use herald_platform::testing::{
    BackendSet, TestBus, TestKey, call, drop_schema, isolated_settings, join_tasks, outbox_events,
};
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::cancelled;
use crate::{SERVICE, build};

backend_tests!(a_cancellation_on_the_bus_gives_the_stock_back_and_events_are_relayed);

async fn a_cancellation_on_the_bus_gives_the_stock_back_and_events_are_relayed(set: BackendSet) {
    let dir = tempfile::tempdir().unwrap();
    let settings = isolated_settings(set, dir.path());
    let bus = TestBus::connect(&settings, topology()).await;
    let key = TestKey::generate(crate::SERVICE);
    let shutdown = CancellationToken::new();
    let service = build(&settings, bus.bus(), key.verifier.clone(), shutdown.clone())
        .await
        .unwrap()
        .service;
    let admin = key.token(Uuid::now_v7(), Role::Admin);
    let ada = Uuid::now_v7();
    let buyer = key.from_service("orders", Some((ada, Role::Customer)));

    let (status, product) = call(
        &service.router,
        Method::POST,
        "/products",
        Some(&admin),
        Some(json!({"name": "Espresso Beans", "category": "coffee", "priceCents": 1299, "stock": 10})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{set:?} {product}");
    let product_id: Uuid = product["id"].as_str().unwrap().parse().unwrap();
    let order_id = Uuid::now_v7();
    let (status, _) = call(
        &service.router,
        Method::POST,
        "/reservations",
        Some(&buyer),
        Some(json!({"orderId": order_id, "items": [{"productId": product_id, "quantity": 4}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    bus.bus()
        .publish(&[cancelled(order_id, ada, &[(product_id, 4)])])
        .await
        .unwrap();
    let db = Database::connect(&settings, SERVICE).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, product) = call(
            &service.router,
            Method::GET,
            &format!("/products/{product_id}"),
            Some(&key.anonymous()),
            None,
        )
        .await;
        // Released, and every event (the release's too) published and gone.
        if product["stock"] == 10 && outbox_events(&db).await.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no release within 20 s on {set:?}: {product}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, ready) = call(&service.router, Method::GET, "/ready", None, None).await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(ready["checks"]["products_database"], "up");

    shutdown.cancel();
    join_tasks(service.tasks).await;
    bus.finish().await;
    drop_schema(&db).await;
}
