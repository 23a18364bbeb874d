//! The viewer's side of the handshake.

use super::host::{HOST_IDENTITY, VIEWER_IDENTITY};
use super::messages::{HANDSHAKE_PROTOCOL, Reveal, ViewerHello};
use super::schedule::{AuthCode, KeySchedule};
use super::transcript::{Transcript, commitment};
use super::{
    Established, HandshakeConfig, HandshakeError, HandshakeMessage, MAX_NAME_CHARS, Seqs,
    read_handshake_frame, write_handshake_frame,
};
use crate::frame::{ChannelId, Frame, FrameType};
use crate::record::{Direction, Opener, Sealer};
use rand::{CryptoRng, RngCore};
use rsa::RsaPrivateKey;
use rsa::pkcs8::EncodePublicKey;
use spake2::{Ed25519Group, Identity, Password, Spake2};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The viewer's RSA-2048 key pair. Generating one takes 0.1–0.4 s, so the
/// app makes it ahead of time, off the UI thread, and a fresh one for every
/// session: a key is used for one decryption only.
#[derive(Clone)]
pub struct ViewerKey {
    private: Arc<RsaPrivateKey>,
    public_der: Arc<Vec<u8>>,
}

impl ViewerKey {
    pub const BITS: usize = 2048;

    /// Generates a key pair. Slow: call it from a blocking thread.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Result<Self, rsa::Error> {
        Self::from_private(RsaPrivateKey::new(rng, Self::BITS)?)
    }

    pub fn from_private(private: RsaPrivateKey) -> Result<Self, rsa::Error> {
        let public_der = private
            .to_public_key()
            .to_public_key_der()
            .map_err(|e| rsa::Error::Pkcs8(rsa::pkcs8::Error::PublicKey(e)))?
            .into_vec();
        Ok(ViewerKey {
            private: Arc::new(private),
            public_der: Arc::new(public_der),
        })
    }

    /// The public key as sent to the host (SubjectPublicKeyInfo DER).
    pub fn public_der(&self) -> &[u8] {
        &self.public_der
    }
}

impl std::fmt::Debug for ViewerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ViewerKey(RSA-2048)")
    }
}

/// Entry point of the viewer's side.
pub struct ViewerHandshake;

impl ViewerHandshake {
    /// Prepares a handshake on the channel the relay gave this viewer; the
    /// host speaks first. `name` is shown to the host; it is cut to
    /// [`MAX_NAME_CHARS`] and stripped of control characters.
    pub fn start(
        config: &HandshakeConfig,
        name: &str,
        key: ViewerKey,
        channel: ChannelId,
    ) -> ViewerExpectHostHello {
        let name: String = name
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_NAME_CHARS)
            .collect();
        ViewerExpectHostHello {
            channel,
            seqs: Seqs::new(),
            transcript: Transcript::new(),
            password: config.password.clone(),
            code_digits: config.code_digits,
            name,
            key,
        }
    }
}

/// Waiting for the host's hello.
pub struct ViewerExpectHostHello {
    channel: ChannelId,
    seqs: Seqs,
    transcript: Transcript,
    password: Option<Zeroizing<String>>,
    code_digits: u32,
    name: String,
    key: ViewerKey,
}

