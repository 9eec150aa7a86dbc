//! What a notification is, without I/O: its types and priorities, the draft every
//! notification starts as, the recipient it is for, and the paging of a user's list.

use herald_events::{Preferences, Role};
use herald_platform::ApiError;
use herald_platform::paging::Page;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationType {
    OrderUpdate,
    Promotion,
    Recommendation,
    Inventory,
    Security,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Priority {
    /// Order updates and security: never wait behind a backlog, bypass quiet hours.
    Critical,
    Standard,
}

impl NotificationType {
    pub const ALL: [NotificationType; 5] = [
        NotificationType::OrderUpdate,
        NotificationType::Promotion,
        NotificationType::Recommendation,
        NotificationType::Inventory,
        NotificationType::Security,
    ];

    pub fn priority(self) -> Priority {
        match self {
            NotificationType::OrderUpdate | NotificationType::Security => Priority::Critical,
            NotificationType::Promotion
            | NotificationType::Recommendation
            | NotificationType::Inventory => Priority::Standard,
        }
    }

    /// Whether the user's preferences let this type through; security cannot be switched off.
    pub fn enabled_in(self, preferences: &Preferences) -> bool {
        match self {
            NotificationType::OrderUpdate => preferences.order_updates,
            NotificationType::Promotion => preferences.promotions,
            NotificationType::Recommendation => preferences.recommendations,
            NotificationType::Inventory => preferences.inventory_alerts,
            NotificationType::Security => true,
        }
    }

    /// The contract's name, as stored and used in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationType::OrderUpdate => "ORDER_UPDATE",
            NotificationType::Promotion => "PROMOTION",
            NotificationType::Recommendation => "RECOMMENDATION",
            NotificationType::Inventory => "INVENTORY",
            NotificationType::Security => "SECURITY",
        }
    }

    pub fn parse(raw: &str) -> Option<NotificationType> {
        Self::ALL.into_iter().find(|t| t.as_str() == raw)
    }
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Critical => "CRITICAL",
            Priority::Standard => "STANDARD",
        }
    }

    pub fn parse(raw: &str) -> Option<Priority> {
        [Priority::Critical, Priority::Standard]
            .into_iter()
            .find(|p| p.as_str() == raw)
    }
}

/// A user as the notifications service knows them: the replica of their preferences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub user_id: Uuid,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub preferences: Preferences,
    /// The users service's version of `preferences`; only a higher one replaces them.
    pub preferences_version: i64,
}

/// A notification before the decision: what would be said to whom, and the key that
/// makes the same cause never notify the same user twice.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    pub user_id: Uuid,
    pub notification_type: NotificationType,
    pub title: String,
    pub body: String,
    pub data: Option<serde_json::Value>,
    pub dedupe_key: String,
    /// Sent on every channel whatever the recipient's channel preferences: a notice about
    /// the account's credentials (a reset link, a changed password) must reach its owner.
    pub every_channel: bool,
}

impl Draft {
    /// A draft caused by the event `event_id`, deduplicated per event, user and type.
    pub fn for_event(
        event_id: Uuid,
        user_id: Uuid,
        notification_type: NotificationType,
        title: String,
        body: String,
        data: Option<serde_json::Value>,
    ) -> Draft {
        Draft {
            user_id,
            notification_type,
            title,
            body,
            data,
            dedupe_key: format!("{event_id}:{user_id}:{}", notification_type.as_str()),
            every_channel: false,
        }
    }

    /// A password reset link, for its account's owner, by email and in-app.
    pub fn password_reset(
        event_id: Uuid,
        requested: &herald_events::PasswordResetRequested,
    ) -> Draft {
        let mut draft = Draft::for_event(
            event_id,
            requested.user_id,
            NotificationType::Security,
            "Set a new password".to_owned(),
            format!(
                "Someone asked to set a new password for your account. If it was you, follow \
                 this link before {} UTC: {}. It works once. If it was not you, ignore this \
                 message: your password stays as it is.",
                requested.expires_at.format("%Y-%m-%d %H:%M"),
                requested.link
            ),
            Some(serde_json::json!({
                "userId": requested.user_id,
                "link": requested.link,
                "expiresAt": requested.expires_at,
            })),
        );
        draft.every_channel = true;
        draft
    }

    /// Tells an account's owner that its password was changed, by email and in-app.
    pub fn password_changed(event_id: Uuid, user_id: Uuid) -> Draft {
        let mut draft = Draft::for_event(
            event_id,
            user_id,
            NotificationType::Security,
            "Your password was changed".to_owned(),
            "The password of your account was just changed, and every device signed in \
             before was signed out. If it was not you, ask for a password reset at once."
                .to_owned(),
            Some(serde_json::json!({ "userId": user_id })),
        );
        draft.every_channel = true;
        draft
    }

