use herald_events::OrderStatus;
use herald_platform::backend_tests;
use herald_platform::db::Database;
use herald_platform::testing::{BackendSet, drop_schema, isolated_settings, migrated_database};
use uuid::Uuid;

use crate::domain::{LineInput, OrderRequest, PageSize, PricedLine, PricedOrder, Viewer};
use crate::store::{
    self, Order, change_status, confirm_order, delete_unpriced_order, find_order,
    insert_placed_order, list_all_orders, list_orders,
};

backend_tests!(
    orders_round_trip_with_their_lines_in_the_buyers_order,
    buyers_see_their_own_priced_orders_newest_first_and_admins_see_all,
    only_unpriced_orders_are_deleted_and_priced_only_once,
    a_status_changes_only_from_the_status_it_expects_and_for_who_may_see_it,
    of_concurrent_cancels_exactly_one_wins(threads = 4)
);

async fn database(set: herald_platform::testing::BackendSet, dir: &std::path::Path) -> Database {
    migrated_database(
        &isolated_settings(set, dir),
        crate::SERVICE,
        &crate::migrations(),
    )
    .await
}

/// Stores an unpriced PLACED order of `lines` (name, quantity) and returns its id and the
/// product ids.
async fn placed(db: &Database, user: Uuid, lines: &[(&str, i64)]) -> (Uuid, Vec<Uuid>) {
    let products: Vec<Uuid> = lines.iter().map(|_| Uuid::now_v7()).collect();
    let inputs: Vec<LineInput> = products
        .iter()
        .zip(lines)
        .map(|(id, (_, quantity))| LineInput {
            product_id: id.to_string(),
            quantity: *quantity,
        })
        .collect();
    let request = OrderRequest::parse(&inputs).unwrap();
    let id = Uuid::now_v7();
    let mut tx = db.begin().await.unwrap();
    insert_placed_order(&mut tx, id, user, request.lines())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    (id, products)
}

/// A CONFIRMED order of `lines` (name, quantity), each unit at 250 cents.
async fn confirmed(db: &Database, user: Uuid, lines: &[(&str, i64)]) -> Order {
    let (id, products) = placed(db, user, lines).await;
    let priced = PricedOrder {
        lines: products
            .iter()
            .zip(lines)
            .map(|(product_id, (name, quantity))| PricedLine {
                product_id: *product_id,
                product_name: (*name).to_owned(),
                category: "coffee".to_owned(),
                quantity: *quantity,
                unit_price_cents: 250,
            })
            .collect(),
        total_cents: lines.iter().map(|(_, q)| q * 250).sum(),
        currency: "EUR".to_owned(),
    };
    let mut tx = db.begin().await.unwrap();
    let order = confirm_order(&mut tx, id, &priced).await.unwrap().unwrap();
    tx.commit().await.unwrap();
    order
}

async fn orders_round_trip_with_their_lines_in_the_buyers_order(set: BackendSet) {
    let dir = tempfile::tempdir().unwrap();
    let db = database(set, dir.path()).await;
    let ada = Uuid::now_v7();
    let order = confirmed(&db, ada, &[("Beans", 3), ("Mill", 1), ("Filter", 100)]).await;
    assert_eq!(order.status, OrderStatus::Confirmed, "{set:?}");
    assert_eq!(order.user_id, ada);
    assert_eq!(order.total_cents, 104 * 250);
    assert_eq!(order.currency, "EUR");
    let names: Vec<&str> = order
        .items
        .iter()
        .map(|i| i.product_name.as_str())
        .collect();
    assert_eq!(names, ["Beans", "Mill", "Filter"]);
    assert_eq!(order.items[2].quantity, 100);
    assert_eq!(order.items[0].category, "coffee");

    let found = find_order(db.pool(), order.id, Viewer::Buyer(ada))
        .await
        .unwrap();
    assert_eq!(found, Some(order.clone()));
    let snapshot = order.snapshot();
    assert_eq!(snapshot.order_id, order.id);
    assert_eq!(snapshot.placed_at, order.created_at);
    assert_eq!(snapshot.items[1].product_name, "Mill");
    drop_schema(&db).await;
}

