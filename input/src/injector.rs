//! The host's injector: one per host, shared by all viewers.
//!
//! It turns admitted events into backend calls and keeps the books that make
//! remote input safe to stop at any moment: which keys and buttons each viewer
//! holds (so [`Injector::release_all`] can let go of exactly those), and how
//! many viewers hold each operating-system key (so that one viewer letting go
//! of Shift does not release the Shift another viewer still holds).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::backend::{BackendError, HostKey, InputBackend, ScrollAxis};
use crate::event::{Code, InputEvent, KeyPress, Modifiers, PointerButton, WheelDelta};
use crate::gate::{Admitted, ViewerId};
use crate::layout::{DisplayLayout, LayoutError};

/// The most wheel notches one event may scroll. A real wheel sends one to a
/// few per event; this bounds what a bogus delta can do (the gate only checks
/// that it is a number).
pub const MAX_NOTCHES_PER_EVENT: i32 = 50;

/// Injection failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InjectError {
    /// The pointer position could not be mapped onto this host's displays.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// The operating system's input system failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// What one viewer holds down on the host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeldInput {
    /// Keys held, by physical code.
    pub keys: Vec<Code>,
    /// Pointer buttons held.
    pub buttons: Vec<PointerButton>,
}

#[derive(Debug, Default)]
struct ViewerState {
    keys: BTreeMap<Code, HostKey>,
    buttons: BTreeSet<PointerButton>,
    wheel_right: f32,
    wheel_down: f32,
}

/// Injects the admitted input of every viewer into one backend.
pub struct Injector<B: InputBackend> {
    backend: B,
    layout: DisplayLayout,
    viewers: HashMap<ViewerId, ViewerState>,
    key_holds: HashMap<HostKey, u32>,
    button_holds: HashMap<PointerButton, u32>,
}

impl<B: InputBackend> std::fmt::Debug for Injector<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Injector")
            .field("layout", &self.layout)
            .field("viewers", &self.viewers)
            .finish_non_exhaustive()
    }
}

impl<B: InputBackend> Injector<B> {
    /// An injector for a host whose displays are laid out as `layout`.
    pub fn new(backend: B, layout: DisplayLayout) -> Self {
        Self {
            backend,
            layout,
            viewers: HashMap::new(),
            key_holds: HashMap::new(),
            button_holds: HashMap::new(),
        }
    }

    /// The host's display layout.
    pub fn layout(&self) -> &DisplayLayout {
        &self.layout
    }

    /// Replaces the display layout (a monitor was plugged in or rearranged).
    pub fn set_layout(&mut self, layout: DisplayLayout) {
        self.layout = layout;
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend, mutably.
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// What `viewer` holds down right now.
    pub fn held(&self, viewer: ViewerId) -> HeldInput {
        self.viewers
            .get(&viewer)
            .map(|state| HeldInput {
                keys: state.keys.keys().copied().collect(),
                buttons: state.buttons.iter().copied().collect(),
            })
            .unwrap_or_default()
    }

    /// Injects one admitted event.
    pub fn inject(&mut self, admitted: &Admitted) -> Result<(), InjectError> {
        let viewer = admitted.viewer();
        match admitted.event() {
            InputEvent::PointerMove(pos) => {
                let (x, y) = self.layout.to_desktop(pos)?;
                self.backend.move_pointer(x, y)?;
            }
            InputEvent::ButtonDown(button) => self.button_down(viewer, *button)?,
            InputEvent::ButtonUp(button) => self.button_up(viewer, *button)?,
            InputEvent::Wheel(delta) => self.wheel(viewer, *delta)?,
            InputEvent::KeyDown(press) => self.key_down(viewer, *press)?,
            InputEvent::KeyUp(code) => self.key_up(viewer, *code)?,
            InputEvent::Text(text) => self.text(text)?,
            InputEvent::Modifiers(modifiers) => self.modifiers(viewer, *modifiers)?,
        }
        Ok(())
    }

    /// Releases every key and button `viewer` holds and forgets the viewer.
    ///
    /// Call it when a viewer disconnects, is removed, or loses control. Every
    /// release is attempted even if one fails; the first failure is returned.
    pub fn release_all(&mut self, viewer: ViewerId) -> Result<(), InjectError> {
        let Some(state) = self.viewers.remove(&viewer) else {
            return Ok(());
        };
        let mut first_error = None;
        for button in state.buttons {
            if let Err(e) = self.os_button(button, false) {
                first_error.get_or_insert(e);
            }
        }
        // Ordinary keys before modifiers, so a half-released shortcut never
        // turns into a different one (Ctrl+C must not end as a bare C).
        let (modifiers, others): (Vec<HostKey>, Vec<HostKey>) =
            state.keys.into_values().partition(|k| k.is_modifier());
        for key in others.into_iter().chain(modifiers) {
            if let Err(e) = self.os_key(key, false) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), |e| Err(e.into()))
    }

