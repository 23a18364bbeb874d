//! The frame layer: every byte between a client and the relay, and between
//! host and viewer through the relay, travels as a [`Frame`].
//!
//! A frame is a fixed 16-byte clear header followed by `len` payload bytes:
//!
//! ```text
//!  0        1        2                4                                12               16
//! +--------+--------+----------------+--------------------------------+----------------+
//! |version |  type  | channel (BE16) |     sequence number (BE64)     |  length (BE32) |
//! +--------+--------+----------------+--------------------------------+----------------+
//! ```
//!
//! The header stays in clear because the relay routes by it, but for sealed
//! frames the whole header is the AES-GCM associated data: the relay can read
//! it and cannot change it. The decoder checks the length against
//! [`MAX_PAYLOAD`] before it allocates anything, so a hostile peer cannot make
//! us reserve memory by announcing a huge frame.

use thiserror::Error;

/// Version byte of this protocol. A peer speaking another version is refused
/// with [`FrameError::UnsupportedVersion`] instead of being misparsed.
pub const PROTOCOL_VERSION: u8 = 1;

/// Size of the clear header in bytes.
pub const HEADER_LEN: usize = 16;

/// Largest payload a frame may carry. Big enough for a 4K keyframe, small
/// enough that a connection's buffers stay bounded.
pub const MAX_PAYLOAD: usize = 8 * 1024 * 1024;

/// What a frame carries, and so who may read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameType {
    /// A request to the relay or an event from it, in clear: the relay is
    /// the other end of these.
    Control = 1,
    /// A handshake message between host and viewer, in clear but bound into
    /// the handshake transcript, so any change makes the handshake fail.
    Handshake = 2,
    /// An end-to-end sealed application message (AES-256-GCM, header as
    /// associated data).
    Sealed = 3,
}

impl FrameType {
    fn from_byte(b: u8) -> Result<Self, FrameError> {
        match b {
            1 => Ok(Self::Control),
            2 => Ok(Self::Handshake),
            3 => Ok(Self::Sealed),
            other => Err(FrameError::UnknownType(other)),
        }
    }
}

/// Identifies one host–viewer pair inside a session. The relay hands out a
/// fresh one for every viewer that joins; `0` is the relay/host control
/// channel and never names a viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub u16);

impl ChannelId {
    /// The channel of control frames between a client and the relay.
    pub const CONTROL: ChannelId = ChannelId(0);
}

impl std::fmt::Display for ChannelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// The clear 16-byte header of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub frame_type: FrameType,
    pub channel: ChannelId,
    pub seq: u64,
    /// Length of the payload that follows, in bytes.
    pub len: u32,
}

impl Header {
    /// Serialises the header; for sealed frames these exact bytes are the
    /// AEAD associated data.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0] = PROTOCOL_VERSION;
        out[1] = self.frame_type as u8;
        out[2..4].copy_from_slice(&self.channel.0.to_be_bytes());
        out[4..12].copy_from_slice(&self.seq.to_be_bytes());
        out[12..16].copy_from_slice(&self.len.to_be_bytes());
        out
    }

    /// Parses and checks a header: version, type and the length cap.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Result<Self, FrameError> {
        if bytes[0] != PROTOCOL_VERSION {
            return Err(FrameError::UnsupportedVersion(bytes[0]));
        }
        let frame_type = FrameType::from_byte(bytes[1])?;
        let channel = ChannelId(u16::from_be_bytes([bytes[2], bytes[3]]));
        let mut seq = [0u8; 8];
        seq.copy_from_slice(&bytes[4..12]);
        let len = u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]);
        if len as usize > MAX_PAYLOAD {
            return Err(FrameError::TooLarge {
                len: len as usize,
                max: MAX_PAYLOAD,
            });
        }
        Ok(Header {
            frame_type,
            channel,
            seq: u64::from_be_bytes(seq),
            len,
        })
    }
}

/// One frame: header plus payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub header: Header,
    pub payload: Vec<u8>,
}

