//! Handshake messages as they travel (postcard-encoded inside handshake
//! frames), with the size checks a decoder of hostile input needs.

use super::HandshakeError;
use serde::{Deserialize, Serialize};

/// Version of the handshake, carried in the hellos.
pub const HANDSHAKE_PROTOCOL: u16 = 1;

/// Largest public key (SPKI DER) we accept: RSA-4096 with room to spare.
const MAX_PUBLIC_KEY: usize = 1024;
/// SPAKE2 on Ed25519 sends 33 bytes.
const MAX_PAKE: usize = 64;
/// One RSA block; 512 covers RSA-4096.
const MAX_WRAPPED_KEY: usize = 512;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostHello {
    pub protocol: u16,
    pub nonce: [u8; 32],
    /// The host's SPAKE2 message when the session has a password.
    pub pake: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ViewerHello {
    pub protocol: u16,
    /// RSA public key, SubjectPublicKeyInfo DER.
    pub public_key: Vec<u8>,
    pub nonce: [u8; 32],
    /// SHA-256 commitment to the value revealed after the key arrives.
    pub commitment: [u8; 32],
    pub pake: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyTransport {
    /// RSA-OAEP-SHA256 of the 32-byte session key and the 32-byte transcript
    /// hash up to the viewer's hello.
    pub wrapped_key: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reveal {
    pub secret: [u8; 32],
}

/// Why a side gave up on a handshake, as told to the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum AbortReason {
    #[error("key confirmation failed (wrong password, or tampering in between)")]
    KeyConfirmationFailed,
    #[error("the revealed value did not match the commitment")]
    CommitmentMismatch,
    #[error("the session needs a password")]
    PasswordRequired,
    #[error("a password was given but the host did not ask for one")]
    PasswordNotRequested,
    #[error("the key message could not be used")]
    KeyUnwrapFailed,
    #[error("too many connection attempts: try again later")]
    RateLimited,
    #[error("protocol error")]
    ProtocolError,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HandshakeMessage {
    HostHello(HostHello),
    ViewerHello(ViewerHello),
    KeyTransport(KeyTransport),
    Reveal(Reveal),
    Abort(AbortReason),
}

impl HandshakeMessage {
    pub fn name(&self) -> &'static str {
        match self {
            HandshakeMessage::HostHello(_) => "HostHello",
            HandshakeMessage::ViewerHello(_) => "ViewerHello",
            HandshakeMessage::KeyTransport(_) => "KeyTransport",
            HandshakeMessage::Reveal(_) => "Reveal",
            HandshakeMessage::Abort(_) => "Abort",
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        // Serialising these plain structs into a Vec cannot fail.
        postcard::to_stdvec(self).unwrap_or_default()
    }

    /// Decodes and checks a message: the whole payload must be used and
    /// every field must be within its bound.
    pub fn decode(bytes: &[u8]) -> Result<Self, HandshakeError> {
        let (msg, rest): (HandshakeMessage, _) = postcard::take_from_bytes(bytes)
            .map_err(|e| HandshakeError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(HandshakeError::Malformed(format!(
                "{} trailing bytes",
                rest.len()
            )));
        }
        msg.check_bounds()?;
        Ok(msg)
    }

    fn check_bounds(&self) -> Result<(), HandshakeError> {
        let too_long = |what: &str| Err(HandshakeError::Malformed(format!("{what} too long")));
        match self {
            HandshakeMessage::HostHello(h) => {
                if h.pake.as_ref().is_some_and(|p| p.len() > MAX_PAKE) {
                    return too_long("password exchange message");
                }
            }
            HandshakeMessage::ViewerHello(h) => {
                if h.public_key.len() > MAX_PUBLIC_KEY {
                    return too_long("public key");
                }
                if h.pake.as_ref().is_some_and(|p| p.len() > MAX_PAKE) {
                    return too_long("password exchange message");
                }
            }
            HandshakeMessage::KeyTransport(k) => {
                if k.wrapped_key.len() > MAX_WRAPPED_KEY {
                    return too_long("wrapped key");
                }
            }
            HandshakeMessage::Reveal(_) | HandshakeMessage::Abort(_) => {}
        }
        Ok(())
    }
}
