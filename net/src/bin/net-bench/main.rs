//! `net-bench`: the figures the secure core promises, measured on this
//! machine: handshake time without key generation, AES-256-GCM sealing
//! throughput next to `openssl speed`, and the relay's forwarding throughput
//! next to a plain loopback copy and plain forwarders (`tokio::io::copy`, and
//! `copy_buf` with the relay's 64 KiB read buffer), so that the relay's own
//! cost shows.
//!
//! Per path (direct TCP, relay over TLS, relay over WebSocket, relay over
//! WebSocket through tinyproxy) it also measures the round trip of a small
//! frame, the delay every acknowledgement pays.
//!
//! `cargo run --release -p fernsicht-net --bin net-bench`. Everything runs on
//! loopback, in a scratch directory that is removed afterwards. Speeds are
//! in MB/s with MB = 10^6 bytes, as `openssl speed` counts.

use anyhow::{Context, Result, bail};
use fernsicht_net::client::{
    ConnectOptions, HostEvent, HostOptions, ViewerEvent, ViewerOptions, start_host, start_viewer,
};
use fernsicht_net::control::{ClientRequest, RELAY_PROTOCOL, RelayEvent};
use fernsicht_net::frame::ChannelId;
use fernsicht_net::handshake::{
    Established, HandshakeConfig, HostHandshake, ViewerHandshake, ViewerKey,
};
use fernsicht_net::relay::{Relay, RelayConfig};
use fernsicht_net::transport::{FrameReader, FrameWriter};
use rand::rngs::OsRng;
use std::hint::black_box;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// In-memory handshakes per configuration.
const HANDSHAKES: usize = 200;
/// Host+viewer sessions set up through the relay.
const SESSIONS: usize = 50;
/// RSA keys made before anything is timed; handshakes take them in turn (the
/// app uses a fresh key per session, which changes nothing in the timing).
const KEYS: usize = 4;
/// Throughput figures are the best of this many rounds: the machine may be
/// shared, and other work only ever makes a round slower.
const ROUNDS: usize = 3;
/// How long each sealing round runs (`openssl speed` gets the same).
const SEAL_TIME: Duration = Duration::from_secs(1);
/// Bytes streamed per forwarding round.
const STREAM_BYTES: u64 = 512 << 20;
/// Most bytes in flight between sender and receiver. The relay drops a
/// viewer whose queue passes 32 MiB (a real host is paced by its encoder);
/// the same window applies to every forwarding path, so they compare fairly.
const WINDOW: u64 = 8 << 20;
/// Echoes per link for the round-trip figures.
const ROUND_TRIPS: usize = 2000;
const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

