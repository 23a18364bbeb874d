//! Keyboard input against a real X server: typed text is read back from a
//! real X client (an xterm writing what it receives to a file), held keys
//! from the server's own key state (XQueryKeymap).

mod support;

use std::time::Duration;

use fernsicht_input::egui::{Event, Key, Modifiers as EguiModifiers};
use fernsicht_input::{
    Code, DisplayId, EguiMapper, InputEvent, KeyPress, Modifiers, Permission, PictureGeometry,
    PointerButton, ViewerId, egui,
};
use support::xserver::{Probe, Xvfb};
use support::xterm::Xterm;
use support::{host_on, send_all};

const WAIT: Duration = Duration::from_secs(10);
const VIEWER: ViewerId = ViewerId(1);

fn picture() -> PictureGeometry {
    PictureGeometry::new(
        DisplayId::new(fernsicht_input::WHOLE_SCREEN),
        egui::Rect::from_min_size(egui::pos2(0.0, 0.0), egui::vec2(800.0, 600.0)),
    )
}

/// What egui reports for a key going down or up.
fn key(key: Key, physical: Key, pressed: bool, modifiers: EguiModifiers) -> Event {
    Event::Key {
        key,
        physical_key: Some(physical),
        pressed,
        repeat: false,
        modifiers,
    }
}

/// A key typed without modifiers, as egui-winit reports it: the key, then
/// the text it produced, then the release.
fn typed(logical: Key, physical: Key, text: &str) -> Vec<Event> {
    let none = EguiModifiers::NONE;
    vec![
        key(logical, physical, true, none),
        Event::Text(text.into()),
        key(logical, physical, false, none),
    ]
}

/// A shortcut as egui-winit reports it with Ctrl held.
fn ctrl_shortcut(logical: Key, physical: Key) -> Vec<Event> {
    let ctrl = EguiModifiers::CTRL;
    vec![
        Event::ModifiersChanged(ctrl),
        key(logical, physical, true, ctrl),
        key(logical, physical, false, ctrl),
        Event::ModifiersChanged(EguiModifiers::NONE),
    ]
}

#[test]
fn typed_text_and_shortcuts_arrive_in_an_xterm() {
    let xvfb = Xvfb::start(800, 600).unwrap();
    let xterm = Xterm::start(&xvfb).unwrap();
    let probe = Probe::queries_only(xvfb.display()).unwrap();
    probe.focus(xterm.window()).unwrap();
    let mut host = host_on(&xvfb);
    host.add_viewer(VIEWER, Permission::Control).unwrap();
    let mut mapper = EguiMapper::new();

    let shift = EguiModifiers::SHIFT;
    let mut events = vec![Event::Text("Grüße, café! ½ € ñ Ω".into())];
    events.extend(typed(Key::Enter, Key::Enter, ""));
    // Shift+a: the text is "A"; Shift is lifted while it is typed, so a
    // held Shift cannot double-shift it.
    events.extend([
        Event::ModifiersChanged(shift),
        key(Key::A, Key::A, true, shift),
        Event::Text("A".into()),
        key(Key::A, Key::A, false, shift),
        Event::ModifiersChanged(EguiModifiers::NONE),
    ]);
    // Ctrl+C as egui-winit reports it: the press becomes Event::Copy.
    events.extend([
        Event::ModifiersChanged(EguiModifiers::CTRL),
        Event::Copy,
        key(Key::C, Key::C, false, EguiModifiers::CTRL),
        Event::ModifiersChanged(EguiModifiers::NONE),
    ]);
    events.extend(ctrl_shortcut(Key::U, Key::U));
    events.extend(typed(Key::Backspace, Key::Backspace, ""));
    events.extend(typed(Key::Tab, Key::Tab, ""));
    events.extend(typed(Key::Z, Key::Z, "z"));

    let input = mapper.map_events(&events, &picture());
    send_all(&mut host, VIEWER, &input);

    // Raw mode: Enter is CR, Ctrl+C is ETX, Ctrl+U is NAK, Backspace DEL.
    let expected = "Grüße, café! ½ € ñ Ω\rA\x03\x15\x7f\tz".as_bytes();
    let got = xterm.wait_for_typed(expected, WAIT);
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected)
    );
    assert!(
        probe.keys_down().unwrap().is_empty(),
        "nothing stays pressed"
    );
}

