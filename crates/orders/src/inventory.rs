//! The stock of the products service, as orders uses it: reserve an order's lines, release
//! them again, through the products service's [`StockApi`] (in process when products
//! runs here, over HTTP otherwise).

use std::sync::Arc;

use herald_platform::auth::Claims;
use herald_platform::{ApiError, ApiResult};
use herald_products::client::StockApi;
use herald_products::domain::ReservationRequest;
use herald_products::store::reservations::Reservation;
use uuid::Uuid;

use crate::domain::ProductLine;

#[derive(Clone)]
pub struct Inventory {
    products: Arc<dyn StockApi>,
}

impl Inventory {
    pub fn new(products: Arc<dyn StockApi>) -> Inventory {
        Inventory { products }
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
            lines: lines
                .iter()
                .map(|line| (line.product_id, line.quantity.get()))
                .collect(),
        };
        let reservation = self.products.reserve_stock(acting, &request).await?;
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
        self.products.release_stock(acting, order_id).await
    }
}
