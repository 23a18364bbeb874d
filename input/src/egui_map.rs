//! The viewer side: turns what egui reports about the viewer window into
//! [`InputEvent`]s for the host.
//!
//! Three rules shape it:
//! - Positions are mapped through the picture's on-screen rectangle, so a
//!   click on the picture lands on the host pixel drawn under the cursor,
//!   whatever the window size, zoom or the viewer's own display scaling.
//! - Typed characters travel as text and shortcuts travel as keys: without
//!   Ctrl, Alt or Command, a letter key is dropped in favour of the
//!   [`egui::Event::Text`] that egui reports for it (so the helper's layout
//!   decides the character); with one of them held, the key is sent and any
//!   text is dropped (so Ctrl+C is a shortcut, not a typed `c`).
//! - Every press the mapper sent is released by it, even when egui never
//!   reports the release (focus lost, a clipboard shortcut egui swallowed).

use std::collections::BTreeSet;

use egui::{Pos2, Rect, Vec2};

use crate::event::{
    Code, DisplayId, InputEvent, KeyPress, Modifiers, PointerButton, PointerPosition, WheelDelta,
};
use crate::gate::MAX_TEXT_CHARS;

/// Where the host's picture is drawn in the viewer window.
#[derive(Clone, Debug, PartialEq)]
pub struct PictureGeometry {
    display: DisplayId,
    image: Rect,
    visible: Rect,
}

impl PictureGeometry {
    /// The whole picture of `display` is drawn in `rect` (egui points).
    pub fn new(display: DisplayId, rect: Rect) -> Self {
        Self {
            display,
            image: rect,
            visible: rect,
        }
    }

    /// The picture of `display`, `size_px` host pixels large, is drawn with
    /// its top-left host pixel at `origin` and `points_per_pixel` egui points
    /// per host pixel (1.0 at 100 % zoom on a viewer without display scaling;
    /// 0.5 when a 2× viewer screen shows host pixels one to one).
    pub fn scaled(display: DisplayId, origin: Pos2, size_px: Vec2, points_per_pixel: f32) -> Self {
        Self::new(
            display,
            Rect::from_min_size(origin, size_px * points_per_pixel),
        )
    }

    /// Only the part of the picture inside `visible` is shown (a zoomed
    /// picture in a scroll area): pointing outside it is not pointing at the
    /// host.
    pub fn with_visible(mut self, visible: Rect) -> Self {
        self.visible = visible;
        self
    }

    /// The host display the picture shows.
    pub fn display(&self) -> &DisplayId {
        &self.display
    }

    /// The host position under `pos`, if `pos` is on the visible picture.
    pub fn position(&self, pos: Pos2) -> Option<PointerPosition> {
        (self.image.contains(pos) && self.visible.contains(pos)).then(|| self.fractions(pos))
    }

    /// The host position under `pos`, moved onto the picture's edge when it is
    /// outside, for drags that leave the picture.
    pub fn clamped_position(&self, pos: Pos2) -> PointerPosition {
        self.fractions(self.image.intersect(self.visible).clamp(pos))
    }

    fn fractions(&self, pos: Pos2) -> PointerPosition {
        let size = self.image.size();
        let rel = pos - self.image.min;
        PointerPosition {
            display: self.display.clone(),
            x: if size.x > 0.0 { rel.x / size.x } else { 0.0 },
            y: if size.y > 0.0 { rel.y / size.y } else { 0.0 },
        }
    }
}

/// egui points per wheel notch for pixel-precise (trackpad) scrolling; the
/// height of a line of text at egui's default style.
const POINTS_PER_NOTCH: f32 = 50.0;
/// Notches per page for page-wise scrolling.
const NOTCHES_PER_PAGE: f32 = 10.0;

/// Maps egui events to input events; one per viewer window.
#[derive(Clone, Debug, Default)]
pub struct EguiMapper {
    modifiers: Modifiers,
    buttons: BTreeSet<PointerButton>,
    keys: BTreeSet<Code>,
    pointer_on_picture: bool,
    command_as_ctrl: bool,
}

impl EguiMapper {
    /// A mapper with nothing held.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sends the Mac Command key as Ctrl, so that a helper on a Mac uses
    /// Cmd+C as Ctrl+C on a Windows or Linux host. Off by default.
    pub fn with_command_as_ctrl(mut self, on: bool) -> Self {
        self.command_as_ctrl = on;
        self
    }

