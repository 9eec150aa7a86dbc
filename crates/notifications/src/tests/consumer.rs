use herald_events::{Envelope, Preferences};
use herald_platform::backend_tests;
use herald_platform::bus::HandlerError;
use herald_platform::testing::BackendSet;
use serde_json::json;
use uuid::Uuid;

use super::{TestService, draft, preferences_updated, registered};
use crate::decision::{Decision, SuppressionReason};
use crate::decision_log::decisions_for_user;
use crate::delivery::Delivery;
use crate::domain::{Draft, NotificationType, Recipient};
use crate::recipients::find_recipient;

backend_tests!(
    the_newest_preferences_win_whatever_order_they_arrive_in,
    preferences_that_overtake_the_registration_are_kept_at_once,
    a_new_user_is_welcomed_once_even_when_the_event_comes_twice,
    a_switched_off_type_is_recorded_as_suppressed_and_not_stored,
    a_user_unknown_to_the_service_is_recorded_as_suppressed,
    malformed_payloads_are_rejected_and_foreign_types_ignored,
    early_preferences_never_erase_who_the_user_is
);

async fn recipient(service: &TestService, user_id: Uuid) -> Option<Recipient> {
    let mut tx = service.db.begin().await.unwrap();
    find_recipient(&mut tx, user_id).await.unwrap()
}

fn no_promotions() -> Preferences {
    Preferences {
        promotions: false,
        ..Preferences::default()
    }
}

async fn the_newest_preferences_win_whatever_order_they_arrive_in(set: BackendSet) {
    let s = TestService::start(set).await;
    let (ada, _) = s.register("Ada").await;
    let stored = recipient(&s, ada).await.unwrap();
    assert_eq!(
        (stored.name.as_str(), stored.email.as_str()),
        ("Ada", "ada@example.com")
    );
    assert_eq!(stored.preferences, Preferences::default());

    let newest = Preferences {
        promotions: false,
        categories: vec!["coffee".into()],
        channels: vec![herald_events::Channel::InApp, herald_events::Channel::Email],
        timezone: "Europe/Berlin".into(),
        quiet_hours_start: Some("22:00".into()),
        quiet_hours_end: Some("07:30".into()),
        ..Preferences::default()
    };
    s.handle(&preferences_updated(ada, newest.clone(), 3))
        .await
        .unwrap();
    // Version 2 was overtaken by version 3 on the way.
    s.handle(&preferences_updated(ada, Preferences::default(), 2))
        .await
        .unwrap();
    // A replayed registration carries version 1.
    s.handle(&registered(ada, "Ada", Preferences::default(), 1))
        .await
        .unwrap();

    let stored = recipient(&s, ada).await.unwrap();
    assert_eq!(stored.preferences, newest, "{set:?}");
    assert_eq!(stored.preferences_version, 3);
    s.finish().await;
}

async fn preferences_that_overtake_the_registration_are_kept_at_once(set: BackendSet) {
    let s = TestService::start(set).await;
    let ada = Uuid::now_v7();
    let update = preferences_updated(ada, no_promotions(), 2);
    s.handle(&update).await.unwrap();
    // Decided from now on with the newer preferences, not after a retry delay.
    let early = recipient(&s, ada).await.unwrap();
    assert_eq!(early.preferences_version, 2, "{set:?}");
    assert!(!early.preferences.promotions);

    s.handle(&registered(ada, "Ada", Preferences::default(), 1))
        .await
        .unwrap();
    let stored = recipient(&s, ada).await.unwrap();
    assert_eq!(
        stored.preferences_version, 2,
        "the older registration keeps them"
    );
    assert!(!stored.preferences.promotions);
    assert_eq!(
        (stored.name.as_str(), stored.email.is_empty()),
        ("Ada", false)
    );
    s.finish().await;
}

async fn a_new_user_is_welcomed_once_even_when_the_event_comes_twice(set: BackendSet) {
    let s = TestService::start(set).await;
    let (ada, event) = s.register("Ada").await;
    s.handle(&event).await.unwrap();
    // Even past the inbox, the same draft never makes a second notification.
    let again = s.deliver(&Draft::welcome(event.id, ada, "Ada")).await;
    assert_eq!(again, Delivery::Duplicate);

    let (_, page) = s.get("/notifications", ada).await;
    assert_eq!(page["totalCount"], 1, "{set:?}");
    let welcome = &page["nodes"][0];
    assert_eq!(welcome["title"], "Welcome to Herald, Ada");
    assert_eq!(welcome["type"], "SECURITY");
    assert_eq!(welcome["priority"], "CRITICAL");
    assert_eq!(welcome["data"], json!({ "userId": ada.to_string() }));
    assert_eq!(welcome["read"], false);
    assert!(!welcome["body"].as_str().unwrap().is_empty());
    assert_eq!(decisions_for_user(&s.db, ada).await.unwrap().len(), 1);
    s.finish().await;
}

