//! The real backend: enigo, which speaks XTEST on X11 and the native APIs on
//! Windows and macOS.

use enigo::{Axis, Button, Coordinate, Direction, Enigo, Keyboard, Mouse, Settings};

use crate::backend::{BackendError, HostKey, InputBackend, ScrollAxis};
use crate::event::{Code, PointerButton};

/// How to reach the host's input system.
#[derive(Clone, Debug, Default)]
pub struct EnigoConfig {
    /// The X11 display to inject into (`":0"`). `None` means `$DISPLAY`.
    ///
    /// Naming it keeps the target explicit: a host process (or a test) that
    /// talks to several X servers must not depend on one process-wide
    /// environment variable. Ignored on Windows and macOS.
    pub x11_display: Option<String>,
    /// Milliseconds the X server waits before a key or button event that
    /// follows the same key too quickly (enigo's `linux_delay`).
    ///
    /// enigo defaults to 12 ms, which delays every click by 12 ms; remote
    /// input already arrives paced by the helper's hands and the network, so
    /// the default here is 0 (set it back if a host application drops
    /// repeated characters).
    pub key_delay_ms: u32,
}

/// Injects through enigo.
pub struct EnigoBackend {
    enigo: Enigo,
}

impl std::fmt::Debug for EnigoBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnigoBackend").finish_non_exhaustive()
    }
}

impl EnigoBackend {
    /// Connects to the input system.
    pub fn new(config: &EnigoConfig) -> Result<Self, BackendError> {
        let settings = Settings {
            x11_display: config.x11_display.clone(),
            linux_delay: config.key_delay_ms,
            // The injector releases what it pressed; enigo releasing its own
            // record on drop is a second line of defence if the host crashes
            // out of a session without running release-all.
            release_keys_when_dropped: true,
            // A host must never pop up a system dialog on a remote event.
            open_prompt_to_get_permissions: false,
            ..Settings::default()
        };
        let enigo = Enigo::new(&settings).map_err(|e| BackendError::Connect(e.to_string()))?;
        Ok(Self { enigo })
    }
}

fn simulate(e: enigo::InputError) -> BackendError {
    BackendError::Simulate(e.to_string())
}

fn direction(pressed: bool) -> Direction {
    if pressed {
        Direction::Press
    } else {
        Direction::Release
    }
}

impl InputBackend for EnigoBackend {
    fn move_pointer(&mut self, x: i32, y: i32) -> Result<(), BackendError> {
        self.enigo
            .move_mouse(x, y, Coordinate::Abs)
            .map_err(simulate)
    }

    fn button(&mut self, button: PointerButton, pressed: bool) -> Result<(), BackendError> {
        let button = match button {
            PointerButton::Left => Button::Left,
            PointerButton::Right => Button::Right,
            PointerButton::Middle => Button::Middle,
            PointerButton::Back => Button::Back,
            PointerButton::Forward => Button::Forward,
        };
        self.enigo
            .button(button, direction(pressed))
            .map_err(simulate)
    }

    fn scroll(&mut self, axis: ScrollAxis, notches: i32) -> Result<(), BackendError> {
        let axis = match axis {
            ScrollAxis::Vertical => Axis::Vertical,
            ScrollAxis::Horizontal => Axis::Horizontal,
        };
        self.enigo.scroll(notches, axis).map_err(simulate)
    }

    fn key(&mut self, key: HostKey, pressed: bool) -> Result<(), BackendError> {
        let enigo_key = match key {
            HostKey::Char(c) => char_key(c),
            HostKey::Code(code) => named_key(code),
        }
        .ok_or(BackendError::UnsupportedKey(key))?;
        self.enigo
            .key(enigo_key, direction(pressed))
            .map_err(simulate)
    }

    fn text(&mut self, text: &str) -> Result<(), BackendError> {
        // enigo types character by character on X11 anyway; doing it here
        // lets line breaks and tabs become the keys a text field expects.
        for c in text.chars() {
            let key = char_key(c).ok_or(BackendError::UnsupportedKey(HostKey::Char(c)))?;
            self.enigo.key(key, Direction::Click).map_err(simulate)?;
        }
        Ok(())
    }
}

/// The enigo key for a character; control characters other than line breaks
/// and tabs have no key.
fn char_key(c: char) -> Option<enigo::Key> {
    match c {
        '\n' | '\r' => Some(enigo::Key::Return),
        '\t' => Some(enigo::Key::Tab),
        c if c.is_control() => None,
        c => Some(enigo::Key::Unicode(c)),
    }
}

