//! Pointer input against a real X server: each test starts its own Xvfb,
//! injects through the full path (egui events → mapper → wire → gate →
//! injector → enigo → XTEST) and reads back what the server delivered.

// Helpers outside #[test] functions too: a failed X request is a failed test.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use fernsicht_input::egui::{self, Event, Modifiers as EguiModifiers, Pos2, pos2, vec2};
use fernsicht_input::{
    Code, DisplayId, Dropped, EguiMapper, InputEvent, KeyPress, Outcome, Permission,
    PictureGeometry, PointerButton, PointerPosition, ViewerId, WheelDelta,
};
use support::xserver::{Probe, Xvfb};
use support::{host_on, send_all};
use x11rb::connection::Connection;
use x11rb::protocol::Event as XEvent;
use x11rb::protocol::randr::{ConnectionExt as _, MonitorInfo};
use x11rb::protocol::xproto::ConnectionExt as _;
use x11rb::wrapper::ConnectionExt as _;

const WAIT: Duration = Duration::from_secs(5);
const VIEWER: ViewerId = ViewerId(1);

/// Splits the screen into RandR monitors, as `xrandr --setmonitor` does.
fn set_monitors(probe: &Probe, monitors: &[(&str, i16, i16, u16, u16)]) {
    let conn = probe.conn();
    let root = conn.setup().roots[0].root;
    for &(name, x, y, width, height) in monitors {
        let atom = conn
            .intern_atom(false, name.as_bytes())
            .unwrap()
            .reply()
            .unwrap()
            .atom;
        let info = MonitorInfo {
            name: atom,
            primary: false,
            automatic: false,
            x,
            y,
            width,
            height,
            width_in_millimeters: 0,
            height_in_millimeters: 0,
            outputs: vec![],
        };
        conn.randr_set_monitor(root, info).unwrap();
    }
    conn.sync().unwrap();
}

fn press(pos: Pos2, pressed: bool) -> Event {
    Event::PointerButton {
        pos,
        button: egui::PointerButton::Primary,
        pressed,
        modifiers: EguiModifiers::NONE,
    }
}

/// Clicks at `pos` in the viewer window and returns the root coordinates of
/// the ButtonPress the X server delivered, and where it says the pointer is.
fn click_at(
    host: &mut fernsicht_input::HostInput<fernsicht_input::EnigoBackend>,
    probe: &Probe,
    mapper: &mut EguiMapper,
    picture: &PictureGeometry,
    pos: Pos2,
) -> ((i16, i16), (i16, i16)) {
    let events = mapper.map_events(&[press(pos, true), press(pos, false)], picture);
    assert_eq!(events.len(), 4, "move, down, move, up: {events:?}");
    send_all(host, VIEWER, &events);
    let Some(XEvent::ButtonPress(e)) =
        probe.wait_for(WAIT, |e| matches!(e, XEvent::ButtonPress(_)))
    else {
        panic!("no ButtonPress for a click at {pos:?}");
    };
    assert_eq!(e.detail, 1, "left button");
    let Some(XEvent::ButtonRelease(r)) =
        probe.wait_for(WAIT, |e| matches!(e, XEvent::ButtonRelease(_)))
    else {
        panic!("no ButtonRelease for a click at {pos:?}");
    };
    assert_eq!((r.root_x, r.root_y), (e.root_x, e.root_y));
    ((e.root_x, e.root_y), probe.pointer().unwrap())
}

/// The viewer-window point at the centre of host pixel `(px, py)` of a
/// picture drawn at `origin` with `scale` points per host pixel.
fn centre_of(origin: Pos2, scale: f32, px: u32, py: u32) -> Pos2 {
    origin + vec2(px as f32 + 0.5, py as f32 + 0.5) * scale
}

