use chrono::Duration;
use herald_events::{Preferences, Role};
use herald_platform::backend_tests;
use herald_platform::testing::BackendSet;
use uuid::Uuid;

use super::{TestService, draft, utc};
use crate::domain::NotificationType;
use crate::recipients::find_recipient;

backend_tests!(
    promotions_are_capped_per_local_day,
    promotions_decided_together_count_against_each_other
);

fn sent() -> (String, Option<String>) {
    ("SENT".to_owned(), None)
}

fn capped() -> (String, Option<String>) {
    ("SUPPRESSED".to_owned(), Some("FREQUENCY_CAP".to_owned()))
}

fn in_tokyo() -> Preferences {
    Preferences {
        timezone: "Asia/Tokyo".to_owned(),
        ..Preferences::default()
    }
}

async fn promotions_are_capped_per_local_day(set: BackendSet) {
    let s = TestService::start(set).await;
    // 23:00 in Tokyo on 15 June.
    s.clock.set(utc("2026-06-15T14:00:00Z"));
    let ada = s.register_as("Ada", Role::Customer, in_tokyo()).await;
    let bob = s.register_as("Bob", Role::Customer, in_tokyo()).await;
    for i in 1..=3 {
        s.notify(ada, NotificationType::Promotion, &format!("Deal {i}"))
            .await;
    }
    s.clock.advance(Duration::minutes(30));
    s.notify(ada, NotificationType::Promotion, "Deal 4").await;
    assert_eq!(
        s.titles_of(ada, "PROMOTION").await,
        ["Deal 3", "Deal 2", "Deal 1"],
        "{set:?}"
    );
    assert_eq!(
        s.decisions_of(ada, "PROMOTION").await,
        [sent(), sent(), sent(), capped()]
    );
    // Other types and other users are not capped.
    s.notify(ada, NotificationType::Inventory, "Beans are back")
        .await;
    s.notify(bob, NotificationType::Promotion, "Bob's deal")
        .await;
    assert_eq!(s.decisions_of(ada, "INVENTORY").await, [sent()]);
    assert_eq!(s.decisions_of(bob, "PROMOTION").await, [sent()]);

    // 00:05 on 16 June in Tokyo, still 15 June in UTC: a new day.
    s.clock.set(utc("2026-06-15T15:05:00Z"));
    s.notify(ada, NotificationType::Promotion, "Deal 5").await;
    assert_eq!(s.titles_of(ada, "PROMOTION").await[0], "Deal 5");
    assert_eq!(
        s.decisions_of(ada, "PROMOTION").await,
        [sent(), sent(), sent(), capped(), sent()]
    );
    s.finish().await;
}

async fn promotions_decided_together_count_against_each_other(set: BackendSet) {
    let s = TestService::start_with(set, |settings| settings.promotion_daily_cap = 2).await;
    let ada = s
        .register_as("Ada", Role::Customer, Preferences::default())
        .await;
    let stranger = Uuid::now_v7();
    let mut tx = s.db.begin().await.unwrap();
    let recipient = find_recipient(&mut tx, ada).await.unwrap();
    let addressed: Vec<_> = (1..=3)
        .map(|i| {
            (
                recipient.clone(),
                draft(ada, NotificationType::Promotion, &format!("Deal {i}")),
            )
        })
        .chain([(None, draft(stranger, NotificationType::Promotion, "Lost"))])
        .collect();
    let deliveries = s.notifier.deliver_all(&mut tx, &addressed).await.unwrap();
    tx.commit().await.unwrap();
    s.notifier.committed_all(&deliveries).await;
    assert_eq!(
        s.decisions_of(ada, "PROMOTION").await,
        [sent(), sent(), capped()],
        "{set:?}"
    );
    assert_eq!(s.titles_of(ada, "PROMOTION").await, ["Deal 2", "Deal 1"]);
    // The next day at noon (UTC here) the allowance is back.
    s.clock.advance(Duration::days(1));
    s.notify(ada, NotificationType::Promotion, "Deal 4").await;
    assert_eq!(s.titles_of(ada, "PROMOTION").await.len(), 3);
    s.finish().await;
}
