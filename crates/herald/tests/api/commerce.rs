//! The shop: products, stock, orders, and the notifications they drive.

use std::time::{Duration, Instant};

use herald::ServiceName;
use herald_test_support::{BackendSet, Session, TestApp, backend_tests, eventually};
use serde_json::{Value, json};

backend_tests!(
    every bus: an_order_is_confirmed_shipped_and_delivered_with_a_notification_each_step,
    order_updates_off_means_no_order_notifications,
    watchers_hear_once_when_a_product_is_back_in_stock_or_cheaper,
    admins_hear_of_low_and_out_of_stock,
    concurrent_orders_never_oversell,
    cancelling_twice_releases_stock_once,
    bad_commerce_input_gets_clear_errors,
    catalog_lists_filters_and_searches,
    order_items_resolve_their_products_in_one_batch,
    admins_list_every_customers_orders_newest_first,
);

const CREATE_PRODUCT: &str = "mutation($input: ProductInput!) { createProduct(input: $input) { id name category priceCents currency stock } }";
const PLACE_ORDER: &str = "mutation($input: PlaceOrderInput!) {
  placeOrder(input: $input) { id status totalCents currency items { quantity unitPriceCents product { id name } } }
}";
const SET_STOCK: &str =
    "mutation($id: ID!, $stock: Int!) { setStock(productId: $id, stock: $stock) { id stock } }";
const UPDATE_STATUS: &str = "mutation($id: ID!, $status: OrderStatus!) { updateOrderStatus(id: $id, status: $status) { id status } }";

async fn create_product(
    app: &TestApp,
    admin: &Session,
    name: &str,
    category: &str,
    price: i64,
    stock: i64,
) -> String {
    let input = json!({ "input": { "name": name, "category": category, "priceCents": price, "stock": stock } });
    let response = app.graphql(Some(&admin.token), CREATE_PRODUCT, input).await;
    response.data()["createProduct"]["id"]
        .as_str()
        .expect("a product id")
        .to_owned()
}

async fn place_order(
    app: &TestApp,
    buyer: &Session,
    lines: &[(&str, i64)],
) -> herald_test_support::Gql {
    let items: Vec<Value> = lines
        .iter()
        .map(|(id, q)| json!({ "productId": id, "quantity": q }))
        .collect();
    app.graphql(
        Some(&buyer.token),
        PLACE_ORDER,
        json!({ "input": { "items": items } }),
    )
    .await
}

async fn stock_of(app: &TestApp, id: &str) -> i64 {
    let response = app
        .graphql(
            None,
            "query($id: ID!) { product(id: $id) { stock } }",
            json!({ "id": id }),
        )
        .await;
    response.data()["product"]["stock"].as_i64().expect("stock")
}

/// The caller's notifications of one type, oldest first.
async fn notifications_of_type(app: &TestApp, who: &Session, kind: &str) -> Vec<Value> {
    let response = app
        .graphql(
            Some(&who.token),
            "{ getNotifications(first: 100) { nodes { type priority title body data read } } }",
            json!({}),
        )
        .await;
    let mut nodes: Vec<Value> = response.data()["getNotifications"]["nodes"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n["type"] == kind)
        .collect();
    nodes.reverse();
    nodes
}

async fn wait_for_count(app: &TestApp, who: &Session, kind: &str, count: usize) -> Vec<Value> {
    eventually(
        Duration::from_secs(10),
        &format!("{count} {kind} notifications"),
        || async {
            let found = notifications_of_type(app, who, kind).await;
            (found.len() >= count).then_some(found)
        },
    )
    .await
}

