//! What becomes of one delivered message, alike on both backends: the handler runs, then the
//! message is acknowledged, retried later, or written to the dead-letter store.

use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::FutureExt;
use herald_events::Envelope;

use super::{ConsumerOptions, EventHandler, HandlerError};

/// A message that will not be handled, as the dead-letter store receives it.
#[derive(Debug, Clone, Copy)]
pub enum DeadMessage<'a> {
    Event(&'a Envelope),
    /// A body that is not an event envelope, as it arrived.
    Unreadable(&'a [u8]),
}

/// Where a consumer puts the messages it gives up on (see [`crate::deadletters`]). The
/// message is acknowledged only after this returned `Ok`, so a failing store loses nothing.
#[async_trait]
pub trait DeadLetterSink: Send + Sync + 'static {
    async fn dead_letter(
        &self,
        queue: &str,
        message: DeadMessage<'_>,
        error: &str,
        attempts: u32,
    ) -> anyhow::Result<()>;
}

/// How a delivery handled too early ([`HandlerError::NotYet`]) waits before it is handled
/// again, and for how long in all before it counts as a failed attempt: the event it
/// waits for usually follows within milliseconds, and meanwhile the delivery holds a slot
/// of its consumer (on the embedded bus, its whole claim).
const NOT_YET_PAUSE: Duration = Duration::from_millis(250);
const NOT_YET_PATIENCE: Duration = Duration::from_secs(3);

#[derive(Debug)]
pub(crate) enum Verdict {
    Handled,
    /// Deliver again after this delay.
    Retry(Duration),
    /// Give up: the last attempt failed, the handler rejected it, or it is no event.
    DeadLetter(String),
}

/// A delivery after its handler ran.
pub(crate) struct Judged {
    pub event: Option<Envelope>,
    pub verdict: Verdict,
}

/// Runs `handler` on the `attempt`-th delivery (1 for the first) of `body` and decides what
/// becomes of it; counts the outcome (`bus_consumed_total`: ok, retry, reject, dead_lettered).
pub(crate) async fn judge(
    queue: &str,
    handler: &dyn EventHandler,
    body: &[u8],
    attempt: u32,
    options: &ConsumerOptions,
) -> Judged {
    let event = match serde_json::from_slice::<Envelope>(body) {
        Ok(event) => event,
        Err(e) => {
            tracing::error!(queue, error = %e, "a message is not an event envelope; dead-lettering it");
            count(queue, "reject");
            return Judged {
                event: None,
                verdict: Verdict::DeadLetter(format!("not an event envelope: {e}")),
            };
        }
    };
    let started = Instant::now();
    let result = loop {
        // A panicking handler must not stop the consumer: the message is retried.
        let carried = event.traceparent.as_deref();
        let handled = crate::trace::continue_event(carried, &event.event_type, async {
            let result = handler.handle(&event).await;
            tracing::debug!(queue, event_id = %event.id, event_type = event.event_type,
                ok = result.is_ok(), "handled");
            result
        });
        let result = AssertUnwindSafe(handled)
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(HandlerError::Retry(anyhow::anyhow!("handler panicked"))));
        match result {
            Err(HandlerError::NotYet(e))
                if started.elapsed() + NOT_YET_PAUSE < NOT_YET_PATIENCE =>
            {
                tracing::debug!(queue, event_id = %event.id, event_type = event.event_type,
                    error = format!("{e:#}"), "handled too early; again shortly");
                tokio::time::sleep(NOT_YET_PAUSE).await;
            }
            Err(HandlerError::NotYet(e)) => break Err(HandlerError::Retry(e)),
            result => break result,
        }
    };
    metrics::histogram!("bus_handler_duration_seconds", "queue" => queue.to_owned())
        .record(started.elapsed().as_secs_f64());
    let verdict = match result {
        Ok(()) => {
            count(queue, "ok");
            Verdict::Handled
        }
        Err(HandlerError::Retry(e)) if options.retries_after(attempt) => {
            let delay = options.jittered_delay(attempt);
            tracing::warn!(queue, event_id = %event.id, event_type = event.event_type, attempt,
                retry_in = ?delay, error = format!("{e:#}"), "handler failed; will retry");
            count(queue, "retry");
            metrics::counter!("bus_retried_total", "queue" => queue.to_owned()).increment(1);
            Verdict::Retry(delay)
        }
        Err(HandlerError::Retry(e)) => {
            tracing::error!(queue, event_id = %event.id, event_type = event.event_type, attempt,
                error = format!("{e:#}"), "handler failed on its last attempt; dead-lettering");
            count(queue, "dead_lettered");
            Verdict::DeadLetter(format!("{e:#}"))
        }
        Err(HandlerError::Reject(e)) => {
            tracing::error!(queue, event_id = %event.id, event_type = event.event_type,
                error = format!("{e:#}"), "handler rejected the message; dead-lettering");
            count(queue, "reject");
            Verdict::DeadLetter(format!("{e:#}"))
        }
        Err(HandlerError::NotYet(_)) => unreachable!("turned into a retry above"),
    };
    Judged {
        event: Some(event),
        verdict,
    }
}

