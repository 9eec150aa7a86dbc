//! A promotion to every opted-in user: how long the notifications service takes to decide
//! and store one notification each (the set-based fan-out through the decision function),
//! beside the raw cost of writing as many notification-sized rows, measured in the same run
//! (PostgreSQL: `COPY`; SQLite, which has none: multi-row INSERTs in one transaction). A
//! benchmark, not a test: it reports times and ratios (docs/benchmarks.md).
//!
//! `cargo bench -p herald --bench campaign -- [--users N] [--backend embedded|real|both]
//! [--batch N] [--update-doc]`

#[path = "common/backends.rs"]
mod backends;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use backends::Backends;
use clap::Parser;
use herald_notifications::campaign::{Campaigns, PromotionInput};
use herald_notifications::clock::Clock;
use herald_notifications::delivery::{DeliveryPolicy, Notifier};
use herald_notifications::email::EmailQueue;
use herald_notifications::unread::UnreadCounts;
use herald_platform::Settings;
use herald_platform::cache::Cache;
use herald_platform::db::{Database, now_micros};
use herald_platform::testing::isolated_settings;
use herald_test_support::{BackendSet, real_backends};
use sqlx::Executor;
use uuid::Uuid;

#[path = "common/raw.rs"]
mod raw;

use raw::{pg, raw_copy, raw_inserts};

const BEGIN: &str = "<!-- campaign results: begin -->";
const END: &str = "<!-- campaign results: end -->";
/// Rows per INSERT on SQLite (binding many `$N` parameters there costs quadratic time).
const SQLITE_ROWS: usize = 100;

#[derive(Debug, Parser)]
#[command(about = "A promotion's fan-out beside a raw write of as many rows")]
struct Args {
    /// Opted-in users (and raw rows).
    #[arg(long, default_value_t = 1_000_000)]
    users: usize,
    #[arg(long, value_enum, default_value_t = Backends::Both)]
    backend: Backends,
    /// Recipients decided per transaction.
    #[arg(long, default_value_t = 2_000)]
    batch: usize,
    /// Transactions at once (default: the service's, 2 on PostgreSQL, 1 on SQLite).
    #[arg(long)]
    parallel: Option<usize>,
    /// Replace the campaign results in docs/benchmarks.md with this run's.
    #[arg(long)]
    update_doc: bool,
    /// Added by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

struct Measured {
    backend: &'static str,
    raw_what: &'static str,
    raw: Duration,
    campaign: Duration,
    notifications: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.users > 0 && args.batch > 0,
        "--users and --batch must be positive"
    );
    let sets = args.backend.sets();
    let mut results = Vec::new();
    for set in sets {
        if set == BackendSet::Real && real_backends().is_none() {
            anyhow::ensure!(
                args.backend == Backends::Both,
                "PostgreSQL or Redis is not reachable"
            );
            eprintln!("real: not measured, PostgreSQL or Redis is not reachable");
            continue;
        }
        results.push(measure(set, &args).await?);
    }
    let section = section(&args, &results);
    println!("{section}");
    if args.update_doc {
        let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/benchmarks.md");
        let text = std::fs::read_to_string(&doc)?;
        let (head, rest) = text.split_once(BEGIN).context("no campaign begin marker")?;
        let (_, tail) = rest.split_once(END).context("no campaign end marker")?;
        std::fs::write(&doc, format!("{head}{BEGIN}\n{section}{END}{tail}"))?;
        eprintln!("updated {}", doc.display());
    }
    Ok(())
}

