//! What buyers do through the API: watch products, and (through the orders service)
//! reserve and release stock.

use axum::http::{Method, StatusCode};
use herald_events::{Event, ProductWatched, Role};
use herald_platform::backend_tests;
use herald_platform::testing::BackendSet;
use serde_json::json;
use uuid::Uuid;

use super::TestService;
use super::api::beans;

backend_tests!(
    watching_is_idempotent_and_announced_once,
    reservations_over_http_answer_prices_and_stable_errors
);

async fn watching_is_idempotent_and_announced_once(set: BackendSet) {
    let s = TestService::start(set).await;
    let product = s.create(beans()).await;
    let id = product["id"].as_str().unwrap();
    let ada = Uuid::now_v7();
    let token = s.token(ada, Role::Customer);
    let before = s.events().await.len();
    let path = format!("/products/{id}/watch");
    for _ in 0..2 {
        let (status, body) = s.call(Method::POST, &path, Some(&token), None).await;
        assert_eq!(status, StatusCode::OK, "{set:?} {body}");
        assert_eq!(body, json!({"watching": true}));
    }
    let events: Vec<_> = s.events().await.into_iter().skip(before).collect();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, ProductWatched::TYPE);
    let watched: ProductWatched = events[0].payload().unwrap();
    assert_eq!(watched.user_id, ada);

    let (status, error) = s
        .call(
            Method::POST,
            &format!("/products/{}/watch", Uuid::now_v7()),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(
        (status, error["code"].clone()),
        (StatusCode::NOT_FOUND, json!("NOT_FOUND"))
    );
    assert_eq!(
        s.call(Method::POST, &path, None, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    s.finish().await;
}

async fn reservations_over_http_answer_prices_and_stable_errors(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.create(beans()).await;
    let beans_id = beans["id"].as_str().unwrap();
    let buyer = s.orders_for_a_customer();
    let order_id = Uuid::now_v7().to_string();
    let request = json!({"orderId": order_id, "items": [{"productId": beans_id, "quantity": 3}]});

    let (status, reserved) = s
        .call(
            Method::POST,
            "/reservations",
            Some(&buyer),
            Some(request.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{set:?} {reserved}");
    assert_eq!(
        reserved,
        json!({"orderId": order_id, "items": [{
            "productId": beans_id, "name": "Espresso Beans", "category": "coffee",
            "quantity": 3, "unitPriceCents": 1299, "currency": "EUR"
        }]})
    );
    let (status, again) = s
        .call(Method::POST, "/reservations", Some(&buyer), Some(request))
        .await;
    assert_eq!((status, &again), (StatusCode::OK, &reserved));
    assert_eq!(s.get(&format!("/products/{beans_id}")).await.1["stock"], 7);

    let short =
        json!({"orderId": Uuid::now_v7(), "items": [{"productId": beans_id, "quantity": 8}]});
    let (status, error) = s
        .call(Method::POST, "/reservations", Some(&buyer), Some(short))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        error,
        json!({"code": "INSUFFICIENT_STOCK", "message": "not enough stock for Espresso Beans (7 left)"})
    );
    let unknown =
        json!({"orderId": Uuid::now_v7(), "items": [{"productId": Uuid::now_v7(), "quantity": 1}]});
    let (status, error) = s
        .call(Method::POST, "/reservations", Some(&buyer), Some(unknown))
        .await;
    assert_eq!(
        (status, error["code"].clone()),
        (StatusCode::NOT_FOUND, json!("NOT_FOUND"))
    );

    let line = |quantity: i64| json!({"productId": beans_id, "quantity": quantity});
    for items in [
        json!([]),
        json!([line(0)]),
        json!([line(-1)]),
        json!([line(1), line(2)]),
    ] {
        let body = json!({"orderId": Uuid::now_v7(), "items": items});
        let (status, error) = s
            .call(Method::POST, "/reservations", Some(&buyer), Some(body))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{items}");
        assert_eq!(error["code"], "BAD_USER_INPUT");
    }
    let body = json!({"orderId": "order-1", "items": [line(1)]});
    assert_eq!(
        s.call(Method::POST, "/reservations", Some(&buyer), Some(body))
            .await
            .0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(s.get(&format!("/products/{beans_id}")).await.1["stock"], 7);
    // Only the orders service reserves: the gateway's call for a customer, or an
    // admin, is FORBIDDEN; no credential is UNAUTHORIZED; a user's own token FORBIDDEN.
    let body = json!({"orderId": Uuid::now_v7(), "items": [line(1)]});
    let own = s.key.user_token(Uuid::now_v7(), Role::Customer);
    for (token, expected) in [
        (Some(s.customer()), StatusCode::FORBIDDEN),
        (Some(s.admin()), StatusCode::FORBIDDEN),
        (Some(own), StatusCode::FORBIDDEN),
        (
            Some(s.key.from_service("orders", None)),
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        let (status, answer) = s
            .call(
                Method::POST,
                "/reservations",
                token.as_deref(),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, expected, "{answer}");
    }
    assert_eq!(
        s.call_bare(Method::POST, "/reservations").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(s.get(&format!("/products/{beans_id}")).await.1["stock"], 7);

    let release = format!("/reservations/{order_id}/release");
    let (status, released) = s.call(Method::POST, &release, Some(&buyer), None).await;
    assert_eq!(
        (status, released),
        (StatusCode::OK, json!({"released": true}))
    );
    let (status, released) = s.call(Method::POST, &release, Some(&buyer), None).await;
    assert_eq!(
        (status, released),
        (StatusCode::OK, json!({"released": false}))
    );
    assert_eq!(s.get(&format!("/products/{beans_id}")).await.1["stock"], 10);
    let (status, error) = s
        .call(
            Method::POST,
            "/reservations/nope/release",
            Some(&buyer),
            None,
        )
        .await;
    assert_eq!(
        (status, error["code"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("BAD_USER_INPUT"))
    );
    // Releases are the orders service's too: the customer's own order, asked through
    // the gateway, is FORBIDDEN (the order stays what it is; only orders releases).
    assert_eq!(
        s.call(Method::POST, &release, None, None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        s.call_bare(Method::POST, &release).await.0,
        StatusCode::UNAUTHORIZED
    );
    s.finish().await;
}
