//! Events of the users service.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Event;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Customer,
    Admin,
}

impl Role {
    /// The stored and wire name (`CUSTOMER`, `ADMIN`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "CUSTOMER",
            Role::Admin => "ADMIN",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        match name {
            "CUSTOMER" => Some(Role::Customer),
            "ADMIN" => Some(Role::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Channel {
    InApp,
    Email,
}

/// A user's notification preferences, as the users service stores them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preferences {
    pub promotions: bool,
    pub order_updates: bool,
    pub recommendations: bool,
    pub inventory_alerts: bool,
    pub categories: Vec<String>,
    pub channels: Vec<Channel>,
    /// IANA time zone name.
    pub timezone: String,
    /// Local "HH:MM"; both set or both unset.
    pub quiet_hours_start: Option<String>,
    pub quiet_hours_end: Option<String>,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            promotions: true,
            order_updates: true,
            recommendations: true,
            inventory_alerts: true,
            categories: Vec::new(),
            channels: vec![Channel::InApp],
            timezone: "UTC".to_owned(),
            quiet_hours_start: None,
            quiet_hours_end: None,
        }
    }
}

/// `user.registered`: a new account exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRegistered {
    pub user_id: Uuid,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub preferences: Preferences,
    /// Grows by one with every preferences change; consumers keep the highest.
    pub preferences_version: i64,
}

impl Event for UserRegistered {
    const TYPE: &'static str = "user.registered";
}

/// `user.imported`: customers brought in by an admin's import, up to a thousand at once,
/// each as it would be registered (no password, and no welcome: importing a customer base
/// must not mail it). Consumers apply the batch in one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsersImported {
    pub users: Vec<UserRegistered>,
}

impl Event for UsersImported {
    const TYPE: &'static str = "user.imported";
}

/// `user.password_reset_requested`: the owner of an account asked to set a new password;
/// they are sent the single-use link (valid until `expires_at`) by email and in-app,
/// whatever their channel preferences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordResetRequested {
    pub user_id: Uuid,
    pub link: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

impl Event for PasswordResetRequested {
    const TYPE: &'static str = "user.password_reset_requested";
}

/// `user.password_changed`: an account's password was set; every earlier token of it
/// stopped working. Its owner is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordChanged {
    pub user_id: Uuid,
}

impl Event for PasswordChanged {
    const TYPE: &'static str = "user.password_changed";
}

/// `user.preferences_updated`: the whole new preferences, so consumers can replace theirs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreferencesUpdated {
    pub user_id: Uuid,
    pub preferences: Preferences,
    pub preferences_version: i64,
}

impl Event for PreferencesUpdated {
    const TYPE: &'static str = "user.preferences_updated";
}

/// `user.unsubscribe_requested`: the user followed an unsubscribe link for one type of
/// notification; the users service switches that type off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnsubscribeRequested {
    pub user_id: Uuid,
    /// `ORDER_UPDATE`, `PROMOTION`, `RECOMMENDATION` or `INVENTORY`.
    pub notification_type: String,
}

impl Event for UnsubscribeRequested {
    const TYPE: &'static str = "user.unsubscribe_requested";
}

/// `user.sign_in_failures`: sign-ins to an account failed repeatedly within a window (sent
/// once per window); its owner is told.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SignInFailures {
    pub user_id: Uuid,
    pub failures: u32,
    pub window_minutes: u32,
    /// The address the last failure came from, as the gateway saw it.
    #[serde(default)]
    pub client: Option<String>,
}

impl Event for SignInFailures {
    const TYPE: &'static str = "user.sign_in_failures";
}
