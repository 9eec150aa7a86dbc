//! Cron expressions, in UTC: five fields (minute hour day-of-month month day-of-week) or six
//! with seconds first. Each field takes `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`,
//! and lists of those; day-of-week runs 0–7 (both 0 and 7 are Sunday). As in Vixie cron,
//! when both day fields are restricted a day matching either one matches.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, DurationRound, Timelike, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    expression: String,
    seconds: u64,
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    days_restricted: bool,
    weekdays_restricted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronError(String);

impl fmt::Display for CronError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CronError {}

/// One field: a bit per allowed value, and whether it restricts anything (not `*`).
fn field(text: &str, name: &str, min: u32, max: u32) -> Result<(u64, bool), CronError> {
    let bad = |why: &str| CronError(format!("{name} field `{text}`: {why}"));
    let number = |s: &str| -> Result<u32, CronError> {
        let n: u32 = s.parse().map_err(|_| bad("not a number"))?;
        if (min..=max).contains(&n) {
            Ok(n)
        } else {
            Err(bad(&format!("{n} is outside {min}-{max}")))
        }
    };
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step.parse().map_err(|_| bad("the step is not a number"))?;
                if step == 0 {
                    return Err(bad("the step must be at least 1"));
                }
                (range, step)
            }
            None => (part, 1),
        };
        let (from, to) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (number(a)?, number(b)?);
            if a > b {
                return Err(bad("a range must go upwards"));
            }
            (a, b)
        } else {
            let a = number(range)?;
            // `5/10` means from 5 to the end, every 10.
            (a, if part.contains('/') { max } else { a })
        };
        let mut value = from;
        while value <= to {
            bits |= 1 << value;
            value += step;
        }
    }
    Ok((bits, text != "*"))
}

impl FromStr for Schedule {
    type Err = CronError;

    fn from_str(expression: &str) -> Result<Schedule, CronError> {
        let fields: Vec<&str> = expression.split_whitespace().collect();
        let fields = match fields.len() {
            5 => [&["0"][..], &fields[..]].concat(),
            6 => fields,
            n => {
                return Err(CronError(format!(
                    "`{expression}` has {n} fields; a schedule has 5 (minute hour day month weekday) or 6 (seconds first)"
                )));
            }
        };
        let (seconds, _) = field(fields[0], "seconds", 0, 59)?;
        let (minutes, _) = field(fields[1], "minute", 0, 59)?;
        let (hours, _) = field(fields[2], "hour", 0, 23)?;
        let (days, days_restricted) = field(fields[3], "day-of-month", 1, 31)?;
        let (months, _) = field(fields[4], "month", 1, 12)?;
        let (mut weekdays, weekdays_restricted) = field(fields[5], "day-of-week", 0, 7)?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1;
        }
        Ok(Schedule {
            expression: expression.split_whitespace().collect::<Vec<_>>().join(" "),
            seconds,
            minutes,
            hours,
            days,
            months,
            weekdays,
            days_restricted,
            weekdays_restricted,
        })
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)
    }
}

fn has(bits: u64, value: u32) -> bool {
    bits & (1 << value) != 0
}

