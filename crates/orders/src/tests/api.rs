use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};
use herald_events::{OrderConfirmed, OrderPlaced, OrderStatus, Role};
use herald_platform::backend_tests;
use herald_platform::testing::BackendSet;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{StockRoom, TestService};

backend_tests!(
    a_placed_order_is_confirmed_at_catalog_prices_and_announced,
    a_refused_reservation_passes_through_and_leaves_no_order,
    invalid_orders_are_bad_user_input_and_reserve_nothing,
    mixed_currencies_give_the_stock_back_and_are_bad_user_input,
    an_unreachable_products_service_leaves_the_order_placed_for_reconciliation,
    buyers_read_only_their_own_orders_newest_first_and_admins_any,
    admins_list_every_buyers_orders_at_their_own_route
);

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

async fn a_placed_order_is_confirmed_at_catalog_prices_and_announced(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.stock_room.add("Espresso Beans", 1_250, "EUR", 10);
    let mill = s.stock_room.add("Hand Mill", 4_999, "EUR", 2);
    let ada = Uuid::now_v7();

    // A price sent by the client is not the client's to set.
    let body = json!({ "items": [
        { "productId": beans, "quantity": 3, "unitPriceCents": 1 },
        { "productId": mill, "quantity": 1 },
    ]});
    let (status, order) = s
        .call(
            Method::POST,
            "/orders",
            Some((ada, Role::Customer)),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{set:?} {order}");
    assert_eq!(
        keys(&order),
        [
            "createdAt",
            "currency",
            "id",
            "items",
            "status",
            "totalCents",
            "updatedAt",
            "userId"
        ]
    );
    assert_eq!(
        keys(&order["items"][0]),
        ["productId", "productName", "quantity", "unitPriceCents"]
    );
    assert_eq!(order["status"], "CONFIRMED");
    assert_eq!(order["userId"], ada.to_string());
    assert_eq!(order["totalCents"], 3 * 1_250 + 4_999);
    assert_eq!(order["currency"], "EUR");
    assert_eq!(
        order["items"],
        json!([
            { "productId": beans, "productName": "Espresso Beans", "quantity": 3, "unitPriceCents": 1_250 },
            { "productId": mill, "productName": "Hand Mill", "quantity": 1, "unitPriceCents": 4_999 },
        ])
    );
    let id: Uuid = order["id"].as_str().unwrap().parse().unwrap();
    assert_eq!(id.get_version_num(), 7);
    let created_at: DateTime<Utc> = order["createdAt"].as_str().unwrap().parse().unwrap();

    assert_eq!(
        (s.stock_room.stock(beans), s.stock_room.stock(mill)),
        (7, 1)
    );
    assert_eq!(s.stock_room.reserving_callers(), [ada], "the buyer's token");

    let events = s.outbox().await;
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["order.placed", "order.confirmed"]);
    for event in &events {
        assert_eq!(event.subject.as_deref(), Some(ada.to_string().as_str()));
        assert_eq!(event.source, "/herald/orders");
    }
    let OrderPlaced(placed) = events[0].payload().unwrap();
    let OrderConfirmed(confirmed) = events[1].payload().unwrap();
    assert_eq!(placed.status, OrderStatus::Placed);
    assert_eq!(confirmed.status, OrderStatus::Confirmed);
    for snapshot in [&placed, &confirmed] {
        assert_eq!(snapshot.order_id, id);
        assert_eq!(snapshot.user_id, ada);
        assert_eq!(snapshot.total_cents, 8_749);
        assert_eq!(snapshot.currency, "EUR");
        assert_eq!(snapshot.placed_at, created_at);
        assert_eq!(snapshot.items.len(), 2);
        assert_eq!(snapshot.items[0].product_id, beans);
        assert_eq!(snapshot.items[0].product_name, "Espresso Beans");
        assert_eq!(snapshot.items[0].category, "coffee");
        assert_eq!(snapshot.items[0].quantity, 3);
        assert_eq!(snapshot.items[0].unit_price_cents, 1_250);
    }

    // Later price changes do not touch a placed order.
    s.stock_room.set_price(beans, 9_999);
    let (status, again) = s.get(&format!("/orders/{id}"), ada).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, order);
    assert_eq!(s.get("/orders", ada).await.1, json!([order]));
    s.finish().await;
}

