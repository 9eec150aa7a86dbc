//! What a Kafka consumer holds of its partitions: the messages being handled, those waiting
//! behind an earlier message of the same key, and how far each partition may be committed.
//!
//! Messages of different keys are handled at once (up to the consumer's concurrency); those
//! of one key one after the other, in their partition's order, so that an order's events
//! reach a handler in the order they were published. A partition is committed up to its
//! oldest message not yet settled: a consumer that stops (or loses the partition) leaves
//! nothing unsettled behind the committed offset.
//!
//! Partitions come and go with the group's rebalances. Each assignment of a partition is an
//! epoch: what was received in an earlier epoch no longer counts for the partition's commit,
//! and what waited is dropped (the partition's next owner reads it again from the
//! committed offset, which never passed it).

use std::collections::{BTreeSet, HashMap, VecDeque};

/// A received message as the ledger tracks it.
#[derive(Debug)]
pub(super) struct Held<M> {
    pub partition: i32,
    pub offset: i64,
    pub epoch: u64,
    pub key: Vec<u8>,
    pub message: M,
}

#[derive(Debug)]
struct Partition {
    epoch: u64,
    /// Offsets received and not settled yet (being handled or waiting).
    unsettled: BTreeSet<i64>,
    /// One past the highest offset received.
    next: i64,
    /// What was committed last (or is being committed), -1 when nothing yet.
    committed: i64,
}

#[derive(Debug)]
pub(super) struct Ledger<M> {
    partitions: HashMap<i32, Partition>,
    /// Per key being handled: the messages of that key waiting for it, oldest first.
    keys: HashMap<Vec<u8>, VecDeque<Held<M>>>,
    waiting: usize,
}

impl<M> Default for Ledger<M> {
    fn default() -> Self {
        Ledger {
            partitions: HashMap::new(),
            keys: HashMap::new(),
            waiting: 0,
        }
    }
}

impl<M> Ledger<M> {
    /// Takes a received message; returns it when it can be handled now (no earlier message
    /// of its key is), else it waits.
    pub fn receive(&mut self, held: Held<M>) -> Option<Held<M>> {
        let partition = self
            .partitions
            .entry(held.partition)
            .or_insert_with(|| Partition::new(held.epoch));
        if held.epoch != partition.epoch {
            // A new assignment of the partition: what was tracked of the old one is moot.
            *partition = Partition::new(held.epoch);
        }
        partition.unsettled.insert(held.offset);
        partition.next = partition.next.max(held.offset + 1);
        match self.keys.get_mut(&held.key) {
            Some(queue) => {
                queue.push_back(held);
                self.waiting += 1;
                None
            }
            None => {
                self.keys.insert(held.key.clone(), VecDeque::new());
                Some(held)
            }
        }
    }

    /// Records that a message was settled; returns the next message of its key to handle,
    /// if one waits. `current` tells a partition's epoch now: messages of a partition
    /// assigned again since they arrived are dropped, not handled.
    pub fn settled(
        &mut self,
        partition: i32,
        offset: i64,
        epoch: u64,
        key: &[u8],
        current: impl Fn(i32) -> u64,
    ) -> Option<Held<M>> {
        if let Some(p) = self.partitions.get_mut(&partition)
            && p.epoch == epoch
        {
            p.unsettled.remove(&offset);
        }
        let queue = self.keys.get_mut(key)?;
        while let Some(next) = queue.pop_front() {
            self.waiting -= 1;
            if current(next.partition) == next.epoch {
                return Some(next);
            }
            if let Some(p) = self.partitions.get_mut(&next.partition)
                && p.epoch == next.epoch
            {
                p.unsettled.remove(&next.offset);
            }
        }
        self.keys.remove(key);
        None
    }

    /// Messages waiting behind another of their key.
    pub fn waiting(&self) -> usize {
        self.waiting
    }

