//! transfer-bench: file transfer throughput through a relay on loopback,
//! next to a plain copy of the same file through a socket (`cat | nc`, and
//! socat), in the same run; how video frames fare while a large file shares
//! their way; and the hash and cipher speeds the transfer rests on, which
//! is why it hashes with BLAKE3.
//!
//! Everything runs on this machine: the relay, host and viewer in this
//! process (as in the app with its embedded relay; both legs of the relay
//! over TLS, the session sealed end to end inside), the plain copies as
//! Debian's `nc` and `socat` processes. Throughput figures are the best of
//! three rounds, the source file in the page cache for all of them.
//!
//! The video measurement: the host sends a 40 KB frame every 33 ms (about
//! 10 Mbit/s, four times what full-screen motion at 1080p costs with
//! openh264, see the README) into the same session, first alone, then while it sends the file to the viewer the
//! same way. Each frame's delay is the time from handing it to the session
//! to its arrival at the viewer's session task; the gap is the longest wait
//! between two arrivals.
//!
//! Usage: `cargo run --release -p fernsicht-net --bin transfer-bench -- [MiB]`

use anyhow::{Context, bail};
use fernsicht_net::ChannelId;
use fernsicht_net::client::{
    ConnectOptions, HostEvent, HostHandle, HostOptions, RelayAddr, ViewerEvent, ViewerOptions,
    start_host, start_viewer,
};
use fernsicht_net::handshake::{HandshakeConfig, ViewerKey};
use fernsicht_net::message::{Message, Permission, VideoFrame};
use fernsicht_net::relay::{Relay, RelayConfig, RelayHandle};
use fernsicht_net::transfer::service::{ServiceConfig, TransferEvent, TransferService};
use rand::RngCore;
use sha2::Digest;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const ROUNDS: usize = 3;
/// The stand-in video: frame size and interval.
const FRAME_BYTES: usize = 40_000;
const FRAME_EVERY: Duration = Duration::from_millis(33);
/// How long video runs alone for the baseline.
const VIDEO_ALONE: Duration = Duration::from_secs(3);

