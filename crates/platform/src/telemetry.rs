//! Logs and metrics for the whole process.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the log subscriber once; later calls are ignored (tests spawn many apps).
pub fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,lapin=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// Logs only when `TEST_LOG` is set, so test output stays quiet.
pub fn init_test_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        init_logging(LogFormat::Pretty);
    }
}

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    PROMETHEUS.get_or_init(|| {
        let latency_buckets = [
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &latency_buckets)
            .expect("static bucket list is not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (a test harness); ours still renders
        // what it records through the handle, so the error is only logged.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed");
        }
        handle
    })
}

/// What a metric is, for its `# HELP` line (Prometheus' lint wants one on every family).
#[derive(Debug, Clone, Copy)]
pub struct MetricDoc {
    pub name: &'static str,
    pub kind: MetricKind,
    pub help: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Counter,
    Gauge,
    Histogram,
}

impl MetricDoc {
    pub const fn counter(name: &'static str, help: &'static str) -> MetricDoc {
        MetricDoc {
            name,
            kind: MetricKind::Counter,
            help,
        }
    }
    pub const fn gauge(name: &'static str, help: &'static str) -> MetricDoc {
        MetricDoc {
            name,
            kind: MetricKind::Gauge,
            help,
        }
    }
    pub const fn histogram(name: &'static str, help: &'static str) -> MetricDoc {
        MetricDoc {
            name,
            kind: MetricKind::Histogram,
            help,
        }
    }
}

/// Gives the process's recorder the descriptions of `docs` (install it first: see
/// [`prometheus`]).
pub fn describe(docs: &[MetricDoc]) {
    for doc in docs {
        match doc.kind {
            MetricKind::Counter => metrics::describe_counter!(doc.name, doc.help),
            MetricKind::Gauge => metrics::describe_gauge!(doc.name, doc.help),
            MetricKind::Histogram => metrics::describe_histogram!(doc.name, doc.help),
        }
    }
}

/// The metrics of the plumbing every service shares.
pub const METRICS: &[MetricDoc] = &[
    MetricDoc::counter(
        "http_connections_refused_total",
        "TCP connections refused because their address held too many open (429).",
    ),
    MetricDoc::counter(
        "http_requests_total",
        "HTTP requests answered, by service, method, route template and status.",
    ),
    MetricDoc::histogram(
        "http_request_duration_seconds",
        "Time to answer an HTTP request, by service, method, route template and status.",
    ),
    MetricDoc::counter(
        "bus_published_total",
        "Events published to the bus, by event type.",
    ),
    MetricDoc::counter(
        "bus_consumed_total",
        "Deliveries handled by a consumer, by queue and outcome (ok, retry, dead_letter, …).",
    ),
    MetricDoc::counter(
        "bus_retried_total",
        "Deliveries whose handler failed and that will be tried again, by queue.",
    ),
    MetricDoc::counter(
        "bus_dead_lettered_total",
        "Messages given up on after their last attempt and kept as dead letters, by queue.",
    ),
    MetricDoc::counter(
        "bus_batches_split_total",
        "Batches of events that failed together and were handled one at a time instead.",
    ),
    MetricDoc::histogram(
        "bus_handler_duration_seconds",
        "Time a handler took with one delivery, by queue.",
    ),
    MetricDoc::histogram(
        "bus_consume_lag_seconds",
        "Time from an event's publication to its handling, by queue.",
    ),
    MetricDoc::gauge(
        "bus_queue_depth",
        "Messages waiting in a queue, sampled every few seconds.",
    ),
    MetricDoc::gauge(
        "bus_oldest_message_age_seconds",
        "Age of the oldest message waiting in a queue, sampled every few seconds.",
    ),
    MetricDoc::counter(
        "outbox_relayed_total",
        "Events the outbox relay published after their transaction committed.",
    ),
    MetricDoc::counter(
        "trace_spans_exported_total",
        "Spans sent to the OTLP collector (HERALD_OTLP_ENDPOINT).",
    ),
    MetricDoc::counter(
        "trace_spans_dropped_total",
        "Spans not sent: the queue to the collector was full, or the collector refused them or could not be reached.",
    ),
    MetricDoc::gauge(
        "outbox_oldest_event_age_seconds",
        "Age of the oldest committed event a service's outbox has not published yet, by service; sampled every few seconds.",
    ),
    MetricDoc::counter(
        "cache_requests_total",
        "Cache reads, by outcome (hit, miss).",
    ),
    MetricDoc::histogram(
        "email_send_duration_seconds",
        "Time to hand one email to its transport, by transport and outcome.",
    ),
    MetricDoc::counter(
        "scheduler_job_runs_total",
        "Scheduled job runs finished by the service that owns the job, by job and outcome.",
    ),
    MetricDoc::histogram(
        "scheduler_job_duration_seconds",
        "Time a scheduled job's run took, by job.",
    ),
];
