//! The rules of accounts and preferences, without I/O. Input is parsed at the edge into
//! types that carry proof of validity.

use herald_events::{Channel, Preferences};
use herald_platform::ApiError;
use serde::{Deserialize, Deserializer, Serialize};

/// A normalised (trimmed, lowercased) email address of a plausible shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, ApiError> {
        let email = raw.trim().to_lowercase();
        let invalid =
            || ApiError::bad_input(format!("'{}' is not a valid email address", raw.trim()));
        if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if local.is_empty() || local.len() > 64 || local.contains('@') || !domain_ok {
            return Err(invalid());
        }
        Ok(Email(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password that meets the policy (8 to 1024 characters).
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 8;

    pub fn parse(raw: &str) -> Result<Password, ApiError> {
        let chars = raw.chars().count();
        if chars < Self::MIN_CHARS {
            return Err(ApiError::bad_input(format!(
                "password must be at least {} characters",
                Self::MIN_CHARS
            )));
        }
        if chars > 1024 {
            return Err(ApiError::bad_input(
                "password must be at most 1024 characters",
            ));
        }
        Ok(Password(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A display name: 1 to 100 characters after trimming, no control characters.
#[derive(Debug, Clone)]
pub struct UserName(String);

impl UserName {
    pub fn parse(raw: &str) -> Result<UserName, ApiError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(ApiError::bad_input("name must not be empty"));
        }
        if name.chars().count() > 100 {
            return Err(ApiError::bad_input("name must be at most 100 characters"));
        }
        if name.chars().any(char::is_control) {
            return Err(ApiError::bad_input(
                "name must not contain control characters",
            ));
        }
        Ok(UserName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A change to preferences: absent fields stay; `quietHoursStart: null` clears.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreferencesPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotions: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_updates: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendations: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory_alerts: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Vec<Channel>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub quiet_hours_start: Option<Option<String>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub quiet_hours_end: Option<Option<String>>,
}

/// A field that is present (even as null) deserializes to `Some`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

pub const MAX_CATEGORIES: usize = 50;

impl PreferencesPatch {
    /// The preferences after this change, or why it is invalid.
    pub fn apply(self, current: &Preferences) -> Result<Preferences, ApiError> {
        let mut next = current.clone();
        if let Some(v) = self.promotions {
            next.promotions = v;
        }
        if let Some(v) = self.order_updates {
            next.order_updates = v;
        }
        if let Some(v) = self.recommendations {
            next.recommendations = v;
        }
        if let Some(v) = self.inventory_alerts {
            next.inventory_alerts = v;
        }
        if let Some(categories) = self.categories {
            next.categories = parse_categories(&categories)?;
        }
        if let Some(channels) = self.channels {
            if channels.is_empty() {
                return Err(ApiError::bad_input(
                    "channels must name at least one channel",
                ));
            }
            let mut unique = Vec::new();
            for c in channels {
                if !unique.contains(&c) {
                    unique.push(c);
                }
            }
            next.channels = unique;
        }
        if let Some(tz) = self.timezone {
            next.timezone = parse_timezone(&tz)?;
        }
        if let Some(start) = self.quiet_hours_start {
            next.quiet_hours_start = start
                .as_deref()
                .map(|s| parse_local_time("quietHoursStart", s))
                .transpose()?;
        }
        if let Some(end) = self.quiet_hours_end {
            next.quiet_hours_end = end
                .as_deref()
                .map(|s| parse_local_time("quietHoursEnd", s))
                .transpose()?;
        }
        match (&next.quiet_hours_start, &next.quiet_hours_end) {
            (Some(start), Some(end)) if start == end => Err(ApiError::bad_input(
                "quiet hours must not start and end at the same time",
            )),
            (Some(_), None) | (None, Some(_)) => Err(ApiError::bad_input(
                "quietHoursStart and quietHoursEnd must be set (or cleared) together",
            )),
            _ => Ok(next),
        }
    }
}

fn parse_categories(raw: &[String]) -> Result<Vec<String>, ApiError> {
    let mut out: Vec<String> = Vec::new();
    for c in raw {
        let c = c.trim().to_lowercase();
        if c.is_empty() || c.chars().count() > 64 {
            return Err(ApiError::bad_input(
                "each category must have 1 to 64 characters",
            ));
        }
        if !out.contains(&c) {
            out.push(c);
        }
    }
    if out.len() > MAX_CATEGORIES {
        return Err(ApiError::bad_input(format!(
            "at most {MAX_CATEGORIES} categories"
        )));
    }
    Ok(out)
}

fn parse_timezone(raw: &str) -> Result<String, ApiError> {
    raw.trim()
        .parse::<chrono_tz::Tz>()
        .map(|tz| tz.name().to_owned())
        .map_err(|_| {
            ApiError::bad_input(format!(
                "'{raw}' is not an IANA time zone (e.g. Europe/Berlin)"
            ))
        })
}

/// "HH:MM", 24-hour clock.
fn parse_local_time(field: &str, raw: &str) -> Result<String, ApiError> {
    let invalid = || ApiError::bad_input(format!("{field} must be a time as HH:MM, got '{raw}'"));
    let (h, m) = raw.split_once(':').ok_or_else(invalid)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(invalid());
    }
    let h: u8 = h.parse().map_err(|_| invalid())?;
    let m: u8 = m.parse().map_err(|_| invalid())?;
    if h > 23 || m > 59 {
        return Err(invalid());
    }
    Ok(format!("{h:02}:{m:02}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@.com",
            "ada@ex..com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn passwords_need_eight_characters() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("long enough").is_ok());
        // Characters, not bytes.
        assert!(Password::parse("ääääääää").is_ok());
    }

    #[test]
    fn patch_validates_timezone_and_quiet_hours() {
        let base = Preferences::default();
        let ok = PreferencesPatch {
            timezone: Some("Europe/Berlin".into()),
            quiet_hours_start: Some(Some("22:00".into())),
            quiet_hours_end: Some(Some("07:30".into())),
            ..Default::default()
        }
        .apply(&base)
        .unwrap();
        assert_eq!(ok.timezone, "Europe/Berlin");
        assert_eq!(ok.quiet_hours_start.as_deref(), Some("22:00"));

        let bad_tz = PreferencesPatch {
            timezone: Some("Mars/Olympus".into()),
            ..Default::default()
        };
        assert!(bad_tz.apply(&base).is_err());
        let bad_time = PreferencesPatch {
            quiet_hours_start: Some(Some("25:00".into())),
            quiet_hours_end: Some(Some("07:00".into())),
            ..Default::default()
        };
        assert!(bad_time.apply(&base).is_err());
        let half = PreferencesPatch {
            quiet_hours_start: Some(Some("22:00".into())),
            ..Default::default()
        };
        assert!(half.apply(&base).is_err());

        let cleared = PreferencesPatch {
            quiet_hours_start: Some(None),
            quiet_hours_end: Some(None),
            ..Default::default()
        }
        .apply(&ok)
        .unwrap();
        assert_eq!(cleared.quiet_hours_start, None);
    }

    #[test]
    fn null_in_json_clears_and_absent_keeps() {
        let patch: PreferencesPatch = serde_json::from_str(r#"{"quietHoursStart": null}"#).unwrap();
        assert_eq!(patch.quiet_hours_start, Some(None));
        assert_eq!(patch.quiet_hours_end, None);
    }

    #[test]
    fn empty_channels_are_rejected_and_categories_normalised() {
        let base = Preferences::default();
        assert!(
            PreferencesPatch {
                channels: Some(vec![]),
                ..Default::default()
            }
            .apply(&base)
            .is_err()
        );
        let p = PreferencesPatch {
            categories: Some(vec![" Coffee ".into(), "coffee".into(), "Tea".into()]),
            ..Default::default()
        }
        .apply(&base)
        .unwrap();
        assert_eq!(p.categories, vec!["coffee", "tea"]);
    }
}
