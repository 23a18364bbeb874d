//! Host and viewers through a real relay on loopback sockets.
#![allow(clippy::unwrap_used)] // integration tests: a failed step is a failed test

mod common;

use common::*;
use fernsicht_net::SessionNumber;
use fernsicht_net::client::{ClientError, HostEvent, SessionEnd, ViewerEvent, start_viewer};
use fernsicht_net::control::{JoinRefusal, LeaveReason};
use fernsicht_net::message::{ByeReason, Message, Permission};
use fernsicht_net::relay::backoff;
use fernsicht_net::relay::clock::ManualClock;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn host_and_two_viewers_chat_both_ways_and_the_relay_sees_no_plaintext() {
    let relay = relay().await;
    // Every byte the relay receives passes through this tap.
    let tap = tap(&relay).await;
    let mut host = host(&tap.target(), None).await;

    let mut viewers = Vec::new();
    for (name, permission) in [
        ("CANARY-NAME-Ada", Permission::Control),
        ("CANARY-NAME-Bo", Permission::ViewOnly),
    ] {
        let mut v = viewer(&tap.target(), host.number, name, None).await;
        let ViewerEvent::Code(vcode) = viewer_code(&mut v).await else {
            unreachable!()
        };
        let HostEvent::ViewerRequest {
            viewer: id,
            name: got_name,
            code: hcode,
        } = host_request(&mut host).await
        else {
            unreachable!()
        };
        assert_eq!(got_name, name);
        assert_eq!(vcode, hcode, "both screens show the same code");
        host.handle.decide(id, Some(permission));
        assert_eq!(next(&mut v.events).await, ViewerEvent::Connected);
        assert_eq!(next(&mut v.events).await, ViewerEvent::Allowed(permission));
        viewers.push((id, v));
    }

    host.handle.broadcast(&Message::Chat {
        text: "CANARY-FROM-HOST grüße".into(),
    });
    for (_, v) in &mut viewers {
        assert_eq!(
            next(&mut v.events).await,
            ViewerEvent::Message(Message::Chat {
                text: "CANARY-FROM-HOST grüße".into()
            })
        );
    }
    for (i, (id, v)) in viewers.iter().enumerate() {
        let text = format!("CANARY-FROM-VIEWER-{i}");
        v.handle.send(Message::Chat { text: text.clone() });
        let got = until(&mut host.events, |e| matches!(e, HostEvent::Message { .. })).await;
        assert_eq!(
            got,
            HostEvent::Message {
                viewer: *id,
                message: Message::Chat { text }
            }
        );
    }

    let seen = tap.to_relay.lock().unwrap().clone();
    assert!(seen.len() > 1000, "the tap saw the session's bytes");
    for canary in [
        "CANARY-FROM-HOST",
        "CANARY-FROM-VIEWER-0",
        "CANARY-FROM-VIEWER-1",
        "CANARY-NAME-Ada",
        "CANARY-NAME-Bo",
        "CANARY",
    ] {
        assert!(
            !contains(&seen, canary.as_bytes()),
            "{canary} reached the relay in clear"
        );
    }
}

#[tokio::test]
async fn removing_a_viewer_ends_its_session_and_the_relay_forgets_it() {
    let relay = relay().await;
    let mut host = host(&relay.target(), None).await;
    let mut v1 = viewer(&relay.target(), host.number, "one", None).await;
    let HostEvent::ViewerRequest { viewer: id1, .. } = host_request(&mut host).await else {
        unreachable!()
    };
    host.handle.decide(id1, Some(Permission::Control));
    let mut v2 = viewer(&relay.target(), host.number, "two", None).await;
    let HostEvent::ViewerRequest { viewer: id2, .. } = host_request(&mut host).await else {
        unreachable!()
    };
    host.handle.decide(id2, Some(Permission::Control));
    until(&mut v1.events, |e| matches!(e, ViewerEvent::Allowed(_))).await;
    until(&mut v2.events, |e| matches!(e, ViewerEvent::Allowed(_))).await;
    assert_eq!(relay.handle.viewers(host.number), Some(2));

    host.handle.remove(id1);
    assert_eq!(
        until(&mut v1.events, |e| matches!(e, ViewerEvent::Ended(_))).await,
        ViewerEvent::Ended(SessionEnd::Peer(ByeReason::Removed))
    );
    // The other viewer is unaffected and the relay dropped the first.
    host.handle.broadcast(&Message::Chat {
        text: "still here".into(),
    });
    assert_eq!(
        next(&mut v2.events).await,
        ViewerEvent::Message(Message::Chat {
            text: "still here".into()
        })
    );
    assert_eq!(relay.handle.viewers(host.number), Some(1));

    host.handle.end();
    assert_eq!(
        until(&mut v2.events, |e| matches!(e, ViewerEvent::Ended(_))).await,
        ViewerEvent::Ended(SessionEnd::Peer(ByeReason::HostStopped))
    );
    until(&mut host.events, |e| matches!(e, HostEvent::Ended(_))).await;
    // The number is gone at once: a new viewer gets a clear refusal.
    let err = start_viewer(viewer_options(&relay.target(), host.number, "late", None))
        .await
        .err()
        .expect("join to an ended session must fail");
    assert!(
        matches!(err, ClientError::Refused(JoinRefusal::NoSuchSession)),
        "{err}"
    );
}

