//! Customers at scale, through the public API only: an admin imports N customers with
//! `importUsers` (1,000 a call, a few calls at once), waits until `promotionAudience`
//! counts them all, then creates a promotion and waits until it is SENT to all of them;
//! beside the raw cost of writing as many notification rows straight to the storage
//! (PostgreSQL: `COPY`; SQLite: `INSERT … SELECT`), measured in the same run. Herald runs
//! all in one process, here; the peak RSS of the process is reported. A benchmark, not a
//! test: it reports times and ratios (docs/benchmarks.md, "Customers at scale").
//!
//! `cargo bench -p herald --bench customers -- [--users N] [--backend embedded|real|both]
//! [--parallel K]`

#[path = "common/backends.rs"]
mod backends;
#[path = "common/raw.rs"]
mod raw;

use std::time::{Duration, Instant};

use backends::Backends;
use clap::Parser;
use futures::{StreamExt, TryStreamExt, stream};
use herald_test_support::{BackendSet, TestApp};
use serde_json::{Value, json};

#[derive(Debug, Parser)]
#[command(about = "Import, count and reach N customers through the public API")]
struct Args {
    /// Customers [default: 1,000,000 on the real backends, 200,000 embedded].
    #[arg(long)]
    users: Option<usize>,
    #[arg(long, value_enum, default_value_t = Backends::Both)]
    backend: Backends,
    /// importUsers calls in flight at once.
    #[arg(long, default_value_t = 4)]
    parallel: usize,
    /// Added by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

struct Measured {
    set: BackendSet,
    users: usize,
    imported: Duration,
    counted: Duration,
    sent: Duration,
    recipients: i64,
    raw: Duration,
    audience_read: Duration,
    peak_rss_mib: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sets = args.backend.sets();
    let mut results = Vec::new();
    for set in sets {
        let users = args.users.unwrap_or(match set {
            BackendSet::Real | BackendSet::Kafka => 1_000_000,
            BackendSet::Embedded => 200_000,
        });
        results.push(measure(set, users, args.parallel).await?);
    }
    println!(
        "\n| backends | customers | imported | …and counted | promotion SENT | raw write | promotion / raw | promotionAudience read | peak RSS |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|"
    );
    for m in &results {
        println!(
            "| {:?} | {} | {:.1} s | {:.1} s | {:.1} s ({} recipients) | {:.1} s | {:.1}× | {:.1} ms | {:.0} MiB |",
            m.set,
            m.users,
            m.imported.as_secs_f64(),
            m.counted.as_secs_f64(),
            m.sent.as_secs_f64(),
            m.recipients,
            m.raw.as_secs_f64(),
            m.sent.as_secs_f64() / m.raw.as_secs_f64(),
            m.audience_read.as_secs_f64() * 1e3,
            m.peak_rss_mib,
        );
    }
    Ok(())
}

/// The GraphQL `data` of a call as the admin; errors stop the benchmark.
async fn call(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let answer: Value = http
        .post(url)
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await?
        .json()
        .await?;
    anyhow::ensure!(answer.get("errors").is_none(), "{answer}");
    Ok(answer["data"].clone())
}

async fn measure(set: BackendSet, users: usize, parallel: usize) -> anyhow::Result<Measured> {
    let app = TestApp::spawn_with(set, |s| {
        s.rate_limit_client_per_minute = 0;
        s.rate_limit_user_per_minute = 0;
        s.connections_per_client = 0;
        // The tests' small pools would be the bottleneck; a deployment's are not.
        s.database_max_connections = herald_platform::Settings::default().database_max_connections;
    })
    .await;
    let admin = app.admin().await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()?;
    let url = format!("{}/graphql", app.gateway);
    let audience = async || -> anyhow::Result<(i64, Duration)> {
        let asked = Instant::now();
        let data = call(
            &http,
            &url,
            &admin.token,
            "{ promotionAudience }",
            json!({}),
        )
        .await?;
        let took = asked.elapsed();
        Ok((data["promotionAudience"].as_i64().unwrap_or(0), took))
    };
    let (before, _) = audience().await?;
    let run = uuid::Uuid::now_v7().simple().to_string();

    eprintln!("[{set:?}] importing {users} customers");
    let started = Instant::now();
    let chunks: Vec<(usize, usize)> = (0..users)
        .step_by(1_000)
        .map(|from| (from, (from + 1_000).min(users)))
        .collect();
    let created: Vec<i64> = stream::iter(chunks)
        .map(|(from, to)| {
            let (http, url, token, run) = (&http, &url, &admin.token, &run);
            async move {
                let rows: Vec<Value> = (from..to)
                    .map(|i| json!({ "name": format!("Customer {i}"), "email": format!("c{i}-{run}@bench.example") }))
                    .collect();
                let data = call(
                    http,
                    url,
                    token,
                    "mutation($i: ImportUsersInput!) { importUsers(input: $i) { created } }",
                    json!({ "i": { "users": rows } }),
                )
                .await?;
                anyhow::Ok(data["importUsers"]["created"].as_i64().unwrap_or(0))
            }
        })
        .buffer_unordered(parallel)
        .try_collect()
        .await?;
    let imported = started.elapsed();
    anyhow::ensure!(
        created.iter().sum::<i64>() == users as i64,
        "not all created"
    );
    eprintln!("[{set:?}] imported in {:.1} s", imported.as_secs_f64());
    let expected = before + users as i64;
    loop {
        let (counted, _) = audience().await?;
        if counted >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counted = started.elapsed();
    let mut reads = Vec::new();
    for _ in 0..20 {
        reads.push(audience().await?.1);
    }
    reads.sort();
    let audience_read = reads[reads.len() / 2];
    eprintln!("[{set:?}] counted after {:.1} s", counted.as_secs_f64());

    let started = Instant::now();
    let promotion = call(
        &http,
        &url,
        &admin.token,
        "mutation($i: PromotionInput!) { createPromotion(input: $i) { id } }",
        json!({ "i": { "title": "Spring sale", "body": "20 % off everything until Sunday" } }),
    )
    .await?;
    let id = promotion["createPromotion"]["id"].clone();
    let recipients = loop {
        let list = call(
            &http,
            &url,
            &admin.token,
            "{ promotions(first: 5) { id status recipients } }",
            json!({}),
        )
        .await?;
        let sent = list["promotions"]
            .as_array()
            .and_then(|all| all.iter().find(|p| p["id"] == id && p["status"] == "SENT"))
            .map(|p| p["recipients"].as_i64().unwrap_or(0));
        if let Some(recipients) = sent {
            break recipients;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let sent = started.elapsed();
    eprintln!("[{set:?}] promotion SENT after {:.1} s", sent.as_secs_f64());
    let peak_rss_mib = peak_rss_mib();

    let db = herald_notifications::DESCRIPTOR
        .open_database(&app.settings)
        .await?
        .expect("notifications keeps storage");
    let raw = match set {
        BackendSet::Real | BackendSet::Kafka => raw::raw_copy(&app.settings, &db, users).await?,
        BackendSet::Embedded => raw::raw_inserts(&db, users).await?,
    };
    db.close().await;
    app.cleanup().await;
    Ok(Measured {
        set,
        users,
        imported,
        counted,
        sent,
        recipients,
        raw,
        audience_read,
        peak_rss_mib,
    })
}

/// The most memory this process has held (VmHWM).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))?
                .split_whitespace()
                .next()?
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kib| kib / 1024.0)
}
