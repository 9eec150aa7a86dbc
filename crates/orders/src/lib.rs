//! The orders service: orders and their status lifecycle. Placing an order reserves its
//! stock through the products service ([`checkout`]); every status change is announced
//! (`order.*`, each with the whole order) through the outbox ([`lifecycle`]).

pub mod api;
pub mod checkout;
pub mod checks;
pub mod client;
pub mod domain;
pub mod inventory;
pub mod lifecycle;
pub mod orders;
pub mod store;

/// The tests over real storage, each on the embedded backends and on the real servers;
/// `tests/backends.rs` runs them (the `backend-tests` feature).
#[cfg(all(feature = "backend-tests", not(test)))]
pub mod tests;

use anyhow::Context;
use herald_platform::Settings;
use herald_platform::auth::TokenVerifier;
use herald_platform::service::ServiceParts;
use herald_platform::telemetry::MetricDoc;
use std::sync::Arc;

use herald_platform::bus::Bus;
use herald_platform::db::{Database, Migrations};
use herald_platform::http::{BuiltService, ServiceClient};
use herald_platform::jobs::JobsConsumer;
use herald_products::client::{CatalogOverHttp, StockApi};
use tokio_util::sync::CancellationToken;

use crate::api::OrdersState;
use crate::checks::OrderChecks;
use crate::inventory::Inventory;
use crate::orders::Orders;

pub const SERVICE: &str = "orders";

/// The orders service's metrics.
pub const METRICS: &[MetricDoc] = &[
    MetricDoc::counter("orders_placed_total", "Orders placed and confirmed."),
    MetricDoc::counter(
        "orders_refused_total",
        "Orders refused when their stock was reserved, by error code.",
    ),
    MetricDoc::counter(
        "orders_status_changes_total",
        "Order status changes, by new status.",
    ),
    MetricDoc::counter(
        "orders_left_placed_total",
        "Orders left PLACED by an unexpected failure, for reconciliation to finish or release.",
    ),
];
/// The queue of the orders service's scheduled jobs, and its consumer's name in the inbox.
pub const QUEUE: &str = "orders";

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

/// The orders service, built: what to serve and run, and its orders for the other services
/// of this process to call directly.
pub struct Started {
    pub service: BuiltService,
    pub orders: Orders,
}

/// Builds the orders service: storage, the outbox relay, the API. It reserves stock
/// through `products` when the products service runs in this process, otherwise over HTTP
/// at `settings.products_url()`.
pub async fn build(
    settings: &Settings,
    bus: &Bus,
    verifier: TokenVerifier,
    products: Option<Arc<dyn StockApi>>,
    shutdown: CancellationToken,
) -> anyhow::Result<Started> {
    let mut parts = ServiceParts::open(&DESCRIPTOR, settings, bus, shutdown).await?;
    let checks = OrderChecks {
        db: parts.db.clone(),
        outbox: parts.outbox.clone(),
        stuck_after: chrono::Duration::hours(settings.order_stuck_after_hours),
        delivery_window: chrono::Duration::hours(settings.order_delivery_window_hours),
    };
    let jobs = JobsConsumer::new(
        QUEUE,
        parts.db.clone(),
        parts.outbox.clone(),
        vec![Arc::new(checks)],
    );
    parts.consume(QUEUE, Arc::new(jobs));
    let products = match products {
        Some(products) => products,
        None => Arc::new(CatalogOverHttp::new(ServiceClient::new(
            verifier
                .service_credentials()
                .context("orders calls products with service credentials")?,
            herald_products::SERVICE,
            &settings.products_url(),
        ))),
    };
    let orders = Orders {
        db: parts.db.clone(),
        outbox: parts.outbox.clone(),
        inventory: Inventory::new(products),
    };
    let state = OrdersState {
        orders: orders.clone(),
        verifier: verifier.clone(),
    };
    Ok(Started {
        service: parts.finish(api::router(state), verifier),
        orders,
    })
}
