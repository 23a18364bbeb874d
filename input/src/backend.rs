//! The small trait between the injector's bookkeeping and the operating
//! system: everything above it is plain logic that unit tests can drive with a
//! recording backend, everything below it talks to a real input system.

use crate::event::{Code, PointerButton};

/// A key as the host's operating system is asked to press it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HostKey {
    /// A key that produces no character (Enter, F5, Shift, arrows), by the
    /// position-independent meaning of its physical code.
    Code(Code),
    /// The key that produces this character on the host's layout, so that
    /// shortcuts such as Ctrl+Z keep their meaning across layouts.
    Char(char),
}

impl HostKey {
    /// The modifier keys the injector may hold for viewers.
    pub const MODIFIERS: [Self; 8] = [
        Self::Code(Code::ShiftLeft),
        Self::Code(Code::ShiftRight),
        Self::Code(Code::ControlLeft),
        Self::Code(Code::ControlRight),
        Self::Code(Code::AltLeft),
        Self::Code(Code::AltRight),
        Self::Code(Code::MetaLeft),
        Self::Code(Code::MetaRight),
    ];

    /// Whether this is a modifier key (Shift, Control, Alt, Meta).
    pub fn is_modifier(self) -> bool {
        Self::MODIFIERS.contains(&self)
    }
}

/// A scroll axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScrollAxis {
    /// Up and down.
    Vertical,
    /// Left and right.
    Horizontal,
}

/// The host's input system refused or failed an action.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// No connection to the input system (no X server, no permission).
    #[error("cannot connect to the input system: {0}")]
    Connect(String),
    /// The input system rejected a simulated event.
    #[error("the input system rejected an event: {0}")]
    Simulate(String),
    /// This key has no equivalent on this platform.
    #[error("the key {0:?} cannot be pressed on this platform")]
    UnsupportedKey(HostKey),
}

/// Injects input into the host's operating system.
///
/// Implementations do no bookkeeping of their own: the [`crate::Injector`]
/// decides which presses and releases reach them, so a backend sees every
/// press matched by exactly one release.
pub trait InputBackend {
    /// Moves the pointer to a desktop pixel.
    fn move_pointer(&mut self, x: i32, y: i32) -> Result<(), BackendError>;
    /// Presses or releases a pointer button.
    fn button(&mut self, button: PointerButton, pressed: bool) -> Result<(), BackendError>;
    /// Scrolls by whole notches; positive is down or right.
    fn scroll(&mut self, axis: ScrollAxis, notches: i32) -> Result<(), BackendError>;
    /// Presses or releases a key.
    fn key(&mut self, key: HostKey, pressed: bool) -> Result<(), BackendError>;
    /// Types characters, independent of the host's layout. The injector calls
    /// this with no modifier held.
    fn text(&mut self, text: &str) -> Result<(), BackendError>;
}

impl<B: InputBackend + ?Sized> InputBackend for Box<B> {
    fn move_pointer(&mut self, x: i32, y: i32) -> Result<(), BackendError> {
        (**self).move_pointer(x, y)
    }
    fn button(&mut self, button: PointerButton, pressed: bool) -> Result<(), BackendError> {
        (**self).button(button, pressed)
    }
    fn scroll(&mut self, axis: ScrollAxis, notches: i32) -> Result<(), BackendError> {
        (**self).scroll(axis, notches)
    }
    fn key(&mut self, key: HostKey, pressed: bool) -> Result<(), BackendError> {
        (**self).key(key, pressed)
    }
    fn text(&mut self, text: &str) -> Result<(), BackendError> {
        (**self).text(text)
    }
}
