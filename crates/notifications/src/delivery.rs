//! Delivering a draft: decide, record the decision, store the in-app notification, queue
//! the email.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use herald_events::Channel;
use herald_platform::db::Tx;
use uuid::Uuid;

use crate::clock::Clock;
use crate::decision::{Decision, PromotionsToday, decide};
use crate::decision_log;
use crate::domain::{Draft, NotificationType, Recipient};
use crate::email::EmailQueue;
use crate::email::store::{self as email_store, EmailRequest};
use crate::quiet_hours::{local_day, timezone_of};
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
        /// The in-app notification created, if the decision delivered in-app (visible
        /// from its `created_at`).
        notification: Option<Box<Notification>>,
        /// Whether an email was queued.
        emailed: bool,
    },
    /// A draft with the same dedupe key was decided before; nothing happened.
    Duplicate,
}

impl Delivery {
    pub fn notification(&self) -> Option<&Notification> {
        match self {
            Delivery::Decided { notification, .. } => notification.as_deref(),
            Delivery::Duplicate => None,
        }
    }

    pub fn decision(&self) -> Option<&Decision> {
        match self {
            Delivery::Decided { decision, .. } => Some(decision),
            Delivery::Duplicate => None,
        }
    }
}

/// What the decision needs from the service's settings and clock.
#[derive(Clone, Debug)]
pub struct DeliveryPolicy {
    pub clock: Clock,
    /// Promotions a user receives per local day at most.
    pub promotion_daily_cap: i64,
}

#[derive(Clone, Debug)]
pub struct Notifier {
    unread: UnreadCounts,
    emails: EmailQueue,
    policy: DeliveryPolicy,
}

impl Notifier {
    pub fn new(unread: UnreadCounts, emails: EmailQueue, policy: DeliveryPolicy) -> Notifier {
        Notifier {
            unread,
            emails,
            policy,
        }
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
        let now = self.policy.clock.now();
        let mut promotions = self.promotions_today(tx, addressed, now).await?;
        let decisions: Vec<Decision> = addressed
            .iter()
            .map(|(recipient, draft)| {
                let received = promotions.get(&draft.user_id).copied().unwrap_or(0);
                let decision = decide(
                    recipient.as_ref(),
                    draft,
                    now,
                    PromotionsToday {
                        received,
                        daily_cap: self.policy.promotion_daily_cap,
                    },
                );
                // A set may hold several promotions for one user: each counts for the next.
                if decision.counts_as_promotion(draft.notification_type) {
                    *promotions.entry(draft.user_id).or_insert(0) += 1;
                }
                decision
            })
            .collect();
        let decided: Vec<(&Draft, &Decision)> = addressed
            .iter()
            .map(|(_, draft)| draft)
            .zip(&decisions)
            .collect();
        let mut recorded = decision_log::record_decisions(tx, &decided, now).await?;
        // A dedupe key twice in one set is decided once: the first occurrence claims it.
        let mut fresh = Vec::with_capacity(decided.len());
        for (draft, _) in &decided {
            fresh.push(recorded.remove(&draft.dedupe_key));
        }
        let in_app: Vec<(&Draft, DateTime<Utc>)> = decided
            .iter()
            .zip(&fresh)
            .filter(|((_, decision), fresh)| **fresh && decision.delivers_in_app())
            .map(|((draft, decision), _)| (*draft, decision.until().unwrap_or(now)))
            .collect();
        let mut stored = store::insert_notifications(tx, &in_app, now).await?;
        let emails: Vec<EmailRequest<'_>> = addressed
            .iter()
            .zip(&decisions)
            .zip(&fresh)
            .filter(|((_, decision), fresh)| **fresh && decision.delivers_on(Channel::Email))
            .filter_map(|(((recipient, draft), decision), _)| {
                Some((recipient.as_ref()?, draft, decision.until().unwrap_or(now)))
            })
            .collect();
        let emailed = email_store::queue_emails(tx, &emails, now).await?;
        let deliveries = addressed
            .iter()
            .zip(decisions)
            .zip(fresh)
            .map(|(((_, draft), decision), fresh)| {
                if !fresh {
                    tracing::debug!(dedupe_key = draft.dedupe_key, "already decided; skipping");
                    return Delivery::Duplicate;
                }
                Delivery::Decided {
                    user_id: draft.user_id,
                    notification_type: draft.notification_type,
                    emailed: emailed.contains(&draft.dedupe_key),
                    decision,
                    notification: stored.remove(&draft.dedupe_key).map(Box::new),
                }
            })
            .collect();
        Ok(deliveries)
    }

