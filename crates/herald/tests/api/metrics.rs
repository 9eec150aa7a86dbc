//! Every service's `/metrics` passes Prometheus' own lint (`promtool check metrics`):
//! every family has its `# HELP`, names follow the conventions. The alert rules pass their
//! unit tests, and every query of the alerts and of Grafana's dashboard parses and names
//! metrics a running Herald exports.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use herald_test_support::{BackendSet, Need, TestApp, backend_tests};
use serde_json::{Value, json};

backend_tests!(
    every bus: every_metrics_page_passes_promtool(needs = &[PROMTOOL]),
    the_dashboard_and_the_alerts_query_exported_metrics(needs = &[PROMTOOL]);
    blocking: the_alert_rules_pass_their_unit_tests(needs = &[PROMTOOL]),
    metric_names_are_read_from_promql
);

/// Prometheus' promtool (apt-get install prometheus).
const PROMTOOL: Need = Need {
    name: "promtool",
    missing: || herald_platform::testing::harness::program_missing("promtool"),
};

/// Some traffic, so that most families have samples: requests, a failed sign-in, an order
/// with its events and notifications, an unknown method on every port.
async fn traffic(app: &TestApp) {
    let admin = app.admin().await;
    let ada = app.customer("Ada").await;
    app.login("nobody@example.com", "wrong password").await;
    let product = app
        .graphql(
            Some(&admin.token),
            "mutation { createProduct(input: {name: \"Tea\", category: \"tea\", priceCents: 900, stock: 3}) { id } }",
            json!({}),
        )
        .await;
    let id = product.data()["createProduct"]["id"].clone();
    app.graphql(
        Some(&ada.token),
        "mutation($id: ID!) { placeOrder(input: {items: [{productId: $id, quantity: 1}]}) { id } }",
        json!({ "id": id }),
    )
    .await
    .data();
    app.graphql(
        Some(&ada.token),
        "{ getNotifications { totalCount } getUnreadNotificationsCount getRecommendations { score } }",
        json!({}),
    )
    .await
    .data();
    // Methods are free text: an invented one is labelled OTHER, not by its name.
    for (_, url) in &app.services {
        let brew = app
            .http()
            .request(
                reqwest::Method::from_bytes(b"BREW").unwrap(),
                format!("{url}/health"),
            )
            .send()
            .await
            .unwrap();
        assert!(brew.status().is_client_error(), "{}", brew.status());
    }
}

/// Every service's `/metrics` page.
async fn pages(app: &TestApp) -> Vec<(herald::ServiceName, String)> {
    let mut pages = Vec::new();
    for (service, url) in &app.services {
        let page = app
            .http()
            .get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        pages.push((*service, page));
    }
    pages
}

async fn every_metrics_page_passes_promtool(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    traffic(&app).await;
    for (service, page) in pages(&app).await {
        assert!(page.contains("# HELP"), "{service:?}: {page}");
        assert!(!page.contains("BREW"), "{service:?}: {page}");
        assert!(page.contains(r#"method="OTHER""#), "{service:?}");
        let mut check = Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        check
            .stdin
            .take()
            .unwrap()
            .write_all(page.as_bytes())
            .unwrap();
        let output = check.wait_with_output().unwrap();
        let said = herald_test_support::said(&output);
        assert!(
            output.status.success() && said.trim().is_empty(),
            "[{set:?}] {service:?}: promtool check metrics said:\n{said}"
        );
    }
    app.cleanup().await;
}

/// `deploy/…` in the repository.
fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(path)
}

/// Runs promtool with `args` in `dir`; what it said, or a panic saying it.
fn promtool(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let said = herald_test_support::said(&output);
    assert!(output.status.success(), "promtool {args:?} said:\n{said}");
    said
}

/// The names after `key: ` on the lines of a YAML file.
fn yaml_values<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    let key = format!("{key}:");
    text.lines()
        .filter_map(|line| {
            line.trim()
                .trim_start_matches("- ")
                .strip_prefix(key.as_str())
        })
        .map(str::trim)
        .collect()
}

