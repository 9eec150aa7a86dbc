//! The notifications service: it keeps a replica of users' notification preferences,
//! turns events into notification drafts, passes every draft through the one decision
//! function ([`decision::decide`]: preferences, channels, frequency caps, quiet hours),
//! records the outcome, stores in-app notifications and sends emails
//! ([`email::worker::EmailWorker`]), whose one-click unsubscribe links it answers.

pub mod api;
pub mod campaign;
pub mod clock;
pub mod consumer;
pub mod decision;
pub mod decision_log;
pub mod delivery;
pub mod domain;
pub mod email;
pub mod inbox;
pub mod live;
pub mod money;
pub mod promotions;
pub mod quiet_hours;
pub mod recipients;
pub mod store;
pub mod templates;
pub mod unread;
pub mod unsubscribe;
pub mod watches;

/// The tests over real storage, each on the embedded backends and on the real servers;
/// `tests/backends.rs` runs them (the `backend-tests` feature).
#[cfg(all(feature = "backend-tests", not(test)))]
pub mod tests;

use std::sync::Arc;

use herald_events::NOTIFICATIONS_JOBS;
use herald_platform::Settings;
use herald_platform::auth::TokenVerifier;
use herald_platform::bus::{Bus, ConsumerOptions};
use herald_platform::cache::Cache;
use herald_platform::db::{Database, Migrations};
use herald_platform::deadletters::{self, DeadLetterAdmin, DeadLetters};
use herald_platform::http::{BuiltService, Readiness, service_router};
use herald_platform::jobs::JobsConsumer;
use herald_platform::mail::Mailer;
use herald_platform::outbox::Outbox;
use herald_platform::telemetry::MetricDoc;
use tokio_util::sync::CancellationToken;

use crate::api::NotificationsState;
use crate::campaign::{Campaigns, CampaignsState, PromotionsJob};
use crate::clock::Clock;
use crate::consumer::{LANES, NotificationsConsumer, lane_options};
use crate::delivery::{DeliveryPolicy, Notifier};
use crate::email::EmailQueue;
use crate::email::render::EmailTemplates;
use crate::email::worker::{EMAIL_QUEUE, EmailReplays, EmailWorker};
use crate::unread::UnreadCounts;
use crate::unsubscribe::{UnsubscribeLinks, UnsubscribeState};

pub const SERVICE: &str = "notifications";

/// The notifications service's metrics.
pub const METRICS: &[MetricDoc] = &[
    MetricDoc::counter(
        "notifications_decisions_total",
        "Notification decisions, by type and outcome (sent, deferred, suppressed).",
    ),
    MetricDoc::counter(
        "notifications_deliveries_total",
        "Notifications delivered or attempted, by channel and status.",
    ),
    MetricDoc::counter(
        "notifications_duplicates_total",
        "Notifications not made again because one for the same event and user exists.",
    ),
    MetricDoc::counter(
        "notifications_campaign_notifications_total",
        "Notifications created by promotion campaigns.",
    ),
    MetricDoc::gauge("email_queue_depth", "Emails waiting to be sent."),
];

pub fn migrations() -> Migrations {
    Migrations {
        sqlite: sqlx::migrate!("./migrations/sqlite"),
        postgres: sqlx::migrate!("./migrations/postgres"),
    }
}

/// This service, as `herald` runs and looks after it.
pub const DESCRIPTOR: herald_platform::service::ServiceDescriptor =
    herald_platform::service::ServiceDescriptor {
        name: SERVICE,
        migrations: Some(migrations),
        metrics: METRICS,
    };

pub async fn connect_database(settings: &Settings) -> anyhow::Result<Database> {
    herald_platform::service::open_storage(settings, SERVICE, &migrations()).await
}

/// Builds the notifications service on the system clock: storage, one consumer per lane,
/// the email worker, the outbox relay, the API.
pub async fn build(
    settings: &Settings,
    bus: &Bus,
    cache: &Cache,
    verifier: TokenVerifier,
    shutdown: CancellationToken,
) -> anyhow::Result<Started> {
    build_with_clock(settings, bus, cache, verifier, Clock::system(), shutdown).await
}

/// The notifications service, built: what to serve and run, and its inbox and promotions
/// for the other services of this process to call directly.
pub struct Started {
    pub service: BuiltService,
    pub inbox: inbox::Inbox,
    /// The public unsubscribe pages (RFC 8058 links from emails), for the gateway of this
    /// process to serve on its own port.
    pub unsubscribe_pages: axum::Router,
    pub promotions: Campaigns,
}