async fn buyers_see_their_own_priced_orders_newest_first_and_admins_see_all(set: BackendSet) {
    let dir = tempfile::tempdir().unwrap();
    let db = database(set, dir.path()).await;
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let first = confirmed(&db, ada, &[("Beans", 1)]).await;
    let bobs = confirmed(&db, bob, &[("Mill", 1)]).await;
    let second = confirmed(&db, ada, &[("Filter", 2), ("Beans", 1)]).await;
    let third = confirmed(&db, ada, &[("Kettle", 1)]).await;
    let (unpriced, _) = placed(&db, ada, &[("Cup", 1)]).await;

    let ids = |orders: Vec<Order>| orders.into_iter().map(|o| o.id).collect::<Vec<_>>();
    let all = list_orders(&db, ada, PageSize::parse(None).unwrap())
        .await
        .unwrap();
    assert_eq!(all[1].items.len(), 2, "{set:?}");
    assert_eq!(ids(all), [third.id, second.id, first.id]);
    let two = list_orders(&db, ada, PageSize::parse(Some(2)).unwrap())
        .await
        .unwrap();
    assert_eq!(ids(two), [third.id, second.id]);
    let only_bobs = list_orders(&db, bob, PageSize::parse(None).unwrap())
        .await
        .unwrap();
    assert_eq!(ids(only_bobs), [bobs.id]);
    // Admins list every buyer's, newest first, in one status if asked; the unpriced never.
    let everyone = list_all_orders(&db, None, PageSize::parse(None).unwrap())
        .await
        .unwrap();
    assert_eq!(ids(everyone), [third.id, second.id, bobs.id, first.id]);
    let page = list_all_orders(&db, None, PageSize::parse(Some(2)).unwrap())
        .await
        .unwrap();
    assert_eq!(ids(page), [third.id, second.id]);
    let confirmed_ones = list_all_orders(
        &db,
        Some(OrderStatus::Confirmed),
        PageSize::parse(Some(3)).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(confirmed_ones[1].items.len(), 2, "{set:?}");
    assert_eq!(ids(confirmed_ones), [third.id, second.id, bobs.id]);
    let placed_ones = list_all_orders(
        &db,
        Some(OrderStatus::Placed),
        PageSize::parse(None).unwrap(),
    )
    .await
    .unwrap();
    assert!(placed_ones.is_empty(), "{set:?}: {placed_ones:?}");

    let pool = db.pool();
    assert_eq!(
        find_order(pool, first.id, Viewer::Buyer(bob))
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        find_order(pool, first.id, Viewer::Admin).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        find_order(pool, Uuid::now_v7(), Viewer::Admin)
            .await
            .unwrap(),
        None
    );
    // Waiting for its reservation: no one sees it yet.
    for viewer in [Viewer::Buyer(ada), Viewer::Admin] {
        assert_eq!(find_order(pool, unpriced, viewer).await.unwrap(), None);
    }
    drop_schema(&db).await;
}

async fn only_unpriced_orders_are_deleted_and_priced_only_once(set: BackendSet) {
    let dir = tempfile::tempdir().unwrap();
    let db = database(set, dir.path()).await;
    let ada = Uuid::now_v7();
    let (unpriced, _) = placed(&db, ada, &[("Beans", 1), ("Mill", 1)]).await;
    let order = confirmed(&db, ada, &[("Beans", 1)]).await;

    assert!(
        !delete_unpriced_order(&db, order.id).await.unwrap(),
        "{set:?}"
    );
    assert!(delete_unpriced_order(&db, unpriced).await.unwrap());
    assert!(!delete_unpriced_order(&db, unpriced).await.unwrap());
    let lines: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM order_lines")
        .fetch_one(db.pool())
        .await
        .unwrap();
    assert_eq!(lines, 1, "the deleted order's lines went with it");

    let priced = PricedOrder {
        lines: vec![],
        total_cents: 1,
        currency: "EUR".to_owned(),
    };
    let mut tx = db.begin().await.unwrap();
    assert_eq!(
        confirm_order(&mut tx, order.id, &priced).await.unwrap(),
        None
    );
    tx.rollback().await.unwrap();
    drop_schema(&db).await;
}

async fn a_status_changes_only_from_the_status_it_expects_and_for_who_may_see_it(set: BackendSet) {
    let dir = tempfile::tempdir().unwrap();
    let db = database(set, dir.path()).await;
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let order = confirmed(&db, ada, &[("Beans", 1)]).await;
    let change = |to: OrderStatus, from: Vec<OrderStatus>, viewer: Viewer| {
        let db = db.clone();
        async move {
            let mut tx = db.begin().await.unwrap();
            let changed = change_status(&mut tx, order.id, &from, to, viewer)
                .await
                .unwrap();
            tx.commit().await.unwrap();
            changed.map(|o| o.status)
        }
    };
    use OrderStatus::*;
    assert_eq!(
        change(Shipped, vec![Confirmed], Viewer::Buyer(bob)).await,
        None
    );
    assert_eq!(
        change(Shipped, vec![Confirmed], Viewer::Buyer(ada)).await,
        Some(Shipped),
        "{set:?}"
    );
    assert_eq!(change(Shipped, vec![Confirmed], Viewer::Admin).await, None);
    assert_eq!(
        change(Cancelled, vec![Placed, Confirmed], Viewer::Admin).await,
        None
    );
    assert_eq!(change(Placed, vec![], Viewer::Admin).await, None);
    let shipped = find_order(db.pool(), order.id, Viewer::Admin)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shipped.status, Shipped);
    assert!(shipped.updated_at >= order.updated_at);
    assert_eq!(shipped.created_at, order.created_at);
    assert_eq!(
        change(Delivered, vec![Shipped], Viewer::Admin).await,
        Some(Delivered)
    );
    drop_schema(&db).await;
}

async fn of_concurrent_cancels_exactly_one_wins(set: BackendSet) {
    let dir = tempfile::tempdir().unwrap();
    let db = database(set, dir.path()).await;
    let ada = Uuid::now_v7();
    let order = confirmed(&db, ada, &[("Beans", 1)]).await;
    let attempts: Vec<_> = (0..6)
        .map(|i| {
            let db = db.clone();
            let viewer = if i % 2 == 0 {
                Viewer::Buyer(ada)
            } else {
                Viewer::Admin
            };
            tokio::spawn(async move {
                let mut tx = db.begin().await.unwrap();
                let from = [OrderStatus::Placed, OrderStatus::Confirmed];
                let changed =
                    store::change_status(&mut tx, order.id, &from, OrderStatus::Cancelled, viewer)
                        .await
                        .unwrap();
                tx.commit().await.unwrap();
                changed.is_some()
            })
        })
        .collect();
    let mut winners = 0;
    for attempt in attempts {
        winners += usize::from(attempt.await.unwrap());
    }
    assert_eq!(winners, 1, "{set:?}");
    drop_schema(&db).await;
}
