use herald_events::{
    BackInStock, CategoryInterest, Envelope, Event, Preferences, PreferencesUpdated,
    StockChangeReason, StockChanged, StockLevel,
};
use herald_platform::backend_tests;
use herald_platform::bus::{EventHandler, HandlerError};
use herald_platform::testing::BackendSet;
use serde_json::json;
use uuid::Uuid;

use super::{TestProduct, TestService, cancelled, confirmed, created, out_of_stock, registered};
use crate::store::{find_product, preferred_categories_of, purchases_of};

backend_tests!(
    product_events_build_the_catalog_replica_once_and_in_order,
    orders_become_purchases_once_and_cancellations_take_them_back,
    confirmed_orders_handled_together_become_purchases_once,
    preferred_categories_follow_the_newest_preferences,
    malformed_payloads_are_rejected_and_foreign_types_ignored
);

fn stock_changed(product: &TestProduct, old: i64, new: i64) -> Envelope {
    Envelope::new(
        "products",
        None,
        &StockChanged {
            product_id: product.id,
            name: product.name.clone(),
            old_stock: old,
            new_stock: new,
            reason: StockChangeReason::Reserved,
            order_id: None,
        },
    )
}

async fn product_events_build_the_catalog_replica_once_and_in_order(set: BackendSet) {
    let s = TestService::start(set).await;
    let grinder = TestProduct {
        id: Uuid::now_v7(),
        name: "Burr Grinder".to_owned(),
        category: "coffee".to_owned(),
    };
    // A stock level heard before the product's creation is kept; the product is not
    // known (nor recommendable) until its product.created arrives.
    let early = stock_changed(&grinder, 5, 3);
    let creation = created(&grinder, 5);
    s.hear(&early).await;
    assert_eq!(
        find_product(s.db.pool(), grinder.id).await.unwrap(),
        None,
        "{set:?}"
    );
    s.hear(&creation).await;
    s.hear(&creation).await;
    let known = find_product(s.db.pool(), grinder.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (known.name.as_str(), known.category.as_str()),
        ("Burr Grinder", "coffee")
    );
    assert!(known.in_stock);

    let gone = out_of_stock(&grinder);
    s.hear(&gone).await;
    assert!(
        !find_product(s.db.pool(), grinder.id)
            .await
            .unwrap()
            .unwrap()
            .in_stock
    );
    // An older stock event redelivered late does not undo the newer level.
    s.hear(&early).await;
    let mut late = stock_changed(&grinder, 3, 2);
    late.time = gone.time - chrono::Duration::seconds(1);
    s.hear(&late).await;
    assert!(
        !find_product(s.db.pool(), grinder.id)
            .await
            .unwrap()
            .unwrap()
            .in_stock
    );
    let back = Envelope::new(
        "products",
        None,
        &BackInStock(StockLevel {
            product_id: grinder.id,
            name: grinder.name.clone(),
            stock: 4,
            threshold: 5,
        }),
    );
    s.hear(&back).await;
    assert!(
        find_product(s.db.pool(), grinder.id)
            .await
            .unwrap()
            .unwrap()
            .in_stock
    );
    s.finish().await;
}

async fn orders_become_purchases_once_and_cancellations_take_them_back(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.add_product("Espresso Beans", "coffee", 10).await;
    let ada = Uuid::now_v7();
    let order = confirmed(ada, &[&beans]);
    s.hear(&order).await;
    s.hear(&order).await;
    // The same order announced again under a new event id adds nothing either.
    let mut again = order.clone();
    again.id = Uuid::now_v7();
    s.hear(&again).await;
    assert_eq!(
        purchases_of(s.db.pool(), ada).await.unwrap().len(),
        1,
        "{set:?}"
    );

    let cancellation = cancelled(&order);
    s.hear(&cancellation).await;
    s.hear(&cancellation).await;
    assert!(purchases_of(s.db.pool(), ada).await.unwrap().is_empty());

    // Cancelled before its confirmation arrived: the late confirmation adds nothing.
    let late = confirmed(ada, &[&beans]);
    s.hear(&cancelled(&late)).await;
    s.hear(&late).await;
    assert!(purchases_of(s.db.pool(), ada).await.unwrap().is_empty());
    s.finish().await;
}