fn the_alert_rules_pass_their_unit_tests() {
    let dir = deploy("prometheus");
    promtool(&dir, &["check", "rules", "alerts.yml"]);
    let said = promtool(&dir, &["test", "rules", "alerts.test.yml"]);
    assert!(said.contains("SUCCESS"), "{said}");
    // Every alert is tested firing, and has its runbook line.
    let rules = std::fs::read_to_string(dir.join("alerts.yml")).unwrap();
    let tests = std::fs::read_to_string(dir.join("alerts.test.yml")).unwrap();
    let runbook = std::fs::read_to_string(deploy("../docs/operations.md")).unwrap();
    let alerts = yaml_values(&rules, "alert");
    assert!(alerts.len() >= 8, "{alerts:?}");
    for alert in alerts {
        let firing = tests
            .split("alertname: ")
            .skip(1)
            .filter(|case| case.starts_with(alert))
            .any(|case| case.contains("exp_labels"));
        assert!(firing, "alerts.test.yml never sees {alert} fire");
        assert!(
            runbook.contains(&format!("`{alert}`")),
            "docs/operations.md has no runbook line for {alert}"
        );
    }
}

/// The metric names a PromQL expression reads (functions, keywords, labels, strings and
/// durations left out).
fn metric_names(expr: &str) -> BTreeSet<String> {
    const KEYWORDS: &[&str] = &[
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "offset",
        "bool",
        // Aggregations may put their `by (…)` before their `(`.
        "sum",
        "min",
        "max",
        "avg",
        "count",
        "group",
        "stddev",
        "stdvar",
        "topk",
        "bottomk",
        "quantile",
        "count_values",
    ];
    // Strings, label matchers, ranges and groupings hold no metric names.
    let mut plain = String::new();
    let mut closing: Vec<char> = Vec::new();
    let mut in_string = false;
    let mut last_word = String::new();
    let mut word_ended = false;
    for c in expr.chars() {
        if in_string {
            in_string = c != '"';
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => closing.push('}'),
            '[' => closing.push(']'),
            '(' if !closing.is_empty() => closing.push(')'),
            '(' if matches!(last_word.as_str(), "by" | "without" | "on" | "ignoring") => {
                closing.push(')')
            }
            c if closing.last() == Some(&c) => {
                closing.pop();
            }
            _ if !closing.is_empty() => {}
            c => plain.push(c),
        }
        // The word before a `(` (spaces between allowed): `by (…)` is a grouping.
        if c.is_alphanumeric() || c == '_' || c == ':' {
            if word_ended {
                last_word.clear();
                word_ended = false;
            }
            last_word.push(c);
        } else if c.is_whitespace() {
            word_ended = true;
        } else {
            last_word.clear();
        }
    }
    let mut names = BTreeSet::new();
    let mut rest = plain.as_str();
    while let Some(start) = rest.find(|c: char| c.is_ascii_alphabetic() || c == '_') {
        let word_len = rest[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len() - start);
        let word = &rest[start..start + word_len];
        let after = rest[start + word_len..].trim_start();
        let preceded_by_digit = rest[..start].ends_with(|c: char| c.is_ascii_digit() || c == '.');
        if !after.starts_with('(') && !KEYWORDS.contains(&word) && !preceded_by_digit {
            names.insert(word.to_owned());
        }
        rest = &rest[start + word_len..];
    }
    names
}

