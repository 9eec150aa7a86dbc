//! The admin console (`/admin`) in a real (headless) Chromium, as an admin uses it: the
//! steps are in `crates/test-support/js/admin-console.mjs`; here Herald is prepared through
//! its API (an order placed by a customer, dead letters, customers interested in a
//! category) and what the page did is checked against the API.

use std::time::Duration;

use herald_platform::bus::{Bus, topology};
use herald_test_support::clients::{CHROMIUM, NODE, Script, chromium, scripts};
use herald_test_support::events::unreadable_order;
use herald_test_support::{
    ADMIN_EMAIL, ADMIN_PASSWORD, BackendSet, TestApp, backend_tests, eventually, unique,
};
use serde_json::{Value, json};

backend_tests!(every bus: browser_admin_console_runs_the_shop(
    needs = &[NODE, CHROMIUM]
));

/// A step of the script; generous, as each waits for conditions in the page.
const STEP: Duration = Duration::from_secs(180);
const WAIT: Duration = Duration::from_secs(30);
const CATEGORY: &str = "tea";
const AUDIENCE: i64 = 3;
const DEAD_LETTERS: usize = 2;
/// The admin's time zone: UTC+5:30 all year.
const TIME_ZONE: &str = "Asia/Kolkata";

async fn browser_admin_console_runs_the_shop(set: BackendSet) {
    let chromium = chromium();
    // The scripts' packages first, outside the timed steps.
    scripts();
    let app = TestApp::spawn_with(set, |s| {
        s.bus_max_attempts = 2;
        s.bus_retry_delay_ms = 50;
        // A promotion due is sent within a second.
        s.schedule_promotions = "* * * * * *".to_owned();
    })
    .await;
    let admin = app.admin().await;
    // The admin's clock: times are shown, and entered, in it.
    app.graphql(
        Some(&admin.token),
        "mutation($z: String) { updateUserPreferences(input: { timezone: $z }) { id } }",
        json!({ "z": TIME_ZONE }),
    )
    .await
    .data();

    // A customer who orders (and later tries the console).
    let email = format!("buyer-{}@example.com", unique());
    let password = "correct horse battery";
    let registered = app.register("Buyer", &email, password).await;
    let buyer = registered.data()["registerUser"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, order_id) = app.kettle_ordered_by(&buyer).await;
    let order_id = order_id.as_str().unwrap().to_owned();

    // Customers who care about the category: the promotion's audience.
    for name in ["Tea One", "Tea Two", "Tea Three"] {
        let fan = app.customer(name).await;
        app.graphql(
            Some(&fan.token),
            "mutation($c: [String!]) { updateUserPreferences(input: { categories: $c }) { id } }",
            json!({ "c": [CATEGORY] }),
        )
        .await
        .data();
    }
    eventually(WAIT, "the promotion's audience counted", || async {
        let asked = app
            .graphql(
                Some(&admin.token),
                "query($c: String) { promotionAudience(category: $c) }",
                json!({ "c": CATEGORY }),
            )
            .await;
        (asked.data()["promotionAudience"] == AUDIENCE).then_some(())
    })
    .await;

    // Order events whose payload no consumer can read: dead letters.
    let bus = Bus::connect(&app.settings, &topology()).await.unwrap();
    for n in 0..DEAD_LETTERS {
        let broken = unreadable_order(json!({ "not": "an order", "n": n }));
        bus.publish(std::slice::from_ref(&broken)).await.unwrap();
    }
    eventually(WAIT, "the dead letters", || async {
        let listed = app
            .graphql(Some(&admin.token), "{ deadLetters { id } }", json!({}))
            .await;
        (listed.data()["deadLetters"].as_array()?.len() == DEAD_LETTERS).then_some(())
    })
    .await;

    let product_name = format!("Sencha {}", unique());
    let failure = std::env::temp_dir().join(format!("herald-admin-console-{set:?}-failure.png"));
    let screenshots = std::env::var("HERALD_SCREENSHOTS").ok();
    if let Some(dir) = &screenshots {
        std::fs::create_dir_all(dir).unwrap();
    }
    let mut page = Script::start(
        "admin-console.mjs",
        &json!({
            "url": app.gateway,
            "chromium": chromium,
            "admin": { "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD },
            "customer": { "email": email, "password": password },
            "orderId": order_id,
            "category": CATEGORY,
            "audience": AUDIENCE,
            "deadLetters": DEAD_LETTERS,
            "product": product_name,
            "timeZone": TIME_ZONE,
            "screenshot": failure,
            "screenshots": screenshots,
        }),
    );
    let mut next = async |name: &str| -> Value {
        let event = page.next_event(STEP).await;
        eprintln!("[{set:?}] {event}");
        assert_eq!(
            event["event"],
            name,
            "[{set:?}] the console failed (screenshot: {}): {event:#}",
            failure.display()
        );
        event
    };

    let signed_in = next("signed-in").await;
    assert_eq!(signed_in["hash"], "#/sign-in", "{signed_in}");
    assert!(
        !signed_in["refused"].as_str().unwrap().trim().is_empty(),
        "{signed_in}"
    );
    assert_eq!(signed_in["heading"]["text"], "Products", "{signed_in}");
    assert_eq!(signed_in["heading"]["focused"], true, "{signed_in}");

    let product = next("product").await;
    assert!(
        product["badPrice"].as_str().unwrap().contains("price"),
        "{product}"
    );
    let listed = app
        .graphql(
            Some(&admin.token),
            "query($s: String) { products(search: $s) { nodes { name description category priceCents currency stock } } }",
            json!({ "s": product_name }),
        )
        .await;
    assert_eq!(
        listed.data()["products"]["nodes"],
        json!([{
            "name": product_name,
            "description": "Loose-leaf, from the browser test",
            "category": CATEGORY,
            "priceCents": 1950,
            "currency": "EUR",
            "stock": 3,
        }]),
        "[{set:?}] {product}"
    );
    // Setting the stock draws the rows again; focus stays in the product's stock field.
    assert_eq!(product["stockFocus"], true, "{product}");

    let order = next("order").await;
    assert_eq!(order["heading"]["text"], "Orders", "{order}");
    assert_eq!(order["refusedFocus"], "Update", "{order}");
    assert_eq!(order["heading"]["focused"], true, "{order}");
    assert!(
        order["status"].as_str().unwrap().contains("Shipped"),
        "{order}"
    );
    assert!(
        !order["refused"].as_str().unwrap().trim().is_empty(),
        "{order}"
    );
    let looked_up = app
        .graphql(
            Some(&admin.token),
            "query($id: ID!) { order(id: $id) { status } }",
            json!({ "id": order_id }),
        )
        .await;
    assert_eq!(order["before"], "CONFIRMED", "{order}");
    assert_eq!(looked_up.data()["order"]["status"], "SHIPPED");

    let letters = next("dead-letters").await;
    assert_eq!(
        letters["before"].as_array().unwrap().len(),
        DEAD_LETTERS,
        "{letters}"
    );
    assert!(
        letters["eventType"]
            .as_str()
            .unwrap()
            .contains("order.shipped"),
        "{letters}"
    );
    let payload: Value = serde_json::from_str(letters["payload"].as_str().unwrap()).unwrap();
    assert_eq!(payload["not"], "an order", "{letters}");
    assert!(
        letters["replayed"].as_str().unwrap().contains("Replayed 1"),
        "{letters}"
    );
    assert_eq!(letters["gone"], true, "{letters}");
    assert_eq!(
        letters["after"].as_array().unwrap().len(),
        DEAD_LETTERS - 1,
        "{letters}"
    );
    assert!(
        letters["replayedAll"]
            .as_str()
            .unwrap()
            .contains(&format!("Replayed {} dead", DEAD_LETTERS - 1)),
        "{letters}"
    );

    let promotion = next("promotion").await;
    assert!(
        promotion["audience"]
            .as_str()
            .unwrap()
            .contains("would reach 3 customers"),
        "{promotion}"
    );
    assert!(
        promotion["zone"].as_str().unwrap().contains(TIME_ZONE),
        "{promotion}"
    );
    // An arrow key in "Send" chooses the time and leaves focus on the choice.
    assert_eq!(
        promotion["arrowed"],
        json!({ "focused": "later", "sendAtEnabled": true }),
        "{promotion}"
    );
    // A message longer than the list shows does not push columns out of view.
    assert_eq!(promotion["tableFits"], true, "{promotion}");
    // The page did not reload, and showed the count climb: scheduled with none, then 3.
    assert_eq!(promotion["reloaded"], false, "{promotion}");
    let seen: Vec<&str> = promotion["seen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(seen.first(), Some(&"SCHEDULED 0"), "[{set:?}] {promotion}");
    assert_eq!(seen.last(), Some(&"SENT 3"), "[{set:?}] {promotion}");
    for shown in &seen {
        let count: i64 = shown.rsplit(' ').next().unwrap().parse().unwrap();
        assert!((0..=AUDIENCE).contains(&count), "{promotion}");
    }
    let sent = app
        .graphql(
            Some(&admin.token),
            "{ promotions { title category sendAt status recipients } }",
            json!({}),
        )
        .await;
    let [everyone, tea] = [&sent.data()["promotions"][0], &sent.data()["promotions"][1]];
    assert_eq!(tea["title"], promotion["title"]);
    assert_eq!(tea["category"], CATEGORY);
    assert_eq!(tea["recipients"], AUDIENCE);
    // The time typed on the admin's clock, sent as UTC: 5:30 earlier.
    let typed = chrono::NaiveDateTime::parse_from_str(
        promotion["sendAt"].as_str().unwrap(),
        "%Y-%m-%dT%H:%M:%S",
    )
    .unwrap();
    let send_at = chrono::DateTime::parse_from_rfc3339(tea["sendAt"].as_str().unwrap()).unwrap();
    assert_eq!(
        send_at.naive_utc(),
        typed - chrono::Duration::minutes(330),
        "[{set:?}] {tea} {promotion}"
    );
    assert_eq!(everyone["title"], "Autumn teas");
    assert_eq!(everyone["category"], Value::Null);
    assert_eq!(everyone["status"], "SENT");

    let job = next("job").await;
    assert_eq!(job["before"]["lastRun"], "Never", "{job}");
    assert_ne!(job["after"]["lastRun"], "Never", "{job}");
    assert!(
        job["after"]["outcome"].as_str().unwrap().starts_with("ok"),
        "{job}"
    );

    let phone = next("phone").await;
    for page in ["products", "deadLetters", "withPayload", "orders"] {
        let width = &phone[page];
        assert!(
            width["scrollWidth"].as_i64().unwrap() <= width["innerWidth"].as_i64().unwrap(),
            "[{set:?}] {page} scrolls sideways at 375 px: {phone}"
        );
    }

    let ended = next("session-ended").await;
    assert!(
        ended["text"]
            .as_str()
            .unwrap()
            .contains("Your session has ended. Sign in again."),
        "{ended}"
    );

    let customer = next("customer").await;
    assert!(
        customer["text"]
            .as_str()
            .unwrap()
            .contains("This console is for administrators; your account is a customer account"),
        "{customer}"
    );
    assert_eq!(customer["link"], "/", "{customer}");
    assert_eq!(customer["nav"], false, "{customer}");
    assert_eq!(customer["signedOut"], Value::Null, "{customer}");

    let done = next("done").await;
    assert_eq!(done["pageErrors"], json!([]), "[{set:?}] {done}");
    assert_eq!(done["csp"], json!([]), "[{set:?}] {done}");
    assert_eq!(done["missingLabels"], json!([]), "[{set:?}] {done}");
    drop(page);
    app.cleanup().await;
}
