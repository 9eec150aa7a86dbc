//! The cached count of a user's unread notifications.
//!
//! A plain delete would race: a reader that counted before a commit could store its stale
//! count after the writer's delete. So each user has a generation counter that every
//! change bumps after commit, and counts are cached under their generation: a count
//! computed before a change lands under the old generation and is never read again.
//!
//! A count is not cached while some of the user's notifications wait for the end of their
//! quiet hours: it would hide them past their time.

use std::time::Duration;

use herald_platform::cache::Cache;
use herald_platform::db::Database;
use uuid::Uuid;

use crate::clock::Clock;
use crate::live::LiveFeed;
use crate::store::{self, Notification};

/// How long a count may be served; also bounds staleness while the cache misses a bump.
const COUNT_TTL: Duration = Duration::from_secs(60);
const GENERATION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Clone, Debug)]
pub struct UnreadCounts {
    cache: Cache,
    clock: Clock,
    live: LiveFeed,
}

impl UnreadCounts {
    pub fn new(cache: Cache, clock: Clock) -> UnreadCounts {
        UnreadCounts {
            live: LiveFeed::new(cache.clone()),
            cache,
            clock,
        }
    }

    fn generation_key(user_id: Uuid) -> String {
        format!("notifications:unread-generation:{user_id}")
    }

    fn count_key(user_id: Uuid, generation: i64) -> String {
        format!("notifications:unread:{user_id}:{generation}")
    }

    /// The user's unread count, from the cache when it holds the current generation's.
    pub async fn get(&self, db: &Database, user_id: Uuid) -> Result<i64, sqlx::Error> {
        let generation_key = Self::generation_key(user_id);
        let generation = match self.cache.get_json::<i64>(&generation_key).await {
            Some(generation) => Some(generation),
            None => self.cache.incr(&generation_key, GENERATION_TTL).await,
        };
        let now = self.clock.now();
        // Without a generation (the cache is down) nothing is cached.
        let Some(generation) = generation else {
            return Ok(store::count_unread_and_waiting(db, user_id, now).await?.0);
        };
        let key = Self::count_key(user_id, generation);
        if let Some(count) = self.cache.get_json::<i64>(&key).await {
            return Ok(count);
        }
        let (count, waiting) = store::count_unread_and_waiting(db, user_id, now).await?;
        if !waiting {
            self.cache.set_json(&key, &count, COUNT_TTL).await;
        }
        Ok(count)
    }

    /// Call after committing anything that changes the user's unread notifications.
    pub async fn changed(&self, user_id: Uuid) {
        self.changed_all(&[user_id], &[]).await;
    }

    /// [`UnreadCounts::changed`] for several users, in one round trip to the cache, with
    /// the notifications that `arrived` meanwhile; both are announced to live
    /// subscriptions. Only generations that exist move: a user without one has no count
    /// cached, and whoever creates it later counts after this commit.
    pub async fn changed_all(&self, user_ids: &[Uuid], arrived: &[&Notification]) {
        let mut users = user_ids.to_vec();
        users.sort_unstable();
        users.dedup();
        let keys: Vec<String> = users.iter().copied().map(Self::generation_key).collect();
        self.cache.incr_existing_each(&keys).await;
        self.live.announce(&users, arrived).await;
    }
}