/// Each alert of a rules file with its expression (on one line, or a `|` block).
fn alert_exprs(rules: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut alert = String::new();
    let mut lines = rules.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if let Some(name) = trimmed.strip_prefix("- alert:") {
            alert = name.trim().to_owned();
        } else if let Some(expr) = trimmed.strip_prefix("expr:") {
            let mut expr = expr.trim().to_owned();
            if expr == "|" {
                let indent = line.len() - trimmed.len();
                expr.clear();
                while let Some(next) = lines.next_if(|next| {
                    next.len() - next.trim_start().len() > indent || next.trim().is_empty()
                }) {
                    expr.push_str(next.trim());
                    expr.push(' ');
                }
            }
            found.push((alert.clone(), expr.trim().to_owned()));
        }
    }
    found
}

/// Grafana's dashboard's queries, its variables given values Prometheus can parse.
fn dashboard_queries() -> Vec<(String, String)> {
    fn walk(panels: &Value, found: &mut Vec<(String, String)>) {
        for panel in panels.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or_default();
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    let expr = expr
                        .replace("$__rate_interval", "1m")
                        .replace("$__range", "1h")
                        .replace("$__interval", "1m")
                        .replace("$service", ".*");
                    found.push((title.to_owned(), expr));
                }
            }
            walk(&panel["panels"], found);
        }
    }
    let text = std::fs::read_to_string(deploy("grafana/dashboards/herald.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let mut found = Vec::new();
    walk(&dashboard["panels"], &mut found);
    found
}

async fn the_dashboard_and_the_alerts_query_exported_metrics(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    traffic(&app).await;
    let mut exported = BTreeSet::new();
    for (_, page) in pages(&app).await {
        for line in page.lines() {
            if let Some(family) = line.strip_prefix("# TYPE ") {
                exported.insert(family.split(' ').next().unwrap().to_owned());
            }
        }
    }
    let reads = |name: &str| {
        exported.contains(name)
            || ["_bucket", "_count", "_sum"].iter().any(|suffix| {
                name.strip_suffix(suffix)
                    .is_some_and(|family| exported.contains(family))
            })
    };
    let mut queries = dashboard_queries();
    assert!(queries.len() > 20, "{queries:?}");
    let rules = std::fs::read_to_string(deploy("prometheus/alerts.yml")).unwrap();
    queries.extend(alert_exprs(&rules));
    let mut unknown = Vec::new();
    for (title, expr) in &queries {
        for name in metric_names(expr) {
            // Prometheus' own `up`, and RabbitMQ's exporter.
            if name == "up" || name.starts_with("rabbitmq_") || name == "vector" {
                continue;
            }
            if !reads(&name) {
                unknown.push(format!("{title}: {name} in {expr}"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "[{set:?}] queries read metrics Herald does not export:\n{}",
        unknown.join("\n")
    );
    // Every query parses: promtool checks them as recording rules.
    let dir = tempfile::tempdir().unwrap();
    let mut file = String::from("groups:\n  - name: queries\n    rules:\n");
    for (i, (_, expr)) in queries.iter().enumerate() {
        file.push_str(&format!(
            "      - record: query_{i}\n        expr: {}\n",
            serde_json::to_string(expr).unwrap()
        ));
    }
    std::fs::write(dir.path().join("queries.yml"), file).unwrap();
    promtool(dir.path(), &["check", "rules", "queries.yml"]);
    app.cleanup().await;
}

fn metric_names_are_read_from_promql() {
    let names = metric_names(
        r#"histogram_quantile(0.95, sum by (service, le) (rate(http_request_duration_seconds_bucket{service=~"a|b", x="y(z)"}[5m]))) / on (job) group_left up and bus_queue_depth offset 5m > 1e3"#,
    );
    let expected: BTreeSet<String> = [
        "http_request_duration_seconds_bucket",
        "up",
        "bus_queue_depth",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(names, expected);
    let rules = "      - alert: A\n        expr: |\n          sum(x)\n            / sum(y)\n        for: 5m\n      - alert: B\n        expr: up == 0\n";
    assert_eq!(
        alert_exprs(rules),
        [
            ("A".to_owned(), "sum(x) / sum(y)".to_owned()),
            ("B".to_owned(), "up == 0".to_owned())
        ]
    );
}
