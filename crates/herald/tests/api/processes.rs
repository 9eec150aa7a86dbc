//! Each service as its own OS process, talking over HTTP and RabbitMQ.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use herald_test_support::{eventually, real_backends, unique};
use serde_json::{Value, json};

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn graphql(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Value {
    let mut request = client
        .post(url)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap().json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_run_as_separate_processes() {
    let Some(real) = real_backends() else { return };
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique();
    let (users, notifications, gateway) = (free_port(), free_port(), free_port());
    let (products, orders) = (free_port(), free_port());
    let spawn = |service: &str| {
        let child = Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(["serve", service])
            .env("HERALD_DATA_DIR", dir.path())
            .env("HERALD_DATABASE_URL", &real.database_url)
            .env("HERALD_AMQP_URL", &real.amqp_url)
            .env("HERALD_REDIS_URL", &real.redis_url)
            .env("HERALD_DATABASE_SCHEMA_PREFIX", format!("{prefix}_"))
            .env("HERALD_BUS_PREFIX", &prefix)
            .env("HERALD_CACHE_PREFIX", &prefix)
            .env("HERALD_USERS_ADDR", format!("127.0.0.1:{users}"))
            .env(
                "HERALD_NOTIFICATIONS_ADDR",
                format!("127.0.0.1:{notifications}"),
            )
            .env("HERALD_GATEWAY_ADDR", format!("127.0.0.1:{gateway}"))
            .env("HERALD_PRODUCTS_ADDR", format!("127.0.0.1:{products}"))
            .env("HERALD_ORDERS_ADDR", format!("127.0.0.1:{orders}"))
            .env("HERALD_ADMIN_EMAIL", "admin@processes.test")
            .env("HERALD_ADMIN_PASSWORD", "admin password")
            .env("HERALD_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .expect("starting herald");
        Process(child)
    };
    // Started in the "wrong" order on purpose: each waits for what it needs.
    let mut gateway_process = spawn("gateway");
    let _notifications_process = spawn("notifications");
    let _orders_process = spawn("orders");
    let _products_process = spawn("products");
    let _users_process = spawn("users");

    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{gateway}");
    eventually(
        Duration::from_secs(60),
        "the gateway to be ready",
        || async {
            let response = client.get(format!("{base}/ready")).send().await.ok()?;
            (response.status() == 200).then_some(())
        },
    )
    .await;

    let url = format!("{base}/graphql");
    let email = format!("sep-{}@example.com", unique());
    let registered = graphql(
        &client,
        &url,
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
            let page = graphql(
                &client,
                &url,
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
    let marked = graphql(
        &client,
        &url,
        Some(&token),
        "mutation($id: ID!) { markNotificationAsRead(id: $id) { read } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(
        marked["data"]["markNotificationAsRead"]["read"], true,
        "{marked}"
    );
    let count = graphql(
        &client,
        &url,
        Some(&token),
        "{ getUnreadNotificationsCount }",
        json!({}),
    )
    .await;
    assert_eq!(count["data"]["getUnreadNotificationsCount"], 0);

    // An order crosses orders → products → bus → notifications, each its own process.
    let admin = graphql(
        &client,
        &url,
        None,
        "mutation { loginUser(input: { email: \"admin@processes.test\", password: \"admin password\" }) { token } }",
        json!({}),
    )
    .await;
    let admin = admin["data"]["loginUser"]["token"]
        .as_str()
        .expect("admin token")
        .to_owned();
    let product = graphql(
        &client,
        &url,
        Some(&admin),
        "mutation { createProduct(input: { name: \"Beans\", category: \"coffee\", priceCents: 900, stock: 3 }) { id } }",
        json!({}),
    )
    .await;
    let product = product["data"]["createProduct"]["id"]
        .as_str()
        .expect("product id")
        .to_owned();
    let order = graphql(
        &client,
        &url,
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
            let page = graphql(
                &client,
                &url,
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

    // SIGTERM stops a service gracefully and promptly.
    let pid = gateway_process.0.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let status = eventually(Duration::from_secs(25), "the gateway to exit", || {
        let status = gateway_process.0.try_wait().unwrap();
        async move { status }
    })
    .await;
    assert!(status.success(), "{status:?}");
    drop(gateway_process);

    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&real.database_url).await.unwrap();
    for service in ["users", "notifications", "products", "orders"] {
        sqlx::query(&format!(
            "DROP SCHEMA IF EXISTS \"{prefix}_{service}\" CASCADE"
        ))
        .execute(&pool)
        .await
        .unwrap();
    }
    let bus = herald_platform::bus::RabbitBus::connect(&real.amqp_url, &prefix)
        .await
        .unwrap();
    bus.delete_topology(&herald_platform::bus::topology())
        .await
        .unwrap();
}
