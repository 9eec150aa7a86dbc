//! Announcing, after each commit, whose in-app notifications changed, on the cache's
//! [`LIVE_CHANNEL`]: the gateway pushes that to live subscriptions. Nothing is built or sent
//! while nobody listens (no gateway has a live subscription open).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use herald_events::{LIVE_CHANNEL, LiveChange, LiveChanges};
use herald_platform::cache::Cache;
use uuid::Uuid;

use crate::store::Notification;

/// How long "someone listens" is believed before asking again. "Nobody listens" is never
/// believed: a listener that just arrived must not miss what follows.
const LISTENING_TTL: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct LiveFeed {
    cache: Cache,
    listening_since: Arc<Mutex<Option<Instant>>>,
}

impl LiveFeed {
    pub fn new(cache: Cache) -> LiveFeed {
        LiveFeed {
            cache,
            listening_since: Arc::default(),
        }
    }

    async fn listened(&self) -> bool {
        let known = *self
            .listening_since
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if known.is_some_and(|at| at.elapsed() < LISTENING_TTL) {
            return true;
        }
        let listening = self.cache.has_listeners(LIVE_CHANNEL).await;
        *self
            .listening_since
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = listening.then(Instant::now);
        listening
    }

    /// Announces that `arrived` were stored and that the unread notifications of `users`
    /// changed, in one message; call it once they are committed.
    pub async fn announce(&self, users: &[Uuid], arrived: &[&Notification]) {
        if (users.is_empty() && arrived.is_empty()) || !self.listened().await {
            return;
        }
        let mut changes = Vec::with_capacity(arrived.len() + users.len());
        let mut told = HashSet::with_capacity(arrived.len());
        for notification in arrived {
            let Ok(shown) = serde_json::to_value(notification) else {
                continue;
            };
            told.insert(notification.user_id);
            changes.push(LiveChange {
                user_id: notification.user_id,
                notification: Some(shown),
            });
        }
        for user_id in users {
            if told.insert(*user_id) {
                changes.push(LiveChange {
                    user_id: *user_id,
                    notification: None,
                });
            }
        }
        match serde_json::to_string(&LiveChanges { changes }) {
            Ok(message) => self.cache.publish(LIVE_CHANNEL, &message).await,
            Err(e) => tracing::warn!(error = %e, "a live announcement could not be written"),
        }
    }
}
