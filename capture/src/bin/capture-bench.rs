//! `capture-bench`: measures the frame pipeline on a private Xvfb and
//! compares it with FFmpeg (x11grab + libx264 ultrafast/zerolatency).
//!
//! Each scene is painted step by step by a small X client. Our pipeline is
//! timed one frame at a time on one thread (paint a step, then capture →
//! change detection + I420 → encode), with process CPU time taken around the
//! timed stages only; decoding for PSNR is not timed. FFmpeg grabs the same
//! scene while it is painted at 30 steps a second and encodes at 30 frames a
//! second; its CPU time is its own (getrusage of the child).
//! kbit/s leave out the first (key)frame and assume 30 frames a second.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use fernsicht_capture::scenes::{Scene, Stage};
use fernsicht_capture::testing::Xvfb;
use fernsicht_capture::{
    Capturer, ChangeDetector, Decoder, Encoder, EncoderSettings, I420Frame, OpenH264Encoder, probe,
    quality,
};
use openh264::formats::YUVSource;

const FPS: u32 = 30;

fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn children_cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

struct Ours {
    fps: f64,
    frames_per_cpu_s: f64,
    capture: Vec<f64>,
    convert: Vec<f64>,
    encode: Vec<f64>,
    kbps: f64,
    psnr_rgb: f64,
    psnr_y: f64,
    encoded: usize,
    frames: usize,
}

fn run_ours(
    stage: &Stage,
    display: &str,
    scene: Scene,
    frames: usize,
    encoder: &mut dyn Encoder,
) -> Result<Ours> {
    stage.desktop()?;
    let mut capturer = Capturer::open(Some(display), 0)?;
    let mut detector = ChangeDetector::new();
    let mut picture = I420Frame::new(stage.w, stage.h);
    let mut decoder = Decoder::new()?;
    let mut y_decoder = openh264::decoder::Decoder::new()?;
    let (mut capture, mut convert, mut encode) = (Vec::new(), Vec::new(), Vec::new());
    let (mut wall, mut cpu, mut bytes) = (0.0, 0.0, 0usize);
    let (mut psnr_rgb, mut psnr_y, mut measured) = (0.0, 0.0, 0usize);
    let mut encoded = 0;
    let mut first = true;
    // Warm up scrap's in-flight request so frame 0 shows the desktop.
    capturer.capture()?;
    for i in 0..frames {
        stage.step(scene, i)?;
        let cpu0 = cpu_seconds();
        let t0 = Instant::now();
        let frame = capturer.capture()?;
        let t1 = Instant::now();
        let damage = detector.detect(&frame);
        if !damage.is_empty() {
            picture.convert_damage(&frame, &damage.rects)?;
        }
        let t2 = Instant::now();
        let out = if damage.is_empty() {
            None
        } else {
            encoder.encode(
                &picture,
                Duration::from_millis(i as u64 * 1000 / u64::from(FPS)),
            )?
        };
        let t3 = Instant::now();
        cpu += cpu_seconds() - cpu0;
        wall += (t3 - t0).as_secs_f64();
        capture.push((t1 - t0).as_secs_f64() * 1e3);
        convert.push((t2 - t1).as_secs_f64() * 1e3);
        encode.push((t3 - t2).as_secs_f64() * 1e3);
        if let Some(out) = out {
            encoded += 1;
            if !first {
                bytes += out.data.len();
            }
            first = false;
            let source = frame;
            if let Some(image) = decoder.decode(&out.data)?
                && let Some(p) = quality::psnr_rgb(&source, &image)
            {
                psnr_rgb += p;
                measured += 1;
            }
            if let Some(yuv) = y_decoder.decode(&out.data)? {
                let (w, h) = yuv.dimensions();
                let stride = yuv.strides().0;
                let decoded: Vec<u8> = (0..h)
                    .flat_map(|r| yuv.y()[r * stride..][..w].iter().copied())
                    .collect();
                psnr_y += quality::psnr_plane(&decoded, picture.y()).unwrap_or(0.0);
            }
        }
    }
    let secs_of_video = (frames.saturating_sub(1)).max(1) as f64 / f64::from(FPS);
    Ok(Ours {
        fps: frames as f64 / wall,
        frames_per_cpu_s: frames as f64 / cpu,
        capture,
        convert,
        encode,
        kbps: bytes as f64 * 8.0 / 1000.0 / secs_of_video,
        psnr_rgb: if measured > 0 {
            psnr_rgb / measured as f64
        } else {
            f64::NAN
        },
        psnr_y: if measured > 0 {
            psnr_y / measured as f64
        } else {
            f64::NAN
        },
        encoded,
        frames,
    })
}

struct X264 {
    fps: f64,
    frames_per_cpu_s: f64,
    kbps: f64,
    psnr_y: f64,
}

