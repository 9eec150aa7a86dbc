use chrono::Duration;
use herald_events::{Channel, Event, OrderStatus, Preferences, Role};
use herald_platform::backend_tests;
use herald_platform::bus::EventHandler;
use herald_platform::deadletters::DeadLetters;
use herald_platform::smtp_sink::{ReceivedMail, SmtpSink};
use herald_platform::testing::BackendSet;
use uuid::Uuid;

use super::orders::{order_event, order_of};
use super::{TestService, preferences_updated, utc};
use crate::decision_log::deliveries_for_user;
use crate::domain::NotificationType;
use crate::email::store::{attempts_for, emails_for_user};
use crate::email::worker::{EMAIL_QUEUE, EmailReplays, EmailUndeliverable};

backend_tests!(
    a_user_who_accepts_email_gets_one_for_each_notification,
    only_users_who_accept_email_get_one_and_email_alone_works,
    without_an_smtp_server_each_email_is_a_file_in_the_mailbox,
    an_email_of_a_deferred_notification_goes_out_when_quiet_hours_end,
    while_smtp_is_down_an_email_is_retried_and_sent_exactly_once,
    after_the_last_attempt_an_email_is_failed_and_dead_lettered_until_replayed,
    an_email_switched_off_before_it_goes_out_is_suppressed_not_sent,
    critical_email_goes_out_before_the_standard_ones
);

fn by_email() -> Preferences {
    Preferences {
        channels: vec![Channel::InApp, Channel::Email],
        ..Preferences::default()
    }
}

async fn with_sink(set: herald_platform::testing::BackendSet, sink: &SmtpSink) -> TestService {
    let url = sink.url();
    TestService::start_with(set, move |settings| {
        settings.smtp_url = Some(url);
        settings.bus_max_attempts = 3;
        settings.bus_retry_delay_ms = 60_000;
    })
    .await
}

/// Registers Ada with both channels and sends her welcome email.
async fn ada_by_email(s: &TestService, sink: &SmtpSink) -> Uuid {
    let ada = s.register_as("Ada", Role::Customer, by_email()).await;
    assert_eq!(s.send_emails().await, 1, "the welcome");
    assert_eq!(sink.received().len(), 1);
    ada
}

fn statuses(attempts: &[crate::email::store::AttemptRecord]) -> Vec<&str> {
    attempts.iter().map(|a| a.status.as_str()).collect()
}

