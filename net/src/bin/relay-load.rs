//! `relay-load`: many host/viewer pairs against one `fernsicht-relay`
//! process on loopback. Prints a table: sessions held, the relay's memory
//! per idle session, forwarding delay under a steady load, and saturated
//! throughput next to a plain loopback copy through a forwarder.
//!
//! The pairs speak the relay protocol for real (TLS link, register, join,
//! pings) and then send opaque sealed-type frames, which is all a relay
//! ever sees of a session; no end-to-end handshake is needed for that.
//!
//! ```sh
//! cargo run --release -p fernsicht-net --bin relay-load -- --pairs 1000
//! ```

use anyhow::{Context, bail};
use clap::Parser;
use fernsicht_net::control::{ClientRequest, RELAY_PROTOCOL, RelayEvent};
use fernsicht_net::frame::{ChannelId, Frame, FrameType};
use fernsicht_net::tls::RelayTrust;
use fernsicht_net::transport::connect::{ConnectOptions, connect_relay};
use fernsicht_net::transport::proxy::ProxySetting;
use fernsicht_net::transport::{BoxStream, FrameReader, FrameWriter};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::task::JoinSet;

#[derive(Debug, Parser)]
#[command(about = "Load a fernsicht-relay process with many sessions and report what it holds")]
struct Args {
    /// Host/viewer pairs (sessions) to hold at once.
    #[arg(long, default_value_t = 1000)]
    pairs: usize,
    /// Frames per second each host sends in the steady phase.
    #[arg(long, default_value_t = 10)]
    rate: u32,
    /// Payload bytes per frame in the steady phase.
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// Seconds of each traffic phase.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Pairs that send as fast as they can in the saturation phase.
    #[arg(long, default_value_t = 8)]
    saturating: usize,
    /// Payload bytes per frame in the saturation phase.
    #[arg(long, default_value_t = 64 * 1024)]
    big: usize,
}

/// The relay binary next to this one, as a child process on loopback.
struct RelayProcess {
    child: Child,
    addr: SocketAddr,
    options: ConnectOptions,
    data: std::path::PathBuf,
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

impl RelayProcess {
    fn start() -> anyhow::Result<RelayProcess> {
        let exe = std::env::current_exe()?.with_file_name("fernsicht-relay");
        if !exe.exists() {
            bail!(
                "{} is not built: cargo build --release -p fernsicht-net --bins",
                exe.display()
            );
        }
        let data = std::env::temp_dir().join(format!("relay-load-{}", std::process::id()));
        let mut child = Command::new(&exe)
            .args(["--listen", "127.0.0.1:0", "--data"])
            .arg(&data)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let mut out = BufReader::new(child.stdout.take().context("relay stdout")?);
        let mut line = String::new();
        out.read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .with_context(|| format!("relay said {line:?}"))?
            .parse()?;
        line.clear();
        out.read_line(&mut line)?;
        let pin = line
            .trim()
            .strip_prefix("certificate ")
            .with_context(|| format!("relay said {line:?}"))?
            .parse()?;
        let options = ConnectOptions {
            trust: RelayTrust::Pinned(pin),
            proxy: ProxySetting::Off,
            fallback_ports: Vec::new(),
            attempt_timeout: Duration::from_secs(30),
        };
        Ok(RelayProcess {
            child,
            addr,
            options,
            data,
        })
    }

