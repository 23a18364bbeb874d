//! How many bytes of one transfer may be on their way at once.
//!
//! File chunks share the session's one ordered stream with the video: a
//! video frame sent now waits behind every chunk already queued ahead of it
//! (in our send queue, the socket buffers and the relay). A fixed window
//! large enough for a fast link would put seconds of chunks in front of
//! each frame on a slow one. So the window follows the queueing delay, in
//! the spirit of LEDBAT (RFC 6817, the "scavenger" congestion control made
//! for exactly this: bulk data that yields to interactive traffic):
//!
//! - the lowest round trip seen is the link's base delay; anything above it
//!   on a later acknowledgement is queueing;
//! - below [`TARGET_DELAY`] of queueing the window grows (at most doubling
//!   per round trip), above it the window shrinks by a quarter, at most once
//!   per round trip;
//! - the window never exceeds [`MAX_WINDOW`], well below the relay's
//!   per-connection queue (32 MiB) so that a transfer can never make the
//!   relay drop a slow receiver, and never drops below one chunk.
//!
//! On loopback the queueing delay stays near zero and the window opens
//! fully; on a thin link it settles where chunks add about
//! [`TARGET_DELAY`] to the video's latency.

use std::time::{Duration, Instant};

/// Queueing delay the transfer may add to the link.
pub const TARGET_DELAY: Duration = Duration::from_millis(60);
/// Largest window in bytes.
pub const MAX_WINDOW: u64 = 12 * 1024 * 1024;
/// Start with this many chunks in flight.
const INITIAL_CHUNKS: u64 = 4;

#[derive(Debug, Clone)]
pub struct Window {
    chunk_len: u64,
    window: u64,
    in_flight: u64,
    base_rtt: Option<Duration>,
    srtt: Option<Duration>,
    last_decrease: Option<Instant>,
}

impl Window {
    pub fn new(chunk_len: u64) -> Self {
        Window {
            chunk_len,
            window: (chunk_len * INITIAL_CHUNKS).min(MAX_WINDOW.max(chunk_len)),
            in_flight: 0,
            base_rtt: None,
            srtt: None,
            last_decrease: None,
        }
    }

    /// Whether `bytes` more may be sent now. One chunk may always be in
    /// flight, however small the window.
    pub fn can_send(&self, bytes: u64) -> bool {
        self.in_flight == 0 || self.in_flight + bytes <= self.window
    }

    pub fn sent(&mut self, bytes: u64) {
        self.in_flight += bytes;
    }

    /// Bytes left the flight without a round-trip sample (a chunk reported
    /// bad, or everything forgotten after a dropped connection).
    pub fn forget(&mut self, bytes: u64) {
        self.in_flight = self.in_flight.saturating_sub(bytes);
    }

    /// A chunk of `bytes` sent at `sent` was acknowledged at `now`.
    pub fn acked(&mut self, bytes: u64, sent: Instant, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(bytes);
        let rtt = now.saturating_duration_since(sent);
        let base = *self.base_rtt.get_or_insert(rtt);
        let base = base.min(rtt);
        self.base_rtt = Some(base);
        let srtt = match self.srtt {
            None => rtt,
            Some(s) => (s * 7 + rtt) / 8,
        };
        self.srtt = Some(srtt);
        let queueing = rtt.saturating_sub(base);
        if queueing < TARGET_DELAY {
            // Grow in proportion to how far below the target we are: a
            // full window's worth of acks doubles it at zero queueing.
            let room = (TARGET_DELAY - queueing).as_micros() as u64;
            let growth = bytes.saturating_mul(room) / TARGET_DELAY.as_micros() as u64;
            self.window = (self.window + growth).min(MAX_WINDOW.max(self.chunk_len));
        } else if self
            .last_decrease
            .is_none_or(|t| now.saturating_duration_since(t) >= srtt)
        {
            self.window = (self.window / 4 * 3).max(self.chunk_len);
            self.last_decrease = Some(now);
        }
    }

    pub fn window(&self) -> u64 {
        self.window
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// A bottleneck of `rate` bytes/s with `base` round trip: chunks queue
    /// in order and are acknowledged after they drain plus the base delay.
    /// Returns (bytes delivered, largest queueing delay after warm-up).
    fn simulate(rate: f64, base: Duration, secs: f64) -> (u64, Duration) {
        let chunk = 256 * 1024u64;
        let mut w = Window::new(chunk);
        let t0 = Instant::now();
        let mut link_free = 0.0f64; // seconds since t0 when the link is idle
        let mut acks: VecDeque<(f64, f64, u64)> = VecDeque::new(); // (ack at, sent at, bytes)
        let mut now = 0.0f64;
        let mut delivered = 0u64;
        let mut worst = Duration::ZERO;
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        while now < secs {
            while w.can_send(chunk) {
                w.sent(chunk);
                let start = link_free.max(now);
                link_free = start + chunk as f64 / rate;
                let queueing = start - now;
                if now > 2.0 {
                    worst = worst.max(Duration::from_secs_f64(queueing));
                }
                acks.push_back((link_free + base.as_secs_f64(), now, chunk));
            }
            let Some((ack_at, sent_at, bytes)) = acks.pop_front() else {
                break;
            };
            now = ack_at;
            delivered += bytes;
            w.acked(bytes, at(sent_at), at(now));
        }
        (delivered, worst)
    }

    #[test]
    fn a_thin_link_keeps_queueing_near_the_target_and_stays_busy() {
        // 20 Mbit/s, 40 ms: a home uplink.
        let rate = 2.5e6;
        let (delivered, worst) = simulate(rate, Duration::from_millis(40), 20.0);
        assert!(
            delivered as f64 >= rate * 20.0 * 0.8,
            "only {delivered} bytes in 20 s"
        );
        // One chunk takes 105 ms here; the window settles near one or two.
        assert!(
            worst < Duration::from_millis(400),
            "queueing reached {worst:?}"
        );
    }

    #[test]
    fn a_fast_link_opens_the_window_fully() {
        let mut w = Window::new(256 * 1024);
        let t = Instant::now();
        for i in 0..500u64 {
            w.sent(256 * 1024);
            w.acked(
                256 * 1024,
                t + Duration::from_micros(i * 100),
                t + Duration::from_micros(i * 100 + 300),
            );
        }
        assert_eq!(w.window(), MAX_WINDOW);
        assert_eq!(w.in_flight(), 0);
    }
}