async fn an_order_is_confirmed_shipped_and_delivered_with_a_notification_each_step(
    set: BackendSet,
) {
    let app = TestApp::spawn(set).await;
    let admin = app.admin().await;
    let beans = create_product(&app, &admin, "Espresso Beans", "coffee", 1250, 10).await;
    let grinder = create_product(&app, &admin, "Burr Grinder", "coffee", 8900, 3).await;
    let buyer = app.customer("Buyer").await;

    let started = Instant::now();
    let placed = place_order(&app, &buyer, &[(&beans, 2), (&grinder, 1)]).await;
    let order = placed.data()["placeOrder"].clone();
    assert_eq!(order["status"], "CONFIRMED");
    assert_eq!(
        order["totalCents"],
        2 * 1250 + 8900,
        "prices come from the catalog"
    );
    assert_eq!(order["items"][0]["product"]["name"], "Espresso Beans");
    let confirmed = wait_for_count(&app, &buyer, "ORDER_UPDATE", 1).await;
    eprintln!(
        "[{set:?}] ORDER_UPDATE visible {:?} after placeOrder was sent",
        started.elapsed()
    );
    assert_eq!(confirmed[0]["priority"], "CRITICAL");
    assert_eq!(confirmed[0]["data"]["orderId"], order["id"]);
    assert!(
        confirmed[0]["title"]
            .as_str()
            .unwrap()
            .contains("confirmed"),
        "{}",
        confirmed[0]
    );
    assert_eq!(stock_of(&app, &beans).await, 8);
    assert_eq!(stock_of(&app, &grinder).await, 2);

    for (status, word) in [("SHIPPED", "shipped"), ("DELIVERED", "delivered")] {
        let changed = app
            .graphql(
                Some(&admin.token),
                UPDATE_STATUS,
                json!({ "id": order["id"], "status": status }),
            )
            .await;
        assert_eq!(changed.data()["updateOrderStatus"]["status"], status);
        let notes = wait_for_count(
            &app,
            &buyer,
            "ORDER_UPDATE",
            if status == "SHIPPED" { 2 } else { 3 },
        )
        .await;
        let last = notes.last().unwrap();
        assert!(last["title"].as_str().unwrap().contains(word), "{last}");
    }

    let mine = app
        .graphql(Some(&buyer.token), "{ myOrders { id status } }", json!({}))
        .await;
    assert_eq!(
        mine.data()["myOrders"],
        json!([{ "id": order["id"], "status": "DELIVERED" }])
    );
    // Delivered orders cannot go back or be cancelled.
    let back = app
        .graphql(
            Some(&admin.token),
            UPDATE_STATUS,
            json!({ "id": order["id"], "status": "SHIPPED" }),
        )
        .await;
    assert_eq!(back.error_code(), Some("BAD_USER_INPUT"));
    let cancel = app
        .graphql(
            Some(&buyer.token),
            "mutation($id: ID!) { cancelOrder(id: $id) { status } }",
            json!({ "id": order["id"] }),
        )
        .await;
    assert_eq!(cancel.error_code(), Some("BAD_USER_INPUT"));

    // Someone else sees nothing of it.
    let other = app.customer("Other").await;
    let peek = app
        .graphql(
            Some(&other.token),
            "query($id: ID!) { order(id: $id) { id } }",
            json!({ "id": order["id"] }),
        )
        .await;
    assert_eq!(peek.data()["order"], Value::Null);
    let seen_by_admin = app
        .graphql(
            Some(&admin.token),
            "query($id: ID!) { order(id: $id) { id } }",
            json!({ "id": order["id"] }),
        )
        .await;
    assert_eq!(seen_by_admin.data()["order"]["id"], order["id"]);
    app.cleanup().await;
}

