//! A malicious relay that sits in the middle: it swaps the viewer's public
//! key for its own, runs one handshake with the host (as a viewer) and one
//! with the viewer (as the host), and would relay between them.
#![allow(clippy::unwrap_used)] // integration tests: a failed step is a failed test

mod common;

use common::*;
use fernsicht_net::client::{HostEvent, SessionEnd, ViewerEvent, start_viewer};
use fernsicht_net::control::{ClientRequest, RelayEvent};
use fernsicht_net::frame::{ChannelId, Frame, FrameType};
use fernsicht_net::handshake::{HandshakeConfig, HostHandshake, ViewerHandshake};
use fernsicht_net::transport::{BoxStream, FrameReader, FrameWriter};
use fernsicht_net::{SessionNumber, handshake::HandshakeError};
use rand::rngs::OsRng;
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

struct Conn {
    r: FrameReader<ReadHalf<BoxStream>>,
    w: FrameWriter<WriteHalf<BoxStream>>,
}

impl Conn {
    /// The attacker is the relay: it holds the TLS key clients trust.
    async fn accept(l: &TcpListener, acceptor: &TlsAcceptor) -> Conn {
        let (s, _) = l.accept().await.unwrap();
        let tls: BoxStream = Box::new(acceptor.accept(s).await.unwrap());
        let (r, w) = tokio::io::split(tls);
        Conn {
            r: FrameReader::new(r),
            w: FrameWriter::new(w),
        }
    }
    async fn read(&mut self) -> Frame {
        self.r.read_frame().await.unwrap().unwrap()
    }
    /// The next session frame, skipping the clients' keepalive pings.
    async fn read_data(&mut self) -> Frame {
        loop {
            let f = self.read().await;
            if f.header.frame_type != FrameType::Control {
                return f;
            }
        }
    }
    async fn send(&mut self, f: &Frame) {
        self.w.write_frame(f).await.unwrap();
    }
}

const CH: ChannelId = ChannelId(1);

/// What the attacker got out of each leg.
struct Outcome {
    viewer_leg: Result<(), HandshakeError>,
    host_leg: Result<(), HandshakeError>,
    /// Kept open until the test has looked at both clients.
    _conns: (Conn, Conn),
}

/// Plays relay for one host and one viewer and attacks the handshake,
/// knowing `guess` for the password (the real one is never given to it).
async fn mitm(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    number: SessionNumber,
    guess: Option<&str>,
) -> Outcome {
    let cfg = HandshakeConfig::with_password(guess);
    let mut host = Conn::accept(&listener, &acceptor).await;
    assert!(matches!(
        ClientRequest::from_frame(&host.read().await).unwrap(),
        ClientRequest::Register { .. }
    ));
    host.send(&RelayEvent::Registered { number }.to_frame())
        .await;
    let mut viewer = Conn::accept(&listener, &acceptor).await;
    assert!(matches!(
        ClientRequest::from_frame(&viewer.read().await).unwrap(),
        ClientRequest::Join { .. }
    ));
    viewer
        .send(&RelayEvent::Joined { channel: CH.0 }.to_frame())
        .await;
    host.send(&RelayEvent::ViewerJoined { channel: CH.0 }.to_frame())
        .await;

    // Host leg: the attacker is the viewer, with its own key.
    let fake_viewer = ViewerHandshake::start(&cfg, "mallory", key(), CH);
    let host_hello = host.read_data().await;
    let (fake_viewer, hello_to_host) = fake_viewer.receive(&host_hello, &mut OsRng).unwrap();
    host.send(&hello_to_host).await;

    // Viewer leg: the attacker is the host.
    let (fake_host, hello) = HostHandshake::start(&cfg, CH, &mut OsRng);
    viewer.send(&hello).await;
    let (fake_host, kt) = fake_host
        .receive(&viewer.read_data().await, &mut OsRng)
        .unwrap();
    viewer.send(&kt).await;
    let reveal = viewer.read_data().await;
    let fin = viewer.read_data().await;
    let viewer_leg = match fake_host.receive(&reveal).unwrap().receive(fin) {
        Ok((_, host_fin)) => {
            viewer.send(&host_fin).await;
            Ok(())
        }
        Err(e) => {
            // Without the keys, the best it can do is a forged Finished.
            let forged = Frame::new(FrameType::Sealed, CH, 2, vec![0x5a; 48]).unwrap();
            viewer.send(&forged).await;
            Err(e)
        }
    };

    let kt = host.read_data().await;
    let (fake_viewer, [reveal, fin]) = fake_viewer.receive(&kt).unwrap();
    host.send(&reveal).await;
    host.send(&fin).await;
    let host_leg = fake_viewer.receive(host.read_data().await).map(|_| ());
    Outcome {
        viewer_leg,
        host_leg,
        _conns: (host, viewer),
    }
}

