//! OpenTelemetry export: each hop of a trace this process handled (a request answered, an
//! event handled) sent as a span over OTLP/HTTP with JSON encoding (`POST
//! {endpoint}/v1/traces`), in batches, when `HERALD_OTLP_ENDPOINT` is set. Nothing is
//! recorded otherwise. A collector that is down loses spans, never requests: spans wait in
//! a bounded queue and are dropped (counted) when it is full.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::TraceParent;

/// Spans waiting to be sent, at most.
const QUEUE: usize = 8_192;
/// Spans in one request to the collector, at most.
const BATCH: usize = 512;
/// How long a span waits for others to go with it.
const LINGER: Duration = Duration::from_secs(1);

static SPANS: OnceLock<mpsc::Sender<Span>> = OnceLock::new();

/// One hop, finished.
#[derive(Debug, Clone)]
pub(super) struct Span {
    pub here: TraceParent,
    pub parent: Option<[u8; 8]>,
    pub name: String,
    /// A request answered (server) or an event handled (consumer).
    pub consumer: bool,
    pub start: SystemTime,
    pub end: SystemTime,
}

/// Starts sending this process's spans to the collector at `endpoint` (its base address,
/// e.g. `http://127.0.0.1:4318`) as `service`. Once per process; later calls are ignored.
/// Call from within the runtime.
pub fn export_to(endpoint: &str, service: &str) {
    if SPANS.get().is_some() {
        return;
    }
    let (sender, receiver) = mpsc::channel(QUEUE);
    if SPANS.set(sender).is_err() {
        return;
    }
    let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
    tokio::spawn(send(url, service.to_owned(), receiver));
}

/// Whether spans are exported (so worth recording).
pub(super) fn enabled() -> bool {
    SPANS.get().is_some()
}

pub(super) fn record(span: Span) {
    if let Some(spans) = SPANS.get()
        && spans.try_send(span).is_err()
    {
        metrics::counter!("trace_spans_dropped_total").increment(1);
    }
}

async fn send(url: String, service: String, mut spans: mpsc::Receiver<Span>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = spans.recv().await {
        batch.push(first);
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, spans.recv()).await {
                Ok(Some(span)) => batch.push(span),
                Ok(None) | Err(_) => break,
            }
        }
        let body = request(&service, &batch);
        let sent = http.post(&url).json(&body).send().await;
        match sent {
            Ok(response) if response.status().is_success() => {
                metrics::counter!("trace_spans_exported_total").increment(batch.len() as u64);
            }
            Ok(response) => {
                tracing::warn!(
                    status = response.status().as_u16(),
                    spans = batch.len(),
                    "the OTLP collector refused spans"
                );
                metrics::counter!("trace_spans_dropped_total").increment(batch.len() as u64);
            }
            Err(e) => {
                tracing::warn!(error = %e, spans = batch.len(), "the OTLP collector could not be reached");
                metrics::counter!("trace_spans_dropped_total").increment(batch.len() as u64);
            }
        }
        batch.clear();
    }
}

/// An `ExportTraceServiceRequest` in OTLP's JSON encoding (ids in hex, times as strings
/// of nanoseconds since the epoch).
fn request(service: &str, spans: &[Span]) -> Value {
    let spans: Vec<Value> = spans
        .iter()
        .map(|span| {
            let mut encoded = json!({
                "traceId": span.here.trace_id(),
                "spanId": hex(&span.here.parent_id),
                "name": span.name,
                // SPAN_KIND_SERVER, SPAN_KIND_CONSUMER.
                "kind": if span.consumer { 5 } else { 2 },
                "startTimeUnixNano": nanos(span.start),
                "endTimeUnixNano": nanos(span.end),
            });
            if let Some(parent) = &span.parent {
                encoded["parentSpanId"] = Value::String(hex(parent));
            }
            encoded
        })
        .collect();
    json!({
        "resourceSpans": [{
            "resource": { "attributes": [
                { "key": "service.name", "value": { "stringValue": service } }
            ] },
            "scopeSpans": [{
                "scope": { "name": "herald", "version": env!("CARGO_PKG_VERSION") },
                "spans": spans,
            }],
        }],
    })
}

fn nanos(time: SystemTime) -> String {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
        .to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_encoded_as_otlp_json() {
        let parent =
            TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
        let here = parent.child();
        let start = UNIX_EPOCH + Duration::from_millis(1_500);
        let span = Span {
            here,
            parent: Some(parent.parent_id),
            name: "orders POST /orders".to_owned(),
            consumer: false,
            start,
            end: start + Duration::from_millis(3),
        };
        let body = request("herald-orders", &[span]);
        let resource = &body["resourceSpans"][0];
        assert_eq!(
            resource["resource"]["attributes"][0]["value"]["stringValue"],
            "herald-orders"
        );
        let encoded = &resource["scopeSpans"][0]["spans"][0];
        assert_eq!(encoded["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(encoded["parentSpanId"], "00f067aa0ba902b7");
        assert_eq!(encoded["spanId"].as_str().unwrap().len(), 16);
        assert_eq!(encoded["kind"], 2);
        assert_eq!(encoded["startTimeUnixNano"], "1500000000");
        assert_eq!(encoded["endTimeUnixNano"], "1503000000");
    }
}
