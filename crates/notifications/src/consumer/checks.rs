//! What scheduled jobs elsewhere report: stuck orders (admins hear of them), late
//! deliveries (the buyer hears the order is still on its way), and recommendation digests.

use anyhow::anyhow;
use herald_events::{Envelope, OrderDeliveryLate, OrdersStuck, RecommendationDigest};
use herald_platform::bus::HandlerError;

use super::products::Audience;
use super::{NotificationsConsumer, payload};
use crate::domain::Draft;
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
        let draft = templates::delivery_late(event.id, &order);
        self.notify_one(event, draft).await
    }

    pub(super) async fn recommendation_digest(&self, event: &Envelope) -> Result<(), HandlerError> {
        let digest: RecommendationDigest = payload(event)?;
        let draft = templates::recommendation_digest(event.id, &digest);
        self.notify_one(event, draft).await
    }

    /// Delivers `draft` to its user in the event's transaction.
    async fn notify_one(&self, event: &Envelope, draft: Draft) -> Result<(), HandlerError> {
        let Some(mut tx) = self.begin_first(event).await? else {
            return Ok(());
        };
        let Some(recipient) = find_recipient(&mut tx, draft.user_id).await? else {
            // The user's user.registered is still on its way; forget the inbox entry too.
            tx.rollback().await?;
            return Err(HandlerError::NotYet(anyhow!(
                "no recipient {} yet for {} {}",
                draft.user_id,
                event.event_type,
                event.id
            )));
        };
        let deliveries = self
            .notifier
            .deliver_all(&mut tx, &[(Some(recipient), draft)])
            .await?;
        tx.commit().await?;
        self.notifier.committed_all(&deliveries).await;
        Ok(())
    }
}
