//! The session engines: everything between the network session and the
//! person's screen, with no UI code. The window and the headless modes both
//! drive them through a handle, take [`HostUpdate`]s / [`ViewerUpdate`]s,
//! and are told through a [`Notify`] callback when something is waiting.
//!
//! - [`HostEngine`]: capture → encode once → seal per viewer → send, with
//!   per-viewer keyframe requests, an acknowledgement window per viewer
//!   (a viewer that falls behind skips to the next keyframe instead of
//!   building up lag), a bit rate that follows the slowest link, and input
//!   from viewers through the permission gate to enigo.
//! - [`ViewerEngine`]: decodes on its own thread, keeps only the newest
//!   picture for the UI, acknowledges frames, asks for a keyframe when the
//!   decoder loses sync, and measures frames/s, bit rate and round trip.

mod capture_worker;
mod host;
mod injection;
mod keys;
mod meter;
mod stream;
mod viewer;

pub use host::{HostEngine, HostEngineConfig, HostUpdate};
pub use keys::prewarm_viewer_key;
pub use viewer::{
    RemoteFrame, VideoGap, ViewerEngine, ViewerEngineConfig, ViewerStats, ViewerUpdate,
};

use std::sync::Arc;

/// Called (from any thread) when an update or a frame is waiting; the
/// window passes `move || ctx.request_repaint()`.
pub type Notify = Arc<dyn Fn() + Send + Sync>;

/// How a viewer's link runs, for the status bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkKind {
    /// Through a relay.
    Relayed,
    /// Host and viewer talk directly.
    Direct,
    /// Host and viewer talk directly over QUIC, through a hole punched in
    /// the NATs between them.
    DirectQuic,
}

impl LinkKind {
    pub fn of(path: fernsicht_net::client::SessionPath) -> LinkKind {
        match path {
            fernsicht_net::client::SessionPath::Relayed => LinkKind::Relayed,
            fernsicht_net::client::SessionPath::Direct(_) => LinkKind::Direct,
            fernsicht_net::client::SessionPath::DirectQuic(_) => LinkKind::DirectQuic,
        }
    }
}

impl std::fmt::Display for LinkKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LinkKind::Relayed => "relayed",
            LinkKind::Direct => "direct",
            LinkKind::DirectQuic => "direct (QUIC)",
        })
    }
}

/// The net crate's permission as the input crate's gate understands it.
fn gate_permission(p: fernsicht_net::message::Permission) -> fernsicht_input::Permission {
    match p {
        fernsicht_net::message::Permission::ViewOnly => fernsicht_input::Permission::ViewOnly,
        fernsicht_net::message::Permission::Control => fernsicht_input::Permission::Control,
    }
}
