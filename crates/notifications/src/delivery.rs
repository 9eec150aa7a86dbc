//! Delivering a draft: decide, record the decision, store the in-app notification.

use chrono::Utc;
use herald_platform::db::Tx;
use uuid::Uuid;

use crate::decision::{Decision, decide};
use crate::domain::{Draft, NotificationType, Recipient};
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
        let recipient = find_recipient(tx, draft.user_id).await?;
        let mut deliveries = self.deliver_all(tx, &[(recipient, draft.clone())]).await?;
        Ok(deliveries.pop().unwrap_or(Delivery::Duplicate))
    }

    /// Decides each draft for the recipient it comes with (None: no replica of the user, as
    /// the caller loaded them, typically in one query for a fan-out) and applies the
    /// decisions inside the caller's transaction, a few statements for the whole set.
    /// The deliveries come in the order of `addressed`.
    #[tracing::instrument(skip_all, fields(drafts = addressed.len()))]
    pub async fn deliver_all(
        &self,
        tx: &mut Tx,
        addressed: &[(Option<Recipient>, Draft)],
    ) -> Result<Vec<Delivery>, sqlx::Error> {
        let now = Utc::now();
        let decisions: Vec<Decision> = addressed
            .iter()
            .map(|(recipient, draft)| decide(recipient.as_ref(), draft, now))
            .collect();
        let decided: Vec<(&Draft, &Decision)> = addressed
            .iter()
            .map(|(_, draft)| draft)
            .zip(&decisions)
            .collect();
        let mut recorded = store::record_decisions(tx, &decided, now).await?;
        // A dedupe key twice in one set is decided once: the first occurrence claims it.
        let mut fresh = Vec::with_capacity(decided.len());
        for (draft, _) in &decided {
            fresh.push(recorded.remove(&draft.dedupe_key));
        }
        let in_app: Vec<&Draft> = decided
            .iter()
            .zip(&fresh)
            .filter(|((_, decision), fresh)| **fresh && decision.delivers_in_app())
            .map(|((draft, _), _)| *draft)
            .collect();
        let mut stored = store::insert_notifications(tx, &in_app).await?;
        let deliveries = decided
            .into_iter()
            .zip(fresh)
            .map(|((draft, decision), fresh)| {
                if !fresh {
                    tracing::debug!(dedupe_key = draft.dedupe_key, "already decided; skipping");
                    return Delivery::Duplicate;
                }
                Delivery::Decided {
                    user_id: draft.user_id,
                    notification_type: draft.notification_type,
                    decision: decision.clone(),
                    notification: stored.remove(&draft.dedupe_key),
                }
            })
            .collect();
        Ok(deliveries)
    }

    /// [`Notifier::committed`] for each delivery of a set.
    pub async fn committed_all(&self, deliveries: &[Delivery]) {
        for delivery in deliveries {
            self.committed(delivery).await;
        }
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
