//! `user.*`: the replica of recipients and their preferences, the welcome, and warnings of
//! failed sign-ins.

use herald_events::{
    Envelope, PasswordChanged, PasswordResetRequested, PreferencesUpdated, SignInFailures,
    UserRegistered, UsersImported,
};
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
        self.tell_owner(event, Draft::sign_in_failures(event.id, &failures))
            .await
    }

    /// Sends an account's owner the password reset link they asked for.
    pub(super) async fn password_reset_requested(
        &self,
        event: &Envelope,
    ) -> Result<(), HandlerError> {
        let requested: PasswordResetRequested = payload(event)?;
        self.tell_owner(event, Draft::password_reset(event.id, &requested))
            .await
    }

    /// Tells an account's owner that its password was changed.
    pub(super) async fn password_changed(&self, event: &Envelope) -> Result<(), HandlerError> {
        let changed: PasswordChanged = payload(event)?;
        self.tell_owner(event, Draft::password_changed(event.id, changed.user_id))
            .await
    }

    /// Delivers one notice about the account in the event's transaction. A notice that
    /// must reach its owner waits for the owner's registration or import (which travel
    /// other lanes) rather than being dropped as for an unknown recipient.
    async fn tell_owner(&self, event: &Envelope, draft: Draft) -> Result<(), HandlerError> {
        let Some(mut tx) = self.begin_first(event).await? else {
            return Ok(());
        };
        if draft.every_channel
            && recipients::find_recipient(&mut tx, draft.user_id)
                .await?
                .is_none_or(|r| r.email.is_empty())
        {
            tx.rollback().await?;
            return Err(HandlerError::NotYet(anyhow::anyhow!(
                "user {} is not known here yet",
                draft.user_id
            )));
        }
        let delivery = self.notifier.deliver(&mut tx, &draft).await?;
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
