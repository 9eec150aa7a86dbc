use std::time::{Duration, Instant};

use herald::ServiceName;
use herald_test_support::{BackendSet, Session, TestApp, backend_tests, eventually};
use serde_json::{Value, json};

backend_tests!(
    every bus: welcome_notification_arrives_and_read_state_survives_restart,
    notifications_belong_to_their_owner,
    the_total_is_counted_however_it_is_asked,
    a_repeated_poll_is_answered_again_until_the_inbox_changes
);

const NOTIFICATIONS: &str = "query($first: Int, $after: String, $unreadOnly: Boolean) {
  getNotifications(first: $first, after: $after, unreadOnly: $unreadOnly) {
    nodes { id type priority title body data read createdAt readAt }
    pageInfo { hasNextPage endCursor }
    totalCount
  }
}";

async fn notifications(app: &TestApp, who: &Session, unread_only: bool) -> Value {
    let response = app
        .graphql(
            Some(&who.token),
            NOTIFICATIONS,
            json!({ "unreadOnly": unread_only }),
        )
        .await;
    response.data()["getNotifications"].clone()
}

pub(crate) async fn unread_count(app: &TestApp, who: &Session) -> i64 {
    let response = app
        .graphql(
            Some(&who.token),
            "{ getUnreadNotificationsCount }",
            json!({}),
        )
        .await;
    response.data()["getUnreadNotificationsCount"]
        .as_i64()
        .expect("a count")
}

pub(crate) async fn welcome(app: &TestApp, who: &Session) -> Value {
    eventually(
        Duration::from_secs(10),
        "the welcome notification",
        || async {
            let page = notifications(app, who, false).await;
            page["nodes"].as_array().and_then(|n| n.first().cloned())
        },
    )
    .await
}

async fn welcome_notification_arrives_and_read_state_survives_restart(set: BackendSet) {
    let mut app = TestApp::spawn(set).await;
    let started = Instant::now();
    let ada = app.customer("Ada").await;
    let note = welcome(&app, &ada).await;
    eprintln!(
        "[{set:?}] welcome notification visible {:?} after registerUser was sent",
        started.elapsed()
    );

    assert_eq!(note["type"], "SECURITY");
    assert_eq!(note["priority"], "CRITICAL");
    assert_eq!(note["read"], false);
    assert!(note["title"].as_str().unwrap().contains("Ada"), "{note}");
    assert_eq!(note["data"]["userId"], ada.user_id.as_str());
    assert_eq!(unread_count(&app, &ada).await, 1);

    let marked = app
        .graphql(
            Some(&ada.token),
            "mutation($id: ID!) { markNotificationAsRead(id: $id) { id read readAt } }",
            json!({ "id": note["id"] }),
        )
        .await;
    assert_eq!(marked.data()["markNotificationAsRead"]["read"], true);
    assert!(marked.data()["markNotificationAsRead"]["readAt"].is_string());
    assert_eq!(unread_count(&app, &ada).await, 0);
    assert_eq!(notifications(&app, &ada, true).await["totalCount"], 0);

    app.restart().await;
    let login = app
        .login(&ada_email(&app, &ada).await, "correct horse battery")
        .await;
    let ada = Session {
        token: login.data()["loginUser"]["token"]
            .as_str()
            .unwrap()
            .to_owned(),
        ..ada
    };
    let after = notifications(&app, &ada, false).await;
    assert_eq!(
        after["totalCount"], 1,
        "exactly one welcome after restart: {after}"
    );
    assert_eq!(after["nodes"][0]["read"], true);
    assert_eq!(unread_count(&app, &ada).await, 0);
    assert_eq!(
        app.graphql(
            Some(&ada.token),
            "mutation { markAllNotificationsAsRead }",
            json!({})
        )
        .await
        .data()["markAllNotificationsAsRead"],
        0
    );
    app.cleanup().await;
}

async fn ada_email(app: &TestApp, who: &Session) -> String {
    let me = app
        .graphql(Some(&who.token), "{ getUser { email } }", json!({}))
        .await;
    me.data()["getUser"]["email"].as_str().unwrap().to_owned()
}

async fn notifications_belong_to_their_owner(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let alice = app.customer("Alice").await;
    let bob = app.customer("Bob").await;
    let alices = welcome(&app, &alice).await;
    welcome(&app, &bob).await;

    let mark = "mutation($id: ID!) { markNotificationAsRead(id: $id) { id } }";
    let by_bob = app
        .graphql(Some(&bob.token), mark, json!({ "id": alices["id"] }))
        .await;
    assert_eq!(by_bob.error_code(), Some("NOT_FOUND"));
    let unknown = app
        .graphql(Some(&bob.token), mark, json!({ "id": "not-an-id" }))
        .await;
    assert_eq!(unknown.error_code(), Some("NOT_FOUND"));
    assert_eq!(
        unread_count(&app, &alice).await,
        1,
        "Bob's attempt changed nothing"
    );

    let bobs_view = notifications(&app, &bob, false).await;
    assert_eq!(bobs_view["totalCount"], 1);
    assert_ne!(bobs_view["nodes"][0]["id"], alices["id"]);

    let all = app
        .graphql(
            Some(&alice.token),
            "mutation { markAllNotificationsAsRead }",
            json!({}),
        )
        .await;
    assert_eq!(all.data()["markAllNotificationsAsRead"], 1);
    assert_eq!(
        unread_count(&app, &bob).await,
        1,
        "Alice's read-all is hers alone"
    );

    let bad_page = app
        .graphql(Some(&alice.token), NOTIFICATIONS, json!({ "first": 0 }))
        .await;
    assert_eq!(bad_page.error_code(), Some("BAD_USER_INPUT"));
    let bad_cursor = app
        .graphql(
            Some(&alice.token),
            NOTIFICATIONS,
            json!({ "after": "nope" }),
        )
        .await;
    assert_eq!(bad_cursor.error_code(), Some("BAD_USER_INPUT"));
    app.cleanup().await;
}

