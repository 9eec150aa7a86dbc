use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};
use herald_platform::backend_tests;
use herald_platform::testing::{BackendSet, call};
use serde_json::Value;
use uuid::Uuid;

use super::TestService;
use crate::domain::NotificationType;

backend_tests!(
    notifications_are_listed_newest_first_page_by_page,
    unread_only_lists_and_counts_the_unread,
    bad_paging_is_bad_user_input_and_a_token_is_required,
    only_the_owner_can_read_a_notification_and_reading_is_idempotent,
    read_all_reports_how_many_changed_for_the_caller_only,
    the_unread_count_follows_new_and_read_notifications
);

fn titles(page: &Value) -> Vec<String> {
    page["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["title"].as_str().unwrap().to_owned())
        .collect()
}

/// Ada with her welcome and four order updates, the newest last.
async fn ada_with_five(s: &TestService) -> Uuid {
    let (ada, _) = s.register("Ada").await;
    for i in 1..=4 {
        s.notify(ada, NotificationType::OrderUpdate, &format!("Order {i}"))
            .await;
    }
    ada
}

async fn notifications_are_listed_newest_first_page_by_page(set: BackendSet) {
    let s = TestService::start(set).await;
    let ada = ada_with_five(&s).await;

    let (status, all) = s.get("/notifications", ada).await;
    assert_eq!(status, StatusCode::OK, "{set:?}");
    assert_eq!(
        titles(&all),
        [
            "Order 4",
            "Order 3",
            "Order 2",
            "Order 1",
            "Welcome to Herald, Ada"
        ]
    );
    assert_eq!(all["totalCount"], 5);
    assert_eq!(all["pageInfo"]["hasNextPage"], false);

    let node = &all["nodes"][0];
    let mut keys: Vec<&str> = node
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "body",
            "createdAt",
            "data",
            "id",
            "priority",
            "read",
            "readAt",
            "title",
            "type",
            "userId"
        ]
    );
    assert_eq!(node["type"], "ORDER_UPDATE");
    assert_eq!(node["priority"], "CRITICAL");
    assert_eq!(node["body"], "Order 4, in detail");
    assert_eq!(node["data"]["orderId"], "o-1");
    assert_eq!(node["readAt"], Value::Null);
    assert_eq!(node["userId"], ada.to_string());
    node["createdAt"]
        .as_str()
        .unwrap()
        .parse::<DateTime<Utc>>()
        .unwrap();

    let mut seen = Vec::new();
    let mut path = "/notifications?first=2".to_owned();
    loop {
        let (status, page) = s.get(&path, ada).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(page["totalCount"], 5);
        let more = page["pageInfo"]["hasNextPage"].as_bool().unwrap();
        let cursor = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
        assert_eq!(
            cursor.as_deref(),
            page["nodes"]
                .as_array()
                .unwrap()
                .last()
                .map(|n| n["id"].as_str().unwrap())
        );
        seen.push(titles(&page));
        if !more {
            break;
        }
        path = format!("/notifications?first=2&after={}", cursor.unwrap());
    }
    assert_eq!(
        seen,
        [
            vec!["Order 4", "Order 3"],
            vec!["Order 2", "Order 1"],
            vec!["Welcome to Herald, Ada"]
        ]
    );

    // Past the oldest: an empty page without a cursor.
    let oldest = all["nodes"][4]["id"].as_str().unwrap();
    let (_, past) = s.get(&format!("/notifications?after={oldest}"), ada).await;
    assert_eq!(titles(&past), Vec::<String>::new());
    assert_eq!(past["pageInfo"]["endCursor"], Value::Null);
    assert_eq!(past["pageInfo"]["hasNextPage"], false);
    s.finish().await;
}

async fn unread_only_lists_and_counts_the_unread(set: BackendSet) {
    let s = TestService::start(set).await;
    let ada = ada_with_five(&s).await;
    let (_, all) = s.get("/notifications", ada).await;
    for i in [0, 2] {
        let id = all["nodes"][i]["id"].as_str().unwrap();
        assert_eq!(
            s.post(&format!("/notifications/{id}/read"), ada).await.0,
            StatusCode::OK
        );
    }

    let (_, unread) = s.get("/notifications?unreadOnly=true&first=2", ada).await;
    assert_eq!(titles(&unread), ["Order 3", "Order 1"], "{set:?}");
    assert_eq!(unread["totalCount"], 3);
    assert_eq!(unread["pageInfo"]["hasNextPage"], true);
    let cursor = unread["pageInfo"]["endCursor"].as_str().unwrap();
    let (_, rest) = s
        .get(
            &format!("/notifications?unreadOnly=true&first=2&after={cursor}"),
            ada,
        )
        .await;
    assert_eq!(titles(&rest), ["Welcome to Herald, Ada"]);
    assert_eq!(rest["pageInfo"]["hasNextPage"], false);

    let (_, everything) = s.get("/notifications?unreadOnly=false", ada).await;
    assert_eq!(everything["totalCount"], 5);
    assert_eq!(everything["nodes"][0]["read"], true);
    s.finish().await;
}

