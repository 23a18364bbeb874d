//! Sessions that outlive a dropped relay connection: both ends reconnect,
//! prove they still hold the keys, and resend what the other missed.
#![allow(clippy::unwrap_used)] // integration tests: a failed step is a failed test

mod common;

use common::*;
use fernsicht_net::SessionNumber;
use fernsicht_net::client::{ClientError, HostEvent, HostSession, ViewerEvent, ViewerSession};
use fernsicht_net::control::{ClientRequest, RELAY_PROTOCOL, RelayEvent};
use fernsicht_net::frame::{ChannelId, Frame, FrameType, Header};
use fernsicht_net::message::{Message, Permission};
use std::sync::{Arc, Mutex};

fn chat(i: usize) -> Message {
    Message::Chat {
        text: format!("{i:05} {}", "y".repeat(2000)),
    }
}

async fn connected(target: &Target) -> (HostSession, ViewerSession, ChannelId) {
    let mut host = host(target, None).await;
    let mut v = viewer(target, host.number, "helper", None).await;
    let HostEvent::ViewerRequest { viewer: id, .. } = host_request(&mut host).await else {
        unreachable!()
    };
    host.handle.decide(id, Some(Permission::Control));
    until(&mut v.events, |e| matches!(e, ViewerEvent::Allowed(_))).await;
    (host, v, id)
}

#[tokio::test]
async fn cutting_every_connection_mid_stream_loses_nothing() {
    let relay = relay().await;
    let cutter = cutter(&relay).await;
    let (mut host, mut v, id) = connected(&cutter.target()).await;

    const N: usize = 400;
    for i in 0..N {
        host.handle.broadcast(&chat(i));
        v.handle.send(chat(i));
        if i == N / 2 {
            // Let some of it arrive, then pull the plug on both links.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            cutter.cut_all();
        }
    }
    let mut saw = Vec::new();
    let mut got = 0;
    while got < N {
        match next(&mut v.events).await {
            ViewerEvent::Ended(e) => {
                let mut host_saw = Vec::new();
                while let Ok(h) = host.events.try_recv() {
                    if !matches!(h, HostEvent::Message { .. }) {
                        host_saw.push(h);
                    }
                }
                panic!("viewer ended after {got}: {e:?}; saw {saw:?}; the host saw {host_saw:?}")
            }
            ViewerEvent::Message(m) => {
                assert_eq!(m, chat(got), "host → viewer, message {got}");
                got += 1;
            }
            other => saw.push(other),
        }
    }
    assert!(saw.contains(&ViewerEvent::Reconnecting), "{saw:?}");
    assert!(saw.contains(&ViewerEvent::Resumed), "{saw:?}");
    let mut saw = Vec::new();
    let mut got = 0;
    while got < N {
        match next(&mut host.events).await {
            HostEvent::Message { viewer, message } => {
                assert_eq!(viewer, id);
                assert_eq!(message, chat(got), "viewer → host, message {got}");
                got += 1;
            }
            other => saw.push(other),
        }
    }
    assert!(saw.contains(&HostEvent::Reconnecting), "{saw:?}");
    assert!(
        saw.contains(&HostEvent::ViewerResumed { viewer: id }),
        "{saw:?}"
    );
    assert!(
        cutter
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 4,
        "both sides came back on new connections"
    );

    // And the session goes on as before.
    host.handle.broadcast(&chat(N));
    let got = until(&mut v.events, |e| matches!(e, ViewerEvent::Message(_))).await;
    assert_eq!(got, ViewerEvent::Message(chat(N)));
}

#[tokio::test]
async fn taking_a_viewers_place_without_its_keys_is_refused() {
    // The relay itself is the attacker here: it holds every resume token
    // (a tap in front of it sees them) and gives the viewer's place to a
    // connection of its own.
    let relay = relay().await;
    let tokens: Arc<Mutex<Vec<[u8; 32]>>> = Arc::default();
    let seen = tokens.clone();
    let tap = tap_altering(
        &relay,
        Some(Arc::new(move |dir, bytes: &mut Vec<u8>| {
            if dir == Direction::Down
                && let Ok(frame) = Frame::decode_exact(bytes)
                && let Ok(RelayEvent::ResumeToken { token }) = RelayEvent::from_frame(&frame)
            {
                seen.lock().unwrap().push(token);
            }
            true
        })),
    )
    .await;
    let (mut host, mut v, id) = connected(&tap.target()).await;
    let viewer_token = tokens.lock().unwrap()[1];

    let (mut reader, mut writer) = raw_link(&relay.target()).await;
    writer
        .write_frame(
            &ClientRequest::Resume {
                protocol: RELAY_PROTOCOL,
                number: host.number,
                channel: id.0,
                token: viewer_token,
            }
            .to_frame(),
        )
        .await
        .unwrap();
    let first = reader.read_frame().await.unwrap().unwrap();
    assert_eq!(RelayEvent::from_frame(&first).unwrap(), RelayEvent::Resumed);
    // The host asks the newcomer to prove it holds the keys; it cannot.
    let hello = loop {
        let f = reader.read_frame().await.unwrap().unwrap();
        if f.header.frame_type == FrameType::Handshake {
            break f;
        }
    };
    let forged = Frame {
        header: Header {
            frame_type: FrameType::Handshake,
            channel: id,
            seq: 0,
            len: 0,
        },
        payload: Vec::new(),
    };
    let mut answer = hello.payload.clone();
    // postcard: variant 1 (Answer), the host's nonce (echoed), a nonce of
    // its own, next_seq 0, and a MAC the forger can only guess.
    answer[0] = 1;
    answer.extend_from_slice(&[7u8; 32]);
    answer.push(0);
    answer.extend_from_slice(&[0u8; 32]);
    let forged = Frame {
        header: Header {
            len: answer.len() as u32,
            ..forged.header
        },
        payload: answer,
    };
    writer.write_frame(&forged).await.unwrap();

    let left = until(&mut host.events, |e| {
        matches!(e, HostEvent::ViewerLeft { .. })
    })
    .await;
    let HostEvent::ViewerLeft { viewer, reason } = left else {
        unreachable!()
    };
    assert_eq!(viewer, id);
    assert_eq!(
        reason,
        "reconnection refused: the other side could not prove it holds the session keys"
    );
    // The real viewer lost its place and cannot take it back either: the
    // host removed it.
    let ended = until(&mut v.events, |e| matches!(e, ViewerEvent::Ended(_))).await;
    assert!(matches!(ended, ViewerEvent::Ended(_)), "{ended:?}");
    let _ = (SessionNumber::new(10000), ClientError::HandshakeTimeout);
}
