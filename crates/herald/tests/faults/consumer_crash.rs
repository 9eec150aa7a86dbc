use std::collections::HashSet;
use std::time::Duration;

use herald_test_support::cluster::Cluster;
use herald_test_support::{ADMIN_EMAIL, ADMIN_PASSWORD, BackendSet, backend_tests, eventually};
use serde_json::{Value, json};

const ORDERS: usize = 300;

backend_tests!(every bus: a_killed_consumer_leaves_no_duplicates);

/// Kill the process consuming notifications (SIGKILL, mid-stream: some effects are
/// committed and not yet acknowledged), start it again: every order still has exactly one
/// ORDER_UPDATE. Embedded: the whole one-process Herald dies; on RabbitMQ and Kafka: the
/// notifications service alone.
async fn a_killed_consumer_leaves_no_duplicates(set: BackendSet) {
    let mut cluster = Cluster::new(std::path::Path::new(env!("CARGO_BIN_EXE_herald")), set);
    let consumer = match set {
        BackendSet::Embedded => {
            cluster.start("all", &[]);
            "all"
        }
        BackendSet::Real | BackendSet::Kafka => {
            for service in ["users", "products", "orders", "recommendations", "gateway"] {
                cluster.start(service, &[service]);
            }
            cluster.start("notifications", &["notifications"]);
            "notifications"
        }
    };
    cluster.wait_ready().await;

    let admin = login(&cluster, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let product = cluster
        .graphql(
            Some(&admin),
            "mutation { createProduct(input: { name: \"Beans\", category: \"coffee\", priceCents: 100, stock: 100000 }) { id } }",
            json!({}),
        )
        .await["data"]["createProduct"]["id"]
        .as_str()
        .expect("a product")
        .to_owned();
    let registered = cluster
        .graphql(
            None,
            "mutation { registerUser(input: { name: \"Crash\", email: \"crash@example.com\", password: \"long enough\" }) { token } }",
            json!({}),
        )
        .await;
    let buyer = registered["data"]["registerUser"]["token"]
        .as_str()
        .expect("a token")
        .to_owned();

    let mut placed = HashSet::new();
    for chunk in 0..ORDERS / 20 {
        let orders = futures::future::join_all((0..20).map(|_| {
            cluster.graphql(
                Some(&buyer),
                "mutation($p: ID!) { placeOrder(input: { items: [{ productId: $p, quantity: 1 }] }) { id } }",
                json!({ "p": product }),
            )
        }))
        .await;
        for order in orders {
            placed.insert(
                order["data"]["placeOrder"]["id"]
                    .as_str()
                    .expect("an order")
                    .to_owned(),
            );
        }
        if chunk == 3 && set.on_servers() {
            // Some order updates are being handled right now.
            cluster.kill(consumer);
            cluster.start(consumer, &[consumer]);
        }
    }
    if set == BackendSet::Embedded {
        // The orders are placed; their events are being relayed and consumed.
        eventually(Duration::from_secs(30), "some order updates", || async {
            (order_update_ids(&cluster, &buyer).await.len() >= ORDERS / 10).then_some(())
        })
        .await;
        cluster.kill(consumer);
        cluster.start(consumer, &[]);
        cluster.wait_ready().await;
    }
    assert_eq!(placed.len(), ORDERS);

    let ids = eventually(
        Duration::from_secs(120),
        "one ORDER_UPDATE per order",
        || async {
            let ids = order_update_ids(&cluster, &buyer).await;
            (ids.len() >= ORDERS).then_some(ids)
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ids = {
        let again = order_update_ids(&cluster, &buyer).await;
        assert_eq!(again.len(), ids.len());
        again
    };
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), ORDERS, "exactly one per order after the crash");
    assert_eq!(unique.len(), ORDERS);
    assert!(placed.iter().all(|id| unique.contains(id)));
    cluster.cleanup().await;
}

async fn login(cluster: &Cluster, email: &str, password: &str) -> String {
    let response = cluster
        .graphql(
            None,
            "mutation($e: String!, $p: String!) { loginUser(input: { email: $e, password: $p }) { token } }",
            json!({ "e": email, "p": password }),
        )
        .await;
    response["data"]["loginUser"]["token"]
        .as_str()
        .expect("a token")
        .to_owned()
}

async fn order_update_ids(cluster: &Cluster, token: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = cluster
            .graphql(
                Some(token),
                "query($after: String) { getNotifications(first: 100, after: $after) { nodes { type data } pageInfo { hasNextPage endCursor } } }",
                json!({ "after": after }),
            )
            .await;
        // Polled for a while (on Kafka the restarted consumer first waits for its group),
        // the gateway's rate limit answers some polls: wait as it says and ask again.
        if page["errors"][0]["extensions"]["code"] == "RATE_LIMITED" {
            let wait = page["errors"][0]["extensions"]["retryAfter"]
                .as_u64()
                .unwrap_or(1);
            tokio::time::sleep(Duration::from_secs(wait)).await;
            continue;
        }
        let page = &page["data"]["getNotifications"];
        let Some(nodes) = page["nodes"].as_array() else {
            return ids;
        };
        for node in nodes {
            if node["type"] == "ORDER_UPDATE" {
                ids.push(
                    node["data"]["orderId"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                );
            }
        }
        if page["pageInfo"]["hasNextPage"] != Value::Bool(true) {
            return ids;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
}
