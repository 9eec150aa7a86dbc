//! `order.*`: the buyer hears when their order is confirmed, shipped, delivered or
//! cancelled. `order.placed` is not notified: order.confirmed follows it in the same
//! transaction, and one notification per placement is enough.

use anyhow::anyhow;
use herald_events::{Envelope, OrderSnapshot, OrderStatus, order_event_type};
use herald_platform::bus::{BatchOutcomes, HandlerError};
use herald_platform::outbox::{first_deliveries, forget_deliveries};
use uuid::Uuid;

use super::{NotificationsConsumer, QUEUE, data};
use crate::recipients::{find_recipient, find_recipients};
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
            return Err(no_buyer_yet(&order));
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

    /// Tells the buyers of several order events in one transaction, with the events' inbox
    /// entries; each event's outcome in order. An event whose buyer is not known yet is left
    /// out (inbox entry included) and retried alone.
    pub(super) async fn orders_changed(
        &self,
        events: &[Envelope],
    ) -> Result<BatchOutcomes, HandlerError> {
        let mut outcomes: BatchOutcomes = Vec::with_capacity(events.len());
        let mut orders: Vec<(&Envelope, usize, OrderStatus, OrderSnapshot)> =
            Vec::with_capacity(events.len());
        for (index, event) in events.iter().enumerate() {
            let parsed = notified_status(&event.event_type)
                .map(|status| data::<OrderSnapshot>(event).map(|order| (status, order)));
            match parsed {
                Some(Ok((status, order))) => {
                    orders.push((event, index, status, order));
                    outcomes.push(Ok(()));
                }
                Some(Err(e)) => outcomes.push(Err(e)),
                None => outcomes.push(Ok(())),
            }
        }
        if orders.is_empty() {
            return Ok(outcomes);
        }
        let mut tx = self.db.begin().await?;
        let candidates: Vec<&Envelope> = orders.iter().map(|(event, ..)| *event).collect();
        let mut first = first_deliveries(&mut tx, QUEUE, &candidates).await?;
        // An event delivered twice in one batch takes effect once: its first copy claims it.
        orders.retain(|(event, ..)| first.remove(&event.id));
        let mut buyers: Vec<Uuid> = orders.iter().map(|(.., order)| order.user_id).collect();
        buyers.sort_unstable();
        buyers.dedup();
        let recipients = find_recipients(&mut tx, &buyers).await?;
        let mut unknown = Vec::new();
        let mut addressed = Vec::with_capacity(orders.len());
        for (event, index, status, order) in &orders {
            match recipients.get(&order.user_id) {
                Some(buyer) => addressed.push((
                    Some(buyer.clone()),
                    templates::order_update(event.id, *status, order),
                )),
                None => {
                    unknown.push(event.id);
                    outcomes[*index] = Err(no_buyer_yet(order));
                }
            }
        }
        forget_deliveries(&mut tx, QUEUE, &unknown).await?;
        let deliveries = self.notifier.deliver_all(&mut tx, &addressed).await?;
        tx.commit().await?;
        self.notifier.committed_all(&deliveries).await;
        Ok(outcomes)
    }
}

fn no_buyer_yet(order: &OrderSnapshot) -> HandlerError {
    HandlerError::NotYet(anyhow!(
        "no recipient {} yet for order {}: its user.registered has not been handled",
        order.user_id,
        order.order_id
    ))
}
