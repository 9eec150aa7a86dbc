//! Acknowledging in batches. One `basic.ack` per message keeps lapin busy (about 9k msg/s
//! here); one `basic.ack` with `multiple = true` settles every delivery up to its tag.
//! Handlers finish out of order, so only the longest run of handled deliveries from the
//! oldest unsettled one may be acknowledged together; deliveries to requeue are nacked one
//! by one.

use std::collections::BTreeMap;

/// What to tell the broker, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AckAction {
    /// `basic.ack` with `multiple = true`: this delivery and every earlier unsettled one.
    AckThrough(u64),
    /// `basic.ack` of this delivery alone.
    Ack(u64),
    /// `basic.nack` with `requeue = true` of this delivery alone.
    Requeue(u64),
}

/// The deliveries of one channel not yet settled with the broker.
#[derive(Debug)]
pub(super) struct AckWindow {
    /// Delivery tag → whether its handler finished and it waits for its ack.
    open: BTreeMap<u64, bool>,
    /// Handled deliveries held back behind a running one before they are acked one by one,
    /// so a slow handler cannot use up the prefetch window.
    hold_limit: usize,
    pending: Vec<AckAction>,
}

impl AckWindow {
    pub fn new(prefetch: usize) -> AckWindow {
        AckWindow {
            open: BTreeMap::new(),
            hold_limit: (prefetch / 2).max(1),
            pending: Vec::new(),
        }
    }

    pub fn delivered(&mut self, tag: u64) {
        self.open.insert(tag, false);
    }

    pub fn handled(&mut self, tag: u64) {
        if let Some(done) = self.open.get_mut(&tag) {
            *done = true;
        }
    }

    pub fn requeue(&mut self, tag: u64) {
        if self.open.remove(&tag).is_some() {
            self.pending.push(AckAction::Requeue(tag));
        }
    }

    /// The actions due now: the handled run from the oldest delivery, and the handled ones
    /// behind a running delivery once too many wait.
    pub fn take(&mut self) -> Vec<AckAction> {
        self.ack_prefix();
        let held = self.open.values().filter(|done| **done).count();
        if held >= self.hold_limit {
            self.ack_each_handled();
        }
        std::mem::take(&mut self.pending)
    }

    /// Every handled delivery, whatever still runs (a consumer stopping).
    pub fn take_all(&mut self) -> Vec<AckAction> {
        self.ack_prefix();
        self.ack_each_handled();
        std::mem::take(&mut self.pending)
    }

    fn ack_prefix(&mut self) {
        let mut through = None;
        while let Some(entry) = self.open.first_entry() {
            if !*entry.get() {
                break;
            }
            through = Some(*entry.key());
            entry.remove();
        }
        if let Some(tag) = through {
            self.pending.push(AckAction::AckThrough(tag));
        }
    }

    fn ack_each_handled(&mut self) {
        let handled: Vec<u64> = self
            .open
            .iter()
            .filter(|(_, done)| **done)
            .map(|(tag, _)| *tag)
            .collect();
        for tag in handled {
            self.open.remove(&tag);
            self.pending.push(AckAction::Ack(tag));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::AckAction::{Ack, AckThrough, Requeue};
    use super::*;

    fn window(prefetch: usize, tags: std::ops::RangeInclusive<u64>) -> AckWindow {
        let mut window = AckWindow::new(prefetch);
        for tag in tags {
            window.delivered(tag);
        }
        window
    }

    #[test]
    fn a_run_of_handled_deliveries_is_acked_at_once() {
        let mut w = window(32, 1..=5);
        for tag in [3, 1, 2] {
            w.handled(tag);
        }
        assert_eq!(w.take(), [AckThrough(3)]);
        w.handled(5);
        assert_eq!(w.take(), [], "5 waits for 4");
        w.handled(4);
        assert_eq!(w.take(), [AckThrough(5)]);
        assert_eq!(w.take(), []);
    }

    #[test]
    fn requeued_deliveries_are_nacked_alone_and_do_not_block_the_run() {
        let mut w = window(32, 1..=3);
        w.requeue(1);
        w.handled(2);
        w.handled(3);
        assert_eq!(w.take(), [Requeue(1), AckThrough(3)]);
    }

    #[test]
    fn a_slow_delivery_does_not_hold_back_more_than_half_the_window() {
        let mut w = window(4, 1..=4);
        w.handled(2);
        assert_eq!(w.take(), []);
        w.handled(3);
        assert_eq!(w.take(), [Ack(2), Ack(3)]);
        w.handled(1);
        assert_eq!(w.take(), [AckThrough(1)]);
        w.handled(4);
        assert_eq!(w.take(), [AckThrough(4)]);
    }

    #[test]
    fn stopping_acks_everything_handled() {
        let mut w = window(32, 1..=4);
        w.handled(1);
        w.handled(3);
        w.handled(4);
        assert_eq!(w.take_all(), [AckThrough(1), Ack(3), Ack(4)]);
    }
}
