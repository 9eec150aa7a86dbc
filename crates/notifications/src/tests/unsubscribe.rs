use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::Duration;
use herald_events::{Channel, Preferences, Role, UnsubscribeRequested};
use herald_platform::backend_tests;
use herald_platform::smtp_sink::SmtpSink;
use herald_platform::testing::{BackendSet, call, outbox_events};
use serde_json::json;
use tower::ServiceExt;
use uuid::Uuid;

use super::TestService;
use crate::domain::NotificationType;

backend_tests!(
    the_link_in_an_email_unsubscribes_with_one_post,
    forged_expired_and_malformed_links_change_nothing
);

fn token_of(link: &str) -> String {
    link.split_once("token=").unwrap().1.to_owned()
}

/// The unsubscribe requests in the outbox.
async fn requests(s: &TestService) -> Vec<UnsubscribeRequested> {
    outbox_events(&s.db)
        .await
        .iter()
        .filter_map(|e| e.payload::<UnsubscribeRequested>().ok())
        .collect()
}

/// A POST as the page's own button sends it (a form, not a mail client's one-click body).
async fn post_form(s: &TestService, path: &str, form: &str) -> (StatusCode, String) {
    let request = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .unwrap();
    let response = s.router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn the_link_in_an_email_unsubscribes_with_one_post(set: BackendSet) {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let s = TestService::start_with(set, move |settings| settings.smtp_url = Some(url)).await;
    let preferences = Preferences {
        channels: vec![Channel::InApp, Channel::Email],
        ..Preferences::default()
    };
    let ada = s.register_as("Ada", Role::Customer, preferences).await;
    s.notify(ada, NotificationType::Promotion, "Deal").await;
    assert_eq!(s.send_emails().await, 2, "{set:?}");
    let mail = sink.received().pop().unwrap();
    let header = mail.header("List-Unsubscribe").unwrap();
    let link = header.trim_start_matches('<').trim_end_matches('>');
    let path = format!("/unsubscribe?token={}", token_of(link));

    // Following the link shows a button and changes nothing.
    let (status, page) = call(&s.router, Method::GET, &path, None, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let page = page.as_str().unwrap();
    assert!(page.contains("<form method=\"post\">"), "{page}");
    assert!(page.contains("promotions"), "{page}");
    // In the app's look (its stylesheet, served by the gateway).
    assert!(
        page.contains(herald_platform::http::page::STYLESHEET),
        "{page}"
    );
    assert!(requests(&s).await.is_empty());

    // RFC 8058: the mail client's POST, no login.
    let (status, body) = post_form(&s, &path, "List-Unsubscribe=One-Click").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        json!({ "unsubscribed": true, "type": "PROMOTION" })
    );
    assert_eq!(
        requests(&s).await,
        [UnsubscribeRequested {
            user_id: ada,
            notification_type: "PROMOTION".to_owned(),
        }]
    );
    let event = outbox_events(&s.db).await.pop().unwrap();
    assert_eq!(event.event_type, "user.unsubscribe_requested");
    assert_eq!(event.subject, Some(ada.to_string()));
    assert_eq!(event.source, "/herald/notifications");

    // The page's button answers with a page.
    let (status, page) = post_form(&s, &path, "List-Unsubscribe=One-Click&source=page").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("no longer hear about promotions"), "{page}");
    assert_eq!(requests(&s).await.len(), 2);
    s.finish().await;
}

async fn forged_expired_and_malformed_links_change_nothing(set: BackendSet) {
    let s = TestService::start(set).await;
    let ada = Uuid::now_v7();
    let token = token_of(&s.links.link(ada, NotificationType::Inventory).unwrap());
    let (payload, tag) = token.split_once('.').unwrap();
    let mut forged_tag = tag.to_owned();
    let last = if forged_tag.ends_with('A') { "B" } else { "A" };
    forged_tag.replace_range(forged_tag.len() - 1.., last);
    let other = crate::unsubscribe::UnsubscribeLinks::new(
        b"someone else's key",
        "http://localhost:4000",
        s.clock.clone(),
    );
    let foreign = token_of(&other.link(ada, NotificationType::Promotion).unwrap());
    let bad = [
        format!("token={payload}.{forged_tag}"),
        format!("token={foreign}"),
        format!("token={payload}"),
        "token=not-a-token".to_owned(),
        "token=".to_owned(),
        String::new(),
    ];
    for query in &bad {
        let path = format!("/unsubscribe?{query}");
        let (status, body) = call(&s.router, Method::POST, &path, None, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{set:?} {query}: {body}");
        assert_eq!(body["code"], "BAD_USER_INPUT", "{query}");
        let (status, _) = call(&s.router, Method::GET, &path, None, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
    }

    // Genuine, but 30 days old.
    let path = format!("/unsubscribe?token={token}");
    s.clock.advance(Duration::days(30));
    let (status, body) = call(&s.router, Method::POST, &path, None, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["message"], "this unsubscribe link has expired");
    assert!(requests(&s).await.is_empty());

    // The same link a day younger still works.
    s.clock.advance(Duration::days(-1));
    let (status, body) = call(&s.router, Method::POST, &path, None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["type"], "INVENTORY");
    assert_eq!(requests(&s).await.len(), 1);
    s.finish().await;
}
