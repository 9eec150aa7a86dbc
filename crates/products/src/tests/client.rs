//! One contract, two implementations: the products service called in process and called
//! over HTTP (with the orders service's credential) answer every operation alike, errors
//! included.

use std::sync::Arc;

use herald_events::Role;
use herald_platform::ErrorCode;
use herald_platform::auth::Claims;
use herald_platform::backend_tests;
use herald_platform::testing::BackendSet;
use herald_platform::testing::serve_on_loopback;
use uuid::Uuid;

use super::TestService;
use crate::client::{CatalogApi, CatalogOverHttp, InProcessCatalog, ListQuery, StockApi};
use crate::domain::{MAX_BATCH, ProductInput, ProductPatch, ReservationRequest};

backend_tests!(both_implementations_keep_one_contract);

/// The service's catalog directly, and the same service's routes on a loopback port.
/// Both of the service's traits, as one implementation serves them.
trait Products: CatalogApi + StockApi {}
impl<T: CatalogApi + StockApi> Products for T {}

async fn implementations(s: &TestService) -> Vec<(&'static str, Arc<dyn Products>)> {
    let client =
        serve_on_loopback(s.router.clone(), &s.key.service_key, "orders", "products").await;
    vec![
        (
            "in process",
            Arc::new(InProcessCatalog::new(s.catalog.clone())),
        ),
        ("over HTTP", Arc::new(CatalogOverHttp::new(client))),
    ]
}

fn acting(s: &TestService, role: Role) -> Claims {
    s.key
        .verifier
        .verify(&s.key.user_token(Uuid::now_v7(), role))
        .unwrap()
}

fn input(name: &str, category: &str, stock: i64) -> ProductInput {
    ProductInput {
        name: name.to_owned(),
        description: Some(format!("{name}, described")),
        category: category.to_owned(),
        price_cents: 1299,
        currency: None,
        stock,
    }
}

fn listing(first: Option<i64>, after: Option<String>, category: &str) -> ListQuery {
    ListQuery {
        first,
        after,
        category: Some(category.to_owned()),
        search: None,
    }
}

#[track_caller]
fn refused<T: std::fmt::Debug>(how: &str, result: herald_platform::ApiResult<T>, code: ErrorCode) {
    let error = result.unwrap_err();
    assert_eq!(error.code(), code, "{how}: {error}");
}

