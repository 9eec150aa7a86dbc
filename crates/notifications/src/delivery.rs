//! Delivering a draft: decide, record the decision, store the in-app notification.

use chrono::Utc;
use herald_platform::db::Tx;
use uuid::Uuid;

use crate::decision::{Decision, decide};
use crate::domain::{Draft, NotificationType};
use crate::recipients::find_recipient;
use crate::store::{self, Notification};
use crate::unread::UnreadCounts;

/// What delivering one draft did. Hand it to [`Notifier::committed`] after the commit.
#[must_use = "pass the delivery to Notifier::committed after the transaction commits"]
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Decided {
        user_id: Uuid,
        notification_type: NotificationType,
        decision: Decision,
        /// The in-app notification created, if the decision delivered in-app.
        notification: Option<Notification>,
    },
    /// A draft with the same dedupe key was decided before; nothing happened.
    Duplicate,
}

impl Delivery {
    pub fn notification(&self) -> Option<&Notification> {
        match self {
            Delivery::Decided { notification, .. } => notification.as_ref(),
            Delivery::Duplicate => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Notifier {
    unread: UnreadCounts,
}

impl Notifier {
    pub fn new(unread: UnreadCounts) -> Notifier {
        Notifier { unread }
    }

    /// Decides `draft` and applies the decision inside the caller's transaction.
    #[tracing::instrument(skip_all, fields(user_id = %draft.user_id, notification_type = draft.notification_type.as_str()))]
    pub async fn deliver(&self, tx: &mut Tx, draft: &Draft) -> Result<Delivery, sqlx::Error> {
        let now = Utc::now();
        let recipient = find_recipient(tx, draft.user_id).await?;
        let decision = decide(recipient.as_ref(), draft, now);
        if !store::record_decision(tx, draft, &decision, now).await? {
            tracing::debug!(dedupe_key = draft.dedupe_key, "already decided; skipping");
            return Ok(Delivery::Duplicate);
        }
        let notification = if decision.delivers_in_app() {
            store::insert_notification(tx, draft).await?
        } else {
            None
        };
        Ok(Delivery::Decided {
            user_id: draft.user_id,
            notification_type: draft.notification_type,
            decision,
            notification,
        })
    }

    /// Counts the decision and refreshes the recipient's unread count, once committed.
    pub async fn committed(&self, delivery: &Delivery) {
        let Delivery::Decided {
            user_id,
            notification_type,
            decision,
            notification,
        } = delivery
        else {
            metrics::counter!("notifications_duplicates_total").increment(1);
            return;
        };
        metrics::counter!(
            "notifications_decisions_total",
            "type" => notification_type.as_str(),
            "outcome" => decision.outcome().as_str(),
            "reason" => decision.reason().map_or("NONE", |r| r.as_str()),
        )
        .increment(1);
        if notification.is_some() {
            self.unread.changed(*user_id).await;
        }
    }
}
