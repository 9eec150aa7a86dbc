//! Quiet hours and local days in the user's time zone. Pure.
//!
//! A window is local wall-clock time, `start` inclusive and `end` exclusive; one whose end
//! is earlier than its start runs across midnight. Wall-clock times a DST change skips
//! become the first instant after the gap; times it repeats become their first occurrence
//! still ahead.

use chrono::{DateTime, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use herald_events::Preferences;

/// A user's quiet hours in their time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    pub timezone: Tz,
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl QuietHours {
    /// The quiet hours `preferences` set, if any. Values the users service would never
    /// send (an unknown zone, a bad time, an empty window) count as no quiet hours.
    pub fn of(preferences: &Preferences) -> Option<QuietHours> {
        let start = parse_time(preferences.quiet_hours_start.as_deref()?)?;
        let end = parse_time(preferences.quiet_hours_end.as_deref()?)?;
        if start == end {
            return None;
        }
        Some(QuietHours {
            timezone: timezone_of(preferences)?,
            start,
            end,
        })
    }

    /// When the quiet hours `now` falls in end; None when `now` is outside them.
    pub fn end_after(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&self.timezone).naive_local();
        let (date, time) = (local.date(), local.time());
        let end_date = if self.start < self.end {
            if !(self.start <= time && time < self.end) {
                return None;
            }
            date
        } else if time >= self.start {
            date.checked_add_days(Days::new(1))?
        } else if time < self.end {
            date
        } else {
            return None;
        };
        let end = first_instant_at(self.timezone, end_date.and_time(self.end), now);
        // A repeated hour can put `now` past the wall-clock end it is still "before".
        end.filter(|end| *end > now)
    }
}

fn parse_time(raw: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(raw, "%H:%M").ok()
}

/// The user's time zone; None when the name is unknown.
pub fn timezone_of(preferences: &Preferences) -> Option<Tz> {
    preferences.timezone.parse::<Tz>().ok()
}

/// The user's local day around `now` as an instant range `[start, end)`.
pub fn local_day(timezone: Tz, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let date = now.with_timezone(&timezone).date_naive();
    let next = date.checked_add_days(Days::new(1)).unwrap_or(date);
    (midnight(timezone, date), midnight(timezone, next))
}

fn midnight(timezone: Tz, date: NaiveDate) -> DateTime<Utc> {
    let start = date.and_time(NaiveTime::MIN);
    first_instant_at(timezone, start, DateTime::<Utc>::MIN_UTC).unwrap_or_else(|| start.and_utc())
}

/// The first instant after `not_before` whose wall-clock time in `timezone` is `wall`, or,
/// when a DST gap skips `wall`, the first instant after the gap.
fn first_instant_at(
    timezone: Tz,
    wall: NaiveDateTime,
    not_before: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    match timezone.from_local_datetime(&wall) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(first, second) => {
            let (first, second) = (first.with_timezone(&Utc), second.with_timezone(&Utc));
            Some(if first > not_before { first } else { second })
        }
        LocalResult::None => first_instant_after_gap(timezone, wall),
    }
}