fn main() -> Result<()> {
    if cfg!(debug_assertions) {
        eprintln!("net-bench: this is a debug build; use --release for meaningful figures");
    }
    let runtime = tokio::runtime::Runtime::new().context("starting tokio")?;
    let mut table = Table::default();

    eprintln!("net-bench: generating {KEYS} RSA-2048 keys (not timed below)");
    let mut keygen = Vec::new();
    let mut keys = Vec::new();
    for _ in 0..KEYS {
        let start = Instant::now();
        keys.push(ViewerKey::generate(&mut OsRng).context("generating an RSA key")?);
        keygen.push(start.elapsed());
    }

    eprintln!("net-bench: handshakes");
    for (label, password) in [
        ("no password", None),
        ("with password (SPAKE2)", Some("pw")),
    ] {
        let config = HandshakeConfig::with_password(password);
        let mut times = Vec::with_capacity(HANDSHAKES);
        for i in 0..HANDSHAKES {
            let start = Instant::now();
            let pair = handshake(&config, &keys[i % KEYS], ChannelId(1))?;
            times.push(start.elapsed());
            black_box(pair);
        }
        table.row(
            format!("handshake in memory, {label}"),
            percentiles(&mut times),
            format!("{HANDSHAKES} runs, both sides, key generation excluded"),
        );
    }
    let (mut full, mut joins) = runtime.block_on(session_setups(&keys))?;
    table.row(
        "session set-up through the relay".into(),
        percentiles(&mut full),
        format!(
            "{SESSIONS} runs over loopback: host registers, viewer joins, handshake, \
             until both sides confirmed keys; key generation excluded"
        ),
    );
    table.row(
        "  of which: join until keys confirmed".into(),
        percentiles(&mut joins),
        "from the viewer's connect; the rest is the host's registration".into(),
    );
    table.row(
        "RSA-2048 key generation (excluded above)".into(),
        percentiles(&mut keygen),
        format!("{KEYS} keys; done ahead of time, off the UI thread"),
    );

    eprintln!("net-bench: sealing");
    let (mut host, _) = handshake(&HandshakeConfig::default(), &keys[0], ChannelId(1))?;
    for size in [16 * KIB, MIB] {
        let plaintext = vec![0x5a; size];
        // A first round warms caches and clocks up; it does not count.
        let mut rounds = Vec::with_capacity(ROUNDS);
        for _ in 0..=ROUNDS {
            let start = Instant::now();
            let mut bytes = 0u64;
            while start.elapsed() < SEAL_TIME {
                black_box(host.sealer.seal(black_box(&plaintext))?);
                bytes += size as u64;
            }
            rounds.push(Moved {
                bytes,
                elapsed: start.elapsed(),
            });
        }
        let m = best(rounds.split_off(1));
        table.row(
            format!("AES-256-GCM seal, record::Sealer, {}", human(size)),
            mb_per_s(&m),
            format!("{}, one core, best of {ROUNDS}", moved(&m)),
        );
    }
    let (openssl, detail) = match openssl_speed() {
        Ok(bytes_per_s) => (
            format!("{:.0} MB/s", bytes_per_s / 1e6),
            format!(
                "openssl speed -evp aes-256-gcm -bytes 16384 -seconds {}, one core, best of {ROUNDS}",
                SEAL_TIME.as_secs()
            ),
        ),
        Err(OpensslError::NotFound) => ("openssl not found".to_owned(), String::new()),
        Err(OpensslError::Failed(why)) => ("openssl failed".to_owned(), why),
    };
    table.row("AES-256-GCM seal, openssl, 16 KiB".into(), openssl, detail);

    eprintln!("net-bench: forwarding");
    let proxy = Tinyproxy::start();
    let mut links = vec![Link::Tls, Link::WebSocket];
    match &proxy {
        Ok(p) => links.push(Link::Proxy(p.url.clone())),
        Err(e) => table.row(
            Link::Proxy(String::new()).label().into(),
            "not measured".into(),
            format!("{e:#}"),
        ),
    }
    for size in [64 * KIB, MIB] {
        let paths = [Path::Direct, Path::Copy, Path::CopyBuf]
            .into_iter()
            .chain(links.iter().cloned().map(Path::Relay));
        for path in paths {
            let mut rounds = Vec::with_capacity(ROUNDS);
            for _ in 0..ROUNDS {
                rounds.push(runtime.block_on(forward(&path, &keys[0], size))?);
            }
            let m = best(rounds);
            table.row(
                format!("{}, {} frames", path.label(), human(size)),
                mb_per_s(&m),
                format!(
                    "{}, best of {ROUNDS}, window {}",
                    moved(&m),
                    human(WINDOW as usize)
                ),
            );
        }
    }

    eprintln!("net-bench: round trips");
    let mut times = runtime.block_on(direct_round_trips(&keys[0], ROUND_TRIPS))?;
    table.row(
        "direct TCP, round trip of a 256-byte frame".into(),
        percentiles(&mut times),
        format!("{ROUND_TRIPS} host → viewer → host echoes"),
    );
    for link in &links {
        let mut times = runtime.block_on(async {
            RelayPair::open(link)
                .await?
                .round_trips(&keys[0], ROUND_TRIPS)
                .await
        })?;
        table.row(
            format!("{}, round trip of a 256-byte frame", link.label()),
            percentiles(&mut times),
            format!("{ROUND_TRIPS} host → viewer → host echoes"),
        );
    }
    drop(proxy);

    println!("{}", machine());
    table.print();
    Ok(())
}

