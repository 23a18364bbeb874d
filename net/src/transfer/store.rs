//! The relay's encrypted file store, as the clients speak it (the
//! "conference edition" of the FastViewer seed): the host parks a file once
//! at the relay, and every viewer of the session, now or later, fetches it
//! from there instead of from the host.
//!
//! The relay keeps only ciphertext. Each parked file has its own random
//! slot number and its own [`StoreKey`], derived by the host from a secret
//! that never leaves it; the key reaches viewers only inside their sealed
//! sessions ([`ParkedFile`]), together with the file's manifest (name,
//! size, hashes), so the relay learns neither names nor content, only the
//! slot number and the ciphertext's size. Each piece is AES-256-GCM sealed
//! with its index and the piece count in the nonce and associated data: the
//! relay cannot swap, reorder, drop or cut pieces without the viewer
//! noticing, and the chunk hashes of the manifest check the plaintext on
//! top.

use super::manifest::{EntryKind, Manifest};
use crate::crypto::Aead;
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use thiserror::Error;
use zeroize::Zeroizing;

/// Bytes the AES-GCM tag adds to each stored piece.
pub const PIECE_OVERHEAD: u64 = crate::record::TAG_LEN as u64;

/// Client → relay, inside [`crate::control::ClientRequest::Store`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum StoreRequest {
    /// Host: reserve slot `file` for `size` bytes of ciphertext in pieces
    /// of `piece_len` bytes (the last may be shorter).
    Open {
        file: u64,
        size: u64,
        piece_len: u32,
    },
    /// Host: piece `index` of `file`, in order.
    Put {
        file: u64,
        index: u32,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// Host: every piece is there; viewers may fetch it.
    Commit { file: u64 },
    /// Host: remove the file.
    Delete { file: u64 },
    /// Viewer: piece `index` of `file`, please.
    Get { file: u64, index: u32 },
}

/// Relay → client, inside [`crate::control::RelayEvent::Store`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum StoreEvent {
    /// To the host: the slot is reserved.
    Opened { file: u64 },
    /// To the host: piece stored.
    Stored { file: u64, index: u32 },
    /// To the host: the file is complete and available.
    Committed { file: u64 },
    /// To the host: removed.
    Deleted { file: u64 },
    /// To a viewer: the piece it asked for.
    Piece {
        file: u64,
        index: u32,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// To either: the request for `file` was refused.
    Refused { file: u64, reason: StoreRefusal },
}

/// Why the relay would not store or serve a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Error)]
#[non_exhaustive]
pub enum StoreRefusal {
    #[error("the relay's file store is switched off")]
    Disabled,
    #[error("this session's files would exceed the relay's limit of {limit} bytes")]
    SessionFull { limit: u64 },
    #[error("the relay's file store is full (limit {limit} bytes)")]
    RelayFull { limit: u64 },
    #[error("this session has parked the most files the relay allows ({limit})")]
    TooManyFiles { limit: u32 },
    #[error("no such file in the relay's store")]
    NoSuchFile,
    #[error("the file is already stored")]
    Exists,
    #[error("a piece does not fit the size announced for the file")]
    BadPiece,
    #[error("only the host may park files")]
    NotHost,
    #[error("the relay could not write or read the file")]
    Failed,
}

/// The key that seals one parked file's pieces. Typed apart from the
/// session's traffic keys, so neither can be used for the other.
pub struct StoreKey(Zeroizing<[u8; 32]>);

impl StoreKey {
    /// A parked file's key from the host's store secret and the file's
    /// slot number.
    pub fn derive(secret: &[u8; 32], file: u64) -> StoreKey {
        let hk = Hkdf::<Sha256>::new(None, secret);
        let mut info = b"fernsicht v1 file store".to_vec();
        info.extend_from_slice(&file.to_be_bytes());
        let mut out = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's output limit.
        let _ = hk.expand(&info, out.as_mut());
        StoreKey(out)
    }

    pub fn from_bytes(bytes: [u8; 32]) -> StoreKey {
        StoreKey(Zeroizing::new(bytes))
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        *self.0
    }
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey(..)")
    }
}

/// A stored piece did not open: altered, swapped, or for another file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("a piece from the relay's store failed authentication")]
pub struct PieceTampered;