async fn bad_paging_is_bad_user_input_and_a_token_is_required(set: BackendSet) {
    let s = TestService::start(set).await;
    let (ada, _) = s.register("Ada").await;
    for query in [
        "first=0",
        "first=101",
        "first=-3",
        "first=many",
        "after=not-a-cursor",
        "unreadOnly=perhaps",
    ] {
        let (status, body) = s.get(&format!("/notifications?{query}"), ada).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{set:?} {query}");
        assert_eq!(body["code"], "BAD_USER_INPUT", "{query}");
    }
    assert_eq!(
        s.get("/notifications?first=100", ada).await.0,
        StatusCode::OK
    );

    for (method, path) in [
        (Method::GET, "/notifications"),
        (Method::GET, "/notifications/unread-count"),
        (Method::POST, "/notifications/read-all"),
    ] {
        let (status, body) = call(&s.router, method.clone(), path, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body["code"], "UNAUTHENTICATED");
        let (status, _) = call(&s.router, method, path, Some("forged.token.here"), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    s.finish().await;
}

async fn only_the_owner_can_read_a_notification_and_reading_is_idempotent(set: BackendSet) {
    let s = TestService::start(set).await;
    let (ada, _) = s.register("Ada").await;
    let (bob, _) = s.register("Bob").await;
    let (_, adas) = s.get("/notifications", ada).await;
    let id = adas["nodes"][0]["id"].as_str().unwrap().to_owned();

    for path in [
        format!("/notifications/{id}/read"),
        format!("/notifications/{}/read", Uuid::now_v7()),
        "/notifications/not-an-id/read".to_owned(),
    ] {
        let (status, body) = s.post(&path, bob).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{set:?} {path}");
        assert_eq!(body["code"], "NOT_FOUND");
    }
    let (_, bobs) = s.get("/notifications", bob).await;
    assert_eq!(titles(&bobs), ["Welcome to Herald, Bob"]);
    let (_, adas) = s.get("/notifications", ada).await;
    assert_eq!(
        adas["nodes"][0]["read"], false,
        "Bob's attempt left Ada's unread"
    );

    let (status, read) = s.post(&format!("/notifications/{id}/read"), ada).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read["id"], id);
    assert_eq!(read["read"], true);
    let read_at = read["readAt"]
        .as_str()
        .unwrap()
        .parse::<DateTime<Utc>>()
        .unwrap();
    let (status, again) = s.post(&format!("/notifications/{id}/read"), ada).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        again["readAt"]
            .as_str()
            .unwrap()
            .parse::<DateTime<Utc>>()
            .unwrap(),
        read_at
    );
    s.finish().await;
}

async fn read_all_reports_how_many_changed_for_the_caller_only(set: BackendSet) {
    let s = TestService::start(set).await;
    let ada = ada_with_five(&s).await;
    let (bob, _) = s.register("Bob").await;
    let (_, page) = s.get("/notifications", ada).await;
    let id = page["nodes"][1]["id"].as_str().unwrap();
    s.post(&format!("/notifications/{id}/read"), ada).await;

    let (status, body) = s.post("/notifications/read-all", ada).await;
    assert_eq!(status, StatusCode::OK, "{set:?}");
    assert_eq!(body, serde_json::json!({ "changed": 4 }));
    assert_eq!(s.post("/notifications/read-all", ada).await.1["changed"], 0);
    let (_, unread) = s.get("/notifications?unreadOnly=true", ada).await;
    assert_eq!(unread["totalCount"], 0);
    let (_, bobs) = s.get("/notifications?unreadOnly=true", bob).await;
    assert_eq!(bobs["totalCount"], 1);
    s.finish().await;
}

async fn the_unread_count_follows_new_and_read_notifications(set: BackendSet) {
    let s = TestService::start(set).await;
    let (ada, _) = s.register("Ada").await;
    let count = |body: Value| body["count"].as_i64().unwrap();
    let unread = || async { count(s.get("/notifications/unread-count", ada).await.1) };

    assert_eq!(unread().await, 1, "{set:?}");
    // Served from the cache this time; still right.
    assert_eq!(unread().await, 1);
    s.notify(ada, NotificationType::OrderUpdate, "Order shipped")
        .await;
    assert_eq!(unread().await, 2);
    let (_, page) = s.get("/notifications", ada).await;
    let newest = page["nodes"][0]["id"].as_str().unwrap();
    s.post(&format!("/notifications/{newest}/read"), ada).await;
    assert_eq!(unread().await, 1);
    s.notify(ada, NotificationType::Recommendation, "You may like")
        .await;
    s.notify(ada, NotificationType::Promotion, "Beans half price")
        .await;
    assert_eq!(unread().await, 3);
    s.post("/notifications/read-all", ada).await;
    assert_eq!(unread().await, 0);
    let (bob, _) = s.register("Bob").await;
    assert_eq!(count(s.get("/notifications/unread-count", bob).await.1), 1);
    s.finish().await;
}