    /// Maps one frame's events (`ctx.input(|i| i.events.clone())`).
    pub fn map_events(
        &mut self,
        events: &[egui::Event],
        picture: &PictureGeometry,
    ) -> Vec<InputEvent> {
        let mut out = Vec::new();
        for event in events {
            self.map_event(event, picture, &mut out);
        }
        out
    }

    /// Maps one event, appending what the host should receive to `out`.
    pub fn map_event(
        &mut self,
        event: &egui::Event,
        picture: &PictureGeometry,
        out: &mut Vec<InputEvent>,
    ) {
        match event {
            egui::Event::ModifiersChanged(modifiers) => self.sync_modifiers(*modifiers, out),
            egui::Event::PointerMoved(pos) => self.pointer_moved(*pos, picture, out),
            egui::Event::PointerButton {
                pos,
                button,
                pressed,
                modifiers,
            } => {
                self.sync_modifiers(*modifiers, out);
                self.pointer_button(*pos, *button, *pressed, picture, out);
            }
            egui::Event::PointerGone => self.pointer_on_picture = false,
            egui::Event::MouseWheel {
                unit,
                delta,
                modifiers,
                ..
            } => {
                self.sync_modifiers(*modifiers, out);
                if self.pointer_on_picture {
                    out.push(InputEvent::Wheel(wheel(*unit, *delta)));
                }
            }
            egui::Event::Key {
                key,
                physical_key,
                pressed,
                modifiers,
                ..
            } => {
                self.sync_modifiers(*modifiers, out);
                self.key(*key, *physical_key, *pressed, out);
            }
            egui::Event::Text(text) | egui::Event::Ime(egui::ImeEvent::Commit(text)) => {
                self.text(text, out);
            }
            // egui swallows the key press of these shortcuts (and, for Paste,
            // replaces it with the viewer's clipboard); the host gets the
            // shortcut itself. The modifiers that made it are already held.
            egui::Event::Copy => self.tap(Code::KeyC, 'c', out),
            egui::Event::Cut => self.tap(Code::KeyX, 'x', out),
            egui::Event::Paste(_) | egui::Event::PasteImage(_) => self.tap(Code::KeyV, 'v', out),
            egui::Event::WindowFocused(false) => out.extend(self.release_all()),
            _ => {}
        }
    }

    /// Releases everything this mapper pressed on the host; for when the
    /// picture stops receiving input (window hidden, control handed back).
    pub fn release_all(&mut self) -> Vec<InputEvent> {
        let mut out: Vec<InputEvent> = std::mem::take(&mut self.buttons)
            .into_iter()
            .map(InputEvent::ButtonUp)
            .collect();
        out.extend(
            std::mem::take(&mut self.keys)
                .into_iter()
                .map(InputEvent::KeyUp),
        );
        if self.modifiers.any() {
            self.modifiers = Modifiers::NONE;
            out.push(InputEvent::Modifiers(Modifiers::NONE));
        }
        out
    }

    fn sync_modifiers(&mut self, modifiers: egui::Modifiers, out: &mut Vec<InputEvent>) {
        let cmd = modifiers.mac_cmd;
        let ours = Modifiers {
            shift: modifiers.shift,
            ctrl: modifiers.ctrl || (cmd && self.command_as_ctrl),
            alt: modifiers.alt,
            meta: cmd && !self.command_as_ctrl,
        };
        if ours != self.modifiers {
            self.modifiers = ours;
            out.push(InputEvent::Modifiers(ours));
        }
    }

    /// Whether a held modifier turns keys into shortcuts.
    fn shortcut_held(&self) -> bool {
        self.modifiers.ctrl || self.modifiers.alt || self.modifiers.meta
    }

    fn pointer_moved(&mut self, pos: Pos2, picture: &PictureGeometry, out: &mut Vec<InputEvent>) {
        match picture.position(pos) {
            Some(position) => {
                self.pointer_on_picture = true;
                out.push(InputEvent::PointerMove(position));
            }
            None => {
                self.pointer_on_picture = false;
                // A drag that leaves the picture follows its edge.
                if !self.buttons.is_empty() {
                    out.push(InputEvent::PointerMove(picture.clamped_position(pos)));
                }
            }
        }
    }

