//! The event contract between Herald's services.
//!
//! Every event travels as a CloudEvents 1.0 JSON envelope ([`Envelope`]) whose `type` is
//! one of the constants below and whose `data` is the matching payload struct. Payloads
//! only grow: a field is added with a default, never renamed or removed. `docs/events.md`
//! lists every type with its producer and consumers.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub mod notification;
pub mod order;
pub mod product;
pub mod recommendation;
pub mod scheduler;
pub mod user;

pub use notification::*;
pub use order::*;
pub use product::*;
pub use recommendation::*;
pub use scheduler::*;
pub use user::*;

/// Which service queue receives which event types (topic patterns). Every service
/// declares the whole topology on start, so an event published before its consumer
/// first runs still waits in that consumer's queue.
///
/// Notifications has two lanes: what must arrive at once (account and order events) never
/// waits behind a backlog of promotions and stock alerts.
pub const TOPOLOGY: &[(&str, &[&str])] = &[
    (
        NOTIFICATIONS_CRITICAL,
        &[
            UserRegistered::TYPE,
            PreferencesUpdated::TYPE,
            SignInFailures::TYPE,
            PasswordResetRequested::TYPE,
            PasswordChanged::TYPE,
            OrderConfirmed::TYPE,
            OrderShipped::TYPE,
            OrderDelivered::TYPE,
            OrderCancelled::TYPE,
            OrderDeliveryLate::TYPE,
            OrdersStuck::TYPE,
        ],
    ),
    (
        NOTIFICATIONS_STANDARD,
        &[
            ProductWatched::TYPE,
            PriceChanged::TYPE,
            BackInStock::TYPE,
            LowStock::TYPE,
            OutOfStock::TYPE,
            RecommendationDigest::TYPE,
            CategoryInterest::TYPE,
            // A customer base imported: large, and nothing in it is urgent.
            UsersImported::TYPE,
        ],
    ),
    // Products gives back the stock of cancelled orders (idempotent; the orders service
    // also asks directly, this is the guarantee when that call was lost).
    ("products", &[OrderCancelled::TYPE]),
    // Emails that failed every attempt come back here when an admin replays them.
    (NOTIFICATIONS_EMAIL, &[EmailUndeliverable::TYPE]),
    // Recommendations learns purchases, the catalog and stated tastes.
    (
        "recommendations",
        &[
            OrderConfirmed::TYPE,
            OrderCancelled::TYPE,
            ProductCreated::TYPE,
            StockChanged::TYPE,
            PriceChanged::TYPE,
            OutOfStock::TYPE,
            BackInStock::TYPE,
            UserRegistered::TYPE,
            UsersImported::TYPE,
            PreferencesUpdated::TYPE,
        ],
    ),
    // Users switches a notification type off when its unsubscribe link was followed.
    ("users", &[UnsubscribeRequested::TYPE]),
    // Scheduled jobs run where their data is; the scheduler records how they went.
    (NOTIFICATIONS_JOBS, &[JobDue::TYPE]),
    ("orders", &[JobDue::TYPE]),
    ("recommendations.jobs", &[JobDue::TYPE]),
    ("scheduler", &[JobFinished::TYPE]),
];

/// The queue of notifications that must never wait (ORDER_UPDATE, SECURITY).
pub const NOTIFICATIONS_CRITICAL: &str = "notifications.critical";
/// The queue of emails replayed from the dead letters.
pub const NOTIFICATIONS_EMAIL: &str = "notifications.email";
/// The queue of the notifications service's scheduled jobs (campaigns): a long run never
/// holds up either lane.
pub const NOTIFICATIONS_JOBS: &str = "notifications.jobs";
/// The queue of everything else the notifications service hears of.
pub const NOTIFICATIONS_STANDARD: &str = "notifications.standard";

/// A CloudEvents 1.0 envelope (structured JSON mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub specversion: String,
    /// UUIDv7: unique per event and the idempotency key of every consumer.
    pub id: Uuid,
    /// The producing service, e.g. `/herald/users`.
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: String,
    pub time: DateTime<Utc>,
    /// The user the event is about, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    pub datacontenttype: String,
    pub data: serde_json::Value,
    /// The trace that caused the event (W3C `traceparent`, the CloudEvents distributed
    /// tracing extension): set when the event enters its service's outbox, continued by
    /// whoever handles it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// A payload that knows its event type.