/// One whole handshake in memory; returns the host's and the viewer's
/// established sessions.
fn handshake(
    config: &HandshakeConfig,
    key: &ViewerKey,
    channel: ChannelId,
) -> Result<(Established, Established)> {
    let (host, hello) = HostHandshake::start(config, channel, &mut OsRng);
    let viewer = ViewerHandshake::start(config, "bench", key.clone(), channel);
    let (viewer, viewer_hello) = viewer.receive(&hello, &mut OsRng)?;
    let (host, key_transport) = host.receive(&viewer_hello, &mut OsRng)?;
    let (viewer, [reveal, viewer_finished]) = viewer.receive(&key_transport)?;
    let host = host.receive(&reveal)?;
    let (host, host_finished) = host.receive(viewer_finished)?;
    let viewer = viewer.receive(host_finished)?;
    if host.code != viewer.code {
        bail!("the two sides derived different codes");
    }
    Ok((host, viewer))
}

/// Times host+viewer sessions through a relay task until both sides have
/// confirmed keys: from the host's registration, and from the viewer's join.
async fn session_setups(keys: &[ViewerKey]) -> Result<(Vec<Duration>, Vec<Duration>)> {
    let scratch = Scratch::new("sessions")?;
    let relay = Relay::bind(RelayConfig::new(loopback(), scratch.0.clone()))
        .await
        .context("starting the relay")?
        .spawn();
    let addr = relay.addr;
    let mut full = Vec::with_capacity(SESSIONS);
    let mut joins = Vec::with_capacity(SESSIONS);
    for i in 0..SESSIONS {
        let start = Instant::now();
        let mut host = start_host(HostOptions {
            relay: addr.into(),
            connect: pinned(relay.fingerprint),
            handshake: HandshakeConfig::default(),
            direct: None,
        })
        .await?;
        let join = Instant::now();
        let mut viewer = start_viewer(ViewerOptions {
            relay: addr.into(),
            connect: pinned(relay.fingerprint),
            number: host.number,
            handshake: HandshakeConfig::default(),
            name: "bench".into(),
            key: keys[i % keys.len()].clone(),
            direct: false,
        })
        .await?;
        let both = async {
            let host_ready = async {
                while let Some(event) = host.events.recv().await {
                    match event {
                        HostEvent::ViewerRequest { .. } => return Ok(()),
                        HostEvent::HandshakeFailed { error, .. } => bail!("host: {error}"),
                        HostEvent::Ended(end) => bail!("host: {end}"),
                        _ => {}
                    }
                }
                bail!("host: session task gone")
            };
            let viewer_ready = async {
                while let Some(event) = viewer.events.recv().await {
                    match event {
                        ViewerEvent::Connected => return Ok(()),
                        ViewerEvent::Ended(end) => bail!("viewer: {end}"),
                        _ => {}
                    }
                }
                bail!("viewer: session task gone")
            };
            tokio::try_join!(host_ready, viewer_ready)
        };
        tokio::time::timeout(Duration::from_secs(10), both)
            .await
            .context("a session set-up took over 10 s")??;
        full.push(start.elapsed());
        joins.push(join.elapsed());
        viewer.handle.leave();
        host.handle.end();
    }
    relay.shutdown().await;
    Ok((full, joins))
}

/// A few distinct sealed frames of `size` plaintext bytes on `channel`, as
/// wire bytes: what a host sends a viewer, made before any timing starts.
fn sealed_frames(key: &ViewerKey, size: usize, channel: ChannelId) -> Result<Vec<Vec<u8>>> {
    let (mut host, _) = handshake(&HandshakeConfig::default(), key, channel)?;
    (0..4u8)
        .map(|i| Ok(host.sealer.seal(&vec![i; size])?.encode()))
        .collect()
}

#[derive(Debug, Clone)]
enum Path {
    /// Sender connected straight to the receiver.
    Direct,
    /// A `tokio::io::copy` task in between: the plainest forwarder (it
    /// moves 8 KiB per read).
    Copy,
    /// The same with a 64 KiB read buffer (`tokio::io::copy_buf`), the
    /// relay's own read buffer size.
    CopyBuf,
    /// A `Relay` task in between, host to viewer, both linked to it the way
    /// `link` says.
    Relay(Link),
}

/// How host and viewer reach the relay: the ways `connect_relay` tries.
#[derive(Debug, Clone)]
enum Link {
    /// TLS on the relay's own port.
    Tls,
    /// A WebSocket over TLS.
    WebSocket,
    /// A WebSocket over TLS through an HTTP proxy (CONNECT) at this URL.
    Proxy(String),
}

