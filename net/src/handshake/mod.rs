//! The end-to-end handshake between a host and one viewer, as a state
//! machine without I/O: each state is a type with one `receive` method that
//! takes the next frame and returns the next state plus the frames to send.
//! A message that does not belong in a state cannot be handled there.
//!
//! ```text
//! host                                            viewer
//!  HostHello { nonce_h, [pake_h] }         ------>
//!                                          <------  ViewerHello { rsa_pub, nonce_v,
//!                                                                 commit = H(r), [pake_v] }
//!  KeyTransport { OAEP(rsa_pub, K ‖ T1) }  ------>
//!                                          <------  Reveal { r }
//!                                          <------  sealed Finished(T ‖ name)
//!  sealed Finished(T)                      ------>
//! ```
//!
//! `T1` is the transcript hash up to the viewer's hello, `T` the hash of
//! every handshake frame including the reveal. Keys and the 6-digit code
//! come from HKDF over `K ‖ pake_key` salted with `T`; see
//! `net/PROTOCOL.md` for why the commitment makes the code grinding-proof.

mod host;
mod messages;
mod schedule;
mod transcript;
mod viewer;

pub use host::{HostExpectFinished, HostExpectReveal, HostExpectViewerHello, HostHandshake};
pub use messages::{AbortReason, HandshakeMessage};
pub use schedule::AuthCode;
pub use viewer::{
    ViewerExpectFinished, ViewerExpectHostHello, ViewerExpectKey, ViewerHandshake, ViewerKey,
};

use crate::frame::{ChannelId, Frame, FrameError, FrameType};
use crate::record::{Opener, RecordError, Sealer};
use thiserror::Error;
use zeroize::Zeroizing;

/// Digits of the code people compare, unless a test shortens it.
pub const DEFAULT_CODE_DIGITS: u32 = 6;

/// Longest display name a viewer may send, in characters.
pub const MAX_NAME_CHARS: usize = 64;

/// Settings both sides of a handshake use.
#[derive(Clone)]
pub struct HandshakeConfig {
    /// The session password, if the host set one. With a password the
    /// handshake also runs SPAKE2, and a man in the middle who does not know
    /// it cannot complete the handshake at all.
    pub password: Option<Zeroizing<String>>,
    /// Length of the code the two people compare (about 3.3 bits a digit).
    pub code_digits: u32,
}

impl Default for HandshakeConfig {
    fn default() -> Self {
        HandshakeConfig {
            password: None,
            code_digits: DEFAULT_CODE_DIGITS,
        }
    }
}

impl HandshakeConfig {
    pub fn with_password(password: Option<&str>) -> Self {
        HandshakeConfig {
            password: password
                .filter(|p| !p.is_empty())
                .map(|p| Zeroizing::new(p.to_owned())),
            ..Default::default()
        }
    }
}

impl std::fmt::Debug for HandshakeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HandshakeConfig")
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("code_digits", &self.code_digits)
            .finish()
    }
}

/// The result of a completed handshake: keys are confirmed on both sides.
pub struct Established {
    pub sealer: Sealer,
    pub opener: Opener,
    pub code: AuthCode,
    /// The viewer's display name as it sent it (host side), or empty.
    pub peer_name: String,
    pub channel: ChannelId,
    /// Proves this session on a direct path (see [`crate::direct`]).
    pub path_key: crate::direct::PathKey,
}

impl std::fmt::Debug for Established {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Established")
            .field("code", &self.code)
            .field("peer_name", &self.peer_name)
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

/// Why a handshake failed. Every failure ends the attempt: there is no
/// session without a completed handshake, and no unencrypted fallback.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum HandshakeError {
    #[error(
        "key confirmation failed: the other side derived different keys (wrong password, or someone in between tampered with the handshake)"
    )]
    KeyConfirmationFailed,
    #[error("the viewer's revealed value does not match its commitment: handshake tampered with")]
    CommitmentMismatch,
    #[error("the key message was not made for this handshake (replayed or tampered with)")]
    KeyBindingMismatch,
    #[error(
        "the key message could not be decrypted with our key: it was made for another key (replayed or tampered with)"
    )]
    KeyUnwrapFailed,
    #[error("the viewer's public key is unusable: {0}")]
    BadPublicKey(String),
    #[error("this session is protected by a password, and none was given")]
    PasswordRequired,
    #[error(
        "a password was given, but the host did not ask for one: refusing, as someone in between may have removed the request"
    )]
    PasswordNotRequested,
    #[error("malformed password exchange message")]
    BadPake,
    #[error("the peer speaks handshake protocol {peer}, we speak {ours}")]
    ProtocolMismatch { peer: u16, ours: u16 },
    #[error("unexpected handshake message: expected {expected}, got {got}")]
    UnexpectedMessage {
        expected: &'static str,
        got: &'static str,
    },
    #[error(
        "handshake frame out of order: expected sequence number {expected}, got {got} (replayed, reordered or duplicated)"
    )]
    OutOfOrder { expected: u64, got: u64 },
    #[error("handshake frame arrived on channel {got}, expected {expected}")]
    WrongChannel { expected: ChannelId, got: ChannelId },
    #[error("invalid handshake message: {0}")]
    Malformed(String),
    #[error("the other side aborted the handshake: {0}")]
    Aborted(AbortReason),
    #[error(transparent)]
    Frame(#[from] FrameError),
}

