//! Exponential back-off for joins to numbers that do not exist, per source
//! address: what keeps anyone from trying session numbers until one answers.
//!
//! The first [`FREE_FAILURES`] wrong numbers cost nothing (people mistype);
//! after that each failure doubles the wait before the next attempt, from
//! [`BASE_DELAY`]. 24 failed attempts from one address then take more than
//! 17 hours, TeamViewer's published figure. A successful join forgets the
//! address. While an address must wait, every join from it is refused,
//! valid number or not, so waiting cannot be skipped by guessing faster.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Wrong numbers allowed before the first wait.
pub const FREE_FAILURES: u32 = 3;
/// Wait after the first failure beyond the free ones; doubles each time.
pub const BASE_DELAY: Duration = Duration::from_millis(50);
/// Longest single wait: about 7 days, reached after 26 failures.
pub const MAX_DELAY: Duration = Duration::from_secs(7 * 24 * 3600);
/// An address is forgotten this long after its wait ended.
pub const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);
/// Addresses tracked at most; the oldest are dropped first. Bounds memory
/// under a flood of spoofed or rotating addresses.
const MAX_TRACKED: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    /// No join from this address before this instant.
    blocked_until: Instant,
}

/// The back-off table. Time is passed in, so tests drive it with a manual
/// clock instead of sleeping.
#[derive(Debug, Default)]
pub struct JoinBackoff {
    entries: HashMap<IpAddr, Entry>,
}

/// Groups IPv6 addresses by /64: one host usually owns a whole /64, and
/// rotating through it must not reset the back-off.
pub fn group(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let mut seg = v6.segments();
            seg[4..].fill(0);
            IpAddr::V6(seg.into())
        }
    }
}

/// The wait imposed after the `failures`-th failure.
pub fn delay_after(failures: u32) -> Duration {
    if failures < FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = failures - FREE_FAILURES;
    BASE_DELAY
        .checked_mul(1u32.checked_shl(doublings).unwrap_or(u32::MAX))
        .unwrap_or(MAX_DELAY)
        .min(MAX_DELAY)
}

impl JoinBackoff {
    pub fn new() -> Self {
        Self::default()
    }

    /// `Err(wait)` if `addr` must wait before it may try a number.
    pub fn check(&self, addr: IpAddr, now: Instant) -> Result<(), Duration> {
        match self.entries.get(&group(addr)) {
            Some(e) if e.blocked_until > now => Err(e.blocked_until - now),
            _ => Ok(()),
        }
    }

    /// Records a join to a number that does not exist.
    pub fn failure(&mut self, addr: IpAddr, now: Instant) {
        if self.entries.len() >= MAX_TRACKED {
            self.forget_stale(now);
        }
        if self.entries.len() >= MAX_TRACKED
            && let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, e)| e.blocked_until)
                .map(|(k, _)| *k)
        {
            self.entries.remove(&oldest);
        }
        let entry = self.entries.entry(group(addr)).or_insert(Entry {
            failures: 0,
            blocked_until: now,
        });
        entry.failures += 1;
        entry.blocked_until = now + delay_after(entry.failures);
    }

    /// Records a successful join: the address starts afresh.
    pub fn success(&mut self, addr: IpAddr) {
        self.entries.remove(&group(addr));
    }

    /// Drops addresses whose wait ended long ago.
    pub fn forget_stale(&mut self, now: Instant) {
        self.entries
            .retain(|_, e| e.blocked_until + FORGET_AFTER > now);
    }

    pub fn tracked(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));

    /// An attacker who tries again at the earliest allowed moment.
    fn time_for_attempts(attempts: u32) -> Duration {
        let start = Instant::now();
        let mut now = start;
        let mut b = JoinBackoff::new();
        for _ in 0..attempts {
            if let Err(wait) = b.check(A, now) {
                now += wait;
            }
            assert!(b.check(A, now).is_ok());
            b.failure(A, now);
        }
        now - start
    }

    #[test]
    fn twenty_four_failures_take_at_least_seventeen_hours() {
        let t = time_for_attempts(24);
        assert!(t >= Duration::from_secs(17 * 3600), "only {t:?}");
        // ...while a person who mistypes a few times is not slowed down.
        assert!(time_for_attempts(FREE_FAILURES + 1) < Duration::from_secs(1));
    }

    #[test]
    fn success_resets_and_waiting_blocks_every_join() {
        let mut b = JoinBackoff::new();
        let now = Instant::now();
        for _ in 0..10 {
            b.failure(A, now);
        }
        let wait = b.check(A, now).unwrap_err();
        assert_eq!(wait, delay_after(10));
        assert!(b.check(A, now + wait).is_ok());
        b.success(A);
        assert!(b.check(A, now).is_ok());
    }

    #[test]
    fn ipv6_neighbours_share_a_counter() {
        let mut b = JoinBackoff::new();
        let now = Instant::now();
        for i in 0..10u16 {
            b.failure(IpAddr::V6([0x2001, 0xdb8, 0, 1, i, 0, 0, 1].into()), now);
        }
        assert!(
            b.check(IpAddr::V6([0x2001, 0xdb8, 0, 1, 99, 9, 9, 9].into()), now)
                .is_err()
        );
        assert!(
            b.check(IpAddr::V6([0x2001, 0xdb8, 0, 2, 0, 0, 0, 1].into()), now)
                .is_ok()
        );
    }

    #[test]
    fn stale_entries_are_forgotten() {
        let mut b = JoinBackoff::new();
        let now = Instant::now();
        b.failure(A, now);
        b.forget_stale(now + FORGET_AFTER + Duration::from_secs(1));
        assert_eq!(b.tracked(), 0);
    }
}