impl Frame {
    /// Builds a frame, refusing payloads above [`MAX_PAYLOAD`] so that we
    /// never send what a peer must reject.
    pub fn new(
        frame_type: FrameType,
        channel: ChannelId,
        seq: u64,
        payload: Vec<u8>,
    ) -> Result<Self, FrameError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(FrameError::TooLarge {
                len: payload.len(),
                max: MAX_PAYLOAD,
            });
        }
        Ok(Frame {
            header: Header {
                frame_type,
                channel,
                seq,
                len: payload.len() as u32,
            },
            payload,
        })
    }

    /// The frame as bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len());
        out.extend_from_slice(&self.header.to_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Decodes one frame from the front of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` holds only part of a frame (read more
    /// and call again), or the frame and the number of bytes it used. An
    /// invalid header is an error at once, before the payload has arrived.
    pub fn decode(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
        let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let header = Header::parse(head)?;
        let total = HEADER_LEN + header.len as usize;
        if buf.len() < total {
            return Ok(None);
        }
        let payload = buf[HEADER_LEN..total].to_vec();
        Ok(Some((Frame { header, payload }, total)))
    }

    /// Decodes a buffer that must hold exactly one frame, such as a datagram
    /// or a test vector: missing bytes are [`FrameError::Truncated`] and
    /// extra bytes [`FrameError::TrailingBytes`].
    pub fn decode_exact(buf: &[u8]) -> Result<Frame, FrameError> {
        match Frame::decode(buf)? {
            None => Err(FrameError::Truncated {
                have: buf.len(),
                need: buf
                    .first_chunk::<HEADER_LEN>()
                    .map(|h| HEADER_LEN + u32::from_be_bytes([h[12], h[13], h[14], h[15]]) as usize)
                    .unwrap_or(HEADER_LEN),
            }),
            Some((frame, used)) if used == buf.len() => Ok(frame),
            Some((_, used)) => Err(FrameError::TrailingBytes(buf.len() - used)),
        }
    }
}

/// Why bytes could not be read as a frame. Each of these means the peer (or
/// something between us) sent garbage: the connection is closed.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    #[error("peer speaks protocol version {0}, this build speaks {PROTOCOL_VERSION}")]
    UnsupportedVersion(u8),
    #[error("unknown frame type {0}")]
    UnknownType(u8),
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("frame truncated: {have} of {need} bytes")]
    Truncated { have: usize, need: usize },
    #[error("{0} unexpected bytes after the frame")]
    TrailingBytes(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Frame {
        Frame::new(
            FrameType::Sealed,
            ChannelId(7),
            0x0102_0304_0506_0708,
            b"hello".to_vec(),
        )
        .unwrap()
    }

    #[test]
    fn round_trip_and_layout() {
        let f = sample();
        let bytes = f.encode();
        assert_eq!(
            &bytes[..HEADER_LEN],
            &[1, 3, 0, 7, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 5]
        );
        assert_eq!(Frame::decode_exact(&bytes).unwrap(), f);
    }

    #[test]
    fn partial_input_asks_for_more() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            assert_eq!(Frame::decode(&bytes[..cut]).unwrap(), None, "cut at {cut}");
            assert!(matches!(
                Frame::decode_exact(&bytes[..cut]),
                Err(FrameError::Truncated { .. })
            ));
        }
    }

    #[test]
    fn two_frames_back_to_back() {
        let mut bytes = sample().encode();
        bytes.extend(sample().encode());
        let (_, used) = Frame::decode(&bytes).unwrap().unwrap();
        let (second, used2) = Frame::decode(&bytes[used..]).unwrap().unwrap();
        assert_eq!(second, sample());
        assert_eq!(used + used2, bytes.len());
        assert_eq!(
            Frame::decode_exact(&bytes),
            Err(FrameError::TrailingBytes(used2))
        );
    }

    #[test]
    fn bad_headers_are_typed_errors() {
        let mut bytes = sample().encode();
        bytes[0] = 9;
        assert_eq!(
            Frame::decode(&bytes),
            Err(FrameError::UnsupportedVersion(9))
        );
        let mut bytes = sample().encode();
        bytes[1] = 0;
        assert_eq!(Frame::decode(&bytes), Err(FrameError::UnknownType(0)));
    }

    #[test]
    fn oversized_length_is_refused_before_the_payload_arrives() {
        let mut head = sample().header.to_bytes();
        head[12..16].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            Frame::decode(&head),
            Err(FrameError::TooLarge { .. })
        ));
        assert!(
            Frame::new(
                FrameType::Control,
                ChannelId::CONTROL,
                0,
                vec![0; MAX_PAYLOAD + 1]
            )
            .is_err()
        );
    }
}
