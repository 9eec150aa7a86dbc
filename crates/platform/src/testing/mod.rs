//! Test plumbing: which backend sets to run against, and isolated settings for one test.
//!
//! Every test that touches storage, the bus or the cache runs on both backend sets:
//! the embedded one (always) and the real servers (PostgreSQL, RabbitMQ, Redis). The real
//! servers' URLs come from `HERALD_TEST_DATABASE_URL`, `HERALD_TEST_AMQP_URL` and
//! `HERALD_TEST_REDIS_URL`, defaulting to the standard local ports. When they are not
//! reachable the real-backend tests are reported as skipped ([`harness`]), except under a
//! truthy `CI` ([`ci`]): then they fail loudly.
//!
//! Beside that, what every service's tests do alike: keys and tokens, a migrated database
//! and its cleanup, the outbox read back, the bus, and requests sent through a router.

use std::net::ToSocketAddrs;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use herald_events::{Envelope, Role};
use serde_json::Value;
use tokio::task::JoinHandle;
use tower::ServiceExt;
use uuid::Uuid;

use crate::auth::{Claims, ServiceKey, SigningKey, TokenVerifier};
use crate::bus::{Bus, QueueSpec};
use crate::config::Settings;
use crate::db::{Database, Migrations};
use crate::http::ServiceClient;

pub mod harness;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendSet {
    /// SQLite, the in-process bus, the in-process cache.
    Embedded,
    /// PostgreSQL, RabbitMQ, Redis.
    Real,
    /// PostgreSQL, Kafka, Redis: the real servers with Kafka as the bus.
    Kafka,
}

impl BackendSet {
    /// Whether this set runs on servers (PostgreSQL and Redis), not in the process.
    pub fn on_servers(self) -> bool {
        self != BackendSet::Embedded
    }
}

#[derive(Debug, Clone)]
pub struct RealBackends {
    pub database_url: String,
    pub amqp_url: String,
    pub redis_url: String,
    /// Kafka's bootstrap brokers (`host:port,…`), for [`BackendSet::Kafka`].
    pub kafka_brokers: String,
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

/// The value of `CI` when it is truthy: set, and not empty, `0`, `false`, `no` or `off`
/// (in any case). In CI every test must run: what it needs missing fails it.
pub fn ci() -> Option<String> {
    std::env::var("CI").ok().filter(|value| truthy(value))
}

fn truthy(value: &str) -> bool {
    !matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "" | "0" | "false" | "no" | "off"
    )
}

/// The real servers' URLs, as the environment says.
fn configured_backends() -> RealBackends {
    RealBackends {
        database_url: env_or(
            "HERALD_TEST_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/test",
        ),
        amqp_url: env_or(
            "HERALD_TEST_AMQP_URL",
            "amqp://guest:guest@127.0.0.1:5672/%2f",
        ),
        redis_url: env_or("HERALD_TEST_REDIS_URL", "redis://127.0.0.1:6379"),
        kafka_brokers: env_or("HERALD_TEST_KAFKA_BROKERS", "127.0.0.1:9092"),
    }
}

/// Why no Kafka broker is reachable where `HERALD_TEST_KAFKA_BROKERS` says, or `None`.
pub fn kafka_missing() -> Option<String> {
    let brokers = configured_backends().kafka_brokers;
    let up = brokers.split(',').any(|broker| {
        broker.trim().to_socket_addrs().is_ok_and(|mut addrs| {
            addrs.any(|a| std::net::TcpStream::connect_timeout(&a, Duration::from_secs(2)).is_ok())
        })
    });
    (!up).then(|| format!("no Kafka broker at {brokers} (HERALD_TEST_KAFKA_BROKERS)"))
}

