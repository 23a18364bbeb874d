use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zeroize::Zeroizing;

fn key(b: u8) -> PathKey {
    PathKey(Zeroizing::new([b; 32]))
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A host endpoint on loopback that accepts channel 7 with key 1.
async fn host() -> (HostPunch, PunchOffer, mpsc::UnboundedReceiver<Accepted>) {
    let registry = Registry::default();
    registry.insert(ChannelId(7), key(1));
    let (tx, rx) = mpsc::unbounded_channel();
    let (punch, offer) = HostPunch::bind_local(loopback(), registry, tx)
        .await
        .unwrap();
    (punch, offer, rx)
}

fn go() -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    tx.send(()).unwrap();
    rx
}

#[tokio::test]
async fn a_punched_quic_path_carries_bytes_both_ways_after_the_proof() {
    let (mut host_punch, offer, mut accepted) = host().await;
    let viewer = ViewerPunch::bind_local(loopback()).unwrap();
    host_punch.punch(&viewer.answer());
    let (mut stream, at) = viewer
        .connect(&offer, go(), ChannelId(7), &key(1))
        .await
        .unwrap();
    assert_eq!(at, offer.addrs[0]);
    let got = accepted.recv().await.unwrap();
    assert_eq!((got.channel, got.kind), (ChannelId(7), DirectKind::Quic));
    let mut host_side = got.stream;
    stream.write_all(b"viewer to host").await.unwrap();
    stream.flush().await.unwrap();
    let mut buf = [0u8; 14];
    host_side.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"viewer to host");
    host_side.write_all(b"host to viewer").await.unwrap();
    host_side.flush().await.unwrap();
    stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"host to viewer");
}

#[tokio::test]
async fn a_certificate_other_than_the_announced_one_is_refused() {
    let (_host_punch, mut offer, mut accepted) = host().await;
    offer.cert[0] ^= 1;
    let viewer = ViewerPunch::bind_local(loopback()).unwrap();
    let e = viewer
        .connect(&offer, go(), ChannelId(7), &key(1))
        .await
        .unwrap_err();
    // The handshake fails, rather than the attempt running out of time.
    assert!(matches!(e, PunchError::Handshake(_)), "{e:?}");
    assert!(
        crate::error_chain(&e).contains("certificate"),
        "{}",
        crate::error_chain(&e)
    );
    assert!(accepted.try_recv().is_err());
}

#[tokio::test]
async fn a_viewer_without_the_path_key_gets_no_path() {
    let (_host_punch, offer, mut accepted) = host().await;
    let viewer = ViewerPunch::bind_local(loopback()).unwrap();
    let e = viewer
        .connect(&offer, go(), ChannelId(7), &key(2))
        .await
        .unwrap_err();
    assert!(matches!(e, PunchError::Proof(_)), "{e:?}");
    // The right viewer still gets through afterwards.
    let viewer = ViewerPunch::bind_local(loopback()).unwrap();
    viewer
        .connect(&offer, go(), ChannelId(7), &key(1))
        .await
        .unwrap();
    assert_eq!(accepted.recv().await.unwrap().channel, ChannelId(7));
}

#[tokio::test]
async fn silence_ends_in_no_hole_and_a_session_that_moved_on_cancels() {
    // A socket that never answers: the attempt gives up on its own.
    let silent = std::net::UdpSocket::bind(loopback()).unwrap();
    let offer = PunchOffer {
        version: PUNCH_VERSION,
        addrs: vec![silent.local_addr().unwrap()],
        cert: [0; 32],
    };
    let viewer = ViewerPunch::bind_local(loopback()).unwrap();
    let e = viewer
        .connect(&offer, go(), ChannelId(7), &key(1))
        .await
        .unwrap_err();
    assert!(matches!(e, PunchError::NoHole), "{e:?}");

    // The session dropped its `go` (a TCP path won): no proof is sent.
    let (_host_punch, offer, _accepted) = host().await;
    let viewer = ViewerPunch::bind_local(loopback()).unwrap();
    let (tx, rx) = oneshot::channel::<()>();
    drop(tx);
    let e = viewer
        .connect(&offer, rx, ChannelId(7), &key(1))
        .await
        .unwrap_err();
    assert!(matches!(e, PunchError::Cancelled), "{e:?}");
}

#[tokio::test]
async fn offers_of_another_version_or_without_addresses_are_refused() {
    let viewer = ViewerPunch::bind_local(loopback()).unwrap();
    let offer = PunchOffer {
        version: 2,
        addrs: vec![loopback()],
        cert: [0; 32],
    };
    let e = viewer
        .connect(&offer, go(), ChannelId(1), &key(1))
        .await
        .unwrap_err();
    assert!(matches!(e, PunchError::Version(2)), "{e:?}");
    let viewer = ViewerPunch::bind_local(loopback()).unwrap();
    let offer = PunchOffer {
        version: PUNCH_VERSION,
        addrs: vec!["[::1]:9".parse().unwrap()],
        cert: [0; 32],
    };
    let e = viewer
        .connect(&offer, go(), ChannelId(1), &key(1))
        .await
        .unwrap_err();
    assert!(matches!(e, PunchError::NoCandidates), "{e:?}");
}

#[tokio::test]
async fn the_relay_rendezvous_tells_each_side_its_address() {
    let dir = tempfile::tempdir().unwrap();
    let relay = crate::relay::Relay::bind(crate::relay::RelayConfig::new(
        loopback(),
        dir.path().to_path_buf(),
    ))
    .await
    .unwrap();
    let udp = relay.rendezvous_addr().unwrap();
    assert_eq!(udp.port(), relay.local_addr().port());
    let handle = relay.spawn();
    let relay_addr = RelayAddr::from(handle.addr);
    let viewer = ViewerPunch::start(&relay_addr).await.unwrap();
    let port = viewer.socket.local_addr().unwrap().port();
    // Seen from the relay on loopback: 127.0.0.1 and the socket's port.
    assert_eq!(
        viewer.answer().addrs[0],
        SocketAddr::from(([127, 0, 0, 1], port))
    );
    handle.shutdown().await;
}