async fn order_updates_off_means_no_order_notifications(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let admin = app.admin().await;
    let tea = create_product(&app, &admin, "Green Tea", "tea", 500, 10).await;
    let quiet = app.customer("Quiet").await;
    let off = app
        .graphql(
            Some(&quiet.token),
            "mutation { updateUserPreferences(input: { orderUpdates: false }) { id } }",
            json!({}),
        )
        .await;
    off.data();
    // The preference reaches the notifications service as an event, independently of the
    // order's events: order once it has, as a person would a moment later.
    app.wait_for_rows(
        ServiceName::Notifications,
        "Quiet's preference in the notifications service",
        "SELECT COUNT(*) FROM recipients WHERE user_id = $1 AND NOT order_updates",
        &[&quiet.user_id],
        1,
    )
    .await;
    let placed = place_order(&app, &quiet, &[(&tea, 1)]).await;
    let id = placed.data()["placeOrder"]["id"].clone();
    app.graphql(
        Some(&admin.token),
        UPDATE_STATUS,
        json!({ "id": id, "status": "SHIPPED" }),
    )
    .await
    .data();
    let reference = app.customer("Reference").await;
    place_order(&app, &reference, &[(&tea, 1)]).await.data();
    wait_for_count(&app, &reference, "ORDER_UPDATE", 1).await;
    // Both of Quiet's order updates are decided, and suppressed.
    app.wait_for_rows(
        ServiceName::Notifications,
        "Quiet's order updates decided",
        "SELECT COUNT(*) FROM notification_decisions \
         WHERE user_id = $1 AND type = 'ORDER_UPDATE' AND outcome = 'SUPPRESSED'",
        &[&quiet.user_id],
        2,
    )
    .await;
    assert!(
        notifications_of_type(&app, &quiet, "ORDER_UPDATE")
            .await
            .is_empty()
    );
    app.cleanup().await;
}

async fn watchers_hear_once_when_a_product_is_back_in_stock_or_cheaper(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let admin = app.admin().await;
    let kettle = create_product(&app, &admin, "Gooseneck Kettle", "coffee", 6000, 0).await;
    let watcher = app.customer("Watcher").await;
    let unwatched = app.customer("Unwatched").await;
    for _ in 0..2 {
        let watch = app
            .graphql(
                Some(&watcher.token),
                "mutation($id: ID!) { watchProduct(productId: $id) }",
                json!({ "id": kettle }),
            )
            .await;
        assert_eq!(watch.data()["watchProduct"], true);
    }
    // The watch reaches the notifications service as an event.
    app.wait_for_rows(
        ServiceName::Notifications,
        "the watch in the notifications service",
        "SELECT COUNT(*) FROM watches WHERE product_id = $1 AND user_id = $2",
        &[&kettle, &watcher.user_id],
        1,
    )
    .await;

    app.graphql(
        Some(&admin.token),
        SET_STOCK,
        json!({ "id": kettle, "stock": 5 }),
    )
    .await
    .data();
    let told = wait_for_count(&app, &watcher, "INVENTORY", 1).await;
    assert!(
        told[0]["title"].as_str().unwrap().contains("back in stock"),
        "{}",
        told[0]
    );
    assert_eq!(told[0]["priority"], "STANDARD");
    assert_eq!(told[0]["data"]["productId"], kettle.as_str());

    // A restock while in stock is not "back in stock"; a price rise tells nobody; a drop does.
    app.graphql(
        Some(&admin.token),
        SET_STOCK,
        json!({ "id": kettle, "stock": 50 }),
    )
    .await
    .data();
    let update = "mutation($id: ID!, $p: Int!) { updateProduct(id: $id, input: { priceCents: $p }) { priceCents } }";
    app.graphql(
        Some(&admin.token),
        update,
        json!({ "id": kettle, "p": 7000 }),
    )
    .await
    .data();
    app.graphql(
        Some(&admin.token),
        update,
        json!({ "id": kettle, "p": 5500 }),
    )
    .await
    .data();
    let both = wait_for_count(&app, &watcher, "INVENTORY", 2).await;
    assert!(
        both[1]["title"].as_str().unwrap().contains("55.00"),
        "{}",
        both[1]
    );
    // What is checked here is an absence: no third alert within half a second.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        notifications_of_type(&app, &watcher, "INVENTORY")
            .await
            .len(),
        2,
        "exactly once each"
    );
    assert!(
        notifications_of_type(&app, &unwatched, "INVENTORY")
            .await
            .is_empty()
    );
    app.cleanup().await;
}

