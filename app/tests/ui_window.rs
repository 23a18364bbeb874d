//! The real window under a private Xvfb: `fernsicht` with no subcommand
//! opens a window titled "Fernsicht" showing the start screen with the
//! session number, and a screenshot of the X server shows it drawn.
#![allow(clippy::unwrap_used)] // integration tests: a failed step is a failed test

use fernsicht_capture::testing::Xvfb;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Generous bounds for a loaded 2-core machine; the test fails only when
/// something never happens, and asserts no timing.
const WAIT: Duration = Duration::from_secs(90);
const SCREEN: (usize, usize) = (1024, 768);
/// The session number's colour (`ui::host::NUMBER_COLOUR`).
const NUMBER_RGB: [u8; 3] = [0x2f, 0x80, 0xed];

/// The app, killed when the test ends however it ends.
struct App(Child);

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn on(display: &str, program: &str, args: &[&str]) -> std::process::Output {
    Command::new(program)
        .args(args)
        .env("DISPLAY", display)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

/// The root window as RGB bytes, and saved as a PNG at `png`.
fn screenshot(display: &str, png: &Path) -> Vec<u8> {
    let out = on(
        display,
        "import",
        &["-window", "root", png.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "import: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("convert")
        .args([png.to_str().unwrap(), "-depth", "8", "rgb:-"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "convert: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout.len(), SCREEN.0 * SCREEN.1 * 3);
    out.stdout
}

/// Pixels of exactly `rgb`, and the columns they span.
fn find_colour(rgb: &[u8], colour: [u8; 3]) -> (usize, usize) {
    let mut count = 0;
    let (mut min_x, mut max_x) = (usize::MAX, 0);
    for (i, px) in rgb.chunks_exact(3).enumerate() {
        if px == colour {
            count += 1;
            let x = i % SCREEN.0;
            min_x = min_x.min(x);
            max_x = max_x.max(x);
        }
    }
    (count, if count > 0 { max_x - min_x + 1 } else { 0 })
}

fn distinct_colours(rgb: &[u8]) -> usize {
    let mut set = std::collections::HashSet::new();
    for px in rgb.chunks_exact(3) {
        set.insert([px[0], px[1], px[2]]);
    }
    set.len()
}

#[test]
fn window_opens_with_the_start_screen_and_the_session_number() {
    let xvfb = Xvfb::start(SCREEN.0 as u32, SCREEN.1 as u32).unwrap();
    let display = xvfb.display().to_owned();
    let home = tempfile::tempdir().unwrap();
    let shots = tempfile::tempdir().unwrap();

    // The app keeps its settings and its relay's store under the temporary
    // home, never the user's; DISPLAY is set for it alone.
    let mut child = Command::new(env!("CARGO_BIN_EXE_fernsicht"))
        .env("DISPLAY", &display)
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("FERNSICHT_RELAY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    for out in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    let mut app = App(child);

    // The app prints the number it shows, as the headless host does.
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    let number = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                if let Some(n) = line.strip_prefix("session ") {
                    break n.trim().to_owned();
                }
                seen.push(line);
            }
            Err(_) => panic!(
                "no session number (exited: {:?}); output: {seen:?}",
                app.0.try_wait()
            ),
        }
    };
    assert!(
        number.len() >= 5 && number.bytes().all(|b| b.is_ascii_digit()),
        "{number}"
    );

    // A window titled exactly "Fernsicht" exists.
    let windows = loop {
        let out = on(&display, "xdotool", &["search", "--name", "^Fernsicht$"]);
        let ids = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !ids.is_empty() {
            break ids;
        }
        assert!(Instant::now() < deadline, "no window named Fernsicht");
        assert!(app.0.try_wait().unwrap().is_none(), "the app exited");
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = on(
        &display,
        "xdotool",
        &["getwindowname", windows.lines().next().unwrap()],
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "Fernsicht");

    // The screenshot shows the drawn start screen with the number in its
    // colour: several digits wide, not a blank or placeholder screen.
    let png = shots.path().join("fernsicht-start.png");
    let (count, width, colours) = loop {
        let rgb = screenshot(&display, &png);
        let (count, width) = find_colour(&rgb, NUMBER_RGB);
        let colours = distinct_colours(&rgb);
        if count > 300 && width > 100 {
            break (count, width, colours);
        }
        assert!(
            Instant::now() < deadline,
            "the number never appeared: {count} pixels over {width} columns, {colours} colours"
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        colours > 20,
        "a drawn window, not a blank screen: {colours} colours"
    );
    let keep = std::env::var_os("FERNSICHT_SCREENSHOT");
    if let Some(path) = keep {
        std::fs::copy(&png, path).unwrap();
    }
    eprintln!("number {number}: {count} pixels over {width} columns; {colours} colours");
    assert!(
        app.0.try_wait().unwrap().is_none(),
        "the app is still running"
    );
}

#[test]
fn without_a_display_plain_fernsicht_shares_in_the_terminal() {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fernsicht"))
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .env_remove("FERNSICHT_RELAY")
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .env("XDG_DATA_HOME", home.path().join("data"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let _app = App(child);
    let (tx, lines) = mpsc::channel();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = tx2.send(line);
        }
    });
    std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.starts_with("session ")) {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => seen.push(line),
            Err(_) => panic!("no session in the terminal; saw {seen:?}"),
        }
    }
    assert!(
        seen.iter()
            .any(|l| l.contains("no display to open a window on")),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|l| l.starts_with("embedded relay listening on")),
        "{seen:?}"
    );
}