async fn run(host_pw: Option<&str>, guess: Option<&str>) -> (HostEvent, Vec<ViewerEvent>, Outcome) {
    let (listener, acceptor, fingerprint, _dir) = tls_listener().await;
    let addr = Target {
        addr: listener.local_addr().unwrap().into(),
        connect: pinned(fingerprint),
    };
    let number = SessionNumber::new(55555).unwrap();
    let guess = guess.map(str::to_owned);
    let attacker =
        tokio::spawn(async move { mitm(listener, acceptor, number, guess.as_deref()).await });
    let mut host = host(&addr, host_pw).await;
    let mut v = start_viewer(viewer_options(&addr, number, "helper", host_pw))
        .await
        .unwrap();
    let host_event = until(&mut host.events, |e| {
        matches!(
            e,
            HostEvent::ViewerRequest { .. } | HostEvent::HandshakeFailed { .. }
        )
    })
    .await;
    let mut viewer_events = Vec::new();
    loop {
        let e = next(&mut v.events).await;
        let done = matches!(e, ViewerEvent::Connected | ViewerEvent::Ended(_));
        viewer_events.push(e);
        if done {
            break;
        }
    }
    (host_event, viewer_events, attacker.await.unwrap())
}

#[tokio::test]
async fn swapped_public_key_makes_the_codes_differ() {
    let (host_event, viewer_events, outcome) = run(None, None).await;
    // Without a password the attacker completes both legs...
    assert!(outcome.viewer_leg.is_ok() && outcome.host_leg.is_ok());
    let HostEvent::ViewerRequest {
        code: host_code, ..
    } = host_event
    else {
        panic!("{host_event:?}")
    };
    let Some(ViewerEvent::Code(viewer_code)) = viewer_events.first().cloned() else {
        panic!("{viewer_events:?}")
    };
    assert_eq!(viewer_events.last(), Some(&ViewerEvent::Connected));
    // ...but the two people see different codes and the host's consent
    // dialog shows its code, so comparing them exposes the attack.
    assert_ne!(host_code, viewer_code, "1 in a million: rerun");
}

#[tokio::test]
async fn with_a_password_the_man_in_the_middle_fails_outright() {
    let (host_event, viewer_events, outcome) = run(Some("s3cret"), Some("guess")).await;
    assert!(matches!(
        outcome.viewer_leg,
        Err(HandshakeError::KeyConfirmationFailed)
    ));
    assert!(outcome.host_leg.is_err());
    let HostEvent::HandshakeFailed { error, .. } = host_event else {
        panic!("the host let the attacker in: {host_event:?}")
    };
    assert!(error.contains("key confirmation failed"), "{error}");
    let last = viewer_events.last().unwrap();
    let ViewerEvent::Ended(SessionEnd::Failed(why)) = last else {
        panic!("the viewer connected to the attacker: {viewer_events:?}")
    };
    assert!(why.contains("key confirmation failed"), "{why}");
    assert!(!viewer_events.contains(&ViewerEvent::Connected));
}
