//! Events of the orders service. Every order event carries the whole order, so
//! consumers need no call back.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Event;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    Placed,
    Confirmed,
    Shipped,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Placed => "PLACED",
            OrderStatus::Confirmed => "CONFIRMED",
            OrderStatus::Shipped => "SHIPPED",
            OrderStatus::Delivered => "DELIVERED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }

    pub fn parse(name: &str) -> Option<OrderStatus> {
        [
            OrderStatus::Placed,
            OrderStatus::Confirmed,
            OrderStatus::Shipped,
            OrderStatus::Delivered,
            OrderStatus::Cancelled,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// Lines an order may have (each product once).
pub const MAX_ORDER_LINES: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    pub product_id: Uuid,
    pub product_name: String,
    pub category: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

/// The order as it is after the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderSnapshot {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub status: OrderStatus,
    pub items: Vec<OrderLine>,
    pub total_cents: i64,
    pub currency: String,
    pub placed_at: DateTime<Utc>,
}

macro_rules! order_event {
    ($name:ident, $type:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub OrderSnapshot);

        impl Event for $name {
            const TYPE: &'static str = $type;
        }
    };
}

order_event!(
    OrderPlaced,
    "order.placed",
    "`order.placed`: a buyer placed an order."
);
order_event!(
    OrderConfirmed,
    "order.confirmed",
    "`order.confirmed`: every line's stock is reserved."
);
order_event!(
    OrderShipped,
    "order.shipped",
    "`order.shipped`: the order left the warehouse."
);
order_event!(
    OrderDelivered,
    "order.delivered",
    "`order.delivered`: the buyer has it."
);
order_event!(
    OrderCancelled,
    "order.cancelled",
    "`order.cancelled`: by the buyer or an admin; its stock goes back."
);

order_event!(
    OrderDeliveryLate,
    "order.delivery_late",
    "`order.delivery_late`: a SHIPPED order is past its expected delivery window (once per order)."
);

/// An order that has not moved on for too long.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StuckOrder {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub status: OrderStatus,
    /// When it reached that status.
    pub since: DateTime<Utc>,
    /// False for an order whose stock reservation never completed (never shown to anyone).
    pub priced: bool,
}

/// `order.stuck`: orders PLACED or CONFIRMED for longer than the threshold, each reported
/// once per status, for admins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrdersStuck {
    pub orders: Vec<StuckOrder>,
    pub threshold_hours: i64,
}

impl Event for OrdersStuck {
    const TYPE: &'static str = "order.stuck";
}

/// The event type announcing that an order reached `status`.
pub fn order_event_type(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Placed => OrderPlaced::TYPE,
        OrderStatus::Confirmed => OrderConfirmed::TYPE,
        OrderStatus::Shipped => OrderShipped::TYPE,
        OrderStatus::Delivered => OrderDelivered::TYPE,
        OrderStatus::Cancelled => OrderCancelled::TYPE,
    }
}
