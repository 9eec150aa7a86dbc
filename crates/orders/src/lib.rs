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
use herald_platform::telemetry::MetricDoc;
use std::sync::Arc;

use herald_platform::bus::{Bus, ConsumerOptions};
use herald_platform::db::{Database, Migrations};
use herald_platform::deadletters::{self, DeadLetterAdmin, DeadLetters};
use herald_platform::http::{BuiltService, Readiness, ServiceClient, service_router};
use herald_platform::jobs::JobsConsumer;
use herald_platform::outbox::Outbox;
use herald_products::client::{CatalogApi, CatalogOverHttp};
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
    products: Option<Arc<dyn CatalogApi>>,
    shutdown: CancellationToken,
) -> anyhow::Result<Started> {
    let db = connect_database(settings).await?;
    let outbox = Outbox::new(db.clone());
    let checks = OrderChecks {
        db: db.clone(),
        outbox: outbox.clone(),
        stuck_after: chrono::Duration::hours(settings.order_stuck_after_hours),
        delivery_window: chrono::Duration::hours(settings.order_delivery_window_hours),
    };
    let jobs = bus.spawn_consumer(
        QUEUE,
        Arc::new(JobsConsumer::new(
            QUEUE,
            db.clone(),
            outbox.clone(),
            vec![Arc::new(checks)],
        )),
        ConsumerOptions::from_settings(settings),
        Arc::new(DeadLetters::new(db.clone())),
        shutdown.clone(),
    );
    let relay = outbox.spawn_relay(bus.clone(), shutdown);
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
    let state = OrdersState {
        orders: Orders {
            db: db.clone(),
            outbox,
            inventory: Inventory::new(products),
        },
        verifier: verifier.clone(),
    };
    let letter_admin = DeadLetterAdmin::new(SERVICE, DeadLetters::new(db.clone()), bus.clone());
    let orders = state.orders.clone();
    let readiness = Readiness::default()
        .database("orders_database", &db)
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
        tasks: vec![relay, jobs],
    };
    Ok(Started { service, orders })
}
