//! Stock movements and the events they announce: every change, and the crossings of zero
//! and of the low-stock threshold.

use herald_events::{
    BackInStock, Envelope, LowStock, OutOfStock, StockChangeReason, StockChanged, StockLevel,
};
use uuid::Uuid;

use crate::SERVICE;

/// A threshold a stock movement crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crossing {
    /// Reached zero.
    OutOfStock,
    /// Rose from zero.
    BackInStock,
    /// Fell from above the threshold to at or below it, but not to zero.
    LowStock,
}

/// The crossings of a movement from `old` to `new` units.
pub fn crossings(old: i64, new: i64, threshold: i64) -> Vec<Crossing> {
    let mut crossed = Vec::new();
    if old > 0 && new == 0 {
        crossed.push(Crossing::OutOfStock);
    }
    if old == 0 && new > 0 {
        crossed.push(Crossing::BackInStock);
    }
    if old > threshold && new <= threshold && new > 0 {
        crossed.push(Crossing::LowStock);
    }
    crossed
}

/// One product's stock moving, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockMove {
    pub product_id: Uuid,
    pub name: String,
    pub old: i64,
    pub new: i64,
    pub reason: StockChangeReason,
    pub order_id: Option<Uuid>,
}

impl StockMove {
    /// `product.stock_changed` and one event per crossing; none when nothing moved.
    pub fn events(&self, threshold: i64) -> Vec<Envelope> {
        if self.old == self.new {
            return Vec::new();
        }
        let changed = StockChanged {
            product_id: self.product_id,
            name: self.name.clone(),
            old_stock: self.old,
            new_stock: self.new,
            reason: self.reason,
            order_id: self.order_id,
        };
        let mut events = vec![Envelope::new(SERVICE, None, &changed)];
        let level = StockLevel {
            product_id: self.product_id,
            name: self.name.clone(),
            stock: self.new,
            threshold,
        };
        for crossing in crossings(self.old, self.new, threshold) {
            let level = level.clone();
            events.push(match crossing {
                Crossing::OutOfStock => Envelope::new(SERVICE, None, &OutOfStock(level)),
                Crossing::BackInStock => Envelope::new(SERVICE, None, &BackInStock(level)),
                Crossing::LowStock => Envelope::new(SERVICE, None, &LowStock(level)),
            });
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use herald_events::Event;

    use super::*;

    #[test]
    fn zero_and_the_threshold_are_crossed_only_on_the_way_through() {
        use Crossing::*;
        let cases: &[(i64, i64, &[Crossing])] = &[
            (10, 0, &[OutOfStock]),
            (1, 0, &[OutOfStock]),
            (0, 0, &[]),
            (0, 10, &[BackInStock]),
            (0, 3, &[BackInStock]),
            (10, 4, &[LowStock]),
            (6, 5, &[LowStock]),
            (5, 4, &[]),
            (5, 6, &[]),
            (4, 10, &[]),
            (10, 6, &[]),
            (3, 1, &[]),
        ];
        for (old, new, expected) in cases {
            assert_eq!(crossings(*old, *new, 5), *expected, "{old} -> {new}");
        }
        // With no threshold there is no low stock, only empty shelves.
        assert_eq!(crossings(3, 1, 0), []);
        assert_eq!(crossings(3, 0, 0), [OutOfStock]);
    }

    #[test]
    fn a_move_announces_the_change_then_its_crossings() {
        let order = Uuid::now_v7();
        let reserved = StockMove {
            product_id: Uuid::now_v7(),
            name: "Beans".into(),
            old: 6,
            new: 0,
            reason: StockChangeReason::Reserved,
            order_id: Some(order),
        };
        let events = reserved.events(5);
        let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
        assert_eq!(types, [StockChanged::TYPE, OutOfStock::TYPE]);
        let changed: StockChanged = events[0].payload().unwrap();
        assert_eq!((changed.old_stock, changed.new_stock), (6, 0));
        assert_eq!(changed.order_id, Some(order));
        assert_eq!(events[0].source, "/herald/products");
        let out: OutOfStock = events[1].payload().unwrap();
        assert_eq!((out.0.stock, out.0.threshold), (0, 5));

        let still = StockMove { new: 6, ..reserved };
        assert!(still.events(5).is_empty());
    }
}
