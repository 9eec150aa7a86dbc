//! What the benchmark sends: recipients registering, then order events spread over them.
//! Every order event is an ~1 KB `order.confirmed` envelope, the size the raw bus
//! measurements use too.

use chrono::Utc;
use herald_events::{
    Channel, Envelope, OrderConfirmed, OrderLine, OrderSnapshot, OrderStatus, Preferences, Role,
    UserRegistered,
};
use uuid::Uuid;

/// The domain of every benchmark recipient's address, to find them in the replica.
pub const EMAIL_DOMAIN: &str = "bench.herald.test";

/// Lines per order: three make an envelope of about 1 KB.
const LINES_PER_ORDER: usize = 3;

/// The recipients and the order events of one run.
pub struct Workload {
    pub users: Vec<Uuid>,
    pub events: usize,
}

impl Workload {
    pub fn new(users: usize, events: usize) -> Workload {
        Workload {
            users: (0..users).map(|_| Uuid::now_v7()).collect(),
            events,
        }
    }

    /// One `user.registered` per recipient, accepting notifications on `channels`.
    pub fn registrations(&self, channels: &[Channel]) -> Vec<Envelope> {
        self.users
            .iter()
            .enumerate()
            .map(|(i, user_id)| {
                let registered = UserRegistered {
                    user_id: *user_id,
                    name: format!("Shopper {i}"),
                    email: format!("shopper-{i}@{EMAIL_DOMAIN}"),
                    role: Role::Customer,
                    preferences: Preferences {
                        channels: channels.to_vec(),
                        ..Preferences::default()
                    },
                    preferences_version: 1,
                };
                Envelope::new("users", Some(user_id.to_string()), &registered)
            })
            .collect()
    }

    /// `events` fresh `order.confirmed` envelopes, the buyers taken in turn.
    pub fn orders(&self) -> Vec<Envelope> {
        (0..self.events)
            .map(|i| order_confirmed(self.users[i % self.users.len()]))
            .collect()
    }
}

fn order_confirmed(buyer: Uuid) -> Envelope {
    let items: Vec<OrderLine> = (0..LINES_PER_ORDER)
        .map(|line| OrderLine {
            product_id: Uuid::now_v7(),
            product_name: format!("Single-origin espresso beans, 1 kg (lot {line})"),
            category: "coffee".to_owned(),
            quantity: 1 + line as i64,
            unit_price_cents: 1_250,
        })
        .collect();
    let order = OrderSnapshot {
        order_id: Uuid::now_v7(),
        user_id: buyer,
        status: OrderStatus::Confirmed,
        total_cents: items.iter().map(|l| l.quantity * l.unit_price_cents).sum(),
        items,
        currency: "EUR".to_owned(),
        placed_at: Utc::now(),
    };
    Envelope::new("orders", Some(buyer.to_string()), &OrderConfirmed(order))
}

/// The JSON bodies of `events`, as they travel on the bus.
pub fn bodies(events: &[Envelope]) -> anyhow::Result<Vec<Vec<u8>>> {
    events
        .iter()
        .map(|event| Ok(serde_json::to_vec(event)?))
        .collect()
}
