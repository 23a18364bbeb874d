//! The input event model that travels from a viewer to the host.
//!
//! Events describe *what the helper did*, not how the host's operating system
//! wants to hear it: pointer positions are fractions of a named host display
//! (so the viewer's window size, zoom and the host's resolution do not matter
//! on the wire), keys are identified by their physical position (so a key-up
//! always matches its key-down), and typed characters travel as text (so the
//! host's keyboard layout cannot turn a German `z` into a French `w`).

use std::fmt;

pub use keyboard_types::Code;
use serde::{Deserialize, Serialize};

/// The name of one host display (monitor), as the host announced it.
///
/// Pointer positions are relative to a display rather than to the host's whole
/// desktop, so that a viewer showing one monitor of a multi-monitor host never
/// needs to know where that monitor sits in the host's coordinate space.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DisplayId(String);

impl DisplayId {
    /// A display identified by `name` (for X11, the RandR monitor name).
    pub fn new(name: impl Into<String>) -> Self {
        Self(name.into())
    }

    /// The display's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DisplayId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A pointer position as fractions of a display's width and height.
///
/// `x = 0.0` is the left edge of the display and `x = 1.0` its right edge; the
/// host pixel column `c` of a display `w` pixels wide covers `[c / w, (c + 1) / w)`.
/// A viewer that points at the centre of a host pixel therefore always lands on
/// exactly that pixel, whatever the scale of the picture it shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointerPosition {
    /// The display the fractions refer to.
    pub display: DisplayId,
    /// Horizontal position, 0.0 (left edge) ..= 1.0 (right edge).
    pub x: f32,
    /// Vertical position, 0.0 (top edge) ..= 1.0 (bottom edge).
    pub y: f32,
}

/// A pointer button.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PointerButton {
    /// The primary (usually left) button.
    Left,
    /// The secondary (usually right) button.
    Right,
    /// The middle button (often the wheel).
    Middle,
    /// The "back" side button.
    Back,
    /// The "forward" side button.
    Forward,
}

impl PointerButton {
    /// Every button, for code that must release them all.
    pub const ALL: [Self; 5] = [
        Self::Left,
        Self::Right,
        Self::Middle,
        Self::Back,
        Self::Forward,
    ];
}

/// A wheel movement in notches (lines), both axes.
///
/// Named by direction rather than by sign convention because toolkits disagree
/// on the sign (egui's positive y moves the content down, X11's button 5 is
/// "down"); fractions are allowed so that smooth trackpad scrolling adds up on
/// the host instead of being rounded away event by event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WheelDelta {
    /// Notches to scroll right (negative: left).
    pub right: f32,
    /// Notches to scroll down, i.e. towards the end of a document (negative: up).
    pub down: f32,
}

/// A key press: which physical key, and what it means on the viewer's layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyPress {
    /// The key's physical position (W3C `code`, US-layout names).
    ///
    /// This is the key's identity: the matching [`InputEvent::KeyUp`] names the
    /// same code, and the host releases whatever it pressed for it.
    pub code: Code,
    /// The character the key produces on the viewer's layout without Shift,
    /// for character keys (`'z'` for the key labelled Z on a German keyboard,
    /// which sits where a US keyboard has Y).
    ///
    /// The host presses the key that produces this character on *its* layout,
    /// so that shortcuts keep their meaning (Ctrl+Z undoes on any pair of
    /// layouts). `None` for keys that produce no character (Enter, F1, arrows).
    pub logical: Option<char>,
}

/// The state of the modifier keys on the viewer.
///
/// Sent as a state rather than as key presses so that a lost or filtered
/// event cannot leave a modifier stuck: the next state fixes it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Modifiers {
    /// Either Shift key.
    pub shift: bool,
    /// Either Control key.
    pub ctrl: bool,
    /// Either Alt (Option) key.
    pub alt: bool,
    /// Either Meta key (Windows key, Super, the Mac Command key).
    pub meta: bool,
}

impl Modifiers {
    /// No modifier held.
    pub const NONE: Self = Self {
        shift: false,
        ctrl: false,
        alt: false,
        meta: false,
    };

    /// Whether any modifier is held.
    pub fn any(self) -> bool {
        self.shift || self.ctrl || self.alt || self.meta
    }
}

/// One input event from a viewer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum InputEvent {
    /// The pointer moved to a position on a display.
    PointerMove(PointerPosition),
    /// A pointer button was pressed at the current pointer position.
    ButtonDown(PointerButton),
    /// A pointer button was released.
    ButtonUp(PointerButton),
    /// The wheel turned.
    Wheel(WheelDelta),
    /// A key went down.
    KeyDown(KeyPress),
    /// The key with this physical code went up.
    KeyUp(Code),
    /// Characters were typed (already composed by the viewer's layout or IME).
    ///
    /// The host types them as characters, independent of its own layout and of
    /// any modifier held at the time.
    Text(String),
    /// The viewer's modifier state changed.
    Modifiers(Modifiers),
}

impl InputEvent {
    /// Whether this event can only take input away (a release), never add it.
    ///
    /// Releases are never rate-limited: dropping one could leave a key stuck.
    pub fn is_release(&self) -> bool {
        match self {
            Self::ButtonUp(_) | Self::KeyUp(_) => true,
            Self::Modifiers(m) => !m.any(),
            _ => false,
        }
    }
}