async fn a_refused_reservation_passes_through_and_leaves_no_order(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.stock_room.add("Espresso Beans", 1_250, "EUR", 10);
    let mill = s.stock_room.add("Hand Mill", 4_999, "EUR", 1);
    let ada = Uuid::now_v7();

    let (status, error) = s.place(ada, &[(beans, 2), (mill, 2)]).await;
    assert_eq!(status, StatusCode::CONFLICT, "{set:?} {error}");
    assert_eq!(error["code"], "INSUFFICIENT_STOCK");
    assert!(
        error["message"].as_str().unwrap().contains("Hand Mill"),
        "{error}"
    );

    let unknown = Uuid::now_v7();
    let (status, error) = s.place(ada, &[(beans, 1), (unknown, 1)]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["code"], "NOT_FOUND");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains(&unknown.to_string())
    );

    assert_eq!(s.stored_orders().await, 0);
    assert_eq!(
        (s.stock_room.stock(beans), s.stock_room.stock(mill)),
        (10, 1)
    );
    assert!(s.outbox().await.is_empty());
    assert_eq!(s.get("/orders", ada).await.1, json!([]));

    // What is left can still be ordered.
    let (status, order) = s.place(ada, &[(mill, 1)]).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert_eq!(s.stock_room.stock(mill), 0);
    s.finish().await;
}

async fn invalid_orders_are_bad_user_input_and_reserve_nothing(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.stock_room.add("Espresso Beans", 1_250, "EUR", 10_000);
    let buyer = Uuid::now_v7();
    let ada = Some((buyer, Role::Customer));
    let line = |quantity: Value| json!({ "productId": beans, "quantity": quantity });
    let many = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|_| json!({ "productId": Uuid::now_v7(), "quantity": 1 }))
            .collect()
    };
    let bodies = [
        json!({ "items": [line(json!(0))] }),
        json!({ "items": [line(json!(-1))] }),
        json!({ "items": [line(json!(1_000_000))] }),
        json!({ "items": [line(json!(1001))] }),
        json!({ "items": [line(json!(1.5))] }),
        json!({ "items": [line(json!("3"))] }),
        json!({ "items": [line(json!(1e30))] }),
        json!({ "items": many(101) }),
        json!({ "items": [line(json!(1)), line(json!(2))] }),
        json!({ "items": [{ "productId": "espresso", "quantity": 1 }] }),
        json!({ "items": [] }),
        json!({ "items": null }),
        json!({}),
        json!([]),
    ];
    for body in bodies {
        let (status, error) = s
            .call(Method::POST, "/orders", ada, Some(body.clone()))
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{set:?} {body}: {error}"
        );
        assert_eq!(error["code"], "BAD_USER_INPUT", "{body}");
    }
    assert_eq!(s.stock_room.reservations(), 0);
    assert_eq!(s.stored_orders().await, 0);

    let (status, error) = s
        .call(
            Method::POST,
            "/orders",
            None,
            Some(json!({ "items": [line(json!(1))] })),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error["code"], "UNAUTHENTICATED");

    // The limits themselves are fine.
    let (status, _) = s.place(buyer, &[(beans, 1000)]).await;
    assert_eq!(status, StatusCode::CREATED);
    s.finish().await;
}