fn assert_one_click_unsubscribe(mail: &ReceivedMail) {
    let link = mail
        .header("List-Unsubscribe")
        .expect("a List-Unsubscribe header");
    assert!(
        link.starts_with("<http://localhost:4000/unsubscribe?token=") && link.ends_with('>'),
        "{link}"
    );
    assert_eq!(
        mail.header("List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
}

async fn a_user_who_accepts_email_gets_one_for_each_notification(set: BackendSet) {
    let sink = SmtpSink::start().await;
    let s = with_sink(set, &sink).await;
    let ada = ada_by_email(&s, &sink).await;
    let welcome = &sink.received()[0];
    assert_eq!(welcome.to, ["ada@example.com"], "{set:?}");
    assert_eq!(
        welcome.header("Subject").as_deref(),
        Some("Welcome to Herald, Ada")
    );
    // Security mail cannot be switched off: no unsubscribe link.
    assert_eq!(welcome.header("List-Unsubscribe"), None);
    assert_eq!(welcome.header("List-Unsubscribe-Post"), None);

    let order = order_of(ada);
    let shipped = order_event(OrderStatus::Shipped, &order);
    s.handle(&shipped).await.unwrap();
    s.handle(&shipped).await.unwrap();
    assert_eq!(s.send_emails().await, 1);
    assert_eq!(s.send_emails().await, 0);
    let mail = sink.received().pop().unwrap();
    let number = order.order_id.simple().to_string()[24..].to_uppercase();
    assert_eq!(
        mail.header("Subject"),
        Some(format!("Your order #{number} has shipped"))
    );
    assert!(mail.data.contains("multipart/alternative"), "{}", mail.data);
    assert!(mail.data.contains("text/plain"));
    assert!(mail.data.contains("text/html"));
    assert!(mail.data.contains("Hello Ada,"), "{}", mail.data);
    assert!(mail.data.contains("3 items, 42.50 USD"));
    assert_one_click_unsubscribe(&mail);
    // And the in-app notification, once.
    assert_eq!(s.notifications_of(ada, "ORDER_UPDATE").await.len(), 1);

    for t in [NotificationType::Promotion, NotificationType::Inventory] {
        s.notify(ada, t, "Espresso Beans").await;
        assert_eq!(s.send_emails().await, 1, "{t:?}");
        assert_one_click_unsubscribe(&sink.received().pop().unwrap());
    }
    assert_eq!(sink.received().len(), 4);

    let emails = emails_for_user(&s.db, ada).await.unwrap();
    assert_eq!(emails.len(), 4);
    for email in &emails {
        assert_eq!((email.status.as_str(), email.attempts), ("SENT", 1));
        let attempts = attempts_for(&s.db, email.id).await.unwrap();
        assert_eq!(statuses(&attempts), ["SENT"]);
        assert_eq!(attempts[0].channel, "EMAIL");
    }
    s.finish().await;
}

async fn only_users_who_accept_email_get_one_and_email_alone_works(set: BackendSet) {
    let sink = SmtpSink::start().await;
    let s = with_sink(set, &sink).await;
    let (bob, _) = s.register("Bob").await;
    let cy = s
        .register_as(
            "Cy",
            Role::Customer,
            Preferences {
                channels: vec![Channel::Email],
                ..Preferences::default()
            },
        )
        .await;
    s.notify(bob, NotificationType::Promotion, "Deal").await;
    s.notify(cy, NotificationType::Promotion, "Deal").await;
    assert_eq!(s.send_emails().await, 2, "{set:?}: Cy's welcome and deal");
    let to: Vec<Vec<String>> = sink.received().into_iter().map(|m| m.to).collect();
    assert_eq!(to, [["cy@example.com"], ["cy@example.com"]]);
    assert!(emails_for_user(&s.db, bob).await.unwrap().is_empty());
    assert!(s.notifications_of(cy, "PROMOTION").await.is_empty());
    s.finish().await;
}

async fn without_an_smtp_server_each_email_is_a_file_in_the_mailbox(set: BackendSet) {
    let s = TestService::start(set).await;
    let ada = s.register_as("Ada", Role::Customer, by_email()).await;
    assert_eq!(s.send_emails().await, 1, "{set:?}");
    assert_eq!(s.send_emails().await, 0);
    let mailbox = s.settings.data_dir.join("mailbox");
    let files: Vec<_> = std::fs::read_dir(&mailbox)
        .unwrap()
        .map(|f| f.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].extension().unwrap(), "eml");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("Subject: Welcome to Herald, Ada"), "{text}");
    assert!(
        text.contains("\"Ada\" <ada@example.com>") || text.contains("Ada <ada@example.com>"),
        "{text}"
    );
    assert_eq!(emails_for_user(&s.db, ada).await.unwrap()[0].status, "SENT");
    s.finish().await;
}

async fn an_email_of_a_deferred_notification_goes_out_when_quiet_hours_end(set: BackendSet) {
    let sink = SmtpSink::start().await;
    let s = with_sink(set, &sink).await;
    // 23:00 in Berlin.
    s.clock.set(utc("2026-01-15T22:00:00Z"));
    let night = Preferences {
        timezone: "Europe/Berlin".into(),
        quiet_hours_start: Some("22:00".into()),
        quiet_hours_end: Some("07:30".into()),
        ..by_email()
    };
    let bea = s.register_as("Bea", Role::Customer, by_email()).await;
    let cy = s.register_as("Cy", Role::Customer, night).await;
    s.notify(bea, NotificationType::Promotion, "Bea's deal")
        .await;
    s.notify(cy, NotificationType::Promotion, "Cy's deal").await;
    // Both welcomes (critical) and Bea's deal now; Cy's deal at 07:30 CET, 06:30 UTC.
    assert_eq!(s.send_emails().await, 3, "{set:?}");
    s.clock.set(utc("2026-01-16T06:29:00Z"));
    assert_eq!(s.send_emails().await, 0);
    s.clock.set(utc("2026-01-16T06:30:00Z"));
    assert_eq!(s.send_emails().await, 1);
    let last = sink.received().pop().unwrap();
    assert_eq!(last.header("Subject").as_deref(), Some("Cy's deal"));
    assert_eq!(last.to, ["cy@example.com"]);
    assert_eq!(sink.received().len(), 4);
    s.finish().await;
}

