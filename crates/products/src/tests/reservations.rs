use herald_events::{
    BackInStock, Event, LowStock, OutOfStock, Role, StockChangeReason, StockChanged,
};
use herald_platform::ErrorCode;
use herald_platform::backend_tests;
use herald_platform::testing::BackendSet;
use uuid::Uuid;

use super::{TestService, buyer, claims, order};
use crate::store::reservations::ReservedLine;

backend_tests!(
    concurrent_orders_never_oversell(threads = 4),
    an_order_reserves_every_line_or_none,
    a_retried_reservation_takes_stock_once,
    a_release_gives_the_stock_back_once,
    a_release_before_the_reservation_keeps_it_from_taking_stock,
    orders_sharing_products_in_any_order_all_complete(threads = 4),
    racing_retries_and_releases_of_one_order_act_once(threads = 4),
    a_release_racing_its_reservation_leaves_the_stock_whole(threads = 4)
);

async fn concurrent_orders_never_oversell(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.add_product("Espresso Beans", "coffee", 50).await;
    let before = s.events().await.len();

    let attempts: Vec<_> = (0..200)
        .map(|_| {
            let catalog = s.catalog.clone();
            tokio::spawn(async move {
                catalog
                    .reserve_stock(&order(&[(beans.id, 1)]), &buyer())
                    .await
            })
        })
        .collect();
    let (mut reserved, mut refused) = (0, 0);
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(reservation) => {
                assert_eq!(reservation.items.len(), 1);
                reserved += 1;
            }
            Err(e) => {
                assert_eq!(e.code(), ErrorCode::InsufficientStock, "{set:?}: {e:#}");
                assert_eq!(
                    e.to_string(),
                    "not enough stock for Espresso Beans (0 left)"
                );
                refused += 1;
            }
        }
    }
    assert_eq!((reserved, refused), (50, 150), "{set:?}");
    assert_eq!(s.stock_of(beans.id).await, 0);

    // One change per reservation, each one unit down; the crossings exactly once.
    let events: Vec<_> = s.events().await.into_iter().skip(before).collect();
    let mut levels: Vec<i64> = events
        .iter()
        .filter(|e| e.event_type == StockChanged::TYPE)
        .map(|e| {
            let changed: StockChanged = e.payload().unwrap();
            assert_eq!(changed.old_stock - changed.new_stock, 1);
            assert_eq!(changed.reason, StockChangeReason::Reserved);
            assert!(changed.order_id.is_some());
            changed.new_stock
        })
        .collect();
    levels.sort_unstable();
    assert_eq!(levels, (0..50).collect::<Vec<i64>>());
    let count = |t: &str| events.iter().filter(|e| e.event_type == t).count();
    assert_eq!(count(OutOfStock::TYPE), 1);
    assert_eq!(count(LowStock::TYPE), 1);
    assert_eq!(events.len(), 52);
    s.finish().await;
}

async fn an_order_reserves_every_line_or_none(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.add_product("Espresso Beans", "coffee", 10).await;
    let mugs = s.add_product("Mug", "kitchen", 3).await;
    let before = s.events().await.len();

    // Whichever line is locked first, the short one undoes the other.
    for lines in [[(beans.id, 2), (mugs.id, 4)], [(mugs.id, 4), (beans.id, 2)]] {
        let e = s
            .catalog
            .reserve_stock(&order(&lines), &buyer())
            .await
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InsufficientStock, "{set:?}");
        assert_eq!(e.to_string(), "not enough stock for Mug (3 left)");
    }
    let e = s
        .catalog
        .reserve_stock(&order(&[(beans.id, 2), (Uuid::now_v7(), 1)]), &buyer())
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotFound);
    assert_eq!(s.stock_of(beans.id).await, 10, "{set:?}");
    assert_eq!(s.stock_of(mugs.id).await, 3);
    assert_eq!(s.events().await.len(), before, "nothing announced");

    let request = order(&[(mugs.id, 3), (beans.id, 2)]);
    let reservation = s.catalog.reserve_stock(&request, &buyer()).await.unwrap();
    assert_eq!(reservation.order_id, request.order_id);
    assert_eq!(
        reservation.items,
        [
            ReservedLine {
                product_id: mugs.id,
                name: "Mug".into(),
                category: "kitchen".into(),
                quantity: 3,
                unit_price_cents: 1299,
                currency: "USD".into(),
            },
            ReservedLine {
                product_id: beans.id,
                name: "Espresso Beans".into(),
                category: "coffee".into(),
                quantity: 2,
                unit_price_cents: 1299,
                currency: "USD".into(),
            },
        ],
        "lines in the order asked"
    );
    assert_eq!(
        (s.stock_of(beans.id).await, s.stock_of(mugs.id).await),
        (8, 0)
    );
    let mut types = s.event_types_since(before).await;
    types.sort();
    assert_eq!(
        types,
        [OutOfStock::TYPE, StockChanged::TYPE, StockChanged::TYPE]
    );
    s.finish().await;
}

