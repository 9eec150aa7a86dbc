//! The deployment of `deploy/systemd/`, run on this machine by `deploy/run-processes.sh`:
//! every service its own process on PostgreSQL, RabbitMQ and Redis, two replicas of
//! notifications and of the scheduler, and Debian's Prometheus scraping them all with the
//! alert rules loaded. Prometheus sees every process; an order is notified once although
//! two replicas consume; a poison message fires `HeraldDeadLetters`; a replica of each
//! killed loses nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use herald_platform::Settings;
use herald_platform::bus::{Bus, BusBackend, RabbitBus, topology};
use herald_platform::testing::harness::program_missing;
use herald_platform::testing::unique_prefix;
use herald_test_support::events::unreadable_order;
use herald_test_support::{
    ADMIN_EMAIL, ADMIN_PASSWORD, Need, backend_tests, drop_service_schemas, eventually,
    real_backends, unique,
};
use serde_json::{Value, json};

backend_tests!(
    real only: the_process_deployment_is_scraped_alerts_and_survives_losing_replicas(
        threads = 4,
        needs = &[PROMETHEUS]
    )
);

/// Debian's Prometheus (apt-get install prometheus), and curl, which the script waits with.
const PROMETHEUS: Need = Need {
    name: "prometheus and curl",
    missing: || program_missing("prometheus").or_else(|| program_missing("curl")),
};

/// Where `deploy/run-processes.sh` puts each process, from its base port.
const PORTS: [(&str, u16); 9] = [
    ("gateway", 0),
    ("users", 101),
    ("products", 102),
    ("orders", 103),
    ("notifications-1", 104),
    ("recommendations", 105),
    ("scheduler-1", 106),
    ("notifications-2", 114),
    ("scheduler-2", 116),
];
const PROMETHEUS_OFFSET: u16 = 190;

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(path)
}

/// A base port whose every port of the layout is free now.
fn free_base_port() -> u16 {
    let ports = |base: u16| {
        PORTS
            .iter()
            .map(|(_, offset)| *offset)
            .chain([PROMETHEUS_OFFSET])
            .map(move |offset| base + offset)
    };
    for attempt in 0..200u32 {
        let seed = uuid::Uuid::now_v7().as_u128() as u32 ^ attempt.wrapping_mul(7919);
        let base = 20_000 + (seed % 40_000) as u16;
        if ports(base).all(|port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()) {
            return base;
        }
    }
    panic!("no free range of ports");
}

/// The processes the script started, stopped (and their schemas, exchange and queues
/// removed) when dropped, whether the test passed or not.
struct Deployment {
    run_dir: tempfile::TempDir,
    prefix: String,
    base: u16,
    database_url: String,
    amqp_url: String,
    http: reqwest::Client,
}

