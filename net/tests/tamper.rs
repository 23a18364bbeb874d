//! Frames altered between relay and viewer, or replayed: every change ends
//! the session with a clear error instead of being accepted.
#![allow(clippy::unwrap_used)] // integration tests: a failed step is a failed test

mod common;

use common::*;
use fernsicht_net::client::{HostEvent, SessionEnd, ViewerEvent};
use fernsicht_net::message::{Message, Permission};
use std::sync::{Arc, Mutex};

const SEALED: u8 = 3;
const HANDSHAKE: u8 = 2;

fn seq(frame: &[u8]) -> u64 {
    u64::from_be_bytes(frame[4..12].try_into().unwrap())
}

/// Host→viewer sealed frames: 2 is the host's Finished, 3 the consent, 4
/// and 5 the two chat lines the test sends.
fn is_sealed_down(dir: Direction, frame: &[u8], s: u64) -> bool {
    dir == Direction::Down && frame[1] == SEALED && seq(frame) == s
}

/// Runs a session with the viewer behind a tap that applies `alter`, sends
/// two chat lines from the host and returns what the viewer saw after it
/// was allowed.
async fn session_through(alter: Alter) -> Vec<ViewerEvent> {
    let relay = relay().await;
    let tap = tap_altering(&relay, Some(alter)).await;
    let mut host = host(&relay.target(), None).await;
    let mut v = viewer(&tap.target(), host.number, "v", None).await;
    let HostEvent::ViewerRequest { viewer: id, .. } = host_request(&mut host).await else {
        unreachable!()
    };
    host.handle.decide(id, Some(Permission::Control));
    until(&mut v.events, |e| matches!(e, ViewerEvent::Allowed(_))).await;
    host.handle.broadcast(&Message::Chat { text: "one".into() });
    host.handle.broadcast(&Message::Chat { text: "two".into() });
    let mut events = Vec::new();
    loop {
        let e = next(&mut v.events).await;
        let done = matches!(e, ViewerEvent::Ended(_));
        events.push(e);
        if done {
            return events;
        }
        if events.len() == 2 && events.iter().all(|e| matches!(e, ViewerEvent::Message(_))) {
            return events;
        }
    }
}

fn failure(events: &[ViewerEvent]) -> String {
    match events.last() {
        Some(ViewerEvent::Ended(SessionEnd::Failed(why))) => why.clone(),
        other => panic!("the session went on after tampering: {other:?} in {events:?}"),
    }
}

fn chat(text: &str) -> ViewerEvent {
    ViewerEvent::Message(Message::Chat { text: text.into() })
}

#[tokio::test]
async fn untouched_session_delivers_both_lines() {
    let events = session_through(Arc::new(|_, _| true)).await;
    assert_eq!(events, vec![chat("one"), chat("two")]);
}

#[tokio::test]
async fn a_flipped_bit_is_rejected() {
    let events = session_through(Arc::new(|dir, f: &mut Vec<u8>| {
        if is_sealed_down(dir, f, 4) {
            let last = f.len() - 1;
            f[last - 20] ^= 0x01;
        }
        true
    }))
    .await;
    let why = failure(&events);
    assert!(why.contains("failed authentication"), "{why}");
    assert!(!events.contains(&chat("one")));
}

#[tokio::test]
async fn a_flipped_header_bit_is_rejected() {
    // The clear header is associated data: the relay cannot renumber a
    // frame either. Bit 0 of the sequence number's last byte: 4 becomes 5.
    let events = session_through(Arc::new(|dir, f: &mut Vec<u8>| {
        if is_sealed_down(dir, f, 4) {
            f[11] ^= 0x01;
        }
        true
    }))
    .await;
    let why = failure(&events);
    assert!(why.contains("out of order"), "{why}");
}

#[tokio::test]
async fn a_duplicated_frame_is_rejected() {
    let events = session_through(Arc::new(|dir, f: &mut Vec<u8>| {
        if is_sealed_down(dir, f, 4) {
            let copy = f.clone();
            f.extend_from_slice(&copy);
        }
        true
    }))
    .await;
    assert_eq!(events[0], chat("one"));
    let why = failure(&events);
    assert!(why.contains("expected sequence number 5, got 4"), "{why}");
}

#[tokio::test]
async fn reordered_frames_are_rejected() {
    let held: Arc<Mutex<Option<Vec<u8>>>> = Arc::default();
    let events = session_through(Arc::new(move |dir, f: &mut Vec<u8>| {
        if is_sealed_down(dir, f, 4) {
            *held.lock().unwrap() = Some(std::mem::take(f));
        } else if is_sealed_down(dir, f, 5)
            && let Some(first) = held.lock().unwrap().take()
        {
            f.extend_from_slice(&first);
        }
        true
    }))
    .await;
    let why = failure(&events);
    assert!(why.contains("expected sequence number 4, got 5"), "{why}");
}

