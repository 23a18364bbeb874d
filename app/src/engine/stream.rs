//! What the host sends to one viewer: an acknowledgement window, skip to
//! the next keyframe when the viewer falls behind, and a bit rate target
//! that follows the viewer's link.
//!
//! The host encodes once for all viewers, so it cannot drop single frames
//! for one of them (every P-frame depends on the one before). A viewer whose
//! link cannot keep up therefore skips frames until the next keyframe: its
//! picture pauses briefly instead of lagging further and further behind, and
//! the others are not slowed. Its bit rate target drops at the same time,
//! and the encoder runs at the lowest target of all viewers.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Frames sent and not yet acknowledged, at most.
const MAX_FRAMES_IN_FLIGHT: usize = 8;
/// Bytes sent and not yet acknowledged, at most.
const MAX_BYTES_IN_FLIGHT: usize = 4 * 1024 * 1024;
/// The oldest unacknowledged frame may be this old before the viewer
/// counts as behind.
const MAX_AGE: Duration = Duration::from_millis(1000);
/// Lowest target: about the worst line still usable (the encoder lowers
/// the frame rate first).
pub const MIN_BITRATE: u32 = 150_000;
/// Bit rate decreases no more often than this (one reaction per congestion).
const DECREASE_EVERY: Duration = Duration::from_millis(500);
/// A link that kept up this long gets a higher target.
const INCREASE_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Not this frame: the viewer waits for a keyframe or is behind.
    Skip,
}

#[derive(Debug)]
struct InFlight {
    id: u64,
    sent: Instant,
    bytes: usize,
}

#[derive(Debug)]
pub struct ViewerStream {
    in_flight: VecDeque<InFlight>,
    waiting_for_keyframe: bool,
    keyframe_wanted: bool,
    rtt: Option<Duration>,
    target_bps: u32,
    max_bps: u32,
    last_decrease: Option<Instant>,
    last_change: Instant,
    skipped: u64,
}

impl ViewerStream {
    /// A new viewer starts at `max_bps` and needs a keyframe first.
    pub fn new(max_bps: u32, now: Instant) -> Self {
        ViewerStream {
            in_flight: VecDeque::new(),
            waiting_for_keyframe: true,
            keyframe_wanted: true,
            rtt: None,
            target_bps: max_bps,
            max_bps,
            last_decrease: None,
            last_change: now,
            skipped: 0,
        }
    }

    fn bytes_in_flight(&self) -> usize {
        self.in_flight.iter().map(|f| f.bytes).sum()
    }

    fn behind(&self, now: Instant) -> bool {
        self.in_flight.len() >= MAX_FRAMES_IN_FLIGHT
            || self.bytes_in_flight() >= MAX_BYTES_IN_FLIGHT
            || self
                .in_flight
                .front()
                .is_some_and(|f| now.saturating_duration_since(f.sent) > MAX_AGE)
    }

    /// Decides whether frame `id` goes to this viewer, and records it if so.
    pub fn offer(&mut self, id: u64, keyframe: bool, bytes: usize, now: Instant) -> Verdict {
        if self.behind(now) {
            if !self.waiting_for_keyframe {
                self.waiting_for_keyframe = true;
                self.decrease(now);
            }
            self.skipped += 1;
            return Verdict::Skip;
        }
        if self.waiting_for_keyframe && !keyframe {
            self.skipped += 1;
            // Caught up again: the next keyframe lets it resume.
            self.keyframe_wanted = true;
            return Verdict::Skip;
        }
        self.waiting_for_keyframe = false;
        self.in_flight.push_back(InFlight {
            id,
            sent: now,
            bytes,
        });
        Verdict::Send
    }

