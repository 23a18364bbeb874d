//! input-bench: injection latency, from an input event's wire bytes arriving
//! at the host to an X client receiving the resulting X event.
//!
//! It starts its own Xvfb, maps a full-screen window on a second X
//! connection (read by a thread blocked in `wait_for_event`, which stamps
//! each event as it arrives), and sends events through the same path the host
//! uses: postcard decode → gate → injector → enigo → XTEST. Two figures per
//! kind of event: when `handle()` returned (enigo syncs with the server, so
//! the server has processed the request by then) and when the X client
//! received the event the server generated.
//!
//! Usage: `cargo run --release --bin input-bench [-- ITERATIONS]`

#[path = "../../tests/support/xserver.rs"]
mod xserver;

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use fernsicht_input::{
    Code, DisplayId, EnigoBackend, EnigoConfig, HostInput, Injector, InputEvent, KeyPress,
    Permission, PointerButton, PointerPosition, RateLimit, ViewerId, x11_display_layout,
};
use x11rb::connection::Connection;
use x11rb::protocol::Event;

use xserver::{Probe, Xvfb};

const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;
const WARMUP: usize = 50;
const VIEWER: ViewerId = ViewerId(1);

/// The X events the bench waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Seen {
    Motion,
    ButtonPress,
    ButtonRelease,
    KeyPress,
    KeyRelease,
}

struct Kind {
    name: &'static str,
    /// The event for iteration `i`, and what the X client should see.
    make: Box<dyn Fn(usize) -> (InputEvent, Seen)>,
    /// A pause before each event, for kinds whose cost depends on pacing.
    pause: Duration,
}

/// How many paced events to send at most (they take `pause` each).
const PACED_ITERATIONS: usize = 300;