async fn confirmed_orders_handled_together_become_purchases_once(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.add_product("Espresso Beans", "coffee", 10).await;
    let mug = s.add_product("Mug", "kitchen", 10).await;
    let (ada, bob) = (Uuid::now_v7(), Uuid::now_v7());
    let first = confirmed(ada, &[&beans, &mug]);
    let second = confirmed(bob, &[&beans]);
    let mut again = first.clone();
    again.id = Uuid::now_v7();
    let mut malformed = confirmed(bob, &[&mug]);
    malformed.data = json!({ "orderId": "not a uuid" });
    // Cancelled before its confirmation arrived: the late confirmation adds nothing.
    let late = confirmed(bob, &[&mug]);
    s.hear(&cancelled(&late)).await;
    assert!(s.consumer.batches(&first), "{set:?}");

    let batch = [first.clone(), second, malformed, again, first.clone(), late];
    let outcomes = s.consumer.handle_batch(&batch).await.unwrap();
    assert!(
        matches!(
            &outcomes[..],
            [
                Ok(()),
                Ok(()),
                Err(HandlerError::Reject(_)),
                Ok(()),
                Ok(()),
                Ok(())
            ]
        ),
        "{set:?}: {outcomes:?}"
    );
    let outcomes = s.consumer.handle_batch(&[first]).await.unwrap();
    assert!(matches!(&outcomes[..], [Ok(())]), "{outcomes:?}");
    assert_eq!(purchases_of(s.db.pool(), ada).await.unwrap().len(), 2);
    assert_eq!(purchases_of(s.db.pool(), bob).await.unwrap().len(), 1);
    // Each user's categories are announced once, however many orders named them.
    let mut expected = vec![
        (ada, "coffee".to_owned()),
        (ada, "kitchen".to_owned()),
        (bob, "coffee".to_owned()),
        (bob, "kitchen".to_owned()),
    ];
    expected.sort();
    assert_eq!(announced_interests(&s).await, expected, "{set:?}");
    s.finish().await;
}

/// The `recommendation.category_interest` events in the service's outbox, sorted.
async fn announced_interests(s: &TestService) -> Vec<(Uuid, String)> {
    let envelopes: Vec<String> = sqlx::query_scalar("SELECT envelope FROM herald_outbox")
        .fetch_all(s.db.pool())
        .await
        .unwrap();
    let mut interests: Vec<(Uuid, String)> = envelopes
        .iter()
        .map(|raw| serde_json::from_str::<Envelope>(raw).unwrap())
        .filter(|envelope| envelope.event_type == CategoryInterest::TYPE)
        .map(|envelope| {
            let interest: CategoryInterest = envelope.payload().unwrap();
            (interest.user_id, interest.category)
        })
        .collect();
    interests.sort();
    interests
}

async fn preferred_categories_follow_the_newest_preferences(set: BackendSet) {
    let s = TestService::start(set).await;
    let ada = Uuid::now_v7();
    s.hear(&registered(ada, &["coffee"], 1)).await;
    let update = |categories: &[&str], version| {
        Envelope::new(
            "users",
            Some(ada.to_string()),
            &PreferencesUpdated {
                user_id: ada,
                preferences: Preferences {
                    categories: categories.iter().map(|c| (*c).to_owned()).collect(),
                    ..Preferences::default()
                },
                preferences_version: version,
            },
        )
    };
    s.hear(&update(&["tea", "books"], 3)).await;
    s.hear(&update(&["sport"], 2)).await;
    assert_eq!(
        preferred_categories_of(s.db.pool(), ada).await.unwrap(),
        vec!["tea", "books"],
        "{set:?}"
    );
    s.finish().await;
}

async fn malformed_payloads_are_rejected_and_foreign_types_ignored(set: BackendSet) {
    let s = TestService::start(set).await;
    let mut malformed = confirmed(Uuid::now_v7(), &[]);
    malformed.data = json!({ "orderId": "not a uuid" });
    assert!(
        matches!(
            s.consumer.handle(&malformed).await,
            Err(HandlerError::Reject(_))
        ),
        "{set:?}"
    );
    let mut foreign = confirmed(Uuid::now_v7(), &[]);
    foreign.event_type = herald_events::OrderPlaced::TYPE.to_owned();
    s.consumer.handle(&foreign).await.unwrap();
    s.finish().await;
}
