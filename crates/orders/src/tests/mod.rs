//! Tests over real storage, on every backend set. The products service is replaced by a
//! real HTTP peer on a loopback port ([`StockRoom`]) that keeps its stock in memory and
//! answers the two reservation endpoints as the products service does.

#![allow(clippy::unwrap_used)]

mod api;
mod checks;
mod client;
mod lifecycle;
mod service;
mod stock_room;
mod store;

/// Every module's tests, for the harness.
pub const CASES: &[&[herald_platform::testing::harness::Case]] = &[
    api::CASES,
    checks::CASES,
    client::CASES,
    lifecycle::CASES,
    service::CASES,
    store::CASES,
];

use axum::Router;
use axum::http::{Method, StatusCode};
use herald_events::{Envelope, Role};
use herald_platform::db::Database;
use std::sync::Arc;

use herald_platform::http::{Readiness, ServiceClient, service_router};
use herald_platform::outbox::Outbox;
use herald_platform::testing::{
    BackendSet, TestKey, call, drop_schema, isolated_settings, migrated_database, outbox_events,
};
use herald_products::client::CatalogOverHttp;
use serde_json::Value;
use uuid::Uuid;

use crate::api::OrdersState;
use crate::inventory::Inventory;
use crate::orders::Orders;
use crate::{SERVICE, migrations};

pub(crate) use stock_room::StockRoom;

/// One orders service on fresh storage, its outbox unrelayed, calling `stock_room` for stock.
pub(crate) struct TestService {
    pub db: Database,
    pub router: Router,
    pub orders: Orders,
    pub stock_room: StockRoom,
    pub key: TestKey,
    _dir: tempfile::TempDir,
}

impl TestService {
    pub async fn start(set: BackendSet) -> TestService {
        let stock_room = StockRoom::start().await;
        let url = stock_room.url();
        Self::start_with_products(set, stock_room, &url).await
    }

    /// A service whose products service is at `products_url` (`stock_room` may be elsewhere).
    pub async fn start_with_products(
        set: BackendSet,
        stock_room: StockRoom,
        products_url: &str,
    ) -> TestService {
        let dir = tempfile::tempdir().unwrap();
        let settings = isolated_settings(set, dir.path());
        let db = migrated_database(&settings, SERVICE, &migrations()).await;
        let key = TestKey::generate(crate::SERVICE);
        stock_room.trust(&key);
        let orders = Orders {
            db: db.clone(),
            outbox: Outbox::new(db.clone()),
            inventory: Inventory::new(Arc::new(CatalogOverHttp::new(ServiceClient::new(
                key.verifier.service_credentials().unwrap(),
                "products",
                products_url,
            )))),
        };
        let state = OrdersState {
            orders: orders.clone(),
            verifier: key.verifier.clone(),
        };
        let router = service_router(SERVICE, crate::api::router(state), Readiness::default());
        TestService {
            db,
            router,
            orders,
            stock_room,
            key,
            _dir: dir,
        }
    }

    /// Drops the test's PostgreSQL schema.
    pub async fn finish(self) {
        drop_schema(&self.db).await;
    }

    pub fn token(&self, user_id: Uuid, role: Role) -> String {
        self.key.token(user_id, role)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        user: Option<(Uuid, Role)>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let token = user.map(|(id, role)| self.token(id, role));
        call(&self.router, method, path, token.as_deref(), body).await
    }

    pub async fn get(&self, path: &str, user_id: Uuid) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some((user_id, Role::Customer)), None)
            .await
    }

    pub async fn admin_get(&self, path: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some((Uuid::now_v7(), Role::Admin)), None)
            .await
    }

    /// Places an order of `(product, quantity)` lines for `user_id`.
    pub async fn place(&self, user_id: Uuid, lines: &[(Uuid, i64)]) -> (StatusCode, Value) {
        let items: Vec<Value> = lines
            .iter()
            .map(|(product, quantity)| {
                serde_json::json!({ "productId": product, "quantity": quantity })
            })
            .collect();
        self.call(
            Method::POST,
            "/orders",
            Some((user_id, Role::Customer)),
            Some(serde_json::json!({ "items": items })),
        )
        .await
    }

    pub async fn cancel(&self, order_id: &str, user: (Uuid, Role)) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            &format!("/orders/{order_id}/cancel"),
            Some(user),
            Some(serde_json::json!({})),
        )
        .await
    }

    pub async fn set_status(
        &self,
        order_id: &str,
        status: &str,
        user: (Uuid, Role),
    ) -> (StatusCode, Value) {
        self.call(
            Method::POST,
            &format!("/orders/{order_id}/status"),
            Some(user),
            Some(serde_json::json!({ "status": status })),
        )
        .await
    }

    /// Every event in the outbox, oldest first.
    pub async fn outbox(&self) -> Vec<Envelope> {
        outbox_events(&self.db).await
    }

    /// How many orders are stored, whatever their state.
    pub async fn stored_orders(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM orders")
            .fetch_one(self.db.pool())
            .await
            .unwrap()
    }
}