async fn while_smtp_is_down_an_email_is_retried_and_sent_exactly_once(set: BackendSet) {
    let mut sink = SmtpSink::start().await;
    let s = with_sink(set, &sink).await;
    let ada = ada_by_email(&s, &sink).await;
    sink.stop();
    s.notify(ada, NotificationType::OrderUpdate, "Order shipped")
        .await;
    assert_eq!(s.send_emails().await, 1, "{set:?}");
    let email = emails_for_user(&s.db, ada).await.unwrap().pop().unwrap();
    assert_eq!((email.status.as_str(), email.attempts), ("QUEUED", 1));
    assert!(email.last_error.is_some());
    // Due again after 60 s ± 20 %, not before.
    assert!(
        email.due_at >= s.clock.now() + Duration::seconds(48),
        "{email:?}"
    );
    assert!(
        email.due_at <= s.clock.now() + Duration::seconds(72),
        "{email:?}"
    );
    let attempts = attempts_for(&s.db, email.id).await.unwrap();
    assert_eq!(statuses(&attempts), ["FAILED"]);
    assert!(attempts[0].error.is_some());
    assert_eq!(s.send_emails().await, 0, "not due yet");

    sink.resume().await;
    s.clock.advance(Duration::minutes(2));
    assert_eq!(s.send_emails().await, 1);
    s.clock.advance(Duration::hours(1));
    assert_eq!(s.send_emails().await, 0);
    let subjects: Vec<Option<String>> = sink
        .received()
        .iter()
        .map(|m| m.header("Subject"))
        .collect();
    assert_eq!(
        subjects,
        [
            Some("Welcome to Herald, Ada".to_owned()),
            Some("Order shipped".to_owned())
        ]
    );
    let email = emails_for_user(&s.db, ada).await.unwrap().pop().unwrap();
    assert_eq!((email.status.as_str(), email.attempts), ("SENT", 2));
    let attempts = attempts_for(&s.db, email.id).await.unwrap();
    assert_eq!(statuses(&attempts), ["FAILED", "SENT"]);
    s.finish().await;
}

async fn after_the_last_attempt_an_email_is_failed_and_dead_lettered_until_replayed(
    set: BackendSet,
) {
    let mut sink = SmtpSink::start().await;
    let s = with_sink(set, &sink).await;
    let ada = ada_by_email(&s, &sink).await;
    sink.stop();
    s.notify(ada, NotificationType::Promotion, "Deal").await;
    for _ in 0..3 {
        assert_eq!(s.send_emails().await, 1, "{set:?}");
        s.clock.advance(Duration::minutes(10));
    }
    assert_eq!(s.send_emails().await, 0);
    let email = emails_for_user(&s.db, ada).await.unwrap().pop().unwrap();
    assert_eq!((email.status.as_str(), email.attempts), ("FAILED", 3));
    let attempts = attempts_for(&s.db, email.id).await.unwrap();
    assert_eq!(statuses(&attempts), ["FAILED", "FAILED", "FAILED"]);

    let letters = DeadLetters::new(s.db.clone());
    let listed = letters.list(Some(EMAIL_QUEUE), 10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].event_type, <EmailUndeliverable as Event>::TYPE);
    assert_eq!(listed[0].attempts, 3);
    assert_eq!(listed[0].payload["deliveryId"], email.id.to_string());
    assert_eq!(listed[0].payload["notificationType"], "PROMOTION");

    // Replaying the letter (the bus hands it to this handler) queues the email again.
    sink.resume().await;
    let replays = EmailReplays {
        db: s.db.clone(),
        clock: s.clock.clone(),
        queue: s.emails.queue.clone(),
    };
    let envelope = serde_json::from_str(&listed[0].envelope).unwrap();
    replays.handle(&envelope).await.unwrap();
    replays.handle(&envelope).await.unwrap();
    assert_eq!(s.send_emails().await, 1);
    assert_eq!(s.send_emails().await, 0);
    assert_eq!(sink.received().len(), 2);
    let email = emails_for_user(&s.db, ada).await.unwrap().pop().unwrap();
    assert_eq!(email.status, "SENT");
    s.finish().await;
}

