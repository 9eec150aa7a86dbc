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
use crate::inbox::{InboxApi, InboxOverHttp, ListQuery};

backend_tests!(both_implementations_keep_one_contract);

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
        assert_eq!(inbox.unread_count(&me).await.unwrap(), 3, "{how}");

        // Reading one, then all.
        let read = inbox.mark_read(&me, first.nodes[0].id).await.unwrap();
        assert!(read.read && read.read_at.is_some(), "{how}");
        assert_eq!(inbox.unread_count(&me).await.unwrap(), 2, "{how}");
        assert_eq!(inbox.mark_all_read(&me).await.unwrap(), 2, "{how}");
        assert_eq!(inbox.mark_all_read(&me).await.unwrap(), 0, "{how}");
        assert_eq!(inbox.unread_count(&me).await.unwrap(), 0, "{how}");
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
