use herald_events::{
    BackInStock, Envelope, LowStock, OutOfStock, Preferences, PriceChanged, ProductWatched, Role,
    StockLevel,
};
use herald_platform::backend_tests;
use herald_platform::bus::HandlerError;
use herald_platform::testing::BackendSet;
use serde_json::json;
use uuid::Uuid;

use super::TestService;

backend_tests!(
    each_watcher_hears_once_that_a_product_is_back_in_stock,
    watchers_hear_of_a_lower_price_and_of_no_other_change,
    stock_alerts_reach_the_admins_only,
    a_watcher_unknown_here_is_recorded_and_the_others_still_hear,
    malformed_product_events_are_rejected
);

const BEANS: &str = "Espresso Beans";

fn no_inventory_alerts() -> Preferences {
    Preferences {
        inventory_alerts: false,
        ..Preferences::default()
    }
}

fn watched(product_id: Uuid, user_id: Uuid) -> Envelope {
    let payload = ProductWatched {
        product_id,
        user_id,
    };
    Envelope::new("products", Some(user_id.to_string()), &payload)
}

fn level(product_id: Uuid, stock: i64) -> StockLevel {
    StockLevel {
        product_id,
        name: BEANS.to_owned(),
        stock,
        threshold: 5,
    }
}

fn price_changed(product_id: Uuid, old_price_cents: i64, new_price_cents: i64) -> Envelope {
    let payload = PriceChanged {
        product_id,
        name: BEANS.to_owned(),
        currency: "USD".to_owned(),
        old_price_cents,
        new_price_cents,
    };
    Envelope::new("products", None, &payload)
}

fn suppressed_by_preference() -> (String, Option<String>) {
    ("SUPPRESSED".to_owned(), Some("PREFERENCE_OFF".to_owned()))
}

fn sent() -> (String, Option<String>) {
    ("SENT".to_owned(), None)
}

async fn each_watcher_hears_once_that_a_product_is_back_in_stock(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = Uuid::now_v7();
    let (ada, _) = s.register("Ada").await;
    let (bob, _) = s.register("Bob").await;
    let cy = s
        .register_as("Cy", Role::Customer, no_inventory_alerts())
        .await;
    let (dee, _) = s.register("Dee").await;
    for watcher in [ada, bob, cy] {
        s.handle(&watched(beans, watcher)).await.unwrap();
    }
    // The same watch, redelivered and asked for again, is still one watch.
    let again = watched(beans, ada);
    s.handle(&again).await.unwrap();
    s.handle(&again).await.unwrap();
    s.handle(&watched(Uuid::now_v7(), dee)).await.unwrap();
    assert_eq!(s.unread_count(ada).await, 1, "the welcome");

    let back = Envelope::new("products", None, &BackInStock(level(beans, 12)));
    s.handle(&back).await.unwrap();
    s.handle(&back).await.unwrap();

    for watcher in [ada, bob] {
        let alerts = s.notifications_of(watcher, "INVENTORY").await;
        assert_eq!(alerts.len(), 1, "{set:?}");
        assert_eq!(alerts[0]["title"], "Espresso Beans is back in stock");
        assert_eq!(alerts[0]["priority"], "STANDARD");
        assert_eq!(alerts[0]["data"], json!({ "productId": beans.to_string() }));
        assert_eq!(s.decisions_of(watcher, "INVENTORY").await, [sent()]);
    }
    assert_eq!(s.unread_count(ada).await, 2, "the welcome and the alert");
    assert!(s.notifications_of(cy, "INVENTORY").await.is_empty());
    assert_eq!(
        s.decisions_of(cy, "INVENTORY").await,
        [suppressed_by_preference()]
    );
    assert!(s.notifications_of(dee, "INVENTORY").await.is_empty());
    assert!(s.decisions_of(dee, "INVENTORY").await.is_empty());
    s.finish().await;
}

