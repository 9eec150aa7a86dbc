//! Placing an order: a small saga across the orders and products services that never
//! loses stock.
//!
//! 1. The order is stored PLACED, unpriced and without events: no one sees it yet.
//! 2. The products service reserves every line or none, keyed by the order id, so asking
//!    again never reserves twice.
//! 3. One transaction prices and confirms the order and adds `order.placed` and
//!    `order.confirmed` to the outbox.
//!
//! A refusal (INSUFFICIENT_STOCK, NOT_FOUND, BAD_USER_INPUT) reserved nothing: the order is
//! deleted and the caller gets the same error. Any other failure leaves the order PLACED
//! and unpriced, its stock possibly reserved, for a later reconciliation to finish (reserve
//! again: same answer) or release.

use herald_events::{Envelope, OrderConfirmed, OrderPlaced, OrderStatus};
use herald_platform::auth::Claims;
use herald_platform::{ApiError, ApiResult, ErrorCode};
use uuid::Uuid;

use crate::SERVICE;
use crate::domain::{OrderRequest, PricingError, price_order};
use crate::orders::Orders;
use crate::store::{self, Order};

/// Places `request` for `buyer`, reserving its stock on their behalf; answers the
/// CONFIRMED order.
#[tracing::instrument(skip_all, fields(user_id = %buyer.sub, order_id))]
pub async fn place_order(
    orders: &Orders,
    buyer: &Claims,
    request: &OrderRequest,
) -> ApiResult<Order> {
    let order_id = Uuid::now_v7();
    tracing::Span::current().record("order_id", tracing::field::display(order_id));
    let mut tx = orders.db.begin().await?;
    store::insert_placed_order(&mut tx, order_id, buyer.sub, request.lines()).await?;
    tx.commit().await?;

    let reservation = match orders
        .inventory
        .reserve_stock(order_id, request.lines(), buyer)
        .await
    {
        Ok(reservation) => reservation,
        Err(refusal) if is_refusal(&refusal) => {
            store::delete_unpriced_order(&orders.db, order_id).await?;
            metrics::counter!("orders_refused_total", "code" => refusal.code().as_str())
                .increment(1);
            return Err(refusal);
        }
        Err(e) => return Err(left_placed(order_id, e)),
    };

    let priced = match price_order(request, &reservation.items) {
        Ok(priced) => priced,
        Err(
            refused @ (PricingError::MixedCurrencies { .. } | PricingError::TotalTooLarge { .. }),
        ) => {
            // Deleted only once the stock is back; otherwise reconciliation releases it.
            match orders.inventory.release_stock(order_id, buyer).await {
                Ok(_) => {
                    store::delete_unpriced_order(&orders.db, order_id).await?;
                }
                Err(e) => tracing::warn!(
                    order_id = %order_id,
                    error = format!("{e:#}"),
                    "releasing a refused reservation failed; the order stays PLACED"
                ),
            }
            return Err(ApiError::bad_input(refused.to_string()));
        }
        Err(mismatch @ PricingError::Mismatch(_)) => {
            return Err(left_placed(order_id, anyhow::Error::new(mismatch).into()));
        }
    };

    let mut tx = orders.db.begin().await?;
    let Some(order) = store::confirm_order(&mut tx, order_id, &priced).await? else {
        return Err(left_placed(
            order_id,
            anyhow::anyhow!("the order was no longer waiting for its reservation").into(),
        ));
    };
    let subject = Some(buyer.sub.to_string());
    let placed = OrderPlaced(herald_events::OrderSnapshot {
        status: OrderStatus::Placed,
        ..order.snapshot()
    });
    let confirmed = OrderConfirmed(order.snapshot());
    for event in [
        Envelope::new(SERVICE, subject.clone(), &placed),
        Envelope::new(SERVICE, subject, &confirmed),
    ] {
        orders.outbox.add(&mut tx, &event).await?;
    }
    orders.outbox.commit(tx).await?;
    metrics::counter!("orders_placed_total").increment(1);
    Ok(order)
}

/// Whether the products service refused the reservation, which then reserved nothing.
fn is_refusal(e: &ApiError) -> bool {
    matches!(
        e.code(),
        ErrorCode::InsufficientStock | ErrorCode::NotFound | ErrorCode::BadUserInput
    )
}

/// An unexpected failure after the order was stored: it stays PLACED and unpriced, its
/// stock possibly reserved, until reconciliation finishes or releases it. The caller gets
/// INTERNAL.
fn left_placed(order_id: Uuid, e: ApiError) -> ApiError {
    metrics::counter!("orders_left_placed_total").increment(1);
    let cause = match e {
        ApiError::Unexpected(cause) => cause,
        public @ (ApiError::Public { .. }
        | ApiError::Throttled { .. }
        | ApiError::InvalidRows { .. }) => {
            anyhow::anyhow!("products answered {}: {public}", public.code().as_str())
        }
    };
    ApiError::Unexpected(cause.context(format!(
        "placing order {order_id}; it stays PLACED until reconciled"
    )))
}
