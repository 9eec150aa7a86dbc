//! The orders service's HTTP API, for Herald's services: every route acts for the user of
//! the service credential, through the same [`Orders`] other services in this process call
//! directly.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRef, Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use herald_events::OrderStatus;
use herald_platform::auth::{Caller, TokenVerifier};
use herald_platform::http::created;
use herald_platform::{ApiError, ApiResult};
use uuid::Uuid;

use crate::client::{
    AllOrdersQuery, ListQuery, OrdersApi, PlaceOrderRequest, StatusRequest, may_change_status,
    may_list_all, no_order,
};
use crate::orders::Orders;
use crate::store::Order;

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
        // A static segment: matched before `/orders/{id}`, and no order's id (a UUID).
        .route("/orders/all", get(all_orders))
        .route("/orders/{id}", get(order_by_id))
        .route("/orders/{id}/cancel", post(cancel))
        .route("/orders/{id}/status", post(update_status))
        .with_state(state)
}

fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> ApiResult<T> {
    body.map(|Json(body)| body)
        .map_err(|e| ApiError::bad_input(e.body_text()))
}

/// A malformed id names no order, like an unknown one or another buyer's.
fn order_id(raw: &str) -> ApiResult<Uuid> {
    raw.parse().map_err(|_| no_order(raw))
}

async fn place(
    State(state): State<OrdersState>,
    Caller(claims): Caller,
    body: Result<Json<PlaceOrderRequest>, JsonRejection>,
) -> ApiResult<Response> {
    let order = state.orders.place_order(&claims, &json_body(body)?).await?;
    Ok(created(order))
}

async fn my_orders(
    State(state): State<OrdersState>,
    Caller(claims): Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<Order>>> {
    let Query(query) = query.map_err(|e| ApiError::bad_input(e.body_text()))?;
    Ok(Json(state.orders.my_orders(&claims, &query).await?))
}

async fn all_orders(
    State(state): State<OrdersState>,
    Caller(claims): Caller,
    query: Result<Query<AllOrdersQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<Order>>> {
    // Before the query is read, so a customer learns nothing from its mistakes.
    may_list_all(&claims)?;
    let Query(query) = query.map_err(|e| ApiError::bad_input(e.body_text()))?;
    Ok(Json(state.orders.all_orders(&claims, &query).await?))
}

async fn order_by_id(
    State(state): State<OrdersState>,
    Caller(claims): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Order>> {
    Ok(Json(state.orders.order(&claims, order_id(&id)?).await?))
}

async fn cancel(
    State(state): State<OrdersState>,
    Caller(claims): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<Order>> {
    Ok(Json(state.orders.cancel(&claims, order_id(&id)?).await?))
}

async fn update_status(
    State(state): State<OrdersState>,
    Caller(claims): Caller,
    Path(id): Path<String>,
    body: Result<Json<StatusRequest>, JsonRejection>,
) -> ApiResult<Json<Order>> {
    // Before the request is read, so a customer learns nothing from its mistakes.
    may_change_status(&claims)?;
    let raw = json_body(body)?.status;
    let to = OrderStatus::parse(&raw)
        .ok_or_else(|| ApiError::bad_input(format!("'{raw}' is not an order status")))?;
    let id = order_id(&id)?;
    Ok(Json(state.orders.update_status(&claims, id, to).await?))
}
