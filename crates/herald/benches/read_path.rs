//! The read path, as a client feels it: Herald's inbox queries through the gateway beside
//! their raw baselines, measured in one run on this machine. A benchmark, not a test: it
//! prints rates, ratios, latencies, the CPU each call costs (this process: Herald and the
//! load generator; and PostgreSQL's processes) and the process's memory
//! (docs/benchmarks.md).
//!
//! Herald runs all in one process (`herald serve`'s wiring) with a user holding 61
//! notifications. Baselines:
//! - the inbox's two statements straight to PostgreSQL (real backends only): by pgbench
//!   (prepared, 8 clients, one transaction per page; the goal's baseline), and by an sqlx
//!   pool of 8 connections in this process (which pings each connection it takes back);
//! - Herald's own trivial query `{ __typename }`, at the same concurrency;
//! - a bare axum + async-graphql schema answering `{ __typename }`, likewise.
//!
//! `cargo bench -p herald --bench read_path -- [--backend embedded|real|both]
//! [--connections N] [--seconds S] [--only NAME]`

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use herald_notifications::clock::Clock;
use herald_notifications::delivery::{DeliveryPolicy, Notifier};
use herald_notifications::domain::{Draft, NotificationType};
use herald_notifications::email::EmailQueue;
use herald_notifications::unread::UnreadCounts;
use herald_platform::cache::Cache;
use herald_test_support::{BackendSet, TestApp, real_backends};
use serde_json::json;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(about = "Herald's read path beside its raw baselines")]
struct Args {
    #[arg(long, value_enum, default_value_t = Backends::Both)]
    backend: Backends,
    /// Concurrent clients of each workload.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// How long each workload runs.
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    /// Run only the workloads whose names contain this (to profile one), e.g.
    /// `getNotifications`.
    #[arg(long)]
    only: Option<String>,
    /// Added by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

const PGBENCH: &str = "inbox statements, pgbench (8 clients, prepared)";
const RAW: &str = "inbox statements, raw (sqlx pool, 8 connections)";
const BARE: &str = "bare axum + async-graphql { __typename }";
const TRIVIAL: &str = "Herald { __typename }";
const UNREAD: &str = "getUnreadNotificationsCount";
const LIST: &str = "getNotifications(first: 20)";

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Backends {
    Embedded,
    Real,
    Both,
}

/// One workload's outcome.
struct Rate {
    name: String,
    per_second: f64,
    p50: Duration,
    p99: Duration,
    /// CPU per call: this process (Herald and the load generator), and PostgreSQL's.
    cpu_here: Duration,
    cpu_postgres: Duration,
}

/// CPU time used so far by the processes whose `/proc/<pid>/stat` passes `pick` (given
/// the pid and the command name), in clock ticks of 10 ms.
fn cpu_ticks(pick: impl Fn(&str, &str) -> bool) -> u64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(|entry| {
            let pid = entry.ok()?.file_name().into_string().ok()?;
            pid.bytes().all(|b| b.is_ascii_digit()).then_some(())?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // "pid (comm) state …": utime and stime are the 14th and 15th fields.
            let (head, rest) = stat.rsplit_once(')')?;
            let comm = head.split_once('(')?.1;
            if !pick(&pid, comm) {
                return None;
            }
            let fields: Vec<&str> = rest.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .sum()
}

/// (this process, PostgreSQL's processes) CPU ticks so far.
fn cpu_now() -> (u64, u64) {
    let me = std::process::id().to_string();
    (
        cpu_ticks(|pid, _| pid == me),
        cpu_ticks(|_, comm| comm == "postgres"),
    )
}

/// Runs `call` from `clients` tasks for `seconds`, timing each call.
async fn drive<F, Fut>(name: &str, clients: usize, seconds: u64, call: F) -> Rate
where
    F: Fn() -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let cpu_before = cpu_now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (stop, call) = (stop.clone(), call.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let one = Instant::now();
                call().await.expect("a call of the workload failed");
                latencies.push(one.elapsed());
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.expect("a client task"));
    }
    let elapsed = started.elapsed();
    let cpu_after = cpu_now();
    let calls = all.len().max(1) as u32;
    let per_call = |ticks: u64| Duration::from_millis(ticks * 10) / calls;
    all.sort_unstable();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    Rate {
        name: name.to_owned(),
        per_second: all.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        cpu_here: per_call(cpu_after.0.saturating_sub(cpu_before.0)),
        cpu_postgres: per_call(cpu_after.1.saturating_sub(cpu_before.1)),
    }
}

/// A GraphQL POST that must answer 200 without errors.
async fn graphql(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &serde_json::Value,
) -> anyhow::Result<()> {
    let mut request = http.post(url).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let answer: serde_json::Value = request.send().await?.error_for_status()?.json().await?;
    anyhow::ensure!(answer.get("errors").is_none(), "{answer}");
    Ok(())
}

