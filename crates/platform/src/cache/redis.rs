//! The Redis cache backend, shared by every replica.
//!
//! `ConnectionManager` reconnects by itself; the timeouts below keep a missing or hung Redis
//! from stalling requests, since a failing cache only costs a miss.

use std::sync::LazyLock;
use std::time::Duration;

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{Backoff, CacheBackend};

/// One connection attempt; start-up makes at most two.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const START_UP_TIMEOUT: Duration = Duration::from_secs(5);
/// Every command, so a hung server turns into a quick miss.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
const PING_TIMEOUT: Duration = Duration::from_millis(500);
/// How often a subscribed connection proves it is alive.
const PUBSUB_PING_EVERY: Duration = Duration::from_secs(30);

#[derive(Clone)]
pub struct RedisCache {
    client: redis::Client,
    connection: ConnectionManager,
}

impl RedisCache {
    pub async fn connect(url: &str) -> anyhow::Result<RedisCache> {
        let client =
            redis::Client::open(url).context("parsing the Redis URL (HERALD_REDIS_URL)")?;
        // Few reconnection attempts: callers wait for them, and a miss is cheaper than waiting.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        // A PING proves the other end speaks Redis; a wrong port may accept and stay silent.
        let connected = async {
            let mut connection = ConnectionManager::new_with_config(client.clone(), config).await?;
            redis::cmd("PING")
                .query_async::<()>(&mut connection)
                .await?;
            anyhow::Ok(connection)
        };
        let connection = tokio::time::timeout(START_UP_TIMEOUT, connected)
            .await
            .map_err(|_| anyhow!("no answer from Redis within {START_UP_TIMEOUT:?}"))
            .and_then(|connected| connected)
            .context("connecting to Redis (HERALD_REDIS_URL)")?;
        Ok(RedisCache { client, connection })
    }
}

fn millis(ttl: Duration) -> u64 {
    // PX 0 is an error in Redis; the shortest expiry it accepts is one millisecond.
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// [`CacheBackend::incr_existing_each`] in one script for all keys: a command per key (and
/// a MULTI around each) cost Redis more than the notifications a campaign page stores cost
/// PostgreSQL. Hashed once; sent by its hash, and whole only when Redis lacks it.
static INCR_EXISTING: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "for _, key in ipairs(KEYS) do \
             if redis.call('EXISTS', key) == 1 then redis.call('INCR', key) end \
         end",
    )
});

/// [`CacheBackend::generation`]: the counter, created at Redis' clock in microseconds when
/// missing (TIME's two halves joined as text: Lua's numbers would print it rounded), and
/// the value beside it when a second key is given. ARGV: the counter's expiry (ms).
static GENERATION: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local generation = redis.call('GET', KEYS[1])
        if not generation then
            local t = redis.call('TIME')
            generation = t[1] .. string.format('%06d', tonumber(t[2]))
            redis.call('SET', KEYS[1], generation, 'PX', ARGV[1])
        end
        if KEYS[2] then return {generation, redis.call('GET', KEYS[2])} end
        return {generation}
        ",
    )
});

/// [`CacheBackend::attempt`]: a hash of the count and the earliest next attempt (Redis
/// milliseconds), forgotten after the window or the last wait. ARGV: free, window,
/// first delay, longest delay (milliseconds). Returns the wait, 0 when counted.
static ATTEMPT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        local gate = redis.call('HMGET', KEYS[1], 'count', 'next')
        local count = tonumber(gate[1]) or 0
        local next = tonumber(gate[2]) or 0
        if next > now then return next - now end
        count = count + 1
        local free, window = tonumber(ARGV[1]), tonumber(ARGV[2])
        local delay = 0
        if count >= free then
            delay = math.min(tonumber(ARGV[3]) * 2 ^ math.min(count - free, 31), tonumber(ARGV[4]))
        end
        redis.call('HSET', KEYS[1], 'count', count, 'next', now + delay)
        redis.call('PEXPIRE', KEYS[1], math.max(window, delay))
        return 0
        ",
    )
});

/// [`CacheBackend::refund`]: one count back, never below zero.
static REFUND: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
        local count = tonumber(redis.call('HGET', KEYS[1], 'count') or '0')
        if count > 0 then redis.call('HSET', KEYS[1], 'count', count - 1) end
        return 0
        ",
    )
});

#[async_trait]
impl CacheBackend for RedisCache {
    async fn get(&self, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let mut connection = self.connection.clone();
        let value = redis::cmd("GET")
            .arg(key)
            .query_async(&mut connection)
            .await?;
        Ok(value)
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> anyhow::Result<()> {
        let mut connection = self.connection.clone();
        redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("PX")
            .arg(millis(ttl))
            .query_async::<()>(&mut connection)
            .await?;
        Ok(())
    }

    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        let mut connection = self.connection.clone();
        redis::cmd("DEL")
            .arg(key)
            .query_async::<()>(&mut connection)
            .await?;
        Ok(())
    }