impl Schedule {
    fn day_matches(&self, t: DateTime<Utc>) -> bool {
        let day = has(self.days, t.day());
        let weekday = has(self.weekdays, t.weekday().num_days_from_sunday());
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => day || weekday,
            _ => day && weekday,
        }
    }

    /// The first time strictly after `after` the schedule fires at; None if it never does
    /// within five years (e.g. `0 0 31 2 *`).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = after.duration_trunc(Duration::seconds(1)).ok()? + Duration::seconds(1);
        let limit = start + Duration::days(5 * 366);
        let mut t = start;
        while t < limit {
            if !has(self.months, t.month()) {
                // The first second of the next month.
                let (year, month) = if t.month() == 12 {
                    (t.year() + 1, 1)
                } else {
                    (t.year(), t.month() + 1)
                };
                t = t
                    .with_day(1)?
                    .with_year(year)?
                    .with_month(month)?
                    .with_hour(0)?
                    .with_minute(0)?
                    .with_second(0)?;
                continue;
            }
            if !self.day_matches(t) {
                t = (t + Duration::days(1))
                    .with_hour(0)?
                    .with_minute(0)?
                    .with_second(0)?;
                continue;
            }
            if !has(self.hours, t.hour()) {
                t = (t + Duration::hours(1)).with_minute(0)?.with_second(0)?;
                continue;
            }
            if !has(self.minutes, t.minute()) {
                t = (t + Duration::minutes(1)).with_second(0)?;
                continue;
            }
            if !has(self.seconds, t.second()) {
                t += Duration::seconds(1);
                continue;
            }
            return Some(t);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    fn next(expr: &str, after: DateTime<Utc>) -> DateTime<Utc> {
        expr.parse::<Schedule>().unwrap().next_after(after).unwrap()
    }

    #[test]
    fn every_minute_fires_at_the_next_minute() {
        assert_eq!(
            next("* * * * *", at(2026, 11, 29, 22, 40, 12)),
            at(2026, 11, 29, 22, 41, 0)
        );
        assert_eq!(
            next("* * * * *", at(2026, 11, 29, 22, 41, 0)),
            at(2026, 11, 29, 22, 42, 0),
            "strictly after"
        );
    }

    #[test]
    fn steps_ranges_and_lists() {
        assert_eq!(
            next("*/15 * * * *", at(2026, 1, 1, 10, 46, 0)),
            at(2026, 1, 1, 11, 0, 0)
        );
        assert_eq!(
            next("0 9-17/4 * * *", at(2026, 1, 1, 13, 0, 0)),
            at(2026, 1, 1, 17, 0, 0)
        );
        assert_eq!(
            next("5,35 * * * *", at(2026, 1, 1, 10, 6, 0)),
            at(2026, 1, 1, 10, 35, 0)
        );
        assert_eq!(
            next("*/10 * * * * *", at(2026, 1, 1, 10, 6, 55)),
            at(2026, 1, 1, 10, 7, 0)
        );
    }

    #[test]
    fn crosses_days_months_and_years() {
        assert_eq!(
            next("0 9 * * *", at(2026, 12, 31, 10, 0, 0)),
            at(2027, 1, 1, 9, 0, 0)
        );
        assert_eq!(
            next("0 0 1 3 *", at(2026, 3, 2, 0, 0, 0)),
            at(2027, 3, 1, 0, 0, 0)
        );
        assert_eq!(
            next("0 0 29 2 *", at(2026, 3, 1, 0, 0, 0)),
            at(2028, 2, 29, 0, 0, 0)
        );
    }

    #[test]
    fn weekdays_and_the_either_rule() {
        // 2026-11-29 is a Sunday.
        assert_eq!(
            next("0 9 * * 1", at(2026, 11, 29, 12, 0, 0)),
            at(2026, 11, 30, 9, 0, 0)
        );
        assert_eq!(
            next("0 9 * * 7", at(2026, 11, 28, 12, 0, 0)),
            at(2026, 11, 29, 9, 0, 0),
            "7 is Sunday too"
        );
        // Both restricted: the 1st of the month or a Friday, whichever comes first.
        assert_eq!(
            next("0 0 1 * 5", at(2026, 11, 29, 0, 0, 0)),
            at(2026, 12, 1, 0, 0, 0)
        );
        assert_eq!(
            next("0 0 15 * 1", at(2026, 11, 29, 0, 0, 0)),
            at(2026, 11, 30, 0, 0, 0)
        );
    }

    #[test]
    fn impossible_dates_never_fire() {
        let s: Schedule = "0 0 31 2 *".parse().unwrap();
        assert_eq!(s.next_after(at(2026, 1, 1, 0, 0, 0)), None);
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        for (expr, says) in [
            ("* * * *", "has 4 fields"),
            ("61 * * * *", "minute field `61`: 61 is outside 0-59"),
            ("* 24 * * *", "hour"),
            ("*/0 * * * *", "step must be at least 1"),
            ("5-1 * * * *", "upwards"),
            ("a * * * *", "not a number"),
            ("* * 0 * *", "day-of-month"),
        ] {
            let err = expr.parse::<Schedule>().unwrap_err().to_string();
            assert!(err.contains(says), "{expr}: {err}");
        }
    }

    #[test]
    fn shows_the_expression_as_written() {
        let s: Schedule = " */5  * * * *".parse().unwrap();
        assert_eq!(s.to_string(), "*/5 * * * *");
    }
}