#[test]
fn clicks_land_on_the_exact_pixel_of_each_monitor_at_any_scale() {
    let xvfb = Xvfb::start(1600, 600).unwrap();
    let probe = Probe::start(xvfb.display()).unwrap();
    set_monitors(
        &probe,
        &[("LEFT", 0, 0, 1000, 600), ("RIGHT", 1000, 0, 600, 600)],
    );
    let mut host = host_on(&xvfb);
    let names: Vec<&str> = host
        .injector()
        .layout()
        .displays()
        .iter()
        .map(|d| d.id.as_str())
        .collect();
    assert!(
        names.contains(&"LEFT") && names.contains(&"RIGHT"),
        "{names:?}"
    );
    host.add_viewer(VIEWER, Permission::Control).unwrap();
    let mut mapper = EguiMapper::new();

    // The right monitor, shrunk to 0.37 in a window at (30, 70).
    let origin = pos2(30.0, 70.0);
    let right = PictureGeometry::scaled(DisplayId::new("RIGHT"), origin, vec2(600.0, 600.0), 0.37);
    for (px, py) in [(0, 0), (599, 599), (123, 457), (300, 1)] {
        let (pressed_at, pointer) = click_at(
            &mut host,
            &probe,
            &mut mapper,
            &right,
            centre_of(origin, 0.37, px, py),
        );
        let expected = (1000 + px as i16, py as i16);
        assert_eq!(pressed_at, expected, "RIGHT pixel ({px}, {py})");
        assert_eq!(pointer, expected);
    }

    // The left monitor zoomed to 200 %, scrolled so that only part of it is
    // visible in an 800×500 viewport.
    let origin = pos2(-200.0, -100.0);
    let viewport = egui::Rect::from_min_size(pos2(0.0, 0.0), vec2(800.0, 500.0));
    let left = PictureGeometry::scaled(DisplayId::new("LEFT"), origin, vec2(1000.0, 600.0), 2.0)
        .with_visible(viewport);
    for (px, py) in [(100, 50), (250, 80), (499, 299)] {
        let (pressed_at, pointer) = click_at(
            &mut host,
            &probe,
            &mut mapper,
            &left,
            centre_of(origin, 2.0, px, py),
        );
        assert_eq!(
            pressed_at,
            (px as i16, py as i16),
            "LEFT pixel ({px}, {py})"
        );
        assert_eq!(pointer, (px as i16, py as i16));
    }
    // A pixel scrolled out of view cannot be clicked.
    let hidden = centre_of(origin, 2.0, 20, 20);
    assert!(
        mapper
            .map_events(&[press(hidden, true), press(hidden, false)], &left)
            .is_empty()
    );
}

#[test]
fn pointer_moves_follow_the_picture_and_drags_stay_on_the_monitor() {
    let xvfb = Xvfb::start(1200, 700).unwrap();
    let probe = Probe::start(xvfb.display()).unwrap();
    set_monitors(&probe, &[("A", 0, 0, 600, 700), ("B", 600, 0, 600, 700)]);
    let mut host = host_on(&xvfb);
    host.add_viewer(VIEWER, Permission::Control).unwrap();
    let mut mapper = EguiMapper::new();
    let origin = pos2(0.0, 0.0);
    let picture = PictureGeometry::scaled(DisplayId::new("B"), origin, vec2(600.0, 700.0), 0.5);

    for (px, py) in [(17u32, 33u32), (599, 0), (0, 699)] {
        let events = mapper.map_events(
            &[Event::PointerMoved(centre_of(origin, 0.5, px, py))],
            &picture,
        );
        send_all(&mut host, VIEWER, &events);
        assert_eq!(
            probe.pointer().unwrap(),
            (600 + px as i16, py as i16),
            "B pixel ({px}, {py})"
        );
    }

    // Press on the picture, drag far past its left edge: the pointer stops at
    // B's left edge instead of wandering onto A.
    let start = centre_of(origin, 0.5, 100, 100);
    let outside = pos2(-400.0, 20.0);
    let events = mapper.map_events(
        &[
            press(start, true),
            Event::PointerMoved(outside),
            press(outside, false),
        ],
        &picture,
    );
    send_all(&mut host, VIEWER, &events);
    let presses: Vec<(u8, i16, i16)> = probe
        .drain(Duration::from_millis(300))
        .into_iter()
        .filter_map(|e| match e {
            XEvent::ButtonPress(e) => Some((1, e.root_x, e.root_y)),
            XEvent::ButtonRelease(e) => Some((0, e.root_x, e.root_y)),
            _ => None,
        })
        .collect();
    assert_eq!(presses, vec![(1, 700, 100), (0, 600, 40)]);
}

