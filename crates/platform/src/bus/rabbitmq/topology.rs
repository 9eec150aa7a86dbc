//! Exchanges and queues: the topic exchange, each service queue with its bindings, and the
//! delay queues of its retry levels.
//!
//! A message whose `n`-th attempt failed waits in `{prefix}.{queue}.retry.{n}`. That queue's
//! TTL (`x-message-ttl`) is level `n`'s longest delay, and it dead-letters expired messages
//! through the default exchange back into `{prefix}.{queue}`. RabbitMQ expires messages only
//! at the head of a queue; since every message of one level waits about as long, a long
//! delay never holds back a shorter one of another level.

use anyhow::Context;
use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Connection, ExchangeKind};

use super::{RabbitBus, close_channel};
use crate::bus::{ConsumerOptions, QueueSpec};

/// Retry levels deleted with a queue beyond those this instance declared, for levels that
/// consumers of other processes (or earlier runs) declared. Deleting a missing queue is a
/// no-op on RabbitMQ.
const SWEPT_RETRY_LEVELS: u32 = 20;

impl RabbitBus {
    /// Deletes the exchange and `queues` with their retry queues and messages (tests, operators).
    pub(super) async fn delete_queues(&self, queues: &[QueueSpec]) -> anyhow::Result<()> {
        let channel = self.publisher.scratch_channel().await?;
        let deleted = async {
            for spec in queues {
                let known_levels = {
                    let levels = self.retry_levels.lock().unwrap_or_else(|p| p.into_inner());
                    levels.get(&spec.name).copied().unwrap_or(0)
                };
                let mut names = vec![
                    self.names.queue(&spec.name),
                    self.names.legacy_retry_queue(&spec.name),
                ];
                names.extend(
                    (1..=known_levels.max(SWEPT_RETRY_LEVELS))
                        .map(|level| self.names.retry_level(&spec.name, level)),
                );
                for queue in names {
                    channel
                        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                        .await
                        .with_context(|| format!("deleting queue {queue}"))?;
                }
            }
            let exchange = self.names.exchange();
            channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await
                .with_context(|| format!("deleting exchange {exchange}"))
        }
        .await;
        close_channel(&channel).await;
        let mut declared = self.declared.lock().unwrap_or_else(|p| p.into_inner());
        let mut levels = self.retry_levels.lock().unwrap_or_else(|p| p.into_inner());
        for spec in queues {
            declared.remove(&spec.name);
            levels.remove(&spec.name);
        }
        deleted
    }

    pub(super) async fn declare_on(
        &self,
        channel: &Channel,
        queues: &[QueueSpec],
    ) -> anyhow::Result<()> {
        let exchange = self.names.exchange();
        channel
            .exchange_declare(
                exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .with_context(|| format!("declaring exchange {exchange}"))?;
        for spec in queues {
            let queue = self.names.queue(&spec.name);
            channel
                .queue_declare(queue.as_str().into(), durable(), FieldTable::default())
                .await
                .with_context(|| format!("declaring queue {queue}"))?;
            for pattern in &spec.bindings {
                channel
                    .queue_bind(
                        queue.as_str().into(),
                        exchange.as_str().into(),
                        pattern.as_str().into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .with_context(|| format!("binding queue {queue} to {pattern}"))?;
            }
        }
        Ok(())
    }

    /// Declares the delay queue of each retry level `queue`'s consumer uses, each on a channel
    /// of its own: a level declared earlier with another TTL (the retry settings changed)
    /// makes RabbitMQ refuse the declaration and close the channel. That level then keeps its
    /// old TTL, which still bounds the delay (a message waits the shorter of the queue's TTL
    /// and its own expiration), so the consumer goes on with a warning.
    pub(super) async fn declare_retry_levels(
        &self,
        connection: &Connection,
        queue: &str,
        options: &ConsumerOptions,
    ) -> anyhow::Result<()> {
        let target = self.names.queue(queue);
        let levels = options.retry_levels();
        for level in 1..=levels {
            let name = self.names.retry_level(queue, level);
            let ttl = options.max_delay_for_attempt(level);
            let mut arguments = FieldTable::default();
            arguments.insert(
                "x-message-ttl".into(),
                AMQPValue::LongLongInt(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX)),
            );
            arguments.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString("".into()),
            );
            arguments.insert(
                "x-dead-letter-routing-key".into(),
                AMQPValue::LongString(target.as_str().into()),
            );
            let channel = connection
                .create_channel()
                .await
                .context("opening a channel")?;
            match channel
                .queue_declare(name.as_str().into(), durable(), arguments)
                .await
            {
                Ok(_) => close_channel(&channel).await,
                Err(e) => tracing::warn!(
                    queue = name,
                    ttl = ?ttl,
                    error = %e,
                    "the retry level exists with other arguments; it keeps them (delete the queue to apply the new delay)"
                ),
            }
        }
        let mut declared = self.retry_levels.lock().unwrap_or_else(|p| p.into_inner());
        let known = declared.entry(queue.to_owned()).or_default();
        *known = (*known).max(levels);
        Ok(())
    }
}

fn durable() -> QueueDeclareOptions {
    QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    }
}