/// Which real servers are missing (say which are not reachable), or `None`.
fn servers_missing() -> Option<String> {
    let backends = configured_backends();
    let down: Vec<&str> = [
        ("PostgreSQL", &backends.database_url),
        ("RabbitMQ", &backends.amqp_url),
        ("Redis", &backends.redis_url),
    ]
    .into_iter()
    .filter(|(_, url)| !reachable(url))
    .map(|(name, _)| name)
    .collect();
    (!down.is_empty()).then(|| format!("{} not reachable", down.join(", ")))
}

/// The real servers, or `None` when they are down; panics when they are down in CI.
pub fn real_backends() -> Option<RealBackends> {
    let Some(missing) = servers_missing() else {
        return Some(configured_backends());
    };
    if let Some(ci) = ci() {
        panic!("CI={ci} but {missing}: the real-backend tests must run in CI");
    }
    eprintln!("the real servers are missing: {missing}");
    None
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
        recommendations_addr: any_port,
        scheduler_addr: any_port,
        // Jobs run when a test asks for them: a digest at 09:00 must not surprise a test
        // that counts notifications.
        schedule_promotions: String::new(),
        schedule_recommendation_digest: String::new(),
        schedule_order_checks: String::new(),
        database_schema_prefix: format!("{prefix}_"),
        database_max_connections: 8,
        bus_prefix: prefix.clone(),
        cache_prefix: prefix,
        log_format: Some(crate::config::LogFormat::Pretty),
        // One address sends everything a test does; the tests of the limits set their own.
        rate_limit_client_per_minute: 0,
        rate_limit_user_per_minute: 0,
        registrations_per_client_per_hour: 0,
        login_failures_per_client: 0,
        ..Settings::default()
    };
    if set.on_servers() {
        let real = real_backends().expect("real backends requested but not reachable");
        settings.database_url = Some(real.database_url);
        settings.redis_url = Some(real.redis_url);
        if set == BackendSet::Kafka {
            settings.kafka_brokers = Some(real.kafka_brokers);
            // Fewer than the default: each test makes its own topics.
            settings.kafka_partitions = 3;
        } else {
            settings.amqp_url = Some(real.amqp_url);
        }
    }
    settings
}

/// Keys made for one test of `service`: a signing key for users' tokens, a service key,
/// and the verifier `service` would have with them.
pub struct TestKey {
    pub signing_key: SigningKey,
    pub service_key: ServiceKey,
    pub verifier: TokenVerifier,
    service: &'static str,
}

impl TestKey {
    pub fn generate(service: &'static str) -> TestKey {
        let signing_key = SigningKey::generate().expect("generating a signing key");
        let service_key = ServiceKey::generate();
        let verifier = TokenVerifier::new(&[signing_key.public_key().clone()])
            .expect("trusting the signing key")
            .for_service(&service_key, service);
        TestKey {
            signing_key,
            service_key,
            verifier,
            service,
        }
    }

    /// What the gateway sends `service` for `user_id` in `role`.
    pub fn token(&self, user_id: Uuid, role: Role) -> String {
        self.from_service("gateway", Some((user_id, role)))
    }

    /// What the gateway sends `service` for nobody in particular.
    pub fn anonymous(&self) -> String {
        self.from_service("gateway", None)
    }

    /// A call to `service` from `caller`, acting for `user` if given.
    pub fn from_service(&self, caller: &'static str, user: Option<(Uuid, Role)>) -> String {
        let acting = user.map(|(user_id, role)| {
            let token = self.user_token(user_id, role);
            self.verifier
                .verify(&token)
                .expect("verifying a fresh token")
        });
        self.service_key
            .credentials(caller)
            .issue(self.service, acting.as_ref())
            .expect("issuing a service credential")
    }

    /// A user's own token for `user_id` in `role`, valid for ten minutes (services refuse
    /// it; the gateway takes it).
    pub fn user_token(&self, user_id: Uuid, role: Role) -> String {
        self.signing_key
            .issue(user_id, role, 1, Duration::from_secs(600))
            .expect("issuing a token")
    }

