//! `latency-bench`: glass-to-glass latency of the whole product on one
//! machine. A host engine shares a private Xvfb (1920×1080) through a relay
//! on loopback to a viewer engine; a painter draws the frame pipeline's four
//! scenes at 30 steps a second with a frame counter on top (16 black/white
//! blocks). For every counter value the viewer decodes, the latency is the
//! time from the painter's X request having been executed to the decoded
//! picture holding that value.
//!
//! Run: `cargo run --release -p fernsicht --bin latency-bench`
//! (`--seconds N` per scene, default 6; `--size WxH`, default 1920x1080).

use anyhow::{Context, Result, bail};
use fernsicht::engine::{
    HostEngine, HostEngineConfig, HostUpdate, RemoteFrame, ViewerEngine, ViewerEngineConfig,
    ViewerUpdate, prewarm_viewer_key,
};
use fernsicht_capture::scenes::{Scene, Stage};
use fernsicht_capture::testing::{Painter, Xvfb};
use fernsicht_net::client::ConnectOptions;
use fernsicht_net::message::Permission;
use fernsicht_net::relay::{Relay, RelayConfig};
use fernsicht_net::tls::RelayTrust;
use fernsicht_net::transport::proxy::ProxySetting;
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

const FPS: u32 = 30;
/// Counter blocks: 16 bits, each a 24×24 square, drawn at the top left.
const BITS: usize = 16;
const BLOCK: u16 = 24;

/// Draws `value` as black/white blocks (white = 1), most significant first.
fn draw_counter(painter: &Painter, value: u16) -> Result<()> {
    for bit in 0..BITS {
        let on = value >> (BITS - 1 - bit) & 1 == 1;
        painter.fill(
            (bit as u16 * BLOCK) as i16,
            0,
            BLOCK,
            BLOCK,
            if on { 0xffffff } else { 0x000000 },
        )?;
    }
    Ok(())
}