    /// The offsets to commit now: per partition of the `current` epoch whose commit point
    /// moved, its oldest unsettled offset (or one past the last received). Each is counted
    /// as committed.
    pub fn commits(&mut self, current: impl Fn(i32) -> u64) -> Vec<(i32, i64)> {
        let mut commits = Vec::new();
        for (&number, partition) in &mut self.partitions {
            if current(number) != partition.epoch {
                continue;
            }
            let point = partition
                .unsettled
                .first()
                .copied()
                .unwrap_or(partition.next);
            if point > partition.committed {
                partition.committed = point;
                commits.push((number, point));
            }
        }
        commits.sort_unstable();
        commits
    }
}

impl Partition {
    fn new(epoch: u64) -> Partition {
        Partition {
            epoch,
            unsettled: BTreeSet::new(),
            next: 0,
            committed: -1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(partition: i32, offset: i64, key: &str) -> Held<()> {
        Held {
            partition,
            offset,
            epoch: 1,
            key: key.as_bytes().to_vec(),
            message: (),
        }
    }

    const EPOCH_1: fn(i32) -> u64 = |_| 1;

    #[test]
    fn one_key_waits_for_its_earlier_message_and_others_do_not() {
        let mut ledger = Ledger::default();
        assert!(ledger.receive(held(0, 0, "order-a")).is_some());
        assert!(ledger.receive(held(0, 1, "order-b")).is_some());
        assert!(ledger.receive(held(0, 2, "order-a")).is_none());
        assert!(ledger.receive(held(0, 3, "order-a")).is_none());
        assert_eq!(ledger.waiting(), 2);

        let next = ledger
            .settled(0, 0, 1, b"order-a", EPOCH_1)
            .expect("offset 2 next");
        assert_eq!(next.offset, 2);
        let next = ledger
            .settled(0, 2, 1, b"order-a", EPOCH_1)
            .expect("offset 3 next");
        assert_eq!(next.offset, 3);
        assert!(ledger.settled(0, 3, 1, b"order-a", EPOCH_1).is_none());
        assert_eq!(ledger.waiting(), 0);
        // The key is free again.
        assert!(ledger.receive(held(0, 4, "order-a")).is_some());
    }

    #[test]
    fn a_partition_commits_up_to_its_oldest_unsettled_message() {
        let mut ledger = Ledger::default();
        for offset in 0..4 {
            ledger.receive(held(0, offset, &format!("k{offset}")));
        }
        ledger.receive(held(1, 10, "x"));
        assert_eq!(ledger.commits(EPOCH_1), vec![(0, 0), (1, 10)]);
        ledger.settled(0, 1, 1, b"k1", EPOCH_1);
        ledger.settled(0, 2, 1, b"k2", EPOCH_1);
        assert_eq!(ledger.commits(EPOCH_1), vec![], "offset 0 still unsettled");
        ledger.settled(0, 0, 1, b"k0", EPOCH_1);
        assert_eq!(ledger.commits(EPOCH_1), vec![(0, 3)]);
        ledger.settled(0, 3, 1, b"k3", EPOCH_1);
        ledger.settled(1, 10, 1, b"x", EPOCH_1);
        assert_eq!(ledger.commits(EPOCH_1), vec![(0, 4), (1, 11)]);
        assert_eq!(ledger.commits(EPOCH_1), vec![], "nothing moved");
    }

    #[test]
    fn a_partition_assigned_again_forgets_what_it_held() {
        let mut ledger = Ledger::default();
        assert!(ledger.receive(held(0, 5, "a")).is_some());
        assert!(ledger.receive(held(0, 6, "a")).is_none());
        // The partition was revoked and assigned again (epoch 2) while offset 5 was handled.
        let epoch_2 = |_| 2;
        assert!(
            ledger.settled(0, 5, 1, b"a", epoch_2).is_none(),
            "offset 6 of the old epoch is dropped"
        );
        assert_eq!(
            ledger.commits(epoch_2),
            vec![],
            "no commit for an old epoch"
        );
        let again = Held {
            epoch: 2,
            ..held(0, 5, "a")
        };
        assert!(ledger.receive(again).is_some());
        assert_eq!(ledger.commits(epoch_2), vec![(0, 5)]);
        ledger.settled(0, 5, 2, b"a", epoch_2);
        assert_eq!(ledger.commits(epoch_2), vec![(0, 6)]);
    }
}