impl HandshakeError {
    /// What to tell the peer when this error ends our side.
    pub fn abort_reason(&self) -> AbortReason {
        match self {
            HandshakeError::KeyConfirmationFailed => AbortReason::KeyConfirmationFailed,
            HandshakeError::CommitmentMismatch => AbortReason::CommitmentMismatch,
            HandshakeError::PasswordRequired => AbortReason::PasswordRequired,
            HandshakeError::PasswordNotRequested => AbortReason::PasswordNotRequested,
            HandshakeError::KeyBindingMismatch | HandshakeError::KeyUnwrapFailed => {
                AbortReason::KeyUnwrapFailed
            }
            _ => AbortReason::ProtocolError,
        }
    }
}

impl From<RecordError> for HandshakeError {
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::Tampered { .. } => HandshakeError::KeyConfirmationFailed,
            RecordError::OutOfOrder { expected, got } => {
                HandshakeError::OutOfOrder { expected, got }
            }
            RecordError::WrongChannel { expected, got } => {
                HandshakeError::WrongChannel { expected, got }
            }
            RecordError::Frame(f) => HandshakeError::Frame(f),
            other => HandshakeError::Malformed(other.to_string()),
        }
    }
}

/// Sequence numbers of one direction during the handshake; the record layer
/// continues where the handshake stopped.
#[derive(Debug, Clone, Copy)]
struct Seqs {
    send: u64,
    recv: u64,
}

impl Seqs {
    fn new() -> Self {
        Seqs { send: 0, recv: 0 }
    }
}

/// Checks type, channel and order of an incoming handshake frame and reads
/// its message.
fn read_handshake_frame(
    frame: &Frame,
    channel: ChannelId,
    seqs: &mut Seqs,
) -> Result<HandshakeMessage, HandshakeError> {
    if frame.header.channel != channel {
        return Err(HandshakeError::WrongChannel {
            expected: channel,
            got: frame.header.channel,
        });
    }
    if frame.header.seq != seqs.recv {
        return Err(HandshakeError::OutOfOrder {
            expected: seqs.recv,
            got: frame.header.seq,
        });
    }
    if frame.header.frame_type != FrameType::Handshake {
        return Err(HandshakeError::UnexpectedMessage {
            expected: "a handshake frame",
            got: "a sealed frame",
        });
    }
    let msg = HandshakeMessage::decode(&frame.payload)?;
    seqs.recv += 1;
    if let HandshakeMessage::Abort(reason) = msg {
        return Err(HandshakeError::Aborted(reason));
    }
    Ok(msg)
}

/// Builds the next outgoing handshake frame.
fn write_handshake_frame(msg: &HandshakeMessage, channel: ChannelId, seqs: &mut Seqs) -> Frame {
    let payload = msg.encode();
    let frame = Frame {
        header: crate::frame::Header {
            frame_type: FrameType::Handshake,
            channel,
            seq: seqs.send,
            len: payload.len() as u32,
        },
        payload,
    };
    seqs.send += 1;
    frame
}

/// A frame telling the peer we give up, and why. It is not authenticated
/// (it may come before any key exists), so it can only ever end a
/// handshake, never change one.
pub fn abort_frame(reason: AbortReason, channel: ChannelId, next_seq: u64) -> Frame {
    let mut seqs = Seqs {
        send: next_seq,
        recv: 0,
    };
    write_handshake_frame(&HandshakeMessage::Abort(reason), channel, &mut seqs)
}

/// Reads an abort frame if `frame` is one (any time during the handshake,
/// whatever its sequence number).
pub fn as_abort(frame: &Frame) -> Option<AbortReason> {
    if frame.header.frame_type != FrameType::Handshake {
        return None;
    }
    match HandshakeMessage::decode(&frame.payload) {
        Ok(HandshakeMessage::Abort(r)) => Some(r),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