#[test]
fn a_german_helper_types_the_right_characters_on_a_french_host() {
    let xvfb = Xvfb::start(800, 600).unwrap();
    // The host's layout is French (AZERTY); set it before the injector reads
    // the keymap, as a host's would be.
    let status = xvfb
        .command("setxkbmap")
        .args(["-layout", "fr"])
        .status()
        .expect("run setxkbmap (package x11-xkb-utils)");
    assert!(status.success());
    let xterm = Xterm::start(&xvfb).unwrap();
    let probe = Probe::queries_only(xvfb.display()).unwrap();
    // AZERTY: `a` sits where a US keyboard has Q (keycode 24).
    assert_eq!(probe.keycodes_of(u32::from('a')).unwrap(), vec![24]);
    probe.focus(xterm.window()).unwrap();
    let mut host = host_on(&xvfb);
    host.add_viewer(VIEWER, Permission::Control).unwrap();
    let mut mapper = EguiMapper::new();

    // On the helper's German QWERTZ keyboard Z and Y swap places with US,
    // and @ is AltGr+Q, which egui reports only as text.
    let mut events = Vec::new();
    events.extend(typed(Key::Z, Key::Y, "z"));
    events.extend(typed(Key::Y, Key::Z, "y"));
    events.extend(typed(Key::Q, Key::Q, "q"));
    events.extend(typed(Key::A, Key::A, "a"));
    events.push(Event::Text("@ä€".into()));
    // Ctrl + the key labelled Z (undo on the helper's keyboard).
    events.extend(ctrl_shortcut(Key::Z, Key::Y));
    let input = mapper.map_events(&events, &picture());
    send_all(&mut host, VIEWER, &input);

    // Had the host pressed physical positions, AZERTY would have typed
    // "ywaq" and Ctrl+Y (0x19).
    let expected = "zyqa@ä€\x1a".as_bytes();
    let got = xterm.wait_for_typed(expected, WAIT);
    assert_eq!(
        String::from_utf8_lossy(&got),
        String::from_utf8_lossy(expected)
    );
}

#[test]
fn a_disconnect_releases_every_key_and_button_the_viewer_held() {
    let xvfb = Xvfb::start(800, 600).unwrap();
    let probe = Probe::start(xvfb.display()).unwrap();
    let shift = probe.keycodes_of(0xffe1).unwrap()[0]; // Shift_L
    let control = probe.keycodes_of(0xffe3).unwrap()[0]; // Control_L
    let a = probe.keycodes_of(u32::from('a')).unwrap()[0];
    let f5 = probe.keycodes_of(0xffc2).unwrap()[0]; // F5
    let button1_mask = 0x100;

    let mut host = host_on(&xvfb);
    let (helper, colleague) = (ViewerId(1), ViewerId(2));
    host.add_viewer(helper, Permission::Control).unwrap();
    host.add_viewer(colleague, Permission::Control).unwrap();
    send_all(
        &mut host,
        helper,
        &[
            InputEvent::Modifiers(Modifiers {
                shift: true,
                ctrl: true,
                ..Modifiers::NONE
            }),
            InputEvent::KeyDown(KeyPress {
                code: Code::KeyA,
                logical: Some('a'),
            }),
            InputEvent::KeyDown(KeyPress {
                code: Code::F5,
                logical: None,
            }),
            InputEvent::ButtonDown(PointerButton::Left),
        ],
    );
    send_all(
        &mut host,
        colleague,
        &[InputEvent::Modifiers(Modifiers {
            shift: true,
            ..Modifiers::NONE
        })],
    );
    let mut down = probe.keys_down().unwrap();
    down.sort_unstable();
    let mut held = vec![shift, control, a, f5];
    held.sort_unstable();
    assert_eq!(down, held, "the X server sees the keys held");
    assert_ne!(probe.pointer_mask().unwrap() & button1_mask, 0);

    // The helper's connection drops mid-shortcut.
    host.remove_viewer(helper).unwrap();
    assert_eq!(
        probe.keys_down().unwrap(),
        vec![shift],
        "only the colleague's Shift is still down"
    );
    assert_eq!(probe.pointer_mask().unwrap() & button1_mask, 0);

    host.remove_viewer(colleague).unwrap();
    assert!(probe.keys_down().unwrap().is_empty());
}

#[test]
fn losing_window_focus_on_the_viewer_releases_keys_on_the_host() {
    let xvfb = Xvfb::start(800, 600).unwrap();
    let probe = Probe::start(xvfb.display()).unwrap();
    let mut host = host_on(&xvfb);
    host.add_viewer(VIEWER, Permission::Control).unwrap();
    let mut mapper = EguiMapper::new();
    // Ctrl+Alt+Delete held, then the helper alt-tabs away from the viewer:
    // the key-ups go to another window and egui never reports them.
    let mods = EguiModifiers {
        ctrl: true,
        alt: true,
        command: true,
        ..EguiModifiers::NONE
    };
    let events = [
        Event::ModifiersChanged(mods),
        key(Key::Delete, Key::Delete, true, mods),
    ];
    send_all(&mut host, VIEWER, &mapper.map_events(&events, &picture()));
    assert_eq!(probe.keys_down().unwrap().len(), 3);
    let lost = mapper.map_events(&[Event::WindowFocused(false)], &picture());
    send_all(&mut host, VIEWER, &lost);
    assert!(probe.keys_down().unwrap().is_empty());
    assert!(host.injector().held(VIEWER).keys.is_empty());
}
