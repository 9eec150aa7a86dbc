use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use herald_platform::testing::harness::program_missing;
use herald_test_support::{BackendSet, Need, TestApp, backend_tests};

backend_tests!(
    every bus: health_readiness_and_metrics,
    graphiql_is_served_offline;
    blocking: the_compose_stack_runs_and_scrapes_every_service,
    the_systemd_units_run_what_compose_runs,
    the_systemd_units_pass_systemd_analyze(needs = &[SYSTEMD_ANALYZE])
);

/// systemd's own checker of unit files, and the Prometheus the units run.
const SYSTEMD_ANALYZE: Need = Need {
    name: "systemd-analyze and prometheus",
    missing: || program_missing("systemd-analyze").or_else(|| program_missing("prometheus")),
};

async fn health_readiness_and_metrics(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let http = app.http();
    let health = http
        .get(format!("{}/health", app.gateway))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    let ready = http
        .get(format!("{}/ready", app.gateway))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    for check in ["users_database", "notifications_database", "bus", "cache"] {
        assert_eq!(ready["checks"][check], "up", "{ready}");
    }

    app.customer("Metric").await;
    let _ = http
        .get(format!("{}/no/such/page/123", app.gateway))
        .send()
        .await
        .unwrap();
    let metrics = http
        .get(format!("{}/metrics", app.gateway))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let requests: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("http_requests_total{"))
        .collect();
    assert!(
        requests.iter().any(|l| l.contains("route=\"/graphql\"")
            && l.contains("service=\"gateway\"")
            && l.contains("status=\"200\"")),
        "{metrics}"
    );
    // Route templates only: neither the raw unknown path nor an id shows up as a label.
    assert!(!metrics.contains("/no/such/page/123"), "{metrics}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("http_request_duration_seconds_bucket{")),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("graphql_operations_total{")
                && l.contains("field=\"registerUser\"")),
        "{metrics}"
    );
    app.cleanup().await;
}

async fn graphiql_is_served_offline(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let page = app
        .http()
        .get(format!("{}/graphql", app.gateway))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("/graphql/assets/graphiql.min.js"));
    assert!(!html.contains("https://"), "no external asset may load");
    for asset in [
        "graphiql.min.js",
        "graphiql.min.css",
        "react.production.min.js",
        "react-dom.production.min.js",
    ] {
        let response = app
            .http()
            .get(format!("{}/graphql/assets/{asset}", app.gateway))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        assert!(response.bytes().await.unwrap().len() > 1000, "{asset}");
    }
    app.cleanup().await;
}

/// The compose deployment runs every service `herald serve` knows, and Prometheus scrapes
/// each of them: a new service cannot be forgotten there.
fn the_compose_stack_runs_and_scrapes_every_service() {
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let compose = std::fs::read_to_string(deploy.join("docker-compose.yml")).unwrap();
    let prometheus = std::fs::read_to_string(deploy.join("prometheus/prometheus.yml")).unwrap();
    for service in herald::ServiceName::ALL {
        let name = service.as_str();
        assert!(
            compose.contains(&format!("command: [\"serve\", \"{name}\"]")),
            "docker-compose.yml runs no `herald serve {name}`"
        );
        assert!(
            prometheus.contains(&format!("job_name: herald-{name}")),
            "prometheus.yml does not scrape {name}"
        );
        if service != herald::ServiceName::Gateway {
            let env = name.to_uppercase();
            assert!(
                compose.contains(&format!("HERALD_{env}_URL: http://{name}:")),
                "docker-compose.yml does not tell the others where {name} is"
            );
        }
    }
}

/// `deploy/…` in the repository.
fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(deploy(path)).unwrap_or_else(|e| panic!("deploy/{path}: {e}"))
}

/// What compose runs of Herald: per service, its replicas and its own environment (the
/// shared `x-herald-env` under the name `*`).
struct Compose {
    replicas: BTreeMap<String, usize>,
    env: BTreeMap<String, BTreeMap<String, String>>,
}

/// `KEY: value` (compose) or `KEY=value` (an environment file) of a `HERALD_*` or
/// `RUST_LOG` setting; quotes removed.
fn setting(line: &str, separator: char) -> Option<(String, String)> {
    let (key, value) = line.trim().split_once(separator)?;
    let key = key.trim();
    (key.starts_with("HERALD_") || key == "RUST_LOG").then(|| {
        let value = value.trim().trim_matches(['"', '\'']);
        (key.to_owned(), value.to_owned())
    })
}

