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
use herald_platform::bus::Bus;
use herald_platform::db::{Database, Migrations};
use herald_platform::http::BuiltService;
use herald_platform::service::ServiceParts;
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
    let mut parts = ServiceParts::open(&DESCRIPTOR, settings, bus, shutdown).await?;
    let catalog = Catalog::new(
        parts.db.clone(),
        parts.outbox.clone(),
        settings.low_stock_threshold,
    );
    parts.consume(QUEUE, Arc::new(ProductsConsumer::new(catalog.clone())));
    let in_process = InProcessCatalog::new(catalog);
    let state = ProductsState {
        catalog: in_process.clone(),
        verifier: verifier.clone(),
    };
    Ok(Started {
        service: parts.finish(api::router(state), verifier),
        catalog: in_process,
    })
}
