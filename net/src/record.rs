//! The record layer: seals application messages into [`FrameType::Sealed`]
//! frames and opens them, after the handshake has produced one key per
//! direction.
//!
//! Nonces are the frame's 64-bit sequence number (with the direction in the
//! first byte), so they never repeat under one key: each direction has its
//! own key, its own counter, and the counter refuses to wrap. The receiver
//! accepts exactly the next sequence number, which rejects replayed,
//! reordered, dropped and duplicated frames. The clear header is the AEAD
//! associated data, so the relay cannot redirect or renumber a frame.

use crate::crypto::Aead;
use crate::frame::{ChannelId, Frame, FrameError, FrameType, HEADER_LEN, Header, MAX_PAYLOAD};
use thiserror::Error;
use zeroize::Zeroizing;

/// Bytes the AES-GCM tag adds to every sealed payload.
pub const TAG_LEN: usize = 16;

/// Largest plaintext one sealed frame can carry.
pub const MAX_PLAINTEXT: usize = MAX_PAYLOAD - TAG_LEN;

/// Which way a key protects traffic. Keys for the two directions are
/// derived separately, so a frame reflected back to its sender never opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    HostToViewer,
    ViewerToHost,
}

impl Direction {
    fn nonce_prefix(self) -> u8 {
        match self {
            Direction::HostToViewer => 0x48, // 'H'
            Direction::ViewerToHost => 0x56, // 'V'
        }
    }

    pub fn reverse(self) -> Self {
        match self {
            Direction::HostToViewer => Direction::ViewerToHost,
            Direction::ViewerToHost => Direction::HostToViewer,
        }
    }
}

/// A 256-bit AES-GCM key for one direction of one host–viewer pair. Only
/// the key schedule makes these.
pub struct TrafficKey {
    pub(crate) bytes: Zeroizing<[u8; 32]>,
    pub(crate) direction: Direction,
}

impl std::fmt::Debug for TrafficKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrafficKey")
            .field("direction", &self.direction)
            .finish_non_exhaustive()
    }
}

fn nonce(direction: Direction, seq: u64) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[0] = direction.nonce_prefix();
    n[4..].copy_from_slice(&seq.to_be_bytes());
    n
}

/// Seals outgoing messages for one direction.
pub struct Sealer {
    cipher: Aead,
    direction: Direction,
    channel: ChannelId,
    next_seq: u64,
}

impl Sealer {
    /// `first_seq` continues the sequence numbers of the handshake frames
    /// already sent on this channel.
    pub fn new(key: TrafficKey, channel: ChannelId, first_seq: u64) -> Self {
        Sealer {
            cipher: Aead::new(&key.bytes),
            direction: key.direction,
            channel,
            next_seq: first_seq,
        }
    }

    /// Seals `plaintext` into the next frame of this direction.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Frame, RecordError> {
        let mut buf = Vec::with_capacity(plaintext.len() + TAG_LEN);
        buf.extend_from_slice(plaintext);
        self.seal_vec(buf)
    }

    /// Seals an owned plaintext in place (no copy); the buffer becomes the
    /// frame's payload.
    pub fn seal_vec(&mut self, mut payload: Vec<u8>) -> Result<Frame, RecordError> {
        let len = payload.len();
        if len > MAX_PLAINTEXT {
            return Err(RecordError::Frame(FrameError::TooLarge {
                len,
                max: MAX_PLAINTEXT,
            }));
        }
        let seq = self.next_seq;
        // Refuse to wrap: a repeated nonce under AES-GCM leaks the
        // authentication key. 2^64 frames will never be sent, but the check
        // costs nothing.
        self.next_seq = seq.checked_add(1).ok_or(RecordError::SequenceExhausted)?;
        let header = Header {
            frame_type: FrameType::Sealed,
            channel: self.channel,
            seq,
            len: (len + TAG_LEN) as u32,
        };
        payload.reserve_exact(TAG_LEN);
        self.cipher
            .seal(
                &nonce(self.direction, seq),
                &header.to_bytes(),
                &mut payload,
            )
            .map_err(|_| RecordError::Tampered { seq })?;
        Ok(Frame { header, payload })
    }

    /// The sequence number the next sealed frame will carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
}

/// Opens incoming messages for one direction, strictly in order.
pub struct Opener {
    cipher: Aead,
    direction: Direction,
    channel: ChannelId,
    next_seq: u64,
}

impl Opener {
    pub fn new(key: TrafficKey, channel: ChannelId, first_seq: u64) -> Self {
        Opener {
            cipher: Aead::new(&key.bytes),
            direction: key.direction,
            channel,
            next_seq: first_seq,
        }
    }