/// Reads docker-compose.yml line by line: blocks at two spaces of indentation under
/// `services:`, and the `x-herald-env` anchor.
fn compose() -> Compose {
    let text = read("docker-compose.yml");
    let mut compose = Compose {
        replicas: BTreeMap::new(),
        env: BTreeMap::new(),
    };
    let mut block: Option<String> = None;
    let mut in_services = false;
    for line in text.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() && !line.starts_with('#') {
            in_services = line.starts_with("services:");
            block = line.starts_with("x-herald-env:").then(|| "*".to_owned());
            continue;
        }
        if in_services
            && line.starts_with("  ")
            && !line.starts_with("   ")
            && !line.trim_start().starts_with('#')
        {
            block = line.trim().strip_suffix(':').map(str::to_owned);
            continue;
        }
        let Some(name) = &block else { continue };
        if let Some(service) = line.trim().strip_prefix("command: [\"serve\", \"") {
            // Each compose service is named after the Herald service it runs.
            assert_eq!(&service.trim_end_matches("\"]"), name);
            compose.replicas.entry(name.clone()).or_insert(1);
        } else if let Some(count) = line.trim().strip_prefix("replicas: ") {
            compose
                .replicas
                .insert(name.clone(), count.parse().expect("a replica count"));
        } else if let Some((key, value)) = setting(line, ':') {
            compose
                .env
                .entry(name.clone())
                .or_default()
                .insert(key, value);
        }
    }
    compose
}

/// The settings of an environment file of deploy/systemd/.
fn env_file(name: &str) -> BTreeMap<String, String> {
    read(&format!("systemd/{name}"))
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| setting(line, '='))
        .collect()
}

