use chrono::Duration;
use herald_events::{OrderStatus, Preferences, Role};
use herald_platform::backend_tests;
use herald_platform::testing::BackendSet;

use super::orders::{order_event, order_of};
use super::{TestService, draft, utc};
use crate::decision::Decision;
use crate::decision_log::decisions_for_user;
use crate::domain::NotificationType;

backend_tests!(
    a_standard_notification_in_quiet_hours_appears_when_they_end,
    a_deferred_notification_is_listed_by_the_time_it_appeared,
    a_critical_notification_in_quiet_hours_arrives_at_once,
    a_window_within_one_day_defers_only_inside_it
);

fn quiet(zone: &str, start: &str, end: &str) -> Preferences {
    Preferences {
        timezone: zone.to_owned(),
        quiet_hours_start: Some(start.to_owned()),
        quiet_hours_end: Some(end.to_owned()),
        ..Preferences::default()
    }
}

fn berlin_nights() -> Preferences {
    quiet("Europe/Berlin", "22:00", "07:30")
}

async fn a_standard_notification_in_quiet_hours_appears_when_they_end(set: BackendSet) {
    let s = TestService::start(set).await;
    // 23:00 in Berlin on the night the clocks go forward: 07:30 will be CEST, 05:30 UTC.
    s.clock.set(utc("2026-03-28T22:00:00Z"));
    let morning = utc("2026-03-29T05:30:00Z");
    let ada = s.register_as("Ada", Role::Customer, berlin_nights()).await;
    assert_eq!(s.unread_count(ada).await, 1, "the welcome is critical");

    let alert = s
        .deliver(&draft(ada, NotificationType::Inventory, "Beans are back"))
        .await;
    assert_eq!(
        alert.decision(),
        Some(&Decision::Deferred {
            until: morning,
            channels: vec![herald_events::Channel::InApp],
        }),
        "{set:?}"
    );
    let recorded = decisions_for_user(&s.db, ada).await.unwrap();
    let deferred = recorded.last().unwrap();
    assert_eq!(
        (deferred.outcome.as_str(), deferred.reason.as_deref()),
        ("DEFERRED", None)
    );
    assert_eq!(deferred.deliver_at, Some(morning));
    assert_eq!(deferred.channels, ["IN_APP"]);

    // Invisible all night: not listed, not counted, not marked read with the rest.
    assert!(s.notifications_of(ada, "INVENTORY").await.is_empty());
    assert_eq!(s.get("/notifications", ada).await.1["totalCount"], 1);
    assert_eq!(s.post("/notifications/read-all", ada).await.1["changed"], 1);
    assert_eq!(s.unread_count(ada).await, 0);
    s.clock.set(morning - Duration::seconds(1));
    assert!(s.notifications_of(ada, "INVENTORY").await.is_empty());
    assert_eq!(s.unread_count(ada).await, 0);

    s.clock.set(morning);
    let alerts = s.notifications_of(ada, "INVENTORY").await;
    assert_eq!(alerts.len(), 1, "{set:?}");
    assert_eq!(alerts[0]["title"], "Beans are back");
    assert_eq!(alerts[0]["read"], false);
    assert_eq!(
        alerts[0]["createdAt"]
            .as_str()
            .unwrap()
            .parse::<chrono::DateTime<chrono::Utc>>()
            .unwrap(),
        morning
    );
    assert_eq!(s.unread_count(ada).await, 1);

    // Released once: hours later it is still the one notification.
    s.clock.advance(Duration::hours(5));
    assert_eq!(s.notifications_of(ada, "INVENTORY").await.len(), 1);
    assert_eq!(s.get("/notifications", ada).await.1["totalCount"], 2);
    assert_eq!(s.unread_count(ada).await, 1);
    s.finish().await;
}

async fn a_deferred_notification_is_listed_by_the_time_it_appeared(set: BackendSet) {
    let s = TestService::start(set).await;
    s.clock.set(utc("2026-01-15T22:00:00Z"));
    let ada = s.register_as("Ada", Role::Customer, berlin_nights()).await;
    s.notify(ada, NotificationType::Promotion, "Night deal")
        .await;
    // At 01:00 an order update arrives at once.
    s.clock.set(utc("2026-01-16T00:00:00Z"));
    s.notify(ada, NotificationType::OrderUpdate, "Order shipped")
        .await;
    // 07:30 CET is 06:30 UTC.
    s.clock.set(utc("2026-01-16T06:30:00Z"));
    let (_, page) = s.get("/notifications?first=2", ada).await;
    let titles: Vec<&str> = page["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Night deal", "Order shipped"], "{set:?}");
    let cursor = page["pageInfo"]["endCursor"].as_str().unwrap();
    let (_, rest) = s
        .get(&format!("/notifications?first=2&after={cursor}"), ada)
        .await;
    assert_eq!(rest["nodes"][0]["title"], "Welcome to Herald, Ada");
    assert_eq!(rest["pageInfo"]["hasNextPage"], false);
    s.finish().await;
}

async fn a_critical_notification_in_quiet_hours_arrives_at_once(set: BackendSet) {
    let s = TestService::start(set).await;
    s.clock.set(utc("2026-03-28T22:00:00Z"));
    let ada = s.register_as("Ada", Role::Customer, berlin_nights()).await;
    s.handle(&order_event(OrderStatus::Shipped, &order_of(ada)))
        .await
        .unwrap();
    assert_eq!(
        s.notifications_of(ada, "ORDER_UPDATE").await.len(),
        1,
        "{set:?}"
    );
    assert_eq!(
        s.decisions_of(ada, "ORDER_UPDATE").await,
        [("SENT".to_owned(), None)]
    );
    assert_eq!(s.unread_count(ada).await, 2);
    s.finish().await;
}

async fn a_window_within_one_day_defers_only_inside_it(set: BackendSet) {
    let s = TestService::start(set).await;
    let ada = s
        .register_as(
            "Ada",
            Role::Customer,
            quiet("Europe/Berlin", "13:00", "14:00"),
        )
        .await;
    // 12:30 CET: before the window.
    s.clock.set(utc("2026-01-15T11:30:00Z"));
    s.notify(ada, NotificationType::Promotion, "Before lunch")
        .await;
    // 13:30 CET: inside; it waits until 14:00 CET, 13:00 UTC.
    s.clock.set(utc("2026-01-15T12:30:00Z"));
    let lunch = s
        .deliver(&draft(ada, NotificationType::Promotion, "At lunch"))
        .await;
    assert_eq!(
        lunch.decision().and_then(Decision::until),
        Some(utc("2026-01-15T13:00:00Z")),
        "{set:?}"
    );
    assert_eq!(s.titles_of(ada, "PROMOTION").await, ["Before lunch"]);
    s.clock.set(utc("2026-01-15T13:00:00Z"));
    assert_eq!(
        s.titles_of(ada, "PROMOTION").await,
        ["At lunch", "Before lunch"]
    );
    // 23:30 CET: a daytime window says nothing of the night.
    s.clock.set(utc("2026-01-15T22:30:00Z"));
    s.notify(ada, NotificationType::Promotion, "Late").await;
    assert_eq!(
        s.decisions_of(ada, "PROMOTION").await,
        [
            ("SENT".to_owned(), None),
            ("DEFERRED".to_owned(), None),
            ("SENT".to_owned(), None)
        ]
    );
    s.finish().await;
}