    fn pointer_button(
        &mut self,
        pos: Pos2,
        button: egui::PointerButton,
        pressed: bool,
        picture: &PictureGeometry,
        out: &mut Vec<InputEvent>,
    ) {
        let button = match button {
            egui::PointerButton::Primary => PointerButton::Left,
            egui::PointerButton::Secondary => PointerButton::Right,
            egui::PointerButton::Middle => PointerButton::Middle,
            egui::PointerButton::Extra1 => PointerButton::Back,
            egui::PointerButton::Extra2 => PointerButton::Forward,
        };
        if pressed {
            // Only a press on the picture is for the host; the position goes
            // first so the click lands where it was made, even if no move
            // event preceded it.
            if let Some(position) = picture.position(pos)
                && self.buttons.insert(button)
            {
                out.push(InputEvent::PointerMove(position));
                out.push(InputEvent::ButtonDown(button));
            }
        } else if self.buttons.remove(&button) {
            out.push(InputEvent::PointerMove(picture.clamped_position(pos)));
            out.push(InputEvent::ButtonUp(button));
        }
    }

    fn key(
        &mut self,
        key: egui::Key,
        physical: Option<egui::Key>,
        pressed: bool,
        out: &mut Vec<InputEvent>,
    ) {
        // Modifier keys travel as modifier state. Caps Lock and Num Lock stay
        // on the viewer: their effect is already in the text it sends, and
        // toggling them on the host as well would change the case of text
        // typed there a second time.
        if is_modifier(key) || matches!(key, egui::Key::CapsLock | egui::Key::NumLock) {
            return;
        }
        let Some(code) = code_of(physical.unwrap_or(key)) else {
            return;
        };
        if !pressed {
            if self.keys.remove(&code) {
                out.push(InputEvent::KeyUp(code));
            }
            return;
        }
        if self.keys.contains(&code) {
            // egui's key repeat; the host repeats a held key by itself.
            return;
        }
        let logical = char_of(key);
        if logical.is_some() && !self.shortcut_held() {
            // The character arrives as Event::Text.
            return;
        }
        self.keys.insert(code);
        out.push(InputEvent::KeyDown(KeyPress { code, logical }));
    }

    fn text(&mut self, text: &str, out: &mut Vec<InputEvent>) {
        if self.shortcut_held() {
            // The key event already carries it as a shortcut.
            return;
        }
        let chars: Vec<char> = text.chars().filter(|c| !c.is_control()).collect();
        for chunk in chars.chunks(MAX_TEXT_CHARS) {
            out.push(InputEvent::Text(chunk.iter().collect()));
        }
    }

    fn tap(&mut self, code: Code, c: char, out: &mut Vec<InputEvent>) {
        out.push(InputEvent::KeyDown(KeyPress {
            code,
            logical: Some(c),
        }));
        out.push(InputEvent::KeyUp(code));
    }
}

fn wheel(unit: egui::MouseWheelUnit, delta: Vec2) -> WheelDelta {
    let notches = match unit {
        egui::MouseWheelUnit::Line => delta,
        egui::MouseWheelUnit::Point => delta / POINTS_PER_NOTCH,
        egui::MouseWheelUnit::Page => delta * NOTCHES_PER_PAGE,
    };
    // egui's delta is how the content moves: content moving down means the
    // view scrolls up.
    WheelDelta {
        right: -notches.x,
        down: -notches.y,
    }
}

fn is_modifier(key: egui::Key) -> bool {
    use egui::Key as E;
    matches!(
        key,
        E::ShiftLeft
            | E::ShiftRight
            | E::ControlLeft
            | E::ControlRight
            | E::AltLeft
            | E::AltRight
            | E::SuperLeft
            | E::SuperRight
    )
}

/// The character a key means on the viewer's layout, for keys that type one.
fn char_of(key: egui::Key) -> Option<char> {
    use egui::Key as E;
    let c = match key {
        E::Space => ' ',
        E::Colon => ':',
        E::Comma => ',',
        E::Backslash => '\\',
        E::Slash => '/',
        E::Pipe => '|',
        E::Questionmark => '?',
        E::Exclamationmark => '!',
        E::OpenBracket => '[',
        E::CloseBracket => ']',
        E::OpenCurlyBracket => '{',
        E::CloseCurlyBracket => '}',
        E::Backtick => '`',
        E::Minus => '-',
        E::Period => '.',
        E::Plus => '+',
        E::Equals => '=',
        E::Semicolon => ';',
        E::Quote => '\'',
        _ => {
            // Digits and letters: egui's names are their characters.
            let name = key.name();
            let mut chars = name.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) if c.is_ascii_alphanumeric() => c.to_ascii_lowercase(),
                _ => return None,
            }
        }
    };
    Some(c)
}

