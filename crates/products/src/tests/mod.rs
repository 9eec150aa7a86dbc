//! Tests over real storage, on every backend set: the catalog and its reservations driven
//! directly, the consumer fed with events, the API driven through its router with real
//! tokens.

#![allow(clippy::unwrap_used)]

mod api;
mod api_buyers;
mod catalog;
mod client;
mod consumer;
mod reservations;
mod service;

/// Every module's tests, for the harness.
pub const CASES: &[&[herald_platform::testing::harness::Case]] = &[
    api::CASES,
    api_buyers::CASES,
    catalog::CASES,
    client::CASES,
    consumer::CASES,
    reservations::CASES,
    service::CASES,
];

use axum::Router;
use axum::http::{Method, StatusCode};
use herald_events::{Envelope, OrderCancelled, OrderLine, OrderSnapshot, OrderStatus, Role};
use herald_platform::auth::Claims;
use herald_platform::db::Database;
use herald_platform::http::{Readiness, service_router};
use herald_platform::outbox::Outbox;
use herald_platform::testing::{
    BackendSet, TestKey, call, drop_schema, isolated_settings, migrated_database, outbox_events,
};
use serde_json::Value;
use uuid::Uuid;

use crate::api::ProductsState;
use crate::catalog::Catalog;
use crate::client::InProcessCatalog;
use crate::consumer::ProductsConsumer;
use crate::domain::{NewProduct, ReservationRequest};
use crate::store::Product;
use crate::store::products::find_product;
use crate::{SERVICE, migrations};

/// One products service on fresh storage, without the bus: its outbox is read back from
/// the table, and events are handed to the consumer directly.
pub(crate) struct TestService {
    pub db: Database,
    pub catalog: Catalog,
    pub consumer: ProductsConsumer,
    pub router: Router,
    pub key: TestKey,
    _dir: tempfile::TempDir,
}

impl TestService {
    /// With the default low-stock threshold of 5.
    pub async fn start(set: BackendSet) -> TestService {
        let dir = tempfile::tempdir().unwrap();
        let settings = isolated_settings(set, dir.path());
        assert_eq!(settings.low_stock_threshold, 5);
        let db = migrated_database(&settings, SERVICE, &migrations()).await;
        let catalog = Catalog::new(
            db.clone(),
            Outbox::new(db.clone()),
            settings.low_stock_threshold,
        );
        let consumer = ProductsConsumer::new(catalog.clone());
        let key = TestKey::generate(crate::SERVICE);
        let state = ProductsState {
            catalog: InProcessCatalog::new(catalog.clone()),
            verifier: key.verifier.clone(),
        };
        let router = service_router(SERVICE, crate::api::router(state), Readiness::default());
        TestService {
            db,
            catalog,
            consumer,
            router,
            key,
            _dir: dir,
        }
    }

    /// Drops the test's PostgreSQL schema.
    pub async fn finish(self) {
        drop_schema(&self.db).await;
    }

    pub async fn add_product(&self, name: &str, category: &str, stock: i64) -> Product {
        self.catalog
            .create_product(&NewProduct {
                name: name.to_owned(),
                description: format!("{name}, described"),
                category: category.to_owned(),
                price_cents: 1299,
                currency: "USD".to_owned(),
                stock,
            })
            .await
            .unwrap()
    }

    pub async fn stock_of(&self, id: Uuid) -> i64 {
        find_product(self.db.pool(), id)
            .await
            .unwrap()
            .unwrap()
            .stock
    }

    /// Every event written to the outbox so far, oldest first (no relay runs here).
    pub async fn events(&self) -> Vec<Envelope> {
        outbox_events(&self.db).await
    }

    /// The types of the events written since `before` of them were.
    pub async fn event_types_since(&self, before: usize) -> Vec<String> {
        self.events()
            .await
            .into_iter()
            .skip(before)
            .map(|e| e.event_type)
            .collect()
    }

    pub fn token(&self, user_id: Uuid, role: Role) -> String {
        self.key.token(user_id, role)
    }

    pub fn admin(&self) -> String {
        self.token(Uuid::now_v7(), Role::Admin)
    }

    pub fn customer(&self) -> String {
        self.token(Uuid::now_v7(), Role::Customer)
    }

    /// The orders service's call acting for a new customer.
    pub fn orders_for_a_customer(&self) -> String {
        self.key
            .from_service("orders", Some((Uuid::now_v7(), Role::Customer)))
    }

    /// A call as the gateway makes it: with `token`, or anonymous without.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let anonymous = self.key.anonymous();
        let token = token.unwrap_or(&anonymous);
        call(&self.router, method, path, Some(token), body).await
    }

    /// A call with no credential at all.
    pub async fn call_bare(&self, method: Method, path: &str) -> (StatusCode, Value) {
        call(&self.router, method, path, None, None).await
    }
}

pub(crate) fn claims(user_id: Uuid, role: Role) -> Claims {
    Claims {
        sub: user_id,
        role,
        iss: "herald".to_owned(),
        iat: 0,
        exp: i64::MAX,
        ver: 1,
    }
}

pub(crate) fn buyer() -> Claims {
    claims(Uuid::now_v7(), Role::Customer)
}

pub(crate) fn order(lines: &[(Uuid, i64)]) -> ReservationRequest {
    ReservationRequest {
        order_id: Uuid::now_v7(),
        lines: lines.to_vec(),
    }
}

/// `order.cancelled` as the orders service announces it.
pub(crate) fn cancelled(order_id: Uuid, user_id: Uuid, lines: &[(Uuid, i64)]) -> Envelope {
    let snapshot = OrderSnapshot {
        order_id,
        user_id,
        status: OrderStatus::Cancelled,
        items: lines
            .iter()
            .map(|(product_id, quantity)| OrderLine {
                product_id: *product_id,
                product_name: "Espresso Beans".to_owned(),
                category: "coffee".to_owned(),
                quantity: *quantity,
                unit_price_cents: 1299,
            })
            .collect(),
        total_cents: lines.iter().map(|(_, q)| q * 1299).sum(),
        currency: "USD".to_owned(),
        placed_at: chrono::Utc::now(),
    };
    Envelope::new(
        "orders",
        Some(user_id.to_string()),
        &OrderCancelled(snapshot),
    )
}
