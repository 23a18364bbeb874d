//! The host's side of the handshake.

use super::messages::{HANDSHAKE_PROTOCOL, HostHello, KeyTransport};
use super::schedule::{AuthCode, KeySchedule};
use super::transcript::{Transcript, commitment};
use super::{
    Established, HandshakeConfig, HandshakeError, HandshakeMessage, MAX_NAME_CHARS, Seqs,
    read_handshake_frame, write_handshake_frame,
};
use crate::frame::{ChannelId, Frame, FrameType};
use crate::record::{Direction, Opener, Sealer};
use rand::{CryptoRng, RngCore};
use rsa::RsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::traits::PublicKeyParts;
use spake2::{Ed25519Group, Identity, Password, Spake2};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

pub(super) const HOST_IDENTITY: &[u8] = b"fernsicht host";
pub(super) const VIEWER_IDENTITY: &[u8] = b"fernsicht viewer";

/// Smallest and largest RSA modulus a viewer may send, in bits.
const RSA_BITS: std::ops::RangeInclusive<usize> = 2048..=4096;

/// Entry point of the host's side.
pub struct HostHandshake;

impl HostHandshake {
    /// Starts a handshake with the viewer the relay just paired on
    /// `channel`: returns the state and the hello (with a fresh nonce) to
    /// send.
    pub fn start<R: RngCore + CryptoRng>(
        config: &HandshakeConfig,
        channel: ChannelId,
        rng: &mut R,
    ) -> (HostExpectViewerHello, Frame) {
        let mut nonce = [0u8; 32];
        rng.fill_bytes(&mut nonce);
        let (pake, pake_msg) = match &config.password {
            Some(pw) => {
                let (state, msg) = Spake2::<Ed25519Group>::start_a_with_rng(
                    &Password::new(pw.as_bytes()),
                    &Identity::new(HOST_IDENTITY),
                    &Identity::new(VIEWER_IDENTITY),
                    &mut *rng,
                );
                (Some(state), Some(msg))
            }
            None => (None, None),
        };
        let mut seqs = Seqs::new();
        let hello = HandshakeMessage::HostHello(HostHello {
            protocol: HANDSHAKE_PROTOCOL,
            nonce,
            pake: pake_msg,
        });
        let frame = write_handshake_frame(&hello, channel, &mut seqs);
        let mut transcript = Transcript::new();
        transcript.add(&frame);
        (
            HostExpectViewerHello {
                channel,
                seqs,
                transcript,
                pake,
                code_digits: config.code_digits,
            },
            frame,
        )
    }
}

/// Waiting for the viewer's public key, nonce and commitment.
pub struct HostExpectViewerHello {
    channel: ChannelId,
    seqs: Seqs,
    transcript: Transcript,
    pake: Option<Spake2<Ed25519Group>>,
    code_digits: u32,
}

impl HostExpectViewerHello {
    /// Takes the viewer's hello and answers with a fresh session key,
    /// encrypted to the viewer's key and bound to the transcript so far.
    pub fn receive<R: RngCore + CryptoRng>(
        mut self,
        frame: &Frame,
        rng: &mut R,
    ) -> Result<(HostExpectReveal, Frame), HandshakeError> {
        let hello = match read_handshake_frame(frame, self.channel, &mut self.seqs)? {
            HandshakeMessage::ViewerHello(h) => h,
            other => {
                return Err(HandshakeError::UnexpectedMessage {
                    expected: "ViewerHello",
                    got: other.name(),
                });
            }
        };
        if hello.protocol != HANDSHAKE_PROTOCOL {
            return Err(HandshakeError::ProtocolMismatch {
                peer: hello.protocol,
                ours: HANDSHAKE_PROTOCOL,
            });
        }
        self.transcript.add(frame);

        let pake_key = match (self.pake, hello.pake) {
            (Some(state), Some(msg)) => Some(Zeroizing::new(
                state.finish(&msg).map_err(|_| HandshakeError::BadPake)?,
            )),
            (Some(_), None) => return Err(HandshakeError::PasswordRequired),
            (None, Some(_)) => {
                return Err(HandshakeError::Malformed(
                    "password exchange sent, but this session has no password".into(),
                ));
            }
            (None, None) => None,
        };

        let public_key = RsaPublicKey::from_public_key_der(&hello.public_key)
            .map_err(|e| HandshakeError::BadPublicKey(e.to_string()))?;
        let bits = public_key.size() * 8;
        if !RSA_BITS.contains(&bits) {
            return Err(HandshakeError::BadPublicKey(format!(
                "{bits}-bit key; {}–{} bits required",
                RSA_BITS.start(),
                RSA_BITS.end()
            )));
        }

        let mut session_key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(session_key.as_mut());
        let mut plaintext = Zeroizing::new([0u8; 64]);
        plaintext[..32].copy_from_slice(session_key.as_ref());
        plaintext[32..].copy_from_slice(&self.transcript.hash());
        let wrapped_key = crate::crypto::oaep_wrap(&public_key, rng, plaintext.as_ref())
            .map_err(|e| HandshakeError::BadPublicKey(e.to_string()))?;

        let msg = HandshakeMessage::KeyTransport(KeyTransport { wrapped_key });
        let out = write_handshake_frame(&msg, self.channel, &mut self.seqs);
        self.transcript.add(&out);
        Ok((
            HostExpectReveal {
                channel: self.channel,
                seqs: self.seqs,
                transcript: self.transcript,
                session_key,
                pake_key,
                commitment: hello.commitment,
                code_digits: self.code_digits,
            },
            out,
        ))
    }
}

