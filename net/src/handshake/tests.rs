//! Both sides of the handshake stepped in memory.

use super::*;
use crate::frame::{Frame, FrameType};
use rand::rngs::OsRng;
use std::sync::OnceLock;

/// RSA key generation is slow; the tests share two keys (the protocol uses
/// a fresh one per session, which these tests do not need to show).
fn key(which: usize) -> ViewerKey {
    static KEYS: OnceLock<[ViewerKey; 2]> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            ViewerKey::generate(&mut OsRng).unwrap(),
            ViewerKey::generate(&mut OsRng).unwrap(),
        ]
    })[which]
        .clone()
}

const CH: ChannelId = ChannelId(1);

struct Run {
    codes: (AuthCode, AuthCode),
    host: Result<(Established, Frame), HandshakeError>,
    viewer: Result<Established, HandshakeError>,
}

fn config(password: Option<&str>) -> HandshakeConfig {
    HandshakeConfig::with_password(password)
}

/// Runs a whole handshake, with `tamper` applied to every frame in flight
/// (index, frame).
fn run(
    host_pw: Option<&str>,
    viewer_pw: Option<&str>,
    mut tamper: impl FnMut(usize, &mut Frame),
) -> Result<Run, HandshakeError> {
    let mut i = 0;
    let mut wire = |mut f: Frame| {
        tamper(i, &mut f);
        i += 1;
        f
    };
    let (host, hello) = HostHandshake::start(&config(host_pw), CH, &mut OsRng);
    let viewer = ViewerHandshake::start(&config(viewer_pw), "Helga", key(0), CH);
    let (viewer, vhello) = viewer.receive(&wire(hello), &mut OsRng)?;
    let (host, kt) = host.receive(&wire(vhello), &mut OsRng)?;
    let (viewer, [reveal, vfin]) = viewer.receive(&wire(kt))?;
    let host = host.receive(&wire(reveal))?;
    let codes = (host.code(), viewer.code());
    let host = host.receive(wire(vfin));
    let viewer = match &host {
        Ok((_, hfin)) => viewer.receive(wire(hfin.clone())),
        Err(_) => Err(HandshakeError::Aborted(AbortReason::KeyConfirmationFailed)),
    };
    Ok(Run {
        codes,
        host,
        viewer,
    })
}

#[test]
fn honest_handshake_confirms_keys_and_codes_match() {
    for pw in [None, Some("correct horse")] {
        let run = run(pw, pw, |_, _| {}).unwrap();
        assert_eq!(run.codes.0, run.codes.1);
        let (mut host, _) = run.host.unwrap();
        let mut viewer = run.viewer.unwrap();
        assert_eq!(host.code, viewer.code);
        assert_eq!(host.code.to_string().len(), 6);
        assert_eq!(host.peer_name, "Helga");
        let f = host.sealer.seal(b"to viewer").unwrap();
        assert_eq!(viewer.opener.open(f).unwrap(), b"to viewer");
        let f = viewer.sealer.seal(b"to host").unwrap();
        assert_eq!(host.opener.open(f).unwrap(), b"to host");
    }
}

#[test]
fn wrong_password_fails_key_confirmation() {
    let run = run(Some("right"), Some("wrong"), |_, _| {}).unwrap();
    assert_ne!(run.codes.0, run.codes.1, "1 in a million: rerun");
    assert!(matches!(
        run.host,
        Err(HandshakeError::KeyConfirmationFailed)
    ));
    assert!(run.viewer.is_err());
}

#[test]
fn password_presence_must_agree() {
    assert!(matches!(
        run(Some("pw"), None, |_, _| {}),
        Err(HandshakeError::PasswordRequired)
    ));
    assert!(matches!(
        run(None, Some("pw"), |_, _| {}),
        Err(HandshakeError::PasswordNotRequested)
    ));
}

#[test]
fn stripping_the_password_request_is_refused() {
    // The relay removes the host's SPAKE2 message from its hello.
    let result = run(Some("pw"), Some("pw"), |i, f| {
        if i == 0 {
            let mut msg = HandshakeMessage::decode(&f.payload).unwrap();
            if let HandshakeMessage::HostHello(h) = &mut msg {
                h.pake = None;
            }
            f.payload = msg.encode();
            f.header.len = f.payload.len() as u32;
        }
    });
    assert!(matches!(result, Err(HandshakeError::PasswordNotRequested)));
}

#[test]
fn every_flipped_bit_in_the_handshake_is_caught() {
    // Flip one bit in each frame in turn, at a few positions of header and
    // payload: the handshake must fail somewhere, never complete.
    for frame_index in 0..5 {
        for pos in [0usize, 3, 9, 17, 40, 100, 200, 300] {
            let result = run(None, None, |i, f| {
                if i == frame_index {
                    let mut bytes = f.encode();
                    let p = pos % bytes.len();
                    bytes[p] ^= 0x10;
                    match Frame::decode_exact(&bytes) {
                        Ok(g) => *f = g,
                        // Header no longer parses: deliver garbage type.
                        Err(_) => f.header.frame_type = FrameType::Control,
                    }
                }
            });
            let completed = matches!(&result, Ok(r) if r.host.is_ok() && r.viewer.is_ok());
            assert!(
                !completed,
                "bit flip in frame {frame_index} at byte {pos} went unnoticed"
            );
        }
    }
}

