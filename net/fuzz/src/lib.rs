//! What the fuzz targets share: a fixed viewer key, deterministic random
//! numbers, and a recording of one honest handshake.
//!
//! Fuzzing needs the same input to take the same path every time, so both
//! peers draw from ChaCha generators with fixed seeds instead of the OS.
//! With those, an honest handshake is the same byte for byte on every run:
//! a target can replay the recorded frames of one side to drive the other
//! side deep into its states (and into the record layer) without doing RSA
//! work per input beyond what the protocol itself does.

use fernsicht_net::frame::{ChannelId, Frame};
use fernsicht_net::handshake::{HandshakeConfig, HostHandshake, ViewerHandshake, ViewerKey};
use fernsicht_net::message::{ByeReason, Message, Permission};
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use rsa::RsaPrivateKey;
use rsa::pkcs8::DecodePrivateKey;
use std::sync::OnceLock;

/// The channel every fuzzed handshake runs on.
pub const CHANNEL: ChannelId = ChannelId(1);
/// The viewer's display name in every fuzzed handshake.
pub const NAME: &str = "fuzz viewer";
/// The session password when a target asks for one.
pub const PASSWORD: &str = "fuzz password";

/// A fixed RSA-2048 key (PKCS#8 DER), made with `openssl genpkey` for fuzzing
/// only. Generating one per process would be slow under instrumentation and
/// would make every run different.
const VIEWER_KEY_DER: &[u8] = include_bytes!("../keys/viewer-rsa2048.pk8.der");

pub fn viewer_key() -> ViewerKey {
    static KEY: OnceLock<ViewerKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let private = RsaPrivateKey::from_pkcs8_der(VIEWER_KEY_DER).expect("the fuzz key parses");
        ViewerKey::from_private(private).expect("the fuzz key is usable")
    })
    .clone()
}

pub fn host_rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(0x4f57)
}

pub fn viewer_rng() -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(0x5657)
}

pub fn config(password: bool) -> HandshakeConfig {
    HandshakeConfig::with_password(password.then_some(PASSWORD))
}

/// Application messages each side sends after the handshake in the
/// recording, in order.
pub fn host_messages() -> [Message; 2] {
    [
        Message::Allowed {
            permission: Permission::Control,
        },
        Message::Chat {
            text: "hallo".into(),
        },
    ]
}

pub fn viewer_messages() -> [Message; 2] {
    [
        Message::Ping { id: 7 },
        Message::Bye {
            reason: ByeReason::ViewerLeft,
        },
    ]
}

/// Every frame of one honest session, per direction. The sequence number of
/// each frame is its index: handshake frames first (three each way), then
/// the sealed application messages.
#[derive(Debug, Clone)]
pub struct Recording {
    pub to_viewer: Vec<Frame>,
    pub to_host: Vec<Frame>,
}

/// Number of handshake frames in each direction of a recording.
pub const HANDSHAKE_FRAMES: usize = 3;

/// The honest session with or without the password, recorded once per
/// process.
pub fn recording(password: bool) -> &'static Recording {
    static RECORDINGS: OnceLock<[Recording; 2]> = OnceLock::new();
    &RECORDINGS.get_or_init(|| [record(false), record(true)])[usize::from(password)]
}

fn record(password: bool) -> Recording {
    let config = config(password);
    let (mut host_rng, mut viewer_rng) = (host_rng(), viewer_rng());
    let (host, hello) = HostHandshake::start(&config, CHANNEL, &mut host_rng);
    let viewer = ViewerHandshake::start(&config, NAME, viewer_key(), CHANNEL);
    let (viewer, viewer_hello) = viewer
        .receive(&hello, &mut viewer_rng)
        .expect("honest viewer hello");
    let (host, key) = host
        .receive(&viewer_hello, &mut host_rng)
        .expect("honest key transport");
    let (viewer, [reveal, viewer_finished]) = viewer.receive(&key).expect("honest reveal");
    let host = host.receive(&reveal).expect("honest reveal accepted");
    let (mut host, host_finished) = host
        .receive(viewer_finished.clone())
        .expect("honest viewer finished");
    let mut viewer = viewer
        .receive(host_finished.clone())
        .expect("honest host finished");

    let mut to_viewer = vec![hello, key, host_finished];
    for m in host_messages() {
        to_viewer.push(host.sealer.seal(&m.encode()).expect("sealing"));
    }
    let mut to_host = vec![viewer_hello, reveal, viewer_finished];
    for m in viewer_messages() {
        to_host.push(viewer.sealer.seal(&m.encode()).expect("sealing"));
    }
    Recording { to_viewer, to_host }
}

/// Reads back-to-back frames from the front of `bytes`, stopping at the
/// first incomplete or invalid one.
pub fn split_frames(mut bytes: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    while let Ok(Some((frame, used))) = Frame::decode(bytes) {
        frames.push(frame);
        bytes = &bytes[used..];
    }
    frames
}

/// The wire bytes of several frames back to back.
pub fn concat(frames: &[Frame]) -> Vec<u8> {
    frames.iter().flat_map(Frame::encode).collect()
}
