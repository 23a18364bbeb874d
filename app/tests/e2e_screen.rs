//! End to end on a real X server: a host process shares an Xvfb screen
//! through a relay, headless viewer processes decode it and control it.
#![allow(clippy::unwrap_used)] // integration tests: a failed step is a failed test

mod common;

use common::{App, Relayed, blocking, relay};
use fernsicht_capture::quality::psnr_plane;
use fernsicht_capture::testing::{Painter, Xvfb, test_pattern};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const W: u16 = 640;
const H: u16 = 480;

/// An Xvfb showing the test pattern.
fn screen_with_pattern() -> (Xvfb, Vec<u8>) {
    let xvfb = Xvfb::start(u32::from(W), u32::from(H)).unwrap();
    let pattern = test_pattern(W, H, 7);
    let painter = Painter::connect(xvfb.display()).unwrap();
    painter.put_bgrx(0, 0, W, H, &pattern).unwrap();
    painter.sync().unwrap();
    (xvfb, pattern)
}

/// Starts `fernsicht host` sharing `display`; returns it and its number.
fn host(relayed: &Relayed, display: &str, accept: &str) -> (App, String) {
    relayed.host_with_env(&["--accept", accept], &[("DISPLAY", display)])
}

fn pointer(display: &str) -> (i32, i32) {
    let out = Command::new("xdotool")
        .arg("getmouselocation")
        .env("DISPLAY", display)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| -> i32 {
        text.split_whitespace()
            .find_map(|f| f.strip_prefix(name))
            .unwrap()
            .parse()
            .unwrap()
    };
    (field("x:"), field("y:"))
}

/// Waits until `path` holds `want` (a program on the host writes it).
fn wait_for_file(path: &Path, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = std::fs::read_to_string(path).unwrap_or_default();
        if got == want || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_host_screen_arrives_at_the_viewer_with_psnr_over_35_db() {
    let (relay, _dir) = relay().await;
    let relayed = Relayed::of(&relay);
    blocking(move || {
        let (xvfb, pattern) = screen_with_pattern();
        let (mut host, number) = host(&relayed, xvfb.display(), "control");
        let out = tempfile::tempdir().unwrap();
        let shot = out.path().join("screen.png");
        let record = out.path().join("stream.h264");
        let mut viewer = relayed.view(
            &number,
            &[
                "--frames",
                "1",
                "--screenshot",
                shot.to_str().unwrap(),
                "--record",
                record.to_str().unwrap(),
            ],
        );
        viewer.expect("connected e2e aes-256-gcm");
        assert_eq!(
            viewer.expect("display 0 "),
            format!("display 0 screen {W}x{H}")
        );
        viewer.expect("screenshot ");
        assert_eq!(viewer.exit_code(), 0);
        host.expect("connected #1");

        let picture = image::open(&shot).unwrap().to_rgb8();
        assert_eq!(picture.dimensions(), (u32::from(W), u32::from(H)));
        // The pattern is BGRX; compare as RGB.
        let expected: Vec<u8> = pattern
            .chunks_exact(4)
            .flat_map(|p| [p[2], p[1], p[0]])
            .collect();
        let psnr = psnr_plane(&expected, picture.as_raw()).unwrap();
        assert!(psnr >= 35.0, "PSNR {psnr:.1} dB");
        // The recorded elementary stream is real H.264 that FFmpeg reads.
        let probe = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-show_entries",
                "stream=codec_name,width,height",
                "-of",
                "csv=p=0",
            ])
            .arg(&record)
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&probe.stdout).trim(),
            format!("h264,{W},{H}")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn scripted_clicks_and_typing_reach_the_host_x_server() {
    let (relay, _dir) = relay().await;
    let relayed = Relayed::of(&relay);
    blocking(move || {
        let (xvfb, _) = screen_with_pattern();
        let out = tempfile::tempdir().unwrap();
        let typed = out.path().join("typed.txt");
        // An X client that writes what it is typed: a terminal at the top
        // left running cat.
        let mut xterm = Command::new("xterm")
            .args(["-geometry", "40x10+0+0", "-e", "sh", "-c"])
            .arg(format!("cat > {}", typed.display()))
            .env("DISPLAY", xvfb.display())
            .env("LANG", "C.UTF-8")
            .spawn()
            .unwrap();
        // Wait until the terminal is mapped: typing goes to the window under
        // the pointer.
        let found = Command::new("timeout")
            .args(["20", "xdotool", "search", "--sync", "--onlyvisible", "--class", "xterm"])
            .env("DISPLAY", xvfb.display())
            .output()
            .unwrap();
        assert!(found.status.success(), "xterm did not appear");
        let (mut host, number) = host(&relayed, xvfb.display(), "control");
        let script = out.path().join("script.txt");
        std::fs::write(
            &script,
            "move 60 40\nclick left\ntype Grüße aus Fernsicht\nkey enter\nwait-frames 1\nmove 517 301\n",
        )
        .unwrap();
        let mut viewer = relayed.view(&number, &["--script", script.to_str().unwrap()]);
        viewer.expect("allowed control");
        assert_eq!(viewer.exit_code(), 0);
        assert_eq!(wait_for_file(&typed, "Grüße aus Fernsicht\n"), "Grüße aus Fernsicht\n");
        // The last move landed on the exact host pixel.
        let deadline = Instant::now() + Duration::from_secs(10);
        while pointer(xvfb.display()) != (517, 301) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(pointer(xvfb.display()), (517, 301));
        host.type_line("/quit");
        let _ = xterm.kill();
        let _ = xterm.wait();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_view_only_viewer_cannot_move_the_pointer() {
    let (relay, _dir) = relay().await;
    let relayed = Relayed::of(&relay);
    blocking(move || {
        let (xvfb, _) = screen_with_pattern();
        let before = pointer(xvfb.display());
        let (_host, number) = host(&relayed, xvfb.display(), "view");
        let out = tempfile::tempdir().unwrap();
        let script = out.path().join("script.txt");
        std::fs::write(&script, "move 5 7\nclick left\ntype x\nwait-frames 1\n").unwrap();
        let mut viewer = relayed.view(&number, &["--script", script.to_str().unwrap()]);
        viewer.expect("allowed view-only");
        assert_eq!(viewer.exit_code(), 0);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(pointer(xvfb.display()), before);
        assert_ne!(before, (5, 7));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn removing_a_viewer_stops_its_stream_and_the_relay_forgets_it() {
    let (relay, _dir) = relay().await;
    let relayed = Relayed::of(&relay);
    let relay = std::sync::Arc::new(relay);
    let r = relay.clone();
    blocking(move || {
        let (xvfb, _) = screen_with_pattern();
        let (mut host, number) = host(&relayed, xvfb.display(), "control");
        let mut viewer = relayed.view(&number, &[]);
        viewer.expect("allowed control");
        host.expect("connected #1");
        let n: fernsicht_net::SessionNumber = number.parse().unwrap();
        assert_eq!(r.viewers(n), Some(1));
        host.type_line("/remove 1");
        viewer.expect("ended: the host removed this viewer");
        assert_ne!(viewer.exit_code(), 0);
        host.expect("left #1");
        assert_eq!(r.viewers(n), Some(0));
    })
    .await;
}