/// The inbox counts its total only when the query asks for `totalCount`: asked through an
/// alias, a fragment or an inline fragment, it is there; not asked, the page is the same.
async fn the_total_is_counted_however_it_is_asked(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let ada = app.customer("Ada").await;
    // Her welcome, once it has arrived.
    eventually(Duration::from_secs(20), "the welcome", || async {
        (notifications(&app, &ada, false).await["totalCount"] == 1).then_some(())
    })
    .await;
    let asked = [
        "{ getNotifications { totalCount } }",
        "{ getNotifications { n: totalCount } }",
        "{ getNotifications { ...Total } } fragment Total on NotificationConnection { totalCount }",
        "{ getNotifications { ... on NotificationConnection { totalCount } nodes { id } } }",
        "query($t: Boolean!) { getNotifications { totalCount @include(if: $t) } }",
    ];
    for query in asked {
        let answer = app
            .graphql(Some(&ada.token), query, json!({ "t": true }))
            .await;
        let page = &answer.data()["getNotifications"];
        let total = page.get("totalCount").or_else(|| page.get("n"));
        assert_eq!(total, Some(&json!(1)), "[{set:?}] {query}: {page}");
    }
    let unasked = [
        "{ getNotifications { nodes { id title } pageInfo { hasNextPage } } }",
        "query($t: Boolean!) { getNotifications { nodes { id } totalCount @include(if: $t) } }",
    ];
    for query in unasked {
        let answer = app
            .graphql(Some(&ada.token), query, json!({ "t": false }))
            .await;
        let page = &answer.data()["getNotifications"];
        assert_eq!(
            page["nodes"].as_array().map(Vec::len),
            Some(1),
            "[{set:?}] {query}: {page}"
        );
        assert!(
            page.get("totalCount").is_none(),
            "[{set:?}] {query}: {page}"
        );
    }
    app.cleanup().await;
}

/// The inbox's answers are kept for the polls that repeat them, and a change is seen on the
/// very next poll (no waiting).
async fn a_repeated_poll_is_answered_again_until_the_inbox_changes(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let kept = async |outcome: &str| {
        app.metric(
            ServiceName::Gateway,
            "gateway_kept_answers_total",
            &format!("outcome=\"{outcome}\""),
        )
        .await
    };
    let ada = app.customer("Ada").await;
    let bob = app.customer("Bob").await;
    let note = welcome(&app, &ada).await;
    welcome(&app, &bob).await;

    let served = kept("served").await;
    let first = notifications(&app, &ada, false).await;
    assert_eq!(notifications(&app, &ada, false).await, first);
    assert_eq!(unread_count(&app, &ada).await, 1);
    assert_eq!(unread_count(&app, &ada).await, 1);
    assert!(
        kept("served").await >= served + 2.0,
        "repeated polls answered again"
    );
    // The same request from someone else is theirs.
    let bobs = notifications(&app, &bob, false).await;
    assert_ne!(bobs, first);
    assert!(
        bobs["nodes"][0]["title"].as_str().unwrap().contains("Bob"),
        "{bobs}"
    );

    // A query that also asks something else is not kept.
    let kept_before = kept("kept").await;
    let mixed = "{ getUnreadNotificationsCount getUser { id } }";
    for _ in 0..2 {
        app.graphql(Some(&ada.token), mixed, json!({})).await.data();
    }
    assert_eq!(kept("kept").await, kept_before, "a query beyond the inbox");

    // Read: the very next polls say so.
    let changed = kept("changed").await;
    app.graphql(
        Some(&ada.token),
        "mutation($id: ID!) { markNotificationAsRead(id: $id) { id } }",
        json!({ "id": note["id"] }),
    )
    .await
    .data();
    assert_eq!(unread_count(&app, &ada).await, 0);
    let after = notifications(&app, &ada, false).await;
    assert_eq!(after["nodes"][0]["read"], true, "{after}");
    assert!(kept("changed").await >= changed + 2.0);
    assert_eq!(notifications(&app, &ada, false).await, after);
    // Bob's inbox did not change: his answer still holds.
    assert_eq!(notifications(&app, &bob, false).await, bobs);
}
