//! The notifications service: it keeps a replica of users' notification preferences,
//! turns events into notification drafts, passes every draft through the one decision
//! function ([`decision::decide`]), records the outcome and stores in-app notifications.

pub mod api;
pub mod consumer;
pub mod decision;
pub mod delivery;
pub mod domain;
pub mod money;
pub mod recipients;
pub mod store;
pub mod templates;
pub mod unread;
pub mod watches;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use herald_events::{NOTIFICATIONS_CRITICAL, NOTIFICATIONS_STANDARD};
use herald_platform::Settings;
use herald_platform::auth::TokenVerifier;
use herald_platform::bus::{Bus, ConsumerOptions};
use herald_platform::cache::Cache;
use herald_platform::db::{Database, Migrations};
use herald_platform::deadletters::{self, DeadLetters};
use herald_platform::http::{BuiltService, Readiness, service_router};
use tokio_util::sync::CancellationToken;

use crate::api::NotificationsState;
use crate::consumer::NotificationsConsumer;
use crate::delivery::Notifier;
use crate::unread::UnreadCounts;

pub const SERVICE: &str = "notifications";

pub fn migrations() -> Migrations {
    Migrations {
        sqlite: sqlx::migrate!("./migrations/sqlite"),
        postgres: sqlx::migrate!("./migrations/postgres"),
    }
}

pub async fn connect_database(settings: &Settings) -> anyhow::Result<Database> {
    Database::connect_migrated(settings, SERVICE, &migrations()).await
}

/// Builds the notifications service: storage, the consumer of its queue, the API.
pub async fn build(
    settings: &Settings,
    bus: &Bus,
    cache: &Cache,
    verifier: TokenVerifier,
    shutdown: CancellationToken,
) -> anyhow::Result<BuiltService> {
    let db = connect_database(settings).await?;
    let unread = UnreadCounts::new(cache.clone());
    let consumer = NotificationsConsumer::new(db.clone(), Notifier::new(unread.clone()));
    // One consumer per lane: the critical one never waits behind the standard backlog.
    let consumer = Arc::new(consumer);
    let dead_letters = Arc::new(DeadLetters::new(db.clone()));
    let lanes: Vec<_> = [NOTIFICATIONS_CRITICAL, NOTIFICATIONS_STANDARD]
        .into_iter()
        .map(|lane| {
            bus.spawn_consumer(
                lane,
                consumer.clone(),
                ConsumerOptions::from_settings(settings),
                dead_letters.clone(),
                shutdown.clone(),
            )
        })
        .collect();
    let state = NotificationsState {
        db: db.clone(),
        unread,
        verifier,
    };
    let readiness = Readiness::default()
        .database("notifications_database", &db)
        .bus(bus)
        .cache(cache);
    Ok(BuiltService {
        name: SERVICE,
        router: service_router(
            SERVICE,
            api::router(state.clone()).merge(deadletters::router(
                DeadLetters::new(db.clone()),
                bus.clone(),
                state.verifier.clone(),
            )),
            readiness.clone(),
        ),
        readiness,
        tasks: lanes,
    })
}
