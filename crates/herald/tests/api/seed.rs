//! `herald seed` against a running Herald.

use herald_test_support::{ADMIN_EMAIL, ADMIN_PASSWORD, BackendSet, TestApp, backend_tests};
use serde_json::json;

backend_tests!(every bus: seed_fills_a_running_shop_through_the_api);

async fn seed(app: &TestApp, password: &str) -> std::process::Output {
    let gateway = app.gateway.clone();
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(["seed", "--users", "30", "--registered", "4"])
            .args(["--products", "8", "--orders", "10"])
            .args(["--url", &gateway, "--admin-email", ADMIN_EMAIL])
            .args(["--admin-password", &password])
            .env("HERALD_DATA_DIR", dir.path())
            .output()
            .expect("running herald seed")
    })
    .await
    .unwrap()
}

async fn seed_fills_a_running_shop_through_the_api(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let output = seed(&app, ADMIN_PASSWORD).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.trim(),
        "30 users, 8 products, 10 orders (0 refused for want of stock)"
    );
    let products = app
        .graphql(
            None,
            "{ products(first: 50) { totalCount nodes { category stock } } }",
            json!({}),
        )
        .await;
    let products = &products.data()["products"];
    assert_eq!(products["totalCount"], 8);
    let sold: i64 = products["nodes"]
        .as_array()
        .unwrap()
        .iter()
        // Each product starts with 50 + 3 × orders / products = 53.
        .map(|p| 53 - p["stock"].as_i64().unwrap())
        .sum();
    assert!(
        (10..=30).contains(&sold),
        "10 orders of 1 to 3 lines: {sold} sold"
    );

    // 4 registered with a password, the other 26 imported in bulk.
    let imported = app
        .metric(herald::ServiceName::Users, "users_imported_total", "")
        .await;
    assert_eq!(imported, 26.0);

    let refused = seed(&app, "wrong password").await;
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.starts_with("error: signing in as the admin"), "{err}");
    app.cleanup().await;
}
