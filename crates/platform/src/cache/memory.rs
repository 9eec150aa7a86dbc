//! The in-process cache backend.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use moka::Expiry;
use moka::future::Cache as Moka;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::{Backoff, CacheBackend};

#[derive(Clone)]
enum Entry {
    Bytes(Arc<Vec<u8>>, Duration),
    Counter(Arc<AtomicI64>, Duration),
    /// Kept for the longest a gate can matter; its own clock says when it starts again.
    Gate(Arc<Mutex<Gate>>, Duration),
}

impl Entry {
    fn ttl(&self) -> Duration {
        match self {
            Entry::Bytes(_, ttl) | Entry::Counter(_, ttl) | Entry::Gate(_, ttl) => *ttl,
        }
    }
}

/// A [`Backoff`] key: attempts counted, when the next may come, when it is forgotten.
struct Gate {
    count: u64,
    next: Instant,
    forgotten_at: Instant,
}

struct PerEntryTtl;

impl Expiry<String, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _key: &String, value: &Entry, _now: Instant) -> Option<Duration> {
        Some(value.ttl())
    }
    fn expire_after_update(
        &self,
        _key: &String,
        value: &Entry,
        _now: Instant,
        _current: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl())
    }
}

/// Messages a channel holds for a listener that has not read them yet.
const CHANNEL_CAPACITY: usize = 4_096;

/// The channels of the process: every in-process cache publishes and listens here, as the
/// services of one process share one Redis when they have one.
fn channels() -> std::sync::MutexGuard<'static, HashMap<String, broadcast::Sender<Arc<str>>>> {
    static CHANNELS: LazyLock<Mutex<HashMap<String, broadcast::Sender<Arc<str>>>>> =
        LazyLock::new(Mutex::default);
    CHANNELS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Microseconds since the Unix epoch, where generation counters start.
fn micros_now() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
}

pub struct MemoryCache {
    entries: Moka<String, Entry>,
}

impl MemoryCache {
    pub fn new(max_entries: u64) -> MemoryCache {
        MemoryCache {
            entries: Moka::builder()
                .max_capacity(max_entries)
                .expire_after(PerEntryTtl)
                .build(),
        }
    }
}

#[async_trait]
impl CacheBackend for MemoryCache {
    async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(match self.entries.get(key).await {
            Some(Entry::Bytes(bytes, _)) => Some(bytes.as_ref().clone()),
            Some(Entry::Counter(n, _)) => Some(n.load(Ordering::SeqCst).to_string().into_bytes()),
            Some(Entry::Gate(..)) | None => None,
        })
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> anyhow::Result<()> {
        self.entries
            .insert(key.to_owned(), Entry::Bytes(Arc::new(value), ttl))
            .await;
        Ok(())
    }

    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        self.entries.invalidate(key).await;
        Ok(())
    }

    async fn incr(&self, key: &str, ttl: Duration) -> anyhow::Result<i64> {
        let entry = self
            .entries
            .get_with(key.to_owned(), async move {
                Entry::Counter(Arc::new(AtomicI64::new(0)), ttl)
            })
            .await;
        match entry {
            Entry::Counter(n, _) => Ok(n.fetch_add(1, Ordering::SeqCst) + 1),
            Entry::Bytes(..) | Entry::Gate(..) => {
                anyhow::bail!("{key} holds a value, not a counter")
            }
        }
    }

    async fn incr_existing_each(&self, keys: &[String]) -> anyhow::Result<()> {
        for key in keys {
            if let Some(Entry::Counter(n, _)) = self.entries.get(key).await {
                n.fetch_add(1, Ordering::SeqCst);
            }
        }
        Ok(())
    }

    async fn generation(
        &self,
        key: &str,
        ttl: Duration,
        beside: Option<&str>,
    ) -> anyhow::Result<(i64, Option<Vec<u8>>)> {
        let entry = self
            .entries
            .get_with(key.to_owned(), async move {
                Entry::Counter(Arc::new(AtomicI64::new(micros_now())), ttl)
            })
            .await;
        let Entry::Counter(n, _) = entry else {
            anyhow::bail!("{key} holds a value, not a counter");
        };
        let generation = n.load(Ordering::SeqCst);
        let value = match beside {
            Some(beside) => self.get(beside).await?,
            None => None,
        };
        Ok((generation, value))
    }

    async fn attempt(&self, key: &str, backoff: &Backoff) -> anyhow::Result<Option<Duration>> {
        let longest = backoff.memory(backoff.max_delay);
        let entry = self
            .entries
            .get_with(key.to_owned(), async move {
                let now = Instant::now();
                Entry::Gate(
                    Arc::new(Mutex::new(Gate {
                        count: 0,
                        next: now,
                        forgotten_at: now,
                    })),
                    longest,
                )
            })
            .await;
        let Entry::Gate(gate, _) = entry else {
            anyhow::bail!("{key} holds a value, not attempts");
        };
        let mut gate = gate.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if now >= gate.forgotten_at {
            gate.count = 0;
            gate.next = now;
        }
        if gate.next > now {
            return Ok(Some(gate.next - now));
        }
        gate.count += 1;
        let delay = backoff.delay_after(gate.count);
        gate.next = now + delay;
        gate.forgotten_at = now + backoff.memory(delay);
        Ok(None)
    }

    async fn refund(&self, key: &str) -> anyhow::Result<()> {
        if let Some(Entry::Gate(gate, _)) = self.entries.get(key).await {
            let mut gate = gate.lock().unwrap_or_else(|p| p.into_inner());
            gate.count = gate.count.saturating_sub(1);
        }
        Ok(())
    }

    async fn publish(&self, channel: &str, message: &str) -> anyhow::Result<()> {
        if let Some(sender) = channels().get(channel) {
            // No receiver left is not an error: nobody listens.
            let _ = sender.send(Arc::from(message));
        }
        Ok(())
    }

    async fn has_listeners(&self, channel: &str) -> anyhow::Result<bool> {
        Ok(channels()
            .get(channel)
            .is_some_and(|sender| sender.receiver_count() > 0))
    }

    async fn subscribe(&self, channel: &str) -> anyhow::Result<BoxStream<'static, String>> {
        let mut channels = channels();
        // Channels nobody listens to any more go when a listener comes, so per-test
        // channels do not pile up; publishing and counting stay a lookup.
        channels.retain(|_, sender| sender.receiver_count() > 0);
        let receiver = channels
            .entry(channel.to_owned())
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .subscribe();
        let channel = channel.to_owned();
        let messages = BroadcastStream::new(receiver).filter_map(move |received| {
            let message = match received {
                Ok(message) => Some(message.to_string()),
                Err(BroadcastStreamRecvError::Lagged(missed)) => {
                    tracing::warn!(channel, missed, "a slow listener missed messages");
                    None
                }
            };
            std::future::ready(message)
        });
        Ok(messages.boxed())
    }

    async fn ping(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}