/// The port of an address or URL (`…:4101`, `http://users:4101`).
fn port(value: &str) -> u16 {
    value
        .rsplit(':')
        .next()
        .and_then(|port| port.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in {value}"))
}

/// A compose value as it reads on one host: the default of `${VAR:-default}`, and the
/// servers that compose finds by name on loopback.
fn on_one_host(value: &str) -> String {
    let value = match value.strip_prefix("${").and_then(|v| v.strip_suffix('}')) {
        Some(inner) => inner.split_once(":-").map_or(value, |(_, default)| default),
        None => value,
    };
    let mut value = value.to_owned();
    for host in ["postgres", "rabbitmq", "redis"] {
        value = value
            .replace(&format!("@{host}:"), "@127.0.0.1:")
            .replace(&format!("//{host}:"), "//127.0.0.1:");
    }
    value
}

/// The `Wants=` units of herald.target.
fn target_units() -> Vec<String> {
    read("systemd/herald.target")
        .lines()
        .filter_map(|line| line.trim().strip_prefix("Wants="))
        .flat_map(|units| units.split_whitespace().map(str::to_owned))
        .collect()
}

/// The systemd units describe the processes compose runs, with the same settings: the
/// same services and replicas, ports, `HERALD_*` names and values (hosts aside), and
/// Prometheus scraping each process under the same job names with the alert rules.
fn the_systemd_units_run_what_compose_runs() {
    let compose = compose();
    let shared = env_file("herald.env");

    // The same services, with as many replicas.
    let mut replicas: BTreeMap<String, usize> = BTreeMap::new();
    let mut ports: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
    for unit in target_units() {
        let unit = unit.strip_suffix(".service").expect("a service unit");
        if unit == "herald-prometheus" {
            continue;
        }
        let (template, instance) = unit.split_once('@').expect("a template's instance");
        let (service, own_env) = match template {
            "herald" => (instance.to_owned(), format!("{instance}.env")),
            _ => {
                let service = template.strip_prefix("herald-").expect("herald-<service>");
                (service.to_owned(), format!("{service}-{instance}.env"))
            }
        };
        let file = read(&format!("systemd/{template}@.service"));
        let serves = if template == "herald" {
            "ExecStart=/usr/local/bin/herald serve %i".to_owned()
        } else {
            format!("ExecStart=/usr/local/bin/herald serve {service}")
        };
        assert!(file.contains(&serves), "{template}@.service: no {serves}");
        *replicas.entry(service.clone()).or_default() += 1;
        let own = if deploy(&format!("systemd/{own_env}")).exists() {
            env_file(&own_env)
        } else {
            BTreeMap::new()
        };
        let addr_key = format!("HERALD_{}_ADDR", service.to_uppercase());
        let addr = own.get(&addr_key).or(shared.get(&addr_key)).unwrap();
        assert!(
            ports.entry(service).or_default().insert(port(addr)),
            "two processes of {unit}'s service on one port"
        );
    }
    assert_eq!(
        replicas, compose.replicas,
        "systemd (left) and compose (right)"
    );
    let all: BTreeSet<String> = herald::ServiceName::ALL
        .iter()
        .map(|s| s.as_str().to_owned())
        .collect();
    assert_eq!(replicas.keys().cloned().collect::<BTreeSet<_>>(), all);
    assert!(replicas["notifications"] >= 2 && replicas["scheduler"] >= 2);

    // The same settings: names, and values as they read on one host.
    let common = &compose.env["*"];
    assert_eq!(
        shared.keys().collect::<Vec<_>>(),
        common.keys().collect::<Vec<_>>(),
        "herald.env (left) and compose's x-herald-env (right)"
    );
    let service_urls: BTreeSet<String> = all
        .iter()
        .map(|service| format!("HERALD_{}_URL", service.to_uppercase()))
        .collect();
    for (key, value) in common {
        let ours = &shared[key];
        if key.ends_with("_ADDR") || service_urls.contains(key) {
            // Loopback where compose has a container's name or all interfaces.
            assert_eq!(port(ours), port(value), "{key}: {ours} and {value}");
        } else if key != "HERALD_SERVICE_KEY" {
            assert_eq!(ours, &on_one_host(value), "{key}");
        }
    }
    // Settings of one service alone (the admin account of users) are its own file's.
    for (block, env) in &compose.env {
        if block == "*" {
            continue;
        }
        let own: BTreeMap<String, String> = env
            .iter()
            .map(|(key, value)| (key.clone(), on_one_host(value)))
            .collect();
        assert_eq!(env_file(&format!("{block}.env")), own, "{block}");
    }
    // The first replica on compose's port, the others on ports of their own.
    for (service, ports) in &ports {
        let key = format!("HERALD_{}_ADDR", service.to_uppercase());
        assert!(
            ports.contains(&port(&common[&key])),
            "{service}: {ports:?} lacks compose's port"
        );
    }

    // Prometheus scrapes every process under compose's job names, with the alert rules.
    let prometheus = read("systemd/prometheus.yml");
    let jobs = |text: &str| -> BTreeSet<String> {
        text.lines()
            .filter_map(|line| line.trim().strip_prefix("- job_name: "))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(jobs(&prometheus), jobs(&read("prometheus/prometheus.yml")));
    assert!(prometheus.contains("rule_files:\n  - alerts.yml"));
    for (service, ports) in &ports {
        let job = prometheus
            .split("- job_name: ")
            .find(|job| job.starts_with(&format!("herald-{service}\n")))
            .unwrap_or_else(|| panic!("no job for {service}"));
        let targets = ports
            .iter()
            .map(|port| format!("\"127.0.0.1:{port}\""))
            .collect::<Vec<_>>()
            .join(", ");
        assert!(
            job.contains(&format!("targets: [{targets}]")),
            "herald-{service} does not scrape {targets}:\n{job}"
        );
    }

    // Each Herald unit restarts on failure, drains as compose lets it, and is hardened.
    for unit in [
        "herald@.service",
        "herald-notifications@.service",
        "herald-scheduler@.service",
        "herald-prometheus.service",
    ] {
        let file = read(&format!("systemd/{unit}"));
        for directive in [
            "Restart=on-failure",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "ReadWritePaths=",
            "User=",
            "WantedBy=herald.target",
        ] {
            assert!(file.contains(directive), "{unit} lacks {directive}");
        }
        if unit.starts_with("herald@") || unit.contains("@.service") {
            assert!(
                file.contains("EnvironmentFile=/etc/herald/herald.env")
                    && file.contains("TimeoutStopSec=30s"),
                "{unit}"
            );
        }
    }
    assert!(read("docker-compose.yml").contains("stop_grace_period: 30s"));
}

/// systemd's checker finds nothing to say of the units (each instance herald.target
/// starts), with the herald binary where ExecStart expects it.
fn the_systemd_units_pass_systemd_analyze() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_herald");
    let mut files = Vec::new();
    let mut write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text.replace("/usr/local/bin/herald", bin)).unwrap();
        files.push(path);
    };
    write("herald.target", read("systemd/herald.target"));
    for unit in target_units() {
        let template = match unit.split_once('@') {
            Some((template, _)) => format!("{template}@.service"),
            None => unit.clone(),
        };
        write(&unit, read(&format!("systemd/{template}")));
    }
    let output = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .args(&files)
        .env("SYSTEMD_LOG_LEVEL", "notice")
        .output()
        .unwrap();
    let said = herald_test_support::said(&output);
    assert!(
        output.status.success() && said.trim().is_empty(),
        "systemd-analyze verify said:\n{said}"
    );
}
