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
