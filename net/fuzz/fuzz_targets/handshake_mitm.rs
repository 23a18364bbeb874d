//! A relay in the middle that tampers with a whole session as the fuzzer
//! tells it: per frame it delivers, flips a bit, truncates, replaces the
//! frame with other bytes, or replays an earlier frame of either direction;
//! and the two sides may hold different passwords.
//!
//! Properties, beyond "never a panic":
//! - a side completes its handshake only if every frame it depended on
//!   arrived unaltered and the passwords agree (the host depends on the
//!   first five frames, the viewer on all six);
//! - an untouched session with agreeing passwords always completes, and both
//!   sides show the same code;
//! - afterwards, an `Opener` accepts a frame exactly when it is the next
//!   frame the other side sealed, unaltered, and then returns its message.

#![no_main]

use fernsicht_net::frame::Frame;
use fernsicht_net::handshake::{Established, HandshakeConfig, HostHandshake, ViewerHandshake};
use fernsicht_net::message::Message;
use fernsicht_net_fuzz::{CHANNEL, NAME, PASSWORD, host_rng, viewer_key, viewer_rng};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;

#[derive(Debug, Arbitrary)]
enum Tamper {
    Deliver,
    FlipBit(u32),
    Truncate(u16),
    Replace(Vec<u8>),
    /// Deliver an earlier frame (of either direction) instead.
    Replay(u8),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
enum Passwords {
    Neither,
    Same,
    HostOnly,
    ViewerOnly,
    Different,
}

impl Passwords {
    fn configs(self) -> (HandshakeConfig, HandshakeConfig) {
        let (host, viewer) = match self {
            Passwords::Neither => (None, None),
            Passwords::Same => (Some(PASSWORD), Some(PASSWORD)),
            Passwords::HostOnly => (Some(PASSWORD), None),
            Passwords::ViewerOnly => (None, Some(PASSWORD)),
            Passwords::Different => (Some(PASSWORD), Some("another password")),
        };
        (
            HandshakeConfig::with_password(host),
            HandshakeConfig::with_password(viewer),
        )
    }

    fn agree(self) -> bool {
        matches!(self, Passwords::Neither | Passwords::Same)
    }
}

#[derive(Debug, Arbitrary)]
struct Script {
    passwords: Passwords,
    /// For the six handshake frames, in the order they are sent.
    handshake: [Tamper; 6],
    /// Application messages after the handshake: direction (true: host to
    /// viewer) and what happens to the frame.
    records: Vec<(bool, Tamper)>,
}

/// Longest run of application messages worth trying per input.
const MAX_RECORDS: usize = 24;

/// The relay: carries frames and remembers whether it changed any.
#[derive(Default)]
struct Wire {
    history: Vec<Vec<u8>>,
    /// Per delivered frame: did it arrive as sent?
    intact: Vec<bool>,
}

impl Wire {
    /// What the receiver gets for `sent`, or `None` when the tampered bytes
    /// are not one frame (the receiver would drop the connection).
    fn carry(&mut self, sent: &Frame, tamper: &Tamper) -> Option<Frame> {
        let original = sent.encode();
        self.history.push(original.clone());
        let mut bytes = original.clone();
        match tamper {
            Tamper::Deliver => {}
            Tamper::FlipBit(bit) => {
                let bit = *bit as usize % (bytes.len() * 8);
                bytes[bit / 8] ^= 1 << (bit % 8);
            }
            Tamper::Truncate(len) => bytes.truncate(usize::from(*len)),
            Tamper::Replace(other) => bytes.clone_from(other),
            Tamper::Replay(i) => {
                bytes.clone_from(&self.history[usize::from(*i) % self.history.len()])
            }
        }
        self.intact.push(bytes == original);
        Frame::decode_exact(&bytes).ok()
    }

    fn intact(&self, first: usize) -> bool {
        self.intact.len() >= first && self.intact[..first].iter().all(|&ok| ok)
    }
}

/// Frames one side sealed, by sequence number: (wire bytes, message).
type Sent = HashMap<u64, (Vec<u8>, Vec<u8>)>;

struct Handshake {
    host: Option<Established>,
    viewer: Option<Established>,
}

/// Runs the handshake through the wire. A side's result stays `None`
/// unless it completed; the run stops at the first failure.
fn handshake(script: &Script, wire: &mut Wire, done: &mut Handshake) -> Option<()> {
    let (host_config, viewer_config) = script.passwords.configs();
    let (mut host_rng, mut viewer_rng) = (host_rng(), viewer_rng());
    let t = &script.handshake;
    let (host, hello) = HostHandshake::start(&host_config, CHANNEL, &mut host_rng);
    let viewer = ViewerHandshake::start(&viewer_config, NAME, viewer_key(), CHANNEL);
    let (viewer, viewer_hello) = viewer
        .receive(&wire.carry(&hello, &t[0])?, &mut viewer_rng)
        .ok()?;
    let (host, key) = host
        .receive(&wire.carry(&viewer_hello, &t[1])?, &mut host_rng)
        .ok()?;
    let (viewer, [reveal, viewer_finished]) = viewer.receive(&wire.carry(&key, &t[2])?).ok()?;
    let host = host.receive(&wire.carry(&reveal, &t[3])?).ok()?;
    let (host, host_finished) = host.receive(wire.carry(&viewer_finished, &t[4])?).ok()?;
    done.host = Some(host);
    done.viewer = Some(viewer.receive(wire.carry(&host_finished, &t[5])?).ok()?);
    Some(())
}

fuzz_target!(|script: Script| {
    let mut wire = Wire::default();
    let mut done = Handshake {
        host: None,
        viewer: None,
    };
    let _ = handshake(&script, &mut wire, &mut done);
    let agree = script.passwords.agree();

    if done.host.is_some() {
        assert!(agree, "host completed with disagreeing passwords");
        assert!(wire.intact(5), "host completed on a tampered handshake");
    }
    if done.viewer.is_some() {
        assert!(agree, "viewer completed with disagreeing passwords");
        assert!(wire.intact(6), "viewer completed on a tampered handshake");
    }
    if agree && wire.intact(6) {
        assert!(
            done.host.is_some() && done.viewer.is_some(),
            "an honest handshake failed"
        );
    }
    let (Some(mut host), Some(mut viewer)) = (done.host, done.viewer) else {
        return;
    };
    assert_eq!(host.code, viewer.code);

    let mut sealed: [Sent; 2] = Default::default();
    for (i, (to_viewer, tamper)) in script.records.iter().take(MAX_RECORDS).enumerate() {
        let (from, to) = if *to_viewer {
            (&mut host, &mut viewer)
        } else {
            (&mut viewer, &mut host)
        };
        let message = Message::Chat {
            text: format!("message {i}"),
        }
        .encode();
        let frame = from.sealer.seal(&message).expect("sealing");
        let book = &mut sealed[usize::from(*to_viewer)];
        book.insert(frame.header.seq, (frame.encode(), message));
        let Some(delivered) = wire.carry(&frame, tamper) else {
            continue;
        };
        let expected = book.get(&to.opener.next_seq());
        let is_next = expected.is_some_and(|(bytes, _)| *bytes == delivered.encode());
        match to.opener.open(delivered) {
            Ok(plain) => {
                assert!(
                    is_next,
                    "the opener accepted a frame that is not the next one sealed"
                );
                assert_eq!(Some(&plain), expected.map(|(_, m)| m));
            }
            Err(e) => assert!(!is_next, "the opener refused the next sealed frame: {e}"),
        }
    }
});
