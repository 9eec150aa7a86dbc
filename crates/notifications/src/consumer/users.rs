//! `user.*`: the replica of recipients and their preferences, the welcome, and warnings of
//! failed sign-ins.

use herald_events::{Envelope, PreferencesUpdated, SignInFailures, UserRegistered, UsersImported};
use herald_platform::bus::HandlerError;

use super::{NotificationsConsumer, payload};
use crate::domain::{Draft, Recipient};
use crate::recipients;

impl NotificationsConsumer {
    /// Keeps the new user's preferences and welcomes them.
    pub(super) async fn user_registered(&self, event: &Envelope) -> Result<(), HandlerError> {
        let registered: UserRegistered = payload(event)?;
        let Some(mut tx) = self.begin_first(event).await? else {
            return Ok(());
        };
        let recipient = recipient_of(&registered);
        recipients::upsert_recipients(&mut tx, std::slice::from_ref(&recipient)).await?;
        let welcome = Draft::welcome(event.id, registered.user_id, &registered.name);
        let delivery = self.notifier.deliver(&mut tx, &welcome).await?;
        tx.commit().await?;
        self.notifier.committed(&delivery).await;
        Ok(())
    }

    /// Keeps the imported customers' preferences, all in one transaction, and welcomes
    /// none of them (importing a customer base must not mail it).
    pub(super) async fn users_imported(&self, event: &Envelope) -> Result<(), HandlerError> {
        let imported: UsersImported = payload(event)?;
        let Some(mut tx) = self.begin_first(event).await? else {
            return Ok(());
        };
        let recipients: Vec<Recipient> = imported.users.iter().map(recipient_of).collect();
        recipients::upsert_recipients(&mut tx, &recipients).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Tells an account's owner that sign-ins to it failed repeatedly.
    pub(super) async fn sign_in_failures(&self, event: &Envelope) -> Result<(), HandlerError> {
        let failures: SignInFailures = payload(event)?;
        let Some(mut tx) = self.begin_first(event).await? else {
            return Ok(());
        };
        let warning = Draft::sign_in_failures(event.id, &failures);
        let delivery = self.notifier.deliver(&mut tx, &warning).await?;
        tx.commit().await?;
        self.notifier.committed(&delivery).await;
        Ok(())
    }

    pub(super) async fn preferences_updated(&self, event: &Envelope) -> Result<(), HandlerError> {
        let updated: PreferencesUpdated = payload(event)?;
        let Some(mut tx) = self.begin_first(event).await? else {
            return Ok(());
        };
        recipients::apply_preferences(
            &mut tx,
            updated.user_id,
            &updated.preferences,
            updated.preferences_version,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}

/// The recipient a registration (or an import) describes.
fn recipient_of(registered: &UserRegistered) -> Recipient {
    Recipient {
        user_id: registered.user_id,
        name: registered.name.clone(),
        email: registered.email.clone(),
        role: registered.role,
        preferences: registered.preferences.clone(),
        preferences_version: registered.preferences_version,
    }
}
