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
use herald_platform::bus::Bus;
use herald_platform::cache::Cache;
use herald_platform::db::{Database, Migrations};
use herald_platform::http::BuiltService;
use herald_platform::jobs::JobsConsumer;
use herald_platform::mail::Mailer;
use herald_platform::service::ServiceParts;
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
    MetricDoc::counter(
        "notifications_inbox_pages_total",
        "First pages of inboxes read, by source: kept in the process, or read from storage.",
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
    let mut parts = ServiceParts::open(&DESCRIPTOR, settings, bus, shutdown).await?;
    parts.needs_cache(cache);
    let db = parts.db.clone();
    // Counted from zero, so the dashboard's rate shows one from the first.
    metrics::counter!("notifications_duplicates_total").increment(0);
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
    // One consumer per lane: the critical one never waits behind the standard backlog.
    let consumer = Arc::new(NotificationsConsumer::new(db.clone(), notifier));
    for lane in LANES {
        parts.consume_with(lane, consumer.clone(), lane_options(lane, settings));
    }
    let worker = EmailWorker {
        db: db.clone(),
        mailer,
        templates: Arc::new(EmailTemplates::new(settings.templates_dir.clone())),
        links: links.clone(),
        clock: clock.clone(),
        retries: parts.retries(),
        dead_letters: parts.dead_letters(),
        queue: emails.clone(),
        public_url: settings.public_url.clone(),
    };
    parts.run(worker.spawn(parts.shutdown()));
    parts.consume(
        EMAIL_QUEUE,
        Arc::new(EmailReplays {
            db: db.clone(),
            clock: clock.clone(),
            queue: emails,
        }),
    );
    // Scheduled jobs (campaigns) on a queue of their own: a long fan-out holds up no lane.
    let jobs = JobsConsumer::new(
        NOTIFICATIONS_JOBS,
        db.clone(),
        parts.outbox.clone(),
        vec![Arc::new(PromotionsJob(campaigns.clone()))],
    );
    parts.consume(NOTIFICATIONS_JOBS, Arc::new(jobs));

    let inbox = inbox::Inbox::new(db.clone(), unread, clock);
    let state = NotificationsState {
        inbox: inbox.clone(),
        verifier: verifier.clone(),
    };
    let unsubscribe_pages = unsubscribe::router(UnsubscribeState {
        links,
        outbox: parts.outbox.clone(),
        db,
    });
    let api = api::router(state)
        .merge(unsubscribe_pages.clone())
        .merge(campaign::router(CampaignsState {
            campaigns: campaigns.clone(),
            verifier: verifier.clone(),
        }));
    Ok(Started {
        service: parts.finish(api, verifier),
        inbox,
        unsubscribe_pages,
        promotions: campaigns,
    })
}
