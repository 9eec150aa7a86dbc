use chrono::Utc;
use herald_events::{
    Envelope, OrderCancelled, OrderConfirmed, OrderDelivered, OrderLine, OrderPlaced, OrderShipped,
    OrderSnapshot, OrderStatus, Preferences, Role,
};
use herald_platform::backend_tests;
use herald_platform::bus::{EventHandler, HandlerError};
use herald_platform::testing::BackendSet;
use serde_json::json;
use uuid::Uuid;

use super::{TestService, registered};

backend_tests!(
    the_buyer_hears_of_each_step_of_their_order_and_nobody_else_does,
    order_updates_switched_off_are_recorded_as_suppressed,
    an_order_event_delivered_twice_notifies_once,
    an_order_event_before_the_buyers_registration_is_handled_again_soon,
    a_malformed_order_event_is_rejected,
    order_events_handled_together_each_get_their_own_outcome
);

/// Two bags of beans and a mug: 3 items, 42.50 USD.
pub(super) fn order_of(user_id: Uuid) -> OrderSnapshot {
    let line = |name: &str, quantity, unit_price_cents| OrderLine {
        product_id: Uuid::now_v7(),
        product_name: name.to_owned(),
        category: "coffee".to_owned(),
        quantity,
        unit_price_cents,
    };
    OrderSnapshot {
        order_id: Uuid::now_v7(),
        user_id,
        status: OrderStatus::Placed,
        items: vec![line("Espresso Beans", 2, 1250), line("Mug", 1, 1750)],
        total_cents: 4250,
        currency: "USD".to_owned(),
        placed_at: Utc::now(),
    }
}

/// The event announcing that `order` reached `status`, as the orders service sends it.
pub(super) fn order_event(status: OrderStatus, order: &OrderSnapshot) -> Envelope {
    let order = OrderSnapshot {
        status,
        ..order.clone()
    };
    let subject = Some(order.user_id.to_string());
    match status {
        OrderStatus::Placed => Envelope::new("orders", subject, &OrderPlaced(order)),
        OrderStatus::Confirmed => Envelope::new("orders", subject, &OrderConfirmed(order)),
        OrderStatus::Shipped => Envelope::new("orders", subject, &OrderShipped(order)),
        OrderStatus::Delivered => Envelope::new("orders", subject, &OrderDelivered(order)),
        OrderStatus::Cancelled => Envelope::new("orders", subject, &OrderCancelled(order)),
    }
}

fn short_number(order: &OrderSnapshot) -> String {
    order.order_id.simple().to_string()[24..].to_uppercase()
}

async fn the_buyer_hears_of_each_step_of_their_order_and_nobody_else_does(set: BackendSet) {
    let s = TestService::start(set).await;
    let (ada, _) = s.register("Ada").await;
    let (bob, _) = s.register("Bob").await;
    let order = order_of(ada);
    let number = short_number(&order);
    // order.placed is followed by order.confirmed: it says nothing of its own.
    s.handle(&order_event(OrderStatus::Placed, &order))
        .await
        .unwrap();
    for status in [
        OrderStatus::Confirmed,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
    ] {
        s.handle(&order_event(status, &order)).await.unwrap();
    }
    let cancelled = order_of(ada);
    s.handle(&order_event(OrderStatus::Cancelled, &cancelled))
        .await
        .unwrap();

    let updates = s.notifications_of(ada, "ORDER_UPDATE").await;
    let titles: Vec<&str> = updates
        .iter()
        .map(|n| n["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            format!("Your order #{} was cancelled", short_number(&cancelled)),
            format!("Your order #{number} has been delivered"),
            format!("Your order #{number} has shipped"),
            format!("Your order #{number} is confirmed"),
        ],
        "{set:?}"
    );
    for update in &updates {
        assert_eq!(update["priority"], "CRITICAL");
        assert_eq!(update["body"], "3 items, 42.50 USD");
        assert_eq!(update["read"], false);
    }
    assert_eq!(
        updates[2]["data"],
        json!({ "orderId": order.order_id.to_string(), "status": "SHIPPED" })
    );
    assert_eq!(
        updates[0]["data"],
        json!({ "orderId": cancelled.order_id.to_string(), "status": "CANCELLED" })
    );
    assert_eq!(s.unread_count(ada).await, 5, "4 updates and the welcome");
    assert!(s.notifications_of(bob, "ORDER_UPDATE").await.is_empty());
    assert!(s.decisions_of(bob, "ORDER_UPDATE").await.is_empty());
    s.finish().await;
}

