use egui::{Event, Key, pos2, vec2};

use super::*;

fn picture() -> PictureGeometry {
    PictureGeometry::scaled(
        DisplayId::new("d"),
        pos2(100.0, 100.0),
        vec2(400.0, 200.0),
        0.5,
    )
}

fn key(key: Key, physical: Key, pressed: bool, modifiers: egui::Modifiers) -> Event {
    Event::Key {
        key,
        physical_key: Some(physical),
        pressed,
        repeat: false,
        modifiers,
    }
}

fn button(pos: Pos2, pressed: bool) -> Event {
    Event::PointerButton {
        pos,
        button: egui::PointerButton::Primary,
        pressed,
        modifiers: egui::Modifiers::NONE,
    }
}

fn at(x: f32, y: f32) -> InputEvent {
    InputEvent::PointerMove(PointerPosition {
        display: DisplayId::new("d"),
        x,
        y,
    })
}

#[test]
fn plain_typing_sends_text_not_keys() {
    let none = egui::Modifiers::NONE;
    let mut mapper = EguiMapper::new();
    let out = mapper.map_events(
        &[
            key(Key::Z, Key::Y, true, none),
            Event::Text("z".into()),
            key(Key::Z, Key::Y, false, none),
            key(Key::Enter, Key::Enter, true, none),
            key(Key::Enter, Key::Enter, false, none),
            key(Key::CapsLock, Key::CapsLock, true, none),
            Event::Text("A".into()),
            key(Key::CapsLock, Key::CapsLock, false, none),
        ],
        &picture(),
    );
    assert_eq!(
        out,
        vec![
            InputEvent::Text("z".into()),
            InputEvent::KeyDown(KeyPress {
                code: Code::Enter,
                logical: None
            }),
            InputEvent::KeyUp(Code::Enter),
            InputEvent::Text("A".into()),
        ]
    );
}

#[test]
fn shortcuts_send_keys_with_their_meaning_and_no_text() {
    let ctrl = egui::Modifiers::CTRL;
    let mut mapper = EguiMapper::new();
    let out = mapper.map_events(
        &[
            Event::ModifiersChanged(ctrl),
            key(Key::Z, Key::Y, true, ctrl),
            Event::Text("z".into()),
            // egui's own repeat while held
            key(Key::Z, Key::Y, true, ctrl),
            // Ctrl let go before Z: Z's release still goes out.
            Event::ModifiersChanged(egui::Modifiers::NONE),
            key(Key::Z, Key::Y, false, egui::Modifiers::NONE),
        ],
        &picture(),
    );
    assert_eq!(
        out,
        vec![
            InputEvent::Modifiers(Modifiers {
                ctrl: true,
                ..Modifiers::NONE
            }),
            InputEvent::KeyDown(KeyPress {
                code: Code::KeyY,
                logical: Some('z')
            }),
            InputEvent::Modifiers(Modifiers::NONE),
            InputEvent::KeyUp(Code::KeyY),
        ]
    );
}

#[test]
fn clipboard_shortcuts_egui_swallowed_become_taps() {
    let mut mapper = EguiMapper::new();
    let out = mapper.map_events(&[Event::Paste("secret".into())], &picture());
    assert_eq!(
        out,
        vec![
            InputEvent::KeyDown(KeyPress {
                code: Code::KeyV,
                logical: Some('v')
            }),
            InputEvent::KeyUp(Code::KeyV),
        ],
        "the helper's clipboard is not typed on the host"
    );
}

#[test]
fn the_mac_command_key_can_act_as_ctrl() {
    let cmd = egui::Modifiers::MAC_CMD | egui::Modifiers::COMMAND;
    let plain = EguiMapper::new().map_events(&[Event::ModifiersChanged(cmd)], &picture());
    assert_eq!(
        plain,
        vec![InputEvent::Modifiers(Modifiers {
            meta: true,
            ..Modifiers::NONE
        })]
    );
    let as_ctrl = EguiMapper::new()
        .with_command_as_ctrl(true)
        .map_events(&[Event::ModifiersChanged(cmd)], &picture());
    assert_eq!(
        as_ctrl,
        vec![InputEvent::Modifiers(Modifiers {
            ctrl: true,
            ..Modifiers::NONE
        })]
    );
}

#[test]
fn only_presses_on_the_picture_count_but_their_releases_always_do() {
    let mut mapper = EguiMapper::new();
    // The picture spans (100, 100)..(300, 200).
    assert!(
        mapper
            .map_events(&[button(pos2(50.0, 150.0), true)], &picture())
            .is_empty()
    );
    assert!(
        mapper
            .map_events(&[button(pos2(50.0, 150.0), false)], &picture())
            .is_empty()
    );
    let out = mapper.map_events(
        &[
            button(pos2(200.0, 150.0), true),
            Event::PointerMoved(pos2(900.0, 150.0)),
            button(pos2(900.0, 150.0), false),
        ],
        &picture(),
    );
    assert_eq!(
        out,
        vec![
            at(0.5, 0.5),
            InputEvent::ButtonDown(PointerButton::Left),
            at(1.0, 0.5),
            at(1.0, 0.5),
            InputEvent::ButtonUp(PointerButton::Left),
        ]
    );
}

#[test]
fn the_wheel_only_scrolls_over_the_picture() {
    let wheel = Event::MouseWheel {
        unit: egui::MouseWheelUnit::Line,
        delta: vec2(0.0, 1.0),
        phase: egui::TouchPhase::Move,
        source: egui::MouseWheelSource::Wheel,
        modifiers: egui::Modifiers::NONE,
    };
    let mut mapper = EguiMapper::new();
    let outside = mapper.map_events(
        &[Event::PointerMoved(pos2(0.0, 0.0)), wheel.clone()],
        &picture(),
    );
    assert!(outside.is_empty());
    let inside = mapper.map_events(
        &[Event::PointerMoved(pos2(100.0, 100.0)), wheel],
        &picture(),
    );
    assert_eq!(
        inside,
        vec![
            at(0.0, 0.0),
            InputEvent::Wheel(WheelDelta {
                right: -0.0,
                down: -1.0
            })
        ]
    );
}

#[test]
fn losing_focus_releases_everything_the_mapper_pressed() {
    let mods = egui::Modifiers::CTRL | egui::Modifiers::SHIFT;
    let mut mapper = EguiMapper::new();
    mapper.map_events(
        &[
            button(pos2(150.0, 150.0), true),
            Event::ModifiersChanged(mods),
            key(Key::F4, Key::F4, true, mods),
        ],
        &picture(),
    );
    let out = mapper.map_events(&[Event::WindowFocused(false)], &picture());
    assert_eq!(
        out,
        vec![
            InputEvent::ButtonUp(PointerButton::Left),
            InputEvent::KeyUp(Code::F4),
            InputEvent::Modifiers(Modifiers::NONE),
        ]
    );
    assert!(mapper.release_all().is_empty(), "nothing left to release");
}

#[test]
fn long_text_is_split_to_fit_the_gate() {
    let text = "ä".repeat(MAX_TEXT_CHARS * 2 + 1);
    let out = EguiMapper::new().map_events(&[Event::Text(text)], &picture());
    let lengths: Vec<usize> = out
        .iter()
        .map(|e| match e {
            InputEvent::Text(t) => t.chars().count(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(lengths, vec![MAX_TEXT_CHARS, MAX_TEXT_CHARS, 1]);
}
