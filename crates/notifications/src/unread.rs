//! The user's inbox generation, and the cached count of their unread notifications.
//!
//! A plain delete would race: a reader that counted before a commit could store its stale
//! count after the writer's delete. So each user has a generation counter that every
//! change to their inbox bumps after commit, and what is cached of the inbox is filed with
//! the generation it was read under: the count beside the counter, read with it in one
//! round trip and used only when their generations match; the first pages in the process
//! ([`crate::inbox`]). Anything read before a change carries the old generation and is
//! never served again.
//!
//! A count is not cached while some of the user's notifications wait for the end of their
//! quiet hours: it would hide them past their time.

use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_platform::cache::Cache;
use herald_platform::db::Database;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::Clock;
use crate::live::LiveFeed;
use crate::store::{self, Notification};

/// How long a count or a page may be served; also bounds staleness while the cache misses
/// a bump.
pub const KEPT_FOR: Duration = Duration::from_secs(60);
const GENERATION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// What a read of a user's inbox was read under: it still answers the same while the
/// inbox's generation is this one and, when some of the user's notifications wait for
/// their time, until the first of them comes due. A caller that keeps an answer hands it
/// back to [`crate::inbox::InboxApi::unchanged_since`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboxVersion {
    pub generation: i64,
    pub until: Option<DateTime<Utc>>,
}

impl InboxVersion {
    /// Whether a read under this version answers as a read now would, the inbox being at
    /// `generation`.
    pub fn holds(&self, generation: i64, now: DateTime<Utc>) -> bool {
        self.generation == generation && self.until.is_none_or(|until| now < until)
    }
}

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

    /// The count and the generation it was counted under.
    fn count_key(user_id: Uuid) -> String {
        format!("notifications:unread:{user_id}")
    }

    /// The user's inbox generation; None when the cache is down (then nothing is kept).
    pub async fn generation(&self, user_id: Uuid) -> Option<i64> {
        self.cache
            .current_generation(&Self::generation_key(user_id), GENERATION_TTL)
            .await
    }

    /// Whether what was read under `version` still answers as a read now would.
    pub async fn unchanged_since(&self, user_id: Uuid, version: &InboxVersion) -> bool {
        self.generation(user_id)
            .await
            .is_some_and(|generation| version.holds(generation, self.clock.now()))
    }

    /// The user's unread count, from the cache when it holds the current generation's,
    /// and the version it was counted under (none while some notifications wait for their
    /// time, or when the cache is down: such a count must not be kept).
    pub async fn get(
        &self,
        db: &Database,
        user_id: Uuid,
    ) -> Result<(i64, Option<InboxVersion>), sqlx::Error> {
        let key = Self::count_key(user_id);
        let cached = self
            .cache
            .generation::<(i64, i64)>(&Self::generation_key(user_id), GENERATION_TTL, Some(&key))
            .await;
        let now = self.clock.now();
        // Without a generation (the cache is down) nothing is cached.
        let Some((generation, counted)) = cached else {
            return Ok((
                store::count_unread_and_waiting(db, user_id, now).await?.0,
                None,
            ));
        };
        let version = InboxVersion {
            generation,
            until: None,
        };
        if let Some((counted_under, count)) = counted
            && counted_under == generation
        {
            return Ok((count, Some(version)));
        }
        let (count, waiting) = store::count_unread_and_waiting(db, user_id, now).await?;
        if waiting {
            return Ok((count, None));
        }
        self.cache
            .set_json(&key, &(generation, count), KEPT_FOR)
            .await;
        Ok((count, Some(version)))
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
