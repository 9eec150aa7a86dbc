//! What each order and product event says to its recipients: the drafts' titles, bodies
//! and data. Pure; the consumer picks the recipients and the decision function the fate.

use herald_events::{
    OrderSnapshot, OrderStatus, OrdersStuck, PriceChanged, RecommendationDigest, StockLevel,
};
use serde_json::json;
use uuid::Uuid;

use crate::domain::{Draft, NotificationType};
use crate::money::format_money;

/// The order number shoppers see: the last 8 hex digits of the id, uppercased. A UUIDv7
/// starts with a timestamp, so orders placed together share their first digits.
pub fn order_number(order_id: Uuid) -> String {
    let hex = order_id.simple().to_string();
    hex[hex.len() - 8..].to_uppercase()
}

/// The buyer's ORDER_UPDATE for an order that reached `status`.
pub fn order_update(event_id: Uuid, status: OrderStatus, order: &OrderSnapshot) -> Draft {
    let what = match status {
        OrderStatus::Placed => "was placed",
        OrderStatus::Confirmed => "is confirmed",
        OrderStatus::Shipped => "has shipped",
        OrderStatus::Delivered => "has been delivered",
        OrderStatus::Cancelled => "was cancelled",
    };
    let items: i64 = order.items.iter().map(|line| line.quantity).sum();
    let noun = if items == 1 { "item" } else { "items" };
    Draft::for_event(
        event_id,
        order.user_id,
        NotificationType::OrderUpdate,
        format!("Your order #{} {what}", order_number(order.order_id)),
        format!(
            "{items} {noun}, {}",
            format_money(order.total_cents, &order.currency)
        ),
        Some(json!({ "orderId": order.order_id, "status": status.as_str() })),
    )
}

/// The buyer's ORDER_UPDATE that a shipped order is late but still on its way.
pub fn delivery_late(event_id: Uuid, order: &OrderSnapshot) -> Draft {
    Draft::for_event(
        event_id,
        order.user_id,
        NotificationType::OrderUpdate,
        format!(
            "Your order #{} is still on its way",
            order_number(order.order_id)
        ),
        "It is taking longer than expected; it has shipped and should reach you soon.".to_owned(),
        Some(json!({ "orderId": order.order_id, "status": order.status.as_str(), "late": true })),
    )
}

/// A user's RECOMMENDATION digest: their top picks, each with its reason.
pub fn recommendation_digest(event_id: Uuid, digest: &RecommendationDigest) -> Draft {
    let title = match digest.picks.as_slice() {
        [only] => format!("Picked for you: {}", only.name),
        [first, rest @ ..] => format!("Picked for you: {} and {} more", first.name, rest.len()),
        [] => "Picked for you".to_owned(),
    };
    let body = digest
        .picks
        .iter()
        .map(|p| format!("{} ({})", p.name, p.reason))
        .collect::<Vec<_>>()
        .join("; ");
    Draft::for_event(
        event_id,
        digest.user_id,
        NotificationType::Recommendation,
        title,
        body,
        Some(json!({
            "productIds": digest.picks.iter().map(|p| p.product_id).collect::<Vec<_>>(),
        })),
    )
}

/// An admin's ORDER_UPDATE listing orders that stopped moving.
pub fn orders_stuck(event_id: Uuid, admin: Uuid, report: &OrdersStuck) -> Draft {
    let count = report.orders.len();
    let noun = if count == 1 { "order is" } else { "orders are" };
    let listed: Vec<String> = report
        .orders
        .iter()
        .take(10)
        .map(|o| {
            let checkout = if o.priced {
                ""
            } else {
                ", checkout never completed"
            };
            format!(
                "#{} {}{checkout}",
                order_number(o.order_id),
                o.status.as_str()
            )
        })
        .collect();
    let more = count.saturating_sub(listed.len());
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    Draft::for_event(
        event_id,
        admin,
        NotificationType::OrderUpdate,
        format!("{count} {noun} stuck"),
        format!(
            "Not moved on for over {} hours: {}{more}.",
            report.threshold_hours,
            listed.join(", ")
        ),
        Some(json!({
            "orderIds": report.orders.iter().map(|o| o.order_id).collect::<Vec<_>>(),
        })),
    )
}

/// A watcher's INVENTORY alert that the product can be ordered again.
pub fn back_in_stock(event_id: Uuid, watcher: Uuid, level: &StockLevel) -> Draft {
    Draft::for_event(
        event_id,
        watcher,
        NotificationType::Inventory,
        format!("{} is back in stock", level.name),
        format!("You are watching {}: it can be ordered again.", level.name),
        Some(json!({ "productId": level.product_id })),
    )
}

/// A watcher's INVENTORY alert of a lower price (the caller checked that it is lower).
pub fn price_drop(event_id: Uuid, watcher: Uuid, change: &PriceChanged) -> Draft {
    let new = format_money(change.new_price_cents, &change.currency);
    let old = format_money(change.old_price_cents, &change.currency);
    Draft::for_event(
        event_id,
        watcher,
        NotificationType::Inventory,
        format!("{} is now {new} (was {old})", change.name),
        format!(
            "You are watching {}: its price dropped from {old} to {new}.",
            change.name
        ),
        Some(json!({ "productId": change.product_id })),
    )
}

