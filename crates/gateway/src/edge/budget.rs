//! Request budgets: each client (address) and each signed-in user may send so many
//! operations a minute, with the whole minute's worth available at once (a token bucket,
//! kept as GCRA's one timestamp per key). Kept in this gateway process: with several
//! gateway replicas behind a load balancer, each holds its own budgets.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::client::ClientAddr;

/// Whose budget a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Spender {
    /// A client, as [`ClientAddr`] counts them.
    Client(IpAddr),
    User(Uuid),
}

impl Spender {
    pub fn client(addr: ClientAddr) -> Spender {
        Spender::Client(addr.0)
    }
}

const SHARDS: usize = 16;
/// Keys a shard holds before it forgets the ones whose budget is full again (and, if
/// all are still spending, the oldest half): memory stays bounded under a flood of
/// addresses.
const SHARD_KEYS: usize = 16_384;

/// Operations per minute per key, with a minute's worth available at once; 0: no limit.
pub struct Budget {
    /// Time one operation costs (60 s / per-minute rate).
    interval: Duration,
    /// How far ahead of now a key's schedule may run: the burst.
    tolerance: Duration,
    epoch: Instant,
    hasher: RandomState,
    /// Per key: when its budget is next full again, as time since `epoch`.
    shards: Vec<Mutex<HashMap<Spender, Duration>>>,
}

impl Budget {
    /// `None` when `per_minute` is 0 (no limit).
    pub fn per_minute(per_minute: u32) -> Option<Budget> {
        if per_minute == 0 {
            return None;
        }
        let interval = Duration::from_secs(60) / per_minute;
        Some(Budget {
            interval,
            tolerance: interval * (per_minute - 1),
            epoch: Instant::now(),
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        })
    }

    /// Spends `cost` operations of `spender`'s budget now, or says how long until it could.
    pub fn spend(&self, spender: Spender, cost: u32) -> Result<(), Duration> {
        self.spend_at(spender, cost, self.epoch.elapsed())
    }

    /// Runs `spender`'s schedule `cost` operations ahead without checking it: the rest of
    /// a request that [`Budget::spend`] let start.
    pub fn charge(&self, spender: Spender, cost: u32) {
        // Unchecked, it cannot refuse.
        let _ = self.advance(spender, cost, self.epoch.elapsed(), false);
    }

    fn spend_at(&self, spender: Spender, cost: u32, now: Duration) -> Result<(), Duration> {
        self.advance(spender, cost, now, true)
    }

    fn advance(
        &self,
        spender: Spender,
        cost: u32,
        now: Duration,
        check: bool,
    ) -> Result<(), Duration> {
        let shard = self.hasher.hash_one(spender) as usize % SHARDS;
        let mut keys = self.shards[shard].lock().unwrap_or_else(|p| p.into_inner());
        let scheduled = keys.get(&spender).copied().unwrap_or(now).max(now);
        // The request must start within the burst; its further operations may run the
        // schedule ahead, so a large batch waits longer next time rather than never passing.
        let ahead = scheduled - now;
        if check && ahead > self.tolerance {
            return Err(ahead - self.tolerance);
        }
        let after = scheduled + self.interval * cost.max(1);
        if keys.len() >= SHARD_KEYS && !keys.contains_key(&spender) {
            keys.retain(|_, full_at| *full_at > now);
            if keys.len() >= SHARD_KEYS {
                let mut ends: Vec<Duration> = keys.values().copied().collect();
                ends.sort_unstable();
                let median = ends[ends.len() / 2];
                keys.retain(|_, full_at| *full_at > median);
            }
        }
        keys.insert(spender, after);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(n: u8) -> Spender {
        Spender::client(ClientAddr::new(IpAddr::from([10, 0, 0, n])))
    }

    #[test]
    fn a_minutes_worth_passes_at_once_then_it_refills_at_the_rate() {
        let budget = Budget::per_minute(60).unwrap();
        let t0 = Duration::from_secs(100);
        for _ in 0..60 {
            assert_eq!(budget.spend_at(client(1), 1, t0), Ok(()));
        }
        let wait = budget.spend_at(client(1), 1, t0).unwrap_err();
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::ZERO,
            "{wait:?}"
        );
        // Another client has its own budget.
        assert_eq!(budget.spend_at(client(2), 1, t0), Ok(()));
        // A second later one more passes.
        assert_eq!(
            budget.spend_at(client(1), 1, t0 + Duration::from_secs(1)),
            Ok(())
        );
        assert!(
            budget
                .spend_at(client(1), 1, t0 + Duration::from_secs(1))
                .is_err()
        );
    }

    #[test]
    fn a_batch_costs_each_operation() {
        let budget = Budget::per_minute(60).unwrap();
        let t0 = Duration::from_secs(100);
        assert_eq!(budget.spend_at(client(1), 20, t0), Ok(()));
        assert_eq!(budget.spend_at(client(1), 20, t0), Ok(()));
        assert_eq!(budget.spend_at(client(1), 20, t0), Ok(()));
        let wait = budget.spend_at(client(1), 1, t0).unwrap_err();
        assert!(wait > Duration::from_millis(900), "{wait:?}");
        // The schedule ran ahead by the batches: 20 seconds later only 20 fit again.
        let later = t0 + Duration::from_secs(20);
        assert_eq!(budget.spend_at(client(1), 20, later), Ok(()));
        assert!(budget.spend_at(client(1), 1, later).is_err());
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_addresses() {
        let budget = Budget::per_minute(10).unwrap();
        let t0 = Duration::from_secs(100);
        for i in 0..200_000u32 {
            let _ = budget.spend_at(
                Spender::client(ClientAddr::new(IpAddr::from(i.to_be_bytes()))),
                1,
                t0,
            );
        }
        let held: usize = budget.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(held <= SHARD_KEYS * SHARDS, "{held}");
        assert_eq!(Budget::per_minute(0).map(|_| ()), None);
    }
}
