//! The one place that decides whether a notification is delivered, when, and on which
//! channels.
//!
//! Pure: the caller brings the recipient, the clock's "now" and how many promotions the
//! recipient received today, and records the outcome.

use chrono::{DateTime, Utc};
use herald_events::Channel;
use serde::{Deserialize, Serialize};

use crate::domain::{Draft, NotificationType, Priority, Recipient};
use crate::quiet_hours::QuietHours;

/// The channels this service can deliver on, in order of preference.
pub const IMPLEMENTED_CHANNELS: &[Channel] = &[Channel::InApp, Channel::Email];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Deliver now on these channels (never empty).
    Deliver { channels: Vec<Channel> },
    /// Deliver on these channels (never empty) at `until`, when the recipient's quiet
    /// hours end.
    Deferred {
        until: DateTime<Utc>,
        channels: Vec<Channel>,
    },
    Suppressed { reason: SuppressionReason },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SuppressionReason {
    /// No replica of the user's preferences: the user is unknown to this service.
    UnknownRecipient,
    /// The user switched this type of notification off.
    PreferenceOff,
    /// None of the channels the user accepts is one this service can deliver on.
    NoChannel,
    /// The user already received today's allowance of promotions.
    FrequencyCap,
}

/// What happened to a notification, as recorded and counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Outcome {
    Sent,
    Deferred,
    Suppressed,
}

/// The recipient's promotions so far in their local day, and how many a day they may get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromotionsToday {
    pub received: i64,
    pub daily_cap: i64,
}

impl Decision {
    pub fn outcome(&self) -> Outcome {
        match self {
            Decision::Deliver { .. } => Outcome::Sent,
            Decision::Deferred { .. } => Outcome::Deferred,
            Decision::Suppressed { .. } => Outcome::Suppressed,
        }
    }

    pub fn reason(&self) -> Option<SuppressionReason> {
        match self {
            Decision::Suppressed { reason } => Some(*reason),
            Decision::Deliver { .. } | Decision::Deferred { .. } => None,
        }
    }

    /// The channels to deliver on, now or later; empty when suppressed.
    pub fn channels(&self) -> &[Channel] {
        match self {
            Decision::Deliver { channels } | Decision::Deferred { channels, .. } => channels,
            Decision::Suppressed { .. } => &[],
        }
    }

    /// When a deferred notification is delivered; None otherwise.
    pub fn until(&self) -> Option<DateTime<Utc>> {
        match self {
            Decision::Deferred { until, .. } => Some(*until),
            Decision::Deliver { .. } | Decision::Suppressed { .. } => None,
        }
    }

    pub fn delivers_on(&self, channel: Channel) -> bool {
        self.channels().contains(&channel)
    }

    pub fn delivers_in_app(&self) -> bool {
        self.delivers_on(Channel::InApp)
    }

    /// Whether this decision delivers a notification that counts towards the daily cap.
    pub fn counts_as_promotion(&self, notification_type: NotificationType) -> bool {
        notification_type == NotificationType::Promotion && !self.channels().is_empty()
    }
}

impl SuppressionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SuppressionReason::UnknownRecipient => "UNKNOWN_RECIPIENT",
            SuppressionReason::PreferenceOff => "PREFERENCE_OFF",
            SuppressionReason::NoChannel => "NO_CHANNEL",
            SuppressionReason::FrequencyCap => "FREQUENCY_CAP",
        }
    }
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => "SENT",
            Outcome::Deferred => "DEFERRED",
            Outcome::Suppressed => "SUPPRESSED",
        }
    }
}

/// Decides the fate of `draft` for `recipient` (None: no replica of the user) at `now`.
///
/// In order: an unknown recipient, a type switched off, no channel to deliver on, a
/// promotion over the daily cap are suppressed; a STANDARD notification inside the
/// recipient's quiet hours waits until they end; everything else goes at once.
pub fn decide(
    recipient: Option<&Recipient>,
    draft: &Draft,
    now: DateTime<Utc>,
    promotions: PromotionsToday,
) -> Decision {
    let suppressed = |reason| Decision::Suppressed { reason };
    let Some(recipient) = recipient else {
        return suppressed(SuppressionReason::UnknownRecipient);
    };
    let preferences = &recipient.preferences;
    if !draft.notification_type.enabled_in(preferences) {
        return suppressed(SuppressionReason::PreferenceOff);
    }
    let channels: Vec<Channel> = IMPLEMENTED_CHANNELS
        .iter()
        .copied()
        .filter(|c| preferences.channels.contains(c))
        .collect();
    if channels.is_empty() {
        return suppressed(SuppressionReason::NoChannel);
    }
    if draft.notification_type == NotificationType::Promotion
        && promotions.received >= promotions.daily_cap
    {
        return suppressed(SuppressionReason::FrequencyCap);
    }
    if draft.priority() == Priority::Standard
        && let Some(until) = QuietHours::of(preferences).and_then(|q| q.end_after(now))
    {
        return Decision::Deferred { until, channels };
    }
    Decision::Deliver { channels }
}

#[cfg(test)]
mod tests {
    use herald_events::{Preferences, Role};
    use uuid::Uuid;

