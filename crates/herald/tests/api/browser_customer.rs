//! The customer app (`/`) in a real (headless) Chromium, used as a customer would: through
//! its forms and links, checked from outside (`crates/test-support/js/customer-app.mjs`
//! prints what the page shows, step by step). The admin's part (a product, shipping the
//! order) goes through the API; the admin console has tests of its own.
//!
//! With `HERALD_SCREENSHOTS=dir` the journey also saves the inbox (desktop and phone) and
//! the preference centre there; the README shows the ones in `docs/screenshots`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use herald_test_support::clients::{CHROMIUM, NODE, Script, chromium, scripts};
use herald_test_support::{BackendSet, TestApp, backend_tests, eventually, unique};
use serde_json::{Value, json};

backend_tests!(
    every bus: browser_customer_journey(needs = &[NODE, CHROMIUM]),
    browser_customer_session_refreshes_then_ends(needs = &[NODE, CHROMIUM]),
    browser_customer_inbox_scrolls_by_cursor(needs = &[NODE, CHROMIUM])
);

/// Longer than any of the script's own waits (45 s), so a step that fails says why.
const WAIT: Duration = Duration::from_secs(90);

fn failure_shot(test: &str, set: BackendSet) -> PathBuf {
    std::env::temp_dir().join(format!("herald-{test}-{set:?}-{}.png", unique()))
}

/// The script's next event, which must be `expected` (a failed step says which and why,
/// with the screenshot it saved).
async fn expect(page: &mut Script, expected: &str, shot: &Path) -> Value {
    let event = page.next_event(WAIT).await;
    assert_eq!(
        event["event"],
        expected,
        "{event:#}\nscreenshot of the page: {}",
        shot.display()
    );
    event
}

fn titles(items: &Value) -> Vec<String> {
    items
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            format!(
                "{} {}",
                item["type"].as_str().unwrap(),
                item["title"].as_str().unwrap()
            )
        })
        .collect()
}

