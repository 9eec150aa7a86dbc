use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode};
use herald_events::{OrderStatus, Preferences, Role};
use herald_platform::bus::topology;
use herald_platform::cache::Cache;
use herald_platform::db::Database;
use herald_platform::testing::{
    TestBus, TestKey, backend_sets, call, drop_schema, isolated_settings, join_tasks,
};
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::orders::{order_event, order_of};
use super::registered;
use crate::{SERVICE, build};

/// The caller's first page once its newest notification is `wanted`; None after 20 s.
async fn first_notification_within(
    router: &Router,
    token: &str,
    wanted: impl Fn(&Value) -> bool,
) -> Option<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let (status, page) = call(router, Method::GET, "/notifications", Some(token), None).await;
        assert_eq!(status, StatusCode::OK);
        if page["nodes"]
            .as_array()
            .and_then(|nodes| nodes.first())
            .is_some_and(&wanted)
        {
            return Some(page);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

#[tokio::test]
async fn events_published_on_the_bus_become_notifications() {
    for set in backend_sets() {
        let dir = tempfile::tempdir().unwrap();
        let settings = isolated_settings(set, dir.path());
        let bus = TestBus::connect(&settings, topology()).await;
        let cache = Cache::connect(&settings).await.unwrap();
        let key = TestKey::generate();
        let shutdown = CancellationToken::new();
        let service = build(
            &settings,
            bus.bus(),
            &cache,
            key.verifier.clone(),
            shutdown.clone(),
        )
        .await
        .unwrap();

        let ada = Uuid::now_v7();
        bus.bus()
            .publish(&[registered(ada, "Ada", Preferences::default(), 1)])
            .await
            .unwrap();
        let token = key.token(ada, Role::Customer);
        let welcome = first_notification_within(&service.router, &token, |_| true).await;
        let Some(page) = welcome else {
            panic!("no welcome within 20 s on {set:?}");
        };
        assert_eq!(
            page["nodes"][0]["title"], "Welcome to Herald, Ada",
            "{page}"
        );
        assert_eq!(page["totalCount"], 1);

        bus.bus()
            .publish(&[order_event(OrderStatus::Shipped, &order_of(ada))])
            .await
            .unwrap();
        let shipped =
            first_notification_within(&service.router, &token, |n| n["type"] == "ORDER_UPDATE")
                .await;
        assert!(
            shipped.is_some(),
            "no order update within 20 s on {set:?}: is the queue bound to order.shipped?"
        );

        let (status, ready) = call(&service.router, Method::GET, "/ready", None, None).await;
        assert_eq!(status, StatusCode::OK, "{ready}");

        shutdown.cancel();
        join_tasks(service.tasks).await;
        bus.finish().await;
        drop_schema(&Database::connect(&settings, SERVICE).await.unwrap()).await;
    }
}
