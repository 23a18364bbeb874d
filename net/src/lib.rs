//! Fernsicht's networking: the wire protocol, the end-to-end handshake and
//! record layer, the tokio transports, and the relay ("tunnel") server.
//!
//! The protocol logic ([`frame`], [`handshake`], [`record`], [`control`]) does
//! no I/O: it is fed frames and returns frames, so tests can drive both
//! peers in memory. The async parts ([`transport`], [`relay`], [`client`])
//! only move those frames over sockets. `net/PROTOCOL.md` describes the frame
//! layout, the handshake and the key schedule, and argues why the relay can
//! neither read nor silently alter a session.

pub mod control;
pub mod crypto;
pub mod direct;
pub mod frame;
pub mod handshake;
pub mod number;
pub mod punch;
pub mod quic;
pub mod record;

pub use frame::{ChannelId, Frame, FrameError, FrameType};

/// An error and its causes on one line ("a: b: c"), for events and logs
/// that carry errors as text. Error types here never repeat their cause in
/// their own message, so nothing is said twice.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
pub use number::SessionNumber;
pub mod client;
pub mod message;
pub mod relay;
pub mod tls;
pub mod transfer;
pub mod transport;