fn parse_after(text: &str, key: &str) -> Option<f64> {
    let i = text.rfind(key)? + key.len();
    let rest = text[i..].trim_start();
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn run_x264(stage: &Stage, display: &str, scene: Scene, frames: usize) -> Result<X264> {
    stage.desktop()?;
    let secs = frames as f64 / f64::from(FPS);
    let cpu0 = children_cpu_seconds();
    let start = Instant::now();
    let child = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostats", "-loglevel", "info"])
        .args([
            "-f",
            "x11grab",
            "-draw_mouse",
            "0",
            "-framerate",
            &FPS.to_string(),
        ])
        .args([
            "-video_size",
            &format!("{}x{}", stage.w, stage.h),
            "-i",
            display,
        ])
        .args([
            "-t",
            &format!("{secs:.3}"),
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ])
        .args(["-tune", "zerolatency", "-psnr", "-f", "null", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting ffmpeg")?;
    // Paint at 30 steps a second while FFmpeg grabs.
    let mut i = 0;
    let tick = Duration::from_secs_f64(1.0 / f64::from(FPS));
    let mut next = Instant::now();
    while start.elapsed().as_secs_f64() < secs + 0.3 {
        stage.step(scene, i)?;
        i += 1;
        next += tick;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    let output = child.wait_with_output()?;
    let wall = start.elapsed().as_secs_f64();
    let cpu = children_cpu_seconds() - cpu0;
    let log = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("ffmpeg failed: {log}");
    }
    let encoded =
        parse_after(&log, "frame I:").unwrap_or(0.0) + parse_after(&log, "frame P:").unwrap_or(0.0);
    Ok(X264 {
        fps: encoded / wall,
        frames_per_cpu_s: encoded / cpu,
        kbps: parse_after(&log, "kb/s:").unwrap_or(f64::NAN),
        psnr_y: parse_after(&log, "PSNR Mean Y:").unwrap_or(f64::NAN),
    })
}

fn main() -> Result<()> {
    println!(
        "capture-bench: our pipeline (one thread, sequential stages) vs FFmpeg x11grab + libx264 ultrafast zerolatency"
    );
    let mut rows = Vec::new();
    for (w, h, bitrate) in [(1920u16, 1080u16, 8_000_000u32), (1280, 720, 5_000_000)] {
        let mut xvfb = Xvfb::start(u32::from(w), u32::from(h))?;
        let display = xvfb.display().to_owned();
        let stage = Stage::new(&display, w, h)?;
        let settings = EncoderSettings {
            width: w,
            height: h,
            bitrate_bps: bitrate,
            max_fps: FPS as f32,
        };
        let (_, report) = probe(settings)?;
        eprintln!("{w}x{h}: {report}");
        for (scene, frames) in [
            (Scene::Static, 60),
            (Scene::Typing, 150),
            (Scene::Scrolling, 60),
            (Scene::Video, 45),
        ] {
            // A fresh encoder per scene, so every scene starts with a keyframe.
            let mut encoder = OpenH264Encoder::new(settings)?;
            let ours = run_ours(&stage, &display, scene, frames, &mut encoder)?;
            let theirs = run_x264(&stage, &display, scene, frames)?;
            rows.push((scene, w, h, encoder.kind(), ours, theirs));
        }
        xvfb.kill();
    }
    println!();
    println!(
        "| scene | res | encoder | frames/s | capture ms p50/p99 | convert ms p50/p99 | encode ms p50/p99 | encoded/frames | kbit/s | PSNR RGB / Y dB | x264 frames/s | x264 kbit/s | x264 PSNR Y dB | frames/s ratio | frames per CPU-s ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (scene, w, h, kind, o, x) in &rows {
        println!(
            "| {} | {}x{} | {} | {:.0} | {:.2}/{:.2} | {:.2}/{:.2} | {:.2}/{:.2} | {}/{} | {:.1} | {:.1} / {:.1} | {:.1} | {:.0} | {:.1} | {:.2}x | {:.2}x |",
            scene.name(),
            w,
            h,
            kind.ffmpeg_name().unwrap_or("openh264"),
            o.fps,
            percentile(&o.capture, 0.5),
            percentile(&o.capture, 0.99),
            percentile(&o.convert, 0.5),
            percentile(&o.convert, 0.99),
            percentile(&o.encode, 0.5),
            percentile(&o.encode, 0.99),
            o.encoded,
            o.frames,
            o.kbps,
            o.psnr_rgb,
            o.psnr_y,
            x.fps,
            x.kbps,
            x.psnr_y,
            o.fps / x.fps,
            o.frames_per_cpu_s / x.frames_per_cpu_s,
        );
    }
    Ok(())
}
