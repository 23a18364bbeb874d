//! Helpers for the net crate's integration tests: a relay on loopback, a
//! TCP man-in-the-middle that records or alters bytes, and session set-up.
#![allow(dead_code, clippy::unwrap_used)] // test support: a failed set-up is a failed test

pub mod process;

use fernsicht_net::SessionNumber;
use fernsicht_net::client::{
    ConnectOptions, HostEvent, HostOptions, HostSession, RelayAddr, ViewerEvent, ViewerOptions,
    ViewerSession, start_host, start_viewer,
};
use fernsicht_net::handshake::{HandshakeConfig, ViewerKey};
use fernsicht_net::relay::clock::Clock;
use fernsicht_net::relay::{Relay, RelayConfig, RelayHandle};
use fernsicht_net::tls::{self, Fingerprint, RelayIdentity, RelayTrust};
use fernsicht_net::transport::{BoxStream, FrameReader, FrameWriter};

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::io::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// How long any one expected event may take before a test fails.
pub const WAIT: Duration = Duration::from_secs(20);

pub struct TestRelay {
    pub handle: RelayHandle,
    pub dir: tempfile::TempDir,
}

/// Where a client should go and which certificate to trust there.
#[derive(Clone)]
pub struct Target {
    pub addr: RelayAddr,
    pub connect: ConnectOptions,
}

/// Options that trust exactly `fingerprint` and try only the main port.
pub fn pinned(fingerprint: Fingerprint) -> ConnectOptions {
    ConnectOptions {
        trust: RelayTrust::Pinned(fingerprint),
        proxy: fernsicht_net::transport::proxy::ProxySetting::Off,
        fallback_ports: Vec::new(),
        ..Default::default()
    }
}

impl TestRelay {
    pub fn target(&self) -> Target {
        Target {
            addr: self.handle.addr.into(),
            connect: pinned(self.handle.fingerprint),
        }
    }
}

pub async fn relay() -> TestRelay {
    relay_with(|_| {}).await
}

pub async fn relay_with(configure: impl FnOnce(&mut RelayConfig)) -> TestRelay {
    let dir = tempfile::tempdir().unwrap();
    let mut config = RelayConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf());
    configure(&mut config);
    let handle = Relay::bind(config).await.unwrap().spawn();
    TestRelay { handle, dir }
}

pub fn with_clock(clock: Arc<dyn Clock>) -> impl FnOnce(&mut RelayConfig) {
    move |c| c.clock = clock
}

/// Viewer keys are slow to make; tests draw fresh ones from a small pool.
pub fn key() -> ViewerKey {
    static KEYS: OnceLock<Mutex<(Vec<ViewerKey>, usize)>> = OnceLock::new();
    let pool = KEYS.get_or_init(|| {
        let keys = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| ViewerKey::generate(&mut rand::rngs::OsRng).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        Mutex::new((keys, 0))
    });
    let mut p = pool.lock().unwrap();
    p.1 += 1;
    p.0[p.1 % p.0.len()].clone()
}

pub async fn host(relay: &Target, password: Option<&str>) -> HostSession {
    start_host(HostOptions {
        family: Vec::new(),
        relay: relay.addr.clone(),
        connect: relay.connect.clone(),
        handshake: HandshakeConfig::with_password(password),
        direct: None,
    })
    .await
    .unwrap()
}

pub fn viewer_options(
    relay: &Target,
    number: SessionNumber,
    name: &str,
    password: Option<&str>,
) -> ViewerOptions {
    ViewerOptions {
        family: Vec::new(),
        relay: relay.addr.clone(),
        connect: relay.connect.clone(),
        number,
        handshake: HandshakeConfig::with_password(password),
        name: name.into(),
        key: key(),
        direct: true,
    }
}

pub async fn viewer(
    relay: &Target,
    number: SessionNumber,
    name: &str,
    password: Option<&str>,
) -> ViewerSession {
    start_viewer(viewer_options(relay, number, name, password))
        .await
        .unwrap()
}

/// Next event, or a test failure after [`WAIT`].
pub async fn next<T: std::fmt::Debug>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("timed out waiting for an event")
        .expect("event stream closed")
}