    /// Checks and decrypts the next frame. Any error means the stream can no
    /// longer be trusted: the caller must end the session, not skip the frame.
    pub fn open(&mut self, frame: Frame) -> Result<Vec<u8>, RecordError> {
        let Frame {
            header,
            mut payload,
        } = frame;
        if header.frame_type != FrameType::Sealed {
            return Err(RecordError::UnexpectedType(header.frame_type));
        }
        if header.channel != self.channel {
            return Err(RecordError::WrongChannel {
                expected: self.channel,
                got: header.channel,
            });
        }
        if header.seq != self.next_seq {
            return Err(RecordError::OutOfOrder {
                expected: self.next_seq,
                got: header.seq,
            });
        }
        if payload.len() != header.len as usize || payload.len() < TAG_LEN {
            return Err(RecordError::Frame(FrameError::Truncated {
                have: payload.len(),
                need: (header.len as usize).max(TAG_LEN),
            }));
        }
        self.cipher
            .open(
                &nonce(self.direction, header.seq),
                &header.to_bytes(),
                &mut payload,
            )
            .map_err(|_| RecordError::Tampered { seq: header.seq })?;
        self.next_seq = self
            .next_seq
            .checked_add(1)
            .ok_or(RecordError::SequenceExhausted)?;
        Ok(payload)
    }

    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }
}

/// Why a sealed frame could not be made or opened.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordError {
    #[error(
        "frame {seq} failed authentication: it was altered in transit or sealed with another key"
    )]
    Tampered { seq: u64 },
    #[error(
        "frame out of order: expected sequence number {expected}, got {got} (replayed, reordered, dropped or duplicated)"
    )]
    OutOfOrder { expected: u64, got: u64 },
    #[error("frame for channel {got} arrived on channel {expected}")]
    WrongChannel { expected: ChannelId, got: ChannelId },
    #[error("expected a sealed frame, got a {0:?} frame")]
    UnexpectedType(FrameType),
    #[error("sequence numbers exhausted: the session must be re-keyed")]
    SequenceExhausted,
    #[error(transparent)]
    Frame(#[from] FrameError),
}

/// Overhead of a sealed frame on the wire beyond its plaintext.
pub const SEALED_OVERHEAD: usize = HEADER_LEN + TAG_LEN;

#[cfg(test)]
mod tests {
    use super::*;

    fn key(direction: Direction, b: u8) -> TrafficKey {
        TrafficKey {
            bytes: Zeroizing::new([b; 32]),
            direction,
        }
    }

    fn pair() -> (Sealer, Opener) {
        let ch = ChannelId(3);
        (
            Sealer::new(key(Direction::HostToViewer, 1), ch, 5),
            Opener::new(key(Direction::HostToViewer, 1), ch, 5),
        )
    }

    #[test]
    fn seals_and_opens_in_order() {
        let (mut s, mut o) = pair();
        for i in 0..10u8 {
            let f = s.seal(&[i; 100]).unwrap();
            assert_eq!(f.header.seq, 5 + i as u64);
            assert_ne!(&f.payload[..100], &[i; 100][..], "payload is not in clear");
            let wire = Frame::decode_exact(&f.encode()).unwrap();
            assert_eq!(o.open(wire).unwrap(), vec![i; 100]);
        }
    }

    #[test]
    fn every_flipped_bit_is_detected() {
        let (mut s, _) = pair();
        let wire = s.seal(b"secret").unwrap().encode();
        for bit in 0..wire.len() * 8 {
            let mut bad = wire.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let (_, mut o) = pair();
            let result = Frame::decode_exact(&bad)
                .map_err(RecordError::from)
                .and_then(|f| o.open(f));
            assert!(result.is_err(), "flipping bit {bit} went unnoticed");
        }
    }

    #[test]
    fn replay_reorder_and_duplicate_are_refused() {
        let (mut s, mut o) = pair();
        let a = s.seal(b"a").unwrap();
        let b = s.seal(b"b").unwrap();
        assert_eq!(
            o.open(b.clone()),
            Err(RecordError::OutOfOrder {
                expected: 5,
                got: 6
            })
        );
        o.open(a.clone()).unwrap();
        assert_eq!(
            o.open(a),
            Err(RecordError::OutOfOrder {
                expected: 6,
                got: 5
            })
        );
        o.open(b.clone()).unwrap();
        assert!(matches!(o.open(b), Err(RecordError::OutOfOrder { .. })));
    }

    #[test]
    fn renumbering_or_redirecting_a_frame_breaks_it() {
        let (mut s, _) = pair();
        let mut f = s.seal(b"x").unwrap();
        f.header.seq = 5;
        // Same seq, but move the frame to another channel.
        f.header.channel = ChannelId(4);
        let mut o = Opener::new(key(Direction::HostToViewer, 1), ChannelId(4), 5);
        assert_eq!(o.open(f), Err(RecordError::Tampered { seq: 5 }));
    }

    #[test]
    fn reflected_frame_does_not_open() {
        // Same key bytes in both directions would still differ by nonce.
        let (mut s, _) = pair();
        let f = s.seal(b"x").unwrap();
        let mut o = Opener::new(key(Direction::ViewerToHost, 1), ChannelId(3), 5);
        assert!(matches!(o.open(f), Err(RecordError::Tampered { .. })));
    }

    #[test]
    fn sequence_never_wraps() {
        let mut s = Sealer::new(key(Direction::HostToViewer, 1), ChannelId(1), u64::MAX);
        assert!(s.seal(b"last").is_err() || s.seal(b"after").is_err());
    }
}
