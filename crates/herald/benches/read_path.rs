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
//! [--connections N] [--seconds S] [--only NAME] [--separate]`

#[path = "common/backends.rs"]
mod backends;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use backends::Backends;
use clap::Parser;
use herald_notifications::clock::Clock;
use herald_notifications::delivery::{DeliveryPolicy, Notifier};
use herald_notifications::domain::{Draft, NotificationType};
use herald_notifications::email::EmailQueue;
use herald_notifications::unread::UnreadCounts;
use herald_platform::cache::Cache;
use herald_test_support::cluster::Cluster;
use herald_test_support::{
    ADMIN_EMAIL, ADMIN_PASSWORD, BackendSet, TestApp, eventually, real_backends,
};
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
    /// Also run with the gateway, the notifications service and the others as three
    /// processes (real backends).
    #[arg(long)]
    separate: bool,
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
/// The second page: never kept, so it measures the way to storage and back.
const FURTHER: &str =
    "getNotifications(first: 20, after: …), a page further on (read from storage)";
const LIST: &str = "getNotifications(first: 20)";

/// One workload's outcome.
struct Rate {
    name: String,
    per_second: f64,
    p50: Duration,
    p99: Duration,
    /// CPU per call: this process (Herald in process, and the load generator), Herald's
    /// own processes (services apart), and PostgreSQL's.
    cpu_here: Duration,
    cpu_herald: Duration,
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

/// (this process, other `herald` processes, PostgreSQL's processes) CPU ticks so far.
fn cpu_now() -> (u64, u64, u64) {
    let me = std::process::id().to_string();
    (
        cpu_ticks(|pid, _| pid == me),
        cpu_ticks(|pid, comm| comm == "herald" && pid != me),
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
        cpu_herald: per_call(cpu_after.1.saturating_sub(cpu_before.1)),
        cpu_postgres: per_call(cpu_after.2.saturating_sub(cpu_before.2)),
    }
}

/// A GraphQL POST (its body serialized once) that must answer 200 with JSON and no errors.
/// The answer is read through, not built into values: like pgbench, which does not keep
/// rows, the load generator spends on checking, not on using.
async fn graphql(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: &axum::body::Bytes,
) -> anyhow::Result<()> {
    #[derive(serde::Deserialize)]
    struct Answer {
        errors: Option<serde::de::IgnoredAny>,
    }
    let mut request = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.clone());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let bytes = request.send().await?.error_for_status()?.bytes().await?;
    let answer: Answer = serde_json::from_slice(&bytes)?;
    anyhow::ensure!(
        answer.errors.is_none(),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
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
async fn pgbench(target: &Target, seconds: u64) -> anyhow::Result<Option<Rate>> {
    let Some((url, schema)) = &target.postgres else {
        return Ok(None);
    };
    let user = target.user;
    let script = target.dir.join("inbox.pgbench");
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
        .arg(url)
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
        cpu_herald: Duration::ZERO,
        cpu_postgres: Duration::ZERO,
    }))
}