fn count(queue: &str, outcome: &'static str) {
    metrics::counter!("bus_consumed_total", "queue" => queue.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// Writes a message to the dead-letter store; false (logged) when that failed, and the
/// message must then stay on the bus.
pub(crate) async fn dead_letter(
    sink: &dyn DeadLetterSink,
    queue: &str,
    judged: &Judged,
    body: &[u8],
    error: &str,
    attempts: u32,
) -> bool {
    let message = match &judged.event {
        Some(event) => DeadMessage::Event(event),
        None => DeadMessage::Unreadable(body),
    };
    match sink.dead_letter(queue, message, error, attempts).await {
        Ok(()) => {
            metrics::counter!("bus_dead_lettered_total", "queue" => queue.to_owned()).increment(1);
            true
        }
        Err(e) => {
            tracing::warn!(
                queue,
                error = format!("{e:#}"),
                "storing a dead letter failed; the message stays on the bus"
            );
            false
        }
    }
}

/// How long a message whose dead letter could not be stored waits before it is tried again.
pub(crate) fn store_retry_delay(options: &ConsumerOptions) -> Duration {
    options
        .retry_delay
        .clamp(Duration::from_millis(10), Duration::from_secs(5))
}

/// How often a consumer samples its queue's depth and oldest-message age.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// Samples `queue` every [`SAMPLE_EVERY`], forever: its depth, and as the age of its oldest
/// message the lag of the message delivered last while messages wait (0 when none do). A
/// broker does not tell the age of a queue's oldest message; a consumer that keeps up shows
/// its real lag, one that fell behind shows at least how far.
pub(crate) async fn sample_forever<F: Future<Output = anyhow::Result<u64>>>(
    queue: &str,
    depth: impl Fn() -> F,
    last_lag: impl Fn() -> Duration,
) {
    loop {
        match depth().await {
            Ok(depth) => {
                let age = if depth > 0 {
                    last_lag()
                } else {
                    Duration::ZERO
                };
                record_sample(queue, depth, age);
            }
            Err(e) => {
                tracing::debug!(queue, error = format!("{e:#}"), "sampling the queue failed")
            }
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}

pub(crate) fn record_sample(queue: &str, depth: u64, oldest_age: Duration) {
    metrics::gauge!("bus_queue_depth", "queue" => queue.to_owned()).set(depth as f64);
    metrics::gauge!("bus_oldest_message_age_seconds", "queue" => queue.to_owned())
        .set(oldest_age.as_secs_f64());
}

pub(crate) fn record_lag(queue: &str, lag: Duration) {
    metrics::histogram!("bus_consume_lag_seconds", "queue" => queue.to_owned())
        .record(lag.as_secs_f64());
}