async fn watchers_hear_of_a_lower_price_and_of_no_other_change(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = Uuid::now_v7();
    let (ada, _) = s.register("Ada").await;
    let cy = s
        .register_as("Cy", Role::Customer, no_inventory_alerts())
        .await;
    for watcher in [ada, cy] {
        s.handle(&watched(beans, watcher)).await.unwrap();
    }
    s.handle(&price_changed(beans, 999, 1250)).await.unwrap();
    s.handle(&price_changed(beans, 1250, 1250)).await.unwrap();
    for watcher in [ada, cy] {
        assert!(
            s.decisions_of(watcher, "INVENTORY").await.is_empty(),
            "{set:?}"
        );
    }

    let drop = price_changed(beans, 1250, 999);
    s.handle(&drop).await.unwrap();
    s.handle(&drop).await.unwrap();
    let alerts = s.notifications_of(ada, "INVENTORY").await;
    assert_eq!(alerts.len(), 1, "{set:?}");
    assert_eq!(
        alerts[0]["title"],
        "Espresso Beans is now 9.99 USD (was 12.50 USD)"
    );
    assert_eq!(alerts[0]["priority"], "STANDARD");
    assert_eq!(alerts[0]["data"], json!({ "productId": beans.to_string() }));
    assert!(s.notifications_of(cy, "INVENTORY").await.is_empty());
    assert_eq!(
        s.decisions_of(cy, "INVENTORY").await,
        [suppressed_by_preference()]
    );
    s.finish().await;
}

async fn stock_alerts_reach_the_admins_only(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = Uuid::now_v7();
    let ann = s
        .register_as("Ann", Role::Admin, Preferences::default())
        .await;
    let amy = s
        .register_as("Amy", Role::Admin, Preferences::default())
        .await;
    let abe = s
        .register_as("Abe", Role::Admin, no_inventory_alerts())
        .await;
    let (cat, _) = s.register("Cat").await;
    s.handle(&watched(beans, cat)).await.unwrap();

    let low = Envelope::new("products", None, &LowStock(level(beans, 3)));
    s.handle(&low).await.unwrap();
    s.handle(&low).await.unwrap();
    s.handle(&Envelope::new(
        "products",
        None,
        &OutOfStock(level(beans, 0)),
    ))
    .await
    .unwrap();

    for admin in [ann, amy] {
        let alerts = s.notifications_of(admin, "INVENTORY").await;
        let titles: Vec<&str> = alerts
            .iter()
            .map(|n| n["title"].as_str().unwrap())
            .collect();
        assert_eq!(
            titles,
            [
                "Out of stock: Espresso Beans",
                "Low stock: Espresso Beans (3 left)"
            ],
            "{set:?}"
        );
        assert_eq!(alerts[1]["priority"], "STANDARD");
        assert_eq!(alerts[1]["data"], json!({ "productId": beans.to_string() }));
    }
    assert!(s.notifications_of(abe, "INVENTORY").await.is_empty());
    assert_eq!(
        s.decisions_of(abe, "INVENTORY").await,
        [suppressed_by_preference(), suppressed_by_preference()]
    );
    assert!(s.notifications_of(cat, "INVENTORY").await.is_empty());
    assert!(s.decisions_of(cat, "INVENTORY").await.is_empty());
    s.finish().await;
}

async fn a_watcher_unknown_here_is_recorded_and_the_others_still_hear(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = Uuid::now_v7();
    let (ada, _) = s.register("Ada").await;
    let stranger = Uuid::now_v7();
    for watcher in [ada, stranger] {
        s.handle(&watched(beans, watcher)).await.unwrap();
    }
    s.handle(&Envelope::new(
        "products",
        None,
        &BackInStock(level(beans, 4)),
    ))
    .await
    .unwrap();
    assert_eq!(
        s.notifications_of(ada, "INVENTORY").await.len(),
        1,
        "{set:?}"
    );
    assert_eq!(
        s.decisions_of(stranger, "INVENTORY").await,
        [(
            "SUPPRESSED".to_owned(),
            Some("UNKNOWN_RECIPIENT".to_owned())
        )]
    );
    s.finish().await;
}

async fn malformed_product_events_are_rejected(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = Uuid::now_v7();
    let events = [
        watched(beans, Uuid::now_v7()),
        price_changed(beans, 1250, 999),
        Envelope::new("products", None, &BackInStock(level(beans, 1))),
        Envelope::new("products", None, &LowStock(level(beans, 1))),
        Envelope::new("products", None, &OutOfStock(level(beans, 0))),
    ];
    for mut event in events {
        event.data = json!({ "productId": "not a uuid" });
        assert!(
            matches!(s.handle(&event).await, Err(HandlerError::Reject(_))),
            "{} on {set:?}",
            event.event_type
        );
    }
    s.finish().await;
}
