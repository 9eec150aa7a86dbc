//! Changing a user's preferences: one path for the API and for unsubscribe links.

use herald_events::{Envelope, PreferencesUpdated};
use herald_platform::ApiResult;
use herald_platform::db::{Database, Tx};
use herald_platform::outbox::Outbox;
use uuid::Uuid;

use crate::SERVICE;
use crate::domain::PreferencesPatch;
use crate::store::{self, User};

/// Applies `patch` inside `tx` and adds `user.preferences_updated` to the outbox when
/// anything changed. `None` when there is no such user. The caller commits.
pub async fn change(
    tx: &mut Tx,
    db: &Database,
    outbox: &Outbox,
    user_id: Uuid,
    patch: PreferencesPatch,
) -> ApiResult<Option<User>> {
    let Some(mut user) = store::find_user_for_update(tx, db, user_id).await? else {
        return Ok(None);
    };
    let preferences = patch.apply(&user.preferences)?;
    if preferences == user.preferences {
        return Ok(Some(user));
    }
    let version = store::update_preferences(tx, user.id, &preferences).await?;
    let event = PreferencesUpdated {
        user_id: user.id,
        preferences: preferences.clone(),
        preferences_version: version,
    };
    outbox
        .add(
            tx,
            &Envelope::new(SERVICE, Some(user.id.to_string()), &event),
        )
        .await?;
    user.preferences = preferences;
    user.preferences_version = version;
    Ok(Some(user))
}
