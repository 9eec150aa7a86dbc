use std::sync::Arc;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use herald_events::{Preferences, Role};
use herald_platform::auth::{SigningKey, TokenVerifier};
use herald_platform::bus::{Bus, BusBackend, RabbitBus, topology};
use herald_platform::cache::Cache;
use herald_platform::db::Database;
use herald_platform::testing::{backend_sets, isolated_settings};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{call, drop_schema, registered};
use crate::{SERVICE, build};

#[tokio::test]
async fn a_registration_published_on_the_bus_becomes_a_welcome() {
    for set in backend_sets() {
        let dir = tempfile::tempdir().unwrap();
        let settings = isolated_settings(set, dir.path());
        let topology = topology();
        let rabbit = match &settings.amqp_url {
            Some(url) => Some(Arc::new(
                RabbitBus::connect(url, &settings.bus_prefix).await.unwrap(),
            )),
            None => None,
        };
        let bus = match &rabbit {
            Some(rabbit) => Bus::from_backend(rabbit.clone() as Arc<dyn BusBackend>),
            None => Bus::connect(&settings, &topology).await.unwrap(),
        };
        bus.declare(&topology).await.unwrap();
        let cache = Cache::connect(&settings).await.unwrap();
        let key = SigningKey::generate().unwrap();
        let verifier = TokenVerifier::new(&[key.public_key().clone()]).unwrap();
        let shutdown = CancellationToken::new();
        let service = build(&settings, &bus, &cache, verifier, shutdown.clone())
            .await
            .unwrap();

        let ada = Uuid::now_v7();
        bus.publish(&[registered(ada, "Ada", Preferences::default(), 1)])
            .await
            .unwrap();
        let token = key
            .issue(ada, Role::Customer, Duration::from_secs(600))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, page) =
                call(&service.router, Method::GET, "/notifications", Some(&token)).await;
            assert_eq!(status, StatusCode::OK);
            if page["nodes"]
                .as_array()
                .is_some_and(|nodes| !nodes.is_empty())
            {
                assert_eq!(
                    page["nodes"][0]["title"], "Welcome to Herald, Ada",
                    "{page}"
                );
                assert_eq!(page["totalCount"], 1);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no welcome within 20 s on {set:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (status, ready) = call(&service.router, Method::GET, "/ready", None).await;
        assert_eq!(status, StatusCode::OK, "{ready}");

        shutdown.cancel();
        for task in service.tasks {
            tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .unwrap()
                .unwrap();
        }
        if let Some(rabbit) = rabbit {
            rabbit.delete_topology(&topology).await.unwrap();
        }
        drop_schema(&Database::connect(&settings, SERVICE).await.unwrap()).await;
    }
}
