use herald_events::{
    BackInStock, Event, LowStock, OutOfStock, PriceChanged, ProductCreated, ProductWatched,
    StockChangeReason, StockChanged,
};
use herald_platform::ErrorCode;
use herald_platform::backend_tests;
use herald_platform::testing::BackendSet;
use uuid::Uuid;

use super::TestService;
use crate::domain::ProductPatch;
use crate::store::products::{find_product, watchers};

backend_tests!(
    a_new_product_is_stored_and_announced,
    a_price_change_is_announced_with_the_old_and_new_price,
    setting_stock_announces_the_change_and_each_crossing,
    watching_twice_is_announced_once
);

async fn a_new_product_is_stored_and_announced(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.add_product("Espresso Beans", "coffee", 10).await;
    assert_eq!(
        find_product(s.db.pool(), beans.id).await.unwrap(),
        Some(beans.clone()),
        "{set:?}"
    );
    let events = s.events().await;
    assert_eq!(events.len(), 1);
    let created: ProductCreated = events[0].payload().unwrap();
    assert_eq!(
        created,
        ProductCreated {
            product_id: beans.id,
            name: "Espresso Beans".into(),
            category: "coffee".into(),
            price_cents: 1299,
            currency: "USD".into(),
            stock: 10,
        }
    );
    assert_eq!(events[0].source, "/herald/products");
    assert_eq!(events[0].subject, None);
    s.finish().await;
}

async fn a_price_change_is_announced_with_the_old_and_new_price(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.add_product("Espresso Beans", "coffee", 10).await;
    let before = s.events().await.len();

    let renamed = s
        .catalog
        .update_product(
            beans.id,
            &ProductPatch {
                name: Some("Espresso Beans, dark".into()),
                category: Some(" Coffee & Tea ".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.name, "Espresso Beans, dark");
    assert_eq!(renamed.category, "coffee & tea");
    assert_eq!(renamed.price_cents, 1299);
    assert_eq!((renamed.stock, renamed.created_at), (10, beans.created_at));
    assert_eq!(
        s.event_types_since(before).await,
        Vec::<String>::new(),
        "{set:?}: only prices are announced"
    );

    let cheaper = s
        .catalog
        .update_product(
            beans.id,
            &ProductPatch {
                price_cents: Some(999),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(cheaper.price_cents, 999);
    let events = s.events().await;
    assert_eq!(events.len(), before + 1);
    let changed: PriceChanged = events[before].payload().unwrap();
    assert_eq!(
        changed,
        PriceChanged {
            product_id: beans.id,
            name: "Espresso Beans, dark".into(),
            currency: "USD".into(),
            old_price_cents: 1299,
            new_price_cents: 999,
        }
    );
    // The same price again changes nothing.
    s.catalog
        .update_product(
            beans.id,
            &ProductPatch {
                price_cents: Some(999),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(s.events().await.len(), before + 1);

    let unknown = s
        .catalog
        .update_product(Uuid::now_v7(), &ProductPatch::default())
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), ErrorCode::NotFound);
    let invalid = s
        .catalog
        .update_product(
            beans.id,
            &ProductPatch {
                price_cents: Some(-1),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), ErrorCode::BadUserInput);
    s.finish().await;
}

async fn setting_stock_announces_the_change_and_each_crossing(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.add_product("Espresso Beans", "coffee", 10).await;
    let steps: &[(i64, &[&str])] = &[
        (0, &[StockChanged::TYPE, OutOfStock::TYPE]),
        (10, &[StockChanged::TYPE, BackInStock::TYPE]),
        (4, &[StockChanged::TYPE, LowStock::TYPE]),
        (4, &[]),
        (3, &[StockChanged::TYPE]),
        (6, &[StockChanged::TYPE]),
        (5, &[StockChanged::TYPE, LowStock::TYPE]),
    ];
    let mut previous = 10;
    for (stock, expected) in steps {
        let before = s.events().await.len();
        let product = s.catalog.set_stock(beans.id, *stock).await.unwrap();
        assert_eq!(product.stock, *stock);
        assert_eq!(
            s.event_types_since(before).await,
            *expected,
            "{set:?}: {previous} -> {stock}"
        );
        if let Some(event) = s.events().await.get(before) {
            let changed: StockChanged = event.payload().unwrap();
            assert_eq!(
                (changed.old_stock, changed.new_stock, changed.reason),
                (previous, *stock, StockChangeReason::Restock)
            );
            assert_eq!(changed.order_id, None);
        }
        previous = *stock;
    }
    let low: LowStock = s.events().await.last().unwrap().payload().unwrap();
    assert_eq!((low.0.stock, low.0.threshold), (5, 5));

    for bad in [-1, 1_000_000_001] {
        let e = s.catalog.set_stock(beans.id, bad).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::BadUserInput);
    }
    let e = s.catalog.set_stock(Uuid::now_v7(), 3).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound);
    s.finish().await;
}

async fn watching_twice_is_announced_once(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.add_product("Espresso Beans", "coffee", 0).await;
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let before = s.events().await.len();

    assert!(s.catalog.watch_product(beans.id, ada).await.unwrap());
    assert!(!s.catalog.watch_product(beans.id, ada).await.unwrap());
    assert!(s.catalog.watch_product(beans.id, bob).await.unwrap());
    let events: Vec<_> = s.events().await.into_iter().skip(before).collect();
    let watched: Vec<ProductWatched> = events.iter().map(|e| e.payload().unwrap()).collect();
    assert_eq!(
        watched,
        [
            ProductWatched {
                product_id: beans.id,
                user_id: ada
            },
            ProductWatched {
                product_id: beans.id,
                user_id: bob
            },
        ],
        "{set:?}"
    );
    assert_eq!(events[0].subject, Some(ada.to_string()));
    assert_eq!(watchers(&s.db, beans.id).await.unwrap(), [ada, bob]);

    let e = s
        .catalog
        .watch_product(Uuid::now_v7(), ada)
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound);
    s.finish().await;
}