/// The enigo key for a key that produces no character.
fn named_key(code: Code) -> Option<enigo::Key> {
    use enigo::Key as K;
    let key = match code {
        Code::Backspace => K::Backspace,
        Code::Tab => K::Tab,
        Code::Enter | Code::NumpadEnter => K::Return,
        Code::Escape => K::Escape,
        Code::Space => K::Space,
        Code::Delete => K::Delete,
        Code::Home => K::Home,
        Code::End => K::End,
        Code::PageUp => K::PageUp,
        Code::PageDown => K::PageDown,
        Code::ArrowUp => K::UpArrow,
        Code::ArrowDown => K::DownArrow,
        Code::ArrowLeft => K::LeftArrow,
        Code::ArrowRight => K::RightArrow,
        Code::ShiftLeft => K::Shift,
        Code::ShiftRight => K::RShift,
        Code::ControlLeft => K::Control,
        Code::ControlRight => K::RControl,
        // Right Alt is AltGr on most non-US layouts and has no portable
        // name; as a modifier of a shortcut it means Alt.
        Code::AltLeft | Code::AltRight => K::Alt,
        Code::MetaLeft | Code::MetaRight => K::Meta,
        Code::CapsLock => K::CapsLock,
        Code::F1 => K::F1,
        Code::F2 => K::F2,
        Code::F3 => K::F3,
        Code::F4 => K::F4,
        Code::F5 => K::F5,
        Code::F6 => K::F6,
        Code::F7 => K::F7,
        Code::F8 => K::F8,
        Code::F9 => K::F9,
        Code::F10 => K::F10,
        Code::F11 => K::F11,
        Code::F12 => K::F12,
        Code::F13 => K::F13,
        Code::F14 => K::F14,
        Code::F15 => K::F15,
        Code::F16 => K::F16,
        Code::F17 => K::F17,
        Code::F18 => K::F18,
        Code::F19 => K::F19,
        Code::F20 => K::F20,
        Code::Numpad0 => K::Numpad0,
        Code::Numpad1 => K::Numpad1,
        Code::Numpad2 => K::Numpad2,
        Code::Numpad3 => K::Numpad3,
        Code::Numpad4 => K::Numpad4,
        Code::Numpad5 => K::Numpad5,
        Code::Numpad6 => K::Numpad6,
        Code::Numpad7 => K::Numpad7,
        Code::Numpad8 => K::Numpad8,
        Code::Numpad9 => K::Numpad9,
        Code::NumpadAdd => K::Add,
        Code::NumpadSubtract => K::Subtract,
        Code::NumpadMultiply => K::Multiply,
        Code::NumpadDivide => K::Divide,
        Code::NumpadDecimal => K::Decimal,
        Code::Help => K::Help,
        other => return platform_named_key(other),
    };
    Some(key)
}

/// Keys that enigo only names on Windows and X11.
#[cfg(not(target_os = "macos"))]
fn platform_named_key(code: Code) -> Option<enigo::Key> {
    use enigo::Key as K;
    Some(match code {
        Code::Insert => K::Insert,
        Code::NumLock => K::Numlock,
        Code::Pause => K::Pause,
        Code::PrintScreen => K::PrintScr,
        Code::ContextMenu => K::LMenu,
        Code::F21 => K::F21,
        Code::F22 => K::F22,
        Code::F23 => K::F23,
        Code::F24 => K::F24,
        #[cfg(all(unix, not(target_os = "macos")))]
        Code::ScrollLock => K::ScrollLock,
        _ => return None,
    })
}

#[cfg(target_os = "macos")]
fn platform_named_key(_code: Code) -> Option<enigo::Key> {
    None
}

#[cfg(all(test, all(unix, not(target_os = "macos"))))]
mod tests {
    /// The host's session engine runs input on a thread of its own.
    #[test]
    fn the_host_side_can_move_to_another_thread() {
        fn send<T: Send>() {}
        send::<crate::HostInput<super::EnigoBackend>>();
    }

    #[test]
    fn a_missing_x_server_is_a_connect_error() {
        let result = super::EnigoBackend::new(&super::EnigoConfig {
            x11_display: Some(":599".into()),
            ..Default::default()
        });
        assert!(matches!(result, Err(super::BackendError::Connect(_))));
    }
}
