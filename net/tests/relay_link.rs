//! The link between a client and the relay: the certificate check and the
//! fall-back from the relay's own port to a WebSocket.
#![allow(clippy::unwrap_used)] // integration tests: a failed step is a failed test

mod common;

use common::*;
use fernsicht_net::client::{HostEvent, RelayAddr, ViewerEvent, start_host, start_viewer};
use fernsicht_net::handshake::HandshakeConfig;
use fernsicht_net::message::{Message, Permission};
use fernsicht_net::tls::{Fingerprint, RelayIdentity, RelayTrust};
use fernsicht_net::transport::connect::LinkPath;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The certificate of some other relay: what an impostor would present.
fn other_fingerprint() -> Fingerprint {
    let dir = tempfile::tempdir().unwrap();
    RelayIdentity::load_or_create(dir.path(), &["fernsicht-relay".into()])
        .unwrap()
        .fingerprint()
}

/// A port on loopback that nothing listens on.
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_relay_whose_certificate_is_not_the_pinned_one_gets_no_session() {
    let relay = relay().await;
    let pin = other_fingerprint();
    let mut target = relay.target();
    target.connect.trust = RelayTrust::Pinned(pin);
    // Even with fall-back ports to try, a wrong certificate ends the search
    // at once: every other port leads to the same impostor.
    target.connect.fallback_ports = vec![dead_port()];

    let err = start_host(fernsicht_net::client::HostOptions {
        family: Vec::new(),
        relay: target.addr.clone(),
        connect: target.connect.clone(),
        handshake: HandshakeConfig::default(),
        direct: None,
    })
    .await
    .err()
    .expect("the pin does not match");
    let text = fernsicht_net::error_chain(&err);
    let presented = relay.handle.fingerprint;
    assert!(
        text.contains(&format!(
            "the relay's certificate {presented} does not match the pinned {pin}"
        )),
        "{text}"
    );
    assert!(
        !text.contains("WebSocket"),
        "no other way was tried: {text}"
    );

    let err = start_viewer(viewer_options(
        &target,
        fernsicht_net::SessionNumber::new(12345).unwrap(),
        "helper",
        None,
    ))
    .await
    .err()
    .expect("the pin does not match");
    assert!(
        fernsicht_net::error_chain(&err).contains("does not match the pinned"),
        "{err}"
    );
    assert_eq!(
        relay.handle.sessions(),
        0,
        "nothing reached the relay's hub"
    );
}

#[tokio::test]
async fn with_the_relay_port_dead_host_and_viewer_meet_over_websockets() {
    // The relay listens on one port only; the clients are told a port
    // where nothing answers and find the relay on their fall-back port.
    let relay = relay().await;
    let web_port = relay.handle.addr.port();
    let mut target = relay.target();
    target.addr = RelayAddr::new("127.0.0.1", dead_port());
    target.connect.fallback_ports = vec![dead_port(), web_port];

    let mut host = host(&target, None).await;
    let want = LinkPath::WebSocket {
        port: web_port,
        proxy: None,
    };
    assert_eq!(host.link.path, want);
    assert_eq!(host.link.fingerprint, relay.handle.fingerprint);

    let mut v = viewer(&target, host.number, "helper", None).await;
    let ViewerEvent::Code(vcode) = viewer_code(&mut v).await else {
        unreachable!()
    };
    let HostEvent::ViewerRequest {
        viewer: id, code, ..
    } = host_request(&mut host).await
    else {
        unreachable!()
    };
    assert_eq!(code, vcode);
    assert_eq!(v.link.path, want);
    host.handle.decide(id, Some(Permission::Control));
    assert_eq!(next(&mut v.events).await, ViewerEvent::Connected);
    // A viewer's messages count only once the host has allowed it.
    assert_eq!(
        next(&mut v.events).await,
        ViewerEvent::Allowed(Permission::Control)
    );

    // Many full-size messages cross the WebSocket framing in both
    // directions, intact and in order.
    let texts: Vec<String> = (0..40u8)
        .map(|i| {
            (0..fernsicht_net::message::MAX_CHAT_CHARS)
                .map(|j| char::from(b'a' + ((i as usize + j) % 26) as u8))
                .collect()
        })
        .collect();
    for text in &texts {
        host.handle.broadcast(&Message::Chat { text: text.clone() });
        v.handle.send(Message::Chat { text: text.clone() });
    }
    for text in &texts {
        let got = until(&mut v.events, |e| matches!(e, ViewerEvent::Message(_))).await;
        assert_eq!(
            got,
            ViewerEvent::Message(Message::Chat { text: text.clone() })
        );
        let got = until(&mut host.events, |e| matches!(e, HostEvent::Message { .. })).await;
        assert_eq!(
            got,
            HostEvent::Message {
                viewer: id,
                message: Message::Chat { text: text.clone() }
            }
        );
    }
}

#[tokio::test]
async fn the_relay_answers_other_web_requests_with_404_and_stays_up() {
    let relay = relay().await;
    let config =
        fernsicht_net::tls::client_config(&RelayTrust::Pinned(relay.handle.fingerprint)).unwrap();
    let tcp = tokio::net::TcpStream::connect(relay.handle.addr)
        .await
        .unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(config)
        .connect(fernsicht_net::tls::server_name("127.0.0.1"), tcp)
        .await
        .unwrap();
    tls.write_all(
        b"GET /admin HTTP/1.1\r\nHost: relay\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");

    // The relay still serves sessions.
    let host = host(&relay.target(), None).await;
    assert_eq!(
        host.link.path,
        LinkPath::Tls {
            port: relay.handle.addr.port()
        }
    );
}