    /// The viewer decoded everything up to `id`.
    pub fn ack(&mut self, id: u64, now: Instant) {
        while let Some(f) = self.in_flight.front() {
            if f.id > id {
                break;
            }
            if f.id == id {
                let sample = now.saturating_duration_since(f.sent);
                self.rtt = Some(match self.rtt {
                    None => sample,
                    Some(rtt) => (rtt * 7 + sample) / 8,
                });
            }
            self.in_flight.pop_front();
        }
        if self.waiting_for_keyframe && !self.behind(now) {
            // Caught up: a keyframe lets it resume, even on a static screen
            // where no frame would come to remind us.
            self.keyframe_wanted = true;
        }
        if now.saturating_duration_since(self.last_change) >= INCREASE_AFTER
            && !self.waiting_for_keyframe
            && self.target_bps < self.max_bps
        {
            self.target_bps = (self.target_bps + self.target_bps / 10).min(self.max_bps);
            self.last_change = now;
        }
    }

    /// The viewer asked for a keyframe (its decoder lost sync).
    pub fn request_keyframe(&mut self) {
        self.waiting_for_keyframe = true;
        self.keyframe_wanted = true;
    }

    /// Whether the encoder should make a keyframe for this viewer; asking
    /// clears the wish.
    pub fn take_keyframe_wish(&mut self) -> bool {
        std::mem::take(&mut self.keyframe_wanted)
    }

    fn decrease(&mut self, now: Instant) {
        if self
            .last_decrease
            .is_some_and(|t| now.saturating_duration_since(t) < DECREASE_EVERY)
        {
            return;
        }
        self.target_bps = (self.target_bps / 10 * 7).max(MIN_BITRATE);
        self.last_decrease = Some(now);
        self.last_change = now;
    }

    pub fn target_bps(&self) -> u32 {
        self.target_bps
    }

    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn starts_at_a_keyframe_and_measures_the_round_trip() {
        let t = Instant::now();
        let mut s = ViewerStream::new(2_000_000, t);
        assert!(s.take_keyframe_wish());
        assert_eq!(s.offer(1, false, 100, t), Verdict::Skip);
        assert_eq!(s.offer(2, true, 5000, t), Verdict::Send);
        assert_eq!(s.offer(3, false, 100, t + 33 * MS), Verdict::Send);
        s.ack(2, t + 20 * MS);
        assert_eq!(s.rtt(), Some(20 * MS));
        s.ack(3, t + 63 * MS);
        assert_eq!(s.rtt(), Some((20 * MS * 7 + 30 * MS) / 8));
    }

    #[test]
    fn a_slow_viewer_skips_to_the_next_keyframe_and_its_rate_drops() {
        let t = Instant::now();
        let mut s = ViewerStream::new(2_000_000, t);
        s.take_keyframe_wish();
        assert_eq!(s.offer(0, true, 1000, t), Verdict::Send);
        // No acks: after MAX_FRAMES_IN_FLIGHT frames it is behind.
        for id in 1..MAX_FRAMES_IN_FLIGHT as u64 {
            assert_eq!(s.offer(id, false, 1000, t), Verdict::Send);
        }
        assert_eq!(s.offer(8, false, 1000, t), Verdict::Skip);
        assert_eq!(s.target_bps(), 1_400_000);
        // Acks arrive: it has caught up but must wait for a keyframe.
        s.ack(7, t + 100 * MS);
        assert_eq!(s.offer(9, false, 1000, t + 100 * MS), Verdict::Skip);
        assert!(s.take_keyframe_wish());
        assert_eq!(s.offer(10, true, 9000, t + 120 * MS), Verdict::Send);
        assert_eq!(s.offer(11, false, 1000, t + 150 * MS), Verdict::Send);
        assert_eq!(s.skipped(), 2);
    }

    #[test]
    fn stale_frames_count_as_behind_and_the_rate_recovers() {
        let t = Instant::now();
        let mut s = ViewerStream::new(1_000_000, t);
        s.offer(0, true, 10, t);
        assert_eq!(s.offer(1, false, 10, t + 1500 * MS), Verdict::Skip);
        assert_eq!(s.target_bps(), 700_000);
        s.ack(0, t + 1600 * MS);
        s.offer(2, true, 10, t + 1600 * MS);
        s.ack(2, t + 2700 * MS);
        assert_eq!(s.target_bps(), 770_000);
        // Never below the floor.
        let mut s = ViewerStream::new(160_000, t);
        s.offer(0, true, 10, t);
        s.offer(1, false, 10, t + 2000 * MS);
        assert_eq!(s.target_bps(), MIN_BITRATE);
    }
}
