use herald_events::{Event, StockChangeReason, StockChanged};
use herald_platform::backend_tests;
use herald_platform::bus::{EventHandler, HandlerError};
use herald_platform::testing::BackendSet;
use serde_json::json;
use uuid::Uuid;

use super::{TestService, buyer, cancelled, order};

backend_tests!(
    a_cancelled_order_gets_its_stock_back_once_however_often_it_is_told,
    a_direct_release_first_leaves_the_event_nothing_to_do,
    malformed_payloads_are_rejected_and_foreign_types_ignored
);

async fn a_cancelled_order_gets_its_stock_back_once_however_often_it_is_told(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.add_product("Espresso Beans", "coffee", 10).await;
    let ada = buyer();
    let request = order(&[(beans.id, 4)]);
    s.catalog.reserve_stock(&request, &ada).await.unwrap();
    assert_eq!(s.stock_of(beans.id).await, 6);
    let before = s.events().await.len();

    let event = cancelled(request.order_id, ada.sub, &request.lines);
    s.consumer.handle(&event).await.unwrap();
    assert_eq!(s.stock_of(beans.id).await, 10, "{set:?}");
    // Delivered again; then announced again under a new event id; then released
    // directly by the orders service: no second effect.
    s.consumer.handle(&event).await.unwrap();
    let again = cancelled(request.order_id, ada.sub, &request.lines);
    s.consumer.handle(&again).await.unwrap();
    assert!(
        !s.catalog
            .release_stock(request.order_id, &ada)
            .await
            .unwrap()
    );
    assert_eq!(s.stock_of(beans.id).await, 10);

    let released: Vec<StockChanged> = s
        .events()
        .await
        .into_iter()
        .skip(before)
        .map(|e| e.payload().unwrap())
        .collect();
    assert_eq!(released.len(), 1);
    assert_eq!(
        (
            released[0].old_stock,
            released[0].new_stock,
            released[0].reason
        ),
        (6, 10, StockChangeReason::Released)
    );
    s.finish().await;
}

async fn a_direct_release_first_leaves_the_event_nothing_to_do(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.add_product("Espresso Beans", "coffee", 10).await;
    let ada = buyer();
    let request = order(&[(beans.id, 4)]);
    s.catalog.reserve_stock(&request, &ada).await.unwrap();
    assert!(
        s.catalog
            .release_stock(request.order_id, &ada)
            .await
            .unwrap()
    );
    let before = s.events().await.len();
    let event = cancelled(request.order_id, ada.sub, &request.lines);
    s.consumer.handle(&event).await.unwrap();
    s.consumer.handle(&event).await.unwrap();
    assert_eq!(s.stock_of(beans.id).await, 10, "{set:?}");
    assert_eq!(s.events().await.len(), before);

    // An order that never reserved anything is cancelled: nothing to give back, and
    // a late reservation of it takes nothing.
    let never = order(&[(beans.id, 1)]);
    s.consumer
        .handle(&cancelled(never.order_id, ada.sub, &never.lines))
        .await
        .unwrap();
    assert!(s.catalog.reserve_stock(&never, &ada).await.is_err());
    assert_eq!(s.stock_of(beans.id).await, 10);
    s.finish().await;
}

async fn malformed_payloads_are_rejected_and_foreign_types_ignored(set: BackendSet) {
    let s = TestService::start(set).await;
    let mut malformed = cancelled(Uuid::now_v7(), Uuid::now_v7(), &[]);
    malformed.data = json!({ "orderId": "not a uuid" });
    assert!(
        matches!(
            s.consumer.handle(&malformed).await,
            Err(HandlerError::Reject(_))
        ),
        "{set:?}"
    );
    let mut foreign = cancelled(Uuid::now_v7(), Uuid::now_v7(), &[]);
    foreign.event_type = herald_events::OrderPlaced::TYPE.to_owned();
    s.consumer.handle(&foreign).await.unwrap();
    s.finish().await;
}
