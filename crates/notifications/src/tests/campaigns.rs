use chrono::Duration;
use herald_events::{CategoryInterest, Envelope, Preferences, Role};
use herald_platform::backend_tests;
use herald_platform::testing::BackendSet;
use uuid::Uuid;

use super::{TestService, utc};
use crate::campaign::{Campaigns, PromotionInput, Sent};
use crate::domain::NotificationType;

backend_tests!(
    a_promotion_reaches_the_right_users_now_later_or_never,
    scheduled_and_category_promotions,
    two_senders_at_once_notify_each_user_once,
    two_promotions_sent_at_once_respect_the_daily_cap;
    no backend: bad_promotions_are_refused
);

fn campaigns(s: &TestService) -> Campaigns {
    Campaigns {
        // Small batches, so that every test crosses batch boundaries.
        batch_size: 2,
        ..Campaigns::new(s.db.clone(), s.notifier.clone(), s.clock.clone())
    }
}

fn promotion(title: &str, category: Option<&str>) -> PromotionInput {
    PromotionInput {
        title: title.to_owned(),
        body: format!("{title}: 20 % off"),
        category: category.map(str::to_owned),
        send_at: None,
    }
}

fn pair(outcome: &str, reason: Option<&str>) -> (String, Option<String>) {
    (outcome.to_owned(), reason.map(str::to_owned))
}

async fn a_promotion_reaches_the_right_users_now_later_or_never(set: BackendSet) {
    // START is 12:00 UTC; one promotion a day at most.
    let s = TestService::start_with(set, |settings| settings.promotion_daily_cap = 1).await;
    let c = campaigns(&s);
    let ada = s
        .register_as("Ada", Role::Customer, Preferences::default())
        .await;
    let opted_out = Preferences {
        promotions: false,
        ..Preferences::default()
    };
    let bob = s.register_as("Bob", Role::Customer, opted_out).await;
    let quiet = Preferences {
        quiet_hours_start: Some("11:00".to_owned()),
        quiet_hours_end: Some("13:00".to_owned()),
        ..Preferences::default()
    };
    let cleo = s.register_as("Cleo", Role::Customer, quiet).await;
    let dan = s
        .register_as("Dan", Role::Customer, Preferences::default())
        .await;
    s.notify(dan, NotificationType::Promotion, "Earlier deal")
        .await;

    let created = c
        .create(promotion("Spring sale", None), Uuid::now_v7())
        .await
        .unwrap();
    assert_eq!(created.status, "SCHEDULED");
    let sent = c.send_due().await.unwrap();
    assert_eq!(
        sent,
        Sent {
            promotions: 1,
            notifications: 2
        },
        "{set:?}: Ada now, Cleo later"
    );

    assert_eq!(s.titles_of(ada, "PROMOTION").await, ["Spring sale"]);
    assert_eq!(s.decisions_of(ada, "PROMOTION").await, [pair("SENT", None)]);
    assert!(s.titles_of(bob, "PROMOTION").await.is_empty());
    assert!(
        s.decisions_of(bob, "PROMOTION").await.is_empty(),
        "opted out: not even considered"
    );
    assert!(
        s.titles_of(cleo, "PROMOTION").await.is_empty(),
        "quiet hours: not yet"
    );
    assert_eq!(
        s.decisions_of(cleo, "PROMOTION").await,
        [pair("DEFERRED", None)]
    );
    assert_eq!(s.titles_of(dan, "PROMOTION").await, ["Earlier deal"]);
    assert_eq!(
        s.decisions_of(dan, "PROMOTION").await,
        [
            pair("SENT", None),
            pair("SUPPRESSED", Some("FREQUENCY_CAP"))
        ]
    );
    let stored = c.get(created.id).await.unwrap().unwrap();
    assert_eq!((stored.status.as_str(), stored.recipients), ("SENT", 2));

    // Sent once: nothing is due any more; sent again from scratch (a retried job whose
    // progress was lost), nobody hears of it twice.
    assert_eq!(c.send_due().await.unwrap(), Sent::default());
    sqlx::query("UPDATE promotions SET status = 'SCHEDULED', cursor = NULL, recipients = 0")
        .execute(s.db.pool())
        .await
        .unwrap();
    assert_eq!(
        c.send_due().await.unwrap(),
        Sent {
            promotions: 1,
            notifications: 0
        }
    );
    assert_eq!(s.titles_of(ada, "PROMOTION").await, ["Spring sale"]);

    // Cleo's quiet hours end at 13:00 UTC.
    s.clock.set(utc("2026-06-15T13:00:01Z"));
    assert_eq!(s.titles_of(cleo, "PROMOTION").await, ["Spring sale"]);
    assert!(s.titles_of(bob, "PROMOTION").await.is_empty());
    s.finish().await;
}

