//! The products service: the catalog, its stock and the reservations orders hold on it,
//! and watches (back-in-stock and price-drop alerts). It publishes `product.*` through its
//! outbox and consumes `order.cancelled` to give a cancelled order's stock back.

pub mod api;
pub mod catalog;
pub mod client;
pub mod consumer;
pub mod domain;
pub mod reservations;
pub mod stock;
pub mod store;

/// The tests over real storage, each on the embedded backends and on the real servers;
/// `tests/backends.rs` runs them (the `backend-tests` feature).
#[cfg(all(feature = "backend-tests", not(test)))]
pub mod tests;

use std::sync::Arc;

use herald_platform::Settings;
use herald_platform::auth::TokenVerifier;
use herald_platform::bus::{Bus, ConsumerOptions};
use herald_platform::db::{Database, Migrations};
use herald_platform::deadletters::{self, DeadLetterAdmin, DeadLetters};
use herald_platform::http::{BuiltService, Readiness, service_router};
use herald_platform::outbox::Outbox;
use herald_platform::telemetry::MetricDoc;
use tokio_util::sync::CancellationToken;

use crate::api::ProductsState;
use crate::catalog::Catalog;
use crate::client::InProcessCatalog;
use crate::consumer::{ProductsConsumer, QUEUE};

pub const SERVICE: &str = "products";

/// The products service's metrics.
pub const METRICS: &[MetricDoc] = &[
    MetricDoc::counter("products_created_total", "Products added to the catalog."),
    MetricDoc::counter(
        "product_lookups_total",
        "Batched lookups of products by id (one answers every product a response needs).",
    ),
    MetricDoc::counter(
        "stock_reservations_total",
        "Stock reservations for orders, by outcome.",
    ),
    MetricDoc::counter(
        "stock_releases_total",
        "Reservations whose stock was given back (cancelled or failed orders).",
    ),
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

/// The products service, built: what to serve and run, and its catalog for the other
/// services of this process to call directly.
pub struct Started {
    pub service: BuiltService,
    pub catalog: InProcessCatalog,
}

/// Builds the products service: storage, the outbox relay, the consumer of its queue, the API.
pub async fn build(
    settings: &Settings,
    bus: &Bus,
    verifier: TokenVerifier,
    shutdown: CancellationToken,
) -> anyhow::Result<Started> {
    let db = connect_database(settings).await?;
    let outbox = Outbox::new(db.clone());
    let catalog = Catalog::new(db.clone(), outbox.clone(), settings.low_stock_threshold);
    let relay = outbox.spawn_relay(bus.clone(), shutdown.clone());
    let consuming = bus.spawn_consumer(
        QUEUE,
        Arc::new(ProductsConsumer::new(catalog.clone())),
        ConsumerOptions::from_settings(settings),
        Arc::new(DeadLetters::new(db.clone())),
        shutdown,
    );
    let in_process = InProcessCatalog::new(catalog);
    let state = ProductsState {
        catalog: in_process.clone(),
        verifier: verifier.clone(),
    };
    let letter_admin = DeadLetterAdmin::new(SERVICE, DeadLetters::new(db.clone()), bus.clone());
    let readiness = Readiness::default()
        .database("products_database", &db)
        .bus(bus);
    let service = BuiltService {
        name: SERVICE,
        router: service_router(
            SERVICE,
            api::router(state).merge(deadletters::router(letter_admin.clone(), verifier)),
            readiness.clone(),
        ),
        error_shape: Default::default(),
        connections: Default::default(),
        readiness,
        dead_letters: Some(letter_admin),
        tasks: vec![relay, consuming],
    };
    Ok(Started {
        service,
        catalog: in_process,
    })
}
