//! A small cache: in-process (moka) by default, Redis when a URL is set.
//!
//! The cache is an optimisation, never the source of truth: a failing cache is logged and
//! treated as a miss, so requests keep working when Redis is down.

mod memory;
mod redis;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use self::memory::MemoryCache;
pub use self::redis::RedisCache;
use crate::config::Settings;

#[async_trait]
pub trait CacheBackend: Send + Sync + 'static {
    async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>>;
    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> anyhow::Result<()>;
    async fn delete(&self, key: &str) -> anyhow::Result<()>;
    /// Adds one to a counter that expires `ttl` after it was created; returns the new value.
    async fn incr(&self, key: &str, ttl: Duration) -> anyhow::Result<i64>;
    /// Adds one to each of the counters that exist, in one round trip where the backend
    /// allows; a missing counter stays missing. For generation counters: a value nobody
    /// read needs no invalidating, and a reader that creates the counter afterwards reads
    /// what was committed before.
    async fn incr_existing_each(&self, keys: &[String]) -> anyhow::Result<()>;
    /// The generation counter `key`, and what `beside` holds, in one round trip. A missing
    /// counter is created (expiring `ttl` later) at the clock in microseconds: above any
    /// value an earlier counter of the same key reached (it would have needed more than a
    /// change a microsecond), so a copy kept under an old generation never matches a
    /// counter lost with a restarted or evicting cache and created again.
    async fn generation(
        &self,
        key: &str,
        ttl: Duration,
        beside: Option<&str>,
    ) -> anyhow::Result<(i64, Option<Vec<u8>>)>;
    /// [`CacheBackend::delete`] of each key, in one round trip where the backend allows.
    async fn delete_each(&self, keys: &[String]) -> anyhow::Result<()> {
        for key in keys {
            self.delete(key).await?;
        }
        Ok(())
    }
    /// Counts an attempt under `key` if `backoff` lets it through now; otherwise how long
    /// until it would (the refused attempt is not counted).
    async fn attempt(&self, key: &str, backoff: &Backoff) -> anyhow::Result<Option<Duration>>;
    /// Takes one counted attempt back (it succeeded, and only failures should count).
    async fn refund(&self, key: &str) -> anyhow::Result<()>;
    /// Sends `message` to whoever listens on `channel` now (at most once, nothing kept).
    async fn publish(&self, channel: &str, message: &str) -> anyhow::Result<()>;
    /// Whether anyone listens on `channel`, so a publisher can skip building messages.
    async fn has_listeners(&self, channel: &str) -> anyhow::Result<bool>;
    /// The messages published on `channel` from now on. The stream ends when the
    /// connection behind it is lost; subscribe again to go on.
    async fn subscribe(&self, channel: &str) -> anyhow::Result<BoxStream<'static, String>>;
    async fn ping(&self) -> bool;
    fn name(&self) -> &'static str;
}

/// How attempts that may fail slow down (sign-ins, registrations): `free` attempts pass at
/// once; after them each must wait `first_delay` after the one before, twice as long each
/// time, at most `max_delay`. A key's count starts again once no attempt came for `window`
/// (or for the last wait, when that is longer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub free: u32,
    pub window: Duration,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Backoff {
    /// The wait after the `n`th counted attempt (the first is 1) before the next: none
    /// before the `free`th, then `first_delay`, doubling.
    pub fn delay_after(&self, n: u64) -> Duration {
        let Some(doublings) = n.checked_sub(u64::from(self.free)) else {
            return Duration::ZERO;
        };
        let doublings = u32::try_from(doublings).unwrap_or(u32::MAX).min(31);
        self.first_delay
            .saturating_mul(2u32.saturating_pow(doublings))
            .min(self.max_delay)
    }

    /// How long a key is remembered after an attempt that imposed `delay`.
    pub fn memory(&self, delay: Duration) -> Duration {
        self.window.max(delay)
    }
}

#[derive(Clone)]
pub struct Cache {
    backend: Arc<dyn CacheBackend>,
    prefix: String,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache")
            .field("backend", &self.backend.name())
            .finish()
    }
}

impl Cache {
    pub async fn connect(settings: &Settings) -> anyhow::Result<Cache> {
        let backend: Arc<dyn CacheBackend> = match &settings.redis_url {
            Some(url) => Arc::new(RedisCache::connect(url).await?),
            None => Arc::new(MemoryCache::new(100_000)),
        };
        Ok(Cache {
            backend,
            prefix: settings.cache_prefix.clone(),
        })
    }