fn mb_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Copies `src` to `dst` through a loopback socket with the given
/// listener and sender commands (shell), returning the time from the
/// sender's start to the listener's exit. A sender that finds nobody
/// listening yet (a busy machine starts the listener late) tries again; a
/// listener that never finishes is killed and the copy counts as failed.
fn socket_copy(listen: &str, send: &str) -> anyhow::Result<Duration> {
    let mut receiver = Command::new("sh")
        .arg("-c")
        .arg(format!("exec {listen}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(300));
    let mut start = Instant::now();
    let mut sent = false;
    for _ in 0..50 {
        start = Instant::now();
        let status = Command::new("sh")
            .arg("-c")
            .arg(send)
            .stderr(Stdio::null())
            .status()?;
        if status.success() {
            sent = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    let received = loop {
        if let Some(status) = receiver.try_wait()? {
            break status;
        }
        if Instant::now() > deadline || !sent {
            let _ = receiver.kill();
            let _ = receiver.wait();
            bail!("copy failed: {send}");
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let elapsed = start.elapsed();
    if !received.success() {
        bail!("copy failed: {listen}");
    }
    Ok(elapsed)
}

fn best(mut f: impl FnMut() -> anyhow::Result<Duration>) -> anyhow::Result<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..ROUNDS {
        best = best.min(f()?);
    }
    Ok(best)
}

fn same_file(a: &Path, b: &Path) -> anyhow::Result<bool> {
    let ha = blake3::hash(&std::fs::read(a)?);
    let hb = blake3::hash(&std::fs::read(b)?);
    Ok(ha == hb)
}

/// Trust exactly this relay's certificate, straight over TLS (no proxy,
/// no WebSocket fallback): the link the app has to its embedded relay.
fn pinned(fingerprint: fernsicht_net::tls::Fingerprint) -> ConnectOptions {
    ConnectOptions {
        trust: fernsicht_net::tls::RelayTrust::Pinned(fingerprint),
        proxy: fernsicht_net::transport::proxy::ProxySetting::Off,
        fallback_ports: Vec::new(),
        ..Default::default()
    }
}

/// A host and an allowed viewer through a fresh relay on loopback, each
/// with a transfer service; the host takes files into `DIR/inbox`, the
/// viewer into `DIR/downloads`. The viewer reports the video frames it
/// receives, with their arrival time.
struct Pair {
    relay: RelayHandle,
    data: PathBuf,
    host: HostHandle,
    host_svc: TransferService,
    host_events: mpsc::UnboundedReceiver<TransferEvent>,
    /// The viewer as the host names it.
    viewer_at_host: ChannelId,
    /// The viewer's own channel (its service names transfers by it).
    viewer_channel: ChannelId,
    viewer_svc: TransferService,
    viewer_events: mpsc::UnboundedReceiver<TransferEvent>,
    frames: mpsc::UnboundedReceiver<(Instant, u64)>,
}

impl Pair {
    async fn start(dir: &Path, key: ViewerKey) -> anyhow::Result<Pair> {
        let data = dir.join("relay");
        let (inbox, downloads) = (dir.join("inbox"), dir.join("downloads"));
        std::fs::create_dir_all(&inbox)?;
        std::fs::create_dir_all(&downloads)?;
        let relay = Relay::bind(RelayConfig::new("127.0.0.1:0".parse()?, data.clone()))
            .await?
            .spawn();
        let addr: RelayAddr = relay.addr.into();
        let mut host = start_host(HostOptions {
            family: Vec::new(),
            relay: addr.clone(),
            handshake: HandshakeConfig::default(),
            connect: pinned(relay.fingerprint),
            direct: None,
        })
        .await?;
        let (host_svc, host_events) = TransferService::spawn(
            Arc::new(host.handle.clone()),
            ServiceConfig {
                auto_accept: Some(inbox),
                ..ServiceConfig::default()
            },
        );
        let mut viewer = start_viewer(ViewerOptions {
            family: Vec::new(),
            relay: addr,
            number: host.number,
            handshake: HandshakeConfig::default(),
            name: "bench".into(),
            key,
            connect: pinned(relay.fingerprint),
            direct: false,
        })
        .await?;
        let host_handle = host.handle.clone();
        let (allowed_tx, mut allowed) = mpsc::unbounded_channel();
        let (handle, routing) = (host.handle.clone(), host_svc.clone());
        tokio::spawn(async move {
            while let Some(e) = host.events.recv().await {
                if let Some(HostEvent::ViewerRequest { viewer, .. }) = routing.host_event(e) {
                    handle.decide(viewer, Some(Permission::Control));
                    let _ = allowed_tx.send(viewer);
                }
            }
        });
        let viewer_at_host = allowed.recv().await.context("the host's session ended")?;
        loop {
            match viewer.events.recv().await {
                Some(ViewerEvent::Allowed(_)) => break,
                Some(ViewerEvent::Ended(e)) => bail!("viewer session ended: {e}"),
                Some(_) => {}
                None => bail!("viewer session ended"),
            }
        }
        let (viewer_svc, viewer_events) = TransferService::spawn(
            Arc::new(viewer.handle.clone()),
            ServiceConfig {
                auto_accept: Some(downloads),
                ..ServiceConfig::default()
            },
        );
        let me = viewer.channel;
        let routing = viewer_svc.clone();
        let (frame_tx, frames) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(e) = viewer.events.recv().await {
                if let Some(ViewerEvent::Message(Message::Video(v))) = routing.viewer_event(me, e) {
                    let _ = frame_tx.send((Instant::now(), v.id));
                }
            }
        });
        Ok(Pair {
            relay,
            data,
            host: host_handle,
            host_svc,
            host_events,
            viewer_at_host,
            viewer_channel: me,
            viewer_svc,
            viewer_events,
            frames,
        })
    }

    async fn stop(self) {
        self.host.end();
        self.relay.shutdown().await;
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// Waits for the end of the transfer on one side: `Started` time, `Finished` time.
async fn until_finished(
    events: &mut mpsc::UnboundedReceiver<TransferEvent>,
) -> anyhow::Result<(Option<Instant>, Instant)> {
    let mut started = None;
    loop {
        match events.recv().await {
            Some(TransferEvent::Started { .. }) => started = Some(Instant::now()),
            Some(TransferEvent::Finished { .. }) => return Ok((started, Instant::now())),
            Some(TransferEvent::Failed { reason, .. }) => bail!("transfer failed: {reason}"),
            Some(_) => {}
            None => bail!("transfer service ended"),
        }
    }
}

/// One transfer viewer → host: (total from "send" to "done", the part
/// after the manifest was made and accepted).
async fn throughput_round(
    src: &Path,
    dir: &Path,
    key: ViewerKey,
) -> anyhow::Result<(Duration, Duration)> {
    let mut pair = Pair::start(dir, key).await?;
    let start = Instant::now();
    pair.viewer_svc
        .send_files(vec![pair.viewer_channel], vec![src.to_path_buf()]);
    let (started, done) = until_finished(&mut pair.viewer_events).await?;
    // The receiver's "done" follows the sender's by a message.
    until_finished(&mut pair.host_events).await?;
    let received = dir.join("inbox").join(src.file_name().unwrap_or_default());
    if !same_file(src, &received)? {
        bail!("the transferred file differs");
    }
    pair.stop().await;
    let total = done - start;
    Ok((total, done - started.unwrap_or(start)))
}

/// Sends stand-in video frames from the host until told to stop; returns
/// when each frame (by id) was handed to the session.
fn spawn_video(
    host: HostHandle,
    viewer: ChannelId,
    stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Vec<Instant>> {
    tokio::spawn(async move {
        let mut sent = Vec::new();
        let mut tick = tokio::time::interval(FRAME_EVERY);
        let mut data = vec![0u8; FRAME_BYTES];
        rand::thread_rng().fill_bytes(&mut data);
        while !*stop.borrow() {
            tick.tick().await;
            let frame = Message::Video(VideoFrame {
                id: sent.len() as u64,
                display: 0,
                width: 1920,
                height: 1080,
                keyframe: false,
                captured_us: 0,
                data: data.clone(),
            });
            sent.push(Instant::now());
            host.send_to(viewer, &frame);
        }
        sent
    })
}

/// Frames received, their delays and the gaps between them.
#[derive(Debug, Default)]
struct VideoStats {
    frames: usize,
    delay_p50: Duration,
    delay_p99: Duration,
    delay_max: Duration,
    gap_max: Duration,
}

fn video_stats(sent: &[Instant], received: &[(Instant, u64)]) -> VideoStats {
    let mut delays: Vec<Duration> = received
        .iter()
        .filter_map(|(at, id)| Some(at.saturating_duration_since(*sent.get(*id as usize)?)))
        .collect();
    delays.sort();
    let pick = |q: f64| {
        delays
            .get(((delays.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    let gap_max = received
        .windows(2)
        .map(|w| w[1].0.saturating_duration_since(w[0].0))
        .max()
        .unwrap_or_default();
    VideoStats {
        frames: received.len(),
        delay_p50: pick(0.5),
        delay_p99: pick(0.99),
        delay_max: delays.last().copied().unwrap_or_default(),
        gap_max,
    }
}

/// Video alone, then video while the host sends `src` to the viewer:
/// (video alone, video during the transfer, the transfer's time).
async fn video_round(
    src: &Path,
    dir: &Path,
    key: ViewerKey,
) -> anyhow::Result<(VideoStats, VideoStats, Duration)> {
    let mut pair = Pair::start(dir, key).await?;
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    let video = spawn_video(pair.host.clone(), pair.viewer_at_host, stop);

    tokio::time::sleep(VIDEO_ALONE).await;
    let mut alone = Vec::new();
    while let Ok(f) = pair.frames.try_recv() {
        alone.push(f);
    }
    // The first frames include the session's warm-up.
    let alone: Vec<_> = alone.into_iter().skip(5).collect();

    pair.host_svc
        .send_files(vec![pair.viewer_at_host], vec![src.to_path_buf()]);
    let (started, done) = until_finished(&mut pair.host_events).await?;
    until_finished(&mut pair.viewer_events).await?;
    let started = started.context("the transfer never started")?;
    let _ = stop_tx.send(true);
    let sent = video.await?;
    let mut during = Vec::new();
    while let Ok(f) = pair.frames.try_recv() {
        if f.0 >= started && f.0 <= done {
            during.push(f);
        }
    }
    let received = dir
        .join("downloads")
        .join(src.file_name().unwrap_or_default());
    if !same_file(src, &received)? {
        bail!("the transferred file differs");
    }
    pair.stop().await;
    Ok((
        video_stats(&sent, &alone),
        video_stats(&sent, &during),
        done - started,
    ))
}

/// A scratch folder, removed when the bench ends (even on error).
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() -> anyhow::Result<()> {
    let mib: u64 = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()
        .context("size in MiB")?
        .unwrap_or(512);
    let bytes = mib << 20;
    let dir = Scratch(std::env::temp_dir().join(format!("transfer-bench-{}", std::process::id())));
    std::fs::create_dir_all(dir.path())?;
    let src = dir.path().join("source.bin");
    let mut data = vec![0u8; bytes as usize];
    rand::thread_rng().fill_bytes(&mut data);
    std::fs::write(&src, &data)?;

    // What a transfer's bytes go through, one core each.
    let sample = &data[..data.len().min(256 << 20)];
    let t = Instant::now();
    let b3 = blake3::hash(sample);
    let blake3_speed = mb_s(sample.len() as u64, t.elapsed());
    let t = Instant::now();
    let sha = sha2::Sha256::digest(sample);
    let sha_speed = mb_s(sample.len() as u64, t.elapsed());
    let mut buf = sample.to_vec();
    let aead = fernsicht_net::crypto::Aead::new(&[7; 32]);
    let t = Instant::now();
    for (i, chunk) in buf.chunks_mut(256 << 10).enumerate() {
        let mut v = chunk.to_vec();
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&(i as u64).to_be_bytes());
        aead.seal(&nonce, b"", &mut v)
            .map_err(|_| anyhow::anyhow!("seal failed"))?;
    }
    let aes_speed = mb_s(sample.len() as u64, t.elapsed());
    std::hint::black_box((b3, sha));
    drop(data);

    let dst = dir.path().join("copy.bin");
    let port = free_port()?;
    let (s, d) = (src.display(), dst.display());
    let nc = best(|| {
        socket_copy(
            &format!("nc -l 127.0.0.1 {port} > {d}"),
            &format!("cat {s} | nc -N 127.0.0.1 {port}"),
        )
    })?;
    if !same_file(&src, &dst)? {
        bail!("nc copy differs");
    }
    let socat = best(|| {
        socket_copy(
            &format!("socat -u TCP-LISTEN:{port},reuseaddr OPEN:{d},creat,trunc"),
            &format!("cat {s} | socat -u - TCP:127.0.0.1:{port}"),
        )
    })?;
    let socat_big = best(|| {
        socket_copy(
            &format!("socat -u -b 262144 TCP-LISTEN:{port},reuseaddr OPEN:{d},creat,trunc"),
            &format!("socat -u -b 262144 OPEN:{s} TCP:127.0.0.1:{port}"),
        )
    })?;
    std::fs::remove_file(&dst)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let key = ViewerKey::generate(&mut rand::rngs::OsRng)?;
    let mut total = Duration::MAX;
    let mut after = Duration::MAX;
    for round in 0..ROUNDS {
        let round_dir = dir.path().join(format!("round-{round}"));
        let (t, a) = runtime.block_on(throughput_round(&src, &round_dir, key.clone()))?;
        std::fs::remove_dir_all(&round_dir)?;
        total = total.min(t);
        after = after.min(a);
    }
    let video_dir = dir.path().join("video");
    let (alone, during, video_transfer) =
        runtime.block_on(video_round(&src, &video_dir, key.clone()))?;

    let plain = [nc, socat, socat_big].into_iter().min().unwrap_or(nc);
    println!("| what ({mib} MiB, loopback, best of {ROUNDS}) | time | MB/s |");
    println!("|---|---|---|");
    for (what, d) in [
        ("cat | nc -N → nc -l > file", nc),
        ("cat | socat → socat > file (8 KiB buffers)", socat),
        ("socat -b 256K file → socat -b 256K > file", socat_big),
        (
            "fernsicht through the relay: send → done (hashing for the manifest included)",
            total,
        ),
        (
            "fernsicht through the relay: accepted → done (chunks only)",
            after,
        ),
        (
            "fernsicht through the relay, host → viewer with video flowing (chunks only, one round)",
            video_transfer,
        ),
    ] {
        println!(
            "| {what} | {:.3} s | {:.0} |",
            d.as_secs_f64(),
            mb_s(bytes, d)
        );
    }
    println!(
        "\nfernsicht / fastest plain copy: {:.0} % (whole transfer), {:.0} % (chunks only)",
        100.0 * plain.as_secs_f64() / total.as_secs_f64(),
        100.0 * plain.as_secs_f64() / after.as_secs_f64()
    );
    println!(
        "\n| video, {} KB every {} ms, host → viewer | frames | delay p50 | delay p99 | delay max | longest gap |",
        FRAME_BYTES / 1000,
        FRAME_EVERY.as_millis()
    );
    println!("|---|---|---|---|---|---|");
    for (what, v) in [("alone", &alone), ("during the transfer", &during)] {
        println!(
            "| {what} | {} | {} | {} | {} | {} |",
            v.frames,
            ms(v.delay_p50),
            ms(v.delay_p99),
            ms(v.delay_max),
            ms(v.gap_max)
        );
    }
    println!(
        "\none core: BLAKE3 {blake3_speed:.0} MB/s, SHA-256 {sha_speed:.0} MB/s, AES-256-GCM seal {aes_speed:.0} MB/s"
    );
    Ok(())
}