async fn browser_customer_journey(set: BackendSet) {
    let chromium = chromium();
    let app = TestApp::spawn(set).await;
    let admin = app.admin().await;
    let product = app
        .graphql(
            Some(&admin.token),
            "mutation { createProduct(input: {name: \"Stovetop Kettle\", description: \"A whistling kettle in brushed steel, 1.7 litres.\", category: \"kitchen\", priceCents: 2500, stock: 5}) { id name } }",
            json!({}),
        )
        .await;
    let product = product.data()["createProduct"].clone();
    // A name an attacker might choose: markup (shown as text, never run) that is also one
    // long word (wrapped, not widening the page).
    let odd = app
        .graphql(
            Some(&admin.token),
            "mutation($name: String!) { createProduct(input: {name: $name, description: \"<script>window.__xss = 2</script>\", category: \"<i>odd</i>\", priceCents: 100, stock: 5}) { id name } }",
            json!({ "name": format!("<img src=x onerror=\"window.__xss = 1\">{}", "Supercalifragilistic".repeat(7)) }),
        )
        .await;
    let odd = odd.data()["createProduct"].clone();
    let email = format!("ada-{}@example.com", unique());
    let shot = failure_shot("customer-journey", set);
    let mut page = Script::start(
        "customer-app.mjs",
        &json!({
            "mode": "journey",
            "url": format!("{}/", app.gateway),
            "chromium": chromium,
            "name": "Ada Lovelace",
            "email": email,
            "password": "correct horse battery",
            "product": product,
            "odd": odd,
            "screenshot": shot,
            "screenshots": std::env::var_os("HERALD_SCREENSHOTS").map(PathBuf::from),
        }),
    );

    // Signed out: the sign-in page, no sections.
    let event = expect(&mut page, "signed-out", &shot).await;
    assert_eq!(event["nav"], true, "{event}");

    // Forgot password answers in words, the same whether or not the account exists.
    let event = expect(&mut page, "forgot", &shot).await;
    let answer = event["answer"].as_str().unwrap();
    assert!(
        answer.contains("If an account exists") && answer.contains("email"),
        "{event}"
    );

    // Signing up through the form opens the inbox with the welcome, and the bell says 1.
    let event = expect(&mut page, "welcome", &shot).await;
    assert_eq!(event["hash"], "#/inbox", "{event}");
    assert_eq!(event["badge"]["count"], "1", "{event}");
    assert_eq!(
        event["badge"]["label"], "Notifications, 1 unread",
        "{event}"
    );
    let welcome = &event["items"][0];
    assert_eq!(welcome["type"], "SECURITY", "{event}");
    assert_eq!(welcome["read"], "false", "{event}");
    assert!(
        welcome["title"].as_str().unwrap().contains("Welcome"),
        "{event}"
    );

    // Ordering from the product page opens the new order.
    let event = expect(&mut page, "ordered", &shot).await;
    let order = &event["order"];
    assert_eq!(order["status"], "CONFIRMED", "{event}");
    assert_eq!(order["total"], "$50.00", "{event}");
    assert_eq!(order["cancel"], true, "{event}");
    assert_eq!(order["visit"], "", "the visit was recorded: {event}");
    let order_id = order["id"].as_str().unwrap().to_owned();

    // The ORDER_UPDATE: the bell moved from 1 to 2 and the inbox has it, with no reload.
    let event = expect(&mut page, "order-update", &shot).await;
    assert_eq!(event["noReload"], true, "{event}");
    assert_eq!(event["navigations"], 0, "{event}");
    assert_eq!(event["badge"]["count"], "2", "{event}");
    assert_eq!(
        event["badge"]["label"], "Notifications, 2 unread",
        "{event}"
    );
    let newest = &event["items"][0];
    assert_eq!(newest["type"], "ORDER_UPDATE", "{event}");
    assert_eq!(newest["kind"], "Order", "{event}");
    assert_eq!(
        newest["link"],
        format!("#/orders/{order_id}"),
        "the update links to its order: {event}"
    );

    // While the inbox is open, the order ships: the update comes in on top, live.
    expect(&mut page, "inbox-open", &shot).await;
    let shipped = app
        .graphql(
            Some(&admin.token),
            "mutation($id: ID!) { updateOrderStatus(id: $id, status: SHIPPED) { status } }",
            json!({ "id": order_id }),
        )
        .await;
    assert_eq!(shipped.data()["updateOrderStatus"]["status"], "SHIPPED");
    page.say("shipped").await;
    let event = expect(&mut page, "pushed", &shot).await;
    assert_eq!(event["noReload"], true, "{event}");
    assert_eq!(event["navigations"], 0, "{event}");
    assert_eq!(event["badge"]["count"], "3", "{event}");
    assert_eq!(event["live"], "open", "{event}");
    let list = titles(&event["items"]);
    assert_eq!(list.len(), 3, "{list:?}");
    assert!(
        list[0].starts_with("ORDER_UPDATE") && list[0].contains("shipped"),
        "{list:?}"
    );
    assert!(list[2].starts_with("SECURITY"), "{list:?}");

    // At 375 px: no page scrolls sideways, the odd product's among them; its markup ran
    // nowhere.
    let event = expect(&mut page, "phone", &shot).await;
    assert_eq!(event["tooWide"], json!([]), "{event}");
    assert_eq!(event["xss"], Value::Null, "{event}");

    // Mark all read zeroes the bell.
    let event = expect(&mut page, "all-read", &shot).await;
    assert_eq!(event["badge"]["count"], "0", "{event}");
    assert_eq!(
        event["badge"]["label"], "Notifications, 0 unread",
        "{event}"
    );
    assert_eq!(event["noReload"], true, "{event}");
    assert!(
        event["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|item| item["read"] == "true"),
        "{event}"
    );
    let widths = event["bellWidths"].as_array().unwrap();
    assert!(
        widths.iter().all(|width| width == &widths[0]),
        "the bell changes width with the count: {event}"
    );

    // The connection drops; the order is delivered meanwhile; once the connection is back
    // the page catches up from the list: the update on top, the bell at 1, no reload.
    expect(&mut page, "dropped", &shot).await;
    let delivered = app
        .graphql(
            Some(&admin.token),
            "mutation($id: ID!) { updateOrderStatus(id: $id, status: DELIVERED) { status } }",
            json!({ "id": order_id }),
        )
        .await;
    assert_eq!(delivered.data()["updateOrderStatus"]["status"], "DELIVERED");
    page.say("delivered").await;
    let event = expect(&mut page, "caught-up", &shot).await;
    assert_eq!(event["whileDown"]["items"], event["before"], "{event}");
    assert_eq!(event["whileDown"]["badge"]["count"], "0", "{event}");
    assert_eq!(event["badge"]["count"], "1", "{event}");
    assert_eq!(event["noReload"], true, "{event}");
    assert_eq!(event["navigations"], 0, "{event}");
    let list = titles(&event["items"]);
    assert!(
        list[0].starts_with("ORDER_UPDATE") && list[0].contains("delivered"),
        "{list:?}"
    );

    // The inbox opened while nothing reaches Herald: it says so and offers to try again;
    // once Herald answers it fills by itself, without a reload.
    let event = expect(&mut page, "offline-inbox", &shot).await;
    assert!(
        event["error"]
            .as_str()
            .unwrap()
            .starts_with("Herald cannot be reached"),
        "{event}"
    );
    assert_eq!(event["retry"], "Try again", "{event}");
    assert_eq!(event["live"], "Offline, reconnecting", "{event}");
    assert!(event["items"].as_u64().unwrap() >= 4, "{event}");
    assert_eq!(event["noReload"], true, "{event}");
    assert_eq!(event["navigations"], 0, "{event}");

    expect(&mut page, "recommendations", &shot).await;

    // Preferences survive a reload.
    let event = expect(&mut page, "preferences", &shot).await;
    assert!(
        event["saved"].as_str().unwrap().starts_with("Saved"),
        "{event}"
    );
    assert_eq!(event["focus"], "Save preferences", "{event}");
    assert_eq!(event["before"]["noReload"], true, "{event}");
    assert_eq!(event["before"]["navigations"], 0, "{event}");
    let after = &event["after"];
    assert_eq!(after["reloaded"], true, "{event}");
    assert_eq!(after["timezone"], "Asia/Tokyo", "{event}");
    assert_eq!(after["promotions"], false, "{event}");
    assert_eq!(after["orderUpdates"], true, "{event}");
    assert!(
        after["security"]
            .as_str()
            .unwrap()
            .contains("cannot be switched off"),
        "{event}"
    );
    let signed_in = app.login(&email, "correct horse battery").await;
    let token = signed_in.data()["loginUser"]["token"].as_str().unwrap();
    let stored = app
        .graphql(
            Some(token),
            "{ getUser { preferences { timezone promotions } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        stored.data()["getUser"]["preferences"],
        json!({ "timezone": "Asia/Tokyo", "promotions": false })
    );

    // Dates show in the zone of the preferences (the browser's is Europe/Berlin).
    let event = expect(&mut page, "dates", &shot).await;
    let dates = event["dates"].as_array().unwrap();
    assert!(!dates.is_empty(), "{event}");
    for date in dates {
        assert_eq!(date["shown"], date["tokyo"], "{event}");
    }

    // A route change puts focus on the new page's heading.
    let event = expect(&mut page, "keyboard", &shot).await;
    assert_eq!(event["focused"], "H1:Your orders", "{event}");

    // Addresses that lead nowhere say so (a broken escape among them, no error thrown).
    let event = expect(&mut page, "nowhere", &shot).await;
    assert_eq!(event["badEscape"], "No such order", "{event}");
    assert_eq!(event["noProduct"], "No such product", "{event}");
    assert_eq!(event["nonsense"], "Page not found", "{event}");

    // Sign out, a wrong password said in words, then in again; a second tab follows.
    let event = expect(&mut page, "signed-in-again", &shot).await;
    assert_eq!(event["otherTab"]["hash"], "#/inbox", "{event}");
    assert_eq!(event["otherTab"]["nav"], false, "{event}");
    assert_eq!(event["signedOut"], "You have signed out.", "{event}");
    assert!(
        event["error"]
            .as_str()
            .unwrap()
            .contains("wrong email or password"),
        "{event}"
    );

    // Over the whole journey: every control labelled, no errors, no CSP violation.
    let event = expect(&mut page, "done", &shot).await;
    assert_eq!(event["unlabelled"], json!([]), "{event}");
    assert_eq!(event["tooWide"], json!([]), "{event}");
    assert_eq!(event["pageErrors"], json!([]), "{event}");
    assert_eq!(event["violations"], json!([]), "{event}");
    app.cleanup().await;
}

/// Five-second tokens: the page refreshes them on its own, an action after the first one
/// expired works and the live connection still pushes; when a refresh is refused (someone
/// else used the refresh token) the page says the session ended, on the sign-in page.
async fn browser_customer_session_refreshes_then_ends(set: BackendSet) {
    let chromium = chromium();
    // The scripts' packages first: installing them must not spend the token's seconds.
    scripts();
    let app = TestApp::spawn_with(set, |s| s.token_ttl_secs = 5).await;
    let email = format!("grace-{}@example.com", unique());
    let password = "correct horse battery";
    app.register("Grace Hopper", &email, password).await.data();
    let shot = failure_shot("customer-refresh", set);
    let mut page = Script::start(
        "customer-app.mjs",
        &json!({
            "mode": "refresh",
            "url": format!("{}/", app.gateway),
            "chromium": chromium,
            "email": email,
            "password": password,
            "screenshot": shot,
        }),
    );

    let event = expect(&mut page, "signed-in", &shot).await;
    let lifetime = event["lifetime"].as_i64().unwrap();
    assert!((1..=5).contains(&lifetime), "{event}");
    let event = expect(&mut page, "expired", &shot).await;
    assert_eq!(event["refreshed"], true, "{event}");
    // About halfway through each token's life: a few refreshes, not one after the other.
    let refreshes = event["refreshes"].as_f64().unwrap();
    let seconds = event["seconds"].as_f64().unwrap();
    assert!(
        refreshes >= 1.0 && refreshes <= seconds / 2.0 + 2.0,
        "{event}"
    );

    // After the first token's expiry, saving the preferences works.
    let event = expect(&mut page, "ready-for-push", &shot).await;
    assert_eq!(event["error"], "", "{event}");
    assert!(
        event["saved"].as_str().unwrap().starts_with("Saved"),
        "{event}"
    );

    // And the live connection (on a fresh token) delivers an order's update.
    let buyer = app.login(&email, password).await;
    let buyer = buyer.data()["loginUser"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    app.kettle_ordered_by(&buyer).await;
    let event = expect(&mut page, "pushed", &shot).await;
    assert_eq!(event["noReload"], true, "{event}");
    assert!(
        titles(&event["items"])
            .iter()
            .any(|t| t.starts_with("ORDER_UPDATE")),
        "{event}"
    );

    // A refresh refused: the sign-in page, saying so.
    let event = expect(&mut page, "ended", &shot).await;
    assert_eq!(
        event["message"], "Your session has ended. Sign in again.",
        "{event}"
    );
    assert_eq!(event["noReload"], true, "{event}");

    let event = expect(&mut page, "done", &shot).await;
    assert_eq!(event["pageErrors"], json!([]), "{event}");
    assert_eq!(event["violations"], json!([]), "{event}");
    app.cleanup().await;
}

/// Every notification of the customer, newest first, as the API lists them (by cursor).
async fn all_notifications(app: &TestApp, token: &str, unread_only: bool) -> Vec<(String, bool)> {
    let mut all = Vec::new();
    let mut after = Value::Null;
    loop {
        let page = app
            .graphql(
                Some(token),
                "query($after: String, $u: Boolean) { getNotifications(first: 50, after: $after, unreadOnly: $u) { nodes { id read } pageInfo { hasNextPage endCursor } } }",
                json!({ "after": after, "u": unread_only }),
            )
            .await;
        let connection = page.data()["getNotifications"].clone();
        for node in connection["nodes"].as_array().unwrap() {
            all.push((
                node["id"].as_str().unwrap().to_owned(),
                node["read"].as_bool().unwrap(),
            ));
        }
        if connection["pageInfo"]["hasNextPage"] != true {
            return all;
        }
        after = connection["pageInfo"]["endCursor"].clone();
    }
}

/// A long inbox (a welcome and 45 order updates): scrolling loads it page by page to its
/// end, each notification once and newest first, as the API lists them; the unread filter
/// and "Load more" work by keyboard.
async fn browser_customer_inbox_scrolls_by_cursor(set: BackendSet) {
    let chromium = chromium();
    let app = TestApp::spawn(set).await;
    let email = format!("ida-{}@example.com", unique());
    let password = "correct horse battery";
    let registered = app.register("Ida", &email, password).await;
    let token = registered.data()["registerUser"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = app.admin().await;
    let product = app
        .graphql(
            Some(&admin.token),
            "mutation { createProduct(input: {name: \"Tea\", category: \"tea\", priceCents: 500, stock: 100}) { id } }",
            json!({}),
        )
        .await;
    let product = product.data()["createProduct"]["id"].clone();
    // Another product, which a search for the tea leaves out.
    app.graphql(
        Some(&admin.token),
        "mutation { createProduct(input: {name: \"Kettle\", category: \"kitchen\", priceCents: 2500, stock: 5}) { id } }",
        json!({}),
    )
    .await
    .data();
    const ORDERS: usize = 45;
    for _ in 0..ORDERS {
        app.graphql(
            Some(&token),
            "mutation($id: ID!) { placeOrder(input: {items: [{productId: $id, quantity: 1}]}) { id } }",
            json!({ "id": product }),
        )
        .await
        .data();
    }
    eventually(WAIT, "a notification for every order", || async {
        (all_notifications(&app, &token, false).await.len() > ORDERS).then_some(())
    })
    .await;

    let shot = failure_shot("customer-scroll", set);
    let mut page = Script::start(
        "customer-app.mjs",
        &json!({
            "mode": "scroll",
            "search": "Tea",
            "url": format!("{}/", app.gateway),
            "chromium": chromium,
            "email": email,
            "password": password,
            "screenshot": shot,
        }),
    );
    let first = expect(&mut page, "first-page", &shot).await;
    assert_eq!(first["shown"], 20, "{first}");
    let scrolled = expect(&mut page, "scrolled", &shot).await;
    let listed: Vec<String> = all_notifications(&app, &token, false)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let shown: Vec<String> = scrolled["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(shown, listed, "{scrolled}");
    assert!(
        scrolled["pages"].as_array().unwrap().len() >= 2,
        "{scrolled}"
    );
    assert_eq!(scrolled["noReload"], 1, "{scrolled}");

    let unread = expect(&mut page, "unread", &shot).await;
    let unread_listed: Vec<String> = all_notifications(&app, &token, true)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(unread_listed.len(), listed.len() - 1, "{unread}");
    assert_eq!(unread["ids"], json!(unread_listed), "{unread}");
    assert!(unread["presses"].as_u64().unwrap() >= 1, "{unread}");

    // Search finds the one product by name; watching it and ordering it work, and the
    // order can be cancelled from its page.
    let shopped = expect(&mut page, "shopped", &shot).await;
    assert_eq!(shopped["found"].as_array().unwrap().len(), 1, "{shopped}");
    assert!(
        shopped["watched"]
            .as_str()
            .unwrap()
            .contains("back in stock"),
        "{shopped}"
    );
    assert_eq!(shopped["cancelled"]["cancelButton"], false, "{shopped}");
    let order = app
        .graphql(
            Some(&token),
            "query($id: ID!) { order(id: $id) { status } }",
            json!({ "id": shopped["orderId"] }),
        )
        .await;
    assert_eq!(order.data()["order"]["status"], "CANCELLED", "{shopped}");

    let done = expect(&mut page, "done", &shot).await;
    assert_eq!(done["pageErrors"], json!([]), "[{set:?}] {done}");
    assert_eq!(done["violations"], json!([]), "[{set:?}] {done}");
    app.cleanup().await;
}