#[tokio::test]
async fn a_dropped_frame_is_noticed() {
    let events = session_through(Arc::new(|dir, f: &mut Vec<u8>| {
        if is_sealed_down(dir, f, 4) {
            f.clear();
        }
        true
    }))
    .await;
    let why = failure(&events);
    assert!(why.contains("expected sequence number 4, got 5"), "{why}");
}

#[tokio::test]
async fn a_truncated_frame_is_rejected() {
    let events = session_through(Arc::new(|dir, f: &mut Vec<u8>| {
        if is_sealed_down(dir, f, 4) {
            f.truncate(f.len() / 2);
            return false; // and the connection ends mid-frame
        }
        true
    }))
    .await;
    let why = failure(&events);
    assert!(why.contains("frame truncated"), "{why}");
}

#[tokio::test]
async fn a_reveal_that_does_not_match_the_commitment_is_refused() {
    let relay = relay().await;
    let tap = tap_altering(
        &relay,
        Some(Arc::new(|dir, f: &mut Vec<u8>| {
            // The viewer's second handshake frame is its reveal.
            if dir == Direction::Up && f[1] == HANDSHAKE && seq(f) == 1 {
                let last = f.len() - 1;
                f[last] ^= 0x80;
            }
            true
        })),
    )
    .await;
    let mut host = host(&relay.target(), None).await;
    let mut v = viewer(&tap.target(), host.number, "v", None).await;
    let failed = until(&mut host.events, |e| {
        matches!(
            e,
            HostEvent::HandshakeFailed { .. } | HostEvent::ViewerRequest { .. }
        )
    })
    .await;
    let HostEvent::HandshakeFailed { error, .. } = failed else {
        panic!("{failed:?}")
    };
    assert!(error.contains("does not match its commitment"), "{error}");
    let ended = until(&mut v.events, |e| matches!(e, ViewerEvent::Ended(_))).await;
    assert!(
        matches!(&ended, ViewerEvent::Ended(SessionEnd::Failed(why)) if why.contains("aborted")),
        "{ended:?}"
    );
}

#[tokio::test]
async fn a_recorded_handshake_replayed_later_is_refused() {
    use fernsicht_net::control::{ClientRequest, RELAY_PROTOCOL, RelayEvent};
    use fernsicht_net::frame::{ChannelId, Frame, FrameType};

    let relay = relay().await;
    let tap = tap(&relay).await;
    let mut host = host(&relay.target(), None).await;
    let mut v = viewer(&tap.target(), host.number, "v", None).await;
    host_request(&mut host).await;
    viewer_code(&mut v).await;
    // Everything the viewer sent: its hello, reveal and Finished.
    let recorded: Vec<Frame> = {
        let bytes = tap.to_relay.lock().unwrap().clone();
        let mut frames = Vec::new();
        let mut rest = &bytes[..];
        while let Some((f, used)) = Frame::decode(rest).unwrap() {
            rest = &rest[used..];
            if f.header.frame_type != FrameType::Control {
                frames.push(f);
            }
        }
        frames
    };
    assert_eq!(recorded.len(), 3);

    // Replay them as a new viewer, renumbered for the new channel as a
    // relay-level attacker could.
    let (mut r, mut w) = raw_link(&relay.target()).await;
    w.write_frame(
        &ClientRequest::Join {
            protocol: RELAY_PROTOCOL,
            number: host.number,
        }
        .to_frame(),
    )
    .await
    .unwrap();
    let RelayEvent::Joined { channel } =
        RelayEvent::from_frame(&r.read_frame().await.unwrap().unwrap()).unwrap()
    else {
        panic!("join refused")
    };
    for mut f in recorded {
        f.header.channel = ChannelId(channel);
        w.write_frame(&f).await.unwrap();
    }
    let failed = until(&mut host.events, |e| {
        matches!(e, HostEvent::HandshakeFailed { viewer, .. } if viewer.0 == channel)
            || matches!(e, HostEvent::ViewerRequest { viewer, .. } if viewer.0 == channel)
    })
    .await;
    let HostEvent::HandshakeFailed { error, .. } = failed else {
        panic!("a replayed handshake got through: {failed:?}")
    };
    assert!(error.contains("key confirmation failed"), "{error}");
}
