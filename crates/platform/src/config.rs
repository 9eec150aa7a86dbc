//! Typed settings. Precedence: defaults < optional TOML file < `HERALD_*` environment < CLI.
//!
//! Keys are flat so that a file key, an environment variable and a flag name the same
//! thing: `data_dir` in `herald.toml` is `HERALD_DATA_DIR` and `--data-dir`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// The settings of the service named `$service` (`users`, …, `scheduler`), borrowed as
/// `$ref` (`&` or `&mut`): its address, its URL and its own database URL; None for the
/// gateway and unknown names. The one place that maps a service to its fields.
macro_rules! service_fields {
    ($settings:expr, $service:expr, $($ref:tt)+) => {
        match $service {
            "users" => Some((
                $($ref)+ $settings.users_addr,
                $($ref)+ $settings.users_url,
                $($ref)+ $settings.users_database_url,
            )),
            "products" => Some((
                $($ref)+ $settings.products_addr,
                $($ref)+ $settings.products_url,
                $($ref)+ $settings.products_database_url,
            )),
            "orders" => Some((
                $($ref)+ $settings.orders_addr,
                $($ref)+ $settings.orders_url,
                $($ref)+ $settings.orders_database_url,
            )),
            "recommendations" => Some((
                $($ref)+ $settings.recommendations_addr,
                $($ref)+ $settings.recommendations_url,
                $($ref)+ $settings.recommendations_database_url,
            )),
            "notifications" => Some((
                $($ref)+ $settings.notifications_addr,
                $($ref)+ $settings.notifications_url,
                $($ref)+ $settings.notifications_database_url,
            )),
            "scheduler" => Some((
                $($ref)+ $settings.scheduler_addr,
                $($ref)+ $settings.scheduler_url,
                $($ref)+ $settings.scheduler_database_url,
            )),
            _ => None,
        }
    };
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Where embedded backends keep their files.
    pub data_dir: PathBuf,
    /// The public GraphQL gateway.
    pub gateway_addr: SocketAddr,
    /// The URL users reach the gateway at (links in emails).
    pub public_url: String,
    pub users_addr: SocketAddr,
    /// How other services reach the users service; defaults to `http://{users_addr}`.
    pub users_url: Option<String>,
    pub notifications_addr: SocketAddr,
    pub notifications_url: Option<String>,
    pub products_addr: SocketAddr,
    pub products_url: Option<String>,
    pub orders_addr: SocketAddr,
    pub orders_url: Option<String>,
    pub recommendations_addr: SocketAddr,
    pub recommendations_url: Option<String>,
    pub scheduler_addr: SocketAddr,
    pub scheduler_url: Option<String>,
    /// With every service in one process (`herald serve`), also serve each service's own
    /// API on its `*_addr` (for a service or tool in another process to call). Off: only
    /// the gateway listens; the services call each other in process. A service started
    /// apart (`--only`) always listens on its port.
    pub service_ports: bool,
    /// Unset: one SQLite file per service under `data_dir`. `postgres://…`: one schema per service.
    pub database_url: Option<String>,
    /// Per-service overrides of `database_url` (a service in its own database).
    pub users_database_url: Option<String>,
    pub notifications_database_url: Option<String>,
    pub products_database_url: Option<String>,
    pub orders_database_url: Option<String>,
    pub recommendations_database_url: Option<String>,
    pub scheduler_database_url: Option<String>,
    /// Prefix of the per-service PostgreSQL schema names (`{prefix}users`).
    pub database_schema_prefix: String,
    pub database_max_connections: u32,
    /// Unset: the in-process durable bus. `amqp://…`: RabbitMQ.
    pub amqp_url: Option<String>,
    /// `host:port,…`: Kafka's bootstrap brokers, the bus instead of RabbitMQ (set one of the
    /// two).
    pub kafka_brokers: Option<String>,
    /// Partitions of each queue's Kafka topic when Herald creates it: how many consumers of
    /// one queue (replicas) can share its work.
    pub kafka_partitions: u32,
    /// Records the producer puts in one batch per partition. 1 by default: tansu 0.6 (the
    /// Kafka-protocol broker Herald is tested with) serves a fetch that starts inside a batch
    /// of several records wrongly (a consumer resuming from its committed offset gets
    /// nothing). Raise it (10000, librdkafka's default) on Apache Kafka for throughput.
    pub kafka_batch_messages: u32,
    /// Prefix of exchange and queue names on the bus.
    pub bus_prefix: String,
    /// Deliveries of a failing message, the first included, before it is dead-lettered.
    pub bus_max_attempts: u32,
    /// The delay before a failed message's second attempt; each later delay is three
    /// times longer (15 s: 15 s, 45 s, 135 s, 405 s), ±20 % jitter.
    pub bus_retry_delay_ms: u64,
    /// Deliveries a consumer that handles them in batches (order events) holds at once:
    /// its prefetch, and the largest batch.
    pub bus_batch_concurrency: usize,
    /// Unset: emails are written to `{data_dir}/mailbox`. `smtp://host:port`: SMTP.
    pub smtp_url: Option<String>,
    /// The sender of every email.
    pub mail_from: String,
    /// Unset: in-process cache. `redis://…`: Redis.
    pub redis_url: Option<String>,
    /// Prefix of every cache key.
    pub cache_prefix: String,
    pub admin_email: Option<String>,
    pub admin_password: Option<String>,
    /// `pretty` or `json`; unset: pretty on a terminal, json otherwise.
    pub log_format: Option<LogFormat>,
    /// The users service's token signing key: base64 of a PKCS#8 Ed25519 key
    /// (`herald keygen` makes one). Unset: generated on first start and kept in its database.
    pub signing_key: Option<String>,
    /// The secret services sign their calls to each other with, base64 of at least 32
    /// bytes; the same in every process of a deployment. Unset: generated at start, which
    /// serves only when every service runs in one process.
    pub service_key: Option<String>,
    /// Lifetime of issued access tokens.
    pub token_ttl_secs: u64,
    /// Lifetime of refresh tokens (each is good once; refreshing issues the next).
    pub refresh_token_ttl_secs: u64,
    /// Promotions a user receives per local day at most; more are suppressed.
    pub promotion_daily_cap: i64,
    /// A folder whose `{type}.subject.j2`, `{type}.txt.j2` and `{type}.html.j2` replace the
    /// built-in email templates.
    pub templates_dir: Option<PathBuf>,
    /// The key that signs unsubscribe links; unset: generated on first start and kept.
    pub unsubscribe_secret: Option<String>,
    /// Stock at or below this (and above zero) raises `product.low_stock`.
    pub low_stock_threshold: i64,
    /// Nested fields a query may have (introspection is bounded on its own terms).
    pub max_query_depth: usize,
    /// Nodes a query may return at most, list sizes multiplied (`first`, an order's lines),
    /// and fields it may select once its fragments are expanded.
    pub max_query_complexity: usize,
    /// The largest request body, and the largest WebSocket message.
    pub max_body_bytes: usize,
    /// Origins a browser app may call the gateway from (CORS), comma-separated
    /// (`https://shop.example`); `*`: any. Empty: none.
    pub cors_origins: String,
    /// A header in which the proxy in front of the gateway names the client's address
    /// (`X-Forwarded-For`, `X-Real-IP`); the last address in it counts. Unset: the peer's
    /// address. Set it only behind such a proxy: clients can send it themselves.
    pub trusted_proxy_header: Option<String>,
    /// An OpenTelemetry collector's OTLP/HTTP address (`http://127.0.0.1:4318`): each
    /// request answered and event handled is sent there as a span of its trace. Unset: no
    /// export.
    pub otlp_endpoint: Option<String>,
    /// GraphQL operations per minute per client address at a gateway (a minute's worth at
    /// once); 0: no limit.
    pub rate_limit_client_per_minute: u32,
    /// GraphQL operations per minute per signed-in user at a gateway; 0: no limit.
    pub rate_limit_user_per_minute: u32,
    /// Accounts one client address may register an hour; after that each waits longer
    /// than the one before. 0: no limit.
    pub registrations_per_client_per_hour: u32,
    /// Failed sign-ins to one account from one client within 15 minutes before each next
    /// attempt waits (1 s, doubling, at most 15 min). Other clients are not held back, so
    /// nobody can lock an owner out. 0: no limit.
    pub login_failures_per_account_client: u32,
    /// Failed sign-ins from one client to any accounts within 15 minutes before each next
    /// attempt waits, as above (slows password spraying). 0: no limit.
    pub login_failures_per_client: u32,
    /// Failed sign-ins to one account within 15 minutes, from anywhere, that tell its owner
    /// (a SECURITY notification, once per 15 minutes). 0: never.
    pub login_failures_alert: u32,
    /// WebSockets one client address may hold open at once at a gateway; 0: no limit.
    pub ws_connections_per_client: u32,
    /// TCP connections one peer address may hold open at once at a gateway; 0: no limit.
    /// Not applied behind a trusted proxy (every connection comes from the proxy then).
    pub connections_per_client: u32,
    /// How long a WebSocket may take to send `connection_init` before it is closed (4408).
    pub ws_init_timeout_ms: u64,
    /// How often the scheduler looks for due jobs.
    pub scheduler_tick_ms: u64,
    /// Cron schedules (UTC; five fields, or six with seconds first) of the scheduled jobs;
    /// an empty one switches its job off. Scheduled promotions whose time has come:
    pub schedule_promotions: String,
    /// The recommendation digest (one RECOMMENDATION per opted-in user with new picks):
    pub schedule_recommendation_digest: String,
    /// Order status checks (stuck orders reported to admins; late deliveries):
    pub schedule_order_checks: String,
    /// A user gets a recommendation digest at most once in this many hours.
    pub digest_period_hours: i64,
    /// Orders PLACED or CONFIRMED for longer than this are reported to admins as stuck.
    pub order_stuck_after_hours: i64,
    /// SHIPPED orders not delivered after this many hours get a "still on its way" update.
    pub order_delivery_window_hours: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("./herald-data"),
            gateway_addr: SocketAddr::from(([0, 0, 0, 0], 4000)),
            public_url: "http://localhost:4000".to_owned(),
            users_addr: SocketAddr::from(([127, 0, 0, 1], 4101)),
            users_url: None,
            notifications_addr: SocketAddr::from(([127, 0, 0, 1], 4104)),
            notifications_url: None,
            products_addr: SocketAddr::from(([127, 0, 0, 1], 4102)),
            products_url: None,
            orders_addr: SocketAddr::from(([127, 0, 0, 1], 4103)),
            orders_url: None,
            recommendations_addr: SocketAddr::from(([127, 0, 0, 1], 4105)),
            recommendations_url: None,
            scheduler_addr: SocketAddr::from(([127, 0, 0, 1], 4106)),
            scheduler_url: None,
            database_url: None,
            users_database_url: None,
            notifications_database_url: None,
            products_database_url: None,
            orders_database_url: None,
            recommendations_database_url: None,
            scheduler_database_url: None,
            database_schema_prefix: String::new(),
            database_max_connections: 16,
            amqp_url: None,
            kafka_brokers: None,
            kafka_partitions: 6,
            kafka_batch_messages: 1,
            bus_prefix: "herald".to_owned(),
            bus_max_attempts: 5,
            bus_retry_delay_ms: 15_000,
            bus_batch_concurrency: 256,
            smtp_url: None,
            mail_from: "Herald <notifications@herald.localhost>".to_owned(),
            redis_url: None,
            cache_prefix: "herald".to_owned(),
            admin_email: None,
            admin_password: None,
            log_format: None,
            signing_key: None,
            service_key: None,
            token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            service_ports: false,
            promotion_daily_cap: 3,
            templates_dir: None,
            unsubscribe_secret: None,
            low_stock_threshold: 5,
            max_query_depth: 12,
            max_query_complexity: 10_000,
            max_body_bytes: 256 * 1024,
            cors_origins: String::new(),
            trusted_proxy_header: None,
            otlp_endpoint: None,
            rate_limit_client_per_minute: 1200,
            rate_limit_user_per_minute: 600,
            registrations_per_client_per_hour: 10,
            login_failures_per_account_client: 5,
            login_failures_per_client: 30,
            login_failures_alert: 5,
            ws_connections_per_client: 32,
            connections_per_client: 256,
            ws_init_timeout_ms: 10_000,
            scheduler_tick_ms: 1000,
            schedule_promotions: "* * * * *".to_owned(),
            schedule_recommendation_digest: "0 9 * * *".to_owned(),
            schedule_order_checks: "*/15 * * * *".to_owned(),
            digest_period_hours: 24 * 7,
            order_stuck_after_hours: 2,
            order_delivery_window_hours: 24 * 7,
        }
    }
}

