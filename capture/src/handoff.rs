//! "Latest frame wins": a one-place mailbox between pipeline stages.
//!
//! A queue between capture and encoder would let latency grow without
//! bound whenever the encoder or the link is slower than the screen. This
//! slot holds at most one item: publishing over an unconsumed item replaces
//! it (the caller may fold the old one in, e.g. to keep its damage), so a
//! slow consumer simply skips pictures and always gets the newest.

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

#[derive(Debug)]
struct State<T> {
    value: Option<T>,
    closed: bool,
    skipped: u64,
}

/// A single-item mailbox whose newest item wins.
#[derive(Debug)]
pub struct LatestSlot<T> {
    state: Mutex<State<T>>,
    ready: Condvar,
}

impl<T> Default for LatestSlot<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> LatestSlot<T> {
    /// An empty, open slot.
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State {
                value: None,
                closed: false,
                skipped: 0,
            }),
            ready: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic while holding the lock cannot leave the state torn (every
        // update is a single assignment), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts `value` in the slot. If an unconsumed item was there, it is
    /// counted as skipped and passed to `merge` with the new one first.
    pub fn publish_merging(&self, mut value: T, merge: impl FnOnce(T, &mut T)) {
        let mut state = self.lock();
        if let Some(old) = state.value.take() {
            state.skipped += 1;
            merge(old, &mut value);
        }
        state.value = Some(value);
        drop(state);
        self.ready.notify_one();
    }

    /// Puts `value` in the slot, dropping any unconsumed item.
    pub fn publish(&self, value: T) {
        self.publish_merging(value, |_, _| {});
    }

    /// Takes the item if there is one.
    pub fn take(&self) -> Option<T> {
        self.lock().value.take()
    }

    /// Waits up to `timeout` for an item. `None` on time-out or when the
    /// slot was closed and is empty.
    pub fn wait_take(&self, timeout: Duration) -> Option<T> {
        let state = self.lock();
        let (mut state, _) = self
            .ready
            .wait_timeout_while(state, timeout, |s| s.value.is_none() && !s.closed)
            .unwrap_or_else(|p| p.into_inner());
        state.value.take()
    }

    /// Closes the slot: waiters wake up; later items are still accepted.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// How many items were replaced before anyone took them.
    pub fn skipped(&self) -> u64 {
        self.lock().skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn slow_consumer_gets_the_newest_and_skips_the_rest() {
        let slot = LatestSlot::new();
        for i in 0..5 {
            slot.publish(i);
        }
        assert_eq!(slot.take(), Some(4));
        assert_eq!(slot.take(), None);
        assert_eq!(slot.skipped(), 4);
    }

    #[test]
    fn merge_keeps_what_the_skipped_item_carried() {
        let slot = LatestSlot::new();
        slot.publish(vec![1]);
        slot.publish_merging(vec![2], |old, new| new.extend(old));
        assert_eq!(slot.take(), Some(vec![2, 1]));
    }

    #[test]
    fn waiter_wakes_on_publish_from_another_thread() {
        let slot = Arc::new(LatestSlot::new());
        let s = Arc::clone(&slot);
        let t = std::thread::spawn(move || s.wait_take(Duration::from_secs(10)));
        slot.publish(7);
        assert_eq!(t.join().unwrap(), Some(7));
    }
}
