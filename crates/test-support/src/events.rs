//! Events a test puts on the bus itself.

use herald_events::{Envelope, OrderShipped, OrderSnapshot, OrderStatus};
use serde_json::Value;

/// An order of nobody, shipped: a well-formed event of the orders service.
pub fn shipped_order() -> Envelope {
    Envelope::new(
        "orders",
        None,
        &OrderShipped(OrderSnapshot {
            order_id: uuid::Uuid::now_v7(),
            user_id: uuid::Uuid::now_v7(),
            status: OrderStatus::Shipped,
            items: vec![],
            total_cents: 0,
            currency: "USD".into(),
            placed_at: chrono::Utc::now(),
        }),
    )
}

/// A poison message: an `order.shipped` whose payload is `data`, which no consumer can
/// read; after its attempts it becomes a dead letter.
pub fn unreadable_order(data: Value) -> Envelope {
    let mut poison = shipped_order();
    poison.data = data;
    poison
}