impl Link {
    fn label(&self) -> &'static str {
        match self {
            Link::Tls => "relay, TLS link",
            Link::WebSocket => "relay, WebSocket link",
            Link::Proxy(_) => "relay, WebSocket link via tinyproxy",
        }
    }
}

impl Path {
    fn label(&self) -> &'static str {
        match self {
            Path::Direct => "loopback TCP, direct (as host↔viewer direct path)",
            Path::Copy => "loopback TCP via tokio::io::copy",
            Path::CopyBuf => "loopback TCP via copy_buf, 64 KiB buffer",
            Path::Relay(link) => link.label(),
        }
    }
}

/// Bytes a round moved (sealed, or delivered to the receiver) and how long
/// it took.
struct Moved {
    bytes: u64,
    elapsed: Duration,
}

/// Streams at least [`STREAM_BYTES`] of sealed frames of `size` plaintext
/// bytes along `path`.
async fn forward(path: &Path, key: &ViewerKey, size: usize) -> Result<Moved> {
    match path {
        Path::Direct => {
            let frames = sealed_frames(key, size, ChannelId(1))?;
            let listener = TcpListener::bind(loopback()).await?;
            let sender = connect(listener.local_addr()?).await?;
            let (receiver, _) = listener.accept().await?;
            receiver.set_nodelay(true)?;
            stream(FrameWriter::new(sender), FrameReader::new(receiver), frames).await
        }
        Path::Copy | Path::CopyBuf => {
            let copy_path = path.clone();
            let frames = sealed_frames(key, size, ChannelId(1))?;
            let to_receiver = TcpListener::bind(loopback()).await?;
            let to_forwarder = TcpListener::bind(loopback()).await?;
            let receiver_addr = to_receiver.local_addr()?;
            let forwarder_addr = to_forwarder.local_addr()?;
            let forwarder = tokio::spawn(async move {
                let (mut inbound, _) = to_forwarder.accept().await?;
                inbound.set_nodelay(true)?;
                let mut outbound = connect(receiver_addr).await?;
                let copied = match copy_path {
                    Path::CopyBuf => {
                        let mut inbound = BufReader::with_capacity(64 * KIB, inbound);
                        tokio::io::copy_buf(&mut inbound, &mut outbound).await?
                    }
                    _ => tokio::io::copy(&mut inbound, &mut outbound).await?,
                };
                anyhow::Ok(copied)
            });
            let sender = connect(forwarder_addr).await?;
            let (receiver, _) = to_receiver.accept().await?;
            receiver.set_nodelay(true)?;
            let moved = stream(FrameWriter::new(sender), FrameReader::new(receiver), frames).await;
            forwarder.await??;
            moved
        }
        Path::Relay(link) => {
            let pair = RelayPair::open(link).await?;
            let frames = sealed_frames(key, size, pair.channel)?;
            let moved = stream(pair.host_writer, pair.viewer_reader, frames).await;
            drop((pair.host_reader, pair.viewer_writer));
            pair.relay.shutdown().await;
            moved
        }
    }
}

type LinkRead = tokio::io::ReadHalf<fernsicht_net::transport::BoxStream>;
type LinkWrite = tokio::io::WriteHalf<fernsicht_net::transport::BoxStream>;

/// A host and a viewer on raw links, speaking the relay protocol through
/// the public API: registered and joined, ready to stream.
struct RelayPair {
    relay: fernsicht_net::relay::RelayHandle,
    channel: ChannelId,
    host_reader: FrameReader<LinkRead>,
    host_writer: FrameWriter<LinkWrite>,
    viewer_reader: FrameReader<LinkRead>,
    viewer_writer: FrameWriter<LinkWrite>,
    _scratch: Scratch,
}