    fn state(&mut self, viewer: ViewerId) -> &mut ViewerState {
        self.viewers.entry(viewer).or_default()
    }

    fn button_down(&mut self, viewer: ViewerId, button: PointerButton) -> Result<(), BackendError> {
        if self.state(viewer).buttons.contains(&button) {
            return Ok(());
        }
        self.os_button(button, true)?;
        self.state(viewer).buttons.insert(button);
        Ok(())
    }

    fn button_up(&mut self, viewer: ViewerId, button: PointerButton) -> Result<(), BackendError> {
        // A release of something this viewer does not hold never reaches the
        // OS: it could release another viewer's button.
        if self.state(viewer).buttons.remove(&button) {
            self.os_button(button, false)?;
        }
        Ok(())
    }

    fn key_down(&mut self, viewer: ViewerId, press: KeyPress) -> Result<(), BackendError> {
        if self.state(viewer).keys.contains_key(&press.code) {
            // Already down: the host's own auto-repeat is running.
            return Ok(());
        }
        let key = host_key(press);
        self.os_key(key, true)?;
        self.state(viewer).keys.insert(press.code, key);
        Ok(())
    }

    fn key_up(&mut self, viewer: ViewerId, code: Code) -> Result<(), BackendError> {
        if let Some(key) = self.state(viewer).keys.remove(&code) {
            self.os_key(key, false)?;
        }
        Ok(())
    }

    /// Brings the viewer's held modifier keys in line with its state.
    fn modifiers(&mut self, viewer: ViewerId, modifiers: Modifiers) -> Result<(), BackendError> {
        let pairs = [
            (modifiers.shift, Code::ShiftLeft, Code::ShiftRight),
            (modifiers.ctrl, Code::ControlLeft, Code::ControlRight),
            (modifiers.alt, Code::AltLeft, Code::AltRight),
            (modifiers.meta, Code::MetaLeft, Code::MetaRight),
        ];
        for (wanted, left, right) in pairs {
            let state = self.state(viewer);
            let held = state.keys.contains_key(&left) || state.keys.contains_key(&right);
            if wanted && !held {
                self.key_down(
                    viewer,
                    KeyPress {
                        code: left,
                        logical: None,
                    },
                )?;
            } else if !wanted && held {
                self.key_up(viewer, left)?;
                self.key_up(viewer, right)?;
            }
        }
        Ok(())
    }

    /// Types text with no modifier held on the host, whoever holds them, so
    /// that a Shift held for the next click cannot turn `a` into `A` and a
    /// held Ctrl cannot turn a letter into a shortcut.
    fn text(&mut self, text: &str) -> Result<(), BackendError> {
        let held_modifiers: Vec<HostKey> = HostKey::MODIFIERS
            .into_iter()
            .filter(|k| self.key_holds.get(k).is_some_and(|&n| n > 0))
            .collect();
        for &key in &held_modifiers {
            self.backend.key(key, false)?;
        }
        let typed = self.backend.text(text);
        let mut restored = Ok(());
        for &key in &held_modifiers {
            if let Err(e) = self.backend.key(key, true) {
                restored = restored.and(Err(e));
            }
        }
        typed.and(restored)
    }

    fn wheel(&mut self, viewer: ViewerId, delta: WheelDelta) -> Result<(), BackendError> {
        let state = self.state(viewer);
        let down = take_notches(&mut state.wheel_down, delta.down);
        let right = take_notches(&mut state.wheel_right, delta.right);
        if down != 0 {
            self.backend.scroll(ScrollAxis::Vertical, down)?;
        }
        if right != 0 {
            self.backend.scroll(ScrollAxis::Horizontal, right)?;
        }
        Ok(())
    }

