//! The sending side of one transfer: which chunk goes next, what is in
//! flight, what to send again.

use super::manifest::{ChunkPlace, ValidManifest};
use super::window::Window;
use super::{Bitmap, TransferError, TransferId, TransferMsg};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

/// A chunk reported bad this often in a row is not a transient fault: the
/// file is changing under us, or something between disk and wire is broken.
pub const MAX_BAD: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Offered; waiting for the receiver's answer.
    Offered,
    Sending,
    Done,
}

/// What this sender has done so far (since it was made, across resumes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendStats {
    /// Chunks handed to the link, repeats included.
    pub chunks_sent: u64,
    pub bytes_sent: u64,
    /// Chunks sent again after the receiver found them damaged.
    pub resent: u64,
    /// Chunks the receiver already had when it accepted (resume).
    pub skipped: u64,
}

pub struct Sender {
    manifest: Arc<ValidManifest>,
    phase: Phase,
    /// Chunks the receiver has verified (acknowledged, or had at accept).
    have: Bitmap,
    /// Next chunk number to look at in order.
    cursor: u64,
    resend: VecDeque<u64>,
    in_flight: HashMap<u64, (Instant, u64)>,
    bad: HashMap<u64, u32>,
    window: Window,
    stats: SendStats,
    /// Bytes in the chunks of `have`.
    bytes_have: u64,
}

impl Sender {
    pub fn new(manifest: Arc<ValidManifest>) -> Self {
        let chunk_len = manifest.chunk_len();
        Sender {
            have: Bitmap::new(manifest.total_chunks()),
            manifest,
            phase: Phase::Offered,
            cursor: 0,
            resend: VecDeque::new(),
            in_flight: HashMap::new(),
            bad: HashMap::new(),
            window: Window::new(chunk_len),
            stats: SendStats::default(),
            bytes_have: 0,
        }
    }

    pub fn id(&self) -> TransferId {
        self.manifest.id()
    }

    pub fn manifest(&self) -> &Arc<ValidManifest> {
        &self.manifest
    }

    /// The offer to send (first time, and again after a reconnect).
    pub fn offer(&self) -> TransferMsg {
        TransferMsg::Offer {
            manifest: self.manifest.manifest().clone(),
        }
    }

    /// The receiver accepted, already holding the chunks in `have`. After
    /// a resume this replaces what we knew: chunks that were in flight on
    /// the lost connection and did not arrive are sent again, and nothing
    /// it has is.
    pub fn on_accept(&mut self, have: &[u8]) -> Result<(), TransferError> {
        if self.phase == Phase::Done {
            return Err(TransferError::OutOfState);
        }
        let have = Bitmap::from_bytes(have, self.manifest.total_chunks())
            .ok_or(TransferError::BadBitmap)?;
        if self.phase == Phase::Offered {
            self.stats.skipped += have.count().saturating_sub(self.have.count());
        }
        self.bytes_have = bytes_in(&self.manifest, &have);
        self.have = have;
        self.cursor = 0;
        self.resend.clear();
        for (_, (_, bytes)) in self.in_flight.drain() {
            self.window.forget(bytes);
        }
        self.phase = Phase::Sending;
        Ok(())
    }

    /// The connection is gone: nothing in flight will be acknowledged. Wait
    /// for the next accept.
    pub fn pause(&mut self) {
        if self.phase == Phase::Sending {
            self.phase = Phase::Offered;
        }
        for (_, (_, bytes)) in self.in_flight.drain() {
            self.window.forget(bytes);
        }
    }

    /// The receiver verified `chunk`. The receiver is the authority on
    /// what it has: an acknowledgement for a chunk not in flight (a late
    /// one from before a reconnect) is taken as it is.
    pub fn on_ack(&mut self, chunk: u64, now: Instant) -> Result<(), TransferError> {
        let place = self
            .manifest
            .place(chunk)
            .ok_or(TransferError::NoSuchChunk(chunk))?;
        if let Some((sent, bytes)) = self.in_flight.remove(&chunk) {
            self.window.acked(bytes, sent, now);
        }
        if self.have.set(chunk) {
            self.bytes_have += place.len;
        }
        self.bad.remove(&chunk);
        Ok(())
    }

    /// The receiver found the chunk damaged: send it again, first.
    pub fn on_bad(&mut self, chunk: u64) -> Result<(), TransferError> {
        if self.manifest.place(chunk).is_none() {
            return Err(TransferError::NoSuchChunk(chunk));
        }
        if let Some((_, bytes)) = self.in_flight.remove(&chunk) {
            self.window.forget(bytes);
        }
        let n = self.bad.entry(chunk).or_insert(0);
        *n += 1;
        if *n >= MAX_BAD {
            return Err(TransferError::ChunkKeepsFailing(chunk, *n));
        }
        if !self.have.get(chunk) && !self.resend.contains(&chunk) {
            self.resend.push_front(chunk);
        }
        Ok(())
    }

    /// The receiver says it has everything.
    pub fn on_done(&mut self) -> Result<(), TransferError> {
        if !self.have.is_full() {
            return Err(TransferError::EarlyDone);
        }
        self.phase = Phase::Done;
        Ok(())
    }

    /// The next chunk to read and send, if the window allows one now. The
    /// caller sends it and it counts as in flight from here.
    pub fn poll_chunk(&mut self, now: Instant) -> Option<(u64, ChunkPlace)> {
        if self.phase != Phase::Sending {
            return None;
        }
        let chunk = match self.resend.front() {
            Some(c) => *c,
            None => {
                while self.cursor < self.manifest.total_chunks()
                    && (self.have.get(self.cursor) || self.in_flight.contains_key(&self.cursor))
                {
                    self.cursor += 1;
                }
                if self.cursor >= self.manifest.total_chunks() {
                    return None;
                }
                self.cursor
            }
        };
        let place = self.manifest.place(chunk)?;
        if !self.window.can_send(place.len) {
            return None;
        }
        if self.resend.front() == Some(&chunk) {
            self.resend.pop_front();
            self.stats.resent += 1;
        } else {
            self.cursor += 1;
        }
        self.window.sent(place.len);
        self.in_flight.insert(chunk, (now, place.len));
        self.stats.chunks_sent += 1;
        self.stats.bytes_sent += place.len;
        Some((chunk, place))
    }

    /// Whether every chunk is acknowledged (the receiver's `Done` follows).
    pub fn all_acked(&self) -> bool {
        self.have.is_full()
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    pub fn is_sending(&self) -> bool {
        self.phase == Phase::Sending
    }

    /// Bytes the receiver has verified.
    pub fn bytes_done(&self) -> u64 {
        self.bytes_have
    }

    pub fn stats(&self) -> SendStats {
        self.stats
    }

    pub fn window(&self) -> &Window {
        &self.window
    }
}

/// Bytes in the chunks set in `have`.
pub(crate) fn bytes_in(manifest: &ValidManifest, have: &Bitmap) -> u64 {
    if have.is_full() {
        return manifest.total_bytes();
    }
    (0..have.len())
        .filter(|c| have.get(*c))
        .filter_map(|c| manifest.place(c))
        .map(|p| p.len)
        .sum()
}