/// Skips events until one matches.
pub async fn until<T: std::fmt::Debug>(
    rx: &mut mpsc::UnboundedReceiver<T>,
    mut pred: impl FnMut(&T) -> bool,
) -> T {
    loop {
        let e = next(rx).await;
        if pred(&e) {
            return e;
        }
    }
}

pub async fn host_request(host: &mut HostSession) -> HostEvent {
    until(&mut host.events, |e| {
        matches!(e, HostEvent::ViewerRequest { .. })
    })
    .await
}

pub async fn viewer_code(v: &mut ViewerSession) -> ViewerEvent {
    until(&mut v.events, |e| matches!(e, ViewerEvent::Code(_))).await
}

/// What a [`Tap`] does with each whole frame that passes it: it may change
/// the bytes (empty drops the frame, two frames' worth duplicates it);
/// returning `false` closes that direction after writing them.
pub type Alter = Arc<dyn Fn(Direction, &mut Vec<u8>) -> bool + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the client towards the relay.
    Up,
    /// From the relay towards the client.
    Down,
}

/// A man in the middle in front of the relay: clients connect to it over
/// TLS (trusting its own certificate, as if it were the relay), it connects
/// to the relay over TLS, and in between it sees exactly what a relay sees:
/// every frame, after TLS. It keeps every byte the relay receives, or lets
/// a test alter the frames.
pub struct Tap {
    target: Target,
    pub to_relay: Arc<Mutex<Vec<u8>>>,
    _dir: tempfile::TempDir,
}

impl Tap {
    pub fn target(&self) -> Target {
        self.target.clone()
    }
}

/// A TLS listener with a fresh self-made certificate.
pub async fn tls_listener() -> (TcpListener, TlsAcceptor, Fingerprint, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let identity = RelayIdentity::load_or_create(dir.path(), &[]).unwrap();
    let acceptor = TlsAcceptor::from(identity.server_config().unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    (listener, acceptor, identity.fingerprint(), dir)
}

/// Forwards connections to `relay`, recording what goes up.
pub async fn tap(relay: &TestRelay) -> Tap {
    tap_altering(relay, None).await
}

/// Like [`tap`], but each whole frame passes through `alter` first (frames
/// are re-cut from the stream by their headers, so a test can change,
/// drop, duplicate or reorder them).
pub async fn tap_altering(relay: &TestRelay, alter: Option<Alter>) -> Tap {
    let (listener, acceptor, fingerprint, dir) = tls_listener().await;
    let target = Target {
        addr: listener.local_addr().unwrap().into(),
        connect: pinned(fingerprint),
    };
    let upstream = relay.handle.addr;
    let connector = TlsConnector::from(
        tls::client_config(&RelayTrust::Pinned(relay.handle.fingerprint)).unwrap(),
    );
    let to_relay = Arc::new(Mutex::new(Vec::new()));
    let record = to_relay.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let (acceptor, connector, alter, record) = (
                acceptor.clone(),
                connector.clone(),
                alter.clone(),
                record.clone(),
            );
            tokio::spawn(async move {
                let client = acceptor.accept(client).await.unwrap();
                let server = TcpStream::connect(upstream).await.unwrap();
                let server = connector
                    .connect(tls::server_name("fernsicht-relay"), server)
                    .await
                    .unwrap();
                let (cr, cw) = tokio::io::split(client);
                let (sr, sw) = tokio::io::split(server);
                tokio::spawn(pump(cr, sw, Direction::Up, alter.clone(), Some(record)));
                tokio::spawn(pump(sr, cw, Direction::Down, alter, None));
            });
        }
    });
    Tap {
        target,
        to_relay,
        _dir: dir,
    }
}

/// A raw frame link to a relay, for tests that speak the protocol by hand.
pub async fn raw_link(
    target: &Target,
) -> (
    FrameReader<ReadHalf<BoxStream>>,
    FrameWriter<WriteHalf<BoxStream>>,
) {
    let link = fernsicht_net::transport::connect::connect_relay(&target.addr, &target.connect)
        .await
        .unwrap();
    let (r, w) = tokio::io::split(link.stream);
    (FrameReader::new(r), FrameWriter::new(w))
}

