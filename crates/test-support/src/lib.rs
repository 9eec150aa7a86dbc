//! Test support: a whole Herald on free ports with backends isolated to one test, and a
//! typed GraphQL client to drive it as a user would.

pub mod clients;
pub mod cluster;
pub mod events;
pub mod kafka;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use herald::{Application, ServiceName};
use herald_platform::Settings;
use herald_platform::bus::{Bus, topology};
use herald_platform::db::Database;
use herald_platform::testing::isolated_settings;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use herald_platform::testing::harness::{Need, RABBITMQCTL, REAL_SERVERS, run};
pub use herald_platform::testing::{BackendSet, real_backends};

pub const ADMIN_EMAIL: &str = "admin@herald.test";
pub const ADMIN_PASSWORD: &str = "admin-password";

/// Declares the module's tests (see `herald_platform::backend_tests!`), on a runtime of two
/// worker threads: `backend_tests!(a, b)` runs `async fn a(set: BackendSet)` as `a::embedded`
/// and as `a::real`, which needs PostgreSQL, RabbitMQ and Redis (skipped when they are down
/// outside CI; failing in CI).
#[macro_export]
macro_rules! backend_tests {
    ($($tests:tt)*) => {
        $crate::__private::__test_cases!(threads = 2; $($tests)*);
    };
}

#[doc(hidden)]
pub mod __private {
    pub use herald_platform::__test_cases;
}

/// A running Herald.
pub struct TestApp {
    pub set: BackendSet,
    pub settings: Settings,
    pub gateway: String,
    /// The address (`http://…`) of every service listening on a port of its own: the
    /// gateway, and the others when `settings.service_ports` asks for them.
    pub services: Vec<(ServiceName, String)>,
    http: reqwest::Client,
    running: Option<(CancellationToken, JoinHandle<anyhow::Result<()>>)>,
    dir: Arc<tempfile::TempDir>,
}

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub user_id: String,
}

/// A GraphQL response.
#[derive(Debug, Clone)]
pub struct Gql {
    pub status: u16,
    pub body: Value,
}

impl Gql {
    /// `data`, panicking with the errors if there are any.
    pub fn data(&self) -> &Value {
        assert!(
            self.body.get("errors").is_none(),
            "unexpected GraphQL errors: {}",
            self.body
        );
        &self.body["data"]
    }

    /// The `extensions.code` of the first error.
    pub fn error_code(&self) -> Option<&str> {
        self.body["errors"][0]["extensions"]["code"].as_str()
    }

    pub fn errors(&self) -> Vec<Value> {
        self.body["errors"].as_array().cloned().unwrap_or_default()
    }
}

impl TestApp {
    pub async fn spawn(set: BackendSet) -> TestApp {
        Self::spawn_with(set, |_| {}).await
    }

    /// Spawns with settings adjusted by `adjust` (after isolation is applied).
    pub async fn spawn_with(set: BackendSet, adjust: impl FnOnce(&mut Settings)) -> TestApp {
        herald_platform::telemetry::init_test_logging();
        let dir = Arc::new(tempfile::tempdir().expect("creating a temp dir"));
        let mut settings = isolated_settings(set, dir.path());
        settings.admin_email = Some(ADMIN_EMAIL.to_owned());
        settings.admin_password = Some(ADMIN_PASSWORD.to_owned());
        adjust(&mut settings);
        let mut app = TestApp {
            set,
            settings,
            gateway: String::new(),
            services: Vec::new(),
            http: reqwest::Client::new(),
            running: None,
            dir,
        };
        app.start().await;
        app
    }

    async fn start(&mut self) {
        let app = Application::build(self.settings.clone(), &[])
            .await
            .expect("starting Herald");
        let addr = app.addr(ServiceName::Gateway).expect("the gateway runs");
        self.gateway = format!("http://{addr}");
        self.services = ServiceName::ALL
            .iter()
            .filter_map(|s| Some((*s, format!("http://{}", app.addr(*s)?))))
            .collect();
        let token = app.shutdown_token();
        self.running = Some((token, tokio::spawn(app.run_until_stopped())));
        self.wait_ready().await;
    }

