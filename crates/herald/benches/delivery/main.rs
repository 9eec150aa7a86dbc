//! End-to-end throughput of Herald's delivery path, order event → stored notification
//! (+ email to a sink), on the embedded and the real backends, beside the raw limits of
//! those backends measured in the same run. A benchmark, not a test: it asserts nothing
//! about speed and reports ratios instead (docs/benchmarks.md).
//!
//! `cargo bench -p herald --bench delivery -- [--events N] [--backend embedded|real|kafka|both|all]
//! [--users N] [--only raw|in-app|email]… [--update-doc]`

#[path = "../common/backends.rs"]
mod backends;
mod end_to_end;
mod raw;
mod report;
mod workload;

use std::path::Path;

use backends::Backends;
use clap::{Parser, ValueEnum};
use herald_platform::Settings;
use herald_test_support::{BackendSet, real_backends};

use crate::report::{Report, backend_name, update_doc};
use crate::workload::Workload;

#[derive(Debug, Parser)]
#[command(about = "Herald's delivery throughput beside the raw limits of its backends")]
struct Args {
    /// Order events (and rows, and raw messages) per measurement.
    #[arg(long, default_value_t = 20_000)]
    events: usize,
    /// The backend sets to measure.
    #[arg(long, value_enum, default_value_t = Backends::Both)]
    backend: Backends,
    /// Recipients the orders are spread over.
    #[arg(long, default_value_t = 1_000)]
    users: usize,
    /// Measure only these parts (repeatable); all of them when absent.
    #[arg(long, value_enum)]
    only: Vec<Part>,
    /// Replace the results section of docs/benchmarks.md with this run's.
    #[arg(long)]
    update_doc: bool,
    /// Added by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The parts of one backend set's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    /// The storage's and the bus's own limits.
    Raw,
    /// Order events to stored in-app notifications.
    InApp,
    /// Order events to emails in the SMTP sink.
    Email,
}

impl Args {
    fn measures(&self, part: Part) -> bool {
        self.only.is_empty() || self.only.contains(&part)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.events > 0 && args.users > 0,
        "--events and --users must be positive"
    );
    let mut report = Report::default();
    for set in args.backend.sets() {
        let missing = match set {
            BackendSet::Embedded => None,
            BackendSet::Real => real_backends()
                .is_none()
                .then(|| "PostgreSQL, RabbitMQ or Redis was not reachable".to_owned()),
            BackendSet::Kafka => real_backends()
                .is_none()
                .then(|| "PostgreSQL or Redis was not reachable".to_owned())
                .or_else(herald_platform::testing::kafka_missing),
        };
        if let Some(missing) = missing {
            anyhow::ensure!(
                matches!(args.backend, Backends::Both | Backends::All),
                "{missing}"
            );
            report
                .notes
                .push(format!("{}: not measured, {missing}", backend_name(set)));
            continue;
        }
        measure(set, &args, &mut report).await?;
    }
    println!("{}", report.table());
    if args.update_doc {
        let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks.md");
        update_doc(&doc, &report.section(&command(&args)))?;
        eprintln!("updated {}", doc.display());
    }
    Ok(())
}

/// The raw limits of `set`, then the two end-to-end runs (those asked for).
async fn measure(set: BackendSet, args: &Args, report: &mut Report) -> anyhow::Result<()> {
    let workload = Workload::new(args.users, args.events);
    if args.measures(Part::Raw) {
        report
            .measurements
            .extend(raw::limits(set, &workload.orders()).await?);
    }
    if args.measures(Part::InApp) {
        eprintln!("[{set:?}] end to end, in-app");
        report
            .measurements
            .push(end_to_end::in_app(set, &workload).await?);
    }
    if args.measures(Part::Email) {
        eprintln!("[{set:?}] end to end, email");
        match end_to_end::email(set, &workload).await? {
            Some(emailed) => report.measurements.push(emailed),
            None => report.notes.push(format!(
                "{}: no email measured, this build sent none (not even the welcomes)",
                backend_name(set)
            )),
        }
    }
    Ok(())
}

/// Pools as deployed: isolation shrinks them for tests running side by side, and a benchmark
/// runs alone.
fn deployed_pools(settings: &mut Settings) {
    settings.database_max_connections = Settings::default().database_max_connections;
}

/// The command that reproduces this run.
fn command(args: &Args) -> String {
    let mut command = format!(
        "cargo bench -p herald --bench delivery -- --events {} --users {} --backend {}",
        args.events,
        args.users,
        flag_value(&args.backend)
    );
    for part in &args.only {
        command.push_str(&format!(" --only {}", flag_value(part)));
    }
    command
}

/// How `value` is spelled on the command line.
fn flag_value(value: &impl ValueEnum) -> String {
    value
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}
