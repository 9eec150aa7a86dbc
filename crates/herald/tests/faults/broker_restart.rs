use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use herald_test_support::{BackendSet, RABBITMQCTL, TestApp, backend_tests, eventually};
use serde_json::{Value, json};

backend_tests!(
    real only: a_broker_restart_during_1000_orders_loses_and_duplicates_nothing(
        needs = &[RABBITMQCTL]
    )
);

const ORDERS: usize = 1000;

fn rabbitmqctl(args: &[&str]) {
    let status = Command::new("rabbitmqctl")
        .args(args)
        .status()
        .expect("rabbitmqctl is installed with RabbitMQ");
    assert!(status.success(), "rabbitmqctl {args:?} failed");
}

/// Restart RabbitMQ while 1,000 orders are being placed: afterwards every order has
/// exactly one ORDER_UPDATE, none missing, none twice.
async fn a_broker_restart_during_1000_orders_loses_and_duplicates_nothing() {
    let app = TestApp::spawn(BackendSet::Real).await;
    let admin = app.admin().await;
    let created = app
        .graphql(
            Some(&admin.token),
            "mutation { createProduct(input: { name: \"Beans\", category: \"coffee\", priceCents: 100, stock: 100000 }) { id } }",
            json!({}),
        )
        .await;
    let product = created.data()["createProduct"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let buyer = app.customer("Steady").await;

    let place = |i: usize| {
        let (app, buyer, product) = (&app, &buyer, &product);
        async move {
            let response = app
                .graphql(
                    Some(&buyer.token),
                    "mutation($p: ID!) { placeOrder(input: { items: [{ productId: $p, quantity: 1 }] }) { id status } }",
                    json!({ "p": product }),
                )
                .await;
            assert_eq!(
                response.data()["placeOrder"]["status"],
                "CONFIRMED",
                "order {i}"
            );
            response.data()["placeOrder"]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };

    let started = Instant::now();
    let mut placed = HashSet::new();
    let mut restarted = false;
    for chunk in (0..ORDERS).collect::<Vec<_>>().chunks(20) {
        let ids = futures::future::join_all(chunk.iter().map(|i| place(*i))).await;
        placed.extend(ids);
        if !restarted && placed.len() >= ORDERS / 4 {
            // Down and up again while orders keep coming (they only need PostgreSQL; the
            // outbox holds their events until the broker is back).
            rabbitmqctl(&["stop_app"]);
            let during = futures::future::join_all((0..20).map(|i| place(10_000 + i))).await;
            placed.extend(during);
            rabbitmqctl(&["start_app"]);
            restarted = true;
        }
    }
    assert_eq!(placed.len(), ORDERS + 20);
    eprintln!(
        "placed {} orders in {:?} with a broker restart",
        placed.len(),
        started.elapsed()
    );

    let notified = eventually(
        Duration::from_secs(180),
        "one ORDER_UPDATE per order",
        || async {
            let ids = order_update_ids(&app, &buyer.token).await;
            (ids.len() >= placed.len()).then_some(ids)
        },
    )
    .await;
    // Give stragglers (duplicates) a moment to show up before counting exactly.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let notified = {
        let again = order_update_ids(&app, &buyer.token).await;
        assert_eq!(again.len(), notified.len());
        again
    };
    let unique: HashSet<&String> = notified.iter().collect();
    assert_eq!(notified.len(), placed.len(), "exactly one per order");
    assert_eq!(unique.len(), placed.len(), "no order notified twice");
    assert!(placed.iter().all(|id| unique.contains(id)), "none missing");
    eprintln!(
        "all {} ORDER_UPDATEs after {:?}",
        notified.len(),
        started.elapsed()
    );
    app.cleanup().await;
}

/// The order ids of every ORDER_UPDATE the user has.
async fn order_update_ids(app: &TestApp, token: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = app
            .graphql(
                Some(token),
                "query($after: String) { getNotifications(first: 100, after: $after) { nodes { type data } pageInfo { hasNextPage endCursor } } }",
                json!({ "after": after }),
            )
            .await;
        let page = &page.data()["getNotifications"];
        for node in page["nodes"].as_array().unwrap() {
            if node["type"] == "ORDER_UPDATE" {
                ids.push(node["data"]["orderId"].as_str().unwrap().to_owned());
            }
        }
        if page["pageInfo"]["hasNextPage"] != Value::Bool(true) {
            return ids;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
}
