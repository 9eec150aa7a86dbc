use std::time::Duration;

use axum::http::{Method, StatusCode};
use herald_events::Role;
use herald_platform::backend_tests;
use herald_platform::bus::QueueSpec;
use herald_platform::cache::Cache;
use herald_platform::db::Database;
use herald_platform::testing::{
    BackendSet, TestBus, TestKey, call, drop_schema, isolated_settings, join_tasks,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{TestProduct, confirmed, created};
use crate::{HANDLED_TYPES, QUEUE, SERVICE, build};

backend_tests!(events_on_the_bus_become_recommendations);

async fn events_on_the_bus_become_recommendations(set: BackendSet) {
    let dir = tempfile::tempdir().unwrap();
    let settings = isolated_settings(set, dir.path());
    let bus = TestBus::connect(&settings, vec![QueueSpec::new(QUEUE, HANDLED_TYPES)]).await;
    let cache = Cache::connect(&settings).await.unwrap();
    let key = TestKey::generate(crate::SERVICE);
    let shutdown = CancellationToken::new();
    let service = build(
        &settings,
        bus.bus(),
        &cache,
        key.verifier.clone(),
        shutdown.clone(),
    )
    .await
    .unwrap()
    .service;
    let beans = TestProduct {
        id: Uuid::now_v7(),
        name: "Espresso Beans".to_owned(),
        category: "coffee".to_owned(),
    };
    let frother = TestProduct {
        name: "Milk Frother".to_owned(),
        id: Uuid::now_v7(),
        ..beans.clone()
    };
    let ada = Uuid::now_v7();
    bus.bus()
        .publish(&[
            created(&beans, 10),
            created(&frother, 10),
            confirmed(Uuid::now_v7(), &[&beans, &frother]),
            confirmed(ada, &[&beans]),
        ])
        .await
        .unwrap();

    let token = key.token(ada, Role::Customer);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = call(
            &service.router,
            Method::GET,
            "/recommendations",
            Some(&token),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body[0]["reason"] == "Often bought with Espresso Beans" {
            assert_eq!(body[0]["productId"], frother.id.to_string());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "nothing within 20 s on {set:?}: {body}"
        );
        // The answer is cached for a minute; events of others do not refresh it.
        cache.delete(&format!("recommendations:{ada}")).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, ready) = call(&service.router, Method::GET, "/ready", None, None).await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    assert_eq!(ready["checks"]["recommendations_database"], "up");

    shutdown.cancel();
    join_tasks(service.tasks).await;
    bus.finish().await;
    let db = Database::connect(&settings, SERVICE).await.unwrap();
    drop_schema(&db).await;
}