impl Deployment {
    fn start() -> Deployment {
        let real = real_backends().expect("the real servers");
        let run_dir = tempfile::tempdir().unwrap();
        let prefix = unique_prefix();
        let base = free_base_port();
        let deployment = Deployment {
            run_dir,
            prefix,
            base,
            database_url: real.database_url.clone(),
            amqp_url: real.amqp_url.clone(),
            http: reqwest::Client::new(),
        };
        let output = Command::new(deploy("run-processes.sh"))
            .arg("start")
            .arg("--bin")
            .arg(env!("CARGO_BIN_EXE_herald"))
            .arg("--run-dir")
            .arg(deployment.run_dir.path())
            .args(["--prefix", &deployment.prefix])
            .args(["--base-port", &base.to_string()])
            .args(["--prometheus-port", &(base + PROMETHEUS_OFFSET).to_string()])
            .args(["--scrape-interval", "1s", "--evaluation-interval", "1s"])
            .env("HERALD_DATABASE_URL", &real.database_url)
            .env("HERALD_AMQP_URL", &real.amqp_url)
            .env("HERALD_REDIS_URL", &real.redis_url)
            .env("HERALD_ADMIN_EMAIL", ADMIN_EMAIL)
            .env("HERALD_ADMIN_PASSWORD", ADMIN_PASSWORD)
            // A message that cannot be read is dead-lettered after two quick attempts.
            .env("HERALD_BUS_MAX_ATTEMPTS", "2")
            .env("HERALD_BUS_RETRY_DELAY_MS", "100")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "run-processes.sh start failed:\n{}",
            herald_test_support::said(&output)
        );
        deployment
    }

    fn port(&self, process: &str) -> u16 {
        let offset = PORTS
            .iter()
            .find(|(name, _)| *name == process)
            .map(|(_, offset)| *offset)
            .unwrap_or_else(|| panic!("no process {process}"));
        self.base + offset
    }

    fn instance(&self, process: &str) -> String {
        format!("127.0.0.1:{}", self.port(process))
    }

    fn gateway(&self) -> String {
        format!("http://127.0.0.1:{}", self.port("gateway"))
    }

    fn prometheus(&self) -> String {
        format!("http://127.0.0.1:{}", self.base + PROMETHEUS_OFFSET)
    }

    /// SIGKILL to one process: a crash, nothing gets to finish.
    fn kill(&self, process: &str) {
        let pid = std::fs::read_to_string(self.run_dir.path().join(format!("pids/{process}.pid")))
            .unwrap();
        let status = Command::new("kill")
            .args(["-KILL", pid.trim()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -KILL {process} ({pid})");
    }

    async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .http
            .post(format!("{}/graphql", self.gateway()))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        match request.send().await {
            Ok(response) => response.json().await.unwrap_or(Value::Null),
            Err(e) => json!({ "errors": [{ "message": e.to_string() }] }),
        }
    }

    /// Prometheus' answer to `GET /api/v1/{path}`, its `data`.
    async fn prometheus_api(&self, path: &str, query: &[(&str, &str)]) -> Option<Value> {
        let response = self
            .http
            .get(format!("{}/api/v1/{path}", self.prometheus()))
            .query(query)
            .send()
            .await
            .ok()?;
        let body: Value = response.json().await.ok()?;
        (body["status"] == "success").then(|| body["data"].clone())
    }

    /// Each scrape target's job, instance and health.
    async fn targets(&self) -> Option<Vec<(String, String, String)>> {
        let data = self
            .prometheus_api("targets", &[("state", "active")])
            .await?;
        Some(
            data["activeTargets"]
                .as_array()?
                .iter()
                .map(|target| {
                    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
                    (
                        text(&target["labels"]["job"]),
                        text(&target["labels"]["instance"]),
                        text(&target["health"]),
                    )
                })
                .collect(),
        )
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        let stopped = Command::new(deploy("run-processes.sh"))
            .arg("stop")
            .arg("--run-dir")
            .arg(self.run_dir.path())
            .output();
        if let Ok(output) = &stopped
            && !output.status.success()
        {
            eprintln!(
                "run-processes.sh stop: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        if std::env::var_os("TEST_LOG").is_some() {
            eprintln!("logs kept: {}", self.run_dir.path().display());
            let _ = std::mem::replace(&mut self.run_dir, tempfile::tempdir().unwrap()).keep();
        }
        // On a thread of its own: this may run inside the test's runtime.
        let (database_url, amqp_url, prefix) = (
            self.database_url.clone(),
            self.amqp_url.clone(),
            self.prefix.clone(),
        );
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let settings = Settings {
                    database_schema_prefix: format!("{prefix}_"),
                    ..Settings::default()
                };
                drop_service_schemas(&database_url, &settings).await;
                if let Ok(bus) = RabbitBus::connect(&amqp_url, &prefix).await {
                    let _ = bus.delete_topology(&topology()).await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// The `KEY` of every `KEY=value` line of an environment file.
fn env_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_once('=').map(|(key, _)| key.trim().to_owned()))
        .collect()
}

const PLACE: &str = "mutation($p: ID!) { placeOrder(input: { items: [{ productId: $p, quantity: 1 }] }) { id status } }";

async fn place_order(deployment: &Deployment, token: &str, product: &str) -> String {
    let order = deployment
        .graphql(Some(token), PLACE, json!({ "p": product }))
        .await;
    assert_eq!(
        order["data"]["placeOrder"]["status"], "CONFIRMED",
        "{order}"
    );
    order["data"]["placeOrder"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// How many ORDER_UPDATEs the customer has for each order.
async fn order_updates(deployment: &Deployment, token: &str) -> Option<BTreeMap<String, usize>> {
    let page = deployment
        .graphql(
            Some(token),
            "{ getNotifications(first: 100) { nodes { type data } } }",
            json!({}),
        )
        .await;
    let mut counts = BTreeMap::new();
    for node in page["data"]["getNotifications"]["nodes"].as_array()? {
        if node["type"] == "ORDER_UPDATE" {
            let order = node["data"]["orderId"].as_str()?.to_owned();
            *counts.entry(order).or_insert(0) += 1;
        }
    }
    Some(counts)
}

/// Waits until every one of `orders` has its ORDER_UPDATE, then says each has exactly one.
async fn each_notified_once(deployment: &Deployment, token: &str, orders: &[String]) {
    let counts = eventually(
        Duration::from_secs(30),
        "an ORDER_UPDATE for every order",
        || async {
            let counts = order_updates(deployment, token).await?;
            orders
                .iter()
                .all(|order| counts.contains_key(order))
                .then_some(counts)
        },
    )
    .await;
    for order in orders {
        assert_eq!(counts[order], 1, "order {order}: {counts:?}");
    }
    assert_eq!(counts.len(), orders.len(), "{counts:?}");
}

async fn the_process_deployment_is_scraped_alerts_and_survives_losing_replicas() {
    let began = Instant::now();
    let deployment = Deployment::start();
    eprintln!("the script started everything in {:?}", began.elapsed());

    // The script writes the settings of deploy/systemd/ under the same names (and its
    // isolation prefixes besides).
    let written =
        env_names(&std::fs::read_to_string(deployment.run_dir.path().join("herald.env")).unwrap());
    let units = env_names(&std::fs::read_to_string(deploy("systemd/herald.env")).unwrap());
    let extra: BTreeSet<&str> = written
        .iter()
        .filter(|name| !units.contains(*name))
        .map(String::as_str)
        .collect();
    assert!(
        written.is_superset(&units),
        "{written:?} lacks some of {units:?}"
    );
    assert_eq!(
        extra,
        BTreeSet::from([
            "HERALD_BUS_PREFIX",
            "HERALD_CACHE_PREFIX",
            "HERALD_DATABASE_SCHEMA_PREFIX"
        ])
    );

    // Prometheus scrapes every process, under the job names of the compose deployment,
    // and has the alert rules.
    let compose_jobs: BTreeSet<String> =
        std::fs::read_to_string(deploy("prometheus/prometheus.yml"))
            .unwrap()
            .lines()
            .filter_map(|line| line.trim().strip_prefix("- job_name: herald-"))
            .map(|job| format!("herald-{job}"))
            .collect();
    let expected: BTreeSet<(String, String)> = PORTS
        .iter()
        .map(|(process, _)| {
            let service = process.trim_end_matches(['-', '1', '2']);
            (format!("herald-{service}"), deployment.instance(process))
        })
        .collect();
    assert_eq!(
        expected
            .iter()
            .map(|(job, _)| job.clone())
            .collect::<BTreeSet<_>>(),
        compose_jobs
    );
    eventually(
        Duration::from_secs(30),
        "Prometheus to see every target up",
        || async {
            let targets = deployment.targets().await?;
            let up: BTreeSet<(String, String)> = targets
                .iter()
                .filter(|(_, _, health)| health == "up")
                .map(|(job, instance, _)| (job.clone(), instance.clone()))
                .collect();
            (targets.len() == expected.len() && up == expected).then_some(())
        },
    )
    .await;
    let rules = deployment.prometheus_api("rules", &[]).await.unwrap();
    assert!(rules.to_string().contains("HeraldDeadLetters"), "{rules}");
    eprintln!("every target up after {:?}", began.elapsed());

    // An admin's product, a customer's order, through the gateway.
    let admin = deployment
        .graphql(
            None,
            "mutation($e: String!, $p: String!) { loginUser(input: { email: $e, password: $p }) { token } }",
            json!({ "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD }),
        )
        .await;
    let admin = admin["data"]["loginUser"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("the admin signs in: {admin}"))
        .to_owned();
    let product = deployment
        .graphql(
            Some(&admin),
            "mutation { createProduct(input: { name: \"Beans\", category: \"coffee\", priceCents: 900, stock: 100 }) { id } }",
            json!({}),
        )
        .await;
    let product = product["data"]["createProduct"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("a product: {product}"))
        .to_owned();
    let registered = deployment
        .graphql(
            None,
            "mutation($i: RegisterUserInput!) { registerUser(input: $i) { token } }",
            json!({ "i": { "name": "Dee", "email": format!("dee-{}@example.com", unique()), "password": "long enough pw" } }),
        )
        .await;
    let customer = registered["data"]["registerUser"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("a customer: {registered}"))
        .to_owned();
    let mut orders = vec![place_order(&deployment, &customer, &product).await];
    each_notified_once(&deployment, &customer, &orders).await;

    // A poison message: an order event whose payload no consumer can read. After its two
    // attempts it is a dead letter, and Prometheus' alert fires.
    let settings = Settings {
        amqp_url: Some(deployment.amqp_url.clone()),
        bus_prefix: deployment.prefix.clone(),
        ..Settings::default()
    };
    let bus = Bus::connect(&settings, &topology()).await.unwrap();
    let poison = unreadable_order(json!({ "not": "an order" }));
    bus.publish(std::slice::from_ref(&poison)).await.unwrap();
    let firing = eventually(
        Duration::from_secs(60),
        "HeraldDeadLetters firing in Prometheus",
        || async {
            let data = deployment
                .prometheus_api(
                    "query",
                    &[(
                        "query",
                        r#"ALERTS{alertname="HeraldDeadLetters",alertstate="firing"}"#,
                    )],
                )
                .await?;
            let result = data["result"].as_array()?.clone();
            (!result.is_empty()).then_some(result)
        },
    )
    .await;
    assert_eq!(
        firing[0]["metric"]["queue"], "notifications.critical",
        "{firing:?}"
    );
    eprintln!("HeraldDeadLetters fired after {:?}", began.elapsed());

    // Both notifications replicas take their share of the work.
    eventually(
        Duration::from_secs(30),
        "both notifications replicas to have consumed",
        || async {
            let data = deployment
                .prometheus_api(
                    "query",
                    &[(
                        "query",
                        r#"sum by (instance) (bus_consumed_total{job="herald-notifications"}) > 0"#,
                    )],
                )
                .await?;
            (data["result"].as_array()?.len() == 2).then_some(())
        },
    )
    .await;

    // Orders in flight while a replica of notifications and one of the scheduler crash,
    // and more after: each is notified, once.
    let in_flight =
        futures::future::join_all((0..5).map(|_| place_order(&deployment, &customer, &product)))
            .await;
    deployment.kill("notifications-2");
    deployment.kill("scheduler-2");
    orders.extend(in_flight);
    for _ in 0..5 {
        orders.push(place_order(&deployment, &customer, &product).await);
    }
    each_notified_once(&deployment, &customer, &orders).await;

    // Prometheus sees the two down, the others up.
    let killed: BTreeSet<(String, String)> = [
        ("herald-notifications", "notifications-2"),
        ("herald-scheduler", "scheduler-2"),
    ]
    .iter()
    .map(|(job, process)| ((*job).to_owned(), deployment.instance(process)))
    .collect();
    eventually(
        Duration::from_secs(30),
        "Prometheus to see the killed replicas down",
        || async {
            let targets = deployment.targets().await?;
            let down: BTreeSet<(String, String)> = targets
                .iter()
                .filter(|(_, _, health)| health == "down")
                .map(|(job, instance, _)| (job.clone(), instance.clone()))
                .collect();
            let up = targets
                .iter()
                .filter(|(_, _, health)| health == "up")
                .count();
            (down == killed && up == expected.len() - killed.len()).then_some(())
        },
    )
    .await;

    // Still once each, the first order included, now that redeliveries had their time.
    each_notified_once(&deployment, &customer, &orders).await;
    eprintln!("done after {:?}", began.elapsed());
    drop(bus);
    drop(deployment);
}
