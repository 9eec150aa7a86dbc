//! Which status may follow which, and the error for a change that may not happen.

use herald_events::OrderStatus;
use herald_platform::ApiError;
use uuid::Uuid;

/// Every allowed status change. Everything else is refused.
const TRANSITIONS: [(OrderStatus, OrderStatus); 5] = [
    (OrderStatus::Placed, OrderStatus::Confirmed),
    (OrderStatus::Confirmed, OrderStatus::Shipped),
    (OrderStatus::Shipped, OrderStatus::Delivered),
    (OrderStatus::Placed, OrderStatus::Cancelled),
    (OrderStatus::Confirmed, OrderStatus::Cancelled),
];

pub fn can_move(from: OrderStatus, to: OrderStatus) -> bool {
    TRANSITIONS.contains(&(from, to))
}

/// The statuses an order may be in to move to `to`; empty when nothing leads there.
pub fn statuses_leading_to(to: OrderStatus) -> Vec<OrderStatus> {
    TRANSITIONS
        .iter()
        .filter(|(_, target)| *target == to)
        .map(|(from, _)| *from)
        .collect()
}

/// The error for a change the order's current status does not allow.
pub fn transition_refused(order_id: Uuid, current: OrderStatus, to: OrderStatus) -> ApiError {
    if to == OrderStatus::Cancelled {
        ApiError::bad_input(format!(
            "order #{order_id} is {} and can no longer be cancelled",
            current.as_str()
        ))
    } else {
        ApiError::bad_input(format!(
            "order #{order_id} is {} and cannot become {}",
            current.as_str(),
            to.as_str()
        ))
    }
}

#[cfg(test)]
mod tests {
    use herald_platform::ErrorCode;

    use super::*;

    const ALL: [OrderStatus; 5] = [
        OrderStatus::Placed,
        OrderStatus::Confirmed,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    #[test]
    fn the_lifecycle_moves_forward_and_cancels_only_before_shipping() {
        use OrderStatus::*;
        let allowed: Vec<(OrderStatus, OrderStatus)> = ALL
            .into_iter()
            .flat_map(|from| ALL.into_iter().map(move |to| (from, to)))
            .filter(|(from, to)| can_move(*from, *to))
            .collect();
        assert_eq!(
            allowed,
            [
                (Placed, Confirmed),
                (Placed, Cancelled),
                (Confirmed, Shipped),
                (Confirmed, Cancelled),
                (Shipped, Delivered),
            ]
        );
        for status in ALL {
            assert!(!can_move(status, status), "{status:?} to itself");
            assert!(!can_move(Delivered, status));
            assert!(!can_move(Cancelled, status));
            assert!(!can_move(status, Placed));
        }
    }

    #[test]
    fn each_target_knows_the_statuses_leading_to_it() {
        use OrderStatus::*;
        assert_eq!(statuses_leading_to(Placed), []);
        assert_eq!(statuses_leading_to(Confirmed), [Placed]);
        assert_eq!(statuses_leading_to(Shipped), [Confirmed]);
        assert_eq!(statuses_leading_to(Delivered), [Shipped]);
        assert_eq!(statuses_leading_to(Cancelled), [Placed, Confirmed]);
        for to in ALL {
            for from in statuses_leading_to(to) {
                assert!(can_move(from, to));
            }
        }
    }

    #[test]
    fn refused_transitions_are_bad_input_naming_the_order_and_status() {
        let id = Uuid::now_v7();
        let e = transition_refused(id, OrderStatus::Shipped, OrderStatus::Cancelled);
        assert_eq!(e.code(), ErrorCode::BadUserInput);
        assert_eq!(
            e.to_string(),
            format!("order #{id} is SHIPPED and can no longer be cancelled")
        );
        let e = transition_refused(id, OrderStatus::Delivered, OrderStatus::Shipped);
        assert_eq!(
            e.to_string(),
            format!("order #{id} is DELIVERED and cannot become SHIPPED")
        );
    }
}