async fn a_retried_reservation_takes_stock_once(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.add_product("Espresso Beans", "coffee", 10).await;
    let ada = buyer();
    let request = order(&[(beans.id, 3)]);
    let first = s.catalog.reserve_stock(&request, &ada).await.unwrap();
    let events = s.events().await.len();

    let again = s.catalog.reserve_stock(&request, &ada).await.unwrap();
    assert_eq!(again, first, "{set:?}");
    // A retry answers what was reserved, whatever it asks now.
    let changed = crate::domain::ReservationRequest {
        lines: vec![(beans.id, 5)],
        ..request.clone()
    };
    assert_eq!(
        s.catalog.reserve_stock(&changed, &ada).await.unwrap(),
        first
    );
    assert_eq!(s.stock_of(beans.id).await, 7);
    assert_eq!(s.events().await.len(), events);

    // The order id is someone else's.
    let e = s
        .catalog
        .reserve_stock(&request, &buyer())
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Conflict);
    assert_eq!(s.stock_of(beans.id).await, 7);
    s.finish().await;
}

async fn a_release_gives_the_stock_back_once(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.add_product("Espresso Beans", "coffee", 6).await;
    let mugs = s.add_product("Mug", "kitchen", 2).await;
    let ada = buyer();
    let request = order(&[(beans.id, 2), (mugs.id, 2)]);
    s.catalog.reserve_stock(&request, &ada).await.unwrap();
    assert_eq!(
        (s.stock_of(beans.id).await, s.stock_of(mugs.id).await),
        (4, 0)
    );
    let before = s.events().await.len();

    // Someone else cannot release it; nothing moves.
    let e = s
        .catalog
        .release_stock(request.order_id, &buyer())
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Forbidden, "{set:?}");
    assert_eq!(s.stock_of(beans.id).await, 4);

    assert!(
        s.catalog
            .release_stock(request.order_id, &ada)
            .await
            .unwrap()
    );
    assert!(
        !s.catalog
            .release_stock(request.order_id, &ada)
            .await
            .unwrap()
    );
    let admin = claims(Uuid::now_v7(), Role::Admin);
    assert!(
        !s.catalog
            .release_stock(request.order_id, &admin)
            .await
            .unwrap()
    );
    assert_eq!(
        (s.stock_of(beans.id).await, s.stock_of(mugs.id).await),
        (6, 2),
        "{set:?}"
    );
    let events: Vec<_> = s.events().await.into_iter().skip(before).collect();
    let changes: Vec<(i64, i64)> = events
        .iter()
        .filter(|e| e.event_type == StockChanged::TYPE)
        .map(|e| {
            let changed: StockChanged = e.payload().unwrap();
            assert_eq!(changed.reason, StockChangeReason::Released);
            assert_eq!(changed.order_id, Some(request.order_id));
            (changed.old_stock, changed.new_stock)
        })
        .collect();
    let mut expected = vec![(4, 6), (0, 2)];
    if mugs.id < beans.id {
        expected.reverse();
    }
    assert_eq!(changes, expected);
    assert_eq!(
        events
            .iter()
            .filter(|e| e.event_type == BackInStock::TYPE)
            .count(),
        1
    );

    // Released means done: the same order id cannot reserve again.
    let e = s.catalog.reserve_stock(&request, &ada).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Conflict);
    assert_eq!(s.stock_of(beans.id).await, 6);
    s.finish().await;
}

