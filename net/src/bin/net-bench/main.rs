//! `net-bench`: the figures the secure core promises, measured on this
//! machine: handshake time without key generation, AES-256-GCM sealing
//! throughput next to `openssl speed`, and the relay's forwarding throughput
//! next to a plain loopback copy and plain forwarders (`tokio::io::copy`, and
//! `copy_buf` with the relay's 64 KiB read buffer), so that the relay's own
//! cost shows.
//!
//! Per path (direct TCP, direct QUIC, relay over TLS, relay over WebSocket,
//! relay over WebSocket through tinyproxy) it also measures the round trip
//! of a small frame, the delay every acknowledgement pays.
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

mod paths;
mod quic;
mod report;

use paths::*;
use report::*;

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
        let paths = [Path::Direct, Path::Quic, Path::Copy, Path::CopyBuf]
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
    let mut times = runtime.block_on(quic::quic_round_trips(&keys[0], ROUND_TRIPS))?;
    table.row(
        "direct QUIC (punched path), round trip of a 256-byte frame".into(),
        percentiles(&mut times),
        format!("{ROUND_TRIPS} host → viewer → host echoes, one QUIC stream"),
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
            family: Vec::new(),
            relay: addr.into(),
            connect: pinned(relay.fingerprint),
            handshake: HandshakeConfig::default(),
            direct: None,
        })
        .await?;
        let join = Instant::now();
        let mut viewer = start_viewer(ViewerOptions {
            family: Vec::new(),
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