    /// Resident memory of the relay process, in bytes.
    fn rss(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .context("no VmRSS")?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()?;
        Ok(kib * 1024)
    }
}

/// Bytes a host may have sent that its viewer has not read yet.
const WINDOW: u64 = 8 << 20;

type Reader = FrameReader<ReadHalf<BoxStream>>;
type Writer = FrameWriter<WriteHalf<BoxStream>>;

/// One session through the relay: the host's link and its viewer's.
struct Pair {
    host: (Reader, Writer),
    viewer: (Reader, Writer),
    channel: u16,
}

async fn link(
    relay: &RelayProcess,
    first: ClientRequest,
) -> anyhow::Result<(Reader, Writer, RelayEvent)> {
    let link = connect_relay(&relay.addr.into(), &relay.options).await?;
    let (r, w) = tokio::io::split(link.stream);
    let (mut r, mut w) = (FrameReader::new(r), FrameWriter::new(w));
    w.write_frame(&first.to_frame()).await?;
    let frame = r.read_frame().await?.context("relay closed")?;
    Ok((r, w, RelayEvent::from_frame(&frame)?))
}

async fn open_pair(relay: Arc<RelayProcess>) -> anyhow::Result<Pair> {
    let (hr, hw, registered) = link(
        &relay,
        ClientRequest::Register {
            protocol: RELAY_PROTOCOL,
        },
    )
    .await?;
    let RelayEvent::Registered { number } = registered else {
        bail!("register: {registered:?}");
    };
    let (mut vr, vw, joined) = link(
        &relay,
        ClientRequest::Join {
            protocol: RELAY_PROTOCOL,
            number,
        },
    )
    .await?;
    let RelayEvent::Joined { channel } = joined else {
        bail!("join: {joined:?}");
    };
    // The resume token follows the join.
    let _ = vr.read_frame().await?;
    Ok(Pair {
        host: (hr, hw),
        viewer: (vr, vw),
        channel,
    })
}

/// Nanoseconds since `base`, carried in each frame to time its way through.
fn stamp(base: Instant) -> u64 {
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

#[derive(Default)]
struct Tally {
    delays_us: Vec<u32>,
    bytes: u64,
}

/// Host sends `rate` frames per second (0: as fast as it can) of `size`
/// bytes until `stop`; the viewer times each frame. Returns the viewer's
/// tally and the pair for the next phase.
async fn drive(
    mut pair: Pair,
    base: Instant,
    rate: u32,
    size: usize,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(Pair, Tally)> {
    let channel = pair.channel;
    let (hr, mut hw) = pair.host;
    let (mut vr, mut vw) = pair.viewer;
    // Bytes the viewer has read: the sender keeps at most WINDOW in flight,
    // as the real session's flow control does; without it a flat-out host
    // overruns its viewer and the relay drops that viewer as too slow.
    let read = Arc::new(AtomicU64::new(0));
    let sender = {
        let stop = stop.clone();
        let read = read.clone();
        async move {
            let mut sent = 0u64;
            let mut seq = 0u64;
            let mut tick = (rate > 0).then(|| {
                let mut t = tokio::time::interval(Duration::from_secs(1) / rate);
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            let mut payload = vec![0u8; size.max(8)];
            while !stop.load(Ordering::Relaxed) {
                if let Some(t) = &mut tick {
                    t.tick().await;
                }
                while sent.saturating_sub(read.load(Ordering::Relaxed)) > WINDOW {
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
                payload[..8].copy_from_slice(&stamp(base).to_le_bytes());
                seq += 1;
                sent += payload.len() as u64;
                let frame =
                    Frame::new(FrameType::Sealed, ChannelId(channel), seq, payload.clone())?;
                hw.write_frame(&frame).await?;
            }
            // The end marker: an empty frame.
            hw.write_frame(&Frame::new(
                FrameType::Sealed,
                ChannelId(channel),
                seq + 1,
                Vec::new(),
            )?)
            .await?;
            anyhow::Ok(hw)
        }
    };
    let receiver = async move {
        let mut tally = Tally::default();
        let mut ping = tokio::time::interval(Duration::from_secs(10));
        loop {
            tokio::select! {
                _ = ping.tick() => {
                    vw.write_frame(&ClientRequest::Ping { id: 0 }.to_frame()).await?;
                }
                frame = vr.read_frame() => {
                    let frame = frame?.context("relay closed the viewer")?;
                    if frame.header.frame_type != FrameType::Sealed {
                        continue;
                    }
                    if frame.payload.is_empty() {
                        break;
                    }
                    let sent = u64::from_le_bytes(frame.payload[..8].try_into()?);
                    let delay = stamp(base).saturating_sub(sent) / 1000;
                    tally.delays_us.push(u32::try_from(delay).unwrap_or(u32::MAX));
                    tally.bytes += frame.payload.len() as u64;
                    read.fetch_add(frame.payload.len() as u64, Ordering::Relaxed);
                }
            }
        }
        anyhow::Ok((vr, vw, tally))
    };
    let (hw, received) = tokio::join!(sender, receiver);
    let hw = hw?;
    let (vr, vw, tally) = received?;
    pair.host = (hr, hw);
    pair.viewer = (vr, vw);
    Ok((pair, tally))
}

async fn phase(
    pairs: Vec<Pair>,
    base: Instant,
    rate: u32,
    size: usize,
    seconds: u64,
) -> anyhow::Result<(Vec<Pair>, Tally, Duration)> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = JoinSet::new();
    for pair in pairs {
        tasks.spawn(drive(pair, base, rate, size, stop.clone()));
    }
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Tally::default();
    let mut back = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (pair, tally) = done??;
        all.delays_us.extend(tally.delays_us);
        all.bytes += tally.bytes;
        back.push(pair);
    }
    Ok((back, all, started.elapsed()))
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

/// The same saturating streams through a plain TCP forwarder on loopback
/// (`copy_bidirectional`, no TLS, no routing): what a relay could reach.
async fn plain_copy(streams: usize, size: usize, seconds: u64) -> anyhow::Result<f64> {
    let forwarder = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sink = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let sink_addr = sink.local_addr()?;
    let fwd_addr = forwarder.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut a, _)) = forwarder.accept().await {
            tokio::spawn(async move {
                if let Ok(mut b) = tokio::net::TcpStream::connect(sink_addr).await {
                    let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                }
            });
        }
    });
    let received = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    {
        let received = received.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = sink.accept().await {
                let received = received.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 256 * 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        received.fetch_add(n as u64, Ordering::Relaxed);
                    }
                });
            }
        });
    }
    let mut senders = JoinSet::new();
    for _ in 0..streams {
        let stop = stop.clone();
        senders.spawn(async move {
            let mut s = tokio::net::TcpStream::connect(fwd_addr).await?;
            let buf = vec![7u8; size + fernsicht_net::frame::HEADER_LEN];
            while !stop.load(Ordering::Relaxed) {
                s.write_all(&buf).await?;
            }
            anyhow::Ok(())
        });
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = received.load(Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let bytes = received.load(Ordering::Relaxed) - before;
    let secs = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    senders.abort_all();
    Ok(bytes as f64 / secs / 1e6)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

async fn run(args: Args) -> anyhow::Result<()> {
    // Two sockets per pair here and two in the relay, which inherits this.
    let want = (args.pairs as u64 + args.saturating as u64) * 4 + 256;
    let got = rlimit::increase_nofile_limit(want).context("raising the open-file limit")?;
    if got < want {
        bail!("only {got} open files allowed, {want} needed: raise the hard limit (ulimit -Hn)");
    }
    let relay = Arc::new(RelayProcess::start()?);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_empty = relay.rss()?;

    let started = Instant::now();
    let mut opening = JoinSet::new();
    let mut pairs = Vec::with_capacity(args.pairs);
    // A few hundred handshakes at once at most, like clients arriving.
    let mut next = 0;
    while pairs.len() < args.pairs {
        while next < args.pairs && opening.len() < 256 {
            opening.spawn(open_pair(relay.clone()));
            next += 1;
        }
        let opened = opening.join_next().await.context("no pair task")???;
        pairs.push(opened);
    }
    let setup = started.elapsed();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = relay.rss()?;
    let per_session = rss_idle.saturating_sub(rss_empty) as f64 / args.pairs as f64;

    let base = Instant::now();
    let (pairs, steady, steady_time) =
        phase(pairs, base, args.rate, args.size, args.seconds).await?;
    let rss_steady = relay.rss()?;
    let mut delays = steady.delays_us;
    delays.sort_unstable();

    // Saturation: a few pairs flat out while every other session stays open.
    let mut pairs = pairs;
    let hot: Vec<Pair> = pairs.drain(..args.saturating.min(pairs.len())).collect();
    let (_hot, saturated, saturated_time) = phase(hot, base, 0, args.big, args.seconds).await?;
    let rss_peak = relay.rss()?;
    let relay_mbs = saturated.bytes as f64 / saturated_time.as_secs_f64() / 1e6;
    let mut sat_delays = saturated.delays_us;
    sat_delays.sort_unstable();
    let plain_mbs = plain_copy(args.saturating, args.big, args.seconds).await?;

    println!(
        "relay-load: {} pairs, one fernsicht-relay process on loopback",
        args.pairs
    );
    println!();
    println!("| measurement | result |");
    println!("|---|---|");
    println!(
        "| sessions held (host + viewer each, TLS links) | {} (set up in {:.1} s) |",
        args.pairs,
        setup.as_secs_f64()
    );
    println!(
        "| relay memory: empty / {} idle sessions | {:.1} MiB / {:.1} MiB |",
        args.pairs,
        mib(rss_empty),
        mib(rss_idle)
    );
    println!(
        "| relay memory per idle session | {:.1} KiB |",
        per_session / 1024.0
    );
    println!(
        "| steady load: {} frames/s × {} B per session, {} s | {:.1} MB/s forwarded, {} frames |",
        args.rate,
        args.size,
        args.seconds,
        steady.bytes as f64 / steady_time.as_secs_f64() / 1e6,
        delays.len()
    );
    println!(
        "| forwarding delay host → relay → viewer, steady, p50 / p99 | {:.2} / {:.2} ms |",
        percentile(&delays, 0.5),
        percentile(&delays, 0.99)
    );
    println!(
        "| relay memory under steady load | {:.1} MiB |",
        mib(rss_steady)
    );
    println!(
        "| saturated: {} sessions × {} KiB frames, flat out | {:.0} MB/s, delay p50 / p99 {:.1} / {:.1} ms |",
        args.saturating,
        args.big / 1024,
        relay_mbs,
        percentile(&sat_delays, 0.5),
        percentile(&sat_delays, 0.99)
    );
    println!(
        "| plain loopback copy through a forwarder, same streams | {plain_mbs:.0} MB/s (relay: {:.0} %) |",
        100.0 * relay_mbs / plain_mbs
    );
    println!(
        "| relay memory after saturation | {:.1} MiB |",
        mib(rss_peak)
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Runtime::new()?.block_on(run(args))
}