async fn scheduled_and_category_promotions(set: BackendSet) {
    let s = TestService::start(set).await;
    let c = campaigns(&s);
    let coffee = Preferences {
        categories: vec!["Coffee".to_owned()],
        ..Preferences::default()
    };
    let ada = s.register_as("Ada", Role::Customer, coffee).await;
    let bob = s
        .register_as("Bob", Role::Customer, Preferences::default())
        .await;
    // Cleo prefers nothing, but bought coffee once (the recommendations service says so).
    let cleo = s
        .register_as("Cleo", Role::Customer, Preferences::default())
        .await;
    let interest = CategoryInterest {
        user_id: cleo,
        category: "coffee".to_owned(),
    };
    let noted = Envelope::new("recommendations", Some(cleo.to_string()), &interest);
    s.handle(&noted).await.unwrap();
    s.handle(&noted).await.unwrap();

    let later = PromotionInput {
        send_at: Some(s.clock.now() + Duration::hours(1)),
        ..promotion("Beans week", Some("coffee"))
    };
    let scheduled = c.create(later, Uuid::now_v7()).await.unwrap();
    assert_eq!(
        c.send_due().await.unwrap(),
        Sent::default(),
        "{set:?}: not yet"
    );
    s.clock.advance(Duration::minutes(61));
    assert_eq!(
        c.send_due().await.unwrap(),
        Sent {
            promotions: 1,
            notifications: 2
        }
    );
    assert_eq!(s.titles_of(ada, "PROMOTION").await, ["Beans week"]);
    assert_eq!(s.titles_of(cleo, "PROMOTION").await, ["Beans week"]);
    assert!(
        s.titles_of(bob, "PROMOTION").await.is_empty(),
        "not a coffee person"
    );
    let listed = c.list(10).await.unwrap();
    assert_eq!(listed[0].id, scheduled.id);
    assert_eq!(
        (listed[0].status.as_str(), listed[0].recipients),
        ("SENT", 2)
    );
    s.finish().await;
}

async fn two_senders_at_once_notify_each_user_once(set: BackendSet) {
    let s = TestService::start(set).await;
    let c = campaigns(&s);
    let mut users = Vec::new();
    for i in 0..7 {
        users.push(
            s.register_as(&format!("User{i}"), Role::Customer, Preferences::default())
                .await,
        );
    }
    let p = c
        .create(promotion("Flash sale", None), Uuid::now_v7())
        .await
        .unwrap();
    let other = campaigns(&s);
    let (a, b) = tokio::join!(c.send_due(), other.send_due());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.notifications + b.notifications, 7, "{set:?}: {a:?} {b:?}");
    for user in users {
        assert_eq!(s.titles_of(user, "PROMOTION").await, ["Flash sale"]);
    }
    assert_eq!(c.get(p.id).await.unwrap().unwrap().recipients, 7);
    s.finish().await;
}

async fn two_promotions_sent_at_once_respect_the_daily_cap(set: BackendSet) {
    let s = TestService::start(set).await;
    let c = campaigns(&s);
    let mut users = Vec::new();
    for i in 0..6 {
        let user = s
            .register_as(&format!("User{i}"), Role::Customer, Preferences::default())
            .await;
        // Two of the day's three promotions already received: room for one more.
        for deal in ["Deal 1", "Deal 2"] {
            s.notify(user, NotificationType::Promotion, deal).await;
        }
        users.push(user);
    }
    c.create(promotion("Flash sale", None), Uuid::now_v7())
        .await
        .unwrap();
    c.create(promotion("Weekend sale", None), Uuid::now_v7())
        .await
        .unwrap();
    let (other, third) = (campaigns(&s), campaigns(&s));
    let (a, b, d) = tokio::join!(c.send_due(), other.send_due(), third.send_due());
    let sent = [a.unwrap(), b.unwrap(), d.unwrap()];
    assert_eq!(
        sent.iter().map(|s| s.promotions).sum::<usize>(),
        2,
        "{set:?}: {sent:?}"
    );
    for user in users {
        let titles = s.titles_of(user, "PROMOTION").await;
        assert_eq!(titles.len(), 3, "{set:?}: {titles:?}");
        let mut decisions = s.decisions_of(user, "PROMOTION").await;
        decisions.sort();
        assert_eq!(
            decisions,
            [
                pair("SENT", None),
                pair("SENT", None),
                pair("SENT", None),
                pair("SUPPRESSED", Some("FREQUENCY_CAP"))
            ],
            "{set:?}"
        );
    }
    s.finish().await;
}

async fn bad_promotions_are_refused() {
    let s = TestService::start(herald_platform::testing::BackendSet::Embedded).await;
    let c = campaigns(&s);
    for (input, says) in [
        (promotion("  ", None), "title"),
        (
            PromotionInput {
                body: String::new(),
                ..promotion("Sale", None)
            },
            "body",
        ),
        (promotion("Sale", Some(" ")), "category"),
        (
            PromotionInput {
                send_at: Some(s.clock.now() + Duration::days(400)),
                ..promotion("Sale", None)
            },
            "sendAt",
        ),
    ] {
        let err = c.create(input, Uuid::now_v7()).await.unwrap_err();
        assert_eq!(err.code(), herald_platform::ErrorCode::BadUserInput);
        assert!(err.to_string().contains(says), "{err}");
    }
    assert!(c.list(10).await.unwrap().is_empty());
    s.finish().await;
}