pub trait Event: Serialize + DeserializeOwned {
    const TYPE: &'static str;
}

impl Envelope {
    /// Wraps a payload in a new envelope from `service`.
    pub fn new<E: Event>(service: &str, subject: Option<String>, payload: &E) -> Envelope {
        Envelope {
            specversion: "1.0".to_owned(),
            id: Uuid::now_v7(),
            source: format!("/herald/{service}"),
            event_type: E::TYPE.to_owned(),
            time: Utc::now(),
            subject,
            datacontenttype: "application/json".to_owned(),
            data: serde_json::to_value(payload).unwrap_or(serde_json::Value::Null),
            traceparent: None,
        }
    }

    /// What orders this event among others: events of one key reach a consumer in the
    /// order they were published (on Kafka, the partition key). An order's events go by the
    /// order's id, a product's by the product's, the rest by their subject (the user), and
    /// an event about nothing in particular by its own id.
    pub fn ordering_key(&self) -> String {
        ["order_id", "product_id"]
            .iter()
            .find_map(|field| self.data.get(field).and_then(serde_json::Value::as_str))
            .map(str::to_owned)
            .or_else(|| self.subject.clone())
            .unwrap_or_else(|| self.id.to_string())
    }

    /// The payload, if this envelope carries an `E`.
    pub fn payload<E: Event>(&self) -> Result<E, PayloadError> {
        if self.event_type != E::TYPE {
            return Err(PayloadError::WrongType {
                expected: E::TYPE,
                found: self.event_type.clone(),
            });
        }
        serde_json::from_value(self.data.clone()).map_err(PayloadError::Malformed)
    }
}

#[derive(Debug)]
pub enum PayloadError {
    WrongType {
        expected: &'static str,
        found: String,
    },
    Malformed(serde_json::Error),
}

impl std::fmt::Display for PayloadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PayloadError::WrongType { expected, found } => {
                write!(f, "expected a {expected} event, found {found}")
            }
            PayloadError::Malformed(e) => write!(f, "malformed payload: {e}"),
        }
    }
}

impl std::error::Error for PayloadError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_is_cloudevents_json() {
        let payload = UserRegistered {
            user_id: Uuid::now_v7(),
            name: "Ada".into(),
            email: "ada@example.com".into(),
            role: Role::Customer,
            preferences: Preferences::default(),
            preferences_version: 1,
        };
        let env = Envelope::new("users", Some(payload.user_id.to_string()), &payload);
        let json = serde_json::to_value(&env).unwrap();
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["type"], "user.registered");
        assert_eq!(json["source"], "/herald/users");
        assert_eq!(json["datacontenttype"], "application/json");
        let back: Envelope = serde_json::from_value(json).unwrap();
        assert_eq!(back.payload::<UserRegistered>().unwrap(), payload);
        assert!(back.payload::<PreferencesUpdated>().is_err());
    }

    #[test]
    fn events_are_ordered_by_what_they_are_about() {
        let user = Uuid::now_v7().to_string();
        let mut event = Envelope {
            specversion: "1.0".to_owned(),
            id: Uuid::now_v7(),
            source: "/herald/orders".to_owned(),
            event_type: "order.confirmed".to_owned(),
            time: Utc::now(),
            subject: Some(user.clone()),
            datacontenttype: "application/json".to_owned(),
            data: serde_json::json!({}),
            traceparent: None,
        };
        assert_eq!(event.ordering_key(), user, "the subject");
        event.data = serde_json::json!({ "order_id": "o-1", "product_id": "p-1" });
        assert_eq!(
            event.ordering_key(),
            "o-1",
            "an order's events by the order"
        );
        event.data = serde_json::json!({ "product_id": "p-1" });
        assert_eq!(event.ordering_key(), "p-1");
        event.subject = None;
        event.data = serde_json::json!({});
        assert_eq!(
            event.ordering_key(),
            event.id.to_string(),
            "about nothing: its own id"
        );
    }
}
