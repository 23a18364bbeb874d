//! Rates over the last second, for the status bar.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(1);

/// Counts events (and their sizes) over a sliding one-second window.
#[derive(Debug, Default)]
pub struct RateMeter {
    samples: VecDeque<(Instant, u64)>,
}

impl RateMeter {
    pub fn record(&mut self, now: Instant, amount: u64) {
        self.samples.push_back((now, amount));
        self.expire(now);
    }

    fn expire(&mut self, now: Instant) {
        while let Some(&(t, _)) = self.samples.front() {
            if now.saturating_duration_since(t) > WINDOW {
                self.samples.pop_front();
            } else {
                break;
            }
        }
    }

    /// Events per second.
    pub fn count_rate(&mut self, now: Instant) -> f32 {
        self.expire(now);
        self.samples.len() as f32 / WINDOW.as_secs_f32()
    }

    /// Sum of amounts per second.
    pub fn amount_rate(&mut self, now: Instant) -> f32 {
        self.expire(now);
        self.samples.iter().map(|(_, a)| *a).sum::<u64>() as f32 / WINDOW.as_secs_f32()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_last_second_only() {
        let t0 = Instant::now();
        let mut m = RateMeter::default();
        for i in 0..30 {
            m.record(t0 + Duration::from_millis(i * 100), 1000);
        }
        // At 2.9 s, samples from 1.9 s on remain: 11 of them.
        let now = t0 + Duration::from_millis(2900);
        assert_eq!(m.count_rate(now), 11.0);
        assert_eq!(m.amount_rate(now), 11_000.0);
        assert_eq!(m.count_rate(now + Duration::from_secs(5)), 0.0);
    }
}
