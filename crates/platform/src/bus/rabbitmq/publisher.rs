//! The publishing connection: publisher confirms, reopened after any failure.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, anyhow};
use futures::future::try_join_all;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Connection};
use lapin::{Confirmation, PublisherConfirm};
use tokio::sync::Mutex;

use super::{close_connection, open_connection};

/// A blocked or half-open connection fails the publish instead of hanging it.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

/// The publishing connection and its confirm-mode channel, opened on first use and again
/// after any failure.
pub(super) struct Publisher {
    url: String,
    name: String,
    session: Mutex<Option<Session>>,
    sessions_opened: AtomicU64,
}

struct Session {
    id: u64,
    connection: Connection,
    confirms: Channel,
}

impl Session {
    fn is_open(&self) -> bool {
        self.connection.status().connected() && self.confirms.status().connected()
    }

    fn close_in_background(self) {
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { close_connection(&self.connection).await });
        }
    }
}

/// One message to publish with confirms.
pub(super) struct Outgoing<'a> {
    pub exchange: &'a str,
    pub routing_key: &'a str,
    pub body: &'a [u8],
    pub properties: BasicProperties,
    /// Fail when no queue takes the message, instead of dropping it (an event no queue
    /// binds is dropped, as on the embedded bus).
    pub mandatory: bool,
}

impl Publisher {
    pub(super) fn new(url: &str, name: String) -> Publisher {
        Publisher {
            url: url.to_owned(),
            name,
            session: Mutex::new(None),
            sessions_opened: AtomicU64::new(0),
        }
    }

    pub(super) fn url(&self) -> &str {
        &self.url
    }

    /// Opens the connection unless it is open.
    pub(super) async fn ping(&self) -> anyhow::Result<()> {
        self.ensure_open(&mut *self.session.lock().await).await?;
        Ok(())
    }

    async fn ensure_open<'s>(
        &self,
        slot: &'s mut Option<Session>,
    ) -> anyhow::Result<&'s mut Session> {
        let session = match slot.take() {
            Some(session) if session.is_open() => session,
            stale => {
                if let Some(stale) = stale {
                    stale.close_in_background();
                }
                let connection = open_connection(&self.url, self.name.clone()).await?;
                let confirms = connection
                    .create_channel()
                    .await
                    .context("opening a channel")?;
                confirms
                    .confirm_select(ConfirmSelectOptions::default())
                    .await
                    .context("enabling publisher confirms")?;
                let id = self.sessions_opened.fetch_add(1, Ordering::Relaxed);
                Session {
                    id,
                    connection,
                    confirms,
                }
            }
        };
        Ok(slot.insert(session))
    }

    /// A short-lived channel for topology and inspection: a failed operation (a passive
    /// declare of a missing queue) closes only this channel.
    pub(super) async fn scratch_channel(&self) -> anyhow::Result<Channel> {
        let mut slot = self.session.lock().await;
        let session = self.ensure_open(&mut slot).await?;
        session
            .connection
            .create_channel()
            .await
            .context("opening a channel")
    }

    /// Returns once the broker confirmed every message; any failure fails the whole batch.
    pub(super) async fn publish(&self, messages: &[Outgoing<'_>]) -> anyhow::Result<()> {
        // Publishing under the lock keeps messages in the order their confirm tags were
        // taken; the confirms are awaited after it is released.
        let (session_id, pending) = {
            let mut slot = self.session.lock().await;
            let session = self.ensure_open(&mut slot).await?;
            let session_id = session.id;
            // A blocked connection (broker out of memory or disk) stops taking frames.
            let sent = tokio::time::timeout(CONFIRM_TIMEOUT, send_all(&session.confirms, messages))
                .await
                .map_err(|_| anyhow!("RabbitMQ took no messages within {CONFIRM_TIMEOUT:?}"))
                .and_then(|sent| sent.map_err(anyhow::Error::from));
            match sent {
                Ok(pending) => (session_id, pending),
                Err(e) => {
                    if let Some(session) = slot.take() {
                        session.close_in_background();
                    }
                    return Err(e).context("publishing to RabbitMQ");
                }
            }
        };
        let failure = match tokio::time::timeout(CONFIRM_TIMEOUT, try_join_all(pending)).await {
            Ok(Ok(confirmations)) => {
                let refused = confirmations
                    .iter()
                    .filter(|c| !matches!(c, Confirmation::Ack(None)))
                    .count();
                if refused == 0 {
                    return Ok(());
                }
                // The broker answered, so the connection is fine; the caller sends again.
                return Err(anyhow!(
                    "RabbitMQ refused {refused} of {} messages (nack or unroutable)",
                    messages.len()
                ));
            }
            Ok(Err(e)) => anyhow::Error::from(e).context("awaiting publisher confirms"),
            Err(_) => anyhow!("no publisher confirms within {CONFIRM_TIMEOUT:?}"),
        };
        let mut slot = self.session.lock().await;
        if slot.as_ref().is_some_and(|s| s.id == session_id)
            && let Some(session) = slot.take()
        {
            session.close_in_background();
        }
        Err(failure)
    }
}

async fn send_all(
    channel: &Channel,
    messages: &[Outgoing<'_>],
) -> lapin::Result<Vec<PublisherConfirm>> {
    let mut pending = Vec::with_capacity(messages.len());
    for message in messages {
        let options = BasicPublishOptions {
            mandatory: message.mandatory,
            ..BasicPublishOptions::default()
        };
        let confirm = channel
            .basic_publish(
                message.exchange.into(),
                message.routing_key.into(),
                options,
                message.body,
                message.properties.clone(),
            )
            .await?;
        pending.push(confirm);
    }
    Ok(pending)
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if let Some(session) = self.session.get_mut().take() {
            session.close_in_background();
        }
    }
}