/// Seals and opens the pieces of one parked file.
pub struct PieceCipher {
    aead: Aead,
    file: u64,
    pieces: u32,
}

impl PieceCipher {
    pub fn new(key: &StoreKey, file: u64, pieces: u32) -> Self {
        PieceCipher {
            aead: Aead::new(&key.0),
            file,
            pieces,
        }
    }

    fn nonce(index: u32) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[0] = b'S';
        n[4..].copy_from_slice(&u64::from(index).to_be_bytes());
        n
    }

    fn ad(&self, index: u32) -> [u8; 16] {
        let mut ad = [0u8; 16];
        ad[..8].copy_from_slice(&self.file.to_be_bytes());
        ad[8..12].copy_from_slice(&index.to_be_bytes());
        ad[12..].copy_from_slice(&self.pieces.to_be_bytes());
        ad
    }

    /// Seals piece `index` in place. Each (key, index) pair is sealed once:
    /// a key belongs to one slot, and a slot is filled once.
    pub fn seal(&self, index: u32, mut plain: Vec<u8>) -> Vec<u8> {
        plain.reserve_exact(PIECE_OVERHEAD as usize);
        // Sealing only fails for inputs beyond AES-GCM's 64 GiB limit.
        let _ = self
            .aead
            .seal(&Self::nonce(index), &self.ad(index), &mut plain);
        plain
    }

    pub fn open(&self, index: u32, mut sealed: Vec<u8>) -> Result<Vec<u8>, PieceTampered> {
        if index >= self.pieces {
            return Err(PieceTampered);
        }
        self.aead
            .open(&Self::nonce(index), &self.ad(index), &mut sealed)
            .map_err(|_| PieceTampered)?;
        Ok(sealed)
    }
}

/// Host → viewer (sealed): a file parked in the relay's store, with what
/// the viewer needs to fetch, open and check it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParkedFile {
    /// The relay's slot number.
    pub file: u64,
    /// One file entry: name, size, hash and chunk hashes. Pieces are the
    /// manifest's chunks, sealed.
    pub manifest: Manifest,
    pub key: [u8; 32],
}

impl ParkedFile {
    /// Pieces at the relay: one per chunk.
    pub fn pieces(&self) -> u64 {
        match self.manifest.entries.first().map(|e| &e.kind) {
            Some(EntryKind::File { chunks, .. }) => chunks.len() as u64,
            _ => 0,
        }
    }

    pub fn check_bounds(&self) -> Result<(), &'static str> {
        match self.manifest.entries.as_slice() {
            [e] if matches!(e.kind, EntryKind::File { .. }) => Ok(()),
            _ => Err("a parked file's manifest holds exactly one file"),
        }
    }
}

/// The ciphertext size of a file of `size` bytes in chunks of `chunk_len`.
pub fn stored_size(size: u64, chunk_len: u64) -> u64 {
    size + super::tree::chunk_count(size, chunk_len) * PIECE_OVERHEAD
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_open_only_in_their_place() {
        let key = StoreKey::derive(&[7; 32], 42);
        let c = PieceCipher::new(&key, 42, 3);
        let sealed = c.seal(1, b"piece one".to_vec());
        assert_eq!(sealed.len(), 9 + 16);
        assert!(!sealed.windows(9).any(|w| w == b"piece one"));
        assert_eq!(c.open(1, sealed.clone()).unwrap(), b"piece one");
        assert_eq!(c.open(2, sealed.clone()), Err(PieceTampered));
        // Another file, or the same slot with another piece count.
        let other = PieceCipher::new(&StoreKey::derive(&[7; 32], 43), 43, 3);
        assert_eq!(other.open(1, sealed.clone()), Err(PieceTampered));
        let cut = PieceCipher::new(&key, 42, 2);
        assert_eq!(cut.open(1, sealed.clone()), Err(PieceTampered));
        let mut flipped = sealed;
        flipped[0] ^= 1;
        assert_eq!(c.open(1, flipped), Err(PieceTampered));
        assert_ne!(
            StoreKey::derive(&[7; 32], 1).to_bytes(),
            StoreKey::derive(&[7; 32], 2).to_bytes()
        );
    }
}
