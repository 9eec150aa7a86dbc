//! `recommendation.category_interest`: the replica of who showed interest in which
//! category, which category promotions reach.

use herald_events::{CategoryInterest, Envelope};
use herald_platform::bus::HandlerError;

use super::{NotificationsConsumer, payload};

impl NotificationsConsumer {
    pub(super) async fn category_interest(&self, event: &Envelope) -> Result<(), HandlerError> {
        let interest: CategoryInterest = payload(event)?;
        let Some(mut tx) = self.begin_first(event).await? else {
            return Ok(());
        };
        sqlx::query(
            "INSERT INTO category_interests (category, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(interest.category.to_lowercase())
        .bind(interest.user_id.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
