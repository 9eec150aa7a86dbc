//! The consumer of the `products` queue: a cancelled order's stock goes back, in one
//! transaction with the inbox entry, so a redelivered event has no second effect. The
//! orders service also releases directly; whichever comes first gives the stock back.

use anyhow::anyhow;
use async_trait::async_trait;
use herald_events::{Envelope, Event, OrderCancelled};
use herald_platform::bus::{EventHandler, HandlerError};
use herald_platform::outbox::first_delivery;

use crate::catalog::Catalog;

/// The queue this service consumes, and its name in the inbox.
pub const QUEUE: &str = "products";

#[derive(Clone, Debug)]
pub struct ProductsConsumer {
    catalog: Catalog,
}

impl ProductsConsumer {
    pub fn new(catalog: Catalog) -> ProductsConsumer {
        ProductsConsumer { catalog }
    }

    async fn order_cancelled(&self, event: &Envelope) -> Result<(), HandlerError> {
        let cancelled: OrderCancelled = event
            .payload()
            .map_err(|e| HandlerError::Reject(anyhow!("{} {}: {e}", event.event_type, event.id)))?;
        let order_id = cancelled.0.order_id;
        let mut tx = self.catalog.db.begin().await?;
        if !first_delivery(&mut tx, QUEUE, event).await? {
            tx.rollback().await?;
            return Ok(());
        }
        let released = self
            .catalog
            .release_in(&mut tx, order_id, None)
            .await
            .map_err(|e| HandlerError::Retry(anyhow!("releasing order {order_id}: {e:#}")))?;
        self.catalog.outbox.commit(tx).await?;
        tracing::debug!(%order_id, released, "order cancelled");
        Ok(())
    }
}

#[async_trait]
impl EventHandler for ProductsConsumer {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        match event.event_type.as_str() {
            OrderCancelled::TYPE => self.order_cancelled(event).await,
            _ => Ok(()),
        }
    }
}
