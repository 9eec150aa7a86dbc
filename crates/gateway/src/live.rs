//! Live subscriptions: the gateway listens on the cache's [`LIVE_CHANNEL`] while at least
//! one subscription is open, and hands each user's changes to that user's subscriptions.
//!
//! The feed is a hint: a subscription that was away (or a gateway that restarted) misses
//! what happened meanwhile, and clients read the lists for that. A notification deferred
//! past quiet hours is held here until its time, then pushed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{Stream, StreamExt};
use herald_events::{LIVE_CHANNEL, LiveChange, LiveChanges};
use herald_platform::cache::Cache;
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

/// Changes a subscription may have waiting before newer ones are dropped for it.
const PER_SUBSCRIPTION: usize = 256;
/// Deferred notifications a subscription holds until their time.
const HELD: usize = 1_024;
/// Live subscriptions one user may hold at once (over any number of connections).
pub const PER_USER: usize = 16;
/// The wait before listening again after the cache connection failed.
const RETRY: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct LiveHub {
    cache: Cache,
    state: Arc<Mutex<HubState>>,
}

#[derive(Default)]
struct HubState {
    next_id: u64,
    by_user: HashMap<Uuid, Vec<(u64, mpsc::Sender<LiveChange>)>>,
    /// The task listening on the channel, while any subscription is open, and whether it
    /// listens yet.
    feed: Option<(tokio::task::JoinHandle<()>, watch::Receiver<bool>)>,
}

impl LiveHub {
    pub fn new(cache: Cache) -> LiveHub {
        LiveHub {
            cache,
            state: Arc::default(),
        }
    }

    /// `user_id`'s changes from now on, each notification at its time. Returns once the
    /// gateway listens, so nothing committed after it is missed (unless the cache is down);
    /// None when the user already holds [`PER_USER`] subscriptions.
    pub async fn listen(
        &self,
        user_id: Uuid,
    ) -> Option<impl Stream<Item = LiveChange> + Send + use<>> {
        let (sender, receiver) = mpsc::channel(PER_SUBSCRIPTION);
        let (id, mut listening) = {
            let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if state
                .by_user
                .get(&user_id)
                .is_some_and(|l| l.len() >= PER_USER)
            {
                return None;
            }
            let id = state.next_id;
            state.next_id += 1;
            state.by_user.entry(user_id).or_default().push((id, sender));
            if state.feed.is_none() {
                let (ready, listening) = watch::channel(false);
                let task = tokio::spawn(feed(self.cache.clone(), self.state.clone(), ready));
                state.feed = Some((task, listening));
            }
            let listening = state.feed.as_ref().map(|(_, listening)| listening.clone());
            (id, listening)
        };
        // From here on, dropping the subscription (even while it waits below) unregisters it.
        let mut registration = Registration {
            hub: self.clone(),
            user_id,
            id,
            counted: false,
        };
        if let Some(listening) = listening.as_mut() {
            // Waits a moment at most: with the cache down the subscription still opens.
            let _ = tokio::time::timeout(Duration::from_secs(2), listening.wait_for(|l| *l)).await;
        }
        // Counted once it hears what is committed from now on.
        metrics::gauge!("gateway_live_subscriptions").increment(1.0);
        registration.counted = true;
        let changes =
            futures::stream::unfold((receiver, registration), |(mut receiver, r)| async {
                let change = receiver.recv().await?;
                Some((change, (receiver, r)))
            });
        let changes = changes
            .map(|change| async move {
                if let Some(wait) = deferred_by(&change) {
                    tokio::time::sleep(wait).await;
                }
                change
            })
            .buffer_unordered(HELD);
        Some(changes)
    }

    fn dispatch(state: &Mutex<HubState>, changes: Vec<LiveChange>) {
        let state = state.lock().unwrap_or_else(|p| p.into_inner());
        for change in changes {
            let Some(listeners) = state.by_user.get(&change.user_id) else {
                continue;
            };
            for (_, sender) in listeners {
                if sender.try_send(change.clone()).is_err() {
                    metrics::counter!("gateway_live_dropped_total").increment(1);
                }
            }
        }
    }
}

/// How long a change waits before it is pushed: a notification deferred past its
/// recipient's quiet hours is shown from its `createdAt`.
fn deferred_by(change: &LiveChange) -> Option<Duration> {
    let shown_at = change.notification.as_ref()?.get("createdAt")?.as_str()?;
    let shown_at = chrono::DateTime::parse_from_rfc3339(shown_at).ok()?;
    (shown_at.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

/// Removes its subscription from the hub when the subscription's stream is dropped; the
/// last one stops the feed.
struct Registration {
    hub: LiveHub,
    user_id: Uuid,
    id: u64,
    /// Whether `gateway_live_subscriptions` counts it.
    counted: bool,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if self.counted {
            metrics::gauge!("gateway_live_subscriptions").decrement(1.0);
        }
        let mut state = self.hub.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(listeners) = state.by_user.get_mut(&self.user_id) {
            listeners.retain(|(id, _)| *id != self.id);
            if listeners.is_empty() {
                state.by_user.remove(&self.user_id);
            }
        }
        if state.by_user.is_empty()
            && let Some((task, _)) = state.feed.take()
        {
            task.abort();
        }
    }
}

/// Listens on the channel until aborted, again after each lost connection, and hands
/// every change to the hub.
async fn feed(cache: Cache, state: Arc<Mutex<HubState>>, listening: watch::Sender<bool>) {
    loop {
        match cache.subscribe(LIVE_CHANNEL).await {
            Ok(mut messages) => {
                listening.send_replace(true);
                while let Some(message) = messages.next().await {
                    match serde_json::from_str::<LiveChanges>(&message) {
                        Ok(live) => LiveHub::dispatch(&state, live.changes),
                        Err(e) => tracing::warn!(error = %e, "a live message was not understood"),
                    }
                }
                listening.send_replace(false);
                tracing::warn!("the live feed's cache connection was lost; listening again");
            }
            Err(e) => tracing::warn!(
                error = format!("{e:#}"),
                "listening for live changes failed"
            ),
        }
        tokio::time::sleep(RETRY).await;
    }
}
