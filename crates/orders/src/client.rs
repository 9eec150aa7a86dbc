//! Orders, as other services use them: place one, list the caller's, read one, cancel one,
//! list everyone's and move one along (admins). [`OrdersApi`] is the one way to call them, with two
//! implementations: [`Orders`] itself, in the same process (no HTTP, no JSON, no second
//! token check), and [`OrdersOverHttp`], across processes with a service credential. The
//! HTTP routes of `api` serve the second with the first, so both run the same code.

use herald_events::OrderStatus;
use herald_platform::auth::Claims;
use herald_platform::http::ServiceClient;
use herald_platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::checkout::place_order;
use crate::domain::{LineInput, OrderRequest, PageSize, Viewer};
use crate::lifecycle::change_status;
use crate::orders::Orders;
use crate::store::{self, Order};

/// The lines of an order to place, as the buyer sent them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlaceOrderRequest {
    pub items: Vec<LineInput>,
}

/// How many of the caller's orders to list (20 when left out).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct ListQuery {
    pub first: Option<i64>,
}

/// Which of every buyer's orders an admin lists: how many (20 when left out), and only
/// those in `status` when it is given.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct AllOrdersQuery {
    pub first: Option<i64>,
    pub status: Option<OrderStatus>,
}

/// The status an admin moves an order to, as the HTTP route takes it.
#[derive(Debug, Serialize, Deserialize)]
pub struct StatusRequest {
    pub status: String,
}

/// The orders operations, acting for a signed-in user.
#[async_trait::async_trait]
pub trait OrdersApi: Send + Sync + 'static {
    /// Places and confirms an order at catalog prices, reserving its stock; BAD_USER_INPUT
    /// for an invalid request, INSUFFICIENT_STOCK or NOT_FOUND from the catalog.
    async fn place_order(&self, acting: &Claims, request: &PlaceOrderRequest) -> ApiResult<Order>;
    /// The caller's orders, newest first.
    async fn my_orders(&self, acting: &Claims, query: &ListQuery) -> ApiResult<Vec<Order>>;
    /// Every buyer's orders, newest first, only those in `query.status` if given; for
    /// admins only (FORBIDDEN otherwise).
    async fn all_orders(&self, acting: &Claims, query: &AllOrdersQuery) -> ApiResult<Vec<Order>>;
    /// One of the caller's orders (admins: any); NOT_FOUND otherwise.
    async fn order(&self, acting: &Claims, id: Uuid) -> ApiResult<Order>;
    /// Cancels an order that has not shipped (the caller's own, or any for admins).
    async fn cancel(&self, acting: &Claims, id: Uuid) -> ApiResult<Order>;
    /// Moves any order to `status`, for admins only (FORBIDDEN otherwise).
    async fn update_status(
        &self,
        acting: &Claims,
        id: Uuid,
        status: OrderStatus,
    ) -> ApiResult<Order>;
}

/// Only admins move an order along (buyers only cancel theirs).
pub(crate) fn may_change_status(acting: &Claims) -> ApiResult<()> {
    if acting.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only admins can change an order's status",
        ))
    }
}

/// Only admins list every buyer's orders (buyers list theirs).
pub(crate) fn may_list_all(acting: &Claims) -> ApiResult<()> {
    if acting.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only admins can list every customer's orders",
        ))
    }
}

pub(crate) fn no_order(id: impl std::fmt::Display) -> ApiError {
    ApiError::not_found(format!("no order {id}"))
}

#[async_trait::async_trait]
impl OrdersApi for Orders {
    async fn place_order(&self, acting: &Claims, request: &PlaceOrderRequest) -> ApiResult<Order> {
        let request = OrderRequest::parse(&request.items)?;
        place_order(self, acting, &request).await
    }

    async fn my_orders(&self, acting: &Claims, query: &ListQuery) -> ApiResult<Vec<Order>> {
        let first = PageSize::parse(query.first)?;
        Ok(store::list_orders(&self.db, acting.sub, first).await?)
    }

    async fn all_orders(&self, acting: &Claims, query: &AllOrdersQuery) -> ApiResult<Vec<Order>> {
        may_list_all(acting)?;
        let first = PageSize::parse(query.first)?;
        Ok(store::list_all_orders(&self.db, query.status, first).await?)
    }

    async fn order(&self, acting: &Claims, id: Uuid) -> ApiResult<Order> {
        store::find_order(self.db.pool(), id, Viewer::of(acting))
            .await?
            .ok_or_else(|| no_order(id))
    }

    async fn cancel(&self, acting: &Claims, id: Uuid) -> ApiResult<Order> {
        change_status(self, Viewer::of(acting), acting, id, OrderStatus::Cancelled).await
    }

    async fn update_status(
        &self,
        acting: &Claims,
        id: Uuid,
        status: OrderStatus,
    ) -> ApiResult<Order> {
        may_change_status(acting)?;
        change_status(self, Viewer::Admin, acting, id, status).await
    }
}

/// The orders of an orders service in another process.
#[derive(Clone, Debug)]
pub struct OrdersOverHttp {
    service: ServiceClient,
}

impl OrdersOverHttp {
    /// `service` calls the orders service.
    pub fn new(service: ServiceClient) -> OrdersOverHttp {
        OrdersOverHttp { service }
    }
}

#[async_trait::async_trait]
impl OrdersApi for OrdersOverHttp {
    async fn place_order(&self, acting: &Claims, request: &PlaceOrderRequest) -> ApiResult<Order> {
        self.service.post("/orders", request, Some(acting)).await
    }

    async fn my_orders(&self, acting: &Claims, query: &ListQuery) -> ApiResult<Vec<Order>> {
        let path = match query.first {
            Some(first) => format!("/orders?first={first}"),
            None => "/orders".to_owned(),
        };
        self.service.get(&path, Some(acting)).await
    }

    async fn all_orders(&self, acting: &Claims, query: &AllOrdersQuery) -> ApiResult<Vec<Order>> {
        let mut params = Vec::new();
        if let Some(first) = query.first {
            params.push(format!("first={first}"));
        }
        if let Some(status) = query.status {
            params.push(format!("status={}", status.as_str()));
        }
        let path = if params.is_empty() {
            "/orders/all".to_owned()
        } else {
            format!("/orders/all?{}", params.join("&"))
        };
        self.service.get(&path, Some(acting)).await
    }

    async fn order(&self, acting: &Claims, id: Uuid) -> ApiResult<Order> {
        self.service
            .get(&format!("/orders/{id}"), Some(acting))
            .await
    }

    async fn cancel(&self, acting: &Claims, id: Uuid) -> ApiResult<Order> {
        self.service
            .post(&format!("/orders/{id}/cancel"), &(), Some(acting))
            .await
    }

    async fn update_status(
        &self,
        acting: &Claims,
        id: Uuid,
        status: OrderStatus,
    ) -> ApiResult<Order> {
        let body = StatusRequest {
            status: status.as_str().to_owned(),
        };
        self.service
            .post(&format!("/orders/{id}/status"), &body, Some(acting))
            .await
    }
}