#[test]
fn wheel_turns_arrive_as_scroll_buttons_on_both_axes() {
    let xvfb = Xvfb::start(640, 480).unwrap();
    let probe = Probe::start(xvfb.display()).unwrap();
    let mut host = host_on(&xvfb);
    host.add_viewer(VIEWER, Permission::Control).unwrap();
    let mut mapper = EguiMapper::new();
    let picture = PictureGeometry::new(
        DisplayId::new(fernsicht_input::WHOLE_SCREEN),
        egui::Rect::from_min_size(pos2(0.0, 0.0), vec2(640.0, 480.0)),
    );
    let wheel = |unit, x, y| Event::MouseWheel {
        unit,
        delta: vec2(x, y),
        phase: egui::TouchPhase::Move,
        source: egui::MouseWheelSource::Wheel,
        modifiers: EguiModifiers::NONE,
    };
    let events = mapper.map_events(
        &[
            Event::PointerMoved(pos2(320.0, 240.0)),
            // Content moves up three lines: scroll down three notches.
            wheel(egui::MouseWheelUnit::Line, 0.0, -3.0),
            // Content moves right: scroll left twice.
            wheel(egui::MouseWheelUnit::Line, 2.0, 0.0),
            // A trackpad's 25 + 25 points up: one notch up in total.
            wheel(egui::MouseWheelUnit::Point, 0.0, 25.0),
            wheel(egui::MouseWheelUnit::Point, 0.0, 25.0),
            // Content moves left: scroll right once.
            wheel(egui::MouseWheelUnit::Line, -1.0, 0.0),
        ],
        &picture,
    );
    send_all(&mut host, VIEWER, &events);
    let buttons: Vec<u8> = probe
        .drain(Duration::from_millis(300))
        .into_iter()
        .filter_map(|e| match e {
            XEvent::ButtonPress(e) => Some(e.detail),
            _ => None,
        })
        .collect();
    // X11: 4 up, 5 down, 6 left, 7 right.
    assert_eq!(buttons, vec![5, 5, 5, 6, 6, 4, 7]);
}

#[test]
fn view_only_input_never_reaches_the_x_server() {
    let xvfb = Xvfb::start(800, 600).unwrap();
    let probe = Probe::start(xvfb.display()).unwrap();
    let mut host = host_on(&xvfb);
    host.add_viewer(VIEWER, Permission::ViewOnly).unwrap();
    let before = probe.pointer().unwrap();
    let display = DisplayId::new(fernsicht_input::WHOLE_SCREEN);
    let at = |x, y| {
        InputEvent::PointerMove(PointerPosition {
            display: display.clone(),
            x,
            y,
        })
    };
    let attempts = vec![
        at(0.9, 0.9),
        InputEvent::ButtonDown(PointerButton::Left),
        InputEvent::ButtonUp(PointerButton::Left),
        InputEvent::Wheel(WheelDelta {
            right: 1.0,
            down: 1.0,
        }),
        InputEvent::Modifiers(fernsicht_input::Modifiers {
            ctrl: true,
            ..Default::default()
        }),
        InputEvent::KeyDown(KeyPress {
            code: Code::KeyA,
            logical: Some('a'),
        }),
        InputEvent::KeyUp(Code::KeyA),
        InputEvent::Text("rm -rf /\n".into()),
    ];
    let now = Instant::now();
    for event in &attempts {
        assert_eq!(
            host.handle(VIEWER, event.clone(), now).unwrap(),
            Outcome::Dropped(Dropped::ViewOnly)
        );
    }
    let arrived: Vec<XEvent> = probe
        .drain(Duration::from_millis(300))
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                XEvent::MotionNotify(_)
                    | XEvent::ButtonPress(_)
                    | XEvent::ButtonRelease(_)
                    | XEvent::KeyPress(_)
                    | XEvent::KeyRelease(_)
            )
        })
        .collect();
    assert!(arrived.is_empty(), "the X server delivered {arrived:?}");
    assert_eq!(probe.pointer().unwrap(), before);
    assert!(probe.keys_down().unwrap().is_empty());
    let stats = host.stats(VIEWER).unwrap();
    assert_eq!(stats.dropped_view_only, attempts.len() as u64);
    assert_eq!(stats.admitted, 0);

    // The same probe does see input once the host grants control, and the
    // switch back to view-only releases what was held and stops the rest.
    host.set_permission(VIEWER, Permission::Control).unwrap();
    send_all(
        &mut host,
        VIEWER,
        &[at(0.5, 0.5), InputEvent::ButtonDown(PointerButton::Left)],
    );
    assert_eq!(probe.pointer().unwrap(), (400, 300));
    assert!(
        probe
            .wait_for(WAIT, |e| matches!(e, XEvent::ButtonPress(_)))
            .is_some()
    );
    host.set_permission(VIEWER, Permission::ViewOnly).unwrap();
    assert!(
        probe
            .wait_for(WAIT, |e| matches!(e, XEvent::ButtonRelease(_)))
            .is_some(),
        "demotion releases the held button"
    );
    assert_eq!(
        host.handle(VIEWER, at(0.1, 0.1), Instant::now()).unwrap(),
        Outcome::Dropped(Dropped::ViewOnly)
    );
    assert_eq!(probe.pointer().unwrap(), (400, 300));
}
