//! The stock of the products service, as orders uses it: reserve an order's lines, release
//! them again. The one place that knows the products service's reservation API.

use herald_platform::auth::{Claims, ServiceCredentials};
use herald_platform::http::ServiceClient;
use herald_platform::{ApiError, ApiResult};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{ProductLine, ReservedLine};

#[derive(Clone, Debug)]
pub struct Inventory {
    products: ServiceClient,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReservationRequest {
    order_id: Uuid,
    items: Vec<ReservationItem>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReservationItem {
    product_id: Uuid,
    quantity: i64,
}

/// The products service's answer to a reservation: every line, priced by the catalog.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    pub order_id: Uuid,
    pub items: Vec<ReservedLine>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Released {
    released: bool,
}

impl Inventory {
    pub fn new(credentials: &ServiceCredentials, products_url: &str) -> Inventory {
        Inventory {
            products: ServiceClient::new(credentials, "products", products_url),
        }
    }

    /// Reserves every line of the order or none (INSUFFICIENT_STOCK or NOT_FOUND naming
    /// the product). Idempotent by order id: asking again answers the same reservation.
    #[tracing::instrument(skip_all, fields(order_id = %order_id))]
    pub async fn reserve_stock(
        &self,
        order_id: Uuid,
        lines: &[ProductLine],
        acting: &Claims,
    ) -> ApiResult<Reservation> {
        let request = ReservationRequest {
            order_id,
            items: lines
                .iter()
                .map(|line| ReservationItem {
                    product_id: line.product_id,
                    quantity: line.quantity.get(),
                })
                .collect(),
        };
        let reservation: Reservation = self
            .products
            .post("/reservations", &request, Some(acting))
            .await?;
        if reservation.order_id != order_id {
            return Err(ApiError::Unexpected(anyhow::anyhow!(
                "products answered the reservation of order {} for order {order_id}",
                reservation.order_id
            )));
        }
        Ok(reservation)
    }

    /// Gives the order's reserved stock back; false if there was nothing (left) to release.
    #[tracing::instrument(skip_all, fields(order_id = %order_id))]
    pub async fn release_stock(&self, order_id: Uuid, acting: &Claims) -> ApiResult<bool> {
        let released: Released = self
            .products
            .post(
                &format!("/reservations/{order_id}/release"),
                &serde_json::json!({}),
                Some(acting),
            )
            .await?;
        Ok(released.released)
    }
}
