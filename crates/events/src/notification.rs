//! Events of the notifications service.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Event;

/// The dead letter of an email that could not be sent; replaying it sends it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmailUndeliverable {
    pub delivery_id: Uuid,
    pub user_id: Uuid,
    pub notification_type: String,
    pub dedupe_key: String,
}

impl Event for EmailUndeliverable {
    const TYPE: &'static str = "notification.email_undeliverable";
}

/// The cache channel (see `herald_platform::cache::Cache::publish`) on which the
/// notifications service announces, after each commit, whose in-app notifications changed:
/// what the gateway pushes to live subscriptions. A hint for live screens, not an event: it
/// is not kept, and a listener that was away reads the lists instead.
pub const LIVE_CHANNEL: &str = "notifications:live";

/// One message on [`LIVE_CHANNEL`]: the changes of one commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveChanges {
    pub changes: Vec<LiveChange>,
}

/// A user's unread notifications changed: a notification arrived (`notification`, as the
/// notifications API shows it) or some were read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveChange {
    pub user_id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification: Option<serde_json::Value>,
}