async fn admins_hear_of_low_and_out_of_stock(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let admin = app.admin().await;
    let mugs = create_product(&app, &admin, "Mug", "kitchen", 900, 7).await;
    let buyer = app.customer("Mugger").await;
    place_order(&app, &buyer, &[(&mugs, 3)]).await.data(); // 7 → 4: low (threshold 5)
    place_order(&app, &buyer, &[(&mugs, 4)]).await.data(); // 4 → 0: out of stock
    let alerts = wait_for_count(&app, &admin, "INVENTORY", 2).await;
    let titles: Vec<&str> = alerts
        .iter()
        .map(|n| n["title"].as_str().unwrap())
        .collect();
    assert!(titles.iter().any(|t| t.contains("Low stock")), "{titles:?}");
    assert!(
        titles.iter().any(|t| t.contains("Out of stock")),
        "{titles:?}"
    );
    assert!(
        notifications_of_type(&app, &buyer, "INVENTORY")
            .await
            .is_empty(),
        "customers are not told"
    );
    app.cleanup().await;
}

async fn concurrent_orders_never_oversell(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let admin = app.admin().await;
    let hot = create_product(&app, &admin, "Limited Edition", "coffee", 2500, 50).await;
    let buyer = app.customer("Rush").await;
    let attempts = (0..200).map(|_| {
        let app = &app;
        let buyer = &buyer;
        let hot = hot.clone();
        async move { place_order(app, buyer, &[(&hot, 1)]).await }
    });
    let results = futures::future::join_all(attempts).await;
    let confirmed = results
        .iter()
        .filter(|r| r.body["data"]["placeOrder"]["status"] == "CONFIRMED")
        .count();
    let short = results
        .iter()
        .filter(|r| r.error_code() == Some("INSUFFICIENT_STOCK"))
        .count();
    assert_eq!(
        (confirmed, short),
        (50, 150),
        "{:?}",
        results
            .iter()
            .find(|r| r.error_code() != Some("INSUFFICIENT_STOCK") && r.body["data"].is_null())
    );
    assert!(
        results
            .iter()
            .filter_map(|r| r.body["errors"][0]["message"].as_str())
            .all(|m| m.contains("Limited Edition"))
    );
    assert_eq!(stock_of(&app, &hot).await, 0);
    let mine = app
        .graphql(
            Some(&buyer.token),
            "{ myOrders(first: 100) { status } }",
            json!({}),
        )
        .await;
    assert_eq!(
        mine.data()["myOrders"].as_array().unwrap().len(),
        50,
        "failed orders leave no trace"
    );
    app.cleanup().await;
}

async fn cancelling_twice_releases_stock_once(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let admin = app.admin().await;
    let filter = create_product(&app, &admin, "Paper Filters", "coffee", 300, 10).await;
    let buyer = app.customer("Canceller").await;
    let order = place_order(&app, &buyer, &[(&filter, 4)]).await.data()["placeOrder"]["id"].clone();
    assert_eq!(stock_of(&app, &filter).await, 6);
    let cancel = "mutation($id: ID!) { cancelOrder(id: $id) { status } }";
    let first = app
        .graphql(Some(&buyer.token), cancel, json!({ "id": order }))
        .await;
    assert_eq!(first.data()["cancelOrder"]["status"], "CANCELLED");
    let second = app
        .graphql(Some(&buyer.token), cancel, json!({ "id": order }))
        .await;
    assert_eq!(second.error_code(), Some("BAD_USER_INPUT"));
    assert_eq!(stock_of(&app, &filter).await, 10);
    // The release also arrives as an event (the products queue has no other); it must not
    // add the stock a second time.
    eventually(
        Duration::from_secs(20),
        "the products service handling the release event",
        || async {
            let consumed = app
                .metric(
                    ServiceName::Products,
                    "bus_consumed_total",
                    "queue=\"products\"",
                )
                .await;
            (consumed >= 1.0).then_some(())
        },
    )
    .await;
    assert_eq!(stock_of(&app, &filter).await, 10);
    // The confirmation and the cancellation, in whichever order the two events were
    // handled (the inbox orders by when each was stored).
    let updates = wait_for_count(&app, &buyer, "ORDER_UPDATE", 2).await;
    let cancelled = updates
        .iter()
        .filter(|n| n["title"].as_str().is_some_and(|t| t.contains("cancelled")))
        .count();
    assert_eq!(cancelled, 1, "[{set:?}] {updates:?}");
    app.cleanup().await;
}

