//! Tests over real storage and cache, on every backend set: the consumer fed with events,
//! the API driven through its router with real tokens.

#![allow(clippy::unwrap_used)]

mod api;
mod audience;
mod campaigns;
mod caps;
mod consumer;
mod email;
mod inbox;
mod orders;
mod products;
mod promotions;
mod quiet_hours;
mod service;
mod unsubscribe;

/// Every module's tests, for the harness.
pub const CASES: &[&[herald_platform::testing::harness::Case]] = &[
    api::CASES,
    audience::CASES,
    campaigns::CASES,
    caps::CASES,
    consumer::CASES,
    email::CASES,
    inbox::CASES,
    orders::CASES,
    products::CASES,
    promotions::CASES,
    quiet_hours::CASES,
    service::CASES,
    unsubscribe::CASES,
];

use std::sync::Arc;

use axum::Router;
use axum::http::{Method, StatusCode};
use chrono::{DateTime, Utc};
use herald_events::{Envelope, Preferences, PreferencesUpdated, Role, UserRegistered};
use herald_platform::Settings;
use herald_platform::bus::{ConsumerOptions, EventHandler, HandlerError};
use herald_platform::cache::Cache;
use herald_platform::db::Database;
use herald_platform::deadletters::DeadLetters;
use herald_platform::http::{Readiness, service_router};
use herald_platform::mail::Mailer;
use herald_platform::outbox::Outbox;
use herald_platform::testing::{
    BackendSet, TestKey, call, drop_schema, isolated_settings, migrated_database,
};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::api::NotificationsState;
use crate::campaign::{Campaigns, CampaignsState};
use crate::clock::Clock;
use crate::consumer::NotificationsConsumer;
use crate::delivery::{Delivery, DeliveryPolicy, Notifier};
use crate::domain::{Draft, NotificationType};
use crate::email::EmailQueue;
use crate::email::render::EmailTemplates;
use crate::email::worker::EmailWorker;
use crate::unread::UnreadCounts;
use crate::unsubscribe::{UnsubscribeLinks, UnsubscribeState};
use crate::{SERVICE, migrations};

/// Where the tests' manual clock starts: a Monday, noon in London.
pub(crate) const START: &str = "2026-06-15T12:00:00Z";

pub(crate) fn utc(raw: &str) -> DateTime<Utc> {
    raw.parse().unwrap()
}

/// One notifications service on fresh storage and a manual clock, without the bus: events
/// are handed to the consumer directly, emails are sent a round at a time
/// ([`TestService::send_emails`]) and the outbox is read, not relayed.
pub(crate) struct TestService {
    pub db: Database,
    pub consumer: NotificationsConsumer,
    pub notifier: Notifier,
    pub router: Router,
    pub inbox: crate::inbox::Inbox,
    /// The inbox generations and counts, shared with whatever replica a test adds.
    pub unread: UnreadCounts,
    pub campaigns: Campaigns,
    pub clock: Clock,
    pub emails: EmailWorker,
    pub links: UnsubscribeLinks,
    pub settings: Settings,
    pub key: TestKey,
    _dir: tempfile::TempDir,
}

impl TestService {
    pub async fn start(set: BackendSet) -> TestService {
        Self::start_with(set, |_| {}).await
    }

    /// A service whose settings `configure` changed first.
    pub async fn start_with(set: BackendSet, configure: impl FnOnce(&mut Settings)) -> TestService {
        let dir = tempfile::tempdir().unwrap();
        let mut settings = isolated_settings(set, dir.path());
        configure(&mut settings);
        let db = migrated_database(&settings, SERVICE, &migrations()).await;
        let cache = Cache::connect(&settings).await.unwrap();
        let clock = Clock::manual(utc(START));
        let unread = UnreadCounts::new(cache, clock.clone());
        let queue = EmailQueue::default();
        let policy = DeliveryPolicy {
            clock: clock.clone(),
            promotion_daily_cap: settings.promotion_daily_cap,
        };
        let notifier = Notifier::new(unread.clone(), queue.clone(), policy);
        let consumer = NotificationsConsumer::new(db.clone(), notifier.clone());
        let key = TestKey::generate(crate::SERVICE);
        let links = UnsubscribeLinks::load(&settings, &db, clock.clone())
            .await
            .unwrap();
        let emails = EmailWorker {
            db: db.clone(),
            mailer: Mailer::from_settings(&settings).unwrap(),
            templates: Arc::new(EmailTemplates::new(settings.templates_dir.clone())),
            links: links.clone(),
            clock: clock.clone(),
            retries: ConsumerOptions::from_settings(&settings),
            dead_letters: DeadLetters::new(db.clone()),
            queue,
            public_url: settings.public_url.clone(),
        };
        let inbox = crate::inbox::Inbox::new(db.clone(), unread.clone(), clock.clone());
        let state = NotificationsState {
            inbox: inbox.clone(),
            verifier: key.verifier.clone(),
        };
        let unsubscribe = UnsubscribeState {
            links: links.clone(),
            outbox: Outbox::new(db.clone()),
            db: db.clone(),
        };
        let campaigns = Campaigns::new(db.clone(), notifier.clone(), clock.clone());
        let promotions = CampaignsState {
            campaigns: campaigns.clone(),
            verifier: key.verifier.clone(),
        };
        let api = crate::api::router(state)
            .merge(crate::unsubscribe::router(unsubscribe))
            .merge(crate::campaign::router(promotions));
        let router = service_router(SERVICE, api, Readiness::default());
        TestService {
            db,
            consumer,
            notifier,
            router,
            inbox,
            unread,
            campaigns,
            clock,
            emails,
            links,
            settings,
            key,
            _dir: dir,
        }
    }

