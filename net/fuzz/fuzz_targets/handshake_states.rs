//! Arbitrary frames fed to each side's handshake states in turn and then to
//! its record `Opener`, as a hostile relay or peer could send them.
//!
//! Input: one mode byte (bit 0: attack the host instead of the viewer; bit
//! 1: the session has a password), then frames back to back. Never a panic.
//! Both peers draw fixed random numbers, so the recorded honest frames of
//! the other side (the seeds) lead all the way through; the property is
//! that nothing else does: a side only completes its handshake on exactly
//! the honest frames, and its `Opener` only accepts exactly the frames the
//! honest peer sealed, with their plaintext.

#![no_main]

use fernsicht_net::frame::Frame;
use fernsicht_net::handshake::{Established, HostHandshake, ViewerHandshake, as_abort};
use fernsicht_net::message::Message;
use fernsicht_net_fuzz::{
    CHANNEL, HANDSHAKE_FRAMES, NAME, config, host_rng, recording, split_frames, viewer_key,
    viewer_rng,
};
use libfuzzer_sys::fuzz_target;

/// Longest frame sequence worth feeding: the handshake plus a few records.
const MAX_FRAMES: usize = 16;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let attack_host = mode & 1 != 0;
    let password = mode & 2 != 0;
    let mut frames = split_frames(rest);
    frames.truncate(MAX_FRAMES);
    for f in &frames {
        // Must never panic on anything either.
        let _ = as_abort(f);
    }
    let recording = recording(password);
    let (honest_in, honest_out) = if attack_host {
        (&recording.to_host, &recording.to_viewer)
    } else {
        (&recording.to_viewer, &recording.to_host)
    };
    let established = if attack_host {
        host_side(password, &frames)
    } else {
        viewer_side(password, &frames)
    };
    let Some((mut established, sent)) = established else {
        return;
    };

    // Only the honest peer's handshake gets this far, and we answered it
    // honestly.
    assert_eq!(&frames[..HANDSHAKE_FRAMES], &honest_in[..HANDSHAKE_FRAMES]);
    assert_eq!(sent, honest_out[..sent.len()]);

    for frame in &frames[HANDSHAKE_FRAMES..] {
        let seq = established.opener.next_seq();
        let honest = usize::try_from(seq).ok().and_then(|i| honest_in.get(i));
        match established.opener.open(frame.clone()) {
            Ok(plain) => {
                assert_eq!(Some(frame), honest, "the opener accepted a forged frame");
                let msg = Message::decode(&plain).expect("honest frames carry messages");
                assert_eq!(Message::decode(&msg.encode()).ok(), Some(msg));
            }
            Err(_) => assert_ne!(Some(frame), honest, "the opener refused an honest frame"),
        }
    }
});

/// Runs the viewer's states on `frames`; returns the established session and
/// what the viewer sent, if the handshake completed.
fn viewer_side(password: bool, frames: &[Frame]) -> Option<(Established, Vec<Frame>)> {
    let mut rng = viewer_rng();
    let mut frames = frames.iter();
    let state = ViewerHandshake::start(&config(password), NAME, viewer_key(), CHANNEL);
    let (state, hello) = state.receive(frames.next()?, &mut rng).ok()?;
    let (state, [reveal, finished]) = state.receive(frames.next()?).ok()?;
    let established = state.receive(frames.next()?.clone()).ok()?;
    Some((established, vec![hello, reveal, finished]))
}

/// Runs the host's states on `frames`, likewise.
fn host_side(password: bool, frames: &[Frame]) -> Option<(Established, Vec<Frame>)> {
    let mut rng = host_rng();
    let mut frames = frames.iter();
    let (state, hello) = HostHandshake::start(&config(password), CHANNEL, &mut rng);
    let (state, key) = state.receive(frames.next()?, &mut rng).ok()?;
    let state = state.receive(frames.next()?).ok()?;
    let (established, finished) = state.receive(frames.next()?.clone()).ok()?;
    Some((established, vec![hello, key, finished]))
}
