use axum::http::{Method, StatusCode};
use herald_events::{OrderCancelled, OrderShipped, OrderStatus, Role};
use herald_platform::backend_tests;
use herald_platform::testing::BackendSet;
use serde_json::{Value, json};
use uuid::Uuid;

use super::TestService;

backend_tests!(
    admins_move_orders_forward_and_everything_else_is_bad_user_input,
    only_admins_change_an_orders_status,
    cancelling_gives_the_stock_back_once_and_a_second_cancel_is_refused,
    admins_cancel_anyones_order_and_the_event_is_about_the_buyer,
    of_concurrent_cancels_one_wins_and_the_stock_is_released_once(threads = 4),
    a_failed_release_still_cancels_and_leaves_the_event_for_products
);

const ADMIN: (Uuid, Role) = (Uuid::nil(), Role::Admin);

fn customer(id: Uuid) -> (Uuid, Role) {
    (id, Role::Customer)
}

/// Ada's confirmed order of 3 of a product with 10 in stock.
async fn adas_order(s: &TestService) -> (Uuid, Uuid, String) {
    let beans = s.stock_room.add("Espresso Beans", 1_250, "EUR", 10);
    let ada = Uuid::now_v7();
    let (status, order) = s.place(ada, &[(beans, 3)]).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(s.stock_room.stock(beans), 7);
    (ada, beans, order["id"].as_str().unwrap().to_owned())
}

fn assert_bad_input(answer: &(StatusCode, Value), message: &str) {
    assert_eq!(answer.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.1);
    assert_eq!(answer.1["code"], "BAD_USER_INPUT");
    assert_eq!(answer.1["message"], message);
}