    /// The claims the gateway verified for `user_id` in `role`: whom a typed client's call
    /// acts for.
    pub fn claims(&self, user_id: Uuid, role: Role) -> Claims {
        self.verifier
            .verify(&self.user_token(user_id, role))
            .expect("a token of this key")
    }
}

/// Serves `router` (a service's routes) on a loopback port; answers a client of it that
/// signs as `caller` with `service_key`: what an `…OverHttp` implementation wraps in a
/// contract test.
pub async fn serve_on_loopback(
    router: Router,
    service_key: &ServiceKey,
    caller: &'static str,
    service: &'static str,
) -> ServiceClient {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    ServiceClient::new(
        &service_key.credentials(caller),
        service,
        &format!("http://{addr}"),
    )
}

/// The service's storage as the settings say, migrated twice: the second run must change
/// nothing.
pub async fn migrated_database(
    settings: &Settings,
    service: &str,
    migrations: &Migrations,
) -> Database {
    let db = crate::service::open_storage(settings, service, migrations)
        .await
        .expect("connecting and migrating the database");
    crate::service::prepare_storage(&db, migrations)
        .await
        .expect("migrating the database a second time");
    db
}

/// Drops the test's PostgreSQL schema (nothing to drop on SQLite) and closes the pool.
pub async fn drop_schema(db: &Database) {
    if let Some(schema) = db.schema() {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA \"{schema}\" CASCADE"
        )))
        .execute(db.pool())
        .await
        .expect("dropping the test's schema");
    }
    db.close().await;
}

/// Every event in the outbox not yet relayed, oldest first.
pub async fn outbox_events(db: &Database) -> Vec<Envelope> {
    let rows: Vec<String> = sqlx::query_scalar("SELECT envelope FROM herald_outbox ORDER BY seq")
        .fetch_all(db.pool())
        .await
        .expect("reading the outbox");
    rows.iter()
        .map(|row| serde_json::from_str(row).expect("an outbox envelope"))
        .collect()
}

/// The bus of one service test: RabbitMQ or Kafka on the real backends (its queues or
/// topics deleted by [`TestBus::finish`]), the in-process bus otherwise.
pub struct TestBus {
    bus: Bus,
    topology: Vec<QueueSpec>,
}

impl TestBus {
    /// Connects as the settings say and declares `topology`.
    pub async fn connect(settings: &Settings, topology: Vec<QueueSpec>) -> TestBus {
        let bus = Bus::connect(settings, &topology)
            .await
            .expect("opening the bus");
        TestBus { bus, topology }
    }

    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    /// Deletes the test's queues (RabbitMQ) or topics (Kafka).
    pub async fn finish(self) {
        self.bus
            .delete_topology(&self.topology)
            .await
            .expect("deleting the test's queues");
    }
}

/// Waits for each background task to end (after its shutdown was asked), 10 s at most each.
pub async fn join_tasks(tasks: impl IntoIterator<Item = JoinHandle<()>>) {
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("a task did not stop within 10 s")
            .expect("a task panicked");
    }
}

/// Sends one request through `router`, with the bearer `token` and the JSON `body` if given.
/// The answer's body is its JSON, `Null` when empty, or its text when not JSON.
pub async fn call(
    router: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let body = match body {
        Some(json) => {
            request = request.header("content-type", "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    let response = router
        .clone()
        .oneshot(request.body(body).expect("building the request"))
        .await
        .expect("the router answers");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("reading the answer's body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, body)
}

#[cfg(test)]
mod tests {
    use super::truthy;

    #[test]
    fn any_ci_value_but_an_empty_or_false_one_is_ci() {
        for value in ["true", "TRUE", "1", "yes", "Yes", "on", "woodpecker"] {
            assert!(truthy(value), "{value}");
        }
        for value in ["", " ", "0", "false", "False", "no", "NO", "off"] {
            assert!(!truthy(value), "{value:?}");
        }
    }
}
