//! Herald as OS processes: each service its own, talking over HTTP and RabbitMQ; or all in
//! one, twice on one machine.

use std::time::Duration;

use herald_test_support::clients::{NODE, Script};
use herald_test_support::cluster::Cluster;
use herald_test_support::{
    ADMIN_EMAIL, ADMIN_PASSWORD, BackendSet, backend_tests, eventually, unique,
};
use serde_json::json;

backend_tests!(
    every bus: two_all_in_one_instances_share_a_machine;
    real only: services_run_as_separate_processes(needs = &[NODE]),
        an_order_is_followed_by_its_trace_id_across_processes
);

async fn services_run_as_separate_processes() {
    let mut cluster = Cluster::new(
        std::path::Path::new(env!("CARGO_BIN_EXE_herald")),
        BackendSet::Real,
    );
    // Started in the "wrong" order on purpose: each waits for what it needs.
    for service in [
        "gateway",
        "notifications",
        "recommendations",
        "orders",
        "products",
        "users",
    ] {
        cluster.start(service, &[service]);
    }
    cluster.wait_ready().await;

    let product = shop_round_trip(&cluster).await;
    live_pushes_reach_the_gateway(&cluster, &product).await;

    // SIGTERM stops a service gracefully and promptly.
    let status = cluster
        .terminate("gateway")
        .expect("the gateway was running");
    assert!(status.success(), "{status:?}");
    cluster.cleanup().await;
}