    /// How many promotions each recipient of a promotion in `addressed` has received in
    /// their local day so far. Only campaigns send promotions, one sender at a time
    /// (`campaign::SenderLock`), so no other transaction changes these counts meanwhile.
    async fn promotions_today(
        &self,
        tx: &mut Tx,
        addressed: &[(Option<Recipient>, Draft)],
        now: DateTime<Utc>,
    ) -> Result<HashMap<Uuid, i64>, sqlx::Error> {
        let days: HashMap<Uuid, (DateTime<Utc>, DateTime<Utc>)> = addressed
            .iter()
            .filter(|(_, draft)| draft.notification_type == NotificationType::Promotion)
            .filter_map(|(recipient, _)| recipient.as_ref())
            .map(|r| {
                let zone = timezone_of(&r.preferences).unwrap_or(Tz::UTC);
                (r.user_id, local_day(zone, now))
            })
            .collect();
        let mut counts = HashMap::with_capacity(days.len());
        let (Some(from), Some(to)) = (
            days.values().map(|(start, _)| *start).min(),
            days.values().map(|(_, end)| *end).max(),
        ) else {
            return Ok(counts);
        };
        let users: Vec<Uuid> = days.keys().copied().collect();
        for (user, decided_at) in decision_log::promotions_decided(tx, &users, from, to).await? {
            if let Some((start, end)) = days.get(&user)
                && (*start..*end).contains(&decided_at)
            {
                *counts.entry(user).or_insert(0) += 1;
            }
        }
        Ok(counts)
    }

    /// [`Notifier::committed`] for each delivery of a set, the unread counts refreshed at once.
    pub async fn committed_all(&self, deliveries: &[Delivery]) {
        let changed: Vec<Uuid> = deliveries.iter().filter_map(|d| self.count(d)).collect();
        let arrived: Vec<&Notification> = deliveries
            .iter()
            .filter_map(Delivery::notification)
            .collect();
        self.unread.changed_all(&changed, &arrived).await;
    }

    /// Counts the decision and its deliveries, refreshes the recipient's unread count and
    /// wakes the email worker, once committed.
    pub async fn committed(&self, delivery: &Delivery) {
        if let Some(user_id) = self.count(delivery) {
            let arrived: Vec<&Notification> = delivery.notification().into_iter().collect();
            self.unread.changed_all(&[user_id], &arrived).await;
        }
    }

    /// Counts the decision and its deliveries and wakes the email worker; the user whose
    /// unread notifications changed, if any.
    fn count(&self, delivery: &Delivery) -> Option<Uuid> {
        let Delivery::Decided {
            user_id,
            notification_type,
            decision,
            notification,
            emailed,
        } = delivery
        else {
            metrics::counter!("notifications_duplicates_total").increment(1);
            return None;
        };
        metrics::counter!(
            "notifications_decisions_total",
            "type" => notification_type.as_str(),
            "outcome" => decision.outcome().as_str(),
            "reason" => decision.reason().map_or("NONE", |r| r.as_str()),
        )
        .increment(1);
        if let Some(reason) = decision.reason() {
            tracing::debug!(reason = reason.as_str(), "suppressed");
            metrics::counter!("notifications_deliveries_total", "channel" => "NONE", "status" => "SUPPRESSED")
                .increment(1);
        }
        if *emailed {
            metrics::counter!("notifications_deliveries_total", "channel" => "EMAIL", "status" => "QUEUED")
                .increment(1);
            self.emails.queued();
        }
        notification.as_ref()?;
        // A deferred one is stored now and shown from its time.
        let status = if decision.until().is_some() {
            "QUEUED"
        } else {
            "SENT"
        };
        metrics::counter!("notifications_deliveries_total", "channel" => "IN_APP", "status" => status)
            .increment(1);
        Some(*user_id)
    }
}
