//! A tiny products service for tests: a real HTTP server on a loopback port with the two
//! reservation endpoints the orders service calls, its stock in memory. It checks the
//! caller's service credential like the products service does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use herald_platform::auth::ServiceCredentials;
use herald_platform::testing::TestKey;
use herald_platform::{ApiError, ErrorCode};
use herald_products::store::reservations::{Reservation, ReservedLine};
use serde_json::{Value, json};
use uuid::Uuid;

#[derive(Debug, Clone)]
struct Product {
    name: String,
    category: String,
    price_cents: i64,
    currency: String,
    stock: i64,
}

#[derive(Debug, Clone)]
struct Reserved {
    answer: Reservation,
    released: bool,
}

#[derive(Default)]
struct Shelf {
    credentials: Option<ServiceCredentials>,
    products: HashMap<Uuid, Product>,
    reservations: HashMap<Uuid, Reserved>,
    /// The token subject of every reservation request, in order.
    reserving_callers: Vec<Uuid>,
    /// The order id of every release request, in order.
    release_calls: Vec<Uuid>,
    releases_fail: bool,
}

pub(crate) struct StockRoom {
    shelf: Arc<Mutex<Shelf>>,
    addr: std::net::SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for StockRoom {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl StockRoom {
    pub async fn start() -> StockRoom {
        let shelf = Arc::new(Mutex::new(Shelf::default()));
        let router = Router::new()
            .route("/reservations", post(reserve))
            .route("/reservations/{order_id}/release", post(release))
            .with_state(shelf.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        StockRoom {
            shelf,
            addr,
            server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn shelf(&self) -> MutexGuard<'_, Shelf> {
        self.shelf.lock().unwrap()
    }

    /// Accepts service credentials signed with `key`'s service key.
    pub fn trust(&self, key: &TestKey) {
        self.shelf().credentials = Some(key.service_key.credentials("products"));
    }

    /// Adds a product in category "coffee"; returns its id.
    pub fn add(&self, name: &str, price_cents: i64, currency: &str, stock: i64) -> Uuid {
        let id = Uuid::now_v7();
        self.shelf().products.insert(
            id,
            Product {
                name: name.to_owned(),
                category: "coffee".to_owned(),
                price_cents,
                currency: currency.to_owned(),
                stock,
            },
        );
        id
    }

    pub fn stock(&self, product_id: Uuid) -> i64 {
        self.shelf().products[&product_id].stock
    }

    pub fn set_price(&self, product_id: Uuid, price_cents: i64) {
        if let Some(product) = self.shelf().products.get_mut(&product_id) {
            product.price_cents = price_cents;
        }
    }

    pub fn reservations(&self) -> usize {
        self.shelf().reservations.len()
    }

    pub fn reserving_callers(&self) -> Vec<Uuid> {
        self.shelf().reserving_callers.clone()
    }

    pub fn release_calls(&self) -> Vec<Uuid> {
        self.shelf().release_calls.clone()
    }

    /// From now on every release answers 500 (and releases nothing).
    pub fn fail_releases(&self) {
        self.shelf().releases_fail = true;
    }
}

/// The user the orders service acts for, if its credential is good.
fn authenticate(shelf: &Shelf, headers: &HeaderMap) -> Result<Uuid, ApiError> {
    let token = headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or_default();
    let Some(credentials) = &shelf.credentials else {
        return Err(ApiError::unauthenticated(
            "no key to check credentials with",
        ));
    };
    let call = credentials.verify(token)?;
    if call.svc != "orders" {
        return Err(ApiError::forbidden("only orders reserves stock"));
    }
    call.act
        .map(|user| user.sub)
        .ok_or_else(|| ApiError::unauthenticated("the call acts for no user"))
}

async fn reserve(
    State(shelf): State<Arc<Mutex<Shelf>>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<Json<Reservation>, ApiError> {
    let mut shelf = shelf.lock().unwrap();
    let caller = authenticate(&shelf, &headers)?;
    shelf.reserving_callers.push(caller);
    let order_id: Uuid = serde_json::from_value(body["orderId"].clone()).unwrap();
    if let Some(done) = shelf.reservations.get(&order_id) {
        return Ok(Json(done.answer.clone()));
    }
    let mut lines = Vec::new();
    for item in body["items"].as_array().unwrap() {
        let product_id: Uuid = serde_json::from_value(item["productId"].clone()).unwrap();
        let quantity = item["quantity"].as_i64().unwrap();
        let Some(product) = shelf.products.get(&product_id) else {
            return Err(ApiError::not_found(format!("no product {product_id}")));
        };
        if product.stock < quantity {
            return Err(ApiError::new(
                ErrorCode::InsufficientStock,
                format!(
                    "not enough {} in stock: {} left, {quantity} wanted",
                    product.name, product.stock
                ),
            ));
        }
        lines.push(ReservedLine {
            product_id,
            name: product.name.clone(),
            category: product.category.clone(),
            quantity,
            unit_price_cents: product.price_cents,
            currency: product.currency.clone(),
        });
    }
    for line in &lines {
        if let Some(product) = shelf.products.get_mut(&line.product_id) {
            product.stock -= line.quantity;
        }
    }
    let answer = Reservation {
        order_id,
        items: lines,
    };
    shelf.reservations.insert(
        order_id,
        Reserved {
            answer: answer.clone(),
            released: false,
        },
    );
    Ok(Json(answer))
}

async fn release(
    State(shelf): State<Arc<Mutex<Shelf>>>,
    headers: HeaderMap,
    Path(order_id): Path<Uuid>,
) -> Result<Json<Value>, ApiError> {
    let mut shelf = shelf.lock().unwrap();
    authenticate(&shelf, &headers)?;
    shelf.release_calls.push(order_id);
    if shelf.releases_fail {
        return Err(ApiError::new(
            ErrorCode::Internal,
            "the stock room is on fire",
        ));
    }
    let Some(reserved) = shelf
        .reservations
        .get_mut(&order_id)
        .filter(|reserved| !reserved.released)
    else {
        return Ok(Json(json!({ "released": false })));
    };
    reserved.released = true;
    let lines = reserved.answer.items.clone();
    for line in lines {
        if let Some(product) = shelf.products.get_mut(&line.product_id) {
            product.stock += line.quantity;
        }
    }
    Ok(Json(json!({ "released": true })))
}
