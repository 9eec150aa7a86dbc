//! Tests over real storage, on every backend set: the catalog and its reservations driven
//! directly, the consumer fed with events, the API driven through its router with real
//! tokens.

mod api;
mod api_buyers;
mod catalog;
mod consumer;
mod reservations;
mod service;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use herald_events::{Envelope, OrderCancelled, OrderLine, OrderSnapshot, OrderStatus, Role};
use herald_platform::auth::{Claims, SigningKey, TokenVerifier};
use herald_platform::db::Database;
use herald_platform::http::{Readiness, service_router};
use herald_platform::outbox::Outbox;
use herald_platform::testing::{BackendSet, isolated_settings};
use serde_json::Value;
use sqlx::Row;
use tower::ServiceExt;
use uuid::Uuid;

use crate::api::ProductsState;
use crate::catalog::Catalog;
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
    key: SigningKey,
    _dir: tempfile::TempDir,
}

impl TestService {
    /// With the default low-stock threshold of 5.
    pub async fn start(set: BackendSet) -> TestService {
        let dir = tempfile::tempdir().unwrap();
        let settings = isolated_settings(set, dir.path());
        assert_eq!(settings.low_stock_threshold, 5);
        let db = Database::connect(&settings, SERVICE).await.unwrap();
        db.migrate(&migrations()).await.unwrap();
        // Running the migrations twice changes nothing.
        db.migrate(&migrations()).await.unwrap();
        let catalog = Catalog::new(
            db.clone(),
            Outbox::new(db.clone()),
            settings.low_stock_threshold,
        );
        let consumer = ProductsConsumer::new(catalog.clone());
        let key = SigningKey::generate().unwrap();
        let verifier = TokenVerifier::new(&[key.public_key().clone()]).unwrap();
        let state = ProductsState {
            catalog: catalog.clone(),
            verifier,
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
        self.key
            .issue(user_id, role, Duration::from_secs(600))
            .unwrap()
    }

    pub fn admin(&self) -> String {
        self.token(Uuid::now_v7(), Role::Admin)
    }

    pub fn customer(&self) -> String {
        self.token(Uuid::now_v7(), Role::Customer)
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        call(&self.router, method, path, token, body).await
    }
}

pub(crate) fn claims(user_id: Uuid, role: Role) -> Claims {
    Claims {
        sub: user_id,
        role,
        iss: "herald".to_owned(),
        iat: 0,
        exp: i64::MAX,
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

pub(crate) async fn outbox_events(db: &Database) -> Vec<Envelope> {
    sqlx::query("SELECT envelope FROM herald_outbox ORDER BY seq")
        .fetch_all(db.pool())
        .await
        .unwrap()
        .iter()
        .map(|row| serde_json::from_str(&row.get::<String, _>(0)).unwrap())
        .collect()
}

pub(crate) async fn drop_schema(db: &Database) {
    if let Some(schema) = db.schema() {
        sqlx::query(&format!("DROP SCHEMA \"{schema}\" CASCADE"))
            .execute(db.pool())
            .await
            .unwrap();
    }
    db.close().await;
}

pub(crate) async fn call(
    router: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let body = match body {
        Some(json) => {
            request = request.header("content-type", "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    let response = router
        .clone()
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            panic!(
                "{status}: a body that is not JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    (status, body)
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
