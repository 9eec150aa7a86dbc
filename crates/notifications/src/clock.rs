//! The service's idea of "now": the system clock in production, a clock that tests set.
//!
//! Everything time-dependent here (the decision, what is visible yet, which emails are due,
//! when an unsubscribe link expires) asks one shared [`Clock`], so a test can put a user in
//! their quiet hours or jump to the next morning without waiting.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use tokio::sync::Notify;

#[derive(Clone, Debug)]
pub struct Clock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// None: the system clock.
    manual: Option<Mutex<DateTime<Utc>>>,
    /// Woken whenever a manual clock is set, so waiting workers look again.
    changed: Notify,
}

impl Clock {
    pub fn system() -> Clock {
        Clock {
            inner: Arc::new(Inner {
                manual: None,
                changed: Notify::new(),
            }),
        }
    }

    /// A clock that stands at `now` until it is set or advanced.
    pub fn manual(now: DateTime<Utc>) -> Clock {
        Clock {
            inner: Arc::new(Inner {
                manual: Some(Mutex::new(now)),
                changed: Notify::new(),
            }),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &self.inner.manual {
            Some(now) => *now.lock().unwrap_or_else(|p| p.into_inner()),
            None => Utc::now(),
        }
    }

    /// Sets a manual clock; the system clock cannot be set and ignores this.
    pub fn set(&self, now: DateTime<Utc>) {
        let Some(manual) = &self.inner.manual else {
            tracing::warn!("the system clock cannot be set");
            return;
        };
        *manual.lock().unwrap_or_else(|p| p.into_inner()) = now;
        self.inner.changed.notify_waiters();
    }

    /// Moves a manual clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.set(self.now() + by);
    }

    /// Resolves when a manual clock is next set (never for the system clock).
    pub async fn changed(&self) {
        if self.inner.manual.is_some() {
            self.inner.changed.notified().await;
        } else {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_stands_still_until_moved_and_copies_share_it() {
        let start = "2026-03-28T22:00:00Z".parse().unwrap();
        let clock = Clock::manual(start);
        let shared = clock.clone();
        assert_eq!(clock.now(), start);
        shared.advance(Duration::hours(8));
        assert_eq!(clock.now(), start + Duration::hours(8));
        clock.set(start);
        assert_eq!(shared.now(), start);
    }

    #[test]
    fn the_system_clock_follows_the_time_and_cannot_be_set() {
        let clock = Clock::system();
        let before = Utc::now();
        clock.set("2000-01-01T00:00:00Z".parse().unwrap());
        assert!(clock.now() >= before);
    }
}