impl ViewerExpectHostHello {
    /// Takes the host's hello and answers with our public key, our nonce and
    /// the commitment to a secret value we reveal later.
    pub fn receive<R: RngCore + CryptoRng>(
        mut self,
        frame: &Frame,
        rng: &mut R,
    ) -> Result<(ViewerExpectKey, Frame), HandshakeError> {
        let hello = match read_handshake_frame(frame, self.channel, &mut self.seqs)? {
            HandshakeMessage::HostHello(h) => h,
            other => {
                return Err(HandshakeError::UnexpectedMessage {
                    expected: "HostHello",
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

        let (pake_key, pake_msg) = match (&self.password, hello.pake) {
            (Some(pw), Some(host_msg)) => {
                let (state, msg) = Spake2::<Ed25519Group>::start_b_with_rng(
                    &Password::new(pw.as_bytes()),
                    &Identity::new(HOST_IDENTITY),
                    &Identity::new(VIEWER_IDENTITY),
                    &mut *rng,
                );
                let key = state
                    .finish(&host_msg)
                    .map_err(|_| HandshakeError::BadPake)?;
                (Some(Zeroizing::new(key)), Some(msg))
            }
            (None, Some(_)) => return Err(HandshakeError::PasswordRequired),
            // Never drop the password on the host's say-so: the request for
            // it may have been stripped by the relay.
            (Some(_), None) => return Err(HandshakeError::PasswordNotRequested),
            (None, None) => (None, None),
        };

        let mut nonce = [0u8; 32];
        rng.fill_bytes(&mut nonce);
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(secret.as_mut());
        let msg = HandshakeMessage::ViewerHello(ViewerHello {
            protocol: HANDSHAKE_PROTOCOL,
            public_key: self.key.public_der().to_vec(),
            nonce,
            commitment: commitment(&secret),
            pake: pake_msg,
        });
        let out = write_handshake_frame(&msg, self.channel, &mut self.seqs);
        self.transcript.add(&out);
        Ok((
            ViewerExpectKey {
                channel: self.channel,
                seqs: self.seqs,
                binding: self.transcript.hash(),
                transcript: self.transcript,
                pake_key,
                secret,
                code_digits: self.code_digits,
                key: self.key,
                name: self.name,
            },
            out,
        ))
    }
}

/// Waiting for the session key.
pub struct ViewerExpectKey {
    channel: ChannelId,
    seqs: Seqs,
    transcript: Transcript,
    /// Transcript hash the key message must be bound to.
    binding: [u8; 32],
    pake_key: Option<Zeroizing<Vec<u8>>>,
    secret: Zeroizing<[u8; 32]>,
    code_digits: u32,
    key: ViewerKey,
    name: String,
}

impl ViewerExpectKey {
    /// Unwraps the session key, then reveals the committed value and sends
    /// the sealed Finished. Returns the two frames to send, in order.
    pub fn receive(
        mut self,
        frame: &Frame,
    ) -> Result<(ViewerExpectFinished, [Frame; 2]), HandshakeError> {
        let transport = match read_handshake_frame(frame, self.channel, &mut self.seqs)? {
            HandshakeMessage::KeyTransport(k) => k,
            other => {
                return Err(HandshakeError::UnexpectedMessage {
                    expected: "KeyTransport",
                    got: other.name(),
                });
            }
        };
        let plaintext = Zeroizing::new(
            crate::crypto::oaep_unwrap(&self.key.private, &transport.wrapped_key)
                .map_err(|_| HandshakeError::KeyUnwrapFailed)?,
        );
        if plaintext.len() != 64 {
            return Err(HandshakeError::KeyUnwrapFailed);
        }
        if !bool::from(plaintext[32..].ct_eq(&self.binding)) {
            return Err(HandshakeError::KeyBindingMismatch);
        }
        let mut session_key = Zeroizing::new([0u8; 32]);
        session_key.copy_from_slice(&plaintext[..32]);
        self.transcript.add(frame);

        let reveal = write_handshake_frame(
            &HandshakeMessage::Reveal(Reveal {
                secret: *self.secret,
            }),
            self.channel,
            &mut self.seqs,
        );
        self.transcript.add(&reveal);
        let transcript = self.transcript.hash();
        let schedule = KeySchedule::new(
            &transcript,
            &session_key,
            self.pake_key.as_deref().map(|k| k.as_slice()),
        );
        let mut sealer = Sealer::new(
            schedule.traffic_key(Direction::ViewerToHost),
            self.channel,
            self.seqs.send,
        );
        // Finished proves we hold the keys; it also carries our name, sealed,
        // so that only the host learns who is connecting.
        let mut finished = transcript.to_vec();
        finished.extend_from_slice(self.name.as_bytes());
        let finished = sealer.seal(&finished)?;
        Ok((
            ViewerExpectFinished {
                channel: self.channel,
                code: schedule.auth_code(self.code_digits),
                sealer,
                opener: Opener::new(
                    schedule.traffic_key(Direction::HostToViewer),
                    self.channel,
                    self.seqs.recv,
                ),
                path_key: schedule.path_key(),
                transcript,
            },
            [reveal, finished],
        ))
    }
}

/// Keys are derived and our Finished is sent; waiting for the host's.
pub struct ViewerExpectFinished {
    channel: ChannelId,
    code: AuthCode,
    sealer: Sealer,
    opener: Opener,
    path_key: crate::direct::PathKey,
    transcript: [u8; 32],
}

impl ViewerExpectFinished {
    /// The code to read out to the host.
    pub fn code(&self) -> AuthCode {
        self.code
    }

    pub fn receive(mut self, frame: Frame) -> Result<Established, HandshakeError> {
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
        if !bool::from(finished.as_slice().ct_eq(&self.transcript)) {
            return Err(HandshakeError::KeyConfirmationFailed);
        }
        Ok(Established {
            sealer: self.sealer,
            opener: self.opener,
            code: self.code,
            peer_name: String::new(),
            channel: self.channel,
            path_key: self.path_key,
        })
    }
}