/// [`build`] on the given clock.
pub async fn build_with_clock(
    settings: &Settings,
    bus: &Bus,
    cache: &Cache,
    verifier: TokenVerifier,
    clock: Clock,
    shutdown: CancellationToken,
) -> anyhow::Result<Started> {
    let db = connect_database(settings).await?;
    // Everything that can fail comes before the first task is spawned.
    let links = UnsubscribeLinks::load(settings, &db, clock.clone()).await?;
    let mailer = Mailer::from_settings(settings)?;
    // Replaying an email's dead letter requeues it here.
    let unread = UnreadCounts::new(cache.clone(), clock.clone());
    let emails = EmailQueue::default();
    let policy = DeliveryPolicy {
        clock: clock.clone(),
        promotion_daily_cap: settings.promotion_daily_cap,
    };
    let notifier = Notifier::new(unread.clone(), emails.clone(), policy);
    let campaigns = Campaigns::new(db.clone(), notifier.clone(), clock.clone());
    let consumer = NotificationsConsumer::new(db.clone(), notifier);
    // One consumer per lane: the critical one never waits behind the standard backlog.
    let consumer = Arc::new(consumer);
    let dead_letters = Arc::new(DeadLetters::new(db.clone()));
    let mut tasks: Vec<_> = LANES
        .into_iter()
        .map(|lane| {
            bus.spawn_consumer(
                lane,
                consumer.clone(),
                lane_options(lane, settings),
                dead_letters.clone(),
                shutdown.clone(),
            )
        })
        .collect();

    let worker = EmailWorker {
        db: db.clone(),
        mailer,
        templates: Arc::new(EmailTemplates::new(settings.templates_dir.clone())),
        links: links.clone(),
        clock: clock.clone(),
        retries: ConsumerOptions::from_settings(settings),
        dead_letters: DeadLetters::new(db.clone()),
        queue: emails.clone(),
        public_url: settings.public_url.clone(),
    };
    tasks.push(worker.spawn(shutdown.clone()));
    tasks.push(bus.spawn_consumer(
        EMAIL_QUEUE,
        Arc::new(EmailReplays {
            db: db.clone(),
            clock: clock.clone(),
            queue: emails,
        }),
        ConsumerOptions::from_settings(settings),
        dead_letters,
        shutdown.clone(),
    ));
    let outbox = Outbox::new(db.clone());
    // Scheduled jobs (campaigns) on a queue of their own: a long fan-out holds up no lane.
    tasks.push(bus.spawn_consumer(
        NOTIFICATIONS_JOBS,
        Arc::new(JobsConsumer::new(
            NOTIFICATIONS_JOBS,
            db.clone(),
            outbox.clone(),
            vec![Arc::new(PromotionsJob(campaigns.clone()))],
        )),
        ConsumerOptions::from_settings(settings),
        Arc::new(DeadLetters::new(db.clone())),
        shutdown.clone(),
    ));
    tasks.push(outbox.spawn_relay(bus.clone(), shutdown));

    let inbox = inbox::Inbox::new(db.clone(), unread, clock);
    let state = NotificationsState {
        inbox: inbox.clone(),
        verifier,
    };
    let unsubscribe = UnsubscribeState {
        links,
        outbox,
        db: db.clone(),
    };
    let letter_admin = DeadLetterAdmin::new(SERVICE, DeadLetters::new(db.clone()), bus.clone());
    let readiness = Readiness::default()
        .database("notifications_database", &db)
        .bus(bus)
        .cache(cache);
    let unsubscribe_pages = unsubscribe::router(unsubscribe);
    let api = api::router(state.clone())
        .merge(unsubscribe_pages.clone())
        .merge(campaign::router(CampaignsState {
            campaigns: campaigns.clone(),
            verifier: state.verifier.clone(),
        }))
        .merge(deadletters::router(
            letter_admin.clone(),
            state.verifier.clone(),
        ));
    Ok(Started {
        service: BuiltService {
            name: SERVICE,
            router: service_router(SERVICE, api, readiness.clone()),
            error_shape: Default::default(),
            connections: Default::default(),
            readiness,
            dead_letters: Some(letter_admin),
            tasks,
        },
        inbox,
        unsubscribe_pages,
        promotions: campaigns,
    })
}
