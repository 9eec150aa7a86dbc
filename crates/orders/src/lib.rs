//! The orders service: orders and their status lifecycle. Placing an order reserves its
//! stock through the products service ([`checkout`]); every status change is announced
//! (`order.*`, each with the whole order) through the outbox ([`lifecycle`]).

pub mod api;
pub mod checkout;
pub mod domain;
pub mod inventory;
pub mod lifecycle;
pub mod store;

#[cfg(test)]
mod tests;

use herald_platform::Settings;
use herald_platform::auth::TokenVerifier;
use herald_platform::bus::Bus;
use herald_platform::db::{Database, Migrations};
use herald_platform::http::{BuiltService, Readiness, service_router};
use herald_platform::outbox::Outbox;
use tokio_util::sync::CancellationToken;

use crate::api::OrdersState;
use crate::inventory::Inventory;

pub const SERVICE: &str = "orders";

pub fn migrations() -> Migrations {
    Migrations {
        sqlite: sqlx::migrate!("./migrations/sqlite"),
        postgres: sqlx::migrate!("./migrations/postgres"),
    }
}

pub async fn connect_database(settings: &Settings) -> anyhow::Result<Database> {
    Database::connect_migrated(settings, SERVICE, &migrations()).await
}

/// Builds the orders service: storage, the outbox relay, the API (which calls the
/// products service at `settings.products_url()`).
pub async fn build(
    settings: &Settings,
    bus: &Bus,
    verifier: TokenVerifier,
    shutdown: CancellationToken,
) -> anyhow::Result<BuiltService> {
    let db = connect_database(settings).await?;
    let outbox = Outbox::new(db.clone());
    let relay = outbox.spawn_relay(bus.clone(), shutdown);
    let state = OrdersState {
        db: db.clone(),
        outbox,
        inventory: Inventory::new(&settings.products_url()),
        verifier,
    };
    let readiness = Readiness::default()
        .database("orders_database", &db)
        .bus(bus);
    Ok(BuiltService {
        name: SERVICE,
        router: service_router(SERVICE, api::router(state), readiness.clone()),
        readiness,
        tasks: vec![relay],
    })
}