/// In a gap the wall clock jumps over `wall`: find the instant of the jump, the first one
/// whose wall-clock time is at or past `wall`.
fn first_instant_after_gap(timezone: Tz, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
    // Gaps are at most a day long; the jump lies between these two readings of `wall`.
    let mut low = (wall - chrono::Duration::days(1)).and_utc().timestamp();
    let mut high = (wall + chrono::Duration::days(1)).and_utc().timestamp();
    let reaches = |secs: i64| {
        DateTime::from_timestamp(secs, 0)
            .map(|t| t.with_timezone(&timezone).naive_local() >= wall)
            .unwrap_or(true)
    };
    if !reaches(high) {
        return None;
    }
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if reaches(mid) {
            high = mid;
        } else {
            low = mid;
        }
    }
    DateTime::from_timestamp(high, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(raw: &str) -> DateTime<Utc> {
        raw.parse().unwrap()
    }

    fn window(zone: &str, start: &str, end: &str) -> QuietHours {
        QuietHours::of(&Preferences {
            timezone: zone.to_owned(),
            quiet_hours_start: Some(start.to_owned()),
            quiet_hours_end: Some(end.to_owned()),
            ..Preferences::default()
        })
        .unwrap()
    }

    #[test]
    fn a_night_window_ends_the_next_morning_in_local_time() {
        let berlin = window("Europe/Berlin", "22:00", "07:30");
        // 23:00 CET in winter is 22:00 UTC; 07:30 CET is 06:30 UTC.
        assert_eq!(
            berlin.end_after(utc("2026-01-15T22:00:00Z")),
            Some(utc("2026-01-16T06:30:00Z"))
        );
        // After midnight, the same morning.
        assert_eq!(
            berlin.end_after(utc("2026-01-16T03:00:00Z")),
            Some(utc("2026-01-16T06:30:00Z"))
        );
        // 22:00 sharp is quiet, 07:30 sharp is not.
        assert_eq!(
            berlin.end_after(utc("2026-01-15T21:00:00Z")),
            Some(utc("2026-01-16T06:30:00Z"))
        );
        assert_eq!(berlin.end_after(utc("2026-01-16T06:30:00Z")), None);
        assert_eq!(berlin.end_after(utc("2026-01-15T12:00:00Z")), None);
    }

    #[test]
    fn across_the_spring_dst_change_the_end_is_in_summer_time() {
        let berlin = window("Europe/Berlin", "22:00", "07:30");
        // 23:00 CET on 28 March 2026; the clocks go forward that night, so 07:30 is CEST.
        assert_eq!(
            berlin.end_after(utc("2026-03-28T22:00:00Z")),
            Some(utc("2026-03-29T05:30:00Z"))
        );
        // And back in autumn: 07:30 CET on 25 October is 06:30 UTC.
        assert_eq!(
            berlin.end_after(utc("2026-10-24T21:00:00Z")),
            Some(utc("2026-10-25T06:30:00Z"))
        );
    }

    #[test]
    fn an_end_the_dst_gap_skips_is_the_first_instant_after_it() {
        // 02:30 does not exist in Berlin on 29 March 2026: 02:00 CET jumps to 03:00 CEST.
        let gap = window("Europe/Berlin", "22:00", "02:30");
        assert_eq!(
            gap.end_after(utc("2026-03-28T22:00:00Z")),
            Some(utc("2026-03-29T01:00:00Z"))
        );
    }

    #[test]
    fn an_end_in_the_repeated_hour_is_its_first_occurrence_still_ahead() {
        // On 25 October 2026 Berlin lives 02:00–03:00 twice (CEST, then CET).
        let repeated = window("Europe/Berlin", "22:00", "02:30");
        assert_eq!(
            repeated.end_after(utc("2026-10-24T21:00:00Z")),
            Some(utc("2026-10-25T00:30:00Z"))
        );
        // During the second 02:00–02:30 the first 02:30 has passed: the second one ends it.
        assert_eq!(
            repeated.end_after(utc("2026-10-25T01:10:00Z")),
            Some(utc("2026-10-25T01:30:00Z"))
        );
    }

    #[test]
    fn a_daytime_window_does_not_cross_midnight() {
        let lunch = window("Europe/Berlin", "13:00", "14:00");
        assert_eq!(
            lunch.end_after(utc("2026-01-15T12:30:00Z")),
            Some(utc("2026-01-15T13:00:00Z"))
        );
        assert_eq!(lunch.end_after(utc("2026-01-15T11:59:00Z")), None);
        assert_eq!(lunch.end_after(utc("2026-01-15T13:00:00Z")), None);
        assert_eq!(lunch.end_after(utc("2026-01-15T23:30:00Z")), None);
    }

    #[test]
    fn no_usable_window_means_no_quiet_hours() {
        let with = |zone: &str, start: Option<&str>, end: Option<&str>| {
            QuietHours::of(&Preferences {
                timezone: zone.to_owned(),
                quiet_hours_start: start.map(str::to_owned),
                quiet_hours_end: end.map(str::to_owned),
                ..Preferences::default()
            })
        };
        assert_eq!(with("UTC", None, None), None);
        assert_eq!(with("UTC", Some("22:00"), None), None);
        assert_eq!(with("UTC", Some("22:00"), Some("22:00")), None);
        assert_eq!(with("UTC", Some("25:00"), Some("07:00")), None);
        assert_eq!(with("Mars/Olympus", Some("22:00"), Some("07:00")), None);
        assert!(with("UTC", Some("22:00"), Some("07:00")).is_some());
    }

    #[test]
    fn a_local_day_runs_from_local_midnight_to_local_midnight() {
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        // 23:00 in Tokyo on 15 June is 14:00 UTC.
        assert_eq!(
            local_day(tokyo, utc("2026-06-15T14:00:00Z")),
            (utc("2026-06-14T15:00:00Z"), utc("2026-06-15T15:00:00Z"))
        );
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        // The day the clocks go forward has 23 hours.
        let (start, end) = local_day(berlin, utc("2026-03-29T12:00:00Z"));
        assert_eq!(start, utc("2026-03-28T23:00:00Z"));
        assert_eq!(end, utc("2026-03-29T22:00:00Z"));
        // Where DST starts at midnight, the day starts at the first instant after the gap.
        let havana: Tz = "America/Havana".parse().unwrap();
        let (start, _) = local_day(havana, utc("2026-03-08T12:00:00Z"));
        assert_eq!(start, utc("2026-03-08T05:00:00Z"));
    }
}
