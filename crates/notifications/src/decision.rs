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
    Deliver {
        channels: Vec<Channel>,
    },
    /// Deliver on these channels (never empty) at `until`, when the recipient's quiet
    /// hours end.
    Deferred {
        until: DateTime<Utc>,
        channels: Vec<Channel>,
    },
    Suppressed {
        reason: SuppressionReason,
    },
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
        .filter(|c| draft.every_channel || preferences.channels.contains(c))
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

/// Whether a delivery on `channel` decided earlier (a deferred one, or one retried) is still
/// wanted when it goes out: the recipient may have switched its type or the channel off
/// since, for instance with an email's unsubscribe link.
pub fn still_wanted(
    recipient: Option<&Recipient>,
    notification_type: NotificationType,
    channel: Channel,
) -> Result<(), SuppressionReason> {
    let recipient = recipient.ok_or(SuppressionReason::UnknownRecipient)?;
    if !notification_type.enabled_in(&recipient.preferences) {
        return Err(SuppressionReason::PreferenceOff);
    }
    // Security mail is not optional: a channel switched off since does not hold it back.
    if notification_type != NotificationType::Security
        && !recipient.preferences.channels.contains(&channel)
    {
        return Err(SuppressionReason::NoChannel);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use herald_events::{Preferences, Role};
    use uuid::Uuid;

    use super::*;

    const NONE_YET: PromotionsToday = PromotionsToday {
        received: 0,
        daily_cap: 3,
    };

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

    fn decide_now(r: Option<&Recipient>, t: NotificationType) -> Decision {
        decide(r, &draft(t), Utc::now(), NONE_YET)
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

    fn in_app() -> Decision {
        Decision::Deliver {
            channels: vec![Channel::InApp],
        }
    }

    fn berlin_nights() -> Preferences {
        Preferences {
            timezone: "Europe/Berlin".into(),
            quiet_hours_start: Some("22:00".into()),
            quiet_hours_end: Some("07:30".into()),
            ..Preferences::default()
        }
    }

    fn utc(raw: &str) -> DateTime<Utc> {
        raw.parse().unwrap()
    }

    #[test]
    fn default_preferences_deliver_every_type_in_app() {
        let r = recipient(Preferences::default());
        for t in NotificationType::ALL {
            let decision = decide_now(Some(&r), t);
            assert_eq!(decision, in_app(), "{t:?}");
            assert_eq!(decision.outcome(), Outcome::Sent);
            assert_eq!(decision.reason(), None);
            assert_eq!(decision.until(), None);
            assert!(decision.delivers_in_app());
            assert!(!decision.delivers_on(Channel::Email));
        }
    }

    #[test]
    fn an_unknown_recipient_gets_nothing_not_even_security() {
        for t in NotificationType::ALL {
            let decision = decide_now(None, t);
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
                decide_now(Some(&r), t),
                suppressed(SuppressionReason::PreferenceOff),
                "{t:?}"
            );
            // Only that type: the others still arrive.
            for other in NotificationType::ALL.into_iter().filter(|o| *o != t) {
                assert_eq!(decide_now(Some(&r), other).outcome(), Outcome::Sent);
            }
        }
    }

    #[test]
    fn security_arrives_with_every_type_switched_off() {
        let r = recipient(all_off());
        assert_eq!(decide_now(Some(&r), NotificationType::Security), in_app());
    }

    #[test]
    fn without_any_accepted_channel_nothing_can_be_delivered() {
        let r = recipient(Preferences {
            channels: vec![],
            ..Default::default()
        });
        for t in NotificationType::ALL {
            assert_eq!(
                decide_now(Some(&r), t),
                suppressed(SuppressionReason::NoChannel),
                "{t:?}"
            );
        }
    }

    #[test]
    fn every_accepted_channel_is_chosen_email_alone_too() {
        let r = recipient(Preferences {
            channels: vec![Channel::Email, Channel::InApp],
            ..Default::default()
        });
        let decision = decide_now(Some(&r), NotificationType::OrderUpdate);
        assert_eq!(decision.channels(), &[Channel::InApp, Channel::Email]);
        let r = recipient(Preferences {
            channels: vec![Channel::Email],
            ..Default::default()
        });
        let decision = decide_now(Some(&r), NotificationType::Promotion);
        assert_eq!(decision.channels(), &[Channel::Email]);
        assert!(!decision.delivers_in_app());
    }

    #[test]
    fn a_switched_off_type_reports_the_preference_before_the_channel() {
        let r = recipient(Preferences {
            channels: vec![],
            ..all_off()
        });
        assert_eq!(
            decide_now(Some(&r), NotificationType::Promotion),
            suppressed(SuppressionReason::PreferenceOff)
        );
    }

    #[test]
    fn promotions_over_the_daily_cap_are_suppressed_and_nothing_else_is() {
        let r = recipient(Preferences::default());
        let now = Utc::now();
        let after = |received, daily_cap| PromotionsToday {
            received,
            daily_cap,
        };
        let promotion = draft(NotificationType::Promotion);
        for received in 0..3 {
            assert_eq!(
                decide(Some(&r), &promotion, now, after(received, 3)),
                in_app()
            );
        }
        for received in [3, 4, 100] {
            assert_eq!(
                decide(Some(&r), &promotion, now, after(received, 3)),
                suppressed(SuppressionReason::FrequencyCap)
            );
        }
        // A cap of 0 lets no promotion through; other types are never capped.
        assert_eq!(
            decide(Some(&r), &promotion, now, after(0, 0)),
            suppressed(SuppressionReason::FrequencyCap)
        );
        for t in NotificationType::ALL
            .into_iter()
            .filter(|t| *t != NotificationType::Promotion)
        {
            assert_eq!(decide(Some(&r), &draft(t), now, after(9, 3)), in_app());
        }
        // Switched off is reported before the cap.
        let off = recipient(Preferences {
            promotions: false,
            ..Default::default()
        });
        assert_eq!(
            decide(Some(&off), &promotion, now, after(5, 3)),
            suppressed(SuppressionReason::PreferenceOff)
        );
    }

    #[test]
    fn standard_notifications_wait_for_the_end_of_quiet_hours_critical_ones_do_not() {
        let r = recipient(Preferences {
            channels: vec![Channel::InApp, Channel::Email],
            ..berlin_nights()
        });
        // 23:00 in Berlin, the night the clocks go forward: 07:30 CEST is 05:30 UTC.
        let night = utc("2026-03-28T22:00:00Z");
        for t in [
            NotificationType::Promotion,
            NotificationType::Recommendation,
            NotificationType::Inventory,
        ] {
            let decision = decide(Some(&r), &draft(t), night, NONE_YET);
            assert_eq!(
                decision,
                Decision::Deferred {
                    until: utc("2026-03-29T05:30:00Z"),
                    channels: vec![Channel::InApp, Channel::Email],
                },
                "{t:?}"
            );
            assert_eq!(decision.outcome(), Outcome::Deferred);
            assert_eq!(decision.reason(), None);
        }
        for t in [NotificationType::OrderUpdate, NotificationType::Security] {
            assert_eq!(
                decide(Some(&r), &draft(t), night, NONE_YET).outcome(),
                Outcome::Sent,
                "{t:?}"
            );
        }
        // Outside the window everything goes at once.
        let noon = utc("2026-03-28T11:00:00Z");
        assert_eq!(
            decide(
                Some(&r),
                &draft(NotificationType::Promotion),
                noon,
                NONE_YET
            )
            .outcome(),
            Outcome::Sent
        );
    }

    #[test]
    fn quiet_hours_defer_nothing_that_is_suppressed_anyway() {
        let r = recipient(berlin_nights());
        let night = utc("2026-03-28T22:00:00Z");
        let capped = PromotionsToday {
            received: 3,
            daily_cap: 3,
        };
        assert_eq!(
            decide(Some(&r), &draft(NotificationType::Promotion), night, capped),
            suppressed(SuppressionReason::FrequencyCap)
        );
    }

    #[test]
    fn a_delivery_decided_earlier_goes_out_only_if_still_wanted() {
        let both = recipient(Preferences {
            channels: vec![Channel::InApp, Channel::Email],
            ..Preferences::default()
        });
        let t = NotificationType::Promotion;
        assert_eq!(still_wanted(Some(&both), t, Channel::Email), Ok(()));
        let off = recipient(Preferences {
            promotions: false,
            ..both.preferences.clone()
        });
        assert_eq!(
            still_wanted(Some(&off), t, Channel::Email),
            Err(SuppressionReason::PreferenceOff)
        );
        let in_app_only = recipient(Preferences::default());
        assert_eq!(
            still_wanted(Some(&in_app_only), t, Channel::Email),
            Err(SuppressionReason::NoChannel)
        );
        assert_eq!(
            still_wanted(None, t, Channel::Email),
            Err(SuppressionReason::UnknownRecipient)
        );
        let security = recipient(Preferences {
            channels: vec![Channel::Email],
            ..all_off()
        });
        assert_eq!(
            still_wanted(Some(&security), NotificationType::Security, Channel::Email),
            Ok(())
        );
    }

    #[test]
    fn names_are_the_recorded_ones() {
        assert_eq!(Outcome::Sent.as_str(), "SENT");
        assert_eq!(Outcome::Deferred.as_str(), "DEFERRED");
        assert_eq!(Outcome::Suppressed.as_str(), "SUPPRESSED");
        for outcome in [Outcome::Sent, Outcome::Deferred, Outcome::Suppressed] {
            assert_eq!(serde_json::to_value(outcome).unwrap(), outcome.as_str());
        }
        for reason in [
            SuppressionReason::UnknownRecipient,
            SuppressionReason::PreferenceOff,
            SuppressionReason::NoChannel,
            SuppressionReason::FrequencyCap,
        ] {
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
    }
}
