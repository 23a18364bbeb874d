//! transfer-bench: file transfer throughput through a relay on loopback,
//! next to a plain copy of the same file through a socket (`cat | nc`, and
//! socat), in the same run. Also the hash and cipher speeds the transfer
//! rests on, which is why it hashes with BLAKE3.
//!
//! Everything runs on this machine: the relay, host and viewer in this
//! process (as in the app with its embedded relay), the plain copies as
//! Debian's `nc` and `socat` processes. Each figure is the best of three
//! rounds, the source file in the page cache for all of them.
//!
//! Usage: `cargo run --release -p fernsicht-net --bin transfer-bench -- [MiB]`

use anyhow::{Context, bail};
use fernsicht_net::client::{
    ConnectOptions, HostEvent, HostOptions, RelayAddr, ViewerEvent, ViewerOptions, start_host,
    start_viewer,
};
use fernsicht_net::handshake::{HandshakeConfig, ViewerKey};
use fernsicht_net::message::Permission;
use fernsicht_net::relay::{Relay, RelayConfig};
use fernsicht_net::transfer::service::{ServiceConfig, TransferEvent, TransferService};
use rand::RngCore;
use sha2::Digest;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const ROUNDS: usize = 3;

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
/// sender's start to the listener's exit.
fn socket_copy(listen: &str, send: &str) -> anyhow::Result<Duration> {
    let mut receiver = Command::new("sh")
        .arg("-c")
        .arg(listen)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let status = Command::new("sh").arg("-c").arg(send).status()?;
    let received = receiver.wait()?;
    let elapsed = start.elapsed();
    if !status.success() || !received.success() {
        bail!("copy failed: {send}");
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

/// One transfer through a relay: (total from "send" to "done", the part
/// after the manifest was made and accepted).
async fn fernsicht_round(
    src: &Path,
    inbox: &Path,
    key: ViewerKey,
) -> anyhow::Result<(Duration, Duration)> {
    let data = inbox.with_extension("relay");
    let relay = Relay::bind(RelayConfig::new("127.0.0.1:0".parse()?, data.clone()))
        .await?
        .spawn();
    let addr: RelayAddr = relay.addr.into();
    let mut host = start_host(HostOptions {
        relay: addr.clone(),
        handshake: HandshakeConfig::default(),
        connect: pinned(relay.fingerprint),
        direct: None,
    })
    .await?;
    let (host_svc, mut host_events) = TransferService::spawn(
        Arc::new(host.handle.clone()),
        ServiceConfig {
            auto_accept: Some(inbox.to_path_buf()),
            ..ServiceConfig::default()
        },
    );
    let mut viewer = start_viewer(ViewerOptions {
        relay: addr,
        number: host.number,
        handshake: HandshakeConfig::default(),
        name: "bench".into(),
        key,
        connect: pinned(relay.fingerprint),
        direct: false,
    })
    .await?;
    let handle = host.handle.clone();
    tokio::spawn(async move {
        while let Some(e) = host.events.recv().await {
            if let Some(HostEvent::ViewerRequest { viewer, .. }) = host_svc.host_event(e) {
                handle.decide(viewer, Some(Permission::Control));
            }
        }
    });
    loop {
        match viewer.events.recv().await {
            Some(ViewerEvent::Allowed(_)) => break,
            Some(ViewerEvent::Ended(e)) => bail!("viewer session ended: {e}"),
            Some(_) => {}
            None => bail!("viewer session ended"),
        }
    }
    let (svc, mut events) =
        TransferService::spawn(Arc::new(viewer.handle.clone()), ServiceConfig::default());
    let me = viewer.channel;
    let routing = svc.clone();
    tokio::spawn(async move {
        while let Some(e) = viewer.events.recv().await {
            routing.viewer_event(me, e);
        }
    });
    let start = Instant::now();
    svc.send_files(vec![me], vec![src.to_path_buf()]);
    let mut started = None;
    loop {
        match events.recv().await {
            Some(TransferEvent::Started { .. }) => started = Some(Instant::now()),
            Some(TransferEvent::Finished { .. }) => break,
            Some(TransferEvent::Failed { reason, .. }) => bail!("transfer failed: {reason}"),
            Some(_) => {}
            None => bail!("service ended"),
        }
    }
    let total = start.elapsed();
    let after = started.map(|s| s.elapsed()).unwrap_or(total);
    // The receiver's "done" follows the sender's by a message; wait for it
    // so the next round starts clean.
    while let Some(e) = host_events.recv().await {
        if matches!(
            e,
            TransferEvent::Finished { .. } | TransferEvent::Failed { .. }
        ) {
            break;
        }
    }
    relay.shutdown().await;
    let _ = std::fs::remove_dir_all(&data);
    Ok((total, after))
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
        let inbox = dir.path().join(format!("inbox-{round}"));
        std::fs::create_dir_all(&inbox)?;
        let (t, a) = runtime.block_on(fernsicht_round(&src, &inbox, key.clone()))?;
        if !same_file(&src, &inbox.join("source.bin"))? {
            bail!("the transferred file differs");
        }
        std::fs::remove_dir_all(&inbox)?;
        total = total.min(t);
        after = after.min(a);
    }

    let plain = [nc, socat, socat_big].into_iter().min().unwrap_or(nc);
    println!("| what ({mib} MiB, loopback, best of {ROUNDS}) | time | MB/s |");
    println!("|---|---|---|");
    for (what, d) in [
        ("cat | nc -N → nc -l > file", nc),
        ("cat | socat → socat > file (8 KiB buffers)", socat),
        ("socat -b 256K file → socat -b 256K > file", socat_big),
        (
            "fernsicht: send → done (hashing for the manifest included)",
            total,
        ),
        ("fernsicht: accepted → done (chunks only)", after),
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
        "one core: BLAKE3 {blake3_speed:.0} MB/s, SHA-256 {sha_speed:.0} MB/s, AES-256-GCM seal {aes_speed:.0} MB/s"
    );
    Ok(())
}