async fn bad_commerce_input_gets_clear_errors(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let admin = app.admin().await;
    let beans = create_product(&app, &admin, "Beans", "coffee", 1000, 100).await;
    let buyer = app.customer("Careless").await;

    let unknown = place_order(&app, &buyer, &[(&uuid::Uuid::now_v7().to_string(), 1)]).await;
    assert_eq!(
        unknown.error_code(),
        Some("NOT_FOUND"),
        "{:?}",
        unknown.body
    );
    let garbage = place_order(&app, &buyer, &[("garbage", 1)]).await;
    assert_eq!(
        garbage.error_code(),
        Some("NOT_FOUND"),
        "{:?}",
        garbage.body
    );
    for quantity in [0, -1, 1_000_000] {
        let response = place_order(&app, &buyer, &[(&beans, quantity)]).await;
        assert_eq!(
            response.error_code(),
            Some("BAD_USER_INPUT"),
            "quantity {quantity}: {:?}",
            response.body
        );
    }
    let twice = place_order(&app, &buyer, &[(&beans, 1), (&beans, 2)]).await;
    assert_eq!(twice.error_code(), Some("BAD_USER_INPUT"));
    let empty = place_order(&app, &buyer, &[]).await;
    assert_eq!(empty.error_code(), Some("BAD_USER_INPUT"));
    assert_eq!(
        stock_of(&app, &beans).await,
        100,
        "nothing was reserved by failed orders"
    );

    let as_customer = app
        .graphql(
            Some(&buyer.token),
            CREATE_PRODUCT,
            json!({ "input": { "name": "X", "category": "x", "priceCents": 1, "stock": 1 } }),
        )
        .await;
    assert_eq!(as_customer.error_code(), Some("FORBIDDEN"));
    let stock_as_customer = app
        .graphql(
            Some(&buyer.token),
            SET_STOCK,
            json!({ "id": beans, "stock": 1 }),
        )
        .await;
    assert_eq!(stock_as_customer.error_code(), Some("FORBIDDEN"));
    let status_as_customer = app
        .graphql(
            Some(&buyer.token),
            UPDATE_STATUS,
            json!({ "id": beans, "status": "SHIPPED" }),
        )
        .await;
    assert_eq!(status_as_customer.error_code(), Some("FORBIDDEN"));
    let anonymous = place_order(
        &app,
        &Session {
            token: "nope".into(),
            user_id: String::new(),
        },
        &[(&beans, 1)],
    )
    .await;
    assert_eq!(anonymous.error_code(), Some("UNAUTHENTICATED"));

    for input in [
        json!({ "name": "Neg", "category": "x", "priceCents": -1, "stock": 1 }),
        json!({ "name": "Neg", "category": "x", "priceCents": 1, "stock": -1 }),
        json!({ "name": "", "category": "x", "priceCents": 1, "stock": 1 }),
        json!({ "name": "Cur", "category": "x", "priceCents": 1, "stock": 1, "currency": "dollars" }),
    ] {
        let response = app
            .graphql(
                Some(&admin.token),
                CREATE_PRODUCT,
                json!({ "input": input }),
            )
            .await;
        assert_eq!(
            response.error_code(),
            Some("BAD_USER_INPUT"),
            "{input}: {:?}",
            response.body
        );
    }
    let negative_stock = app
        .graphql(
            Some(&admin.token),
            SET_STOCK,
            json!({ "id": beans, "stock": -5 }),
        )
        .await;
    assert_eq!(negative_stock.error_code(), Some("BAD_USER_INPUT"));
    let unknown_stock = app
        .graphql(
            Some(&admin.token),
            SET_STOCK,
            json!({ "id": uuid::Uuid::now_v7().to_string(), "stock": 5 }),
        )
        .await;
    assert_eq!(unknown_stock.error_code(), Some("NOT_FOUND"));
    let no_product = app
        .graphql(
            None,
            "query($id: ID!) { product(id: $id) { id } }",
            json!({ "id": "nope" }),
        )
        .await;
    assert_eq!(no_product.data()["product"], Value::Null);
    app.cleanup().await;
}