impl RelayPair {
    async fn open(link: &Link) -> Result<RelayPair> {
        let scratch = Scratch::new("relay")?;
        let relay = Relay::bind(RelayConfig::new(loopback(), scratch.0.clone()))
            .await
            .context("starting the relay")?
            .spawn();

        let (host_read, host_write) = relay_link(&relay, link).await?;
        let (mut host_reader, mut host_writer) =
            (FrameReader::new(host_read), FrameWriter::new(host_write));
        host_writer
            .write_frame(
                &ClientRequest::Register {
                    protocol: RELAY_PROTOCOL,
                }
                .to_frame(),
            )
            .await?;
        let number = match relay_event(&mut host_reader).await? {
            RelayEvent::Registered { number } => number,
            other => bail!("the relay answered the registration with {other:?}"),
        };

        let (viewer_read, viewer_write) = relay_link(&relay, link).await?;
        let (mut viewer_reader, mut viewer_writer) = (
            FrameReader::new(viewer_read),
            FrameWriter::new(viewer_write),
        );
        viewer_writer
            .write_frame(
                &ClientRequest::Join {
                    protocol: RELAY_PROTOCOL,
                    number,
                }
                .to_frame(),
            )
            .await?;
        let channel = match relay_event(&mut viewer_reader).await? {
            RelayEvent::Joined { channel } => channel,
            other => bail!("the relay answered the join with {other:?}"),
        };
        match relay_event(&mut host_reader).await? {
            RelayEvent::ViewerJoined { channel: c } if c == channel => {}
            other => bail!("the relay told the host {other:?} instead of the join"),
        }
        Ok(RelayPair {
            relay,
            channel: ChannelId(channel),
            host_reader,
            host_writer,
            viewer_reader,
            viewer_writer,
            _scratch: scratch,
        })
    }

    /// Round trips through the relay (see [`round_trips`]).
    async fn round_trips(mut self, key: &ViewerKey, count: usize) -> Result<Vec<Duration>> {
        let frames = sealed_frames(key, 256, self.channel)?;
        let times = round_trips(
            (&mut self.host_writer, &mut self.host_reader),
            (&mut self.viewer_writer, &mut self.viewer_reader),
            &frames,
            count,
        )
        .await?;
        self.relay.shutdown().await;
        Ok(times)
    }
}

/// Round trips of one small sealed frame, host → viewer and back: the
/// latency a path adds to every acknowledgement.
async fn round_trips<HW, HR, VW, VR>(
    host: (&mut FrameWriter<HW>, &mut FrameReader<HR>),
    viewer: (&mut FrameWriter<VW>, &mut FrameReader<VR>),
    frames: &[Vec<u8>],
    count: usize,
) -> Result<Vec<Duration>>
where
    HW: AsyncWrite + Unpin,
    HR: AsyncRead + Unpin,
    VW: AsyncWrite + Unpin,
    VR: AsyncRead + Unpin,
{
    let (host_writer, host_reader) = host;
    let (viewer_writer, viewer_reader) = viewer;
    let mut times = Vec::with_capacity(count);
    for i in 0..count {
        let frame = &frames[i % frames.len()];
        let start = Instant::now();
        host_writer.write_raw(frame).await?;
        let (_, there) = viewer_reader
            .read_raw()
            .await?
            .context("the viewer's side closed")?;
        viewer_writer.write_raw(&there).await?;
        let (_, back) = host_reader
            .read_raw()
            .await?
            .context("the host's side closed")?;
        times.push(start.elapsed());
        if back.len() != frame.len() {
            bail!(
                "the echo came back {} bytes long, not {}",
                back.len(),
                frame.len()
            );
        }
    }
    Ok(times)
}

/// Round trips on a direct TCP connection between host and viewer, as
/// the direct path has it after its proof.
async fn direct_round_trips(key: &ViewerKey, count: usize) -> Result<Vec<Duration>> {
    let listener = TcpListener::bind(loopback()).await?;
    let viewer = connect(listener.local_addr()?).await?;
    let (host, _) = listener.accept().await?;
    host.set_nodelay(true)?;
    let (hr, hw) = host.into_split();
    let (vr, vw) = viewer.into_split();
    let frames = sealed_frames(key, 256, ChannelId(1))?;
    round_trips(
        (&mut FrameWriter::new(hw), &mut FrameReader::new(hr)),
        (&mut FrameWriter::new(vw), &mut FrameReader::new(vr)),
        &frames,
        count,
    )
    .await
}

async fn relay_event<R: AsyncRead + Unpin>(reader: &mut FrameReader<R>) -> Result<RelayEvent> {
    let frame = tokio::time::timeout(Duration::from_secs(10), reader.read_frame())
        .await
        .context("the relay did not answer within 10 s")??
        .context("the relay closed the connection")?;
    Ok(RelayEvent::from_frame(&frame)?)
}

