//! A backend that records what it is asked to do instead of doing it.
//!
//! For tests of code above the injector (the app's session engine, for one)
//! that want to see which input would reach the operating system without
//! needing an X server.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::backend::{BackendError, HostKey, InputBackend, ScrollAxis};
use crate::event::PointerButton;

/// One call a [`RecordingBackend`] received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `move_pointer(x, y)`.
    Move(i32, i32),
    /// `button(button, pressed)`.
    Button(PointerButton, bool),
    /// `scroll(axis, notches)`.
    Scroll(ScrollAxis, i32),
    /// `key(key, pressed)`.
    Key(HostKey, bool),
    /// `text(text)`.
    Text(String),
}

/// Records every call; never fails.
///
/// Clones share one record, so a test can keep a clone while the injector
/// owns the backend (and still read the record after the injector is gone).
#[derive(Clone, Debug, Default)]
pub struct RecordingBackend {
    actions: Arc<Mutex<Vec<Action>>>,
}

impl RecordingBackend {
    /// Takes the recorded calls, oldest first, leaving the record empty.
    pub fn take(&self) -> Vec<Action> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Action>> {
        // A panic while pushing cannot leave the Vec inconsistent.
        self.actions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, action: Action) -> Result<(), BackendError> {
        self.lock().push(action);
        Ok(())
    }
}

impl InputBackend for RecordingBackend {
    fn move_pointer(&mut self, x: i32, y: i32) -> Result<(), BackendError> {
        self.push(Action::Move(x, y))
    }
    fn button(&mut self, button: PointerButton, pressed: bool) -> Result<(), BackendError> {
        self.push(Action::Button(button, pressed))
    }
    fn scroll(&mut self, axis: ScrollAxis, notches: i32) -> Result<(), BackendError> {
        self.push(Action::Scroll(axis, notches))
    }
    fn key(&mut self, key: HostKey, pressed: bool) -> Result<(), BackendError> {
        self.push(Action::Key(key, pressed))
    }
    fn text(&mut self, text: &str) -> Result<(), BackendError> {
        self.push(Action::Text(text.to_owned()))
    }
}
