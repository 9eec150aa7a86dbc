//! The email worker: a loop over the email outbox. It leases due emails (critical first,
//! then the longest due), renders them, sends them with the platform's [`Mailer`] and
//! records each attempt. A failure is due again after the bus's backoff (the
//! `bus_max_attempts` and `bus_retry_delay_ms` settings, with jitter); after the last
//! attempt the email is FAILED and kept as a dead letter of the `notifications.email`
//! queue, whose replay queues it again.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use chrono::Duration as ClockDuration;
use herald_events::{Channel, Envelope};
use herald_platform::bus::{ConsumerOptions, DeadMessage, EventHandler, HandlerError};
use herald_platform::db::Database;
use herald_platform::deadletters::DeadLetters;
use herald_platform::mail::{Mailer, OutgoingEmail};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::EmailQueue;
use super::render::{EmailContext, EmailTemplates};
use super::store::{self, AttemptOutcome, CHANNEL, QueuedEmail};
use crate::SERVICE;
use crate::clock::Clock;
use crate::decision::still_wanted;
use crate::domain::Recipient;
use crate::recipients::find_recipients;
use crate::unsubscribe::UnsubscribeLinks;

/// The queue email dead letters belong to; replaying one puts the email back in the outbox.
pub const EMAIL_QUEUE: &str = herald_events::NOTIFICATIONS_EMAIL;
/// Emails leased and sent per round.
const BATCH: i64 = 64;
/// How often the worker looks for due emails when nothing woke it.
const POLL: Duration = Duration::from_secs(1);
/// How long a lease keeps other replicas off an email; longer than a round of sends.
const LEASE_MINUTES: i64 = 10;

pub use herald_events::EmailUndeliverable;

#[derive(Clone, Debug)]
pub struct EmailWorker {
    pub db: Database,
    pub mailer: Mailer,
    pub templates: Arc<EmailTemplates>,
    pub links: UnsubscribeLinks,
    pub clock: Clock,
    /// Attempts and backoff, as the bus's consumers retry.
    pub retries: ConsumerOptions,
    pub dead_letters: DeadLetters,
    pub queue: EmailQueue,
    pub public_url: String,
}

impl EmailWorker {
    /// Sends due emails until `shutdown`; an email leased when it comes is given back.
    pub fn spawn(self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        // Failures counted from zero, so an alert sees the first one.
        metrics::counter!("notifications_deliveries_total", "channel" => CHANNEL, "status" => "FAILED")
            .increment(0);
        tokio::spawn(async move {
            let mut backoff = POLL;
            while !shutdown.is_cancelled() {
                let round = self.send_due(&shutdown).await;
                self.report_depth().await;
                let pause = match round {
                    Ok(sent) if sent as i64 == BATCH => continue,
                    Ok(_) => {
                        backoff = POLL;
                        POLL
                    }
                    Err(e) => {
                        tracing::warn!(error = format!("{e:#}"), "email round failed; retrying");
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                        backoff
                    }
                };
                tokio::select! {
                    _ = self.queue.wait() => {}
                    _ = self.clock.changed() => {}
                    _ = tokio::time::sleep(pause) => {}
                    _ = shutdown.cancelled() => {}
                }
            }
        })
    }

    async fn report_depth(&self) {
        match store::queue_depth(&self.db).await {
            Ok(depth) => metrics::gauge!("email_queue_depth").set(depth as f64),
            Err(e) => tracing::debug!(error = %e, "could not count the email queue"),
        }
    }

    /// One round: leases the emails due now and attempts each; returns how many it leased.
    ///
    /// The lease hands them over critical first, then the longest due. Each priority group
    /// is sent concurrently (over the transport's pooled connections), its attempts are
    /// recorded in one transaction, and the standard ones start only once every critical
    /// one is done: one at a time, every email waited for its whole SMTP conversation and a
    /// transaction of its own, and a round of 20 took most of a second.
    pub async fn send_due(&self, shutdown: &CancellationToken) -> anyhow::Result<usize> {
        let now = self.clock.now();
        let due = store::claim_due(&self.db, now, ClockDuration::minutes(LEASE_MINUTES), BATCH)
            .await
            .context("leasing due emails")?;
        let mut sent = 0;
        for group in
            due.chunk_by(|a, b| a.notification_type.priority() == b.notification_type.priority())
        {
            if shutdown.is_cancelled() {
                let rest: Vec<Uuid> = due[sent..].iter().map(|e| e.id).collect();
                store::release(&self.db, &rest).await?;
                break;
            }
            let users: Vec<Uuid> = group.iter().map(|e| e.user_id).collect();
            let recipients = {
                let mut conn = self.db.pool().acquire().await?;
                find_recipients(&mut conn, &users).await?
            };
            let attempts = futures::future::join_all(
                group
                    .iter()
                    .map(|e| self.attempt(e, recipients.get(&e.user_id))),
            )
            .await;
            sent += group.len();
            let outcomes: Vec<(&QueuedEmail, AttemptOutcome)> =
                group.iter().zip(attempts).collect();
            store::record_attempts(&self.db, &outcomes, self.clock.now())
                .await
                .context("recording email attempts")?;
            for (email, outcome) in &outcomes {
                self.recorded(email, outcome).await;
            }
        }
        Ok(due.len())
    }

