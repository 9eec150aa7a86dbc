//! How a consumer runs: its concurrency and its retry policy (attempts, exponential backoff
//! with jitter).

use std::time::Duration;

use rand::RngExt;

use crate::config::Settings;

/// How a consumer runs.
#[derive(Debug, Clone)]
pub struct ConsumerOptions {
    /// Messages handled at once (RabbitMQ prefetch).
    pub concurrency: usize,
    /// Deliveries of one message, the first included, before it is dead-lettered.
    pub max_attempts: u32,
    /// The delay before the second attempt; each later one is `backoff_factor` times longer.
    pub retry_delay: Duration,
    pub backoff_factor: f64,
    /// Each delay is spread by up to this fraction either way (0.2: ±20 %), so messages that
    /// failed together do not all come back at once.
    pub jitter: f64,
    pub max_retry_delay: Duration,
}

impl Default for ConsumerOptions {
    /// 5 attempts, retried after 15 s, 45 s, 135 s and 405 s (about 10 minutes in all), ±20 %.
    fn default() -> Self {
        ConsumerOptions {
            concurrency: 32,
            max_attempts: 5,
            retry_delay: Duration::from_secs(15),
            backoff_factor: 3.0,
            jitter: 0.2,
            max_retry_delay: Duration::from_secs(3600),
        }
    }
}

impl ConsumerOptions {
    /// The defaults with the attempts and first delay the settings give
    /// (`bus_max_attempts`, `bus_retry_delay_ms`).
    pub fn from_settings(settings: &Settings) -> ConsumerOptions {
        ConsumerOptions {
            max_attempts: settings.bus_max_attempts,
            retry_delay: Duration::from_millis(settings.bus_retry_delay_ms),
            ..ConsumerOptions::default()
        }
    }

    /// [`ConsumerOptions::from_settings`] for a consumer whose handler takes its bulk of
    /// events in batches: as many deliveries at once as a batch may hold
    /// (`bus_batch_concurrency`), so that batches fill.
    pub fn batched_from_settings(settings: &Settings) -> ConsumerOptions {
        ConsumerOptions {
            concurrency: settings.bus_batch_concurrency,
            ..ConsumerOptions::from_settings(settings)
        }
    }

    fn max_attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }

    fn jitter(&self) -> f64 {
        if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 0.9)
        } else {
            0.0
        }
    }

    /// Whether a message whose `attempt`-th delivery failed is delivered again.
    pub fn retries_after(&self, attempt: u32) -> bool {
        attempt < self.max_attempts()
    }

    /// How many delays a message can go through: one fewer than its attempts.
    pub fn retry_levels(&self) -> u32 {
        self.max_attempts() - 1
    }

    /// The delay after the `attempt`-th delivery failed (1 for the first), before jitter.
    pub fn delay_for_attempt(&self, attempt: u32) -> Duration {
        let factor = if self.backoff_factor.is_finite() {
            self.backoff_factor.max(1.0)
        } else {
            1.0
        };
        let exponent = i32::try_from(attempt.saturating_sub(1).min(64)).unwrap_or(64);
        let seconds = self.retry_delay.as_secs_f64() * factor.powi(exponent);
        let cap = self.max_retry_delay.max(self.retry_delay);
        if seconds.is_finite() && seconds < cap.as_secs_f64() {
            Duration::from_secs_f64(seconds)
        } else {
            cap
        }
    }

    /// The longest jittered delay after the `attempt`-th delivery failed, in whole
    /// milliseconds (RabbitMQ's TTL of that retry level).
    pub fn max_delay_for_attempt(&self, attempt: u32) -> Duration {
        let base = self.delay_for_attempt(attempt).as_secs_f64();
        // Less a rounding error, so that 45 s × 1.2 is 54 000 ms and not 54 001.
        let ms = (base * (1.0 + self.jitter()) * 1000.0 - 1e-6)
            .ceil()
            .max(0.0);
        Duration::from_millis(ms as u64)
    }

    /// The delay after the `attempt`-th delivery failed, jitter applied; never more than
    /// [`ConsumerOptions::max_delay_for_attempt`].
    pub fn jittered_delay(&self, attempt: u32) -> Duration {
        let base = self.delay_for_attempt(attempt);
        let jitter = self.jitter();
        let spread = if jitter > 0.0 {
            rand::rng().random_range(-jitter..=jitter)
        } else {
            0.0
        };
        base.mul_f64(1.0 + spread)
            .min(self.max_delay_for_attempt(attempt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_retry_four_times_over_about_ten_minutes() {
        let options = ConsumerOptions::default();
        let delays: Vec<u64> = (1..=4)
            .map(|a| options.delay_for_attempt(a).as_secs())
            .collect();
        assert_eq!(delays, [15, 45, 135, 405]);
        assert_eq!(delays.iter().sum::<u64>(), 600);
        assert_eq!(options.retry_levels(), 4);
        assert!(options.retries_after(4));
        assert!(!options.retries_after(5));
    }

    #[test]
    fn delays_stop_growing_at_the_maximum() {
        let options = ConsumerOptions {
            max_retry_delay: Duration::from_secs(60),
            ..ConsumerOptions::default()
        };
        assert_eq!(options.delay_for_attempt(3), Duration::from_secs(60));
        assert_eq!(options.delay_for_attempt(1000), Duration::from_secs(60));
    }

    #[test]
    fn jitter_stays_within_its_bounds() {
        let options = ConsumerOptions::default();
        for _ in 0..1000 {
            let delay = options.jittered_delay(2);
            assert!(delay >= Duration::from_secs(36), "{delay:?}");
            assert!(delay <= Duration::from_secs(54), "{delay:?}");
            assert!(delay <= options.max_delay_for_attempt(2));
        }
        assert_eq!(options.max_delay_for_attempt(2), Duration::from_secs(54));
    }

    #[test]
    fn one_attempt_means_no_retry() {
        let options = ConsumerOptions {
            max_attempts: 1,
            ..ConsumerOptions::default()
        };
        assert!(!options.retries_after(1));
        assert_eq!(options.retry_levels(), 0);
    }
}