/// Waiting for the viewer to reveal the value it committed to.
pub struct HostExpectReveal {
    channel: ChannelId,
    seqs: Seqs,
    transcript: Transcript,
    session_key: Zeroizing<[u8; 32]>,
    pake_key: Option<Zeroizing<Vec<u8>>>,
    commitment: [u8; 32],
    code_digits: u32,
}

impl HostExpectReveal {
    /// Checks the revealed value against the commitment and derives keys
    /// and code.
    pub fn receive(mut self, frame: &Frame) -> Result<HostExpectFinished, HandshakeError> {
        let reveal = match read_handshake_frame(frame, self.channel, &mut self.seqs)? {
            HandshakeMessage::Reveal(r) => r,
            other => {
                return Err(HandshakeError::UnexpectedMessage {
                    expected: "Reveal",
                    got: other.name(),
                });
            }
        };
        if !bool::from(commitment(&reveal.secret).ct_eq(&self.commitment)) {
            return Err(HandshakeError::CommitmentMismatch);
        }
        self.transcript.add(frame);
        let transcript = self.transcript.hash();
        let schedule = KeySchedule::new(
            &transcript,
            &self.session_key,
            self.pake_key.as_deref().map(|k| k.as_slice()),
        );
        Ok(HostExpectFinished {
            channel: self.channel,
            code: schedule.auth_code(self.code_digits),
            sealer: Sealer::new(
                schedule.traffic_key(Direction::HostToViewer),
                self.channel,
                self.seqs.send,
            ),
            opener: Opener::new(
                schedule.traffic_key(Direction::ViewerToHost),
                self.channel,
                self.seqs.recv,
            ),
            path_key: schedule.path_key(),
            transcript,
        })
    }
}

/// Keys are derived; waiting for the viewer to prove it holds them.
pub struct HostExpectFinished {
    channel: ChannelId,
    code: AuthCode,
    sealer: Sealer,
    opener: Opener,
    path_key: crate::direct::PathKey,
    transcript: [u8; 32],
}

impl HostExpectFinished {
    pub fn code(&self) -> AuthCode {
        self.code
    }

    /// Verifies the viewer's sealed Finished (which also carries its display
    /// name, so the relay never sees it) and answers with ours. Only after
    /// this may application data flow.
    pub fn receive(mut self, frame: Frame) -> Result<(Established, Frame), HandshakeError> {
        if frame.header.frame_type == FrameType::Handshake {
            let mut seqs = Seqs {
                send: 0,
                recv: frame.header.seq,
            };
            read_handshake_frame(&frame, self.channel, &mut seqs)?;
            return Err(HandshakeError::UnexpectedMessage {
                expected: "Finished",
                got: "a handshake message",
            });
        }
        let finished = self.opener.open(frame)?;
        let (confirm, name) = finished.split_at(finished.len().min(32));
        if !bool::from(confirm.ct_eq(&self.transcript)) {
            return Err(HandshakeError::KeyConfirmationFailed);
        }
        let viewer_name = parse_name(name)?;
        let ours = self
            .sealer
            .seal(&self.transcript)
            .map_err(HandshakeError::from)?;
        Ok((
            Established {
                sealer: self.sealer,
                opener: self.opener,
                code: self.code,
                peer_name: viewer_name,
                channel: self.channel,
                path_key: self.path_key,
            },
            ours,
        ))
    }
}

/// Reads the viewer's display name from its Finished.
fn parse_name(bytes: &[u8]) -> Result<String, HandshakeError> {
    let name = std::str::from_utf8(bytes)
        .map_err(|_| HandshakeError::Malformed("viewer name is not UTF-8".into()))?;
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(HandshakeError::Malformed("viewer name too long".into()));
    }
    if name.chars().any(char::is_control) {
        return Err(HandshakeError::Malformed(
            "viewer name contains control characters".into(),
        ));
    }
    Ok(name.to_owned())
}