/// Sends `frames` round and round until [`STREAM_BYTES`] are out, never more
/// than [`WINDOW`] ahead of the receiver; returns when the receiver has read
/// them all.
async fn stream<W, R>(
    mut writer: FrameWriter<W>,
    mut reader: FrameReader<R>,
    frames: Vec<Vec<u8>>,
) -> Result<Moved>
where
    W: AsyncWrite + Unpin + Send + 'static,
    R: AsyncRead + Unpin,
{
    let (received_tx, mut received_rx) = watch::channel(0u64);
    let start = Instant::now();
    let sender = tokio::spawn(async move {
        let mut sent = 0u64;
        for frame in frames.iter().cycle() {
            if sent >= STREAM_BYTES {
                break;
            }
            while sent.saturating_sub(*received_rx.borrow_and_update()) > WINDOW {
                received_rx.changed().await?;
            }
            writer.write_raw(frame).await?;
            sent += frame.len() as u64;
        }
        writer.shutdown().await?;
        anyhow::Ok(sent)
    });
    let mut received = 0u64;
    while received < STREAM_BYTES {
        let Some((_, raw)) = reader.read_raw().await? else {
            bail!("the stream ended after {received} bytes");
        };
        received += raw.len() as u64;
        received_tx.send_replace(received);
    }
    let elapsed = start.elapsed();
    let sent = sender.await??;
    if sent != received {
        bail!("sent {sent} bytes but received {received}");
    }
    Ok(Moved {
        bytes: received,
        elapsed,
    })
}

/// Trusts exactly this relay, on its main port only.
fn pinned(fingerprint: fernsicht_net::tls::Fingerprint) -> ConnectOptions {
    ConnectOptions {
        trust: fernsicht_net::tls::RelayTrust::Pinned(fingerprint),
        proxy: fernsicht_net::transport::proxy::ProxySetting::Off,
        fallback_ports: Vec::new(),
        ..Default::default()
    }
}

/// A link to the relay as clients have it, split in halves. The
/// WebSocket kinds are told a dead main port, so that they get there the
/// way a client behind a firewall does.
async fn relay_link(
    relay: &fernsicht_net::relay::RelayHandle,
    link: &Link,
) -> Result<(LinkRead, LinkWrite)> {
    let mut options = pinned(relay.fingerprint);
    let mut addr: fernsicht_net::client::RelayAddr = relay.addr.into();
    if !matches!(link, Link::Tls) {
        let dead = std::net::TcpListener::bind(loopback())?
            .local_addr()?
            .port();
        addr = fernsicht_net::client::RelayAddr::new("127.0.0.1", dead);
        options.fallback_ports = vec![relay.addr.port()];
    }
    if let Link::Proxy(url) = link {
        options.proxy = fernsicht_net::transport::proxy::ProxySetting::Url(url.clone());
    }
    let opened = fernsicht_net::transport::connect::connect_relay(&addr, &options).await?;
    let want_proxy = matches!(link, Link::Proxy(_));
    match (&opened.path, link) {
        (fernsicht_net::transport::connect::LinkPath::Tls { .. }, Link::Tls) => {}
        (fernsicht_net::transport::connect::LinkPath::WebSocket { proxy, .. }, _)
            if proxy.is_some() == want_proxy && !matches!(link, Link::Tls) => {}
        (got, _) => bail!("wanted a {} but connected by {got}", link.label()),
    }
    Ok(tokio::io::split(opened.stream))
}

/// A tinyproxy on loopback for the proxied link, stopped when dropped.
struct Tinyproxy {
    child: std::process::Child,
    url: String,
    _dir: Scratch,
}