    /// Sends the email unless it is no longer wanted; what became of it, to record.
    #[tracing::instrument(skip_all, fields(email_id = %email.id, user_id = %email.user_id, attempt = email.attempts + 1))]
    async fn attempt(&self, email: &QueuedEmail, recipient: Option<&Recipient>) -> AttemptOutcome {
        // The decision is checked again as the email goes out: a deferred or retried email
        // may meet a recipient who has switched it off since.
        if let Err(reason) = still_wanted(recipient, email.notification_type, Channel::Email) {
            return AttemptOutcome::Suppressed(reason);
        }
        let sent = self.send(email).await;
        let now = self.clock.now();
        let attempt = email.attempts + 1;
        match sent {
            Ok(()) => AttemptOutcome::Sent,
            Err(e) if self.retries.retries_after(attempt) => {
                let delay = self.retries.jittered_delay(attempt);
                let delay = ClockDuration::from_std(delay).unwrap_or(ClockDuration::hours(1));
                AttemptOutcome::RetryAt(now + delay, format!("{e:#}"))
            }
            Err(e) => AttemptOutcome::Failed(format!("{e:#}")),
        }
    }

    /// Counts, logs and, after the last attempt, dead-letters a recorded outcome.
    async fn recorded(&self, email: &QueuedEmail, outcome: &AttemptOutcome) {
        let status = match outcome {
            AttemptOutcome::Sent => "SENT",
            AttemptOutcome::Suppressed(_) => "SUPPRESSED",
            AttemptOutcome::RetryAt(..) | AttemptOutcome::Failed(_) => "FAILED",
        };
        metrics::counter!("notifications_deliveries_total", "channel" => CHANNEL, "status" => status)
            .increment(1);
        match outcome {
            AttemptOutcome::Sent => tracing::debug!(email_id = %email.id, "email sent"),
            AttemptOutcome::Suppressed(reason) => tracing::info!(
                email_id = %email.id,
                reason = reason.as_str(),
                "email no longer wanted; not sent"
            ),
            AttemptOutcome::RetryAt(due, error) => {
                tracing::info!(email_id = %email.id, %error, retry_at = %due, "email not sent; will retry");
            }
            AttemptOutcome::Failed(error) => {
                tracing::warn!(email_id = %email.id, %error, "email not sent after the last attempt; dead-lettered");
                self.dead_letter(email, error, email.attempts + 1).await;
            }
        }
    }

    async fn send(&self, email: &QueuedEmail) -> anyhow::Result<()> {
        let unsubscribe_url = self.links.link(email.user_id, email.notification_type);
        let rendered = self
            .templates
            .render(
                email.notification_type,
                &EmailContext {
                    name: &email.to_name,
                    title: &email.title,
                    body: &email.body,
                    notification_type: email.notification_type.as_str(),
                    data: email.data.as_ref(),
                    unsubscribe_url: unsubscribe_url.as_deref(),
                    public_url: &self.public_url,
                },
            )
            .map_err(|e| {
                anyhow!(
                    "rendering the {} email: {e:#}",
                    email.notification_type.as_str()
                )
            })?;
        let headers = match unsubscribe_url {
            // RFC 8058: one POST to the link unsubscribes.
            Some(url) => vec![
                ("List-Unsubscribe".to_owned(), format!("<{url}>")),
                (
                    "List-Unsubscribe-Post".to_owned(),
                    "List-Unsubscribe=One-Click".to_owned(),
                ),
            ],
            None => Vec::new(),
        };
        self.mailer
            .send(&OutgoingEmail {
                to_name: email.to_name.clone(),
                to_address: email.to_address.clone(),
                subject: rendered.subject,
                text: rendered.text,
                html: rendered.html,
                headers,
            })
            .await
    }

    async fn dead_letter(&self, email: &QueuedEmail, error: &str, attempts: u32) {
        let mut letter = Envelope::new(
            SERVICE,
            Some(email.user_id.to_string()),
            &EmailUndeliverable {
                delivery_id: email.id,
                user_id: email.user_id,
                notification_type: email.notification_type.as_str().to_owned(),
                dedupe_key: email.dedupe_key.clone(),
            },
        );
        // One dead letter per email, however often it is replayed and fails again.
        letter.id = email.id;
        let stored = self
            .dead_letters
            .store(EMAIL_QUEUE, DeadMessage::Event(&letter), error, attempts)
            .await;
        if let Err(e) = stored {
            // The FAILED row stays the record of it.
            tracing::error!(error = format!("{e:#}"), email_id = %email.id, "could not dead-letter an email");
        }
    }
}

/// Consumes replayed email dead letters: the email is queued again with fresh attempts.
#[derive(Clone, Debug)]
pub struct EmailReplays {
    pub db: Database,
    pub clock: Clock,
    pub queue: EmailQueue,
}

#[async_trait]
impl EventHandler for EmailReplays {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        let letter: EmailUndeliverable = event
            .payload()
            .map_err(|e| HandlerError::Reject(anyhow!("{} {}: {e}", event.event_type, event.id)))?;
        // Replaying twice, or an email sent meanwhile, queues nothing more.
        if store::requeue_failed(&self.db, letter.delivery_id, self.clock.now()).await? {
            tracing::info!(email_id = %letter.delivery_id, "replayed email queued again");
            self.queue.queued();
        }
        Ok(())
    }
}
