use std::path::Path;
use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode};
use herald_events::{Channel, OrderStatus, Preferences, Role};
use herald_platform::backend_tests;
use herald_platform::bus::topology;
use herald_platform::cache::Cache;
use herald_platform::db::Database;
use herald_platform::testing::{
    BackendSet, TestBus, TestKey, call, drop_schema, isolated_settings, join_tasks,
};
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::orders::{order_event, order_of};
use super::registered;
use crate::{SERVICE, build};

backend_tests!(
    events_published_on_the_bus_become_notifications,
    emails_go_out_and_unsubscribe_requests_reach_the_bus
);

/// The emails in the mailbox folder, once there are `count` of them; None after 20 s.
async fn mailbox_within(dir: &Path, count: usize) -> Option<Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let files: Vec<_> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        if files.len() >= count {
            return Some(
                files
                    .iter()
                    .map(|f| std::fs::read_to_string(f).unwrap())
                    .collect(),
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// The unsubscribe link's path and query in an email's `List-Unsubscribe` header.
fn unsubscribe_path(email: &str) -> Option<String> {
    let start = email.find("List-Unsubscribe: <")? + "List-Unsubscribe: <".len();
    let end = start + email[start..].find('>')?;
    let link: String = email[start..end].split_whitespace().collect();
    Some(link.trim_start_matches("http://localhost:4000").to_owned())
}

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

async fn events_published_on_the_bus_become_notifications(set: BackendSet) {
    let dir = tempfile::tempdir().unwrap();
    let settings = isolated_settings(set, dir.path());
    let bus = TestBus::connect(&settings, topology()).await;
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
        first_notification_within(&service.router, &token, |n| n["type"] == "ORDER_UPDATE").await;
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

async fn emails_go_out_and_unsubscribe_requests_reach_the_bus(set: BackendSet) {
    let dir = tempfile::tempdir().unwrap();
    let settings = isolated_settings(set, dir.path());
    let bus = TestBus::connect(&settings, topology()).await;
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

    let ada = Uuid::now_v7();
    let by_email = Preferences {
        channels: vec![Channel::InApp, Channel::Email],
        ..Preferences::default()
    };
    bus.bus()
        .publish(&[registered(ada, "Ada", by_email, 1)])
        .await
        .unwrap();
    let mailbox = dir.path().join("mailbox");
    assert!(
        mailbox_within(&mailbox, 1).await.is_some(),
        "no welcome email within 20 s on {set:?}"
    );
    // Published after the welcome: an order of an unknown buyer would wait for a retry.
    bus.bus()
        .publish(&[order_event(OrderStatus::Shipped, &order_of(ada))])
        .await
        .unwrap();
    let Some(emails) = mailbox_within(&mailbox, 2).await else {
        panic!("no order email within 20 s on {set:?}");
    };
    let path = emails
        .iter()
        .find_map(|email| unsubscribe_path(email))
        .expect("the order email carries an unsubscribe link");

    let (status, body) = call(&service.router, Method::POST, &path, None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["type"], "ORDER_UPDATE");
    let deadline = Instant::now() + Duration::from_secs(20);
    while bus.bus().depth("users").await.unwrap() == 0 {
        assert!(
            Instant::now() < deadline,
            "the unsubscribe request did not reach the users queue within 20 s on {set:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    shutdown.cancel();
    join_tasks(service.tasks).await;
    bus.finish().await;
    drop_schema(&Database::connect(&settings, SERVICE).await.unwrap()).await;
}
