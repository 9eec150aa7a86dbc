//! One contract, two implementations: the inbox called in process and the inbox called
//! over HTTP (with a service credential) answer every operation alike, errors included.

use std::sync::Arc;

use herald_events::Role;
use herald_platform::ErrorCode;
use herald_platform::auth::Claims;
use herald_platform::backend_tests;
use herald_platform::testing::BackendSet;
use herald_platform::testing::serve_on_loopback;
use uuid::Uuid;

use super::TestService;
use crate::domain::NotificationType;
use crate::inbox::{Inbox, InboxApi, InboxOverHttp, ListQuery};

backend_tests!(
    both_implementations_keep_one_contract,
    a_kept_first_page_is_never_served_after_a_change_on_any_replica
);

/// The service's inbox directly, and the same service's routes on a loopback port.
async fn implementations(s: &TestService) -> Vec<(&'static str, Arc<dyn InboxApi>)> {
    let client = serve_on_loopback(
        s.router.clone(),
        &s.key.service_key,
        "gateway",
        "notifications",
    )
    .await;
    vec![
        ("in process", Arc::new(s.inbox.clone())),
        ("over HTTP", Arc::new(InboxOverHttp::new(client))),
    ]
}

fn acting(s: &TestService, user: Uuid) -> Claims {
    s.key.claims(user, Role::Customer)
}

fn page(first: Option<i64>, after: Option<String>, unread_only: bool) -> ListQuery {
    ListQuery {
        first,
        after,
        unread_only: Some(unread_only),
        without_total: false,
    }
}

async fn both_implementations_keep_one_contract(set: BackendSet) {
    let s = TestService::start(set).await;
    for (how, inbox) in implementations(&s).await {
        let (ada, _) = s.register("Ada").await;
        let me = acting(&s, ada);
        // Start from an empty inbox (registering brings a welcome).
        inbox.mark_all_read(&me).await.unwrap();
        let welcome = inbox.list(&me, &page(None, None, false)).await.unwrap();
        for title in ["one", "two", "three"] {
            s.notify(ada, NotificationType::OrderUpdate, title).await;
        }
        let total = welcome.total_count.unwrap() + 3;

        // Pages, newest first, with the total.
        let first = inbox.list(&me, &page(Some(2), None, true)).await.unwrap();
        assert_eq!(first.total_count, Some(3), "{how}");
        assert_eq!(first.nodes.len(), 2, "{how}");
        assert_eq!(first.nodes[0].title, "three", "{how}");
        assert!(first.page_info.has_next_page, "{how}");
        let rest = inbox
            .list(
                &me,
                &page(Some(2), first.page_info.end_cursor.clone(), true),
            )
            .await
            .unwrap();
        assert_eq!(rest.nodes.len(), 1, "{how}");
        assert_eq!(rest.total_count, Some(3), "{how}");
        assert!(!rest.page_info.has_next_page, "{how}");
        // Past the last page: no rows, and still the total.
        let past = inbox
            .list(&me, &page(Some(2), rest.page_info.end_cursor.clone(), true))
            .await
            .unwrap();
        assert!(past.nodes.is_empty(), "{how}");
        assert_eq!(past.total_count, Some(3), "{how}");
        // The total left out when not asked for; the page is the same.
        let without = ListQuery {
            without_total: true,
            ..page(Some(2), None, true)
        };
        let without = inbox.list(&me, &without).await.unwrap();
        assert_eq!(without.total_count, None, "{how}");
        assert_eq!(without.nodes, first.nodes, "{how}");
        let all = inbox.list(&me, &page(None, None, false)).await.unwrap();
        assert_eq!(all.total_count, Some(total), "{how}");
        assert_eq!(inbox.unread_count(&me).await.unwrap().count, 3, "{how}");

        // A first page and a count carry what they were read under, which holds until the
        // inbox changes; a page further on carries none.
        let version = first.version.expect("a first page's version");
        assert_eq!(
            inbox.unread_count(&me).await.unwrap().version,
            Some(version),
            "{how}"
        );
        assert_eq!(rest.version, None, "{how}");
        assert!(inbox.unchanged_since(&me, &version).await.unwrap(), "{how}");
        let other_user = acting(&s, Uuid::now_v7());
        assert!(
            !inbox.unchanged_since(&other_user, &version).await.unwrap(),
            "{how}"
        );

        // Reading one, then all.
        let read = inbox.mark_read(&me, first.nodes[0].id).await.unwrap();
        assert!(
            !inbox.unchanged_since(&me, &version).await.unwrap(),
            "{how}"
        );
        assert!(read.read && read.read_at.is_some(), "{how}");
        assert_eq!(inbox.unread_count(&me).await.unwrap().count, 2, "{how}");
        assert_eq!(inbox.mark_all_read(&me).await.unwrap(), 2, "{how}");
        assert_eq!(inbox.mark_all_read(&me).await.unwrap(), 0, "{how}");
        assert_eq!(inbox.unread_count(&me).await.unwrap().count, 0, "{how}");
        let unread = inbox.list(&me, &page(None, None, true)).await.unwrap();
        assert_eq!(unread.total_count, Some(0), "{how}");

        // Someone else's notification, or none, is NOT_FOUND; bad pages BAD_USER_INPUT.
        let bob = acting(&s, Uuid::now_v7());
        for id in [first.nodes[1].id, Uuid::now_v7()] {
            let error = inbox.mark_read(&bob, id).await.unwrap_err();
            assert_eq!(error.code(), ErrorCode::NotFound, "{how}: {error}");
        }
        assert_eq!(
            inbox
                .list(&bob, &page(None, None, false))
                .await
                .unwrap()
                .total_count,
            Some(0),
            "{how}"
        );
        for bad in [
            page(Some(0), None, false),
            page(Some(1000), None, false),
            page(None, Some("not a cursor".to_owned()), false),
        ] {
            let error = inbox.list(&me, &bad).await.unwrap_err();
            assert_eq!(error.code(), ErrorCode::BadUserInput, "{how}: {error}");
        }
    }
    s.finish().await;
}

