//! The recommendations service: it keeps activity signals (views, carts, wishlists,
//! searches), purchases from `order.*`, and replicas of the catalog and of users'
//! preferred categories; recommends with the pure, explainable
//! [`recommender`](crate::recommender) and caches each user's result; and measures the
//! recommender offline against popularity ([`eval::evaluate`]).

pub mod activity;
pub mod advisor;
pub mod api;
pub mod consumer;
pub mod digest;
pub mod eval;
pub mod recommendations;
pub mod recommender;
pub mod store;

/// The tests over real storage, each on the embedded backends and on the real servers;
/// `tests/backends.rs` runs them (the `backend-tests` feature).
#[cfg(all(feature = "backend-tests", not(test)))]
pub mod tests;

use std::sync::Arc;

use herald_platform::Settings;
use herald_platform::auth::TokenVerifier;
use herald_platform::bus::{Bus, ConsumerOptions};
use herald_platform::cache::Cache;
use herald_platform::db::{Database, Migrations};
use herald_platform::http::BuiltService;
use herald_platform::jobs::JobsConsumer;
use herald_platform::service::ServiceParts;
use tokio_util::sync::CancellationToken;

use crate::advisor::{Advisor, AdvisorSettings};
use crate::api::RecommendationsState;
use crate::consumer::RecommendationsConsumer;
pub use crate::consumer::{HANDLED_TYPES, QUEUE};
use crate::digest::DigestJob;
pub use crate::eval::{EvalConfig, EvalReport, evaluate};
use crate::recommendations::Recommendations;

pub const SERVICE: &str = "recommendations";
/// The queue of the service's scheduled jobs (the digest), and its consumer's inbox name.
pub const JOBS_QUEUE: &str = "recommendations.jobs";

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
        metrics: &[],
    };

pub async fn connect_database(settings: &Settings) -> anyhow::Result<Database> {
    herald_platform::service::open_storage(settings, SERVICE, &migrations()).await
}

/// Builds the recommendations service: storage, the consumer of its queue, the API.
pub async fn build(
    settings: &Settings,
    bus: &Bus,
    cache: &Cache,
    verifier: TokenVerifier,
    shutdown: CancellationToken,
) -> anyhow::Result<Started> {
    let mut parts = ServiceParts::open(&DESCRIPTOR, settings, bus, shutdown).await?;
    parts.needs_cache(cache);
    let advisor = Advisor::new(parts.db.clone(), cache.clone(), AdvisorSettings::default());
    parts.consume_with(
        QUEUE,
        Arc::new(RecommendationsConsumer::new(advisor.clone())),
        // Confirmed orders, the bulk of its events, are handled in batches.
        ConsumerOptions::batched_from_settings(settings),
    );
    let digest = DigestJob {
        advisor: advisor.clone(),
        outbox: parts.outbox.clone(),
        period: chrono::Duration::hours(settings.digest_period_hours),
        picks: 3,
    };
    let jobs = JobsConsumer::new(
        JOBS_QUEUE,
        parts.db.clone(),
        parts.outbox.clone(),
        vec![Arc::new(digest)],
    );
    parts.consume(JOBS_QUEUE, Arc::new(jobs));
    let recommendations = Recommendations::new(advisor);
    let state = RecommendationsState {
        recommendations: recommendations.clone(),
        verifier: verifier.clone(),
    };
    Ok(Started {
        service: parts.finish(api::router(state), verifier),
        recommendations,
    })
}

/// The recommendations service, built: what to serve and run, and its recommendations
/// for the other services of this process to call directly.
pub struct Started {
    pub service: BuiltService,
    pub recommendations: Recommendations,
}
