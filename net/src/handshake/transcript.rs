//! The running hash of every handshake frame, header included.

use crate::frame::Frame;
use sha2::{Digest, Sha256};

/// SHA-256 over the handshake frames in the order they were sent. Both
/// sides feed the same frames, so any byte the relay changes, adds or
/// swaps gives the two sides different transcripts and so different keys
/// and codes.
#[derive(Clone)]
pub(super) struct Transcript(Sha256);

impl Transcript {
    pub(super) fn new() -> Self {
        Transcript(Sha256::new_with_prefix(
            b"fernsicht handshake transcript v1\0",
        ))
    }

    pub(super) fn add(&mut self, frame: &Frame) {
        // The header carries the payload length, so frames cannot be
        // re-split without changing the hash.
        self.0.update(frame.header.to_bytes());
        self.0.update(&frame.payload);
    }

    pub(super) fn hash(&self) -> [u8; 32] {
        self.0.clone().finalize().into()
    }
}

/// The viewer's commitment to its secret value.
pub(super) fn commitment(secret: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new_with_prefix(b"fernsicht commitment v1\0");
    h.update(secret);
    h.finalize().into()
}