async fn both_implementations_keep_one_contract(set: BackendSet) {
    let s = TestService::start(set).await;
    for (i, (how, catalog)) in implementations(&s).await.into_iter().enumerate() {
        let admin = acting(&s, Role::Admin);
        let ada = acting(&s, Role::Customer);
        let bob = acting(&s, Role::Customer);
        let shelf = format!("shelf{i}");

        // Only admins add products; input is checked after who asks.
        let beans = catalog
            .create_product(&admin, &input(" Espresso Beans ", &shelf, 10))
            .await
            .unwrap();
        assert_eq!(
            (beans.name.as_str(), beans.currency.as_str()),
            ("Espresso Beans", "USD"),
            "{how}"
        );
        let mug = catalog
            .create_product(&admin, &input("Mug", &shelf, 3))
            .await
            .unwrap();
        let pot = catalog
            .create_product(&admin, &input("Moka Pot", &shelf, 1))
            .await
            .unwrap();
        let bad = input("", &shelf, -1);
        refused(
            how,
            catalog.create_product(&ada, &input("Tea", &shelf, 1)).await,
            ErrorCode::Forbidden,
        );
        refused(
            how,
            catalog.create_product(&ada, &bad).await,
            ErrorCode::Forbidden,
        );
        refused(
            how,
            catalog.create_product(&admin, &bad).await,
            ErrorCode::BadUserInput,
        );

        // One product, or NOT_FOUND.
        assert_eq!(catalog.product(mug.id).await.unwrap(), mug, "{how}");
        refused(
            how,
            catalog.product(Uuid::now_v7()).await,
            ErrorCode::NotFound,
        );

        // Pages of a category, in creation order, with the total; search by text.
        let first = catalog.list(&listing(Some(2), None, &shelf)).await.unwrap();
        assert_eq!(first.nodes, [beans.clone(), mug.clone()], "{how}");
        assert_eq!(first.total_count, 3, "{how}");
        assert!(first.page_info.has_next_page, "{how}");
        let rest = catalog
            .list(&listing(
                Some(2),
                first.page_info.end_cursor.clone(),
                &shelf,
            ))
            .await
            .unwrap();
        assert_eq!(rest.nodes, std::slice::from_ref(&pot), "{how}");
        assert!(!rest.page_info.has_next_page, "{how}");
        let searched = catalog
            .list(&ListQuery {
                search: Some("moka".to_owned()),
                ..listing(None, None, &shelf)
            })
            .await
            .unwrap();
        assert_eq!(searched.nodes, std::slice::from_ref(&pot), "{how}");
        for bad in [
            listing(Some(0), None, &shelf),
            listing(Some(1000), None, &shelf),
            listing(None, Some("not a cursor".to_owned()), &shelf),
            listing(None, None, &"c".repeat(65)),
        ] {
            refused(how, catalog.list(&bad).await, ErrorCode::BadUserInput);
        }

        // Batched lookups: those that exist, once each; at most MAX_BATCH ids.
        let mut found = catalog
            .lookup(&[mug.id, Uuid::now_v7(), beans.id, mug.id])
            .await
            .unwrap();
        found.sort_by_key(|p| p.id);
        assert_eq!(found, [beans.clone(), mug.clone()], "{how}");
        assert!(catalog.lookup(&[]).await.unwrap().is_empty(), "{how}");
        let too_many: Vec<Uuid> = (0..=MAX_BATCH).map(|_| Uuid::now_v7()).collect();
        refused(
            how,
            catalog.lookup(&too_many).await,
            ErrorCode::BadUserInput,
        );

        // Changing details and stock: admins only, known products, valid values.
        let cheaper = ProductPatch {
            price_cents: Some(999),
            ..ProductPatch::default()
        };
        let updated = catalog
            .update_product(&admin, mug.id, &cheaper)
            .await
            .unwrap();
        assert_eq!((updated.price_cents, updated.name), (999, mug.name.clone()));
        refused(
            how,
            catalog.update_product(&ada, mug.id, &cheaper).await,
            ErrorCode::Forbidden,
        );
        refused(
            how,
            catalog
                .update_product(&admin, Uuid::now_v7(), &cheaper)
                .await,
            ErrorCode::NotFound,
        );
        let negative = ProductPatch {
            price_cents: Some(-1),
            ..ProductPatch::default()
        };
        refused(
            how,
            catalog.update_product(&admin, mug.id, &negative).await,
            ErrorCode::BadUserInput,
        );
        assert_eq!(
            catalog.set_stock(&admin, mug.id, 7).await.unwrap().stock,
            7,
            "{how}"
        );
        refused(
            how,
            catalog.set_stock(&ada, mug.id, 8).await,
            ErrorCode::Forbidden,
        );
        refused(
            how,
            catalog.set_stock(&admin, Uuid::now_v7(), 8).await,
            ErrorCode::NotFound,
        );
        refused(
            how,
            catalog.set_stock(&admin, mug.id, -1).await,
            ErrorCode::BadUserInput,
        );

        // Watching, as often as one likes, a product that exists.
        for _ in 0..2 {
            catalog.watch_product(&ada, pot.id).await.unwrap();
        }
        refused(
            how,
            catalog.watch_product(&ada, Uuid::now_v7()).await,
            ErrorCode::NotFound,
        );

        // Reserving for Ada's order: all lines priced, again the same answer.
        let order = ReservationRequest {
            order_id: Uuid::now_v7(),
            lines: vec![(mug.id, 2), (beans.id, 3)],
        };
        let reserved = catalog.reserve_stock(&ada, &order).await.unwrap();
        assert_eq!(reserved.order_id, order.order_id, "{how}");
        let lines: Vec<_> = reserved
            .items
            .iter()
            .map(|l| (l.product_id, l.quantity, l.unit_price_cents))
            .collect();
        assert_eq!(lines, [(mug.id, 2, 999), (beans.id, 3, 1299)], "{how}");
        assert_eq!(
            catalog.reserve_stock(&ada, &order).await.unwrap(),
            reserved,
            "{how}"
        );
        assert_eq!(catalog.product(mug.id).await.unwrap().stock, 5, "{how}");
        refused(
            how,
            catalog.reserve_stock(&bob, &order).await,
            ErrorCode::Conflict,
        );
        let short = ReservationRequest {
            order_id: Uuid::now_v7(),
            lines: vec![(beans.id, 1), (pot.id, 2)],
        };
        refused(
            how,
            catalog.reserve_stock(&ada, &short).await,
            ErrorCode::InsufficientStock,
        );
        let unknown = ReservationRequest {
            order_id: Uuid::now_v7(),
            lines: vec![(Uuid::now_v7(), 1)],
        };
        refused(
            how,
            catalog.reserve_stock(&ada, &unknown).await,
            ErrorCode::NotFound,
        );
        for lines in [
            vec![],
            vec![(beans.id, 0)],
            vec![(beans.id, 1), (beans.id, 1)],
        ] {
            let malformed = ReservationRequest {
                order_id: Uuid::now_v7(),
                lines,
            };
            refused(
                how,
                catalog.reserve_stock(&ada, &malformed).await,
                ErrorCode::BadUserInput,
            );
        }
        assert_eq!(catalog.product(beans.id).await.unwrap().stock, 7, "{how}");

        // Releasing: the buyer's (or an admin's) alone, once; then the order is spent.
        refused(
            how,
            catalog.release_stock(&bob, order.order_id).await,
            ErrorCode::Forbidden,
        );
        assert!(
            catalog.release_stock(&ada, order.order_id).await.unwrap(),
            "{how}"
        );
        assert!(
            !catalog.release_stock(&ada, order.order_id).await.unwrap(),
            "{how}"
        );
        assert_eq!(catalog.product(mug.id).await.unwrap().stock, 7, "{how}");
        assert_eq!(catalog.product(beans.id).await.unwrap().stock, 10, "{how}");
        refused(
            how,
            catalog.reserve_stock(&ada, &order).await,
            ErrorCode::Conflict,
        );
    }
    s.finish().await;
}
