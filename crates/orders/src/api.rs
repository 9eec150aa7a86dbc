//! The orders service's HTTP API. Every route acts for the caller of the token, and the
//! token travels on to the products service.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRef, Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use herald_events::OrderStatus;
use herald_platform::auth::{Caller, TokenVerifier};
use herald_platform::http::created;
use herald_platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::checkout::place_order;
use crate::domain::{LineInput, OrderRequest, PageSize, Viewer};
use crate::lifecycle::change_status;
use crate::orders::Orders;
use crate::store::{self, Order};

#[derive(Clone)]
pub struct OrdersState {
    pub orders: Orders,
    pub verifier: TokenVerifier,
}

impl FromRef<OrdersState> for TokenVerifier {
    fn from_ref(state: &OrdersState) -> TokenVerifier {
        state.verifier.clone()
    }
}

pub fn router(state: OrdersState) -> Router {
    Router::new()
        .route("/orders", post(place).get(my_orders))
        .route("/orders/{id}", get(order_by_id))
        .route("/orders/{id}/cancel", post(cancel))
        .route("/orders/{id}/status", post(update_status))
        .with_state(state)
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PlaceOrderRequest {
    pub items: Vec<LineInput>,
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    pub first: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StatusRequest {
    pub status: String,
}

fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    body.map(|Json(body)| body)
        .map_err(|e| ApiError::bad_input(e.body_text()))
}

/// A malformed id names no order, like an unknown one or another buyer's.
fn order_id(raw: &str) -> ApiResult<Uuid> {
    raw.parse()
        .map_err(|_| ApiError::not_found(format!("no order {raw}")))
}

async fn place(
    State(state): State<OrdersState>,
    Caller(claims): Caller,
    body: Result<Json<PlaceOrderRequest>, JsonRejection>,
) -> ApiResult<Response> {
    let request = OrderRequest::parse(&json_body(body)?.items)?;
    let order = place_order(&state.orders, &claims, &request).await?;
    Ok(created(order))
}

async fn my_orders(
    State(state): State<OrdersState>,
    Caller(claims): Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<Order>>> {
    let Query(query) = query.map_err(|e| ApiError::bad_input(e.body_text()))?;
    let first = PageSize::parse(query.first)?;
    Ok(Json(
        store::list_orders(&state.orders.db, claims.sub, first).await?,
    ))
}

async fn order_by_id(
    State(state): State<OrdersState>,
    Caller(claims): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Order>> {
    let id = order_id(&id)?;
    store::find_order(state.orders.db.pool(), id, Viewer::of(&claims))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no order {id}")))
}

async fn cancel(
    State(state): State<OrdersState>,
    Caller(claims): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Order>> {
    let id = order_id(&id)?;
    let viewer = Viewer::of(&claims);
    let order = change_status(&state.orders, viewer, &claims, id, OrderStatus::Cancelled).await?;
    Ok(Json(order))
}

async fn update_status(
    State(state): State<OrdersState>,
    Caller(claims): Caller,
    Path(id): Path<String>,
    body: Result<Json<StatusRequest>, JsonRejection>,
) -> ApiResult<Json<Order>> {
    if !claims.is_admin() {
        return Err(ApiError::forbidden(
            "only admins can change an order's status",
        ));
    }
    let raw = json_body(body)?.status;
    let to = OrderStatus::parse(&raw)
        .ok_or_else(|| ApiError::bad_input(format!("'{raw}' is not an order status")))?;
    let id = order_id(&id)?;
    let order = change_status(&state.orders, Viewer::Admin, &claims, id, to).await?;
    Ok(Json(order))
}