/// The physical code of an egui key (egui reports physical keys with the
/// names of a US layout).
fn code_of(key: egui::Key) -> Option<Code> {
    use egui::Key as E;
    Some(match key {
        E::ArrowDown => Code::ArrowDown,
        E::ArrowLeft => Code::ArrowLeft,
        E::ArrowRight => Code::ArrowRight,
        E::ArrowUp => Code::ArrowUp,
        E::Escape => Code::Escape,
        E::Tab => Code::Tab,
        E::Backspace => Code::Backspace,
        E::Enter => Code::Enter,
        E::Space => Code::Space,
        E::Insert => Code::Insert,
        E::Delete => Code::Delete,
        E::Home => Code::Home,
        E::End => Code::End,
        E::PageUp => Code::PageUp,
        E::PageDown => Code::PageDown,
        E::Comma => Code::Comma,
        E::Backslash | E::Pipe => Code::Backslash,
        E::Slash | E::Questionmark => Code::Slash,
        E::OpenBracket | E::OpenCurlyBracket => Code::BracketLeft,
        E::CloseBracket | E::CloseCurlyBracket => Code::BracketRight,
        E::Backtick => Code::Backquote,
        E::Minus => Code::Minus,
        E::Period => Code::Period,
        E::Equals | E::Plus => Code::Equal,
        E::Semicolon | E::Colon => Code::Semicolon,
        E::Quote => Code::Quote,
        E::Exclamationmark | E::Num1 => Code::Digit1,
        E::Num0 => Code::Digit0,
        E::Num2 => Code::Digit2,
        E::Num3 => Code::Digit3,
        E::Num4 => Code::Digit4,
        E::Num5 => Code::Digit5,
        E::Num6 => Code::Digit6,
        E::Num7 => Code::Digit7,
        E::Num8 => Code::Digit8,
        E::Num9 => Code::Digit9,
        E::A => Code::KeyA,
        E::B => Code::KeyB,
        E::C => Code::KeyC,
        E::D => Code::KeyD,
        E::E => Code::KeyE,
        E::F => Code::KeyF,
        E::G => Code::KeyG,
        E::H => Code::KeyH,
        E::I => Code::KeyI,
        E::J => Code::KeyJ,
        E::K => Code::KeyK,
        E::L => Code::KeyL,
        E::M => Code::KeyM,
        E::N => Code::KeyN,
        E::O => Code::KeyO,
        E::P => Code::KeyP,
        E::Q => Code::KeyQ,
        E::R => Code::KeyR,
        E::S => Code::KeyS,
        E::T => Code::KeyT,
        E::U => Code::KeyU,
        E::V => Code::KeyV,
        E::W => Code::KeyW,
        E::X => Code::KeyX,
        E::Y => Code::KeyY,
        E::Z => Code::KeyZ,
        E::F1 => Code::F1,
        E::F2 => Code::F2,
        E::F3 => Code::F3,
        E::F4 => Code::F4,
        E::F5 => Code::F5,
        E::F6 => Code::F6,
        E::F7 => Code::F7,
        E::F8 => Code::F8,
        E::F9 => Code::F9,
        E::F10 => Code::F10,
        E::F11 => Code::F11,
        E::F12 => Code::F12,
        E::F13 => Code::F13,
        E::F14 => Code::F14,
        E::F15 => Code::F15,
        E::F16 => Code::F16,
        E::F17 => Code::F17,
        E::F18 => Code::F18,
        E::F19 => Code::F19,
        E::F20 => Code::F20,
        E::F21 => Code::F21,
        E::F22 => Code::F22,
        E::F23 => Code::F23,
        E::F24 => Code::F24,
        E::IntlBackslash => Code::IntlBackslash,
        E::CapsLock => Code::CapsLock,
        E::NumLock => Code::NumLock,
        E::ScrollLock => Code::ScrollLock,
        E::PrintScreen => Code::PrintScreen,
        E::Pause => Code::Pause,
        E::Menu => Code::ContextMenu,
        E::Help => Code::Help,
        _ => return None,
    })
}

#[cfg(test)]
mod tests;