fn main() -> anyhow::Result<()> {
    let iterations: usize = match std::env::args().nth(1) {
        Some(n) => n.parse().context("ITERATIONS must be a number")?,
        None => 2000,
    };
    let xvfb = Xvfb::start(WIDTH, HEIGHT).map_err(|e| anyhow!(e))?;
    let probe = Probe::start(xvfb.display()).map_err(|e| anyhow!(e))?;
    let seen = listen(probe);

    let layout = x11_display_layout(Some(xvfb.display()))?;
    let display = layout
        .displays()
        .first()
        .map(|d| d.id.clone())
        .ok_or_else(|| anyhow!("the X server reports no display"))?;
    let backend = EnigoBackend::new(&EnigoConfig {
        x11_display: Some(xvfb.display().to_owned()),
        ..EnigoConfig::default()
    })?;
    let mut host = HostInput::new(
        Injector::new(backend, layout),
        // The bench floods on purpose; the limit is not what is measured.
        RateLimit {
            burst: u32::MAX,
            per_second: u32::MAX,
        },
    );
    host.add_viewer(VIEWER, Permission::Control)?;

    println!(
        "input-bench: {iterations} events per kind after {WARMUP} warm-up, Xvfb {WIDTH}x{HEIGHT} on {}, {} build",
        xvfb.display(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!("path: wire bytes → decode → gate → injector → enigo (XTEST) → X server → X client");
    println!(
        "{:<22} {:>10} {:>10} {:>10}   {:>10} {:>10}",
        "event", "seen p50", "seen p99", "seen max", "ret p50", "ret p99"
    );

    for kind in kinds(display) {
        let iterations = if kind.pause.is_zero() {
            iterations
        } else {
            iterations.min(PACED_ITERATIONS)
        };
        let mut seen_at = Vec::with_capacity(iterations);
        let mut returned_at = Vec::with_capacity(iterations);
        for i in 0..WARMUP + iterations {
            thread::sleep(kind.pause);
            let (event, expect) = (kind.make)(i);
            let bytes = event.to_bytes()?;
            let start = Instant::now();
            let event = InputEvent::from_bytes(&bytes)?;
            host.handle(VIEWER, event, Instant::now())?;
            let returned = start.elapsed();
            let arrived = wait_for(&seen, expect)?;
            if i >= WARMUP {
                returned_at.push(returned);
                seen_at.push(arrived.saturating_duration_since(start));
            }
        }
        let (s, r) = (Stats::of(&mut seen_at), Stats::of(&mut returned_at));
        println!(
            "{:<22} {:>10} {:>10} {:>10}   {:>10} {:>10}",
            kind.name,
            ms(s.p50),
            ms(s.p99),
            ms(s.max),
            ms(r.p50),
            ms(r.p99)
        );
    }
    println!(
        "seen = an X client received the event; ret = handle() returned (server has processed it)"
    );
    println!(
        "paced: {} ms between events, at most {PACED_ITERATIONS} of them; back-to-back é reuses \
         its remapped keycode within 12 ms, for which enigo asks the X server to wait 12 ms before \
         the press and the release, and keeps that wait for later keys on the keymap",
        PACE.as_millis()
    );
    host.remove_viewer(VIEWER)?;
    Ok(())
}

/// Typing pace for the paced rows: 50 characters a second, faster than
/// anyone types.
const PACE: Duration = Duration::from_millis(20);

fn kinds(display: DisplayId) -> Vec<Kind> {
    let none = Duration::ZERO;
    let press_a = InputEvent::KeyDown(KeyPress {
        code: Code::KeyA,
        logical: Some('a'),
    });
    vec![
        Kind {
            name: "pointer move",
            make: Box::new(move |i| {
                // Alternate between two points so every move is a motion.
                let x = if i % 2 == 0 { 0.25 } else { 0.75 };
                let event = InputEvent::PointerMove(PointerPosition {
                    display: display.clone(),
                    x,
                    y: 0.5,
                });
                (event, Seen::Motion)
            }),
            pause: none,
        },
        Kind {
            name: "button down / up",
            make: Box::new(|i| {
                if i % 2 == 0 {
                    (
                        InputEvent::ButtonDown(PointerButton::Left),
                        Seen::ButtonPress,
                    )
                } else {
                    (
                        InputEvent::ButtonUp(PointerButton::Left),
                        Seen::ButtonRelease,
                    )
                }
            }),
            pause: none,
        },
        Kind {
            name: "key down / up",
            make: Box::new(move |i| {
                if i % 2 == 0 {
                    (press_a.clone(), Seen::KeyPress)
                } else {
                    (InputEvent::KeyUp(Code::KeyA), Seen::KeyRelease)
                }
            }),
            pause: none,
        },
        Kind {
            name: "text x",
            make: Box::new(|_| (InputEvent::Text("x".into()), Seen::KeyRelease)),
            pause: none,
        },
        // é is not on the US keymap: enigo binds a spare keycode to it.
        Kind {
            name: "text é, paced",
            make: Box::new(|_| (InputEvent::Text("é".into()), Seen::KeyRelease)),
            pause: PACE,
        },
        Kind {
            name: "text é, back-to-back",
            make: Box::new(|_| (InputEvent::Text("é".into()), Seen::KeyRelease)),
            pause: none,
        },
        // enigo keeps the last key's server-side delay for keys on the
        // keymap, so this row shows what a burst of é leaves behind.
        Kind {
            name: "text x, after that",
            make: Box::new(|_| (InputEvent::Text("x".into()), Seen::KeyRelease)),
            pause: none,
        },
    ]
}

/// Reads the probe's connection on a thread of its own, blocked in
/// `wait_for_event`, and passes on each input event with its arrival time.
fn listen(probe: Probe) -> mpsc::Receiver<(Seen, Instant)> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        while let Ok(event) = probe.conn().wait_for_event() {
            let now = Instant::now();
            let seen = match event {
                Event::MotionNotify(_) => Seen::Motion,
                Event::ButtonPress(_) => Seen::ButtonPress,
                Event::ButtonRelease(_) => Seen::ButtonRelease,
                Event::KeyPress(_) => Seen::KeyPress,
                Event::KeyRelease(_) => Seen::KeyRelease,
                _ => continue,
            };
            if tx.send((seen, now)).is_err() {
                break;
            }
        }
    });
    rx
}

fn wait_for(rx: &mpsc::Receiver<(Seen, Instant)>, expect: Seen) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((seen, at)) if seen == expect => return Ok(at),
            Ok(_) => {}
            Err(_) => bail!("the X client never saw {expect:?}"),
        }
    }
}

struct Stats {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

impl Stats {
    fn of(samples: &mut [Duration]) -> Self {
        samples.sort_unstable();
        let at = |q: usize| {
            samples
                .get((samples.len() * q / 100).min(samples.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        Self {
            p50: at(50),
            p99: at(99),
            max: samples.last().copied().unwrap_or_default(),
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}