/// Each attempt but the last has a retry level (a RabbitMQ delay queue).
const MAX_BUS_ATTEMPTS: u32 = 20;
/// RabbitMQ's prefetch is 16 bits; larger batches gain little.
const MAX_BUS_BATCH_CONCURRENCY: usize = 4096;

/// A setting with a bad value: one line that names it.
#[derive(Debug, thiserror::Error)]
#[error("invalid {setting}: {message}")]
pub struct ConfigError {
    pub setting: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: &str, message: impl Into<String>) -> Self {
        ConfigError {
            setting: env_name(key),
            message: message.into(),
        }
    }
}

/// The environment variable that sets `key`.
pub fn env_name(key: &str) -> String {
    format!("HERALD_{}", key.to_ascii_uppercase())
}

impl Settings {
    /// Loads settings from the optional file, the `HERALD_*` environment and the CLI
    /// overrides (a serializable struct whose `None` fields are skipped), then validates.
    pub fn load(file: Option<&Path>, overrides: impl Serialize) -> Result<Settings, ConfigError> {
        Self::load_from(file, std::env::vars(), overrides)
    }

    /// [`Settings::load`] with the environment given explicitly.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: impl Serialize,
    ) -> Result<Settings, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError {
                    setting: "--config".to_owned(),
                    message: format!("{} does not exist", path.display()),
                });
            }
            figment = figment.merge(Toml::file(path));
        }
        // Environment values stay text (a password of digits is still a password); numeric
        // settings are converted when extracted. An empty variable counts as unset.
        let env: BTreeMap<String, String> = env
            .into_iter()
            .filter(|(_, value)| !value.is_empty())
            .filter_map(|(key, value)| {
                let key = key.strip_prefix("HERALD_")?;
                (!key.starts_with("TEST_")).then(|| (key.to_ascii_lowercase(), value))
            })
            .collect();
        figment = figment
            .merge(Serialized::defaults(env))
            .merge(Serialized::defaults(overrides));
        let settings: Settings = figment.extract_lossy().map_err(|e| {
            let key = e
                .path
                .last()
                .cloned()
                .unwrap_or_else(|| "config".to_owned());
            ConfigError::new(&key, e.kind.to_string())
        })?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.database_url {
            check_url("database_url", url, &["postgres", "postgresql"])?;
        }
        for service in Self::SERVICES {
            if let Some((_, _, Some(url))) = service_fields!(self, service, &) {
                check_url(
                    &format!("{service}_database_url"),
                    url,
                    &["postgres", "postgresql"],
                )?;
            }
        }
        if let Some(url) = &self.amqp_url {
            check_url("amqp_url", url, &["amqp"])?;
        }
        if let Some(brokers) = &self.kafka_brokers {
            if self.amqp_url.is_some() {
                return Err(ConfigError::new(
                    "kafka_brokers",
                    "HERALD_KAFKA_BROKERS and HERALD_AMQP_URL each choose a bus; set one of them",
                ));
            }
            check_brokers(brokers)?;
        }
        if self.kafka_batch_messages == 0 || self.kafka_batch_messages > 1_000_000 {
            return Err(ConfigError::new(
                "kafka_batch_messages",
                format!(
                    "expected 1 to 1000000 records, got {}",
                    self.kafka_batch_messages
                ),
            ));
        }
        if self.kafka_partitions == 0 || self.kafka_partitions > 1024 {
            return Err(ConfigError::new(
                "kafka_partitions",
                format!(
                    "expected 1 to 1024 partitions, got {}",
                    self.kafka_partitions
                ),
            ));
        }
        if let Some(url) = &self.smtp_url {
            check_url("smtp_url", url, &["smtp"])?;
        }
        if let Some(url) = &self.redis_url {
            check_url("redis_url", url, &["redis"])?;
        }
        for service in Self::SERVICES {
            if let Some((_, Some(url), _)) = service_fields!(self, service, &) {
                check_url(&format!("{service}_url"), url, &["http", "https"])?;
            }
        }
        check_url("public_url", &self.public_url, &["http", "https"])?;
        if self.admin_email.is_some() != self.admin_password.is_some() {
            return Err(ConfigError::new(
                "admin_password",
                "HERALD_ADMIN_EMAIL and HERALD_ADMIN_PASSWORD must be set together",
            ));
        }
        if let Some(key) = &self.service_key {
            crate::auth::ServiceKey::from_base64(key)
                .map_err(|e| ConfigError::new("service_key", format!("{e:#}")))?;
        }
        if let Some(key) = &self.signing_key {
            crate::auth::SigningKey::from_base64(key)
                .map_err(|e| ConfigError::new("signing_key", format!("{e:#}")))?;
        }
        if self.promotion_daily_cap < 0 {
            return Err(ConfigError::new(
                "promotion_daily_cap",
                "must not be negative",
            ));
        }
        if self.low_stock_threshold < 0 {
            return Err(ConfigError::new(
                "low_stock_threshold",
                "must not be negative",
            ));
        }
        if !(1..=MAX_BUS_ATTEMPTS).contains(&self.bus_max_attempts) {
            return Err(ConfigError::new(
                "bus_max_attempts",
                format!("must be between 1 and {MAX_BUS_ATTEMPTS}"),
            ));
        }
        for (key, hours) in [
            ("digest_period_hours", self.digest_period_hours),
            ("order_stuck_after_hours", self.order_stuck_after_hours),
            (
                "order_delivery_window_hours",
                self.order_delivery_window_hours,
            ),
        ] {
            if hours < 1 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        for (key, schedule) in [
            ("schedule_promotions", &self.schedule_promotions),
            (
                "schedule_recommendation_digest",
                &self.schedule_recommendation_digest,
            ),
            ("schedule_order_checks", &self.schedule_order_checks),
        ] {
            if !schedule.trim().is_empty() {
                schedule
                    .parse::<crate::cron::Schedule>()
                    .map_err(|e| ConfigError::new(key, e.to_string()))?;
            }
        }
        if self.scheduler_tick_ms == 0 {
            return Err(ConfigError::new("scheduler_tick_ms", "must be at least 1"));
        }
        if !(1..=MAX_BUS_BATCH_CONCURRENCY).contains(&self.bus_batch_concurrency) {
            return Err(ConfigError::new(
                "bus_batch_concurrency",
                format!("must be between 1 and {MAX_BUS_BATCH_CONCURRENCY}"),
            ));
        }
        for origin in self.cors_origin_list() {
            if origin != "*" {
                let url = Url::parse(origin)
                    .map_err(|e| ConfigError::new("cors_origins", format!("{origin}: {e}")))?;
                if !matches!(url.scheme(), "http" | "https")
                    || url.path() != "/"
                    || origin.ends_with('/')
                    || url.query().is_some()
                {
                    return Err(ConfigError::new(
                        "cors_origins",
                        format!("{origin} is not an origin like https://shop.example"),
                    ));
                }
            }
        }
        if let Some(header) = &self.trusted_proxy_header
            && axum::http::HeaderName::try_from(header.as_str()).is_err()
        {
            return Err(ConfigError::new(
                "trusted_proxy_header",
                format!("{header} is not a header name"),
            ));
        }
        if let Some(endpoint) = &self.otlp_endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            return Err(ConfigError::new(
                "otlp_endpoint",
                format!("{endpoint} is not an http:// or https:// address (OTLP over HTTP)"),
            ));
        }
        if self.ws_init_timeout_ms == 0 {
            return Err(ConfigError::new("ws_init_timeout_ms", "must be at least 1"));
        }
        for (key, value) in [
            ("max_query_depth", self.max_query_depth),
            ("max_query_complexity", self.max_query_complexity),
            ("max_body_bytes", self.max_body_bytes),
        ] {
            if value == 0 {
                return Err(ConfigError::new(key, "must be at least 1"));
            }
        }
        if self.token_ttl_secs == 0 {
            return Err(ConfigError::new("token_ttl_secs", "must be at least 1"));
        }
        if self.refresh_token_ttl_secs == 0 {
            return Err(ConfigError::new(
                "refresh_token_ttl_secs",
                "must be at least 1",
            ));
        }
        if !self
            .database_schema_prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(ConfigError::new(
                "database_schema_prefix",
                "only lowercase letters, digits and _ are allowed",
            ));
        }
        Ok(())
    }

    /// The configured CORS origins, one per entry.
    pub fn cors_origin_list(&self) -> impl Iterator<Item = &str> {
        self.cors_origins
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
    }

    /// The services with settings of their own (`HERALD_{SERVICE}_ADDR`, `_URL`,
    /// `_DATABASE_URL`), for the checks that go over all of them.
    const SERVICES: [&'static str; 6] = [
        "users",
        "products",
        "orders",
        "recommendations",
        "notifications",
        "scheduler",
    ];

    /// The database URL of one service: its override, else the shared one, else SQLite.
    pub fn database_url_for(&self, service: &str) -> Option<&str> {
        service_fields!(self, service, &)
            .and_then(|(_, _, own)| own.as_deref())
            .or(self.database_url.as_deref())
    }

    /// Where `service` listens (`gateway` included) and the setting that says so.
    pub fn service_addr(&self, service: &str) -> (SocketAddr, String) {
        let addr =
            service_fields!(self, service, &).map_or(self.gateway_addr, |(addr, _, _)| *addr);
        (addr, format!("{service}_addr"))
    }

    /// Where other processes reach `service`: its `*_url`, else `http://` + its address.
    pub fn service_url(&self, service: &str) -> String {
        match service_fields!(self, service, &) {
            Some((_, Some(url), _)) => url.clone(),
            _ => format!("http://{}", self.service_addr(service).0),
        }
    }

    /// `service` listens at `addr` now: other services of this process reach it there
    /// unless its `*_url` says otherwise.
    pub fn listening(&mut self, service: &str, addr: SocketAddr) {
        if let Some((_, url, _)) = service_fields!(self, service, &mut) {
            url.get_or_insert_with(|| format!("http://{addr}"));
        }
    }

    pub fn users_url(&self) -> String {
        self.service_url("users")
    }

    pub fn notifications_url(&self) -> String {
        self.service_url("notifications")
    }

    pub fn products_url(&self) -> String {
        self.service_url("products")
    }

    pub fn orders_url(&self) -> String {
        self.service_url("orders")
    }

    pub fn recommendations_url(&self) -> String {
        self.service_url("recommendations")
    }

    pub fn scheduler_url(&self) -> String {
        self.service_url("scheduler")
    }

    pub fn log_format(&self) -> LogFormat {
        use std::io::IsTerminal;
        self.log_format
            .unwrap_or(if std::io::stdout().is_terminal() {
                LogFormat::Pretty
            } else {
                LogFormat::Json
            })
    }
}

