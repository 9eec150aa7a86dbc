//! The consumer of the `recommendations` queue: confirmed and cancelled orders (the
//! purchases), product events (the catalog replica) and user events (preferred
//! categories). Each event is handled in one transaction with its inbox entry, so a
//! redelivered event has no second effect; confirmed orders that arrive together share one
//! transaction.

use anyhow::anyhow;
use async_trait::async_trait;
use herald_events::{
    BackInStock, Envelope, Event, OrderCancelled, OrderConfirmed, OutOfStock, PreferencesUpdated,
    PriceChanged, ProductCreated, StockChanged, UserRegistered, UsersImported,
};
use herald_platform::bus::{BatchOutcomes, EventHandler, HandlerError};
use herald_platform::db::Tx;
use herald_platform::outbox::{first_deliveries, first_delivery};

use crate::advisor::Advisor;
use crate::store;

/// The queue this service consumes, and its name in the inbox.
pub const QUEUE: &str = "recommendations";

/// Every event type this consumer acts on: the queue must be bound to each of them.
pub const HANDLED_TYPES: &[&str] = &[
    OrderConfirmed::TYPE,
    OrderCancelled::TYPE,
    ProductCreated::TYPE,
    StockChanged::TYPE,
    PriceChanged::TYPE,
    OutOfStock::TYPE,
    BackInStock::TYPE,
    UserRegistered::TYPE,
    UsersImported::TYPE,
    PreferencesUpdated::TYPE,
];

#[derive(Clone, Debug)]
pub struct RecommendationsConsumer {
    advisor: Advisor,
}

fn payload<E: Event>(event: &Envelope) -> Result<E, HandlerError> {
    event
        .payload::<E>()
        .map_err(|e| HandlerError::Reject(anyhow!("{} {}: {e}", E::TYPE, event.id)))
}

impl RecommendationsConsumer {
    pub fn new(advisor: Advisor) -> RecommendationsConsumer {
        RecommendationsConsumer { advisor }
    }

    /// The transaction of the event's effect, with its inbox entry; None when the event
    /// was handled before.
    async fn begin_first(&self, event: &Envelope) -> Result<Option<Tx>, HandlerError> {
        let mut tx = self.advisor.db.begin().await?;
        if !first_delivery(&mut tx, QUEUE, event).await? {
            tx.rollback().await?;
            return Ok(None);
        }
        Ok(Some(tx))
    }

    async fn order_confirmed(&self, event: &Envelope) -> Result<(), HandlerError> {
        let OrderConfirmed(order) = payload(event)?;
        let Some(mut tx) = self.begin_first(event).await? else {
            return Ok(());
        };
        store::order_confirmed(&mut tx, &order).await?;
        store::note_interests(&mut tx, self.advisor.outbox(), &interests(&[&order])).await?;
        self.advisor.outbox().commit(tx).await?;
        self.advisor.forget(order.user_id).await;
        Ok(())
    }

    /// Keeps several confirmed orders in one transaction with their inbox entries.
    async fn orders_confirmed(&self, events: &[Envelope]) -> Result<BatchOutcomes, HandlerError> {
        let mut outcomes: BatchOutcomes = Vec::with_capacity(events.len());
        let mut orders = Vec::with_capacity(events.len());
        for event in events {
            match payload::<OrderConfirmed>(event) {
                Ok(OrderConfirmed(order)) => {
                    orders.push((event, order));
                    outcomes.push(Ok(()));
                }
                Err(e) => outcomes.push(Err(e)),
            }
        }
        if orders.is_empty() {
            return Ok(outcomes);
        }
        let mut tx = self.advisor.db.begin().await?;
        let candidates: Vec<&Envelope> = orders.iter().map(|(event, _)| *event).collect();
        let mut first = first_deliveries(&mut tx, QUEUE, &candidates).await?;
        // An event delivered twice in one batch takes effect once: its first copy claims it.
        orders.retain(|(event, _)| first.remove(&event.id));
        let snapshots: Vec<_> = orders.iter().map(|(_, order)| order).collect();
        store::orders_confirmed(&mut tx, &snapshots).await?;
        store::note_interests(&mut tx, self.advisor.outbox(), &interests(&snapshots)).await?;
        self.advisor.outbox().commit(tx).await?;
        let mut buyers: Vec<uuid::Uuid> = snapshots.iter().map(|order| order.user_id).collect();
        buyers.sort_unstable();
        buyers.dedup();
        self.advisor.forget_all(&buyers).await;
        Ok(outcomes)
    }

    async fn order_cancelled(&self, event: &Envelope) -> Result<(), HandlerError> {
        let OrderCancelled(order) = payload(event)?;
        let Some(mut tx) = self.begin_first(event).await? else {
            return Ok(());
        };
        store::order_cancelled(&mut tx, &order).await?;
        tx.commit().await?;
        self.advisor.forget(order.user_id).await;
        Ok(())
    }

