//! Traces across services (W3C Trace Context): a request's `traceparent` goes with every
//! internal HTTP call it makes and with every event it causes (the CloudEvents
//! `traceparent` extension, written when the event enters the outbox), and whoever handles
//! the call or the event continues the same trace. Every log line written meanwhile
//! carries the trace id (`span.trace_id` in JSON logs), so one `placeOrder` can be
//! followed through the gateway, orders, products, the bus and notifications.
//!
//! The context lives in a task-local for the request or the event being handled:
//! [`continue_request`] and [`continue_event`] start it (from what came in, or a new
//! trace), [`current`] reads it. With `HERALD_OTLP_ENDPOINT` set, each such hop is also
//! exported as an OpenTelemetry span ([`otlp`]).

pub mod otlp;

use std::fmt;
use std::future::Future;
use std::time::SystemTime;

use rand::Rng;
use tracing::Instrument;

/// The `traceparent` header's name.
pub const HEADER: &str = "traceparent";

/// One hop of a trace: `00-{trace id}-{parent id}-{flags}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
}

tokio::task_local! {
    static CURRENT: TraceParent;
}

impl TraceParent {
    /// A new trace (sampled), with a first span of its own.
    pub fn new_trace() -> TraceParent {
        let mut trace_id = [0u8; 16];
        let mut rng = rand::rng();
        while trace_id == [0; 16] {
            rng.fill_bytes(&mut trace_id);
        }
        TraceParent {
            trace_id,
            parent_id: new_span_id(),
            flags: 1,
        }
    }

    /// Reads a `traceparent` value; None for anything the specification says to ignore
    /// (another length or version 00 shape, upper-case hex, all-zero ids, version ff).
    pub fn parse(value: &str) -> Option<TraceParent> {
        let mut parts = value.trim().split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let parent = parts.next()?;
        let flags = parts.next()?;
        // A later version may add fields after these; version 00 has none.
        let more = parts.next();
        if version.len() != 2 || version == "ff" || (version == "00" && more.is_some()) {
            return None;
        }
        hex::<1>(version)?;
        let trace_id = hex::<16>(trace)?;
        let parent_id = hex::<8>(parent)?;
        let [flags] = hex::<1>(flags)?;
        if trace_id == [0; 16] || parent_id == [0; 8] {
            return None;
        }
        Some(TraceParent {
            trace_id,
            parent_id,
            flags,
        })
    }

    /// The same trace, from a new span (this hop's own id, to pass on).
    pub fn child(&self) -> TraceParent {
        TraceParent {
            parent_id: new_span_id(),
            ..*self
        }
    }

    /// The trace id, as 32 lower-case hex digits.
    pub fn trace_id(&self) -> String {
        to_hex(&self.trace_id)
    }

    /// A span for logs: every line written inside it carries `trace_id`.
    pub fn span(&self, name: &'static str) -> tracing::Span {
        tracing::info_span!("trace", trace_id = %self.trace_id(), hop = name)
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            to_hex(&self.trace_id),
            to_hex(&self.parent_id),
            self.flags
        )
    }
}

/// The trace of the request or event being handled, if any.
pub fn current() -> Option<TraceParent> {
    CURRENT.try_with(|current| *current).ok()
}

/// The `traceparent` to send on from here: the current trace, with this hop's span as
/// the parent of whatever the receiver does.
pub fn outgoing() -> Option<String> {
    current().map(|current| current.to_string())
}

/// Runs `service`'s answer to a request on `route` in the trace its `traceparent` header
/// names (a new one when it names none), as a new span of it, with its logs carrying the
/// trace id.
pub fn continue_request<F: Future>(
    incoming: Option<&str>,
    service: &'static str,
    route: &str,
    work: F,
) -> impl Future<Output = F::Output> {
    continue_from(incoming, service, route, false, work)
}

/// Runs the handling of an event of `event_type` in the trace it carries (a new one when
/// it carries none), like [`continue_request`].
pub fn continue_event<F: Future>(
    carried: Option<&str>,
    event_type: &str,
    work: F,
) -> impl Future<Output = F::Output> {
    continue_from(carried, "event", event_type, true, work)
}

fn continue_from<F: Future>(
    incoming: Option<&str>,
    hop: &'static str,
    detail: &str,
    consumer: bool,
    work: F,
) -> impl Future<Output = F::Output> {
    let parent = incoming.and_then(TraceParent::parse);
    let here = parent.map_or_else(TraceParent::new_trace, |parent| parent.child());
    let exported = otlp::enabled().then(|| format!("{hop} {detail}"));
    let traced = work.instrument(here.span(hop));
    CURRENT.scope(here, async move {
        let start = SystemTime::now();
        let output = traced.await;
        if let Some(name) = exported {
            otlp::record(otlp::Span {
                here,
                parent: parent.map(|parent| parent.parent_id),
                name,
                consumer,
                start,
                end: SystemTime::now(),
            });
        }
        output
    })
}

fn new_span_id() -> [u8; 8] {
    let mut id = [0u8; 8];
    let mut rng = rand::rng();
    while id == [0; 8] {
        rng.fill_bytes(&mut id);
    }
    id
}

fn hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let digits = text.as_bytes();
    if digits.len() != N * 2 {
        return None;
    }
    let value = |d: u8| match d {
        b'0'..=b'9' => Some(d - b'0'),
        b'a'..=b'f' => Some(d - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, pair) in digits.chunks(2).enumerate() {
        out[i] = (value(pair[0])? << 4) | value(pair[1])?;
    }
    Some(out)
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_specifications_example_reads_and_writes_back() {
        let parent = TraceParent::parse(EXAMPLE).unwrap();
        assert_eq!(parent.to_string(), EXAMPLE);
        assert_eq!(parent.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        let child = parent.child();
        assert_eq!(child.trace_id(), parent.trace_id());
        assert_ne!(child.to_string(), EXAMPLE);
        // A later version with more fields is read as 00.
        assert!(TraceParent::parse(&format!("cc{}-what-comes-next", &EXAMPLE[2..])).is_some());
    }

    #[test]
    fn what_the_specification_says_to_ignore_is_ignored() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn work_continues_the_trace_it_was_given_or_starts_one() {
        assert_eq!(current(), None);
        let inside = continue_request(Some(EXAMPLE), "test", "/", async { current() }).await;
        let inside = inside.unwrap();
        assert_eq!(inside.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(inside.to_string(), EXAMPLE);
        let fresh = continue_event(Some("garbage"), "test.event", async { outgoing() }).await;
        let fresh = TraceParent::parse(&fresh.unwrap()).unwrap();
        assert_ne!(fresh.trace_id(), inside.trace_id());
        assert_eq!(current(), None);
    }
}
