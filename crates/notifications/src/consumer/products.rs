//! `product.*`: the watches replica; watchers hear of restocks and price drops, admins of
//! low and no stock. A fan-out walks its audience page by page inside the event's
//! transaction, loading each page's recipients with their preferences in one query.

use herald_events::{
    BackInStock, Envelope, LowStock, OutOfStock, PriceChanged, ProductWatched, StockLevel,
};
use herald_platform::bus::HandlerError;
use herald_platform::db::Tx;
use uuid::Uuid;

use super::{NotificationsConsumer, payload};
use crate::domain::{Draft, Recipient};
use crate::recipients::admins_page;
use crate::templates;
use crate::watches::{record_watch, watchers_page};

/// Recipients loaded and decided at once; small in tests so that fan-outs cross pages.
const PAGE: i64 = if cfg!(test) { 2 } else { 500 };

/// Who a product event is for.
#[derive(Debug, Clone, Copy)]
pub(super) enum Audience {
    Watchers(Uuid),
    Admins,
}

impl Audience {
    async fn page(
        self,
        tx: &mut Tx,
        after: Option<Uuid>,
    ) -> Result<Vec<(Uuid, Option<Recipient>)>, sqlx::Error> {
        match self {
            Audience::Watchers(product_id) => watchers_page(tx, product_id, after, PAGE).await,
            Audience::Admins => Ok(admins_page(tx, after, PAGE)
                .await?
                .into_iter()
                .map(|admin| (admin.user_id, Some(admin)))
                .collect()),
        }
    }
}

impl NotificationsConsumer {
    pub(super) async fn product_watched(&self, event: &Envelope) -> Result<(), HandlerError> {
        let watch: ProductWatched = payload(event)?;
        let Some(mut tx) = self.begin_first(event).await? else {
            return Ok(());
        };
        record_watch(&mut tx, &watch).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn back_in_stock(&self, event: &Envelope) -> Result<(), HandlerError> {
        let BackInStock(level) = payload(event)?;
        self.fan_out(event, Audience::Watchers(level.product_id), |watcher| {
            templates::back_in_stock(event.id, watcher, &level)
        })
        .await
    }

    pub(super) async fn price_changed(&self, event: &Envelope) -> Result<(), HandlerError> {
        let change: PriceChanged = payload(event)?;
        // Watchers hear of a lower price only; a rise or a no-op changes nothing here.
        if change.new_price_cents >= change.old_price_cents {
            return Ok(());
        }
        self.fan_out(event, Audience::Watchers(change.product_id), |watcher| {
            templates::price_drop(event.id, watcher, &change)
        })
        .await
    }

    pub(super) async fn low_stock(&self, event: &Envelope) -> Result<(), HandlerError> {
        let LowStock(level) = payload(event)?;
        self.alert_admins(event, &level, templates::low_stock).await
    }

    pub(super) async fn out_of_stock(&self, event: &Envelope) -> Result<(), HandlerError> {
        let OutOfStock(level) = payload(event)?;
        self.alert_admins(event, &level, templates::out_of_stock)
            .await
    }

    async fn alert_admins(
        &self,
        event: &Envelope,
        level: &StockLevel,
        alert: fn(Uuid, Uuid, &StockLevel) -> Draft,
    ) -> Result<(), HandlerError> {
        self.fan_out(event, Audience::Admins, |admin| {
            alert(event.id, admin, level)
        })
        .await
    }

    /// Delivers `draft_for` each member of `audience`, all in the event's transaction.
    pub(super) async fn fan_out(
        &self,
        event: &Envelope,
        audience: Audience,
        draft_for: impl Fn(Uuid) -> Draft + Send + Sync,
    ) -> Result<(), HandlerError> {
        let Some(mut tx) = self.begin_first(event).await? else {
            return Ok(());
        };
        let mut deliveries = Vec::new();
        let mut after = None;
        loop {
            let page = audience.page(&mut tx, after).await?;
            let Some((last, _)) = page.last() else {
                break;
            };
            after = Some(*last);
            let complete = (page.len() as i64) < PAGE;
            let addressed: Vec<_> = page
                .into_iter()
                .map(|(user_id, recipient)| (recipient, draft_for(user_id)))
                .collect();
            deliveries.extend(self.notifier.deliver_all(&mut tx, &addressed).await?);
            if complete {
                break;
            }
        }
        tx.commit().await?;
        tracing::debug!(event_id = %event.id, recipients = deliveries.len(), "fanned out");
        self.notifier.committed_all(&deliveries).await;
        Ok(())
    }
}
