//! The consumer of the `notifications` queue: each event is handled in one transaction
//! together with its inbox entry, so a redelivered event has no second effect; order
//! events that arrive together share one transaction. One module per event family.

mod checks;
mod interests;
mod orders;
mod products;
mod users;

use anyhow::anyhow;
use async_trait::async_trait;
use herald_events::{
    BackInStock, CategoryInterest, Envelope, Event, LowStock, NOTIFICATIONS_CRITICAL,
    NOTIFICATIONS_STANDARD, OrderCancelled, OrderConfirmed, OrderDelivered, OrderDeliveryLate,
    OrderShipped, OrdersStuck, OutOfStock, PasswordChanged, PasswordResetRequested,
    PreferencesUpdated, PriceChanged, ProductWatched, RecommendationDigest, SignInFailures,
    UserRegistered, UsersImported,
};
use herald_platform::bus::{BatchOutcomes, ConsumerOptions, EventHandler, HandlerError};
use herald_platform::config::Settings;
use herald_platform::db::{Database, Tx};
use herald_platform::outbox::first_delivery;
use serde::de::DeserializeOwned;

use crate::delivery::Notifier;

/// The consumer's name in the inbox (both lanes share it: an event is in one lane only).
pub const QUEUE: &str = "notifications";

/// The queues this consumer reads, one consumer each: what must arrive at once (account
/// and order events) never waits behind a backlog of stock alerts and promotions.
pub const LANES: [&str; 2] = [NOTIFICATIONS_CRITICAL, NOTIFICATIONS_STANDARD];

/// How the consumer of `lane` runs: the critical lane carries the order events, handled
/// in batches, so it holds as many deliveries at once as a batch may take.
pub fn lane_options(lane: &str, settings: &Settings) -> ConsumerOptions {
    if lane == NOTIFICATIONS_CRITICAL {
        ConsumerOptions::batched_from_settings(settings)
    } else {
        ConsumerOptions::from_settings(settings)
    }
}

/// Every event type this consumer acts on: one of the lanes must be bound to each of them.
pub const HANDLED_TYPES: &[&str] = &[
    UserRegistered::TYPE,
    UsersImported::TYPE,
    PreferencesUpdated::TYPE,
    SignInFailures::TYPE,
    PasswordResetRequested::TYPE,
    PasswordChanged::TYPE,
    OrderConfirmed::TYPE,
    OrderShipped::TYPE,
    OrderDelivered::TYPE,
    OrderCancelled::TYPE,
    ProductWatched::TYPE,
    BackInStock::TYPE,
    PriceChanged::TYPE,
    LowStock::TYPE,
    OutOfStock::TYPE,
    OrderDeliveryLate::TYPE,
    OrdersStuck::TYPE,
    RecommendationDigest::TYPE,
    CategoryInterest::TYPE,
];

#[derive(Clone, Debug)]
pub struct NotificationsConsumer {
    db: Database,
    notifier: Notifier,
}

impl NotificationsConsumer {
    pub fn new(db: Database, notifier: Notifier) -> NotificationsConsumer {
        NotificationsConsumer { db, notifier }
    }

    /// The transaction of the event's effect, with its inbox entry; None when the event
    /// was handled before.
    async fn begin_first(&self, event: &Envelope) -> Result<Option<Tx>, HandlerError> {
        let mut tx = self.db.begin().await?;
        if !first_delivery(&mut tx, QUEUE, event).await? {
            tx.rollback().await?;
            return Ok(None);
        }
        Ok(Some(tx))
    }
}

fn payload<E: Event>(event: &Envelope) -> Result<E, HandlerError> {
    event
        .payload::<E>()
        .map_err(|e| HandlerError::Reject(anyhow!("{} {}: {e}", E::TYPE, event.id)))
}

/// The payload of an event whose type the caller checked.
fn data<T: DeserializeOwned>(event: &Envelope) -> Result<T, HandlerError> {
    serde_json::from_value(event.data.clone()).map_err(|e| {
        HandlerError::Reject(anyhow!(
            "{} {}: malformed payload: {e}",
            event.event_type,
            event.id
        ))
    })
}

#[async_trait]
impl EventHandler for NotificationsConsumer {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        if let Some(status) = orders::notified_status(&event.event_type) {
            return self.order_changed(event, status).await;
        }
        match event.event_type.as_str() {
            UserRegistered::TYPE => self.user_registered(event).await,
            UsersImported::TYPE => self.users_imported(event).await,
            PreferencesUpdated::TYPE => self.preferences_updated(event).await,
            SignInFailures::TYPE => self.sign_in_failures(event).await,
            PasswordResetRequested::TYPE => self.password_reset_requested(event).await,
            PasswordChanged::TYPE => self.password_changed(event).await,
            ProductWatched::TYPE => self.product_watched(event).await,
            BackInStock::TYPE => self.back_in_stock(event).await,
            PriceChanged::TYPE => self.price_changed(event).await,
            LowStock::TYPE => self.low_stock(event).await,
            OutOfStock::TYPE => self.out_of_stock(event).await,
            OrderDeliveryLate::TYPE => self.delivery_late(event).await,
            OrdersStuck::TYPE => self.orders_stuck(event).await,
            RecommendationDigest::TYPE => self.recommendation_digest(event).await,
            CategoryInterest::TYPE => self.category_interest(event).await,
            // Types this service does not notify about (order.placed among them) are not its concern.
            _ => Ok(()),
        }
    }

    /// Order events, the bulk of the traffic, are handled in batches.
    fn batches(&self, event: &Envelope) -> bool {
        orders::notified_status(&event.event_type).is_some()
    }

    async fn handle_batch(&self, events: &[Envelope]) -> Result<BatchOutcomes, HandlerError> {
        self.orders_changed(events).await
    }
}

#[cfg(test)]
mod tests {
    use herald_platform::bus::{topic_matches, topology};

    use super::*;

    #[test]
    fn the_lanes_are_bound_to_every_type_the_consumer_acts_on() {
        let lanes: Vec<_> = topology()
            .into_iter()
            .filter(|q| LANES.contains(&q.name.as_str()))
            .collect();
        assert_eq!(
            lanes.len(),
            2,
            "both notification lanes are in the topology"
        );
        let unbound: Vec<&str> = HANDLED_TYPES
            .iter()
            .copied()
            .filter(|t| {
                !lanes
                    .iter()
                    .any(|q| q.bindings.iter().any(|b| topic_matches(b, t)))
            })
            .collect();
        assert!(
            unbound.is_empty(),
            "herald_events::TOPOLOGY does not route {unbound:?} to a notifications lane"
        );
        assert_eq!(orders::notified_status("order.placed"), None);
    }
}