    /// One round of the email worker: sends what is due now; returns how many it tried.
    pub async fn send_emails(&self) -> usize {
        self.emails
            .send_due(&CancellationToken::new())
            .await
            .unwrap()
    }

    /// Drops the test's PostgreSQL schema.
    pub async fn finish(self) {
        drop_schema(&self.db).await;
    }

    pub async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        self.consumer.handle(event).await
    }

    /// A new user, as the users service announces one; returns the id and the event.
    pub async fn register(&self, name: &str) -> (Uuid, Envelope) {
        let user_id = Uuid::now_v7();
        let event = registered(user_id, name, Preferences::default(), 1);
        self.handle(&event).await.unwrap();
        (user_id, event)
    }

    /// A new user with this role and these preferences; returns the id.
    pub async fn register_as(&self, name: &str, role: Role, preferences: Preferences) -> Uuid {
        let user_id = Uuid::now_v7();
        self.handle(&registered_as(user_id, name, role, preferences))
            .await
            .unwrap();
        user_id
    }

    /// The user's notifications of one type, newest first, as the API lists them.
    pub async fn notifications_of(&self, user_id: Uuid, notification_type: &str) -> Vec<Value> {
        let (status, page) = self.get("/notifications?first=100", user_id).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        page["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["type"] == notification_type)
            .cloned()
            .collect()
    }

    /// The titles of the user's notifications of one type the API lists now, newest first.
    pub async fn titles_of(&self, user_id: Uuid, notification_type: &str) -> Vec<String> {
        self.notifications_of(user_id, notification_type)
            .await
            .iter()
            .map(|n| n["title"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The user's recorded decisions of one type: (outcome, reason).
    pub async fn decisions_of(
        &self,
        user_id: Uuid,
        notification_type: &str,
    ) -> Vec<(String, Option<String>)> {
        crate::decision_log::decisions_for_user(&self.db, user_id)
            .await
            .unwrap()
            .into_iter()
            .filter(|d| d.notification_type == notification_type)
            .map(|d| (d.outcome, d.reason))
            .collect()
    }

    pub async fn unread_count(&self, user_id: Uuid) -> i64 {
        let (_, body) = self.get("/notifications/unread-count", user_id).await;
        body["count"].as_i64().unwrap()
    }

    /// Delivers a draft as an event of its own would, whatever the decision.
    pub async fn notify(&self, user_id: Uuid, notification_type: NotificationType, title: &str) {
        let _ = self
            .deliver(&draft(user_id, notification_type, title))
            .await;
    }

    pub async fn deliver(&self, draft: &Draft) -> Delivery {
        let mut tx = self.db.begin().await.unwrap();
        let delivery = self.notifier.deliver(&mut tx, draft).await.unwrap();
        tx.commit().await.unwrap();
        self.notifier.committed(&delivery).await;
        delivery
    }

    pub fn token(&self, user_id: Uuid) -> String {
        self.key.token(user_id, Role::Customer)
    }

    pub async fn get(&self, path: &str, user_id: Uuid) -> (StatusCode, Value) {
        self.call_as(Method::GET, path, user_id).await
    }

    pub async fn post(&self, path: &str, user_id: Uuid) -> (StatusCode, Value) {
        self.call_as(Method::POST, path, user_id).await
    }

    async fn call_as(&self, method: Method, path: &str, user_id: Uuid) -> (StatusCode, Value) {
        let token = self.token(user_id);
        call(&self.router, method, path, Some(&token), None).await
    }
}

pub(crate) fn registered(
    user_id: Uuid,
    name: &str,
    preferences: Preferences,
    version: i64,
) -> Envelope {
    user_registered(user_id, name, Role::Customer, preferences, version)
}

pub(crate) fn registered_as(
    user_id: Uuid,
    name: &str,
    role: Role,
    preferences: Preferences,
) -> Envelope {
    user_registered(user_id, name, role, preferences, 1)
}

fn user_registered(
    user_id: Uuid,
    name: &str,
    role: Role,
    preferences: Preferences,
    version: i64,
) -> Envelope {
    let payload = UserRegistered {
        user_id,
        name: name.to_owned(),
        email: format!("{}@example.com", name.to_lowercase()),
        role,
        preferences,
        preferences_version: version,
    };
    Envelope::new("users", Some(user_id.to_string()), &payload)
}

pub(crate) fn preferences_updated(
    user_id: Uuid,
    preferences: Preferences,
    version: i64,
) -> Envelope {
    let payload = PreferencesUpdated {
        user_id,
        preferences,
        preferences_version: version,
    };
    Envelope::new("users", Some(user_id.to_string()), &payload)
}

/// A draft caused by an event of its own.
pub(crate) fn draft(user_id: Uuid, notification_type: NotificationType, title: &str) -> Draft {
    Draft::for_event(
        Uuid::now_v7(),
        user_id,
        notification_type,
        title.to_owned(),
        format!("{title}, in detail"),
        Some(serde_json::json!({ "orderId": "o-1" })),
    )
}
