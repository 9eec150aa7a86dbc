//! Handling the events that arrive together in one go.
//!
//! A consumer runs up to its concurrency of deliveries at once, each waiting for its
//! handler. For the event types a handler takes in batches ([`EventHandler::batches`]),
//! [`Coalescing`] hands each waiting delivery's event to one task, which takes whatever
//! is waiting (up to the consumer's concurrency) and calls
//! [`EventHandler::handle_batch`] with the lot; each delivery then gets its own event's
//! outcome and is settled alone (acknowledged, retried or dead-lettered) as before.
//!
//! A batch is all or nothing: when [`EventHandler::handle_batch`] fails, its events are
//! handled again one at a time with [`EventHandler::handle`], so one bad event cannot hold
//! the others back.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use async_trait::async_trait;
use futures::FutureExt;
use futures::future::join_all;
use herald_events::Envelope;
use tokio::sync::{mpsc, oneshot};

use super::{EventHandler, HandlerError};

/// The outcome of each event of a batch, in the batch's order.
pub type BatchOutcomes = Vec<Result<(), HandlerError>>;

struct Waiting {
    event: Envelope,
    outcome: oneshot::Sender<Result<(), HandlerError>>,
}

/// Wraps a consumer's handler so that the events it batches are handled together.
pub(crate) struct Coalescing {
    handler: Arc<dyn EventHandler>,
    waiting: mpsc::UnboundedSender<Waiting>,
}

impl Coalescing {
    /// What a consumer calls instead of `handler`: the events `handler` batches go to a task
    /// that handles them `limit` at most a batch, and that ends once the wrapper is dropped.
    pub(crate) fn wrap(handler: Arc<dyn EventHandler>, limit: usize) -> Arc<dyn EventHandler> {
        let (waiting, arrivals) = mpsc::unbounded_channel();
        tokio::spawn(handle_batches(handler.clone(), arrivals, limit.max(1)));
        Arc::new(Coalescing { handler, waiting })
    }
}

#[async_trait]
impl EventHandler for Coalescing {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        if !self.handler.batches(event) {
            return self.handler.handle(event).await;
        }
        let (outcome, answer) = oneshot::channel();
        let waiting = Waiting {
            event: event.clone(),
            outcome,
        };
        if self.waiting.send(waiting).is_err() {
            return Err(HandlerError::Retry(anyhow::anyhow!(
                "the batch handler has stopped"
            )));
        }
        answer.await.unwrap_or_else(|_| {
            Err(HandlerError::Retry(anyhow::anyhow!(
                "the batch handler dropped the event"
            )))
        })
    }

    fn batches(&self, event: &Envelope) -> bool {
        self.handler.batches(event)
    }

    async fn handle_batch(&self, events: &[Envelope]) -> Result<BatchOutcomes, HandlerError> {
        self.handler.handle_batch(events).await
    }
}

async fn handle_batches(
    handler: Arc<dyn EventHandler>,
    mut arrivals: mpsc::UnboundedReceiver<Waiting>,
    limit: usize,
) {
    let mut waiting: Vec<Waiting> = Vec::with_capacity(limit);
    loop {
        if waiting.is_empty() {
            if arrivals.recv_many(&mut waiting, limit).await == 0 {
                return;
            }
        } else {
            while waiting.len() < limit {
                match arrivals.try_recv() {
                    Ok(arrived) => waiting.push(arrived),
                    Err(_) => break,
                }
            }
        }
        let size = batch_size(waiting.len(), limit);
        let (events, answers): (Vec<Envelope>, Vec<_>) =
            waiting.drain(..size).map(|w| (w.event, w.outcome)).unzip();
        let outcomes = handle_together(handler.as_ref(), &events).await;
        for (answer, outcome) in answers.into_iter().zip(outcomes) {
            // A delivery that stopped waiting (its consumer is gone) is delivered again.
            let _ = answer.send(outcome);
        }
    }
}

/// `limit`, or the largest power of two up to what waits: batches come in a few sizes, so
/// that the statements built for them are prepared once per database connection instead
/// of once per batch. The rest joins the next batch.
fn batch_size(waiting: usize, limit: usize) -> usize {
    if waiting >= limit {
        limit
    } else {
        1 << waiting.max(1).ilog2()
    }
}

/// Each event's outcome: from one batch, or one at a time once the batch failed.
async fn handle_together(handler: &dyn EventHandler, events: &[Envelope]) -> BatchOutcomes {
    if let [event] = events {
        return vec![handle_alone(handler, event).await];
    }
    let together = AssertUnwindSafe(handler.handle_batch(events))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(HandlerError::Retry(anyhow::anyhow!("handler panicked"))));
    match together {
        Ok(outcomes) if outcomes.len() == events.len() => return outcomes,
        Ok(outcomes) => tracing::error!(
            events = events.len(),
            outcomes = outcomes.len(),
            "a batch handler answered for the wrong number of events; handling them one at a time"
        ),
        Err(e) => tracing::debug!(
            events = events.len(),
            error = format!("{e:#}"),
            "a batch failed; handling its events one at a time"
        ),
    }
    metrics::counter!("bus_batches_split_total").increment(1);
    join_all(events.iter().map(|event| handle_alone(handler, event))).await
}

async fn handle_alone(handler: &dyn EventHandler, event: &Envelope) -> Result<(), HandlerError> {
    let handled = crate::trace::continue_event(
        event.traceparent.as_deref(),
        &event.event_type,
        handler.handle(event),
    );
    AssertUnwindSafe(handled)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(HandlerError::Retry(anyhow::anyhow!("handler panicked"))))
}

#[cfg(test)]
mod tests {
    use super::batch_size;

    #[test]
    fn batches_are_a_power_of_two_or_the_limit() {
        let sizes: Vec<usize> = [1, 2, 3, 7, 8, 200, 255, 256, 300]
            .into_iter()
            .map(|waiting| batch_size(waiting, 256))
            .collect();
        assert_eq!(sizes, [1, 2, 2, 4, 8, 128, 128, 256, 256]);
        assert_eq!(batch_size(40, 32), 32);
    }
}
