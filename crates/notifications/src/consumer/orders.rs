//! `order.*`: the buyer hears when their order is confirmed, shipped, delivered or
//! cancelled. `order.placed` is not notified: order.confirmed follows it in the same
//! transaction, and one notification per placement is enough.

use anyhow::anyhow;
use herald_events::{Envelope, OrderSnapshot, OrderStatus, order_event_type};
use herald_platform::bus::HandlerError;

use super::{NotificationsConsumer, data};
use crate::recipients::find_recipient;
use crate::templates;

const NOTIFIED: [OrderStatus; 4] = [
    OrderStatus::Confirmed,
    OrderStatus::Shipped,
    OrderStatus::Delivered,
    OrderStatus::Cancelled,
];

/// The status an order event announces, if the buyer is told of it.
pub(super) fn notified_status(event_type: &str) -> Option<OrderStatus> {
    NOTIFIED
        .into_iter()
        .find(|status| order_event_type(*status) == event_type)
}

impl NotificationsConsumer {
    /// Tells the buyer their order reached `status`.
    pub(super) async fn order_changed(
        &self,
        event: &Envelope,
        status: OrderStatus,
    ) -> Result<(), HandlerError> {
        let order: OrderSnapshot = data(event)?;
        let Some(mut tx) = self.begin_first(event).await? else {
            return Ok(());
        };
        let Some(buyer) = find_recipient(&mut tx, order.user_id).await? else {
            // The buyer's user.registered is still on its way; forget the inbox entry too.
            tx.rollback().await?;
            return Err(HandlerError::Retry(anyhow!(
                "no recipient {} yet for order {}: its user.registered has not been handled",
                order.user_id,
                order.order_id
            )));
        };
        let draft = templates::order_update(event.id, status, &order);
        let deliveries = self
            .notifier
            .deliver_all(&mut tx, &[(Some(buyer), draft)])
            .await?;
        tx.commit().await?;
        self.notifier.committed_all(&deliveries).await;
        Ok(())
    }
}
