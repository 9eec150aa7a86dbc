//! Herald as real OS processes: each service its own process (or all in one), started,
//! killed and restarted by the test, on isolated backends.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use herald_platform::bus::{Bus, topology};
use herald_platform::testing::{BackendSet, real_backends, unique_prefix};
use serde_json::{Value, json};

use crate::{ADMIN_EMAIL, ADMIN_PASSWORD, eventually};

pub struct Cluster {
    bin: PathBuf,
    set: BackendSet,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    prefix: String,
    processes: BTreeMap<String, Child>,
    gateway: String,
    http: reqwest::Client,
    /// Where each process writes its logs, once [`Cluster::keep_logs`] asked for them.
    logs: Option<PathBuf>,
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Cluster {
    /// Settings for processes of `bin` on `set`; nothing runs yet.
    pub fn new(bin: &Path, set: BackendSet) -> Cluster {
        let dir = tempfile::tempdir().expect("a temp dir");
        let prefix = unique_prefix();
        let gateway_port = free_port();
        let mut env = vec![
            (
                "HERALD_DATA_DIR".to_owned(),
                dir.path().display().to_string(),
            ),
            ("HERALD_ADMIN_EMAIL".to_owned(), ADMIN_EMAIL.to_owned()),
            (
                "HERALD_ADMIN_PASSWORD".to_owned(),
                ADMIN_PASSWORD.to_owned(),
            ),
            ("HERALD_LOG_FORMAT".to_owned(), "json".to_owned()),
            (
                "HERALD_SERVICE_KEY".to_owned(),
                herald_platform::auth::ServiceKey::generate().to_base64(),
            ),
            (
                "HERALD_GATEWAY_ADDR".to_owned(),
                format!("127.0.0.1:{gateway_port}"),
            ),
        ];
        for service in [
            "USERS",
            "PRODUCTS",
            "ORDERS",
            "RECOMMENDATIONS",
            "NOTIFICATIONS",
            "SCHEDULER",
        ] {
            env.push((
                format!("HERALD_{service}_ADDR"),
                format!("127.0.0.1:{}", free_port()),
            ));
        }
        if set.on_servers() {
            let real = real_backends().expect("real backends requested but not reachable");
            env.push(if set == BackendSet::Kafka {
                ("HERALD_KAFKA_BROKERS".to_owned(), real.kafka_brokers)
            } else {
                ("HERALD_AMQP_URL".to_owned(), real.amqp_url)
            });
            env.extend([
                ("HERALD_DATABASE_URL".to_owned(), real.database_url),
                ("HERALD_REDIS_URL".to_owned(), real.redis_url),
                (
                    "HERALD_DATABASE_SCHEMA_PREFIX".to_owned(),
                    format!("{prefix}_"),
                ),
                ("HERALD_BUS_PREFIX".to_owned(), prefix.clone()),
                ("HERALD_CACHE_PREFIX".to_owned(), prefix.clone()),
            ]);
        }
        Cluster {
            bin: bin.to_owned(),
            set,
            dir,
            env,
            prefix,
            processes: BTreeMap::new(),
            gateway: format!("http://127.0.0.1:{gateway_port}"),
            http: reqwest::Client::new(),
            logs: None,
        }
    }

    /// Sets a `HERALD_*` variable for the processes started from now on.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Processes started from now on write their (JSON) logs to a file each, read with
    /// [`Cluster::log`].
    pub fn keep_logs(&mut self) {
        let dir = self.dir.path().join("logs");
        std::fs::create_dir_all(&dir).expect("a logs folder");
        self.logs = Some(dir);
    }

    /// What the process started as `name` has logged so far (empty unless logs are kept).
    pub fn log(&self, name: &str) -> String {
        self.logs
            .as_ref()
            .and_then(|dir| std::fs::read_to_string(dir.join(format!("{name}.log"))).ok())
            .unwrap_or_default()
    }

    /// Starts `herald serve SERVICES…` under `name` (no services: all in one process).
    pub fn start(&mut self, name: &str, services: &[&str]) {
        self.start_with_env(name, services, &[]);
    }

    /// [`Cluster::start`] with a few variables of this process's own (e.g. a second
    /// replica's address).
    pub fn start_with_env(&mut self, name: &str, services: &[&str], own: &[(&str, String)]) {
        let log = if std::env::var_os("TEST_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        };
        // Logs are written to standard output.
        let stdout = match &self.logs {
            Some(dir) => std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(format!("{name}.log")))
                .map(Stdio::from)
                .expect("a log file"),
            None => Stdio::null(),
        };
        let child = Command::new(&self.bin)
            .arg("serve")
            .args(services)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(own.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(stdout)
            .stderr(log)
            .spawn()
            .expect("starting herald");
        self.processes.insert(name.to_owned(), child);
    }

    /// SIGKILL: a crash, nothing gets to finish.
    pub fn kill(&mut self, name: &str) {
        if let Some(mut child) = self.processes.remove(name) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(&mut self, name: &str) -> Option<ExitStatus> {
        let mut child = self.processes.remove(name)?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        child.wait().ok()
    }

    pub fn gateway(&self) -> &str {
        &self.gateway
    }

    /// The prefix of the cluster's PostgreSQL schemas (`{prefix}orders`).
    pub fn schema_prefix(&self) -> String {
        format!("{}_", self.prefix)
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    pub async fn wait_ready(&self) {
        eventually(
            Duration::from_secs(60),
            "the gateway to be ready",
            || async {
                let response = self
                    .http
                    .get(format!("{}/ready", self.gateway))
                    .send()
                    .await
                    .ok()?;
                (response.status() == 200).then_some(())
            },
        )
        .await;
    }

    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        self.graphql_with(token, query, variables, &[]).await
    }

    /// [`Cluster::graphql`] with more headers (a `traceparent`, say).
    pub async fn graphql_with(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
        headers: &[(&str, &str)],
    ) -> Value {
        let mut request = self
            .http
            .post(format!("{}/graphql", self.gateway))
            .json(&json!({ "query": query, "variables": variables }));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        match request.send().await {
            Ok(response) => response.json().await.unwrap_or(Value::Null),
            Err(e) => json!({ "errors": [{ "message": e.to_string() }] }),
        }
    }

    /// Stops every process and removes what the cluster created on shared servers.
    pub async fn cleanup(mut self) {
        let names: Vec<String> = self.processes.keys().cloned().collect();
        for name in names {
            self.kill(&name);
        }
        if !self.set.on_servers() {
            return;
        }
        let Some(real) = real_backends() else { return };
        let kafka = self.set == BackendSet::Kafka;
        let settings = herald_platform::Settings {
            database_schema_prefix: format!("{}_", self.prefix),
            bus_prefix: self.prefix.clone(),
            amqp_url: (!kafka).then(|| real.amqp_url.clone()),
            kafka_brokers: kafka.then(|| real.kafka_brokers.clone()),
            ..herald_platform::Settings::default()
        };
        crate::drop_service_schemas(&real.database_url, &settings).await;
        if let Ok(bus) = Bus::connect(&settings, &[]).await {
            let _ = bus.delete_topology(&topology()).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.processes.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