    async fn product_created(&self, event: &Envelope) -> Result<(), HandlerError> {
        let created: ProductCreated = payload(event)?;
        let Some(mut tx) = self.begin_first(event).await? else {
            return Ok(());
        };
        store::product_created(&mut tx, &created, event.time.timestamp_micros()).await?;
        tx.commit().await?;
        self.advisor.catalog_changed().await;
        Ok(())
    }

    async fn stock_level(
        &self,
        event: &Envelope,
        product_id: uuid::Uuid,
        stock: i64,
    ) -> Result<(), HandlerError> {
        let Some(mut tx) = self.begin_first(event).await? else {
            return Ok(());
        };
        store::stock_changed(&mut tx, product_id, stock, event.time.timestamp_micros()).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn price_changed(&self, event: &Envelope) -> Result<(), HandlerError> {
        let change: PriceChanged = payload(event)?;
        let Some(mut tx) = self.begin_first(event).await? else {
            return Ok(());
        };
        store::product_renamed(&mut tx, change.product_id, &change.name).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn preferred_categories(
        &self,
        event: &Envelope,
        user_id: uuid::Uuid,
        categories: &[String],
        version: i64,
    ) -> Result<(), HandlerError> {
        let Some(mut tx) = self.begin_first(event).await? else {
            return Ok(());
        };
        store::set_preferred_categories(&mut tx, &[(user_id, categories, version)]).await?;
        tx.commit().await?;
        self.advisor.forget(user_id).await;
        Ok(())
    }

    /// The preferred categories of imported customers, in one transaction (those who
    /// stated none have nothing to keep).
    async fn users_imported(&self, event: &Envelope) -> Result<(), HandlerError> {
        let imported: UsersImported = payload(event)?;
        let Some(mut tx) = self.begin_first(event).await? else {
            return Ok(());
        };
        let preferred: Vec<(uuid::Uuid, &[String], i64)> = imported
            .users
            .iter()
            .filter(|user| !user.preferences.categories.is_empty())
            .map(|user| {
                (
                    user.user_id,
                    user.preferences.categories.as_slice(),
                    user.preferences_version,
                )
            })
            .collect();
        store::set_preferred_categories(&mut tx, &preferred).await?;
        tx.commit().await?;
        let users: Vec<uuid::Uuid> = preferred.iter().map(|(user, _, _)| *user).collect();
        self.advisor.forget_all(&users).await;
        Ok(())
    }
}

/// The (buyer, category) of every line of `orders`.
fn interests(orders: &[&herald_events::OrderSnapshot]) -> Vec<(uuid::Uuid, String)> {
    orders
        .iter()
        .flat_map(|order| {
            order
                .items
                .iter()
                .map(|line| (order.user_id, line.category.clone()))
        })
        .collect()
}

#[async_trait]
impl EventHandler for RecommendationsConsumer {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        match event.event_type.as_str() {
            OrderConfirmed::TYPE => self.order_confirmed(event).await,
            OrderCancelled::TYPE => self.order_cancelled(event).await,
            ProductCreated::TYPE => self.product_created(event).await,
            StockChanged::TYPE => {
                let change: StockChanged = payload(event)?;
                self.stock_level(event, change.product_id, change.new_stock)
                    .await
            }
            OutOfStock::TYPE => {
                let OutOfStock(level) = payload(event)?;
                self.stock_level(event, level.product_id, level.stock).await
            }
            BackInStock::TYPE => {
                let BackInStock(level) = payload(event)?;
                self.stock_level(event, level.product_id, level.stock)
                    .await?;
                self.advisor.catalog_changed().await;
                Ok(())
            }
            PriceChanged::TYPE => self.price_changed(event).await,
            UserRegistered::TYPE => {
                let user: UserRegistered = payload(event)?;
                self.preferred_categories(
                    event,
                    user.user_id,
                    &user.preferences.categories,
                    user.preferences_version,
                )
                .await
            }
            UsersImported::TYPE => self.users_imported(event).await,
            PreferencesUpdated::TYPE => {
                let update: PreferencesUpdated = payload(event)?;
                self.preferred_categories(
                    event,
                    update.user_id,
                    &update.preferences.categories,
                    update.preferences_version,
                )
                .await
            }
            // Other types bound to the queue by a wider pattern are not this service's concern.
            _ => Ok(()),
        }
    }

    /// Confirmed orders, the bulk of the traffic, are handled in batches.
    fn batches(&self, event: &Envelope) -> bool {
        event.event_type == OrderConfirmed::TYPE
    }

    async fn handle_batch(&self, events: &[Envelope]) -> Result<BatchOutcomes, HandlerError> {
        self.orders_confirmed(events).await
    }
}