    pub fn new(backend: Arc<dyn CacheBackend>, prefix: &str) -> Cache {
        Cache {
            backend,
            prefix: prefix.to_owned(),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}:{}", self.prefix, key)
    }

    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        let result = self.backend.get(&self.key(key)).await;
        let found = match result {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).ok(),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "cache read failed");
                None
            }
        };
        let outcome = if found.is_some() { "hit" } else { "miss" };
        metrics::counter!("cache_requests_total", "outcome" => outcome).increment(1);
        found
    }

    pub async fn set_json<T: Serialize>(&self, key: &str, value: &T, ttl: Duration) {
        let Ok(bytes) = serde_json::to_vec(value) else {
            return;
        };
        if let Err(e) = self.backend.set(&self.key(key), bytes, ttl).await {
            tracing::warn!(error = format!("{e:#}"), "cache write failed");
        }
    }

    pub async fn delete(&self, key: &str) {
        if let Err(e) = self.backend.delete(&self.key(key)).await {
            tracing::warn!(error = format!("{e:#}"), "cache delete failed");
        }
    }

    /// The generation counter `key` and the JSON value under `beside`, in one round trip
    /// (see [`CacheBackend::generation`]); None when the cache is unreachable. A value
    /// that is absent or unreadable is a miss.
    pub async fn generation<T: DeserializeOwned>(
        &self,
        key: &str,
        ttl: Duration,
        beside: Option<&str>,
    ) -> Option<(i64, Option<T>)> {
        let beside = beside.map(|key| self.key(key));
        let result = self
            .backend
            .generation(&self.key(key), ttl, beside.as_deref())
            .await;
        match result {
            Ok((generation, value)) => {
                let found = value.and_then(|bytes| serde_json::from_slice(&bytes).ok());
                if beside.is_some() {
                    let outcome = if found.is_some() { "hit" } else { "miss" };
                    metrics::counter!("cache_requests_total", "outcome" => outcome).increment(1);
                }
                Some((generation, found))
            }
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "cache generation read failed");
                None
            }
        }
    }

    /// The generation counter `key` alone (see [`Cache::generation`]).
    pub async fn current_generation(&self, key: &str, ttl: Duration) -> Option<i64> {
        let (generation, _) = self.generation::<()>(key, ttl, None).await?;
        Some(generation)
    }

    /// A fixed-window counter (rate limits). `None` when the cache is unreachable.
    pub async fn incr(&self, key: &str, ttl: Duration) -> Option<i64> {
        match self.backend.incr(&self.key(key), ttl).await {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "cache increment failed");
                None
            }
        }
    }

    /// Counts an attempt if `backoff` lets it through (None), or says how long to wait.
    /// A failing cache lets attempts through: it is logged, and requests keep working.
    pub async fn attempt(&self, key: &str, backoff: &Backoff) -> Option<Duration> {
        match self.backend.attempt(&self.key(key), backoff).await {
            Ok(wait) => wait,
            Err(e) => {
                tracing::warn!(error = format!("{e:#}"), "cache attempt count failed");
                None
            }
        }
    }

    /// Takes one counted attempt of `key` back.
    pub async fn refund(&self, key: &str) {
        if let Err(e) = self.backend.refund(&self.key(key)).await {
            tracing::warn!(error = format!("{e:#}"), "cache refund failed");
        }
    }

    /// [`Cache::delete`] of each key at once.
    pub async fn delete_each(&self, keys: &[String]) {
        if keys.is_empty() {
            return;
        }
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        if let Err(e) = self.backend.delete_each(&keys).await {
            tracing::warn!(error = format!("{e:#}"), "cache delete failed");
        }
    }

    /// Adds one to each of the counters that exist, at once (see
    /// [`CacheBackend::incr_existing_each`]).
    pub async fn incr_existing_each(&self, keys: &[String]) {
        if keys.is_empty() {
            return;
        }
        let keys: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        if let Err(e) = self.backend.incr_existing_each(&keys).await {
            tracing::warn!(error = format!("{e:#}"), "cache increment failed");
        }
    }

    /// Publishes `message` on this deployment's `channel` (see [`CacheBackend::publish`]);
    /// a failure is logged: what is published is a hint, never the only copy.
    pub async fn publish(&self, channel: &str, message: &str) {
        if let Err(e) = self.backend.publish(&self.key(channel), message).await {
            tracing::warn!(channel, error = format!("{e:#}"), "cache publish failed");
        }
    }

    /// Whether anyone listens on this deployment's `channel`; false when the cache fails.
    pub async fn has_listeners(&self, channel: &str) -> bool {
        match self.backend.has_listeners(&self.key(channel)).await {
            Ok(listening) => listening,
            Err(e) => {
                tracing::warn!(
                    channel,
                    error = format!("{e:#}"),
                    "cache listener count failed"
                );
                false
            }
        }
    }

    /// The messages published on this deployment's `channel` from now on (see
    /// [`CacheBackend::subscribe`]).
    pub async fn subscribe(&self, channel: &str) -> anyhow::Result<BoxStream<'static, String>> {
        self.backend.subscribe(&self.key(channel)).await
    }

    pub async fn ping(&self) -> bool {
        self.backend.ping().await
    }

    pub fn backend(&self) -> &Arc<dyn CacheBackend> {
        &self.backend
    }
}