async fn admins_move_orders_forward_and_everything_else_is_bad_user_input(set: BackendSet) {
    let s = TestService::start(set).await;
    let (ada, _, id) = adas_order(&s).await;

    let (status, shipped) = s.set_status(&id, "SHIPPED", ADMIN).await;
    assert_eq!(status, StatusCode::OK, "{set:?} {shipped}");
    assert_eq!(shipped["status"], "SHIPPED");
    assert_eq!(s.get(&format!("/orders/{id}"), ada).await.1, shipped);
    let events = s.outbox().await;
    let last = events.last().unwrap();
    assert_eq!(last.event_type, "order.shipped");
    assert_eq!(last.subject.as_deref(), Some(ada.to_string().as_str()));
    let OrderShipped(snapshot) = last.payload().unwrap();
    assert_eq!(snapshot.status, OrderStatus::Shipped);
    assert_eq!(snapshot.items[0].product_name, "Espresso Beans");
    assert_eq!(snapshot.total_cents, 3_750);

    assert_bad_input(
        &s.cancel(&id, customer(ada)).await,
        &format!("order #{id} is SHIPPED and can no longer be cancelled"),
    );
    for (to, message) in [
        ("CONFIRMED", "cannot become CONFIRMED"),
        ("PLACED", "cannot become PLACED"),
        ("SHIPPED", "cannot become SHIPPED"),
        ("CANCELLED", "can no longer be cancelled"),
    ] {
        assert_bad_input(
            &s.set_status(&id, to, ADMIN).await,
            &format!("order #{id} is SHIPPED and {message}"),
        );
    }
    for nonsense in ["LOST", "shipped", ""] {
        let (status, error) = s.set_status(&id, nonsense, ADMIN).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{nonsense}");
        assert_eq!(error["code"], "BAD_USER_INPUT");
    }
    let (status, error) = s
        .call(
            Method::POST,
            &format!("/orders/{id}/status"),
            Some(ADMIN),
            Some(json!({ "state": "SHIPPED" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");

    let (status, delivered) = s.set_status(&id, "DELIVERED", ADMIN).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(delivered["status"], "DELIVERED");
    assert_bad_input(
        &s.set_status(&id, "SHIPPED", ADMIN).await,
        &format!("order #{id} is DELIVERED and cannot become SHIPPED"),
    );
    let types: Vec<String> = s.outbox().await.into_iter().map(|e| e.event_type).collect();
    assert_eq!(
        types,
        [
            "order.placed",
            "order.confirmed",
            "order.shipped",
            "order.delivered"
        ]
    );
    assert!(s.stock_room.release_calls().is_empty());

    for unknown in [Uuid::now_v7().to_string(), "nope".to_owned()] {
        let (status, error) = s.set_status(&unknown, "SHIPPED", ADMIN).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}");
        assert_eq!(error["code"], "NOT_FOUND");
    }
    s.finish().await;
}

async fn only_admins_change_an_orders_status(set: BackendSet) {
    let s = TestService::start(set).await;
    let (ada, _, id) = adas_order(&s).await;
    for to in ["SHIPPED", "CANCELLED", "NONSENSE"] {
        let (status, error) = s.set_status(&id, to, customer(ada)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{set:?} {to}");
        assert_eq!(error["code"], "FORBIDDEN");
    }
    let (status, _) = s
        .call(
            Method::POST,
            &format!("/orders/{id}/status"),
            None,
            Some(json!({ "status": "SHIPPED" })),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.get(&format!("/orders/{id}"), ada).await.1["status"],
        "CONFIRMED"
    );
    assert_eq!(s.outbox().await.len(), 2);
    s.finish().await;
}

async fn cancelling_gives_the_stock_back_once_and_a_second_cancel_is_refused(set: BackendSet) {
    let s = TestService::start(set).await;
    let (ada, beans, id) = adas_order(&s).await;

    let (status, error) = s.cancel(&id, customer(Uuid::now_v7())).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "{set:?} another buyer: {error}"
    );
    assert_eq!(s.stock_room.stock(beans), 7);

    let (status, cancelled) = s.cancel(&id, customer(ada)).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(cancelled["totalCents"], 3_750);
    assert_eq!(s.stock_room.stock(beans), 10);
    let order_id: Uuid = id.parse().unwrap();
    assert_eq!(s.stock_room.release_calls(), [order_id]);
    let event = s.outbox().await.pop().unwrap();
    assert_eq!(event.event_type, "order.cancelled");
    assert_eq!(event.subject.as_deref(), Some(ada.to_string().as_str()));
    let OrderCancelled(snapshot) = event.payload().unwrap();
    assert_eq!(snapshot.status, OrderStatus::Cancelled);
    assert_eq!(snapshot.items[0].quantity, 3);

    assert_bad_input(
        &s.cancel(&id, customer(ada)).await,
        &format!("order #{id} is CANCELLED and can no longer be cancelled"),
    );
    assert_bad_input(
        &s.set_status(&id, "CONFIRMED", ADMIN).await,
        &format!("order #{id} is CANCELLED and cannot become CONFIRMED"),
    );
    assert_eq!(s.stock_room.release_calls().len(), 1);
    assert_eq!(s.stock_room.stock(beans), 10);
    assert_eq!(s.outbox().await.len(), 3);
    s.finish().await;
}

async fn admins_cancel_anyones_order_and_the_event_is_about_the_buyer(set: BackendSet) {
    let s = TestService::start(set).await;
    let (ada, beans, id) = adas_order(&s).await;
    let (status, cancelled) = s.set_status(&id, "CANCELLED", ADMIN).await;
    assert_eq!(status, StatusCode::OK, "{set:?} {cancelled}");
    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(cancelled["userId"], ada.to_string());
    assert_eq!(s.stock_room.stock(beans), 10);
    assert_eq!(s.stock_room.release_calls().len(), 1);
    let event = s.outbox().await.pop().unwrap();
    assert_eq!(event.event_type, "order.cancelled");
    assert_eq!(event.subject.as_deref(), Some(ada.to_string().as_str()));

    let (_, _, other) = adas_order(&s).await;
    let (status, cancelled) = s.cancel(&other, ADMIN).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(s.stock_room.release_calls().len(), 2);
    s.finish().await;
}

async fn of_concurrent_cancels_one_wins_and_the_stock_is_released_once(set: BackendSet) {
    let s = TestService::start(set).await;
    let (ada, beans, id) = adas_order(&s).await;
    let answers = futures::future::join_all(
        (0..4)
            .map(|i| {
                let user = if i == 0 { ADMIN } else { customer(ada) };
                s.cancel(&id, user)
            })
            .collect::<Vec<_>>(),
    )
    .await;
    let mut statuses: Vec<StatusCode> = answers.iter().map(|(status, _)| *status).collect();
    statuses.sort();
    assert_eq!(
        statuses,
        [
            StatusCode::OK,
            StatusCode::UNPROCESSABLE_ENTITY,
            StatusCode::UNPROCESSABLE_ENTITY,
            StatusCode::UNPROCESSABLE_ENTITY
        ],
        "{set:?}"
    );
    assert_eq!(s.stock_room.release_calls().len(), 1);
    assert_eq!(s.stock_room.stock(beans), 10);
    let cancels = s
        .outbox()
        .await
        .into_iter()
        .filter(|e| e.event_type == "order.cancelled")
        .count();
    assert_eq!(cancels, 1);
    s.finish().await;
}

async fn a_failed_release_still_cancels_and_leaves_the_event_for_products(set: BackendSet) {
    let s = TestService::start(set).await;
    let (ada, _, id) = adas_order(&s).await;
    s.stock_room.fail_releases();
    let (status, cancelled) = s.cancel(&id, customer(ada)).await;
    assert_eq!(status, StatusCode::OK, "{set:?} {cancelled}");
    assert_eq!(cancelled["status"], "CANCELLED");
    assert_eq!(s.stock_room.release_calls().len(), 1);
    assert_eq!(
        s.outbox().await.pop().unwrap().event_type,
        "order.cancelled"
    );
    s.finish().await;
}