async fn measure(set: BackendSet, args: &Args) -> anyhow::Result<Measured> {
    let dir = tempfile::tempdir()?;
    let mut settings = isolated_settings(set, dir.path());
    settings.database_max_connections = Settings::default().database_max_connections;
    let db = herald_notifications::connect_database(&settings).await?;
    let users = args.users;

    eprintln!("[{set:?}] raw: {users} notification-sized rows");
    let (raw_what, raw) = match set {
        BackendSet::Real | BackendSet::Kafka => ("COPY", raw_copy(&settings, &db, users).await?),
        BackendSet::Embedded => (
            "INSERT of 2,000 rows from one JSON parameter a statement, one transaction",
            raw_inserts(&db, users).await?,
        ),
    };
    eprintln!("[{set:?}] raw: {:.2} s", raw.as_secs_f64());

    eprintln!("[{set:?}] loading {users} opted-in recipients");
    load_recipients(&settings, &db, users).await?;

    let cache = Cache::connect(&settings).await?;
    let clock = Clock::system();
    let policy = DeliveryPolicy {
        clock: clock.clone(),
        promotion_daily_cap: settings.promotion_daily_cap,
    };
    let notifier = Notifier::new(
        UnreadCounts::new(cache.clone(), clock.clone()),
        EmailQueue::default(),
        policy,
    );
    let defaults = Campaigns::new(db.clone(), notifier, clock);
    let campaigns = Campaigns {
        batch_size: args.batch,
        parallel: args.parallel.unwrap_or(defaults.parallel),
        ..defaults
    };
    eprintln!("[{set:?}] the campaign");
    let started = Instant::now();
    let promotion = campaigns
        .create(
            PromotionInput {
                title: "Spring sale".to_owned(),
                body: "20 % off everything until Sunday".to_owned(),
                category: None,
                send_at: None,
            },
            Uuid::now_v7(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let sent = campaigns.send_due().await?;
    let campaign = started.elapsed();
    eprintln!(
        "[{set:?}] campaign: {:.2} s, {} notifications",
        campaign.as_secs_f64(),
        sent.notifications
    );
    let stored: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE type = 'PROMOTION'")
            .fetch_one(db.pool())
            .await?;
    anyhow::ensure!(
        stored as usize == users && sent.notifications as usize == users,
        "expected {users} notifications, {stored} stored, {} reported",
        sent.notifications
    );
    let status = campaigns.get(promotion.id).await?.map(|p| p.status);
    anyhow::ensure!(status.as_deref() == Some("SENT"), "promotion {status:?}");

    cleanup(&settings, &db).await;
    Ok(Measured {
        backend: match set {
            BackendSet::Embedded => "embedded (SQLite, in-process cache)",
            BackendSet::Real | BackendSet::Kafka => "real (PostgreSQL, Redis)",
        },
        raw_what,
        raw,
        campaign,
        notifications: sent.notifications,
    })
}

fn placeholders(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|r| {
            let row: Vec<String> = (1..=columns)
                .map(|c| format!("${}", r * columns + c))
                .collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `users` customers with default preferences (promotions on, in-app, UTC, no quiet hours),
/// as `user.registered` would have left them in the replica; not timed.
async fn load_recipients(settings: &Settings, db: &Database, users: usize) -> anyhow::Result<()> {
    let now = now_micros();
    match db.backend() {
        herald_platform::db::Backend::Postgres => {
            let mut conn = pg(settings, db).await?;
            let mut copy = conn
                .copy_in_raw(
                    "COPY recipients (user_id, name, email, role, promotions, order_updates, recommendations,
                        inventory_alerts, categories, channels, timezone, preferences_version, updated_at)
                     FROM STDIN",
                )
                .await?;
            for chunk in (0..users).collect::<Vec<_>>().chunks(10_000) {
                let text: String = chunk
                    .iter()
                    .map(|i| {
                        format!(
                            "{}\tShopper {i}\tshopper{i}@example.com\tCUSTOMER\tt\tt\tt\tt\t[]\t[\"IN_APP\"]\tUTC\t1\t{now}\n",
                            Uuid::now_v7()
                        )
                    })
                    .collect();
                copy.send(text.into_bytes()).await?;
            }
            copy.finish().await?;
            conn.execute("ANALYZE recipients").await?;
        }
        herald_platform::db::Backend::Sqlite => {
            let mut tx = db.begin().await?;
            for chunk in (0..users).collect::<Vec<_>>().chunks(SQLITE_ROWS) {
                let sql = format!(
                    "INSERT INTO recipients (user_id, name, email, role, promotions, order_updates,
                        recommendations, inventory_alerts, categories, channels, timezone,
                        preferences_version, updated_at) VALUES {}",
                    placeholders(chunk.len(), 13)
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
                for i in chunk {
                    query = query
                        .bind(Uuid::now_v7().to_string())
                        .bind(format!("Shopper {i}"))
                        .bind(format!("shopper{i}@example.com"))
                        .bind("CUSTOMER")
                        .bind(1_i64)
                        .bind(1_i64)
                        .bind(1_i64)
                        .bind(1_i64)
                        .bind("[]")
                        .bind("[\"IN_APP\"]")
                        .bind("UTC")
                        .bind(1_i64)
                        .bind(now);
                }
                query.execute(&mut *tx).await?;
            }
            tx.commit().await?;
        }
    }
    Ok(())
}

/// Drops the schema and the cache keys the run made.
async fn cleanup(settings: &Settings, db: &Database) {
    if let Some(schema) = db.schema() {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA \"{schema}\" CASCADE"
        )))
        .execute(db.pool())
        .await;
    }
    db.close().await;
    if let Some(url) = &settings.redis_url
        && let Ok(client) = redis::Client::open(url.as_str())
        && let Ok(mut conn) = client.get_multiplexed_async_connection().await
    {
        let pattern = format!("{}:*", settings.cache_prefix);
        let mut cursor: u64 = 0;
        loop {
            let scanned: redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(10_000)
                .query_async(&mut conn)
                .await;
            let Ok((next, keys)) = scanned else { break };
            if !keys.is_empty() {
                let _: redis::RedisResult<i64> =
                    redis::cmd("UNLINK").arg(&keys).query_async(&mut conn).await;
            }
            if next == 0 {
                break;
            }
            cursor = next;
        }
    }
}

fn section(args: &Args, results: &[Measured]) -> String {
    let mut out = format!(
        "`cargo bench -p herald --bench campaign -- --users {} --batch {}`, on this machine \
         (2 cores, 24 GiB; PostgreSQL 15, Redis 7 on loopback), {}:\n\n",
        args.users,
        args.batch,
        chrono::Utc::now().format("%Y-%m-%d")
    );
    out.push_str("| backend | raw write of as many rows | raw | campaign | notifications/s | campaign ÷ raw |\n");
    out.push_str("|---|---|--:|--:|--:|--:|\n");
    for m in results {
        out.push_str(&format!(
            "| {} | {} | {:.1} s | {:.1} s | {:.0} | {:.1} |\n",
            m.backend,
            m.raw_what,
            m.raw.as_secs_f64(),
            m.campaign.as_secs_f64(),
            m.notifications as f64 / m.campaign.as_secs_f64(),
            m.campaign.as_secs_f64() / m.raw.as_secs_f64(),
        ));
    }
    out.push('\n');
    out
}