    /// The welcome a new account receives.
    pub fn welcome(event_id: Uuid, user_id: Uuid, name: &str) -> Draft {
        Draft::for_event(
            event_id,
            user_id,
            NotificationType::Security,
            format!("Welcome to Herald, {name}"),
            "Your account is ready. We will let you know when your orders move, when \
             something you watch is back in stock and when there is a deal you may like. \
             You decide what you hear about in your notification preferences."
                .to_owned(),
            Some(serde_json::json!({ "userId": user_id })),
        )
    }

    /// Tells an account's owner of repeated failed sign-ins.
    pub fn sign_in_failures(event_id: Uuid, failures: &herald_events::SignInFailures) -> Draft {
        let from = failures
            .client
            .as_deref()
            .map(|client| format!(", the last from {client}"))
            .unwrap_or_default();
        Draft::for_event(
            event_id,
            failures.user_id,
            NotificationType::Security,
            "Failed sign-in attempts on your account".to_owned(),
            format!(
                "Someone tried to sign in to your account with a wrong password {} times in \
                 {} minutes{from}. If it was you, there is nothing to do. If not, your \
                 password kept them out; a long password used nowhere else keeps it that way.",
                failures.failures, failures.window_minutes
            ),
            Some(serde_json::json!({
                "userId": failures.user_id,
                "failures": failures.failures,
                "client": failures.client,
            })),
        )
    }

    pub fn priority(&self) -> Priority {
        self.notification_type.priority()
    }
}

/// One page of a user's notifications, newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub first: i64,
    /// Only notifications older than this one (the previous page's `endCursor`).
    pub after: Option<Uuid>,
    pub unread_only: bool,
}

impl PageRequest {
    pub const DEFAULT_SIZE: i64 = 20;
    pub const MAX_SIZE: i64 = 100;

    pub fn parse(
        first: Option<i64>,
        after: Option<&str>,
        unread_only: bool,
    ) -> Result<PageRequest, ApiError> {
        let Page { first, after } = Page::parse(first, after, Self::DEFAULT_SIZE, Self::MAX_SIZE)?;
        Ok(PageRequest {
            first,
            after,
            unread_only,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_serialize_as_contract_names_with_their_priority() {
        for t in NotificationType::ALL {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
            assert_eq!(NotificationType::parse(t.as_str()), Some(t));
            assert_eq!(
                serde_json::to_value(t.priority()).unwrap(),
                t.priority().as_str()
            );
        }
        assert_eq!(NotificationType::OrderUpdate.priority(), Priority::Critical);
        assert_eq!(NotificationType::Security.priority(), Priority::Critical);
        assert_eq!(NotificationType::Promotion.priority(), Priority::Standard);
        assert_eq!(
            NotificationType::Recommendation.priority(),
            Priority::Standard
        );
        assert_eq!(NotificationType::Inventory.priority(), Priority::Standard);
        assert_eq!(NotificationType::parse("order_update"), None);
    }

    #[test]
    fn each_type_follows_its_own_flag_and_security_cannot_be_switched_off() {
        let none = Preferences {
            promotions: false,
            order_updates: false,
            recommendations: false,
            inventory_alerts: false,
            ..Preferences::default()
        };
        for t in NotificationType::ALL {
            assert!(
                t.enabled_in(&Preferences::default()),
                "{t:?} is on by default"
            );
            assert_eq!(
                t.enabled_in(&none),
                t == NotificationType::Security,
                "{t:?}"
            );
        }
        let only_promotions = Preferences {
            promotions: true,
            ..none
        };
        let enabled: Vec<_> = NotificationType::ALL
            .into_iter()
            .filter(|t| t.enabled_in(&only_promotions))
            .collect();
        assert_eq!(
            enabled,
            vec![NotificationType::Promotion, NotificationType::Security]
        );
    }

    #[test]
    fn the_dedupe_key_names_event_user_and_type() {
        let (event, user) = (Uuid::now_v7(), Uuid::now_v7());
        let draft = Draft::welcome(event, user, "Ada");
        assert_eq!(draft.dedupe_key, format!("{event}:{user}:SECURITY"));
        assert_eq!(draft.title, "Welcome to Herald, Ada");
        assert_eq!(draft.priority(), Priority::Critical);
        assert_eq!(
            draft.data,
            Some(serde_json::json!({ "userId": user.to_string() }))
        );
    }

    #[test]
    fn page_size_and_cursor_are_checked() {
        let page = PageRequest::parse(None, None, false).unwrap();
        assert_eq!(page.first, 20);
        assert!(PageRequest::parse(Some(100), None, true).is_ok());
        for bad in [0, -1, 101] {
            let e = PageRequest::parse(Some(bad), None, false).unwrap_err();
            assert_eq!(e.code(), herald_platform::ErrorCode::BadUserInput);
        }
        let e = PageRequest::parse(None, Some("not-a-cursor"), false).unwrap_err();
        assert_eq!(e.code(), herald_platform::ErrorCode::BadUserInput);
        let id = Uuid::now_v7();
        assert_eq!(
            PageRequest::parse(None, Some(&id.to_string()), false)
                .unwrap()
                .after,
            Some(id)
        );
    }
}