/// The bare baseline: axum and async-graphql with nothing else, on a loopback port.
async fn bare_graphql() -> anyhow::Result<String> {
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema};
    struct Q;
    #[Object]
    impl Q {
        async fn ping(&self) -> bool {
            true
        }
    }
    let schema = Schema::new(Q, EmptyMutation, EmptySubscription);
    let app = axum::Router::new().route(
        "/graphql",
        axum::routing::post(
            move |axum::Json(request): axum::Json<async_graphql::Request>| {
                let schema = schema.clone();
                async move { axum::Json(schema.execute(request).await) }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/graphql", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(url)
}

/// Gives `user` 60 order updates besides their welcome: 61 notifications.
async fn fill_inbox(app: &TestApp, user: Uuid) -> anyhow::Result<()> {
    let db = herald_notifications::DESCRIPTOR
        .open_database(&app.settings)
        .await?
        .expect("notifications keeps storage");
    let cache = Cache::connect(&app.settings).await?;
    let clock = Clock::system();
    let notifier = Notifier::new(
        UnreadCounts::new(cache, clock.clone()),
        EmailQueue::default(),
        DeliveryPolicy {
            clock,
            promotion_daily_cap: app.settings.promotion_daily_cap,
        },
    );
    for i in 0..60 {
        let draft = Draft::for_event(
            Uuid::now_v7(),
            user,
            NotificationType::OrderUpdate,
            format!("Order update {i}"),
            "Your order moved along.".to_owned(),
            Some(json!({ "orderId": Uuid::now_v7() })),
        );
        let mut tx = db.begin().await?;
        let delivery = notifier.deliver(&mut tx, &draft).await?;
        tx.commit().await?;
        notifier.committed(&delivery).await;
    }
    db.close().await;
    Ok(())
}

/// The inbox's two statements run by pgbench (prepared, 8 clients), as one transaction
/// per page; None when pgbench is not installed.
async fn pgbench(app: &TestApp, user: Uuid, seconds: u64) -> anyhow::Result<Option<Rate>> {
    let url = app
        .settings
        .database_url
        .clone()
        .expect("real backends have a database URL");
    let schema = herald_notifications::DESCRIPTOR
        .schema(&app.settings)
        .expect("notifications keeps storage");
    let script = app.settings.data_dir.join("inbox.pgbench");
    std::fs::write(
        &script,
        "SELECT id, user_id, type, priority, title, body, data, deliver_at, read_at \
         FROM notifications WHERE user_id = :uid AND deliver_at <= :now \
         ORDER BY deliver_at DESC, id DESC LIMIT 21;\n\
         SELECT COUNT(*) FROM notifications WHERE user_id = :uid AND deliver_at <= :now;\n",
    )?;
    let now = chrono::Utc::now().timestamp_micros();
    let output = tokio::process::Command::new("pgbench")
        .args(["-n", "-M", "prepared", "-c", "8", "-j", "2", "-T"])
        .arg(seconds.to_string())
        .arg("-D")
        .arg(format!("uid='{user}'"))
        .arg("-D")
        .arg(format!("now={now}"))
        .arg("-f")
        .arg(&script)
        .arg(&url)
        .env("PGOPTIONS", format!("-c search_path={schema}"))
        .output()
        .await;
    let Ok(output) = output else {
        eprintln!("pgbench is not installed: its row is left out");
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "pgbench failed: {text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let value = |prefix: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
    };
    let tps = value("tps = ").ok_or_else(|| anyhow::anyhow!("no tps in {text}"))?;
    let latency = Duration::from_secs_f64(value("latency average = ").unwrap_or(0.0) / 1e3);
    Ok(Some(Rate {
        name: PGBENCH.to_owned(),
        per_second: tps,
        // pgbench reports the average only; it stands in the p50 column.
        p50: latency,
        p99: Duration::ZERO,
        // pgbench's own process and PostgreSQL's backends for it are gone by now.
        cpu_here: Duration::ZERO,
        cpu_postgres: Duration::ZERO,
    }))
}

/// The inbox's two statements, straight to PostgreSQL with prepared statements.
async fn raw_statements(
    app: &TestApp,
    user: Uuid,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<Rate> {
    use sqlx::postgres::PgPoolOptions;
    let url = app
        .settings
        .database_url
        .clone()
        .expect("real backends have a database URL");
    let schema = herald_notifications::DESCRIPTOR
        .schema(&app.settings)
        .expect("notifications keeps storage");
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .after_connect(move |conn, _| {
            let schema = schema.clone();
            Box::pin(async move {
                sqlx::Executor::execute(conn, format!("SET search_path TO \"{schema}\"").as_str())
                    .await
                    .map(|_| ())
            })
        })
        .connect(&url)
        .await?;
    let user = user.to_string();
    let rate = drive(RAW, clients, seconds, move || {
        let (pool, user) = (pool.clone(), user.clone());
        async move {
            let now = chrono::Utc::now().timestamp_micros();
            let rows = sqlx::query(
                "SELECT id, user_id, type, priority, title, body, data, deliver_at, read_at
                 FROM notifications WHERE user_id = $1 AND deliver_at <= $3
                 ORDER BY deliver_at DESC, id DESC LIMIT $2",
            )
            .bind(&user)
            .bind(21i64)
            .bind(now)
            .fetch_all(&pool)
            .await?;
            anyhow::ensure!(rows.len() == 21, "{} rows", rows.len());
            let _count: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM notifications WHERE user_id = $1 AND deliver_at <= $2",
            )
            .bind(&user)
            .bind(now)
            .fetch_one(&pool)
            .await?;
            Ok(())
        }
    })
    .await;
    Ok(rate)
}

/// A CPU time per call, or "–" where none was measured.
fn micros(cpu: Duration) -> String {
    if cpu.is_zero() {
        "–".to_owned()
    } else {
        format!("{} µs", cpu.as_micros())
    }
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn run(set: BackendSet, args: &Args) -> anyhow::Result<()> {
    let app = TestApp::spawn_with(set, |s| {
        s.rate_limit_client_per_minute = 0;
        s.rate_limit_user_per_minute = 0;
        s.connections_per_client = 0;
    })
    .await;
    let ada = app.customer("Ada").await;
    let user: Uuid = ada.user_id.parse()?;
    fill_inbox(&app, user).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .build()?;
    let url = format!("{}/graphql", app.gateway);
    let bare = bare_graphql().await?;
    let (n, s) = (args.connections, args.seconds);

    let chosen = |name: &str| args.only.as_deref().is_none_or(|only| name.contains(only));
    let workload = |name: &'static str, target: String, token: Option<String>, query: &str| {
        let (http, body) = (http.clone(), json!({ "query": query }));
        drive(name, n, s, move || {
            let (http, target, token, body) =
                (http.clone(), target.clone(), token.clone(), body.clone());
            async move { graphql(&http, &target, token.as_deref(), &body).await }
        })
    };
    let mut rates = Vec::new();
    if set == BackendSet::Real && chosen(PGBENCH) {
        rates.extend(pgbench(&app, user, s).await?);
    }
    if set == BackendSet::Real && chosen(RAW) {
        rates.push(raw_statements(&app, user, n, s).await?);
    }
    let gateway_workloads = [
        (BARE, bare, None, "{ __typename }"),
        (TRIVIAL, url.clone(), None, "{ __typename }"),
        (
            UNREAD,
            url.clone(),
            Some(ada.token.clone()),
            "{ getUnreadNotificationsCount }",
        ),
        (
            LIST,
            url.clone(),
            Some(ada.token.clone()),
            "{ getNotifications(first: 20) { nodes { id type title body read createdAt } totalCount } }",
        ),
    ];
    for (name, target, token, query) in gateway_workloads {
        if chosen(name) {
            rates.push(workload(name, target, token, query).await);
        }
    }

    let rate_of = |name: &str| rates.iter().find(|r| r.name == name).map(|r| r.per_second);
    println!(
        "\n{set:?}: {n} clients, {s} s each, RSS {:.0} MiB",
        rss_mib()
    );
    println!(
        "| workload | rate /s | p50 | p99 | CPU/call here | CPU/call PostgreSQL |\n|---|--:|--:|--:|--:|--:|"
    );
    for rate in &rates {
        println!(
            "| {} | {:.0} | {:.2} ms | {:.2} ms | {} | {} |",
            rate.name,
            rate.per_second,
            rate.p50.as_secs_f64() * 1e3,
            rate.p99.as_secs_f64() * 1e3,
            micros(rate.cpu_here),
            micros(rate.cpu_postgres),
        );
    }
    let ratio = |a: &str, b: &str| match (rate_of(a), rate_of(b)) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "n/a".to_owned(),
    };
    println!(
        "ratios: getNotifications / pgbench {} (goal ≥ 0.7), / sqlx raw {}; unread count / Herald's trivial {} (goal ≥ 0.5); Herald's trivial / bare {} (goal ≥ 0.5)",
        ratio(LIST, PGBENCH),
        ratio(LIST, RAW),
        ratio(UNREAD, TRIVIAL),
        ratio(TRIVIAL, BARE),
    );
    app.cleanup().await;
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sets = match args.backend {
        Backends::Embedded => vec![BackendSet::Embedded],
        Backends::Real => vec![BackendSet::Real],
        Backends::Both => vec![BackendSet::Embedded, BackendSet::Real],
    };
    for set in sets {
        if set == BackendSet::Real && real_backends().is_none() {
            eprintln!("skipping the real backends: not reachable");
            continue;
        }
        run(set, &args).await?;
    }
    Ok(())
}
