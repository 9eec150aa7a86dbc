use herald_test_support::{BackendSet, TestApp, backend_tests};

backend_tests!(
    health_readiness_and_metrics,
    graphiql_is_served_offline;
    blocking: the_compose_stack_runs_and_scrapes_every_service
);

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