async fn a_release_before_the_reservation_keeps_it_from_taking_stock(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.add_product("Espresso Beans", "coffee", 5).await;
    let ada = buyer();
    let request = order(&[(beans.id, 1)]);
    // The orders service gave up on a slow reservation and released it first.
    assert!(
        !s.catalog
            .release_stock(request.order_id, &ada)
            .await
            .unwrap()
    );
    let e = s.catalog.reserve_stock(&request, &ada).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Conflict, "{set:?}");
    assert_eq!(s.stock_of(beans.id).await, 5);
    assert!(
        !s.catalog
            .release_stock(request.order_id, &ada)
            .await
            .unwrap()
    );
    assert_eq!(s.stock_of(beans.id).await, 5);
    s.finish().await;
}

async fn orders_sharing_products_in_any_order_all_complete(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.add_product("Espresso Beans", "coffee", 1000).await;
    let mugs = s.add_product("Mug", "kitchen", 1000).await;
    let orders: Vec<_> = (0..100)
        .map(|i| {
            let catalog = s.catalog.clone();
            let lines = if i % 2 == 0 {
                [(beans.id, 1), (mugs.id, 2)]
            } else {
                [(mugs.id, 2), (beans.id, 1)]
            };
            tokio::spawn(async move {
                let ada = buyer();
                let request = order(&lines);
                catalog.reserve_stock(&request, &ada).await?;
                catalog.release_stock(request.order_id, &ada).await?;
                catalog.reserve_stock(&order(&lines), &ada).await
            })
        })
        .collect();
    for placed in orders {
        placed.await.unwrap().unwrap();
    }
    assert_eq!(
        (s.stock_of(beans.id).await, s.stock_of(mugs.id).await),
        (900, 800),
        "{set:?}"
    );
    s.finish().await;
}

async fn racing_retries_and_releases_of_one_order_act_once(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.add_product("Espresso Beans", "coffee", 100).await;
    let ada = buyer();
    let request = order(&[(beans.id, 3)]);
    let retries: Vec<_> = (0..20)
        .map(|_| {
            let (catalog, request, ada) = (s.catalog.clone(), request.clone(), ada.clone());
            tokio::spawn(async move { catalog.reserve_stock(&request, &ada).await })
        })
        .collect();
    for retry in retries {
        let reservation = retry.await.unwrap().unwrap();
        assert_eq!(reservation.items[0].quantity, 3, "{set:?}");
    }
    assert_eq!(s.stock_of(beans.id).await, 97, "{set:?}");

    let releases: Vec<_> = (0..20)
        .map(|_| {
            let (catalog, ada) = (s.catalog.clone(), ada.clone());
            let order_id = request.order_id;
            tokio::spawn(async move { catalog.release_stock(order_id, &ada).await })
        })
        .collect();
    let mut released = 0;
    for release in releases {
        released += usize::from(release.await.unwrap().unwrap());
    }
    assert_eq!(released, 1, "{set:?}");
    assert_eq!(s.stock_of(beans.id).await, 100);
    s.finish().await;
}

async fn a_release_racing_its_reservation_leaves_the_stock_whole(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.add_product("Espresso Beans", "coffee", 1000).await;
    let races: Vec<_> = (0..50)
        .map(|_| {
            let catalog = s.catalog.clone();
            tokio::spawn(async move {
                let ada = buyer();
                let request = order(&[(beans.id, 1)]);
                let reserving = {
                    let (catalog, request, ada) = (catalog.clone(), request.clone(), ada.clone());
                    tokio::spawn(async move { catalog.reserve_stock(&request, &ada).await })
                };
                let released = catalog.release_stock(request.order_id, &ada).await.unwrap();
                let reserved = reserving.await.unwrap();
                (reserved, released)
            })
        })
        .collect();
    for race in races {
        match race.await.unwrap() {
            (Ok(_), released) => assert!(released, "{set:?}: reserved, never released"),
            (Err(e), released) => {
                assert_eq!(e.code(), ErrorCode::Conflict, "{e:#}");
                assert!(!released);
            }
        }
    }
    assert_eq!(s.stock_of(beans.id).await, 1000, "{set:?}");
    s.finish().await;
}