    async fn incr(&self, key: &str, ttl: Duration) -> anyhow::Result<i64> {
        let mut connection = self.connection.clone();
        // One MULTI: the counter is created with its expiry or not at all, and INCR keeps
        // the expiry, so no crash can leave a counter that never resets.
        let (count,): (i64,) = redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(key)
            .arg(0)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl))
            .ignore()
            .cmd("INCR")
            .arg(key)
            .query_async(&mut connection)
            .await?;
        Ok(count)
    }

    async fn incr_existing_each(&self, keys: &[String]) -> anyhow::Result<()> {
        let mut connection = self.connection.clone();
        INCR_EXISTING
            .key(keys)
            .invoke_async::<()>(&mut connection)
            .await?;
        Ok(())
    }

    async fn generation(
        &self,
        key: &str,
        ttl: Duration,
        beside: Option<&str>,
    ) -> anyhow::Result<(i64, Option<Vec<u8>>)> {
        let mut connection = self.connection.clone();
        // Plain reads while the counter exists (a script costs Redis ten times a GET);
        // the script only to create it.
        let mut read = redis::cmd("MGET");
        read.arg(key);
        if let Some(beside) = beside {
            read.arg(beside);
        }
        let mut answer: Vec<Option<Vec<u8>>> = read.query_async(&mut connection).await?;
        if answer.first().is_none_or(Option::is_none) {
            let mut invocation = GENERATION.key(key);
            if let Some(beside) = beside {
                invocation.key(beside);
            }
            answer = invocation
                .arg(millis(ttl))
                .invoke_async(&mut connection)
                .await?;
        }
        let value = if answer.len() > 1 {
            answer.pop().flatten()
        } else {
            None
        };
        let generation = answer
            .pop()
            .flatten()
            .and_then(|text| std::str::from_utf8(&text).ok()?.parse::<i64>().ok())
            .with_context(|| format!("{key} holds no generation"))?;
        Ok((generation, value))
    }

    async fn delete_each(&self, keys: &[String]) -> anyhow::Result<()> {
        let mut connection = self.connection.clone();
        redis::cmd("DEL")
            .arg(keys)
            .query_async::<()>(&mut connection)
            .await?;
        Ok(())
    }

    async fn attempt(&self, key: &str, backoff: &Backoff) -> anyhow::Result<Option<Duration>> {
        let mut connection = self.connection.clone();
        let wait: u64 = ATTEMPT
            .key(key)
            .arg(backoff.free)
            .arg(millis(backoff.window))
            .arg(millis(backoff.first_delay))
            .arg(millis(backoff.max_delay))
            .invoke_async(&mut connection)
            .await?;
        Ok((wait > 0).then(|| Duration::from_millis(wait)))
    }

    async fn refund(&self, key: &str) -> anyhow::Result<()> {
        let mut connection = self.connection.clone();
        REFUND.key(key).invoke_async::<()>(&mut connection).await?;
        Ok(())
    }

    async fn publish(&self, channel: &str, message: &str) -> anyhow::Result<()> {
        let mut connection = self.connection.clone();
        redis::cmd("PUBLISH")
            .arg(channel)
            .arg(message)
            .query_async::<()>(&mut connection)
            .await?;
        Ok(())
    }

    async fn has_listeners(&self, channel: &str) -> anyhow::Result<bool> {
        let mut connection = self.connection.clone();
        let (_, listeners): (String, i64) = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(channel)
            .query_async(&mut connection)
            .await?;
        Ok(listeners > 0)
    }

    async fn subscribe(&self, channel: &str) -> anyhow::Result<BoxStream<'static, String>> {
        // A connection of its own: a subscribed connection takes no other commands.
        let subscribed = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            pubsub.subscribe(channel).await?;
            anyhow::Ok(pubsub)
        };
        let pubsub = tokio::time::timeout(START_UP_TIMEOUT, subscribed)
            .await
            .map_err(|_| anyhow!("no answer from Redis within {START_UP_TIMEOUT:?}"))
            .and_then(|subscribed| subscribed)
            .with_context(|| format!("subscribing to {channel}"))?;
        // A connection that died silently (a dropped route, a failover) would keep the
        // stream open forever: a ping now and then ends it instead, so the caller
        // subscribes again.
        let (mut sink, messages) = pubsub.split();
        let (dead, died) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let mut dead = dead;
            loop {
                tokio::select! {
                    // The stream was dropped: nobody listens any more.
                    () = dead.closed() => return,
                    () = tokio::time::sleep(PUBSUB_PING_EVERY) => {}
                }
                let pong =
                    tokio::time::timeout(RESPONSE_TIMEOUT, sink.ping::<redis::Value>()).await;
                if !matches!(pong, Ok(Ok(_))) {
                    let _ = dead.send(());
                    return;
                }
            }
        });
        let channel = channel.to_owned();
        let messages = messages.take_until(died).filter_map(move |message| {
            let payload = match message.get_payload::<String>() {
                Ok(payload) => Some(payload),
                Err(e) => {
                    tracing::warn!(channel, error = %e, "a message that is not text was skipped");
                    None
                }
            };
            std::future::ready(payload)
        });
        Ok(messages.boxed())
    }

    async fn ping(&self) -> bool {
        let mut connection = self.connection.clone();
        let ping = redis::cmd("PING");
        let pong = ping.query_async::<String>(&mut connection);
        matches!(tokio::time::timeout(PING_TIMEOUT, pong).await, Ok(Ok(_)))
    }

    fn name(&self) -> &'static str {
        "redis"
    }
}