    /// Waits until every service says it is ready (`/ready`): on Kafka its consumers take a
    /// few seconds to join their groups.
    async fn wait_ready(&self) {
        for (service, base) in &self.services {
            let url = format!("{base}/ready");
            eventually(
                Duration::from_secs(30),
                &format!("{service:?} ready"),
                || async {
                    let answer = self.http.get(&url).send().await.ok()?;
                    answer.status().is_success().then_some(())
                },
            )
            .await;
        }
    }

    /// Stops gracefully (as on SIGTERM) and waits until everything finished.
    pub async fn stop(&mut self) {
        if let Some((token, handle)) = self.running.take() {
            token.cancel();
            handle
                .await
                .expect("app task panicked")
                .expect("app stopped with an error");
        }
    }

    /// Stops and starts again on the same data (files, schemas, queues).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.start().await;
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Gql {
        self.post_graphql(token, &json!({ "query": query, "variables": variables }))
            .await
    }

    /// Posts any JSON body to `/graphql` (malformed requests included).
    pub async fn post_graphql(&self, token: Option<&str>, body: &Value) -> Gql {
        let mut request = self
            .http
            .post(format!("{}/graphql", self.gateway))
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("gateway reachable");
        let status = response.status().as_u16();
        let body = response.json().await.expect("gateway answers JSON");
        Gql { status, body }
    }

    /// The answer's text as it came, for what parsing would lose (the order of keys).
    pub async fn graphql_text(&self, token: Option<&str>, query: &str) -> String {
        let mut request = self
            .http
            .post(format!("{}/graphql", self.gateway))
            .json(&json!({ "query": query }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("gateway reachable");
        response.text().await.expect("an answer")
    }

    pub async fn register(&self, name: &str, email: &str, password: &str) -> Gql {
        self.graphql(
            None,
            "mutation($input: RegisterUserInput!) { registerUser(input: $input) { token user { id name email role } } }",
            json!({ "input": { "name": name, "email": email, "password": password } }),
        )
        .await
    }

    /// Registers a fresh customer with a unique email.
    pub async fn customer(&self, name: &str) -> Session {
        let email = format!(
            "{}-{}@example.com",
            name.to_lowercase().replace(' ', "."),
            unique()
        );
        let response = self.register(name, &email, "correct horse battery").await;
        session(&response.data()["registerUser"])
    }

    pub async fn login(&self, email: &str, password: &str) -> Gql {
        self.graphql(
            None,
            "mutation($input: LoginInput!) { loginUser(input: $input) { token user { id role } } }",
            json!({ "input": { "email": email, "password": password } }),
        )
        .await
    }

    pub async fn admin(&self) -> Session {
        let response = self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        session(&response.data()["loginUser"])
    }

    /// `service`'s own storage, as its process reaches it.
    pub async fn storage(&self, service: ServiceName) -> Database {
        Database::connect(&self.settings, service.as_str())
            .await
            .unwrap_or_else(|e| panic!("opening {}'s storage: {e:#}", service.as_str()))
    }

    /// Waits until `count_sql` (one count; `$1`, `$2`… bound to `binds`) on `service`'s
    /// storage is at least `at_least`: what a consumer did behind the API (a replica caught
    /// up, a decision taken), instead of a sleep that hopes it did.
    pub async fn wait_for_rows(
        &self,
        service: ServiceName,
        what: &str,
        count_sql: &'static str,
        binds: &[&str],
        at_least: i64,
    ) {
        let db = self.storage(service).await;
        eventually(Duration::from_secs(20), what, || async {
            let mut query = sqlx::query_scalar::<_, i64>(count_sql);
            for bind in binds {
                query = query.bind(*bind);
            }
            let count = query.fetch_one(db.pool()).await.ok()?;
            (count >= at_least).then_some(())
        })
        .await;
        db.close().await;
    }

    /// The sum of the samples of `metric` on `service`'s `/metrics` whose labels contain
    /// `label` (`queue="products"`, say). Without a port of its own (all in one process,
    /// the default) a service's metrics are on the gateway's `/metrics`, which shows the
    /// whole process's.
    pub async fn metric(&self, service: ServiceName, metric: &str, label: &str) -> f64 {
        let url = self
            .services
            .iter()
            .find(|(name, _)| *name == service)
            .map_or(&self.gateway, |(_, url)| url);
        let url = format!("{url}/metrics");
        let text = self
            .http
            .get(url)
            .send()
            .await
            .expect("the service answers")
            .text()
            .await
            .expect("metrics");
        text.lines()
            .filter(|line| {
                let labelled = line.starts_with(&format!("{metric}{{"));
                let bare = line.starts_with(&format!("{metric} "));
                (labelled || bare) && line.contains(label)
            })
            .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    }

    /// Removes what the test created on shared servers (schemas, queues, exchange).
    pub async fn cleanup(mut self) {
        self.stop().await;
        if !self.set.on_servers() {
            return;
        }
        if let Some(url) = &self.settings.database_url {
            drop_service_schemas(url, &self.settings).await;
        }
        if let Ok(bus) = Bus::connect(&self.settings, &[]).await {
            let _ = bus.delete_topology(&topology()).await;
        }
    }
}

/// Drops the PostgreSQL schema of every service with storage under `settings`.
pub async fn drop_service_schemas(database_url: &str, settings: &Settings) {
    sqlx::any::install_default_drivers();
    let Ok(pool) = sqlx::AnyPool::connect(database_url).await else {
        return;
    };
    let schemas = ServiceName::ALL
        .iter()
        .filter_map(|service| service.descriptor().schema(settings));
    for schema in schemas {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
        )))
        .execute(&pool)
        .await;
    }
    pool.close().await;
}