/// Two replicas of the service (their own kept pages, one storage, one cache): whatever one
/// changes, the other's next read shows.
async fn a_kept_first_page_is_never_served_after_a_change_on_any_replica(set: BackendSet) {
    let s = TestService::start(set).await;
    let replica = Inbox::new(s.db.clone(), s.unread.clone(), s.clock.clone());
    let (ada, _) = s.register("Ada").await;
    let me = acting(&s, ada);
    s.notify(ada, NotificationType::OrderUpdate, "Order shipped")
        .await;
    let titles = |page: &crate::inbox::NotificationPage| {
        page.nodes
            .iter()
            .map(|n| (n.title.clone(), n.read))
            .collect::<Vec<_>>()
    };
    let first = replica.list(&me, &page(None, None, false)).await.unwrap();
    assert_eq!(first.nodes.len(), 2, "{set:?}");
    assert_eq!(first.nodes[0].title, "Order shipped");

    // A change nobody announced (written straight to storage) is not seen: the page is
    // kept, and polls cost no statement.
    sqlx::query("UPDATE notifications SET title = 'Order delivered' WHERE user_id = $1 AND type = 'ORDER_UPDATE'")
        .bind(ada.to_string())
        .execute(s.db.pool())
        .await
        .unwrap();
    let again = replica.list(&me, &page(None, None, false)).await.unwrap();
    assert_eq!(again, first, "{set:?}: kept");
    // Not for another page, size, filter or user.
    let other = replica
        .list(&me, &page(Some(5), None, false))
        .await
        .unwrap();
    assert_eq!(other.nodes[0].title, "Order delivered", "{set:?}");

    // Marking read on the other replica: this one shows it (and the quiet change) at once.
    s.inbox.mark_read(&me, first.nodes[0].id).await.unwrap();
    let after_read = replica.list(&me, &page(None, None, false)).await.unwrap();
    assert_eq!(
        titles(&after_read),
        [
            ("Order delivered".to_owned(), true),
            (first.nodes[1].title.clone(), false)
        ],
        "{set:?}"
    );

    // A new notification, then all read, each seen on the next poll.
    let unread_first = replica.list(&me, &page(None, None, true)).await.unwrap();
    assert_eq!(unread_first.total_count, Some(1), "{set:?}");
    s.notify(ada, NotificationType::Promotion, "Beans, half price")
        .await;
    let arrived = replica.list(&me, &page(None, None, true)).await.unwrap();
    assert_eq!(arrived.total_count, Some(2), "{set:?}");
    assert_eq!(arrived.nodes[0].title, "Beans, half price", "{set:?}");
    s.inbox.mark_all_read(&me).await.unwrap();
    let none = replica.list(&me, &page(None, None, true)).await.unwrap();
    assert!(none.nodes.is_empty(), "{set:?}");
    assert_eq!(none.total_count, Some(0), "{set:?}");
    let all = replica.list(&me, &page(None, None, false)).await.unwrap();
    assert!(all.nodes.iter().all(|n| n.read), "{set:?}");
    assert_eq!(all.total_count, Some(3), "{set:?}");
    s.finish().await;
}