async fn order_updates_switched_off_are_recorded_as_suppressed(set: BackendSet) {
    let s = TestService::start(set).await;
    let quiet = Preferences {
        order_updates: false,
        ..Preferences::default()
    };
    let ada = s.register_as("Ada", Role::Customer, quiet).await;
    s.handle(&order_event(OrderStatus::Shipped, &order_of(ada)))
        .await
        .unwrap();
    assert!(
        s.notifications_of(ada, "ORDER_UPDATE").await.is_empty(),
        "{set:?}"
    );
    assert_eq!(
        s.decisions_of(ada, "ORDER_UPDATE").await,
        [("SUPPRESSED".to_owned(), Some("PREFERENCE_OFF".to_owned()))]
    );
    s.finish().await;
}

async fn an_order_event_delivered_twice_notifies_once(set: BackendSet) {
    let s = TestService::start(set).await;
    let (ada, _) = s.register("Ada").await;
    let shipped = order_event(OrderStatus::Shipped, &order_of(ada));
    s.handle(&shipped).await.unwrap();
    s.handle(&shipped).await.unwrap();
    assert_eq!(
        s.notifications_of(ada, "ORDER_UPDATE").await.len(),
        1,
        "{set:?}"
    );
    assert_eq!(
        s.decisions_of(ada, "ORDER_UPDATE").await,
        [("SENT".to_owned(), None)]
    );
    s.finish().await;
}

async fn an_order_event_before_the_buyers_registration_is_handled_again_soon(set: BackendSet) {
    let s = TestService::start(set).await;
    let ada = Uuid::now_v7();
    let confirmed = order_event(OrderStatus::Confirmed, &order_of(ada));
    assert!(
        matches!(s.handle(&confirmed).await, Err(HandlerError::NotYet(_))),
        "{set:?}"
    );
    assert!(s.decisions_of(ada, "ORDER_UPDATE").await.is_empty());

    s.handle(&registered(ada, "Ada", Preferences::default(), 1))
        .await
        .unwrap();
    // The redelivery is handled afresh, not taken for a duplicate.
    s.handle(&confirmed).await.unwrap();
    let updates = s.notifications_of(ada, "ORDER_UPDATE").await;
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0]["data"]["status"], "CONFIRMED");
    s.finish().await;
}

async fn a_malformed_order_event_is_rejected(set: BackendSet) {
    let s = TestService::start(set).await;
    let (ada, _) = s.register("Ada").await;
    let mut shipped = order_event(OrderStatus::Shipped, &order_of(ada));
    shipped.data = json!({ "orderId": "not a uuid" });
    assert!(
        matches!(s.handle(&shipped).await, Err(HandlerError::Reject(_))),
        "{set:?}"
    );
    s.finish().await;
}

async fn order_events_handled_together_each_get_their_own_outcome(set: BackendSet) {
    let s = TestService::start(set).await;
    let (ada, _) = s.register("Ada").await;
    let (bob, _) = s.register("Bob").await;
    let cy = Uuid::now_v7();
    let ada_shipped = order_event(OrderStatus::Shipped, &order_of(ada));
    let bob_confirmed = order_event(OrderStatus::Confirmed, &order_of(bob));
    let cy_confirmed = order_event(OrderStatus::Confirmed, &order_of(cy));
    let mut malformed = order_event(OrderStatus::Shipped, &order_of(bob));
    malformed.data = json!({ "orderId": "not a uuid" });
    // Ada's shipment was handled before: it is not notified again.
    s.handle(&ada_shipped).await.unwrap();
    let batch = [
        ada_shipped.clone(),
        bob_confirmed.clone(),
        cy_confirmed.clone(),
        malformed,
        bob_confirmed.clone(),
    ];
    assert!(s.consumer.batches(&bob_confirmed), "{set:?}");
    // Cached now: the batch must move the count on.
    let bob_unread = s.unread_count(bob).await;

    let outcomes = s.consumer.handle_batch(&batch).await.unwrap();
    assert!(
        matches!(
            &outcomes[..],
            [
                Ok(()),
                Ok(()),
                Err(HandlerError::NotYet(_)),
                Err(HandlerError::Reject(_)),
                Ok(())
            ]
        ),
        "{set:?}: {outcomes:?}"
    );
    assert_eq!(s.notifications_of(ada, "ORDER_UPDATE").await.len(), 1);
    assert_eq!(s.notifications_of(bob, "ORDER_UPDATE").await.len(), 1);
    assert_eq!(s.unread_count(bob).await, bob_unread + 1);

    // Cy's registration arrives; the retried event is a first delivery.
    s.handle(&registered(cy, "Cy", Preferences::default(), 1))
        .await
        .unwrap();
    let outcomes = s.consumer.handle_batch(&[cy_confirmed]).await.unwrap();
    assert!(matches!(&outcomes[..], [Ok(())]), "{outcomes:?}");
    assert_eq!(s.notifications_of(cy, "ORDER_UPDATE").await.len(), 1);
    s.finish().await;
}
