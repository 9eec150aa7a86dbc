//! Every service's `/metrics` passes Prometheus' own lint (`promtool check metrics`):
//! every family has its `# HELP`, names follow the conventions.

use std::io::Write;
use std::process::{Command, Stdio};

use herald_test_support::{BackendSet, Need, TestApp, backend_tests};
use serde_json::json;

backend_tests!(every_metrics_page_passes_promtool(needs = &[PROMTOOL]));

/// Prometheus' promtool (apt-get install prometheus).
const PROMTOOL: Need = Need {
    name: "promtool",
    missing: || herald_platform::testing::harness::program_missing("promtool"),
};

async fn every_metrics_page_passes_promtool(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    // Some traffic, so that most families have samples: requests, a failed sign-in, an
    // order with its events and notifications.
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
        "{ getNotifications { totalCount } }",
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
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success() && said.trim().is_empty(),
            "[{set:?}] {service:?}: promtool check metrics said:\n{said}"
        );
    }
    app.cleanup().await;
}
