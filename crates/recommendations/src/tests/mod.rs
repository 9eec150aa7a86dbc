//! Tests over real storage, on every backend set: the consumer fed with events, the API
//! driven through its router with real tokens, and the whole service on the bus.

#![allow(clippy::unwrap_used)]

mod api;
mod consumer;
mod contract;
mod recommendations;
mod service;

/// Every module's tests, for the harness.
pub const CASES: &[&[herald_platform::testing::harness::Case]] = &[
    api::CASES,
    consumer::CASES,
    contract::CASES,
    recommendations::CASES,
    service::CASES,
];

use axum::Router;
use axum::http::{Method, StatusCode};
use herald_events::{
    Envelope, OrderCancelled, OrderConfirmed, OrderLine, OrderSnapshot, OrderStatus, OutOfStock,
    Preferences, ProductCreated, Role, StockLevel, UserRegistered,
};
use herald_platform::cache::Cache;
use herald_platform::db::Database;
use herald_platform::http::{Readiness, service_router};
use herald_platform::testing::{
    BackendSet, TestKey, call, drop_schema, isolated_settings, migrated_database,
};
use serde_json::Value;
use uuid::Uuid;

use crate::advisor::{Advisor, AdvisorSettings};
use crate::api::RecommendationsState;
use crate::consumer::RecommendationsConsumer;
use crate::{SERVICE, migrations};

/// One recommendations service on fresh storage, without the bus: events are handed to
/// the consumer directly.
pub(crate) struct TestService {
    pub db: Database,
    pub advisor: Advisor,
    pub consumer: RecommendationsConsumer,
    pub router: Router,
    pub recommendations: crate::recommendations::Recommendations,
    pub key: TestKey,
    _dir: tempfile::TempDir,
}

/// A product as the tests create it.
#[derive(Debug, Clone)]
pub(crate) struct TestProduct {
    pub id: Uuid,
    pub name: String,
    pub category: String,
}

impl TestService {
    pub async fn start(set: BackendSet) -> TestService {
        let dir = tempfile::tempdir().unwrap();
        let settings = isolated_settings(set, dir.path());
        let db = migrated_database(&settings, SERVICE, &migrations()).await;
        let cache = Cache::connect(&settings).await.unwrap();
        let advisor = Advisor::new(db.clone(), cache, AdvisorSettings::default());
        let consumer = RecommendationsConsumer::new(advisor.clone());
        let key = TestKey::generate(crate::SERVICE);
        let recommendations = crate::recommendations::Recommendations::new(advisor.clone());
        let state = RecommendationsState {
            recommendations: recommendations.clone(),
            verifier: key.verifier.clone(),
        };
        let router = service_router(SERVICE, crate::api::router(state), Readiness::default());
        TestService {
            db,
            advisor,
            consumer,
            router,
            recommendations,
            key,
            _dir: dir,
        }
    }

    pub async fn finish(self) {
        drop_schema(&self.db).await;
    }

    pub async fn hear(&self, event: &Envelope) {
        use herald_platform::bus::EventHandler;
        self.consumer.handle(event).await.unwrap();
    }

    /// A product in the catalog replica, as `product.created` announces it.
    pub async fn add_product(&self, name: &str, category: &str, stock: i64) -> TestProduct {
        let product = TestProduct {
            id: Uuid::now_v7(),
            name: name.to_owned(),
            category: category.to_owned(),
        };
        self.hear(&created(&product, stock)).await;
        product
    }

    /// A confirmed order of `products` by `user_id`.
    pub async fn buy(&self, user_id: Uuid, products: &[&TestProduct]) -> Uuid {
        let event = confirmed(user_id, products);
        self.hear(&event).await;
        event.payload::<OrderConfirmed>().unwrap().0.order_id
    }

    pub fn token(&self, user_id: Uuid) -> String {
        self.key.token(user_id, Role::Customer)
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

    /// Records an activity through the API as `user_id`; the answer's status.
    pub async fn act(&self, user_id: Uuid, body: Value) -> StatusCode {
        let token = self.token(user_id);
        self.call(Method::POST, "/activity", Some(&token), Some(body))
            .await
            .0
    }

    /// `GET /recommendations?limit=…` as `user_id`: (product id, reason) pairs.
    pub async fn recommended(&self, user_id: Uuid, limit: usize) -> Vec<(Uuid, String)> {
        let token = self.token(user_id);
        let (status, body) = self
            .call(
                Method::GET,
                &format!("/recommendations?limit={limit}"),
                Some(&token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body.as_array()
            .unwrap()
            .iter()
            .map(|r| {
                assert!(r["score"].as_f64().unwrap() > 0.0, "{r}");
                (
                    r["productId"].as_str().unwrap().parse().unwrap(),
                    r["reason"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

pub(crate) fn created(product: &TestProduct, stock: i64) -> Envelope {
    Envelope::new(
        "products",
        None,
        &ProductCreated {
            product_id: product.id,
            name: product.name.clone(),
            category: product.category.clone(),
            price_cents: 1299,
            currency: "USD".to_owned(),
            stock,
        },
    )
}

pub(crate) fn out_of_stock(product: &TestProduct) -> Envelope {
    Envelope::new(
        "products",
        None,
        &OutOfStock(StockLevel {
            product_id: product.id,
            name: product.name.clone(),
            stock: 0,
            threshold: 5,
        }),
    )
}

fn snapshot(user_id: Uuid, status: OrderStatus, products: &[&TestProduct]) -> OrderSnapshot {
    OrderSnapshot {
        order_id: Uuid::now_v7(),
        user_id,
        status,
        items: products
            .iter()
            .map(|p| OrderLine {
                product_id: p.id,
                product_name: p.name.clone(),
                category: p.category.clone(),
                quantity: 1,
                unit_price_cents: 1299,
            })
            .collect(),
        total_cents: 1299 * products.len() as i64,
        currency: "USD".to_owned(),
        placed_at: chrono::Utc::now(),
    }
}

pub(crate) fn confirmed(user_id: Uuid, products: &[&TestProduct]) -> Envelope {
    let order = snapshot(user_id, OrderStatus::Confirmed, products);
    Envelope::new("orders", Some(user_id.to_string()), &OrderConfirmed(order))
}

/// `order.cancelled` of the order a `confirmed` envelope announced.
pub(crate) fn cancelled(confirmed: &Envelope) -> Envelope {
    let OrderConfirmed(mut order) = confirmed.payload().unwrap();
    order.status = OrderStatus::Cancelled;
    Envelope::new(
        "orders",
        Some(order.user_id.to_string()),
        &OrderCancelled(order),
    )
}

pub(crate) fn registered(user_id: Uuid, categories: &[&str], version: i64) -> Envelope {
    Envelope::new(
        "users",
        Some(user_id.to_string()),
        &UserRegistered {
            user_id,
            name: "Ada".to_owned(),
            email: format!("{user_id}@example.com"),
            role: Role::Customer,
            preferences: Preferences {
                categories: categories.iter().map(|c| (*c).to_owned()).collect(),
                ..Preferences::default()
            },
            preferences_version: version,
        },
    )
}