async fn an_email_switched_off_before_it_goes_out_is_suppressed_not_sent(set: BackendSet) {
    let sink = SmtpSink::start().await;
    let s = with_sink(set, &sink).await;
    // 23:00 in Berlin: the promotion's email waits for 07:30 CET, 06:30 UTC.
    s.clock.set(utc("2026-01-15T22:00:00Z"));
    let night = Preferences {
        timezone: "Europe/Berlin".into(),
        quiet_hours_start: Some("22:00".into()),
        quiet_hours_end: Some("07:30".into()),
        ..by_email()
    };
    let cy = s.register_as("Cy", Role::Customer, night.clone()).await;
    s.notify(cy, NotificationType::Promotion, "Cy's deal").await;
    assert_eq!(s.send_emails().await, 1, "{set:?}: the welcome");
    // Cy follows an unsubscribe link that night; the users service says so.
    let off = Preferences {
        promotions: false,
        ..night
    };
    s.handle(&preferences_updated(cy, off, 2)).await.unwrap();

    s.clock.set(utc("2026-01-16T06:30:00Z"));
    assert_eq!(s.send_emails().await, 1);
    assert_eq!(sink.received().len(), 1, "only the welcome was sent");
    let email = emails_for_user(&s.db, cy).await.unwrap().pop().unwrap();
    assert_eq!(
        (
            email.status.as_str(),
            email.reason.as_deref(),
            email.attempts
        ),
        ("SUPPRESSED", Some("PREFERENCE_OFF"), 0)
    );
    let attempts = attempts_for(&s.db, email.id).await.unwrap();
    assert_eq!(statuses(&attempts), ["SUPPRESSED"]);
    assert_eq!(attempts[0].reason.as_deref(), Some("PREFERENCE_OFF"));

    // Per channel, as operators see it.
    let deliveries: Vec<(Option<String>, String, Option<String>)> = deliveries_for_user(&s.db, cy)
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.notification_type == "PROMOTION")
        .map(|d| (d.channel, d.status, d.reason))
        .collect();
    assert_eq!(
        deliveries,
        [
            (
                Some("EMAIL".to_owned()),
                "SUPPRESSED".to_owned(),
                Some("PREFERENCE_OFF".to_owned())
            ),
            (Some("IN_APP".to_owned()), "SENT".to_owned(), None),
        ]
    );
    // A promotion decided now is suppressed on every channel.
    s.notify(cy, NotificationType::Promotion, "Another deal")
        .await;
    let last = deliveries_for_user(&s.db, cy).await.unwrap().pop().unwrap();
    assert_eq!(
        (last.channel, last.status.as_str(), last.reason.as_deref()),
        (None, "SUPPRESSED", Some("PREFERENCE_OFF"))
    );
    s.finish().await;
}

async fn critical_email_goes_out_before_the_standard_ones(set: BackendSet) {
    let sink = SmtpSink::start().await;
    let s = with_sink(set, &sink).await;
    let ada = ada_by_email(&s, &sink).await;
    for (t, title) in [
        (NotificationType::Promotion, "First deal"),
        (NotificationType::Inventory, "Beans are back"),
        (NotificationType::OrderUpdate, "Order shipped"),
    ] {
        s.notify(ada, t, title).await;
        s.clock.advance(Duration::minutes(1));
    }
    assert_eq!(s.send_emails().await, 3, "{set:?}");
    let mut subjects: Vec<String> = sink.received()[1..]
        .iter()
        .map(|m| m.header("Subject").unwrap())
        .collect();
    // The critical one first; the standard ones of a round go out together.
    assert_eq!(subjects[0], "Order shipped", "{set:?}");
    subjects[1..].sort();
    assert_eq!(subjects, ["Order shipped", "Beans are back", "First deal"]);
    s.finish().await;
}