async fn catalog_lists_filters_and_searches(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let admin = app.admin().await;
    for (name, category) in [
        ("Espresso Beans", "Coffee"),
        ("Moka Pot", "coffee"),
        ("Sencha", "tea"),
        ("Espresso Cups", "kitchen"),
    ] {
        create_product(&app, &admin, name, category, 1000, 5).await;
    }
    let list = "query($first: Int, $after: String, $category: String, $search: String) {
      products(first: $first, after: $after, category: $category, search: $search) { nodes { name } pageInfo { hasNextPage endCursor } totalCount }
    }";
    let names = |v: &Value| {
        v["products"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let page1 = app.graphql(None, list, json!({ "first": 3 })).await;
    assert_eq!(
        names(page1.data()),
        ["Espresso Beans", "Moka Pot", "Sencha"]
    );
    assert_eq!(page1.data()["products"]["pageInfo"]["hasNextPage"], true);
    assert_eq!(page1.data()["products"]["totalCount"], 4);
    let after = page1.data()["products"]["pageInfo"]["endCursor"].clone();
    let page2 = app
        .graphql(None, list, json!({ "first": 3, "after": after }))
        .await;
    assert_eq!(names(page2.data()), ["Espresso Cups"]);
    assert_eq!(page2.data()["products"]["pageInfo"]["hasNextPage"], false);
    let coffee = app
        .graphql(None, list, json!({ "category": "COFFEE" }))
        .await;
    assert_eq!(names(coffee.data()), ["Espresso Beans", "Moka Pot"]);
    let search = app
        .graphql(None, list, json!({ "search": "espresso" }))
        .await;
    assert_eq!(names(search.data()), ["Espresso Beans", "Espresso Cups"]);
    let wildcard = app.graphql(None, list, json!({ "search": "%" })).await;
    assert_eq!(
        wildcard.data()["products"]["totalCount"],
        0,
        "LIKE wildcards are literal"
    );
    let bad = app.graphql(None, list, json!({ "first": 0 })).await;
    assert_eq!(bad.error_code(), Some("BAD_USER_INPUT"));
    app.cleanup().await;
}

async fn order_items_resolve_their_products_in_one_batch(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let admin = app.admin().await;
    let ids = [
        create_product(&app, &admin, "A", "x", 100, 100).await,
        create_product(&app, &admin, "B", "x", 200, 100).await,
        create_product(&app, &admin, "C", "x", 300, 100).await,
    ];
    let buyer = app.customer("Batcher").await;
    for _ in 0..3 {
        place_order(&app, &buyer, &[(&ids[0], 1), (&ids[1], 1), (&ids[2], 1)])
            .await
            .data();
    }
    let lookups_before = lookup_calls(&app).await;
    let orders = app
        .graphql(
            Some(&buyer.token),
            "{ myOrders { items { product { name } } } }",
            json!({}),
        )
        .await;
    let names: Vec<&str> = orders.data()["myOrders"][0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["product"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["A", "B", "C"]);
    assert_eq!(
        lookup_calls(&app).await - lookups_before,
        1.0,
        "nine items, one product lookup"
    );
    app.cleanup().await;
}

/// How many batched lookups the products service answered (from the process's metrics).
async fn lookup_calls(app: &TestApp) -> f64 {
    let metrics = app
        .http()
        .get(format!("{}/metrics", app.gateway))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .filter(|l| l.starts_with("product_lookups_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

const ALL_ORDERS: &str = "query($first: Int, $status: OrderStatus) {
  orders(first: $first, status: $status) { id userId status items { quantity product { name } } }
}";

async fn all_orders(app: &TestApp, who: &Session, variables: Value) -> herald_test_support::Gql {
    app.graphql(Some(&who.token), ALL_ORDERS, variables).await
}

async fn admins_list_every_customers_orders_newest_first(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let admin = app.admin().await;
    let beans = create_product(&app, &admin, "Beans", "coffee", 1000, 100).await;
    let (ada, bob) = (app.customer("Ada").await, app.customer("Bob").await);
    let mut placed = Vec::new();
    for (buyer, quantity) in [(&ada, 1), (&bob, 2), (&ada, 3)] {
        let order = place_order(&app, buyer, &[(&beans, quantity)]).await;
        placed.push(order.data()["placeOrder"]["id"].clone());
    }
    let shipped = app
        .graphql(
            Some(&admin.token),
            UPDATE_STATUS,
            json!({ "id": placed[1], "status": "SHIPPED" }),
        )
        .await;
    assert_eq!(shipped.data()["updateOrderStatus"]["status"], "SHIPPED");

    let everyone = all_orders(&app, &admin, json!({})).await;
    let order = |i: usize, user: &Session, status: &str, quantity: i64| {
        json!({
            "id": placed[i],
            "userId": user.user_id,
            "status": status,
            "items": [{ "quantity": quantity, "product": { "name": "Beans" } }],
        })
    };
    let newest_first = [
        order(2, &ada, "CONFIRMED", 3),
        order(1, &bob, "SHIPPED", 2),
        order(0, &ada, "CONFIRMED", 1),
    ];
    assert_eq!(everyone.data()["orders"], json!(newest_first), "[{set:?}]");
    let page = all_orders(&app, &admin, json!({ "first": 2 })).await;
    assert_eq!(page.data()["orders"], json!(newest_first[..2]));
    let shipped = all_orders(&app, &admin, json!({ "status": "SHIPPED" })).await;
    assert_eq!(shipped.data()["orders"], json!([newest_first[1]]));
    let confirmed = all_orders(&app, &admin, json!({ "status": "CONFIRMED", "first": 5 })).await;
    assert_eq!(
        confirmed.data()["orders"],
        json!([newest_first[0], newest_first[2]])
    );
    let delivered = all_orders(&app, &admin, json!({ "status": "DELIVERED" })).await;
    assert_eq!(delivered.data()["orders"], json!([]));

    // Pages of 1 to 100 (101 with its items is over the cost budget too); a list costs
    // its items, as `myOrders` does.
    for first in [0, 101] {
        let bad = all_orders(&app, &admin, json!({ "first": first })).await;
        assert_eq!(bad.error_code(), Some("BAD_USER_INPUT"), "{:?}", bad.body);
    }
    let costly = all_orders(&app, &admin, json!({ "first": 100 })).await;
    assert_eq!(
        costly.error_code(),
        Some("BAD_USER_INPUT"),
        "{:?}",
        costly.body
    );
    let message = costly.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("HERALD_MAX_QUERY_COMPLEXITY"), "{message}");

    // Customers keep to `myOrders`.
    for variables in [json!({}), json!({ "status": "SHIPPED" })] {
        let refused = all_orders(&app, &ada, variables).await;
        assert_eq!(
            refused.error_code(),
            Some("FORBIDDEN"),
            "{:?}",
            refused.body
        );
    }
    let anonymous = app.graphql(None, ALL_ORDERS, json!({})).await;
    assert_eq!(anonymous.error_code(), Some("UNAUTHENTICATED"));
    app.cleanup().await;
}