impl Tinyproxy {
    fn start() -> Result<Tinyproxy> {
        let dir = Scratch::new("tinyproxy")?;
        let port = std::net::TcpListener::bind(loopback())?
            .local_addr()?
            .port();
        let conf = dir.0.join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 600\nMaxClients 20\n\
                 LogLevel Error\nBasicAuth bench bench\nAllow 127.0.0.1\n"
            ),
        )?;
        let child = std::process::Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting tinyproxy (apt install tinyproxy)")?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("tinyproxy did not listen on port {port}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Tinyproxy {
            child,
            url: format!("http://bench:bench@127.0.0.1:{port}"),
            _dir: dir,
        })
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn connect(addr: SocketAddr) -> Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// AES-256-GCM bytes per second of `openssl speed` for 16 KiB blocks, the
/// best of [`ROUNDS`] runs of [`SEAL_TIME`] each.
fn openssl_speed() -> Result<f64, OpensslError> {
    let seconds = SEAL_TIME.as_secs().to_string();
    let mut best = 0.0f64;
    for _ in 0..ROUNDS {
        let out = std::process::Command::new("openssl")
            .args(["speed", "-evp", "aes-256-gcm", "-bytes", "16384"])
            .args(["-seconds", &seconds])
            .output()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => OpensslError::NotFound,
                _ => OpensslError::Failed(e.to_string()),
            })?;
        if !out.status.success() {
            return Err(OpensslError::Failed(
                String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            ));
        }
        let rate = parse_openssl_speed(&String::from_utf8_lossy(&out.stdout))
            .ok_or_else(|| OpensslError::Failed("unexpected output of openssl speed".into()))?;
        best = best.max(rate);
    }
    Ok(best)
}

enum OpensslError {
    NotFound,
    Failed(String),
}

/// Reads the 16384-byte column of `openssl speed` output, which looks like
/// `type 16384 bytes` over `AES-256-GCM 3533060.65k` (in 1000s of bytes/s).
fn parse_openssl_speed(text: &str) -> Option<f64> {
    let header = text.lines().find(|l| l.starts_with("type"))?;
    let column = header
        .split_whitespace()
        .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
        .position(|t| t == "16384")?;
    let row = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("aes-256-gcm"))?;
    let value = row.split_whitespace().nth(1 + column)?;
    let thousands: f64 = value.trim_end_matches('k').parse().ok()?;
    Some(thousands * 1000.0)
}

/// A scratch directory for a relay's state, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("net-bench-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One line about the machine the figures come from.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, name)| name.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!(
        "machine: {cores} cores available, {cpu}, {}-{}; release build of fernsicht-net {}",
        std::env::consts::OS,
        std::env::consts::ARCH,
        env!("CARGO_PKG_VERSION"),
    )
}

fn percentiles(times: &mut [Duration]) -> String {
    times.sort();
    let at = |q: f64| {
        let i = ((times.len().saturating_sub(1)) as f64 * q).round() as usize;
        times.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    format!("p50 {:.2} ms, p99 {:.2} ms", at(0.5), at(0.99))
}

fn rate(m: &Moved) -> f64 {
    m.bytes as f64 / m.elapsed.as_secs_f64()
}

/// The fastest of several rounds.
fn best(rounds: Vec<Moved>) -> Moved {
    rounds
        .into_iter()
        .max_by(|a, b| rate(a).total_cmp(&rate(b)))
        .unwrap_or(Moved {
            bytes: 0,
            elapsed: Duration::from_secs(1),
        })
}

fn mb_per_s(m: &Moved) -> String {
    format!("{:.0} MB/s", rate(m) / 1e6)
}

fn human(bytes: usize) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{} KiB", bytes / KIB)
    }
}

fn moved(m: &Moved) -> String {
    format!(
        "{} bytes ({:.2} GiB) in {:.2} s",
        m.bytes,
        m.bytes as f64 / (1u64 << 30) as f64,
        m.elapsed.as_secs_f64()
    )
}

/// The results, printed as one Markdown table.
#[derive(Default)]
struct Table(Vec<[String; 3]>);

impl Table {
    fn row(&mut self, what: String, result: String, detail: String) {
        self.0.push([what, result, detail]);
    }

    fn print(&self) {
        let header = ["measurement", "result", "detail"].map(String::from);
        let mut widths = [0usize; 3];
        for row in std::iter::once(&header).chain(&self.0) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |row: &[String; 3]| {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            println!("| {} |", cells.join(" | "));
        };
        line(&header);
        println!("|{}|", widths.map(|w| "-".repeat(w + 2)).join("|"));
        for row in &self.0 {
            line(row);
        }
    }
}