/// `host:port,host:port,…`, as Kafka clients take their bootstrap brokers.
fn check_brokers(value: &str) -> Result<(), ConfigError> {
    let bad = |why: String| ConfigError::new("kafka_brokers", why);
    if value.trim().is_empty() {
        return Err(bad(
            "expected host:port[,host:port…], got nothing".to_owned()
        ));
    }
    for broker in value.split(',').map(str::trim) {
        let (host, port) = broker
            .rsplit_once(':')
            .ok_or_else(|| bad(format!("expected host:port, got '{broker}'")))?;
        if host.is_empty() || host.contains('/') || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(bad(format!("expected host:port, got '{broker}'")));
        }
    }
    Ok(())
}

fn check_url(key: &str, value: &str, schemes: &[&str]) -> Result<(), ConfigError> {
    let url = Url::parse(value).map_err(|e| ConfigError::new(key, format!("{e}: '{value}'")))?;
    if !schemes.contains(&url.scheme()) {
        return Err(ConfigError::new(
            key,
            format!(
                "expected a {}:// URL, got '{}://…'",
                schemes[0],
                url.scheme()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Default)]
    struct NoOverrides {}

    #[test]
    fn each_service_has_its_address_url_and_database() {
        let mut s = Settings {
            database_url: Some("postgres://shared/db".into()),
            orders_database_url: Some("postgres://orders/db".into()),
            products_url: Some("http://products.internal:80".into()),
            ..Settings::default()
        };
        assert_eq!(s.database_url_for("orders"), Some("postgres://orders/db"));
        assert_eq!(s.database_url_for("users"), Some("postgres://shared/db"));
        let (addr, setting) = s.service_addr("scheduler");
        assert_eq!((addr.port(), setting.as_str()), (4106, "scheduler_addr"));
        assert_eq!(s.service_addr("gateway").1, "gateway_addr");
        assert_eq!(s.service_url("users"), "http://127.0.0.1:4101");
        // Bound on another port: reached there, unless a URL was set.
        s.listening("users", "127.0.0.1:5555".parse().unwrap());
        s.listening("products", "127.0.0.1:5556".parse().unwrap());
        assert_eq!(s.users_url(), "http://127.0.0.1:5555");
        assert_eq!(s.products_url(), "http://products.internal:80");
        s.recommendations_database_url = Some("mysql://nope".into());
        assert_eq!(
            s.validate().unwrap_err().setting,
            "HERALD_RECOMMENDATIONS_DATABASE_URL"
        );
        s.recommendations_database_url = None;
        s.scheduler_url = Some("ftp://nope".into());
        assert_eq!(s.validate().unwrap_err().setting, "HERALD_SCHEDULER_URL");
    }

    #[test]
    fn defaults_are_valid() {
        Settings::default().validate().unwrap();
    }

    #[test]
    fn bad_urls_name_the_setting() {
        let s = Settings {
            database_url: Some("mysql://x".into()),
            ..Default::default()
        };
        let e = s.validate().unwrap_err();
        assert_eq!(e.setting, "HERALD_DATABASE_URL");
        let s = Settings {
            amqp_url: Some("not a url".into()),
            ..Default::default()
        };
        assert_eq!(s.validate().unwrap_err().setting, "HERALD_AMQP_URL");
    }

    #[test]
    fn kafka_brokers_are_host_ports_and_exclude_rabbitmq() {
        for good in ["127.0.0.1:9092", "a:1, b.example:19092", "[::1]:9092"] {
            let s = Settings {
                kafka_brokers: Some(good.into()),
                ..Default::default()
            };
            assert!(s.validate().is_ok(), "{good}");
        }
        for bad in ["", "localhost", "kafka://x:9092", "x:0", "x:port", ":9092"] {
            let s = Settings {
                kafka_brokers: Some(bad.into()),
                ..Default::default()
            };
            let e = s.validate().unwrap_err();
            assert_eq!(e.setting, "HERALD_KAFKA_BROKERS", "{bad}");
        }
        let both = Settings {
            kafka_brokers: Some("127.0.0.1:9092".into()),
            amqp_url: Some("amqp://127.0.0.1".into()),
            ..Default::default()
        };
        let e = both.validate().unwrap_err();
        assert!(e.message.contains("set one of them"), "{}", e.message);
        let none = Settings {
            kafka_partitions: 0,
            ..Default::default()
        };
        assert_eq!(
            none.validate().unwrap_err().setting,
            "HERALD_KAFKA_PARTITIONS"
        );
    }

    #[test]
    fn file_then_overrides_take_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("herald.toml");
        std::fs::write(&file, "data_dir = \"/from/file\"\ntoken_ttl_secs = 60\n").unwrap();
        #[derive(Serialize)]
        struct Cli {
            token_ttl_secs: u64,
        }
        let s = Settings::load_from(Some(&file), [], Cli { token_ttl_secs: 5 }).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/from/file"));
        assert_eq!(s.token_ttl_secs, 5);
    }

    #[test]
    fn environment_values_stay_text_and_numbers_convert() {
        let env = [
            ("HERALD_ADMIN_EMAIL", "admin@example.com"),
            ("HERALD_ADMIN_PASSWORD", "00712345"),
            ("HERALD_TOKEN_TTL_SECS", "60"),
            ("HERALD_DATABASE_URL", ""),
            ("HERALD_TEST_DATABASE_URL", "postgres://ignored"),
            ("PATH", "/usr/bin"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let s = Settings::load_from(None, env, NoOverrides::default()).unwrap();
        assert_eq!(s.admin_password.as_deref(), Some("00712345"));
        assert_eq!(s.token_ttl_secs, 60);
        assert_eq!(s.database_url, None);
    }

    #[test]
    fn bus_attempts_are_validated() {
        let env = [("HERALD_BUS_MAX_ATTEMPTS".to_owned(), "0".to_owned())];
        let e = Settings::load_from(None, env, NoOverrides::default()).unwrap_err();
        assert_eq!(e.setting, "HERALD_BUS_MAX_ATTEMPTS");
        let env = [
            ("HERALD_BUS_MAX_ATTEMPTS".to_owned(), "3".to_owned()),
            ("HERALD_BUS_RETRY_DELAY_MS".to_owned(), "250".to_owned()),
        ];
        let s = Settings::load_from(None, env, NoOverrides::default()).unwrap();
        assert_eq!((s.bus_max_attempts, s.bus_retry_delay_ms), (3, 250));
    }

    #[test]
    fn the_batch_concurrency_is_validated() {
        let env = [("HERALD_BUS_BATCH_CONCURRENCY".to_owned(), "0".to_owned())];
        let e = Settings::load_from(None, env, NoOverrides::default()).unwrap_err();
        assert_eq!(e.setting, "HERALD_BUS_BATCH_CONCURRENCY");
        let env = [("HERALD_BUS_BATCH_CONCURRENCY".to_owned(), "64".to_owned())];
        let s = Settings::load_from(None, env, NoOverrides::default()).unwrap();
        assert_eq!(s.bus_batch_concurrency, 64);
        let options = crate::bus::ConsumerOptions::batched_from_settings(&s);
        assert_eq!(options.concurrency, 64);
    }

    #[test]
    fn bad_environment_value_names_the_setting() {
        let env = [("HERALD_TOKEN_TTL_SECS".to_owned(), "soon".to_owned())];
        let e = Settings::load_from(None, env, NoOverrides::default()).unwrap_err();
        assert_eq!(e.setting, "HERALD_TOKEN_TTL_SECS");
    }

    #[test]
    fn bad_file_value_names_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("herald.toml");
        std::fs::write(&file, "gateway_addr = \"nope\"\n").unwrap();
        let e = Settings::load_from(Some(&file), [], NoOverrides::default()).unwrap_err();
        assert_eq!(e.setting, "HERALD_GATEWAY_ADDR");
    }
}