/// An admin's INVENTORY alert that stock fell to or below the threshold.
pub fn low_stock(event_id: Uuid, admin: Uuid, level: &StockLevel) -> Draft {
    Draft::for_event(
        event_id,
        admin,
        NotificationType::Inventory,
        format!("Low stock: {} ({} left)", level.name, level.stock),
        format!(
            "{} has {} left, at or below the low-stock threshold of {}.",
            level.name, level.stock, level.threshold
        ),
        Some(json!({ "productId": level.product_id })),
    )
}

/// An admin's INVENTORY alert that stock reached zero.
pub fn out_of_stock(event_id: Uuid, admin: Uuid, level: &StockLevel) -> Draft {
    Draft::for_event(
        event_id,
        admin,
        NotificationType::Inventory,
        format!("Out of stock: {}", level.name),
        format!(
            "{} has no stock left; nobody can order it until it is restocked.",
            level.name
        ),
        Some(json!({ "productId": level.product_id })),
    )
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use herald_events::OrderLine;

    use super::*;
    use crate::domain::Priority;

    fn order_of(quantities: &[i64], total_cents: i64) -> OrderSnapshot {
        OrderSnapshot {
            order_id: "01937a4b-0000-7000-8000-00001a2b3c4d".parse().unwrap(),
            user_id: Uuid::now_v7(),
            status: OrderStatus::Shipped,
            items: quantities
                .iter()
                .map(|&quantity| OrderLine {
                    product_id: Uuid::now_v7(),
                    product_name: "Espresso Beans".into(),
                    category: "coffee".into(),
                    quantity,
                    unit_price_cents: 1250,
                })
                .collect(),
            total_cents,
            currency: "USD".into(),
            placed_at: Utc::now(),
        }
    }

    fn level(stock: i64) -> StockLevel {
        StockLevel {
            product_id: Uuid::now_v7(),
            name: "Espresso Beans".into(),
            stock,
            threshold: 5,
        }
    }

    #[test]
    fn the_order_number_is_the_end_of_the_id_uppercased() {
        let id = "01937a4b-0000-7000-8000-00001a2b3c4d".parse().unwrap();
        assert_eq!(order_number(id), "1A2B3C4D");
    }

    #[test]
    fn an_order_update_names_the_order_its_items_and_total() {
        let order = order_of(&[2, 1], 4250);
        let event = Uuid::now_v7();
        let draft = order_update(event, OrderStatus::Shipped, &order);
        assert_eq!(draft.title, "Your order #1A2B3C4D has shipped");
        assert_eq!(draft.body, "3 items, 42.50 USD");
        assert_eq!(draft.user_id, order.user_id);
        assert_eq!(draft.priority(), Priority::Critical);
        assert_eq!(
            draft.data,
            Some(json!({ "orderId": order.order_id, "status": "SHIPPED" }))
        );
        assert_eq!(
            draft.dedupe_key,
            format!("{event}:{}:ORDER_UPDATE", order.user_id)
        );
        let titles: Vec<String> = [
            OrderStatus::Confirmed,
            OrderStatus::Delivered,
            OrderStatus::Cancelled,
        ]
        .into_iter()
        .map(|s| order_update(event, s, &order).title)
        .collect();
        assert_eq!(
            titles,
            [
                "Your order #1A2B3C4D is confirmed",
                "Your order #1A2B3C4D has been delivered",
                "Your order #1A2B3C4D was cancelled",
            ]
        );
        let single = order_update(event, OrderStatus::Confirmed, &order_of(&[1], 999));
        assert_eq!(single.body, "1 item, 9.99 USD");
    }

    #[test]
    fn watchers_hear_of_restocks_and_lower_prices() {
        let (event, watcher) = (Uuid::now_v7(), Uuid::now_v7());
        let level = level(12);
        let back = back_in_stock(event, watcher, &level);
        assert_eq!(back.title, "Espresso Beans is back in stock");
        assert_eq!(back.notification_type, NotificationType::Inventory);
        assert_eq!(back.priority(), Priority::Standard);
        assert_eq!(back.data, Some(json!({ "productId": level.product_id })));

        let change = PriceChanged {
            product_id: level.product_id,
            name: "Espresso Beans".into(),
            currency: "USD".into(),
            old_price_cents: 1250,
            new_price_cents: 999,
        };
        let drop = price_drop(event, watcher, &change);
        assert_eq!(drop.title, "Espresso Beans is now 9.99 USD (was 12.50 USD)");
        assert_eq!(
            drop.body,
            "You are watching Espresso Beans: its price dropped from 12.50 USD to 9.99 USD."
        );
        assert_eq!(drop.data, Some(json!({ "productId": level.product_id })));
    }

    #[test]
    fn admins_hear_of_low_and_no_stock() {
        let (event, admin) = (Uuid::now_v7(), Uuid::now_v7());
        let low = low_stock(event, admin, &level(3));
        assert_eq!(low.title, "Low stock: Espresso Beans (3 left)");
        assert_eq!(
            low.body,
            "Espresso Beans has 3 left, at or below the low-stock threshold of 5."
        );
        let out = out_of_stock(event, admin, &level(0));
        assert_eq!(out.title, "Out of stock: Espresso Beans");
        assert_eq!(out.notification_type, NotificationType::Inventory);
        assert_eq!(low.dedupe_key, format!("{event}:{admin}:INVENTORY"));
    }
}
