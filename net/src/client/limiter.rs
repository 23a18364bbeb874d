//! The host's limit on failed handshakes.
//!
//! A relay in the middle could open handshakes with the host again and
//! again, abandoning each one once it sees the code it would produce, until
//! a code matches the one its other leg shows the viewer (see
//! `net/PROTOCOL.md`, "grinding by restarts"). Every such attempt is a
//! handshake that fails or is abandoned, so the host makes each failure
//! beyond the first few double the wait before it accepts another: matching
//! a 6-digit code would then take years.

use std::time::{Duration, Instant};

const FREE_FAILURES: u32 = 3;
const BASE_DELAY: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(3600);
/// After this long without a failure, the count starts again.
const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Default, Clone)]
pub struct HandshakeLimiter {
    failures: u32,
    last_failure: Option<Instant>,
}

impl HandshakeLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    /// `Err(wait)` if no new handshake may start yet.
    pub fn check(&mut self, now: Instant) -> Result<(), Duration> {
        let Some(last) = self.last_failure else {
            return Ok(());
        };
        if now.saturating_duration_since(last) >= FORGET_AFTER {
            self.failures = 0;
            self.last_failure = None;
            return Ok(());
        }
        let until = last + self.delay();
        if now < until {
            Err(until - now)
        } else {
            Ok(())
        }
    }

    /// Records a handshake that failed or was abandoned before completion.
    pub fn failure(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        self.last_failure = Some(now);
    }

    fn delay(&self) -> Duration {
        if self.failures < FREE_FAILURES {
            return Duration::ZERO;
        }
        let doublings = (self.failures - FREE_FAILURES).min(16);
        (BASE_DELAY * (1u32 << doublings)).min(MAX_DELAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_double_the_wait_and_are_forgotten() {
        let mut l = HandshakeLimiter::new();
        let t0 = Instant::now();
        for _ in 0..FREE_FAILURES {
            assert!(l.check(t0).is_ok());
            l.failure(t0);
        }
        assert_eq!(l.check(t0), Err(Duration::from_secs(1)));
        l.failure(t0);
        assert_eq!(l.check(t0), Err(Duration::from_secs(2)));
        // A million attempts at the earliest moment take far more than a
        // year (the wait is capped at an hour each).
        let mut now = t0;
        let mut l = HandshakeLimiter::new();
        for _ in 0..10_000 {
            if let Err(w) = l.check(now) {
                now += w;
            }
            l.failure(now);
        }
        assert!(now - t0 > Duration::from_secs(9_000 * 3600));
        assert!(l.check(now + FORGET_AFTER).is_ok());
    }
}