/// The inbox's two statements, straight to PostgreSQL with prepared statements.
async fn raw_statements(
    target: &Target,
    clients: usize,
    seconds: u64,
) -> anyhow::Result<Option<Rate>> {
    use sqlx::postgres::PgPoolOptions;
    let Some((url, schema)) = target.postgres.clone() else {
        return Ok(None);
    };
    let user = target.user;
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .after_connect(move |conn, _| {
            let schema = schema.clone();
            Box::pin(async move {
                sqlx::Executor::execute(
                    conn,
                    sqlx::AssertSqlSafe(format!("SET search_path TO \"{schema}\"")),
                )
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
    Ok(Some(rate))
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

/// Where the workloads run: a gateway, a user with 61 notifications, and the PostgreSQL
/// schema of their notifications (for the raw baselines).
struct Target {
    label: String,
    gateway: String,
    token: String,
    user: Uuid,
    /// The database URL and the notifications schema, on PostgreSQL.
    postgres: Option<(String, String)>,
    dir: std::path::PathBuf,
}

/// All in one process, as `herald serve` runs.
async fn in_process(set: BackendSet, args: &Args) -> anyhow::Result<()> {
    let app = TestApp::spawn_with(set, |s| {
        s.rate_limit_client_per_minute = 0;
        s.rate_limit_user_per_minute = 0;
        s.connections_per_client = 0;
    })
    .await;
    let ada = app.customer("Ada").await;
    let user: Uuid = ada.user_id.parse()?;
    fill_inbox(&app, user).await?;
    let postgres = app.settings.database_url.clone().and_then(|url| {
        let schema = herald_notifications::DESCRIPTOR.schema(&app.settings)?;
        Some((url, schema))
    });
    let target = Target {
        label: format!("{set:?}, all in one process"),
        gateway: app.gateway.clone(),
        token: ada.token.clone(),
        user,
        postgres,
        dir: app.settings.data_dir.clone(),
    };
    measure(&target, args).await?;
    app.cleanup().await;
    Ok(())
}

/// The gateway, the notifications service and the other services as three processes of
/// the release binary, on the real backends.
async fn separate_processes(args: &Args) -> anyhow::Result<()> {
    let mut cluster = Cluster::new(
        std::path::Path::new(env!("CARGO_BIN_EXE_herald")),
        BackendSet::Real,
    );
    for key in [
        "HERALD_RATE_LIMIT_CLIENT_PER_MINUTE",
        "HERALD_RATE_LIMIT_USER_PER_MINUTE",
        "HERALD_CONNECTIONS_PER_CLIENT",
    ] {
        cluster.set_env(key, "0");
    }
    cluster.start("gateway", &["gateway"]);
    cluster.start("notifications", &["notifications"]);
    cluster.start(
        "others",
        &[
            "users",
            "products",
            "orders",
            "recommendations",
            "scheduler",
        ],
    );
    cluster.wait_ready().await;
    let (token, user) = order_sixty_times(&cluster).await?;
    let real = real_backends().expect("the real backends are reachable");
    let target = Target {
        label: "Real, gateway and notifications in separate processes".to_owned(),
        gateway: cluster.gateway().to_owned(),
        token,
        user,
        postgres: Some((
            real.database_url,
            format!("{}notifications", cluster.schema_prefix()),
        )),
        dir: cluster.data_dir().to_owned(),
    };
    measure(&target, args).await?;
    cluster.cleanup().await;
    Ok(())
}

/// A customer who placed 60 orders (each brings an order update) besides their welcome:
/// 61 notifications, through the public API. Their token and id.
async fn order_sixty_times(cluster: &Cluster) -> anyhow::Result<(String, Uuid)> {
    let field = |answer: &serde_json::Value, path: &[&str]| -> anyhow::Result<String> {
        let mut value = &answer["data"];
        for key in path {
            value = &value[*key];
        }
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("no {path:?} in {answer}"))
    };
    let admin = cluster
        .graphql(
            None,
            "mutation($i: LoginInput!) { loginUser(input: $i) { token } }",
            json!({ "i": { "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD } }),
        )
        .await;
    let admin = field(&admin, &["loginUser", "token"])?;
    let product = cluster
        .graphql(
            Some(&admin),
            "mutation($i: ProductInput!) { createProduct(input: $i) { id } }",
            json!({ "i": { "name": "Bench Beans", "category": "coffee", "priceCents": 900, "stock": 1000 } }),
        )
        .await;
    let product = field(&product, &["createProduct", "id"])?;
    let ada = cluster
        .graphql(
            None,
            "mutation($i: RegisterUserInput!) { registerUser(input: $i) { token user { id } } }",
            json!({ "i": { "name": "Ada", "email": format!("ada-{}@bench.test", Uuid::now_v7()), "password": "long enough pw" } }),
        )
        .await;
    let token = field(&ada, &["registerUser", "token"])?;
    let user: Uuid = field(&ada, &["registerUser", "user", "id"])?.parse()?;
    for _ in 0..60 {
        let placed = cluster
            .graphql(
                Some(&token),
                "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id } }",
                json!({ "i": { "items": [{ "productId": product, "quantity": 1 }] } }),
            )
            .await;
        field(&placed, &["placeOrder", "id"])?;
    }
    eventually(Duration::from_secs(60), "61 notifications", || async {
        let page = cluster
            .graphql(
                Some(&token),
                "{ getNotifications { totalCount } }",
                json!({}),
            )
            .await;
        (page["data"]["getNotifications"]["totalCount"] == 61).then_some(())
    })
    .await;
    Ok((token, user))
}

/// The end cursor of the user's first page of 20.
async fn first_cursor(http: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<String> {
    let page: serde_json::Value = http
        .post(url)
        .bearer_auth(token)
        .json(&json!({ "query": "{ getNotifications(first: 20) { pageInfo { endCursor } } }" }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    page["data"]["getNotifications"]["pageInfo"]["endCursor"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no cursor in {page}"))
}

async fn measure(target: &Target, args: &Args) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.connections)
        .build()?;
    let url = format!("{}/graphql", target.gateway);
    let bare = bare_graphql().await?;
    let (n, s) = (args.connections, args.seconds);

    let chosen = |name: &str| args.only.as_deref().is_none_or(|only| name.contains(only));
    let workload = |name: &'static str, target: String, token: Option<String>, query: &str| {
        let http = http.clone();
        let body = axum::body::Bytes::from(json!({ "query": query }).to_string());
        drive(name, n, s, move || {
            let (http, target, token, body) =
                (http.clone(), target.clone(), token.clone(), body.clone());
            async move { graphql(&http, &target, token.as_deref(), &body).await }
        })
    };
    let mut rates = Vec::new();
    if chosen(PGBENCH) {
        rates.extend(pgbench(target, s).await?);
    }
    if chosen(RAW) {
        rates.extend(raw_statements(target, n, s).await?);
    }
    let token = Some(target.token.clone());
    let further = format!(
        "{{ getNotifications(first: 20, after: {}) {{ nodes {{ id type title body read createdAt }} totalCount }} }}",
        json!(first_cursor(&http, &url, &target.token).await?)
    );
    let gateway_workloads = [
        (BARE, bare, None, "{ __typename }"),
        (TRIVIAL, url.clone(), None, "{ __typename }"),
        (
            UNREAD,
            url.clone(),
            token.clone(),
            "{ getUnreadNotificationsCount }",
        ),
        (
            LIST,
            url.clone(),
            token.clone(),
            "{ getNotifications(first: 20) { nodes { id type title body read createdAt } totalCount } }",
        ),
        (FURTHER, url.clone(), token, further.as_str()),
    ];
    for (name, target, token, query) in gateway_workloads {
        if chosen(name) {
            rates.push(workload(name, target, token, query).await);
        }
    }

    let rate_of = |name: &str| rates.iter().find(|r| r.name == name).map(|r| r.per_second);
    println!(
        "\n{}: {n} clients, {s} s each, RSS of this process {:.0} MiB",
        target.label,
        rss_mib()
    );
    println!(
        "| workload | rate /s | p50 | p99 | CPU/call here | CPU/call Herald processes | CPU/call PostgreSQL |\n|---|--:|--:|--:|--:|--:|--:|"
    );
    for rate in &rates {
        println!(
            "| {} | {:.0} | {:.2} ms | {:.2} ms | {} | {} | {} |",
            rate.name,
            rate.per_second,
            rate.p50.as_secs_f64() * 1e3,
            rate.p99.as_secs_f64() * 1e3,
            micros(rate.cpu_here),
            micros(rate.cpu_herald),
            micros(rate.cpu_postgres),
        );
    }
    let ratio = |a: &str, b: &str| match (rate_of(a), rate_of(b)) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "n/a".to_owned(),
    };
    println!(
        "ratios: getNotifications / pgbench {} (goal ≥ 0.7 in one process, ≥ 0.4 apart), / sqlx raw {}; unread count / Herald's trivial {} (goal ≥ 0.5); Herald's trivial / bare {} (goal ≥ 0.5)",
        ratio(LIST, PGBENCH),
        ratio(LIST, RAW),
        ratio(UNREAD, TRIVIAL),
        ratio(TRIVIAL, BARE),
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sets = args.backend.sets();
    for set in sets {
        if set == BackendSet::Real && real_backends().is_none() {
            eprintln!("skipping the real backends: not reachable");
            continue;
        }
        in_process(set, &args).await?;
    }
    if args.separate {
        if real_backends().is_none() {
            eprintln!("skipping separate processes: the real backends are not reachable");
        } else {
            separate_processes(&args).await?;
        }
    }
    Ok(())
}
