//! Remote keyboard and mouse for Fernsicht.
//!
//! A helper's input travels from the viewer window to the host's operating
//! system in four steps, each a module here:
//!
//! 1. **Model** ([`InputEvent`]): pointer moves relative to a named host
//!    display, button and key presses and releases, wheel turns on both
//!    axes, typed text, and modifier state. Serialisable with serde;
//!    [`InputEvent::to_bytes`] / [`InputEvent::from_bytes`] are the wire
//!    form (postcard) inside the encrypted session.
//! 2. **Viewer** ([`EguiMapper`], [`PictureGeometry`]): maps the egui events
//!    of the viewer window to the model, through the rectangle (and scale)
//!    the host's picture is drawn at, so a click lands on the host pixel under
//!    the cursor. Characters travel as text, so the helper's keyboard layout
//!    decides what is typed; shortcuts travel as keys carrying the character
//!    they mean, so Ctrl+Z stays undo on a host with another layout.
//! 3. **Gate** ([`Gate`], one per viewer): drops every event of a view-only
//!    viewer before it gets anywhere near the operating system, drops
//!    malformed events, rate-limits floods (with the time passed in, never
//!    read from a clock), and counts every drop ([`GateStats`]).
//! 4. **Injector** ([`Injector`], one per host): turns admitted events into
//!    calls on an [`InputBackend`] — [`EnigoBackend`] for real, or
//!    [`RecordingBackend`] in tests — mapping display-relative positions onto
//!    the host's monitors ([`DisplayLayout`]), and tracking what each viewer
//!    holds, so [`Injector::release_all`] lets go of exactly that viewer's
//!    keys and buttons while another viewer's Shift stays held.
//!
//! [`HostInput`] puts gates and injector together the way the host's session
//! engine needs them:
//!
//! ```
//! use std::time::Instant;
//! use fernsicht_input::*;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Host: one injector for every viewer (EnigoBackend::new(&EnigoConfig::default())
//! // on a real desktop).
//! let layout = DisplayLayout::new([DisplayArea {
//!     id: DisplayId::new("DP-1"), x: 0, y: 0, width: 1920, height: 1080,
//! }]);
//! let record = RecordingBackend::default();
//! let mut host = HostInput::new(Injector::new(record.clone(), layout), RateLimit::default());
//! let helper = ViewerId(7);
//! host.add_viewer(helper, Permission::Control)?;
//!
//! // Viewer: the host's picture is drawn at half size at (10, 40).
//! let picture = PictureGeometry::scaled(
//!     DisplayId::new("DP-1"), egui::pos2(10.0, 40.0), egui::vec2(1920.0, 1080.0), 0.5,
//! );
//! let mut mapper = EguiMapper::new();
//! let egui_events = [egui::Event::PointerButton {
//!     pos: egui::pos2(10.0 + 100.25, 40.0 + 50.25),
//!     button: egui::PointerButton::Primary,
//!     pressed: true,
//!     modifiers: egui::Modifiers::NONE,
//! }];
//! for event in mapper.map_events(&egui_events, &picture) {
//!     let bytes = event.to_bytes()?; // … through the encrypted session …
//!     let event = InputEvent::from_bytes(&bytes)?;
//!     host.handle(helper, event, Instant::now())?;
//! }
//! assert_eq!(record.take(), [Action::Move(200, 100), Action::Button(PointerButton::Left, true)]);
//!
//! // The helper leaves: the button it held is released.
//! host.remove_viewer(helper)?;
//! assert_eq!(record.take(), [Action::Button(PointerButton::Left, false)]);
//! # Ok(())
//! # }
//! ```
//!
//! On X11, [`x11_display_layout`] reads the host's monitors from RandR, and
//! [`EnigoConfig::x11_display`] names the X server to inject into.
//!
//! # Known limits
//! - enigo reads the host's keymap when it connects. If the host's user
//!   switches keyboard layout during a session, make a new [`EnigoBackend`]
//!   (and [`Injector`]) or characters may come out in the old layout.
//! - Text is typed through the host's keymap where the character is on it,
//!   so Caps Lock on the host capitalises typed letters.
//! - On Windows viewers winit reports AltGr as Ctrl+Alt and egui then sends
//!   no text: AltGr characters arrive as a Ctrl+Alt shortcut instead.
//! - A character that is not on the host's keymap (é on a US layout) is typed
//!   through a spare keycode enigo binds to it. When one such keycode is used
//!   again within 12 ms (a burst of the same accented character in one text
//!   event), enigo 0.6 asks the X server to wait 12 ms before the press and
//!   the release, and keeps that wait for later keys until the next such
//!   character; `input-bench` shows both cases.
//! - All viewers in control share the host's one pointer and keyboard.
//! - On Linux the enigo backend needs an X server (Xorg or XWayland for X
//!   clients); Wayland-native injection is not wired up.

mod backend;
mod egui_map;
mod enigo_backend;
mod event;
mod gate;
mod host;
mod injector;
mod layout;
mod record;
mod wire;
#[cfg(all(unix, not(target_os = "macos")))]
mod x11_layout;

pub use backend::{BackendError, HostKey, InputBackend, ScrollAxis};
pub use egui_map::{EguiMapper, PictureGeometry};
pub use enigo_backend::{EnigoBackend, EnigoConfig};
pub use event::{
    Code, DisplayId, InputEvent, KeyPress, Modifiers, PointerButton, PointerPosition, WheelDelta,
};
pub use gate::{
    Admitted, Dropped, Gate, GateStats, MAX_TEXT_CHARS, Permission, RateLimit, ViewerId,
};
pub use host::{HostError, HostInput, Outcome};
pub use injector::{HeldInput, InjectError, Injector, MAX_NOTCHES_PER_EVENT, host_key};
pub use layout::{DisplayArea, DisplayLayout, LayoutError};
pub use record::{Action, RecordingBackend};
pub use wire::WireError;
#[cfg(all(unix, not(target_os = "macos")))]
pub use x11_layout::{WHOLE_SCREEN, X11LayoutError, x11_display_layout};

/// egui, as this crate uses it, for building [`PictureGeometry`] and events.
pub use egui;
