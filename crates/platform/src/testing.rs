//! Test plumbing: which backend sets to run against, and isolated settings for one test.
//!
//! Every test that touches storage, the bus or the cache runs on both backend sets:
//! the embedded one (always) and the real servers (PostgreSQL, RabbitMQ, Redis). The real
//! servers' URLs come from `HERALD_TEST_DATABASE_URL`, `HERALD_TEST_AMQP_URL` and
//! `HERALD_TEST_REDIS_URL`, defaulting to the standard local ports. When they are not
//! reachable the real-backend run is skipped with a message, except when `CI=true`: then
//! the test fails loudly.

use std::net::ToSocketAddrs;
use std::time::Duration;

use crate::config::Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendSet {
    /// SQLite, the in-process bus, the in-process cache.
    Embedded,
    /// PostgreSQL, RabbitMQ, Redis.
    Real,
}

#[derive(Debug, Clone)]
pub struct RealBackends {
    pub database_url: String,
    pub amqp_url: String,
    pub redis_url: String,
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

fn reachable(url: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else {
        return false;
    };
    let Some(host) = parsed.host_str() else {
        return false;
    };
    let port = match (parsed.port(), parsed.scheme()) {
        (Some(port), _) => port,
        (None, "postgres" | "postgresql") => 5432,
        (None, "amqp") => 5672,
        (None, "redis") => 6379,
        (None, _) => return false,
    };
    let Ok(mut addrs) = (host, port).to_socket_addrs() else {
        return false;
    };
    addrs.any(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
}

/// The real servers, or `None` (skip) when they are down outside CI. Panics in CI.
pub fn real_backends() -> Option<RealBackends> {
    let backends = RealBackends {
        database_url: env_or(
            "HERALD_TEST_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/test",
        ),
        amqp_url: env_or(
            "HERALD_TEST_AMQP_URL",
            "amqp://guest:guest@127.0.0.1:5672/%2f",
        ),
        redis_url: env_or("HERALD_TEST_REDIS_URL", "redis://127.0.0.1:6379"),
    };
    let down: Vec<&str> = [
        ("PostgreSQL", &backends.database_url),
        ("RabbitMQ", &backends.amqp_url),
        ("Redis", &backends.redis_url),
    ]
    .into_iter()
    .filter(|(_, url)| !reachable(url))
    .map(|(name, _)| name)
    .collect();
    if down.is_empty() {
        return Some(backends);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "CI=true but {} not reachable: the real-backend tests must run in CI",
            down.join(", ")
        );
    }
    eprintln!(
        "skipping the real-backend run: {} not reachable",
        down.join(", ")
    );
    None
}

/// The backend sets this test runs on: always embedded, and real when reachable.
pub fn backend_sets() -> Vec<BackendSet> {
    let mut sets = vec![BackendSet::Embedded];
    if real_backends().is_some() {
        sets.push(BackendSet::Real);
    }
    sets
}

/// A name unique to this test, usable in schema, queue and key names.
pub fn unique_prefix() -> String {
    format!("t{}", &uuid::Uuid::now_v7().simple().to_string()[20..])
}

/// Settings isolated to one test: a fresh data dir, and on real backends a unique schema
/// prefix, bus prefix and cache prefix. All service addresses use port 0.
pub fn isolated_settings(set: BackendSet, data_dir: &std::path::Path) -> Settings {
    let prefix = unique_prefix();
    let any_port = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let mut settings = Settings {
        data_dir: data_dir.to_owned(),
        gateway_addr: any_port,
        users_addr: any_port,
        notifications_addr: any_port,
        products_addr: any_port,
        orders_addr: any_port,
        database_schema_prefix: format!("{prefix}_"),
        database_max_connections: 8,
        bus_prefix: prefix.clone(),
        cache_prefix: prefix,
        log_format: Some(crate::config::LogFormat::Pretty),
        ..Settings::default()
    };
    if set == BackendSet::Real {
        let real = real_backends().expect("real backends requested but not reachable");
        settings.database_url = Some(real.database_url);
        settings.amqp_url = Some(real.amqp_url);
        settings.redis_url = Some(real.redis_url);
    }
    settings
}