#[test]
fn duplicated_or_reordered_handshake_frames_are_refused() {
    let (host, hello) = HostHandshake::start(&config(None), CH, &mut OsRng);
    let viewer = ViewerHandshake::start(&config(None), "v", key(0), CH);
    let (viewer, vhello) = viewer.receive(&hello, &mut OsRng).unwrap();
    let (host, kt) = host.receive(&vhello, &mut OsRng).unwrap();
    // The host hello arrives again instead of the key message.
    assert!(matches!(
        viewer.receive(&hello),
        Err(HandshakeError::OutOfOrder {
            expected: 1,
            got: 0
        })
    ));
    // The viewer hello arrives again instead of the reveal.
    assert!(matches!(
        host.receive(&vhello),
        Err(HandshakeError::OutOfOrder {
            expected: 1,
            got: 0
        })
    ));
    let _ = kt;
}

#[test]
fn replayed_viewer_side_is_refused_by_a_new_host() {
    // Record a complete honest handshake's viewer frames...
    let (host, hello) = HostHandshake::start(&config(None), CH, &mut OsRng);
    let viewer = ViewerHandshake::start(&config(None), "v", key(0), CH);
    let (viewer, vhello) = viewer.receive(&hello, &mut OsRng).unwrap();
    let (host, kt) = host.receive(&vhello, &mut OsRng).unwrap();
    let (_, [reveal, vfin]) = viewer.receive(&kt).unwrap();
    host.receive(&reveal)
        .unwrap()
        .receive(vfin.clone())
        .unwrap();

    // ...and replay them to a fresh host: its new nonce and new key make the
    // recorded Finished worthless.
    let (host2, _) = HostHandshake::start(&config(None), CH, &mut OsRng);
    let (host2, _) = host2.receive(&vhello, &mut OsRng).unwrap();
    let host2 = host2.receive(&reveal).unwrap();
    assert!(matches!(
        host2.receive(vfin),
        Err(HandshakeError::KeyConfirmationFailed)
    ));
}

#[test]
fn replayed_host_side_is_refused_by_a_new_viewer() {
    let (host, hello) = HostHandshake::start(&config(None), CH, &mut OsRng);
    let viewer = ViewerHandshake::start(&config(None), "v", key(0), CH);
    let (_, vhello) = viewer.receive(&hello, &mut OsRng).unwrap();
    let (_, kt) = host.receive(&vhello, &mut OsRng).unwrap();

    // A new viewer (new key) gets the recorded host frames.
    let viewer2 = ViewerHandshake::start(&config(None), "v", key(1), CH);
    let (viewer2, _) = viewer2.receive(&hello, &mut OsRng).unwrap();
    assert!(matches!(
        viewer2.receive(&kt),
        Err(HandshakeError::KeyUnwrapFailed)
    ));
    // The same viewer key but a fresh handshake: the binding catches it.
    let viewer3 = ViewerHandshake::start(&config(None), "v", key(0), CH);
    let (viewer3, _) = viewer3.receive(&hello, &mut OsRng).unwrap();
    assert!(matches!(
        viewer3.receive(&kt),
        Err(HandshakeError::KeyBindingMismatch)
    ));
}

#[test]
fn reveal_that_does_not_match_the_commitment_is_refused() {
    let result = run(None, None, |i, f| {
        if i == 3 {
            let mut msg = HandshakeMessage::decode(&f.payload).unwrap();
            if let HandshakeMessage::Reveal(r) = &mut msg {
                r.secret[0] ^= 1;
            }
            f.payload = msg.encode();
        }
    });
    assert!(matches!(result, Err(HandshakeError::CommitmentMismatch)));
}

#[test]
fn abort_is_reported_with_its_reason() {
    let viewer = ViewerHandshake::start(&config(None), "v", key(0), CH);
    let abort = abort_frame(AbortReason::RateLimited, CH, 0);
    assert!(matches!(
        viewer.receive(&abort, &mut OsRng),
        Err(HandshakeError::Aborted(AbortReason::RateLimited))
    ));
    assert_eq!(as_abort(&abort), Some(AbortReason::RateLimited));
}

#[test]
fn code_length_is_a_parameter() {
    let cfg = HandshakeConfig {
        password: None,
        code_digits: 1,
    };
    let (host, hello) = HostHandshake::start(&cfg, CH, &mut OsRng);
    let viewer = ViewerHandshake::start(&cfg, "v", key(0), CH);
    let (viewer, vhello) = viewer.receive(&hello, &mut OsRng).unwrap();
    let (_, kt) = host.receive(&vhello, &mut OsRng).unwrap();
    let (viewer, _) = viewer.receive(&kt).unwrap();
    assert!(viewer.code().value() < 10);
    assert_eq!(viewer.code().to_string().len(), 1);
}

#[test]
fn names_with_control_characters_are_cleaned_and_travel_sealed() {
    let (host, hello) = HostHandshake::start(&config(None), CH, &mut OsRng);
    let viewer = ViewerHandshake::start(&config(None), "Eve\nsession 12345", key(0), CH);
    let (viewer, vhello) = viewer.receive(&hello, &mut OsRng).unwrap();
    let (host, kt) = host.receive(&vhello, &mut OsRng).unwrap();
    let (_, [reveal, vfin]) = viewer.receive(&kt).unwrap();
    for f in [&hello, &vhello, &kt, &reveal, &vfin] {
        let bytes = f.encode();
        assert!(!bytes.windows(3).any(|w| w == b"Eve"), "name in clear");
    }
    let (est, _) = host.receive(&reveal).unwrap().receive(vfin).unwrap();
    assert_eq!(est.peer_name, "Evesession 12345");
}
