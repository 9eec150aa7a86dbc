use axum::http::StatusCode;
use chrono::{Duration, Utc};
use herald_events::{Event, OrderDeliveryLate, OrderStatus, OrdersStuck, Role};
use herald_platform::backend_tests;
use herald_platform::outbox::Outbox;
use herald_platform::testing::{BackendSet, outbox_events};
use uuid::Uuid;

use super::TestService;
use crate::checks::OrderChecks;

backend_tests!(stuck_and_late_orders_are_reported_once);

const ADMIN: (Uuid, Role) = (Uuid::nil(), Role::Admin);

fn checks(s: &TestService) -> OrderChecks {
    OrderChecks {
        db: s.db.clone(),
        outbox: Outbox::new(s.db.clone()),
        stuck_after: Duration::hours(2),
        delivery_window: Duration::hours(48),
    }
}

async fn reported(s: &TestService) -> (Vec<OrdersStuck>, Vec<OrderDeliveryLate>) {
    let events = outbox_events(&s.db).await;
    (
        events
            .iter()
            .filter(|e| e.event_type == OrdersStuck::TYPE)
            .map(|e| e.payload().unwrap())
            .collect(),
        events
            .iter()
            .filter(|e| e.event_type == OrderDeliveryLate::TYPE)
            .map(|e| e.payload().unwrap())
            .collect(),
    )
}

async fn stuck_and_late_orders_are_reported_once(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.stock_room.add("Espresso Beans", 1_250, "EUR", 10);
    let ada = Uuid::now_v7();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, order) = s.place(ada, &[(beans, 1)]).await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        ids.push(order["id"].as_str().unwrap().to_owned());
    }
    // One stays CONFIRMED, one ships, one is delivered.
    assert_eq!(
        s.set_status(&ids[1], "SHIPPED", ADMIN).await.0,
        StatusCode::OK
    );
    assert_eq!(
        s.set_status(&ids[2], "SHIPPED", ADMIN).await.0,
        StatusCode::OK
    );
    assert_eq!(
        s.set_status(&ids[2], "DELIVERED", ADMIN).await.0,
        StatusCode::OK
    );
    // A checkout whose reservation never completed: PLACED, unpriced, shown to no one.
    let abandoned = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO orders (id, user_id, status, created_at, updated_at) VALUES ($1, $2, 'PLACED', $3, $3)",
    )
    .bind(abandoned.to_string())
    .bind(ada.to_string())
    .bind(Utc::now().timestamp_micros())
    .execute(s.db.pool())
    .await
    .unwrap();
    let checks = checks(&s);

    // Within the thresholds nothing is reported.
    assert_eq!(checks.run_at(Utc::now()).await.unwrap(), (0, 0), "{set:?}");
    // Three hours on: the confirmed and the abandoned order are stuck.
    assert_eq!(
        checks
            .run_at(Utc::now() + Duration::hours(3))
            .await
            .unwrap(),
        (2, 0)
    );
    let (stuck, late) = reported(&s).await;
    assert_eq!(stuck.len(), 1);
    assert!(late.is_empty());
    let mut listed: Vec<(String, &str, bool)> = stuck[0]
        .orders
        .iter()
        .map(|o| (o.order_id.to_string(), o.status.as_str(), o.priced))
        .collect();
    listed.sort();
    let mut expected = vec![
        (ids[0].clone(), "CONFIRMED", true),
        (abandoned.to_string(), "PLACED", false),
    ];
    expected.sort();
    assert_eq!(listed, expected);
    assert_eq!(stuck[0].threshold_hours, 2);

    // Three days on: the shipped one is late; the stuck ones were reported already.
    assert_eq!(
        checks.run_at(Utc::now() + Duration::days(3)).await.unwrap(),
        (0, 1)
    );
    assert_eq!(
        checks.run_at(Utc::now() + Duration::days(4)).await.unwrap(),
        (0, 0)
    );
    let (stuck, late) = reported(&s).await;
    assert_eq!(stuck.len(), 1);
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].0.order_id.to_string(), ids[1]);
    assert_eq!(late[0].0.status, OrderStatus::Shipped);
    assert_eq!(late[0].0.user_id, ada);
    s.finish().await;
}
