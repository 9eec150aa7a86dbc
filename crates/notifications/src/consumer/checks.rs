//! What the orders service's scheduled checks report: stuck orders (admins hear of them)
//! and late deliveries (the buyer hears the order is still on its way).

use anyhow::anyhow;
use herald_events::{Envelope, OrderDeliveryLate, OrdersStuck};
use herald_platform::bus::HandlerError;

use super::products::Audience;
use super::{NotificationsConsumer, payload};
use crate::recipients::find_recipient;
use crate::templates;

impl NotificationsConsumer {
    pub(super) async fn orders_stuck(&self, event: &Envelope) -> Result<(), HandlerError> {
        let report: OrdersStuck = payload(event)?;
        self.fan_out(event, Audience::Admins, |admin| {
            templates::orders_stuck(event.id, admin, &report)
        })
        .await
    }

    pub(super) async fn delivery_late(&self, event: &Envelope) -> Result<(), HandlerError> {
        let OrderDeliveryLate(order) = payload(event)?;
        let Some(mut tx) = self.begin_first(event).await? else {
            return Ok(());
        };
        let Some(buyer) = find_recipient(&mut tx, order.user_id).await? else {
            tx.rollback().await?;
            return Err(HandlerError::Retry(anyhow!(
                "no recipient {} yet for order {}",
                order.user_id,
                order.order_id
            )));
        };
        let draft = templates::delivery_late(event.id, &order);
        let deliveries = self
            .notifier
            .deliver_all(&mut tx, &[(Some(buyer), draft)])
            .await?;
        tx.commit().await?;
        self.notifier.committed_all(&deliveries).await;
        Ok(())
    }
}