async fn pump<R: tokio::io::AsyncRead + Unpin, W: tokio::io::AsyncWrite + Unpin>(
    mut from: R,
    mut to: W,
    dir: Direction,
    alter: Option<Alter>,
    record: Option<Arc<Mutex<Vec<u8>>>>,
) {
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        // Cut whole frames: 16-byte header, length in its last 4 bytes.
        loop {
            if pending.len() < 16 {
                break;
            }
            let len = u32::from_be_bytes(pending[12..16].try_into().unwrap()) as usize;
            if pending.len() < 16 + len {
                break;
            }
            let mut frame: Vec<u8> = pending.drain(..16 + len).collect();
            let keep_going = match &alter {
                Some(f) => f(dir, &mut frame),
                None => true,
            };
            if let Some(r) = &record {
                r.lock().unwrap().extend_from_slice(&frame);
            }
            if to.write_all(&frame).await.is_err() || !keep_going {
                let _ = to.shutdown().await;
                return;
            }
        }
    }
    let _ = to.shutdown().await;
}

/// Whether `needle` occurs anywhere in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A TCP forwarder in front of the relay whose network a test can take
/// away for good: once cut, every connection through it is closed at once,
/// with no goodbye in either direction, and no new one gets through (a
/// [`Cutter`] lets new ones pass). Counts the bytes it carried up. Clients
/// speak TLS with the relay through it, as through any router.
pub struct DeadEnd {
    pub target: Target,
    pub up_bytes: Arc<std::sync::atomic::AtomicU64>,
    cut: tokio_util::sync::CancellationToken,
}

impl DeadEnd {
    pub async fn start(relay: &TestRelay) -> DeadEnd {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = Target {
            addr: listener.local_addr().unwrap().into(),
            connect: pinned(relay.handle.fingerprint),
        };
        let relay = relay.handle.addr;
        let cut = tokio_util::sync::CancellationToken::new();
        let up_bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (token, counter) = (cut.clone(), up_bytes.clone());
        tokio::spawn(async move {
            loop {
                let (client, _) = tokio::select! {
                    _ = token.cancelled() => return,
                    a = listener.accept() => a.unwrap(),
                };
                let server = TcpStream::connect(relay).await.unwrap();
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let (t1, t2, counter) = (token.clone(), token.clone(), counter.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = tokio::select! {
                            _ = t1.cancelled() => return,
                            r = cr.read(&mut buf) => match r { Ok(0) | Err(_) => return, Ok(n) => n },
                        };
                        counter.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                        // A write the relay holds up must not outlive a cut.
                        tokio::select! {
                            _ = t1.cancelled() => return,
                            w = sw.write_all(&buf[..n]) => if w.is_err() { return },
                        }
                    }
                });
                tokio::spawn(async move {
                    tokio::select! {
                        _ = t2.cancelled() => {}
                        _ = tokio::io::copy(&mut sr, &mut cw) => {}
                    }
                });
            }
        });
        DeadEnd {
            target,
            up_bytes,
            cut,
        }
    }

    /// Drops every connection through this forwarder, and refuses new ones.
    pub fn cut(&self) {
        self.cut.cancel();
    }
}

/// A plain TCP forwarder in front of the relay (TLS passes through it
/// untouched) whose connections a test can cut, as a flaky network would.
pub struct Cutter {
    target: Target,
    live: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
}

impl Cutter {
    pub fn target(&self) -> Target {
        self.target.clone()
    }

    /// Drops every connection through it at once; new ones still pass.
    pub fn cut_all(&self) {
        for h in self.live.lock().unwrap().drain(..) {
            h.abort();
        }
    }
}

pub async fn cutter(relay: &TestRelay) -> Cutter {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = Target {
        addr: listener.local_addr().unwrap().into(),
        connect: pinned(relay.handle.fingerprint),
    };
    let upstream = relay.handle.addr;
    let live = Arc::new(Mutex::new(Vec::new()));
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (l, c) = (live.clone(), connections.clone());
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let task = tokio::spawn(async move {
                let mut server = TcpStream::connect(upstream).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
            l.lock().unwrap().push(task.abort_handle());
        }
    });
    Cutter {
        target,
        live,
        connections,
    }
}