async fn a_switched_off_type_is_recorded_as_suppressed_and_not_stored(set: BackendSet) {
    let s = TestService::start(set).await;
    let (ada, _) = s.register("Ada").await;
    s.handle(&preferences_updated(ada, no_promotions(), 2))
        .await
        .unwrap();

    let promotion = s
        .deliver(&draft(ada, NotificationType::Promotion, "Beans half price"))
        .await;
    let Delivery::Decided {
        decision,
        notification,
        ..
    } = promotion
    else {
        panic!("a new draft was taken for a duplicate");
    };
    assert_eq!(
        decision,
        Decision::Suppressed {
            reason: SuppressionReason::PreferenceOff
        }
    );
    assert_eq!(notification, None);
    let order = s
        .deliver(&draft(ada, NotificationType::OrderUpdate, "Order shipped"))
        .await;
    assert!(order.notification().is_some(), "{set:?}");

    let (_, page) = s.get("/notifications", ada).await;
    let titles: Vec<&str> = page["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Order shipped", "Welcome to Herald, Ada"]);

    let decisions = decisions_for_user(&s.db, ada).await.unwrap();
    let summary: Vec<(&str, &str, Option<&str>, Vec<String>)> = decisions
        .iter()
        .map(|d| {
            (
                d.notification_type.as_str(),
                d.outcome.as_str(),
                d.reason.as_deref(),
                d.channels.clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("SECURITY", "SENT", None, vec!["IN_APP".to_owned()]),
            ("PROMOTION", "SUPPRESSED", Some("PREFERENCE_OFF"), vec![]),
            ("ORDER_UPDATE", "SENT", None, vec!["IN_APP".to_owned()]),
        ]
    );
    s.finish().await;
}

async fn a_user_unknown_to_the_service_is_recorded_as_suppressed(set: BackendSet) {
    let s = TestService::start(set).await;
    let stranger = Uuid::now_v7();
    let delivery = s
        .deliver(&draft(
            stranger,
            NotificationType::OrderUpdate,
            "Order shipped",
        ))
        .await;
    assert_eq!(delivery.notification(), None, "{set:?}");
    let decisions = decisions_for_user(&s.db, stranger).await.unwrap();
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0].reason.as_deref(), Some("UNKNOWN_RECIPIENT"));
    s.finish().await;
}

async fn malformed_payloads_are_rejected_and_foreign_types_ignored(set: BackendSet) {
    let s = TestService::start(set).await;
    let mut malformed = registered(Uuid::now_v7(), "Ada", Preferences::default(), 1);
    malformed.data = json!({ "userId": "not a uuid" });
    assert!(
        matches!(s.handle(&malformed).await, Err(HandlerError::Reject(_))),
        "{set:?}"
    );
    let mut malformed = preferences_updated(Uuid::now_v7(), Preferences::default(), 2);
    malformed.data = json!({ "preferences": 7 });
    assert!(matches!(
        s.handle(&malformed).await,
        Err(HandlerError::Reject(_))
    ));

    let mut foreign: Envelope = registered(Uuid::now_v7(), "Ada", Preferences::default(), 1);
    foreign.event_type = "product.created".to_owned();
    s.handle(&foreign).await.unwrap();
    s.finish().await;
}

/// Early preferences kept while the registration commits (PostgreSQL runs both at once):
/// the registration's name and address stay, only the newer preferences are taken.
async fn early_preferences_never_erase_who_the_user_is(set: BackendSet) {
    let s = TestService::start(set).await;
    let (ada, _) = s.register("Ada").await;
    let email_too = Preferences {
        channels: vec![herald_events::Channel::InApp, herald_events::Channel::Email],
        ..Preferences::default()
    };
    let mut tx = s.db.begin().await.unwrap();
    crate::recipients::apply_preferences(&mut tx, ada, &email_too, 2)
        .await
        .unwrap();
    let kept = find_recipient(&mut tx, ada).await.unwrap().unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        (kept.name.as_str(), kept.email.as_str()),
        ("Ada", "ada@example.com"),
        "{set:?}"
    );
    assert_eq!(kept.preferences, email_too);
    assert_eq!(kept.preferences_version, 2);
    s.finish().await;
}
