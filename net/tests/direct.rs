//! Sessions that move from the relay to a direct TCP connection between
//! host and viewer, on loopback.
#![allow(clippy::unwrap_used)] // integration tests: a failed step is a failed test

mod common;

use common::*;
use fernsicht_net::client::{
    HostEvent, HostOptions, HostSession, SessionPath, ViewerEvent, start_host, start_viewer,
};
use fernsicht_net::direct::DirectOptions;
use fernsicht_net::handshake::HandshakeConfig;
use fernsicht_net::message::{Message, Permission};
use std::sync::atomic::Ordering;

async fn direct_host(relay: &TestRelay) -> HostSession {
    let target = relay.target();
    start_host(HostOptions {
        family: Vec::new(),
        relay: target.addr,
        connect: target.connect,
        handshake: HandshakeConfig::default(),
        direct: Some(DirectOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            advertise: None,
            punch: true,
        }),
    })
    .await
    .unwrap()
}

fn chat(i: usize) -> Message {
    Message::Chat {
        text: format!("{i:05} {}", "x".repeat(3000)),
    }
}

#[tokio::test]
async fn the_session_moves_off_the_relay_without_losing_or_reordering_a_message() {
    let relay = relay().await;
    let mut host = direct_host(&relay).await;
    let listening = host.direct.clone().unwrap();
    let mut v = viewer(&relay.target(), host.number, "helper", None).await;
    let HostEvent::ViewerRequest { viewer: id, .. } = host_request(&mut host).await else {
        unreachable!()
    };
    host.handle.decide(id, Some(Permission::Control));
    assert_eq!(
        until(&mut v.events, |e| matches!(e, ViewerEvent::Connected)).await,
        ViewerEvent::Connected
    );
    // What a viewer sends before the host has let it in is dropped by
    // design; the host's decision reaches the viewer as Allowed.
    until(&mut v.events, |e| matches!(e, ViewerEvent::Allowed(_))).await;

    // Both sides talk without pause while the path changes under them.
    const N: usize = 600;
    for i in 0..N {
        host.handle.broadcast(&chat(i));
        v.handle.send(chat(i));
        if i % 50 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let mut viewer_path = None;
    let mut got = 0;
    while got < N {
        match next(&mut v.events).await {
            ViewerEvent::Message(m) => {
                assert_eq!(m, chat(got), "host → viewer, message {got}");
                got += 1;
            }
            ViewerEvent::Path(p) => viewer_path = Some(p),
            ViewerEvent::Allowed(_) => {}
            other => panic!("{other:?}"),
        }
    }
    let mut host_path = None;
    let mut got = 0;
    while got < N {
        match next(&mut host.events).await {
            HostEvent::Message { message, .. } => {
                assert_eq!(message, chat(got), "viewer → host, message {got}");
                got += 1;
            }
            HostEvent::ViewerPath { viewer, path } => {
                assert_eq!(viewer, id);
                host_path = Some(path);
            }
            HostEvent::ViewerConnected { .. } => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(viewer_path, Some(SessionPath::Direct(listening)));
    assert!(
        matches!(host_path, Some(SessionPath::Direct(_))),
        "{host_path:?}"
    );

    // From now on the relay carries nothing of the session.
    let before = relay.handle.stats.bytes_forwarded.load(Ordering::Relaxed);
    for i in 0..N {
        host.handle.broadcast(&chat(i));
        v.handle.send(chat(i));
    }
    for i in 0..N {
        let got = until(&mut v.events, |e| matches!(e, ViewerEvent::Message(_))).await;
        assert_eq!(got, ViewerEvent::Message(chat(i)));
        let got = until(&mut host.events, |e| matches!(e, HostEvent::Message { .. })).await;
        assert_eq!(
            got,
            HostEvent::Message {
                viewer: id,
                message: chat(i)
            }
        );
    }
    let after = relay.handle.stats.bytes_forwarded.load(Ordering::Relaxed);
    assert!(
        after - before < 1000,
        "{} bytes of 3.6 MB went through the relay after the switch",
        after - before
    );

    // Leaving still works, over the direct path, and the host hears it.
    v.handle.leave();
    let left = until(&mut host.events, |e| {
        matches!(e, HostEvent::ViewerLeft { .. })
    })
    .await;
    assert_eq!(
        left,
        HostEvent::ViewerLeft {
            viewer: id,
            reason: "the helper left".into()
        }
    );
}

#[tokio::test]
async fn a_viewer_that_declines_direct_paths_stays_on_the_relay() {
    let relay = relay().await;
    let mut host = direct_host(&relay).await;
    let mut options = viewer_options(&relay.target(), host.number, "helper", None);
    options.direct = false;
    let mut v = start_viewer(options).await.unwrap();
    let HostEvent::ViewerRequest { viewer: id, .. } = host_request(&mut host).await else {
        unreachable!()
    };
    host.handle.decide(id, Some(Permission::ViewOnly));
    until(&mut v.events, |e| matches!(e, ViewerEvent::Allowed(_))).await;
    let before = relay.handle.stats.bytes_forwarded.load(Ordering::Relaxed);
    host.handle.broadcast(&chat(1));
    let got = until(&mut v.events, |e| {
        matches!(e, ViewerEvent::Message(_) | ViewerEvent::Path(_))
    })
    .await;
    assert_eq!(got, ViewerEvent::Message(chat(1)));
    assert!(relay.handle.stats.bytes_forwarded.load(Ordering::Relaxed) - before > 3000);
}
