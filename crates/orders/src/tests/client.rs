//! One contract, two implementations: orders called in process and orders called over
//! HTTP (with a service credential) answer every operation alike, errors included.

use std::sync::Arc;

use herald_events::{OrderStatus, Role};
use herald_platform::ErrorCode;
use herald_platform::auth::Claims;
use herald_platform::backend_tests;
use herald_platform::testing::BackendSet;
use herald_platform::testing::serve_on_loopback;
use uuid::Uuid;

use super::TestService;
use crate::client::{AllOrdersQuery, ListQuery, OrdersApi, OrdersOverHttp, PlaceOrderRequest};
use crate::domain::LineInput;

backend_tests!(both_implementations_keep_one_contract);

/// The service's orders directly, and the same service's routes on a loopback port.
async fn implementations(s: &TestService) -> Vec<(&'static str, Arc<dyn OrdersApi>)> {
    let client = serve_on_loopback(s.router.clone(), &s.key.service_key, "gateway", "orders").await;
    vec![
        ("in process", Arc::new(s.orders.clone())),
        ("over HTTP", Arc::new(OrdersOverHttp::new(client))),
    ]
}

fn acting(s: &TestService, user: Uuid, role: Role) -> Claims {
    s.key.claims(user, role)
}

fn request(lines: &[(&str, i64)]) -> PlaceOrderRequest {
    PlaceOrderRequest {
        items: lines
            .iter()
            .map(|(product_id, quantity)| LineInput {
                product_id: (*product_id).to_owned(),
                quantity: *quantity,
            })
            .collect(),
    }
}

fn first(first: Option<i64>) -> ListQuery {
    ListQuery { first }
}

fn all(first: Option<i64>, status: Option<OrderStatus>) -> AllOrdersQuery {
    AllOrdersQuery { first, status }
}

