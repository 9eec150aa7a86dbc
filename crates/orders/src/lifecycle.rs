//! Moving an order along its lifecycle: confirming, shipping, delivering, cancelling.
//! Each change is a conditional update on the status it expects, with its event in the
//! same transaction, so of two concurrent changes only one wins and is announced.

use std::time::Duration;

use herald_events::{
    Envelope, OrderCancelled, OrderConfirmed, OrderDelivered, OrderPlaced, OrderShipped,
    OrderStatus,
};
use herald_platform::auth::Claims;
use herald_platform::{ApiError, ApiResult};
use uuid::Uuid;

use crate::SERVICE;
use crate::domain::{Viewer, statuses_leading_to, transition_refused};
use crate::orders::Orders;
use crate::store::{self, Order};

/// How long a cancel waits for the products service to release the stock.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// Moves the order to `to` if `viewer` may see it and its status allows. A cancel then
/// gives the order's stock back.
#[tracing::instrument(skip_all, fields(order_id = %order_id, to = to.as_str()))]
pub async fn change_status(
    orders: &Orders,
    viewer: Viewer,
    acting: &Claims,
    order_id: Uuid,
    to: OrderStatus,
) -> ApiResult<Order> {
    let mut tx = orders.db.begin().await?;
    let from = statuses_leading_to(to);
    let Some(order) = store::change_status(&mut tx, order_id, &from, to, viewer).await? else {
        let current = store::find_order(&mut *tx, order_id, viewer).await?;
        tx.rollback().await?;
        return Err(match current {
            Some(order) => transition_refused(order_id, order.status, to),
            None => ApiError::not_found(format!("no order {order_id}")),
        });
    };
    orders.outbox.add(&mut tx, &order_event(&order)).await?;
    orders.outbox.commit(tx).await?;
    metrics::counter!("orders_status_changes_total", "status" => to.as_str()).increment(1);
    if to == OrderStatus::Cancelled {
        release_stock(orders, order_id, acting).await;
    }
    Ok(order)
}

/// Best effort: the products service also releases on `order.cancelled`, idempotently, so
/// a call lost here loses no stock.
async fn release_stock(orders: &Orders, order_id: Uuid, acting: &Claims) {
    let released = tokio::time::timeout(
        RELEASE_TIMEOUT,
        orders.inventory.release_stock(order_id, acting),
    )
    .await;
    let error = match released {
        Ok(Ok(_)) => return,
        Ok(Err(e)) => format!("{e:#}"),
        Err(_) => format!("no answer within {RELEASE_TIMEOUT:?}"),
    };
    tracing::warn!(
        order_id = %order_id,
        error,
        "releasing stock of a cancelled order failed; products releases it on order.cancelled"
    );
}

/// The event announcing that the order reached its current status.
pub fn order_event(order: &Order) -> Envelope {
    let subject = Some(order.user_id.to_string());
    let snapshot = order.snapshot();
    match order.status {
        OrderStatus::Placed => Envelope::new(SERVICE, subject, &OrderPlaced(snapshot)),
        OrderStatus::Confirmed => Envelope::new(SERVICE, subject, &OrderConfirmed(snapshot)),
        OrderStatus::Shipped => Envelope::new(SERVICE, subject, &OrderShipped(snapshot)),
        OrderStatus::Delivered => Envelope::new(SERVICE, subject, &OrderDelivered(snapshot)),
        OrderStatus::Cancelled => Envelope::new(SERVICE, subject, &OrderCancelled(snapshot)),
    }
}
