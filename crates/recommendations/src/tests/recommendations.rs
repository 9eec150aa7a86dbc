use std::collections::HashSet;

use herald_platform::backend_tests;
use herald_platform::testing::BackendSet;
use serde_json::json;
use uuid::Uuid;

use super::{TestService, out_of_stock, registered};

backend_tests!(
    a_coffee_buyer_who_looks_at_grinders_gets_coffee_with_reasons,
    bought_out_of_stock_and_duplicate_products_are_never_recommended,
    a_new_user_gets_popular_products_and_their_preferred_categories,
    new_activity_and_orders_refresh_the_cached_recommendations
);

async fn a_coffee_buyer_who_looks_at_grinders_gets_coffee_with_reasons(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.add_product("Espresso Beans", "coffee", 10).await;
    let grinder = s.add_product("Burr Grinder", "coffee", 10).await;
    let frother = s.add_product("Milk Frother", "coffee", 10).await;
    let moka = s.add_product("Moka Pot", "coffee", 10).await;
    let tea = s.add_product("Green Tea", "tea", 10).await;
    let mat = s.add_product("Yoga Mat", "sport", 10).await;
    // Others buy beans with a frother, and yoga mats a lot.
    for _ in 0..3 {
        s.buy(Uuid::now_v7(), &[&beans, &frother]).await;
    }
    for _ in 0..5 {
        s.buy(Uuid::now_v7(), &[&mat]).await;
    }
    s.buy(Uuid::now_v7(), &[&tea]).await;

    let ada = Uuid::now_v7();
    s.buy(ada, &[&beans]).await;
    assert_eq!(
        s.act(ada, json!({"type": "VIEW", "productId": grinder.id}))
            .await,
        axum::http::StatusCode::OK
    );
    let got = s.recommended(ada, 10).await;
    assert_eq!(
        got[0],
        (frother.id, "Often bought with Espresso Beans".to_owned()),
        "{set:?} {got:?}"
    );
    let coffee: HashSet<Uuid> = got[..3].iter().map(|(id, _)| *id).collect();
    assert_eq!(
        coffee,
        HashSet::from([frother.id, grinder.id, moka.id]),
        "{got:?}"
    );
    assert!(
        got[1..3]
            .iter()
            .all(|(_, reason)| reason == "Because you like coffee")
    );
    assert!(
        got.contains(&(mat.id, "Popular right now".to_owned())),
        "{got:?}"
    );
    assert!(got.iter().all(|(id, _)| *id != beans.id), "bought: {got:?}");
    assert_eq!(s.recommended(ada, 2).await, got[..2].to_vec());
    s.finish().await;
}

async fn bought_out_of_stock_and_duplicate_products_are_never_recommended(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.add_product("Espresso Beans", "coffee", 10).await;
    let frother = s.add_product("Milk Frother", "coffee", 10).await;
    let moka = s.add_product("Moka Pot", "coffee", 10).await;
    let kettle = s.add_product("Gooseneck Kettle", "coffee", 10).await;
    for _ in 0..3 {
        s.buy(Uuid::now_v7(), &[&beans, &frother, &moka, &kettle])
            .await;
    }
    let ada = Uuid::now_v7();
    s.buy(ada, &[&beans]).await;
    s.buy(ada, &[&frother]).await;
    for product in [&moka, &kettle, &moka] {
        s.act(ada, json!({"type": "CART", "productId": product.id}))
            .await;
    }
    s.hear(&out_of_stock(&moka)).await;
    s.advisor.forget(ada).await;

    let got = s.recommended(ada, 50).await;
    let ids: Vec<Uuid> = got.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![kettle.id], "{set:?} {got:?}");
    s.finish().await;
}

async fn a_new_user_gets_popular_products_and_their_preferred_categories(set: BackendSet) {
    let s = TestService::start(set).await;
    let mat = s.add_product("Yoga Mat", "sport", 10).await;
    let tea = s.add_product("Green Tea", "tea", 10).await;
    let gone = s.add_product("Dumbbells", "sport", 10).await;
    let teapot = s.add_product("Teapot", "tea", 10).await;
    for _ in 0..3 {
        s.buy(Uuid::now_v7(), &[&mat]).await;
        s.buy(Uuid::now_v7(), &[&gone]).await;
    }
    s.buy(Uuid::now_v7(), &[&tea]).await;
    s.hear(&out_of_stock(&gone)).await;

    let newcomer = Uuid::now_v7();
    let got = s.recommended(newcomer, 10).await;
    assert_eq!(
        got,
        vec![
            (mat.id, "Popular right now".to_owned()),
            (tea.id, "Popular right now".to_owned())
        ],
        "{set:?}"
    );

    // Telling the users service they like tea puts tea first.
    let bea = Uuid::now_v7();
    s.hear(&registered(bea, &["tea"], 1)).await;
    let got = s.recommended(bea, 10).await;
    let ids: Vec<Uuid> = got.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![tea.id, teapot.id, mat.id], "{got:?}");
    assert_eq!(got[0].1, "Because you like tea");
    s.finish().await;
}

async fn new_activity_and_orders_refresh_the_cached_recommendations(set: BackendSet) {
    let s = TestService::start(set).await;
    let mat = s.add_product("Yoga Mat", "sport", 10).await;
    let tea = s.add_product("Green Tea", "tea", 10).await;
    s.buy(Uuid::now_v7(), &[&mat]).await;
    let ada = Uuid::now_v7();
    assert_eq!(s.recommended(ada, 10).await.len(), 1, "{set:?}");

    s.act(ada, json!({"type": "WISHLIST", "productId": tea.id}))
        .await;
    let got = s.recommended(ada, 10).await;
    assert_eq!(
        got[0],
        (tea.id, "Because you like tea".to_owned()),
        "{got:?}"
    );

    s.buy(ada, &[&tea]).await;
    let ids: Vec<Uuid> = s
        .recommended(ada, 10)
        .await
        .into_iter()
        .map(|r| r.0)
        .collect();
    assert_eq!(ids, vec![mat.id]);
    s.finish().await;
}