fn session(payload: &Value) -> Session {
    Session {
        token: payload["token"].as_str().expect("a token").to_owned(),
        user_id: payload["user"]["id"]
            .as_str()
            .expect("a user id")
            .to_owned(),
    }
}

impl TestApp {
    /// Waits until the gateway counts `expected` live subscriptions that listen (a change
    /// made from then on reaches them).
    pub async fn live_subscriptions(&self, expected: usize) {
        let line = format!("gateway_live_subscriptions {expected}");
        eventually(
            Duration::from_secs(60),
            "the subscriptions listening",
            || async {
                let text = self
                    .http()
                    .get(format!("{}/metrics", self.gateway))
                    .send()
                    .await
                    .ok()?
                    .text()
                    .await
                    .ok()?;
                text.lines().any(|l| l.trim() == line).then_some(())
            },
        )
        .await;
    }

    /// An admin adds a kettle (5 in stock) and `buyer` orders one: an ORDER_UPDATE on its
    /// way. Answers the product's id and the order's.
    pub async fn kettle_ordered_by(&self, buyer: &str) -> (Value, Value) {
        let admin = self.admin().await;
        let product = self
            .graphql(
                Some(&admin.token),
                "mutation { createProduct(input: {name: \"Kettle\", category: \"kitchen\", priceCents: 2500, stock: 5}) { id } }",
                json!({}),
            )
            .await;
        let product = product.data()["createProduct"]["id"].clone();
        let order = self
            .graphql(
                Some(buyer),
                "mutation($id: ID!) { placeOrder(input: {items: [{productId: $id, quantity: 1}]}) { id } }",
                json!({ "id": product }),
            )
            .await;
        let order = order.data()["placeOrder"]["id"].clone();
        (product, order)
    }
}

/// What a program printed, its standard output then its error output.
pub fn said(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A short unique suffix.
pub fn unique() -> String {
    herald_platform::testing::unique_prefix()
}

/// Polls `check` until it returns `Some`, or panics after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