    fn os_key(&mut self, key: HostKey, pressed: bool) -> Result<(), BackendError> {
        hold(&mut self.key_holds, key, pressed, |p| {
            self.backend.key(key, p)
        })
    }

    fn os_button(&mut self, button: PointerButton, pressed: bool) -> Result<(), BackendError> {
        hold(&mut self.button_holds, button, pressed, |p| {
            self.backend.button(button, p)
        })
    }
}

impl<B: InputBackend> Drop for Injector<B> {
    /// A host that shuts down without removing its viewers first still lets
    /// go of everything they held.
    fn drop(&mut self) {
        let viewers: Vec<ViewerId> = self.viewers.keys().copied().collect();
        for viewer in viewers {
            // Nothing left to report to: the injector is going away.
            let _ = self.release_all(viewer);
        }
    }
}

/// Counts holders of `item`; only the first press and the last release reach
/// the operating system.
fn hold<T: std::hash::Hash + Eq>(
    holds: &mut HashMap<T, u32>,
    item: T,
    pressed: bool,
    os: impl FnOnce(bool) -> Result<(), BackendError>,
) -> Result<(), BackendError> {
    let count = holds.get(&item).copied().unwrap_or(0);
    if pressed {
        if count == 0 {
            os(true)?;
        }
        holds.insert(item, count + 1);
    } else {
        match count {
            0 => {}
            1 => {
                holds.remove(&item);
                os(false)?;
            }
            n => {
                holds.insert(item, n - 1);
            }
        }
    }
    Ok(())
}

/// Adds `delta` to a running remainder and takes out the whole notches, so
/// that a trackpad's tenths of a notch add up instead of being lost.
fn take_notches(remainder: &mut f32, delta: f32) -> i32 {
    let total = *remainder + delta;
    let whole = total.trunc();
    *remainder = total - whole;
    // `as` saturates; the clamp bounds what one event may do.
    (whole as i32).clamp(-MAX_NOTCHES_PER_EVENT, MAX_NOTCHES_PER_EVENT)
}

/// The key the host presses for a key press.
///
/// A key that means a character on the viewer's layout presses the key that
/// produces that character on the host's layout (Ctrl+Z stays undo from a
/// German keyboard on a French host). A character key without that hint falls
/// back to what the position means on a US keyboard.
pub fn host_key(press: KeyPress) -> HostKey {
    match press.logical.filter(|c| !c.is_control()) {
        Some(c) => HostKey::Char(c.to_lowercase().next().unwrap_or(c)),
        None => us_char(press.code).map_or(HostKey::Code(press.code), HostKey::Char),
    }
}

/// The character a character key produces on a US layout without Shift.
fn us_char(code: Code) -> Option<char> {
    Some(match code {
        Code::KeyA => 'a',
        Code::KeyB => 'b',
        Code::KeyC => 'c',
        Code::KeyD => 'd',
        Code::KeyE => 'e',
        Code::KeyF => 'f',
        Code::KeyG => 'g',
        Code::KeyH => 'h',
        Code::KeyI => 'i',
        Code::KeyJ => 'j',
        Code::KeyK => 'k',
        Code::KeyL => 'l',
        Code::KeyM => 'm',
        Code::KeyN => 'n',
        Code::KeyO => 'o',
        Code::KeyP => 'p',
        Code::KeyQ => 'q',
        Code::KeyR => 'r',
        Code::KeyS => 's',
        Code::KeyT => 't',
        Code::KeyU => 'u',
        Code::KeyV => 'v',
        Code::KeyW => 'w',
        Code::KeyX => 'x',
        Code::KeyY => 'y',
        Code::KeyZ => 'z',
        Code::Digit0 => '0',
        Code::Digit1 => '1',
        Code::Digit2 => '2',
        Code::Digit3 => '3',
        Code::Digit4 => '4',
        Code::Digit5 => '5',
        Code::Digit6 => '6',
        Code::Digit7 => '7',
        Code::Digit8 => '8',
        Code::Digit9 => '9',
        Code::Minus => '-',
        Code::Equal => '=',
        Code::BracketLeft => '[',
        Code::BracketRight => ']',
        Code::Backslash => '\\',
        Code::Semicolon => ';',
        Code::Quote => '\'',
        Code::Backquote => '`',
        Code::Comma => ',',
        Code::Period => '.',
        Code::Slash => '/',
        _ => return None,
    })
}
