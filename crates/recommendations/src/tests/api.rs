use axum::http::{Method, StatusCode};
use herald_platform::backend_tests;
use herald_platform::testing::BackendSet;
use serde_json::json;
use uuid::Uuid;

use super::TestService;
use crate::store::{SIGNALS_PER_USER, signals_of};

backend_tests!(
    activity_is_recorded_for_known_products_and_well_formed_searches,
    each_user_keeps_only_their_newest_signals,
    the_limit_is_one_to_fifty
);

async fn activity_is_recorded_for_known_products_and_well_formed_searches(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.add_product("Espresso Beans", "coffee", 10).await;
    let ada = Uuid::now_v7();
    let token = s.token(ada);
    for kind in ["VIEW", "CART", "WISHLIST"] {
        let (status, body) = s
            .call(
                Method::POST,
                "/activity",
                Some(&token),
                Some(json!({"type": kind, "productId": beans.id})),
            )
            .await;
        assert_eq!(
            (status, body),
            (StatusCode::OK, json!({"recorded": true})),
            "{set:?}"
        );
    }
    assert_eq!(
        s.act(ada, json!({"type": "SEARCH", "query": "coffee"}))
            .await,
        StatusCode::OK
    );

    let bad = [
        json!({"type": "VIEW"}),
        json!({"type": "VIEW", "productId": "espresso"}),
        json!({"type": "VIEW", "productId": 42}),
        json!({"type": "PURCHASE", "productId": beans.id}),
        json!({"productId": beans.id}),
        json!({"type": "SEARCH"}),
        json!({"type": "SEARCH", "query": ""}),
        json!({"type": "SEARCH", "query": "x".repeat(201)}),
        json!({"type": "CART", "productId": beans.id, "query": "coffee"}),
    ];
    for body in bad {
        let (status, answer) = s
            .call(Method::POST, "/activity", Some(&token), Some(body.clone()))
            .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body} → {answer}"
        );
        assert_eq!(answer["code"], "BAD_USER_INPUT");
    }
    let (status, answer) = s
        .call(
            Method::POST,
            "/activity",
            Some(&token),
            Some(json!({"type": "VIEW", "productId": Uuid::now_v7()})),
        )
        .await;
    assert_eq!(
        (status, &answer["code"]),
        (StatusCode::NOT_FOUND, &json!("NOT_FOUND"))
    );
    let (status, _) = s
        .call(
            Method::POST,
            "/activity",
            None,
            Some(json!({"type": "VIEW", "productId": beans.id})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A search naming no category points at the category of the products it names.
    assert_eq!(
        s.act(ada, json!({"type": "SEARCH", "query": "ESPRESSO"}))
            .await,
        StatusCode::OK
    );
    let signals = signals_of(s.db.pool(), ada).await.unwrap();
    assert_eq!(signals.len(), 5, "only the good ones are kept");
    let searches: Vec<_> = signals.iter().filter(|s| s.query.is_some()).collect();
    assert_eq!(searches.len(), 2);
    assert!(
        searches
            .iter()
            .all(|s| s.category.as_deref() == Some("coffee")),
        "{searches:?}"
    );
    s.finish().await;
}

async fn each_user_keeps_only_their_newest_signals(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.add_product("Espresso Beans", "coffee", 10).await;
    let ada = Uuid::now_v7();
    let activity = crate::activity::Activity::Search {
        query: "first".to_owned(),
    };
    s.advisor.record_activity(ada, &activity).await.unwrap();
    let view = crate::activity::Activity::Product {
        kind: crate::recommender::SignalKind::View,
        product_id: beans.id,
    };
    for _ in 0..SIGNALS_PER_USER {
        s.advisor.record_activity(ada, &view).await.unwrap();
    }
    let kept = signals_of(s.db.pool(), ada).await.unwrap();
    assert_eq!(kept.len() as i64, SIGNALS_PER_USER, "{set:?}");
    assert!(
        kept.iter().all(|s| s.query.is_none()),
        "the oldest went first"
    );
    s.finish().await;
}

async fn the_limit_is_one_to_fifty(set: BackendSet) {
    let s = TestService::start(set).await;
    let token = s.token(Uuid::now_v7());
    for path in [
        "/recommendations?limit=0",
        "/recommendations?limit=51",
        "/recommendations?limit=ten",
    ] {
        let (status, body) = s.call(Method::GET, path, Some(&token), None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
        assert_eq!(body["code"], "BAD_USER_INPUT");
    }
    for path in ["/recommendations", "/recommendations?limit=50"] {
        let (status, body) = s.call(Method::GET, path, Some(&token), None).await;
        assert_eq!(
            (status, body),
            (StatusCode::OK, json!([])),
            "{set:?} {path}"
        );
    }
    let (status, _) = s.call(Method::GET, "/recommendations", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    s.finish().await;
}
