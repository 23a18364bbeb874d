//! The display layout of an X11 host, from RandR's monitor list.
//!
//! RandR monitors are what desktop environments call screens: each has a name
//! (`DP-1`, or one a user set with `xrandr --setmonitor`) and a rectangle in
//! the root window, which is the coordinate space XTEST moves the pointer in.

use x11rb::connection::Connection;
use x11rb::protocol::randr::ConnectionExt as _;
use x11rb::protocol::xproto::ConnectionExt as _;

use crate::event::DisplayId;
use crate::layout::{DisplayArea, DisplayLayout};

/// The name of the single display of an X server without RandR monitors.
pub const WHOLE_SCREEN: &str = "screen";

/// The X server could not be asked for its monitors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum X11LayoutError {
    /// No connection to the X server.
    #[error("cannot connect to X display {display:?}: {source}")]
    Connect {
        /// The display name asked for (`None`: `$DISPLAY`).
        display: Option<String>,
        /// Why.
        #[source]
        source: x11rb::errors::ConnectError,
    },
    /// The X server did not answer a request.
    #[error("X server request failed: {0}")]
    Request(#[from] x11rb::errors::ReplyError),
    /// The connection broke.
    #[error("X connection failed: {0}")]
    Connection(#[from] x11rb::errors::ConnectionError),
}

/// The monitors of the X server `display` (`None`: `$DISPLAY`).
///
/// A server without RandR monitors (or without RandR) counts as one display
/// named [`WHOLE_SCREEN`] covering the root window.
pub fn x11_display_layout(display: Option<&str>) -> Result<DisplayLayout, X11LayoutError> {
    let (conn, screen_num) = x11rb::connect(display).map_err(|source| X11LayoutError::Connect {
        display: display.map(str::to_owned),
        source,
    })?;
    let screen = &conn.setup().roots[screen_num];
    let whole = DisplayArea {
        id: DisplayId::new(WHOLE_SCREEN),
        x: 0,
        y: 0,
        width: u32::from(screen.width_in_pixels),
        height: u32::from(screen.height_in_pixels),
    };
    let monitors = match conn.randr_get_monitors(screen.root, true)?.reply() {
        Ok(reply) => reply.monitors,
        // No RandR 1.5 on this server: one screen it is.
        Err(_) => return Ok(DisplayLayout::new([whole])),
    };
    if monitors.is_empty() {
        return Ok(DisplayLayout::new([whole]));
    }
    let mut areas = Vec::with_capacity(monitors.len());
    for monitor in monitors {
        let name = conn.get_atom_name(monitor.name)?.reply()?.name;
        areas.push(DisplayArea {
            id: DisplayId::new(String::from_utf8_lossy(&name)),
            x: i32::from(monitor.x),
            y: i32::from(monitor.y),
            width: u32::from(monitor.width),
            height: u32::from(monitor.height),
        });
    }
    Ok(DisplayLayout::new(areas))
}
