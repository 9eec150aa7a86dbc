use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use herald_test_support::kafka::{OwnBroker, TANSU};
use herald_test_support::{BackendSet, RABBITMQCTL, TestApp, backend_tests, eventually};
use serde_json::{Value, json};

backend_tests!(
    real only: a_broker_restart_during_1000_orders_loses_and_duplicates_nothing(
        needs = &[RABBITMQCTL]
    ),
    a_kafka_broker_restart_during_1000_orders_loses_and_duplicates_nothing(needs = &[TANSU])
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
    orders_survive_a_broker_restart(&app, &mut Broker::RabbitMq).await;
    app.cleanup().await;
}

/// The same on Kafka: a broker of the test's own (tansu, its data on disk) killed while
/// orders are placed and started again on the same data.
async fn a_kafka_broker_restart_during_1000_orders_loses_and_duplicates_nothing() {
    let broker = OwnBroker::start().await;
    let brokers = broker.brokers();
    let app = TestApp::spawn_with(BackendSet::Kafka, |settings| {
        settings.kafka_brokers = Some(brokers);
    })
    .await;
    orders_survive_a_broker_restart(&app, &mut Broker::Own(broker)).await;
    app.cleanup().await;
}

/// The broker a test stops and starts.
enum Broker {
    /// The shared local RabbitMQ, through rabbitmqctl.
    RabbitMq,
    /// A Kafka broker of the test's own.
    Own(OwnBroker),
}

impl Broker {
    async fn stop(&mut self) {
        match self {
            Broker::RabbitMq => rabbitmqctl(&["stop_app"]),
            Broker::Own(broker) => broker.kill(),
        }
    }

    async fn start(&mut self) {
        match self {
            Broker::RabbitMq => rabbitmqctl(&["start_app"]),
            Broker::Own(broker) => broker.start_again().await,
        }
    }
}

/// Places 1,000 orders, with the broker stopped and started again a quarter of the way in
/// and 20 more orders placed meanwhile; then every order has exactly one ORDER_UPDATE, none
/// missing, none twice.
async fn orders_survive_a_broker_restart(app: &TestApp, broker: &mut Broker) {
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
        let (buyer, product) = (&buyer, &product);
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
            broker.stop().await;
            let during = futures::future::join_all((0..20).map(|i| place(10_000 + i))).await;
            placed.extend(during);
            broker.start().await;
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
            let ids = order_update_ids(app, &buyer.token).await;
            (ids.len() >= placed.len()).then_some(ids)
        },
    )
    .await;
    // Give stragglers (duplicates) a moment to show up before counting exactly.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let notified = {
        let again = order_update_ids(app, &buyer.token).await;
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