    use super::*;
    use crate::domain::NotificationType;

    fn recipient(preferences: Preferences) -> Recipient {
        Recipient {
            user_id: Uuid::now_v7(),
            name: "Ada".to_owned(),
            email: "ada@example.com".to_owned(),
            role: Role::Customer,
            preferences,
            preferences_version: 1,
        }
    }

    fn draft(notification_type: NotificationType) -> Draft {
        Draft::for_event(
            Uuid::now_v7(),
            Uuid::now_v7(),
            notification_type,
            "title".to_owned(),
            "body".to_owned(),
            None,
        )
    }

    fn all_off() -> Preferences {
        Preferences {
            promotions: false,
            order_updates: false,
            recommendations: false,
            inventory_alerts: false,
            ..Preferences::default()
        }
    }

    fn suppressed(reason: SuppressionReason) -> Decision {
        Decision::Suppressed { reason }
    }

    #[test]
    fn default_preferences_deliver_every_type_in_app() {
        let r = recipient(Preferences::default());
        for t in NotificationType::ALL {
            let decision = decide(Some(&r), &draft(t), Utc::now());
            assert_eq!(
                decision,
                Decision::Deliver {
                    channels: vec![Channel::InApp]
                },
                "{t:?}"
            );
            assert_eq!(decision.outcome(), Outcome::Sent);
            assert_eq!(decision.reason(), None);
            assert!(decision.delivers_in_app());
        }
    }

    #[test]
    fn an_unknown_recipient_gets_nothing_not_even_security() {
        for t in NotificationType::ALL {
            let decision = decide(None, &draft(t), Utc::now());
            assert_eq!(decision, suppressed(SuppressionReason::UnknownRecipient));
            assert_eq!(decision.outcome(), Outcome::Suppressed);
            assert!(decision.channels().is_empty());
        }
    }

    #[test]
    fn a_switched_off_type_is_suppressed() {
        let cases = [
            (
                NotificationType::OrderUpdate,
                Preferences {
                    order_updates: false,
                    ..Default::default()
                },
            ),
            (
                NotificationType::Promotion,
                Preferences {
                    promotions: false,
                    ..Default::default()
                },
            ),
            (
                NotificationType::Recommendation,
                Preferences {
                    recommendations: false,
                    ..Default::default()
                },
            ),
            (
                NotificationType::Inventory,
                Preferences {
                    inventory_alerts: false,
                    ..Default::default()
                },
            ),
        ];
        for (t, preferences) in cases {
            let r = recipient(preferences);
            assert_eq!(
                decide(Some(&r), &draft(t), Utc::now()),
                suppressed(SuppressionReason::PreferenceOff),
                "{t:?}"
            );
            // Only that type: the others still arrive.
            for other in NotificationType::ALL.into_iter().filter(|o| *o != t) {
                assert_eq!(
                    decide(Some(&r), &draft(other), Utc::now()).outcome(),
                    Outcome::Sent
                );
            }
        }
    }

    #[test]
    fn security_arrives_with_every_type_switched_off() {
        let r = recipient(all_off());
        let decision = decide(Some(&r), &draft(NotificationType::Security), Utc::now());
        assert_eq!(
            decision,
            Decision::Deliver {
                channels: vec![Channel::InApp]
            }
        );
    }

    #[test]
    fn without_in_app_among_the_accepted_channels_nothing_can_be_delivered_yet() {
        let r = recipient(Preferences {
            channels: vec![Channel::Email],
            ..Default::default()
        });
        for t in NotificationType::ALL {
            assert_eq!(
                decide(Some(&r), &draft(t), Utc::now()),
                suppressed(SuppressionReason::NoChannel),
                "{t:?}"
            );
        }
        let r = recipient(Preferences {
            channels: vec![],
            ..Default::default()
        });
        assert_eq!(
            decide(Some(&r), &draft(NotificationType::Security), Utc::now()),
            suppressed(SuppressionReason::NoChannel)
        );
    }

    #[test]
    fn only_implemented_channels_are_chosen() {
        let r = recipient(Preferences {
            channels: vec![Channel::Email, Channel::InApp],
            ..Default::default()
        });
        let decision = decide(Some(&r), &draft(NotificationType::OrderUpdate), Utc::now());
        assert_eq!(decision.channels(), &[Channel::InApp]);
    }

    #[test]
    fn a_switched_off_type_reports_the_preference_before_the_channel() {
        let r = recipient(Preferences {
            channels: vec![Channel::Email],
            ..all_off()
        });
        assert_eq!(
            decide(Some(&r), &draft(NotificationType::Promotion), Utc::now()),
            suppressed(SuppressionReason::PreferenceOff)
        );
    }

    #[test]
    fn names_are_the_recorded_ones() {
        assert_eq!(Outcome::Sent.as_str(), "SENT");
        assert_eq!(Outcome::Suppressed.as_str(), "SUPPRESSED");
        for reason in [
            SuppressionReason::UnknownRecipient,
            SuppressionReason::PreferenceOff,
            SuppressionReason::NoChannel,
        ] {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
    }
}
