//! The consumer of the `notifications` queue: each event is handled in one transaction
//! together with its inbox entry, so a redelivered event has no second effect.

use anyhow::anyhow;
use async_trait::async_trait;
use herald_events::{Envelope, Event, PreferencesUpdated, UserRegistered};
use herald_platform::bus::{EventHandler, HandlerError};
use herald_platform::db::Database;
use herald_platform::outbox::first_delivery;

use crate::delivery::Notifier;
use crate::domain::{Draft, Recipient};
use crate::recipients::{self, PreferencesChange};

/// The queue this service consumes, and its name in the inbox.
pub const QUEUE: &str = "notifications";

#[derive(Clone, Debug)]
pub struct NotificationsConsumer {
    db: Database,
    notifier: Notifier,
}

impl NotificationsConsumer {
    pub fn new(db: Database, notifier: Notifier) -> NotificationsConsumer {
        NotificationsConsumer { db, notifier }
    }

    /// Keeps the new user's preferences and welcomes them.
    async fn user_registered(&self, event: &Envelope) -> Result<(), HandlerError> {
        let registered: UserRegistered = payload(event)?;
        let mut tx = self.db.begin().await?;
        if !first_delivery(&mut tx, QUEUE, event).await? {
            tx.rollback().await?;
            return Ok(());
        }
        let recipient = Recipient {
            user_id: registered.user_id,
            name: registered.name.clone(),
            email: registered.email.clone(),
            role: registered.role,
            preferences: registered.preferences.clone(),
            preferences_version: registered.preferences_version,
        };
        recipients::upsert_recipient(&mut tx, &recipient).await?;
        let welcome = Draft::welcome(event.id, registered.user_id, &registered.name);
        let delivery = self.notifier.deliver(&mut tx, &welcome).await?;
        tx.commit().await?;
        self.notifier.committed(&delivery).await;
        Ok(())
    }

    async fn preferences_updated(&self, event: &Envelope) -> Result<(), HandlerError> {
        let updated: PreferencesUpdated = payload(event)?;
        let mut tx = self.db.begin().await?;
        if !first_delivery(&mut tx, QUEUE, event).await? {
            tx.rollback().await?;
            return Ok(());
        }
        let change = recipients::update_preferences(
            &mut tx,
            updated.user_id,
            &updated.preferences,
            updated.preferences_version,
        )
        .await?;
        match change {
            PreferencesChange::Applied | PreferencesChange::Stale => {
                tx.commit().await?;
                Ok(())
            }
            PreferencesChange::UnknownRecipient => {
                // Forgets the inbox entry too, so the redelivery is handled afresh.
                tx.rollback().await?;
                Err(HandlerError::Retry(anyhow!(
                    "no recipient {} yet: its user.registered has not been handled",
                    updated.user_id
                )))
            }
        }
    }
}

fn payload<E: Event>(event: &Envelope) -> Result<E, HandlerError> {
    event
        .payload::<E>()
        .map_err(|e| HandlerError::Reject(anyhow!("{} {}: {e}", E::TYPE, event.id)))
}

#[async_trait]
impl EventHandler for NotificationsConsumer {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        match event.event_type.as_str() {
            UserRegistered::TYPE => self.user_registered(event).await,
            PreferencesUpdated::TYPE => self.preferences_updated(event).await,
            // Types this service does not notify about (yet) are not its concern.
            _ => Ok(()),
        }
    }
}
