//! Recommendations that come from what each user did.

use std::time::Duration;

use herald_test_support::{BackendSet, Session, TestApp, backend_tests, eventually};
use serde_json::{Value, json};

backend_tests!(every bus: recommendations_follow_purchases_and_browsing);

async fn product(app: &TestApp, admin: &Session, name: &str, category: &str, stock: i64) -> String {
    let input = json!({ "input": { "name": name, "category": category, "priceCents": 1000, "stock": stock } });
    let created = app
        .graphql(
            Some(&admin.token),
            "mutation($input: ProductInput!) { createProduct(input: $input) { id } }",
            input,
        )
        .await;
    created.data()["createProduct"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn buy(app: &TestApp, who: &Session, ids: &[&str]) {
    let items: Vec<Value> = ids
        .iter()
        .map(|id| json!({ "productId": id, "quantity": 1 }))
        .collect();
    let placed = app
        .graphql(
            Some(&who.token),
            "mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { status } }",
            json!({ "input": { "items": items } }),
        )
        .await;
    assert_eq!(placed.data()["placeOrder"]["status"], "CONFIRMED");
}

async fn recommendations(app: &TestApp, who: &Session) -> Vec<Value> {
    let response = app
        .graphql(
            Some(&who.token),
            "{ getRecommendations(limit: 10) { product { id name category } score reason } }",
            json!({}),
        )
        .await;
    response.data()["getRecommendations"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn recommendations_follow_purchases_and_browsing(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let admin = app.admin().await;
    let beans = product(&app, &admin, "Espresso Beans", "coffee", 100).await;
    let grinder = product(&app, &admin, "Burr Grinder", "coffee", 100).await;
    let filters = product(&app, &admin, "Paper Filters", "coffee", 100).await;
    let sold_out = product(&app, &admin, "Rare Geisha", "coffee", 1).await;
    let tea = product(&app, &admin, "Sencha", "tea", 100).await;
    let mug = product(&app, &admin, "Mug", "kitchen", 100).await;

    // Other shoppers make a history: beans go with filters; tea and mugs are popular.
    for i in 0..3 {
        let shopper = app.customer(&format!("Shopper {i}")).await;
        buy(&app, &shopper, &[&beans, &filters]).await;
        buy(&app, &shopper, &[&tea, &mug]).await;
    }
    let last = app.customer("Last").await;
    buy(&app, &last, &[&sold_out]).await; // now out of stock

    let fan = app.customer("Fan").await;
    buy(&app, &fan, &[&beans]).await;
    for kind in ["VIEW", "VIEW", "CART"] {
        let recorded = app
            .graphql(
                Some(&fan.token),
                "mutation($input: UserActivityInput!) { createUserActivity(input: $input) }",
                json!({ "input": { "type": kind, "productId": grinder } }),
            )
            .await;
        assert_eq!(recorded.data()["createUserActivity"], true);
    }

    let picks = eventually(
        Duration::from_secs(10),
        "coffee recommendations",
        || async {
            let picks = recommendations(&app, &fan).await;
            let ids: Vec<&str> = picks
                .iter()
                .filter_map(|p| p["product"]["id"].as_str())
                .collect();
            // The sold-out state and the fan's purchase reach the service as events, like
            // everything it knows: the purchase is known once it explains a pick.
            let purchase_known = picks.iter().any(|p| {
                p["product"]["id"] == filters.as_str()
                    && p["reason"] == "Often bought with Espresso Beans"
            });
            let settled = !ids.contains(&sold_out.as_str()) && purchase_known;
            (settled && ids.contains(&filters.as_str()) && ids.contains(&grinder.as_str()))
                .then_some(picks)
        },
    )
    .await;
    let ids: Vec<&str> = picks
        .iter()
        .map(|p| p["product"]["id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&beans.as_str()), "already bought: {picks:?}");
    assert!(!ids.contains(&sold_out.as_str()), "out of stock: {picks:?}");
    let unique: std::collections::HashSet<&&str> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no duplicates");
    assert_eq!(picks[0]["product"]["category"], "coffee", "{picks:?}");
    let filters_pick = picks
        .iter()
        .find(|p| p["product"]["id"] == filters.as_str())
        .unwrap();
    assert_eq!(filters_pick["reason"], "Often bought with Espresso Beans");
    assert!(
        picks
            .iter()
            .all(|p| !p["reason"].as_str().unwrap().is_empty())
    );

    // Someone new gets what is popular.
    let newcomer = app.customer("Newcomer").await;
    let popular = recommendations(&app, &newcomer).await;
    assert!(!popular.is_empty());
    assert!(
        popular.iter().all(|p| p["reason"] == "Popular right now"),
        "{popular:?}"
    );
    assert!(
        popular
            .iter()
            .all(|p| p["product"]["id"] != sold_out.as_str())
    );

    let bad = app
        .graphql(
            Some(&fan.token),
            "mutation { createUserActivity(input: { type: SEARCH }) }",
            json!({}),
        )
        .await;
    assert_eq!(bad.error_code(), Some("BAD_USER_INPUT"));
    app.cleanup().await;
}