#[tokio::test]
async fn denied_viewer_is_told_and_sees_nothing() {
    let relay = relay().await;
    let mut host = host(&relay.target(), None).await;
    let mut v = viewer(&relay.target(), host.number, "pest", None).await;
    let HostEvent::ViewerRequest { viewer: id, .. } = host_request(&mut host).await else {
        unreachable!()
    };
    // Chat sent before the decision must not reach the waiting viewer.
    host.handle.broadcast(&Message::Chat {
        text: "private".into(),
    });
    host.handle.decide(id, None);
    let mut events = Vec::new();
    loop {
        let e = next(&mut v.events).await;
        let end = matches!(e, ViewerEvent::Ended(_));
        events.push(e);
        if end {
            break;
        }
    }
    assert_eq!(
        events.last(),
        Some(&ViewerEvent::Ended(SessionEnd::Peer(ByeReason::Denied)))
    );
    assert!(
        !events.iter().any(|e| matches!(e, ViewerEvent::Message(_))),
        "{events:?}"
    );
}

#[tokio::test]
async fn wrong_password_fails_on_both_sides_with_a_clear_error() {
    let relay = relay().await;
    let mut host = host(&relay.target(), Some("open sesame")).await;
    let mut v = viewer(&relay.target(), host.number, "v", Some("open barley")).await;
    let failed = until(&mut host.events, |e| {
        matches!(
            e,
            HostEvent::HandshakeFailed { .. } | HostEvent::ViewerRequest { .. }
        )
    })
    .await;
    let HostEvent::HandshakeFailed { error, .. } = failed else {
        panic!("a viewer with the wrong password got through: {failed:?}")
    };
    assert!(error.contains("key confirmation failed"), "{error}");
    let ended = until(&mut v.events, |e| matches!(e, ViewerEvent::Ended(_))).await;
    let ViewerEvent::Ended(SessionEnd::Failed(why)) = ended else {
        panic!("{ended:?}")
    };
    assert!(why.contains("key confirmation failed"), "{why}");

    // The right password works on the same session.
    let mut v = viewer(&relay.target(), host.number, "v", Some("open sesame")).await;
    host_request(&mut host).await;
    viewer_code(&mut v).await;
}

#[tokio::test]
async fn wrong_number_gets_a_clear_error() {
    let relay = relay().await;
    let number = SessionNumber::new(12345).unwrap();
    let err = start_viewer(viewer_options(&relay.target(), number, "v", None))
        .await
        .err()
        .expect("no session has this number");
    assert!(matches!(
        err,
        ClientError::Refused(JoinRefusal::NoSuchSession)
    ));
    assert_eq!(
        fernsicht_net::error_chain(&err),
        "the relay refused: there is no session with this number (it may have ended)"
    );
}

#[tokio::test]
async fn unreachable_relay_gets_a_clear_error() {
    // A port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = fernsicht_net::client::RelayAddr::new("127.0.0.1", port);
    let err = fernsicht_net::client::start_host(fernsicht_net::client::HostOptions {
        family: Vec::new(),
        relay: addr,
        connect: pinned(fernsicht_net::tls::Fingerprint([0; 32])),
        handshake: Default::default(),
        direct: None,
    })
    .await
    .err()
    .expect("nothing listens there");
    assert!(
        fernsicht_net::error_chain(&err)
            .starts_with(&format!("cannot reach the relay at 127.0.0.1:{port}")),
        "{err}"
    );
}