/// `herald serve`, all in one process, binds the gateway's port only: two instances run
/// side by side on one machine with the same (default) service addresses, each whole.
async fn two_all_in_one_instances_share_a_machine(set: BackendSet) {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_herald"));
    // Every service address the same port: one bound service would keep the next (and the
    // other instance) from starting.
    let shared = format!("127.0.0.1:{}", free_port());
    let mut instances = Vec::new();
    for name in ["first", "second"] {
        let mut cluster = Cluster::new(bin, set);
        for service in [
            "USERS",
            "PRODUCTS",
            "ORDERS",
            "RECOMMENDATIONS",
            "NOTIFICATIONS",
            "SCHEDULER",
        ] {
            cluster.set_env(&format!("HERALD_{service}_ADDR"), &shared);
        }
        cluster.start(name, &[]);
        instances.push(cluster);
    }
    for cluster in &instances {
        cluster.wait_ready().await;
    }
    for cluster in &instances {
        shop_round_trip(cluster).await;
    }
    assert!(
        std::net::TcpListener::bind(&shared).is_ok(),
        "no instance listens on a service port"
    );
    for cluster in instances {
        cluster.cleanup().await;
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A customer registers and hears the welcome, marks it read, and places an order that
/// crosses orders, products, the bus and notifications; the order's notification arrives.
/// Answers the id of the product, still in stock.
async fn shop_round_trip(cluster: &Cluster) -> String {
    let email = format!("sep-{}@example.com", unique());
    let registered = cluster
        .graphql(
            None,
            "mutation($i: RegisterUserInput!) { registerUser(input: $i) { token } }",
            json!({ "i": { "name": "Sep", "email": email, "password": "long enough pw" } }),
        )
        .await;
    let token = registered["data"]["registerUser"]["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    let id = eventually(
        Duration::from_secs(10),
        "the welcome notification",
        || async {
            let page = cluster
                .graphql(
                    Some(&token),
                    "{ getNotifications { nodes { id } } }",
                    json!({}),
                )
                .await;
            page["data"]["getNotifications"]["nodes"][0]["id"]
                .as_str()
                .map(str::to_owned)
        },
    )
    .await;
    let marked = cluster
        .graphql(
            Some(&token),
            "mutation($id: ID!) { markNotificationAsRead(id: $id) { read } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        marked["data"]["markNotificationAsRead"]["read"], true,
        "{marked}"
    );
    let count = cluster
        .graphql(Some(&token), "{ getUnreadNotificationsCount }", json!({}))
        .await;
    assert_eq!(count["data"]["getUnreadNotificationsCount"], 0);

    // An order crosses orders → products → bus → notifications, each its own process.
    let admin = cluster
        .graphql(
            None,
            "mutation($e: String!, $p: String!) { loginUser(input: { email: $e, password: $p }) { token } }",
            json!({ "e": ADMIN_EMAIL, "p": ADMIN_PASSWORD }),
        )
        .await;
    let admin = admin["data"]["loginUser"]["token"]
        .as_str()
        .expect("admin token")
        .to_owned();
    let product = cluster
        .graphql(
            Some(&admin),
            "mutation { createProduct(input: { name: \"Beans\", category: \"coffee\", priceCents: 900, stock: 30 }) { id } }",
            json!({}),
        )
        .await;
    let product = product["data"]["createProduct"]["id"]
        .as_str()
        .expect("product id")
        .to_owned();
    let order = cluster
        .graphql(
            Some(&token),
            "mutation($p: ID!) { placeOrder(input: { items: [{ productId: $p, quantity: 2 }] }) { status } }",
            json!({ "p": product }),
        )
        .await;
    assert_eq!(
        order["data"]["placeOrder"]["status"], "CONFIRMED",
        "{order}"
    );
    eventually(
        Duration::from_secs(10),
        "the order notification",
        || async {
            let page = cluster
                .graphql(
                    Some(&token),
                    "{ getNotifications { nodes { type } } }",
                    json!({}),
                )
                .await;
            let types = page["data"]["getNotifications"]["nodes"]
                .as_array()?
                .clone();
            types
                .iter()
                .any(|n| n["type"] == "ORDER_UPDATE")
                .then_some(())
        },
    )
    .await;
    product
}

/// A subscription at the gateway hears a count change made in the notifications service's
/// process (over Redis), with the npm `graphql-ws` client.
async fn live_pushes_reach_the_gateway(cluster: &Cluster, product: &str) {
    let email = format!("live-{}@example.com", unique());
    let registered = cluster
        .graphql(
            None,
            "mutation($i: RegisterUserInput!) { registerUser(input: $i) { token } }",
            json!({ "i": { "name": "Live", "email": email, "password": "long enough pw" } }),
        )
        .await;
    let token = registered["data"]["registerUser"]["token"]
        .as_str()
        .expect("a token")
        .to_owned();
    eventually(Duration::from_secs(10), "the welcome", || async {
        let count = cluster
            .graphql(Some(&token), "{ getUnreadNotificationsCount }", json!({}))
            .await;
        (count["data"]["getUnreadNotificationsCount"] == 1).then_some(())
    })
    .await;
    let ws = format!("{}/graphql", cluster.gateway().replacen("http", "ws", 1));
    let mut live = Script::start(
        "graphql-ws.mjs",
        &json!({ "url": ws, "token": token, "query": "subscription { unreadCountChanged }", "take": 2 }),
    );
    let wait = Duration::from_secs(20);
    assert_eq!(live.next_event(wait).await["event"], "connected");
    let first = live.next_event(wait).await;
    assert_eq!(first["result"]["data"]["unreadCountChanged"], 1, "{first}");
    let order = cluster
        .graphql(
            Some(&token),
            "mutation($p: ID!) { placeOrder(input: { items: [{ productId: $p, quantity: 1 }] }) { status } }",
            json!({ "p": product }),
        )
        .await;
    assert_eq!(
        order["data"]["placeOrder"]["status"], "CONFIRMED",
        "{order}"
    );
    let pushed = live.next_event(wait).await;
    let count = pushed["result"]["data"]["unreadCountChanged"]
        .as_i64()
        .unwrap_or_default();
    assert!(count > 1, "{pushed}");
}

/// One `placeOrder`, sent with a `traceparent`, followed by its trace id through the JSON
/// logs of every process that handled it: the gateway, orders, products (the stock it
/// reserved, over HTTP) and notifications (the event, over the bus).
async fn an_order_is_followed_by_its_trace_id_across_processes() {
    let mut cluster = Cluster::new(
        std::path::Path::new(env!("CARGO_BIN_EXE_herald")),
        BackendSet::Real,
    );
    cluster.keep_logs();
    cluster.set_env("RUST_LOG", "info,herald_platform=debug");
    let collector = Collector::start().await;
    cluster.set_env("HERALD_OTLP_ENDPOINT", &collector.url);
    for service in [
        "users",
        "products",
        "orders",
        "notifications",
        "recommendations",
        "gateway",
    ] {
        cluster.start(service, &[service]);
    }
    cluster.wait_ready().await;
    let admin = cluster
        .graphql(
            None,
            "mutation($i: LoginInput!) { loginUser(input: $i) { token } }",
            json!({ "i": { "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD } }),
        )
        .await;
    let admin = admin["data"]["loginUser"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let product = cluster
        .graphql(
            Some(&admin),
            "mutation { createProduct(input: {name: \"Kettle\", category: \"kitchen\", priceCents: 2500, stock: 5}) { id } }",
            json!({}),
        )
        .await;
    let product = product["data"]["createProduct"]["id"].clone();
    let buyer = cluster
        .graphql(
            None,
            "mutation($i: RegisterUserInput!) { registerUser(input: $i) { token } }",
            json!({ "i": { "name": "Tracy", "email": format!("tracy-{}@example.com", unique()), "password": "long enough pw" } }),
        )
        .await;
    let buyer = buyer["data"]["registerUser"]["token"]
        .as_str()
        .unwrap()
        .to_owned();

    let trace_id = format!("{:032x}", uuid::Uuid::new_v4().as_u128());
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let order = cluster
        .graphql_with(
            Some(&buyer),
            "mutation($id: ID!) { placeOrder(input: {items: [{productId: $id, quantity: 1}]}) { id } }",
            json!({ "id": product }),
            &[("traceparent", &traceparent)],
        )
        .await;
    assert!(order["data"]["placeOrder"]["id"].is_string(), "{order}");

    // Each process that handled it logged under the trace id, and only JSON.
    for process in ["gateway", "orders", "products", "notifications"] {
        let lines = eventually(
            Duration::from_secs(20),
            &format!("{process}'s log lines of the trace"),
            || async {
                let log = cluster.log(process);
                let lines: Vec<serde_json::Value> = log
                    .lines()
                    .filter(|line| line.contains(&trace_id))
                    .map(|line| serde_json::from_str(line).expect("a JSON log line"))
                    .collect();
                (!lines.is_empty()).then_some(lines)
            },
        )
        .await;
        for line in &lines {
            assert_eq!(line["span"]["trace_id"], trace_id, "{process}: {line}");
        }
        if process == "notifications" {
            assert!(
                lines.iter().any(|l| l["event_type"] == "order.confirmed"),
                "{lines:?}"
            );
        }
    }
    // Each process sent its hops as OpenTelemetry spans, linked parent to child: the
    // caller's span, the gateway's, the orders service's under it, the products service's
    // under that, and the notifications consumer's under the orders service's.
    let spans = eventually(
        Duration::from_secs(20),
        "the trace's spans at the collector",
        || async {
            let spans = collector.spans_of(&trace_id);
            let from = |service: &str| spans.iter().any(|(s, _)| s == service);
            [
                "herald-gateway",
                "herald-orders",
                "herald-products",
                "herald-notifications",
            ]
            .iter()
            .all(|service| from(service))
            .then_some(spans)
        },
    )
    .await;
    let span_of = |service: &str, name: &str| {
        spans
            .iter()
            .find(|(s, span)| s == service && span["name"].as_str().unwrap().starts_with(name))
            .unwrap_or_else(|| panic!("no {service} span {name}: {spans:?}"))
            .1
            .clone()
    };
    let gateway = span_of("herald-gateway", "gateway POST /graphql");
    assert_eq!(gateway["parentSpanId"], "00f067aa0ba902b7", "{gateway}");
    let orders = span_of("herald-orders", "orders POST /orders");
    assert_eq!(orders["parentSpanId"], gateway["spanId"], "{orders}");
    let stock = spans
        .iter()
        .filter(|(s, _)| s == "herald-products")
        .map(|(_, span)| span)
        .find(|span| span["parentSpanId"] == orders["spanId"]);
    assert!(
        stock.is_some(),
        "no products span under the order's: {spans:?}"
    );
    let consumed = span_of("herald-notifications", "event order.confirmed");
    assert_eq!(consumed["parentSpanId"], orders["spanId"], "{consumed}");
    assert_eq!(consumed["kind"], 5, "{consumed}");

    // Another request starts a trace of its own.
    let others = cluster.log("gateway");
    assert!(
        others
            .lines()
            .filter(|l| l.contains("\"answered\""))
            .count()
            > 1,
        "{others}"
    );
    cluster.cleanup().await;
}

/// An OpenTelemetry collector as far as the test needs one: it keeps what is posted to
/// `/v1/traces` (OTLP/HTTP, JSON).
struct Collector {
    url: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl Collector {
    async fn start() -> Collector {
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = received.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
                let kept = kept.clone();
                async move {
                    kept.lock().unwrap().push(body);
                    axum::Json(json!({}))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Collector { url, received }
    }

    /// The spans of `trace_id` received so far, with the service that sent each.
    fn spans_of(&self, trace_id: &str) -> Vec<(String, serde_json::Value)> {
        let received = self.received.lock().unwrap();
        let mut found = Vec::new();
        for request in received.iter() {
            for resource in request["resourceSpans"].as_array().into_iter().flatten() {
                let service = resource["resource"]["attributes"][0]["value"]["stringValue"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                    for span in scope["spans"].as_array().into_iter().flatten() {
                        if span["traceId"] == trace_id {
                            found.push((service.clone(), span.clone()));
                        }
                    }
                }
            }
        }
        found
    }
}
