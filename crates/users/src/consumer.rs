//! What the users service hears: unsubscribe links followed in emails.

use async_trait::async_trait;
use herald_events::{Envelope, Event, UnsubscribeRequested};
use herald_platform::bus::{EventHandler, HandlerError};
use herald_platform::db::Database;
use herald_platform::outbox::{Outbox, first_delivery};

use crate::domain::PreferencesPatch;

pub const QUEUE: &str = "users";

pub struct UsersConsumer {
    pub db: Database,
    pub outbox: Outbox,
}

/// The preference change that switches `notification_type` off.
fn switch_off(notification_type: &str) -> Option<PreferencesPatch> {
    let off = Some(false);
    let patch = match notification_type {
        "ORDER_UPDATE" => PreferencesPatch {
            order_updates: off,
            ..Default::default()
        },
        "PROMOTION" => PreferencesPatch {
            promotions: off,
            ..Default::default()
        },
        "RECOMMENDATION" => PreferencesPatch {
            recommendations: off,
            ..Default::default()
        },
        "INVENTORY" => PreferencesPatch {
            inventory_alerts: off,
            ..Default::default()
        },
        // SECURITY cannot be switched off; anything else is not a type.
        _ => return None,
    };
    Some(patch)
}

#[async_trait]
impl EventHandler for UsersConsumer {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        if event.event_type != UnsubscribeRequested::TYPE {
            return Ok(());
        }
        let request: UnsubscribeRequested = event
            .payload()
            .map_err(|e| HandlerError::Reject(anyhow::Error::new(e)))?;
        let patch = switch_off(&request.notification_type).ok_or_else(|| {
            HandlerError::Reject(anyhow::anyhow!(
                "{} cannot be switched off",
                request.notification_type
            ))
        })?;
        let mut tx = self.db.begin().await?;
        if !first_delivery(&mut tx, QUEUE, event).await? {
            tx.rollback().await?;
            return Ok(());
        }
        // A deleted account has nothing left to switch off.
        crate::preferences::change(&mut tx, &self.db, &self.outbox, request.user_id, patch)
            .await
            .map_err(|e| HandlerError::Retry(anyhow::anyhow!("{e:#}")))?;
        self.outbox.commit(tx).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::switch_off;

    #[test]
    fn every_type_but_security_can_be_switched_off() {
        for t in ["ORDER_UPDATE", "PROMOTION", "RECOMMENDATION", "INVENTORY"] {
            assert!(switch_off(t).is_some(), "{t}");
        }
        assert!(switch_off("SECURITY").is_none());
        assert!(switch_off("promotion").is_none());
    }
}