async fn mixed_currencies_give_the_stock_back_and_are_bad_user_input(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.stock_room.add("Espresso Beans", 1_250, "EUR", 10);
    let tea = s.stock_room.add("Green Tea", 800, "USD", 10);
    let (status, error) = s.place(Uuid::now_v7(), &[(beans, 2), (tea, 1)]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{set:?} {error}");
    assert_eq!(error["code"], "BAD_USER_INPUT");
    assert_eq!(
        error["message"],
        "all items of an order must share one currency: Espresso Beans is in EUR, Green Tea in USD"
    );
    assert_eq!(s.stock_room.release_calls().len(), 1);
    assert_eq!(
        (s.stock_room.stock(beans), s.stock_room.stock(tea)),
        (10, 10)
    );
    assert_eq!(s.stored_orders().await, 0);
    assert!(s.outbox().await.is_empty());
    s.finish().await;
}

async fn an_unreachable_products_service_leaves_the_order_placed_for_reconciliation(
    set: BackendSet,
) {
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let s = TestService::start_with_products(set, StockRoom::start().await, &closed).await;
    let ada = Uuid::now_v7();
    let (status, error) = s.place(ada, &[(Uuid::now_v7(), 1)]).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{set:?} {error}");
    assert_eq!(
        error,
        json!({ "code": "INTERNAL", "message": "internal error" })
    );

    let stored: Vec<(String, Option<i64>)> =
        sqlx::query_as("SELECT status, total_cents FROM orders")
            .fetch_all(s.db.pool())
            .await
            .unwrap();
    assert_eq!(stored, [("PLACED".to_owned(), None)]);
    assert_eq!(s.get("/orders", ada).await.1, json!([]));
    assert!(s.outbox().await.is_empty());
    s.finish().await;
}

async fn buyers_read_only_their_own_orders_newest_first_and_admins_any(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.stock_room.add("Espresso Beans", 1_250, "EUR", 100);
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let mut placed = Vec::new();
    for quantity in 1..=3 {
        let (status, order) = s.place(ada, &[(beans, quantity)]).await;
        assert_eq!(status, StatusCode::CREATED, "{set:?}");
        placed.push(order);
    }
    let id = placed[0]["id"].as_str().unwrap();

    let (status, error) = s.get(&format!("/orders/{id}"), bob).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["code"], "NOT_FOUND");
    assert_eq!(s.get("/orders", bob).await.1, json!([]));
    let (status, seen) = s.admin_get(&format!("/orders/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen, placed[0]);
    for unknown in [Uuid::now_v7().to_string(), "not-an-id".to_owned()] {
        let (status, error) = s.get(&format!("/orders/{unknown}"), ada).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}");
        assert_eq!(error["code"], "NOT_FOUND");
    }

    let newest_first: Vec<Value> = placed.iter().rev().cloned().collect();
    assert_eq!(s.get("/orders", ada).await.1, json!(newest_first));
    assert_eq!(
        s.get("/orders?first=2", ada).await.1,
        json!(newest_first[..2])
    );
    assert_eq!(s.get("/orders?first=100", ada).await.0, StatusCode::OK);
    for query in ["first=0", "first=101", "first=-1", "first=many"] {
        let (status, error) = s.get(&format!("/orders?{query}"), ada).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(error["code"], "BAD_USER_INPUT");
    }
    let (status, _) = s.call(Method::GET, "/orders", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    s.finish().await;
}

async fn admins_list_every_buyers_orders_at_their_own_route(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.stock_room.add("Espresso Beans", 1_250, "EUR", 100);
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let mut placed = Vec::new();
    for buyer in [ada, bob, ada] {
        let (status, order) = s.place(buyer, &[(beans, 1)]).await;
        assert_eq!(status, StatusCode::CREATED, "{set:?}");
        placed.push(order);
    }
    let id = placed[1]["id"].as_str().unwrap();
    let (status, _) = s
        .set_status(id, "SHIPPED", (Uuid::now_v7(), Role::Admin))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, shipped) = s.admin_get(&format!("/orders/{id}")).await;

    // `all` is no order's id: `/orders/{id}` still answers for the ids it names.
    let newest_first = json!([placed[2], shipped, placed[0]]);
    assert_eq!(
        s.admin_get("/orders/all").await,
        (StatusCode::OK, newest_first.clone())
    );
    assert_eq!(
        s.admin_get("/orders/all?first=2").await.1,
        json!(newest_first.as_array().unwrap()[..2])
    );
    assert_eq!(
        s.admin_get("/orders/all?status=SHIPPED").await.1,
        json!([shipped])
    );
    assert_eq!(
        s.admin_get("/orders/all?first=1&status=CONFIRMED").await.1,
        json!([placed[2]])
    );
    for query in [
        "first=0",
        "first=101",
        "first=many",
        "status=LOST",
        "status=shipped",
    ] {
        let (status, error) = s.admin_get(&format!("/orders/all?{query}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(error["code"], "BAD_USER_INPUT", "{query}");
    }
    // A customer is refused before the query is read, and sees no one's orders.
    for query in ["", "?status=LOST"] {
        let (status, error) = s.get(&format!("/orders/all{query}"), ada).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{query}: {error}");
        assert_eq!(error["code"], "FORBIDDEN");
    }
    let (status, _) = s.call(Method::GET, "/orders/all", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    s.finish().await;
}