async fn both_implementations_keep_one_contract(set: BackendSet) {
    let s = TestService::start(set).await;
    for (how, orders) in implementations(&s).await {
        let beans = s.stock_room.add("Espresso Beans", 1_250, "EUR", 10);
        let mill = s.stock_room.add("Hand Mill", 4_999, "EUR", 2);
        let (beans_id, mill_id) = (beans.to_string(), mill.to_string());
        let ada = acting(&s, Uuid::now_v7(), Role::Customer);
        let bob = acting(&s, Uuid::now_v7(), Role::Customer);
        let admin = acting(&s, Uuid::now_v7(), Role::Admin);

        // Placed at catalog prices, confirmed, the stock reserved.
        let placed = orders
            .place_order(&ada, &request(&[(&beans_id, 3), (&mill_id, 1)]))
            .await
            .unwrap();
        assert_eq!(placed.status, OrderStatus::Confirmed, "{how}");
        assert_eq!(placed.user_id, ada.sub, "{how}");
        assert_eq!(placed.total_cents, 3 * 1_250 + 4_999, "{how}");
        assert_eq!(placed.currency, "EUR", "{how}");
        let lines: Vec<(Uuid, i64, i64)> = placed
            .items
            .iter()
            .map(|i| (i.product_id, i.quantity, i.unit_price_cents))
            .collect();
        assert_eq!(lines, [(beans, 3, 1_250), (mill, 1, 4_999)], "{how}");
        assert_eq!(s.stock_room.stock(beans), 7, "{how}");

        // Refusals reserve nothing: invalid requests, unknown products, too little stock.
        for (bad, code) in [
            (request(&[]), ErrorCode::BadUserInput),
            (request(&[("espresso", 1)]), ErrorCode::BadUserInput),
            (request(&[(&beans_id, 0)]), ErrorCode::BadUserInput),
            (
                request(&[(&beans_id, 1), (&beans_id, 1)]),
                ErrorCode::BadUserInput,
            ),
            (
                request(&[(&Uuid::now_v7().to_string(), 1)]),
                ErrorCode::NotFound,
            ),
            (request(&[(&mill_id, 2)]), ErrorCode::InsufficientStock),
        ] {
            let error = orders.place_order(&ada, &bad).await.unwrap_err();
            assert_eq!(error.code(), code, "{how}: {error}");
        }
        assert_eq!(s.stock_room.stock(beans), 7, "{how}");
        assert_eq!(s.stock_room.stock(mill), 1, "{how}");

        // The caller's own orders, newest first, a page at a time.
        let second = orders
            .place_order(&ada, &request(&[(&beans_id, 1)]))
            .await
            .unwrap();
        let mine = orders.my_orders(&ada, &first(None)).await.unwrap();
        assert_eq!(mine, [second.clone(), placed.clone()], "{how}");
        let page = orders.my_orders(&ada, &first(Some(1))).await.unwrap();
        assert_eq!(page.len(), 1, "{how}");
        assert_eq!(page[0], second, "{how}");
        assert!(
            orders
                .my_orders(&bob, &first(None))
                .await
                .unwrap()
                .is_empty(),
            "{how}"
        );
        for bad in [0, -1, 101] {
            let error = orders.my_orders(&ada, &first(Some(bad))).await.unwrap_err();
            assert_eq!(error.code(), ErrorCode::BadUserInput, "{how}: {error}");
        }

        // One order: the buyer's own, any for admins, NOT_FOUND for anyone else or none.
        assert_eq!(
            orders.order(&ada, placed.id).await.unwrap(),
            placed,
            "{how}"
        );
        assert_eq!(
            orders.order(&admin, placed.id).await.unwrap(),
            placed,
            "{how}"
        );
        for (who, id) in [(&bob, placed.id), (&ada, Uuid::now_v7())] {
            let error = orders.order(who, id).await.unwrap_err();
            assert_eq!(error.code(), ErrorCode::NotFound, "{how}: {error}");
        }

        // Cancelling: not someone else's; the buyer's own once, which gives the stock back.
        let error = orders.cancel(&bob, second.id).await.unwrap_err();
        assert_eq!(error.code(), ErrorCode::NotFound, "{how}: {error}");
        let cancelled = orders.cancel(&ada, second.id).await.unwrap();
        assert_eq!(cancelled.status, OrderStatus::Cancelled, "{how}");
        assert_eq!(s.stock_room.stock(beans), 7, "{how}");
        let error = orders.cancel(&ada, second.id).await.unwrap_err();
        assert_eq!(error.code(), ErrorCode::BadUserInput, "{how}: {error}");

        // Moving an order along: admins only, forward only, on an order that exists.
        let error = orders
            .update_status(&ada, placed.id, OrderStatus::Shipped)
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::Forbidden, "{how}: {error}");
        let shipped = orders
            .update_status(&admin, placed.id, OrderStatus::Shipped)
            .await
            .unwrap();
        assert_eq!(shipped.status, OrderStatus::Shipped, "{how}");
        assert_eq!(
            orders.order(&ada, placed.id).await.unwrap(),
            shipped,
            "{how}"
        );
        let error = orders
            .update_status(&admin, placed.id, OrderStatus::Placed)
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::BadUserInput, "{how}: {error}");
        let error = orders
            .update_status(&admin, Uuid::now_v7(), OrderStatus::Shipped)
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::NotFound, "{how}: {error}");
        let error = orders.cancel(&admin, placed.id).await.unwrap_err();
        assert_eq!(error.code(), ErrorCode::BadUserInput, "{how}: {error}");

        // Every buyer's orders, for admins: newest first (those of an earlier round after
        // this round's), a page at a time, in one status if asked.
        let bobs = orders
            .place_order(&bob, &request(&[(&beans_id, 2)]))
            .await
            .unwrap();
        let everyone = orders.all_orders(&admin, &all(None, None)).await.unwrap();
        assert_eq!(
            everyone[..3],
            [bobs.clone(), cancelled.clone(), shipped.clone()],
            "{how}"
        );
        assert!(
            everyone.is_sorted_by(|a, b| a.created_at >= b.created_at),
            "{how}: {everyone:?}"
        );
        let page = orders
            .all_orders(&admin, &all(Some(2), None))
            .await
            .unwrap();
        assert_eq!(page, [bobs.clone(), cancelled.clone()], "{how}");
        for (status, newest) in [
            (OrderStatus::Confirmed, &bobs),
            (OrderStatus::Cancelled, &cancelled),
            (OrderStatus::Shipped, &shipped),
        ] {
            let listed = orders
                .all_orders(&admin, &all(None, Some(status)))
                .await
                .unwrap();
            assert_eq!(listed.first(), Some(newest), "{how}: {status:?}");
            assert!(
                listed.iter().all(|order| order.status == status),
                "{how}: {status:?} {listed:?}"
            );
            let one = orders
                .all_orders(&admin, &all(Some(1), Some(status)))
                .await
                .unwrap();
            assert_eq!(one, std::slice::from_ref(newest), "{how}: {status:?}");
        }
        let delivered = orders
            .all_orders(&admin, &all(None, Some(OrderStatus::Delivered)))
            .await
            .unwrap();
        assert!(delivered.is_empty(), "{how}: {delivered:?}");
        for bad in [0, -1, 101] {
            let error = orders
                .all_orders(&admin, &all(Some(bad), None))
                .await
                .unwrap_err();
            assert_eq!(error.code(), ErrorCode::BadUserInput, "{how}: {error}");
        }
        // Customers list only their own, whatever they ask.
        for query in [all(None, None), all(Some(0), Some(OrderStatus::Shipped))] {
            let error = orders.all_orders(&ada, &query).await.unwrap_err();
            assert_eq!(error.code(), ErrorCode::Forbidden, "{how}: {error}");
            assert!(error.to_string().contains("admins"), "{how}: {error}");
        }
    }
    s.finish().await;
}