/// An attacker trying numbers from one address, always at the earliest
/// moment the relay allows, on a clock the test moves forward.
#[tokio::test]
async fn back_off_makes_24_wrong_numbers_take_17_hours() {
    let clock = Arc::new(ManualClock::default());
    let relay = relay_with(with_clock(clock.clone())).await;
    let mut host = host(&relay.target(), None).await;
    let mut waited = Duration::ZERO;
    let mut failures = 0;
    let mut candidate = 10_000u64;
    while failures < 24 {
        candidate += 1;
        if candidate == host.number.get() {
            continue;
        }
        let number = SessionNumber::new(candidate).unwrap();
        match start_viewer(viewer_options(&relay.target(), number, "scan", None)).await {
            Err(ClientError::Refused(JoinRefusal::NoSuchSession)) => failures += 1,
            Err(ClientError::Refused(JoinRefusal::BackOff { retry_after_secs })) => {
                // Even the right number is refused while waiting.
                let err = start_viewer(viewer_options(&relay.target(), host.number, "scan", None))
                    .await
                    .err()
                    .expect("joins are refused during the back-off");
                assert!(matches!(
                    err,
                    ClientError::Refused(JoinRefusal::BackOff { .. })
                ));
                let wait = Duration::from_secs(retry_after_secs);
                clock.advance(wait);
                waited += wait;
                candidate -= 1;
            }
            other => panic!("unexpected answer: {:?}", other.err()),
        }
    }
    assert!(
        waited >= Duration::from_secs(17 * 3600),
        "24 wrong numbers took only {waited:?}"
    );
    assert!(
        relay
            .handle
            .stats
            .backoff_hits
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
    );

    // After the wait, the right number works and resets the count.
    if let Err(ClientError::Refused(JoinRefusal::BackOff { retry_after_secs })) =
        start_viewer(viewer_options(&relay.target(), host.number, "ok", None)).await
    {
        clock.advance(Duration::from_secs(retry_after_secs));
    }
    let mut v = viewer(&relay.target(), host.number, "ok", None).await;
    viewer_code(&mut v).await;
    host_request(&mut host).await;
    let wrong = SessionNumber::new(99_998).unwrap();
    let err = start_viewer(viewer_options(&relay.target(), wrong, "ok", None))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, ClientError::Refused(JoinRefusal::NoSuchSession)),
        "the count restarted after the successful join: {err}"
    );
    assert_eq!(backoff::delay_after(1), Duration::ZERO);
}

#[tokio::test]
async fn relay_drops_a_viewer_that_speaks_for_another_channel() {
    use fernsicht_net::control::{ClientRequest, RELAY_PROTOCOL, RelayEvent};
    use fernsicht_net::frame::{ChannelId, Frame, FrameType};

    let relay = relay().await;
    let mut host = host(&relay.target(), None).await;
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
    let joined = RelayEvent::from_frame(&r.read_frame().await.unwrap().unwrap()).unwrap();
    let RelayEvent::Joined { channel } = joined else {
        panic!("{joined:?}")
    };
    let forged = Frame::new(FrameType::Sealed, ChannelId(channel + 1), 0, vec![0; 32]).unwrap();
    w.write_frame(&forged).await.unwrap();
    // The relay closes us with a reason, and tells the host we are gone.
    loop {
        let f = r.read_frame().await.unwrap().expect("a Closed event first");
        if f.header.frame_type == FrameType::Control
            && let RelayEvent::Closed { reason } = RelayEvent::from_frame(&f).unwrap()
        {
            assert_eq!(reason, LeaveReason::ProtocolViolation);
            break;
        }
    }
    let left = until(&mut host.events, |e| {
        matches!(e, HostEvent::ViewerLeft { .. })
    })
    .await;
    assert!(
        matches!(left, HostEvent::ViewerLeft { reason, .. } if reason.contains("protocol violation"))
    );
}

#[tokio::test]
async fn a_relay_on_its_own_that_stops_ends_its_sessions_with_that_reason() {
    let relay = relay().await;
    let target = relay.target();
    let mut host = host(&target, None).await;
    let mut v = viewer(&target, host.number, "v", None).await;
    let HostEvent::ViewerRequest { viewer: id, .. } = host_request(&mut host).await else {
        unreachable!()
    };
    host.handle.decide(id, Some(Permission::Control));
    until(&mut v.events, |e| matches!(e, ViewerEvent::Allowed(_))).await;
    relay.handle.shutdown().await;
    // No family to hand the session to: both ends hear why it is over,
    // rather than trying to resume.
    let ended = until(&mut v.events, |e| matches!(e, ViewerEvent::Ended(_))).await;
    assert_eq!(
        ended,
        ViewerEvent::Ended(SessionEnd::Relay(LeaveReason::RelayShutdown))
    );
    let ended = until(&mut host.events, |e| matches!(e, HostEvent::Ended(_))).await;
    assert_eq!(
        ended,
        HostEvent::Ended(SessionEnd::Relay(LeaveReason::RelayShutdown))
    );
}