/// Reads the counter back from a decoded picture: the centre pixel of each
/// block, thresholded.
fn read_counter(frame: &RemoteFrame) -> u16 {
    let mut value = 0u16;
    for bit in 0..BITS {
        let x = bit * usize::from(BLOCK) + usize::from(BLOCK) / 2;
        let y = usize::from(BLOCK) / 2;
        let i = (y * frame.width as usize + x) * 4;
        let luma = frame.rgba.get(i..i + 3).map_or(0, |p| {
            (u32::from(p[0]) + u32::from(p[1]) + u32::from(p[2])) / 3
        });
        value = value << 1 | u16::from(luma > 128);
    }
    value
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// Wakes the measuring thread when the viewer has a new picture.
#[derive(Default)]
struct Wake {
    flag: Mutex<bool>,
    cv: Condvar,
}

impl Wake {
    fn notify(&self) {
        *self.flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cv.notify_all();
    }

    fn wait(&self, timeout: Duration) {
        let guard = self.flag.lock().unwrap_or_else(|p| p.into_inner());
        let (mut guard, _) = self
            .cv
            .wait_timeout_while(guard, timeout, |f| !*f)
            .unwrap_or_else(|p| p.into_inner());
        *guard = false;
    }
}

struct SceneResult {
    scene: Scene,
    drawn: usize,
    delivered_fps: f64,
    latencies_ms: Vec<f64>,
    kbps: f64,
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let seconds: u64 = arg("--seconds")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(6);
    let (w, h): (u16, u16) = match arg("--size") {
        Some(s) => {
            let (a, b) = s.split_once('x').context("--size WxH")?;
            (a.parse()?, b.parse()?)
        }
        None => (1920, 1080),
    };

    prewarm_viewer_key();
    let xvfb = Xvfb::start(u32::from(w), u32::from(h)).context("starting Xvfb")?;
    let display = xvfb.display().to_owned();
    let stage = Stage::new(&display, w, h)?;
    stage.desktop()?;
    let counter_painter = Painter::connect(&display)?;

    let runtime = tokio::runtime::Runtime::new()?;
    let data = tempfile::tempdir()?;
    let relay = runtime.block_on(async {
        Relay::bind(RelayConfig::new(
            "127.0.0.1:0".parse()?,
            data.path().to_path_buf(),
        ))
        .await
        .map(Relay::spawn)
        .map_err(anyhow::Error::from)
    })?;

    // Exactly this relay, on its main port.
    let connect = ConnectOptions {
        trust: RelayTrust::Pinned(relay.fingerprint),
        proxy: ProxySetting::Off,
        fallback_ports: Vec::new(),
        ..Default::default()
    };
    let mut host_config = HostEngineConfig::new(relay.addr.into());
    host_config.connect = connect.clone();
    host_config.x_display = Some(display.clone());
    host_config.max_fps = FPS as f32;
    host_config.direct = None;
    let mut host = HostEngine::start(host_config, runtime.handle(), Arc::new(|| {}));
    let number = runtime.block_on(async {
        match host.update().await {
            Some(HostUpdate::SessionNumber(n)) => Ok(n),
            other => bail!("host did not register: {other:?}"),
        }
    })?;

    let wake = Arc::new(Wake::default());
    let notify = {
        let wake = wake.clone();
        Arc::new(move || wake.notify())
    };
    let mut viewer = ViewerEngine::start(
        ViewerEngineConfig {
            family: Vec::new(),
            relay: relay.addr.into(),
            connect,
            number,
            password: None,
            name: "latency-bench".into(),
            record: None,
            save_to: None,
            direct: false,
        },
        runtime.handle(),
        notify,
    );
    // Allow the viewer, then wait for its first picture.
    runtime.block_on(async {
        loop {
            match host.update().await {
                Some(HostUpdate::Request { viewer, .. }) => {
                    host.decide(viewer, Some(Permission::ViewOnly));
                }
                Some(HostUpdate::Connected { .. }) => break Ok(()),
                Some(HostUpdate::Ended(why)) => bail!("host ended: {why}"),
                Some(_) => {}
                None => bail!("host engine stopped"),
            }
        }
    })?;
    let mut encoder = String::from("?");
    let deadline = Instant::now() + Duration::from_secs(30);
    while viewer.newest_frame().is_none() {
        while let Some(u) = viewer.try_update() {
            match u {
                ViewerUpdate::Encoder(e) => encoder = e,
                ViewerUpdate::Ended(why) => bail!("viewer ended: {why}"),
                _ => {}
            }
        }
        if Instant::now() > deadline {
            bail!("no picture after 30 s");
        }
        wake.wait(Duration::from_millis(100));
    }
    while let Some(u) = viewer.try_update() {
        if let ViewerUpdate::Encoder(e) = u {
            encoder = e;
        }
    }

    let drawn_at: Arc<Mutex<HashMap<u16, Instant>>> = Arc::default();
    let mut results = Vec::new();
    let mut counter: u16 = 1;
    for scene in [Scene::Static, Scene::Typing, Scene::Scrolling, Scene::Video] {
        stage.desktop()?;
        drawn_at.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let steps = (seconds * u64::from(FPS)) as usize;
        let start_stats = viewer.stats();
        let started = Instant::now();
        let first_counter = counter;
        // The painter runs on this thread's helper; the measuring loop here.
        let painter_done = Arc::new(Mutex::new(false));
        let paint = {
            let drawn_at = drawn_at.clone();
            let done = painter_done.clone();
            let display = display.clone();
            std::thread::spawn(move || -> Result<usize> {
                let stage = Stage::new(&display, w, h)?;
                let period = Duration::from_secs(1) / FPS;
                let t0 = Instant::now();
                let mut c = first_counter;
                for i in 0..steps {
                    let due = t0 + period * i as u32;
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    stage.step(scene, i)?;
                    draw_counter(stage.painter(), c)?;
                    stage.painter().sync()?;
                    drawn_at
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(c, Instant::now());
                    c = c.wrapping_add(1).max(1);
                }
                *done.lock().unwrap_or_else(|p| p.into_inner()) = true;
                Ok(steps)
            })
        };
        let mut latencies = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut delivered = 0usize;
        loop {
            wake.wait(Duration::from_millis(50));
            if let Some(frame) = viewer.take_frame() {
                let now = Instant::now();
                delivered += 1;
                let value = read_counter(&frame);
                let drawn = drawn_at
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&value)
                    .copied();
                if let Some(t) = drawn
                    && seen.insert(value)
                {
                    latencies.push(now.duration_since(t).as_secs_f64() * 1000.0);
                }
            }
            let done = *painter_done.lock().unwrap_or_else(|p| p.into_inner());
            if done && started.elapsed() > Duration::from_secs(seconds) + Duration::from_millis(500)
            {
                break;
            }
        }
        let drawn = paint
            .join()
            .map_err(|_| anyhow::anyhow!("painter thread panicked"))??;
        counter = first_counter.wrapping_add(drawn as u16).max(1);
        let elapsed = started.elapsed().as_secs_f64();
        let end_stats = viewer.stats();
        latencies.sort_by(f64::total_cmp);
        results.push(SceneResult {
            scene,
            drawn,
            delivered_fps: delivered as f64 / elapsed,
            latencies_ms: latencies,
            kbps: (end_stats.bytes_received - start_stats.bytes_received) as f64 * 8.0
                / 1000.0
                / elapsed,
        });
    }
    let _ = draw_counter(&counter_painter, 0);
    viewer.leave();
    host.stop();

    println!(
        "latency-bench: host and viewer engines on one machine ({} cores), relay on loopback, {w}x{h}, painter at {FPS} steps/s, {seconds} s a scene, encoder {encoder}",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!("latency = counter drawn (X request executed) → counter decoded at the viewer");
    println!(
        "| scene | drawn | delivered frames/s | counters seen | latency p50 | latency p99 | kbit/s |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in &results {
        println!(
            "| {} | {} | {:.1} | {} | {:.1} ms | {:.1} ms | {:.0} |",
            r.scene.name(),
            r.drawn,
            r.delivered_fps,
            r.latencies_ms.len(),
            percentile(&r.latencies_ms, 0.5),
            percentile(&r.latencies_ms, 0.99),
            r.kbps
        );
    }
    Ok(())
}
