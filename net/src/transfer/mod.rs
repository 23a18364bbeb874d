//! File transfer: files and folders as a stream of chunks inside the sealed
//! session, verified chunk by chunk, resumable, and paced so the video
//! stays responsive. `net/PROTOCOL.md` ("File transfer") describes it.
//!
//! Like the handshake, the protocol core does no I/O: [`Sender`] and
//! [`Receiver`] are fed messages and time and say which chunk to send or
//! where a chunk belongs; [`manifest`] checks what a sender offers,
//! [`path`] turns its names into safe relative paths, [`tree`] makes chunk
//! hashes that add up to the file's BLAKE3 hash, [`window`] paces chunks.
//! The I/O lives in thin shells: [`disk`] (reading files, the receiver's
//! partial files and safe final names) and [`service`] (a task that drives
//! the state machines over a session). [`store`] is the relay's encrypted
//! file store as the clients speak it.

pub mod disk;
pub mod manifest;
pub mod path;
mod receiver;
mod sender;
pub mod service;
mod session;
pub mod store;
pub mod tree;
pub mod window;
mod wire;
mod workers;

pub use manifest::{Entry, EntryKind, Limits, Manifest, ManifestError, ValidManifest};
pub use receiver::{Receiver, Written};
pub use sender::{SendStats, Sender};
pub use wire::{CancelReason, MAX_DETAIL_CHARS, Refusal, TransferMsg, detail};
pub use workers::Link;

use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// Names a transfer: the first 16 bytes of a keyed BLAKE3 hash of its
/// manifest ([`Manifest::id`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TransferId(pub [u8; 16]);

impl TransferId {
    /// Eight hex digits: enough to tell transfers apart on a screen.
    pub fn short(&self) -> String {
        self.0[..4].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Display for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TransferId({})", self.short())
    }
}

/// Chunks that are done, one bit each; also the wire form of "what I
/// already have" (bit `n` is bit `n % 8` of byte `n / 8`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitmap {
    bytes: Vec<u8>,
    len: u64,
    ones: u64,
}

impl Bitmap {
    pub fn new(len: u64) -> Self {
        Bitmap {
            bytes: vec![0; len.div_ceil(8) as usize],
            len,
            ones: 0,
        }
    }

    /// From the wire; `None` if the length does not fit `len` bits or a
    /// bit beyond `len` is set.
    pub fn from_bytes(bytes: &[u8], len: u64) -> Option<Self> {
        if bytes.len() as u64 != len.div_ceil(8) {
            return None;
        }
        if !len.is_multiple_of(8)
            && let Some(last) = bytes.last()
            && last >> (len % 8) != 0
        {
            return None;
        }
        let ones = bytes.iter().map(|b| u64::from(b.count_ones())).sum();
        Some(Bitmap {
            bytes: bytes.to_vec(),
            len,
            ones,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn get(&self, n: u64) -> bool {
        n < self.len && self.bytes[(n / 8) as usize] & (1 << (n % 8)) != 0
    }

    /// Sets bit `n`; whether it was clear.
    pub fn set(&mut self, n: u64) -> bool {
        if n >= self.len || self.get(n) {
            return false;
        }
        self.bytes[(n / 8) as usize] |= 1 << (n % 8);
        self.ones += 1;
        true
    }

    pub fn count(&self) -> u64 {
        self.ones
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn is_full(&self) -> bool {
        self.ones == self.len
    }
}

/// A peer broke the transfer protocol, or a transfer cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TransferError {
    #[error("the list of chunks already received does not fit the transfer")]
    BadBitmap,
    #[error("chunk {0} does not exist in this transfer")]
    NoSuchChunk(u64),
    #[error("chunk {0} failed its check {1} times")]
    ChunkKeepsFailing(u64, u32),
    #[error("the receiver reported done with chunks missing")]
    EarlyDone,
    #[error("a message arrived that does not fit the transfer's state")]
    OutOfState,
}

#[cfg(test)]
mod tests;
