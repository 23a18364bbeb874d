//! Screen capture from an X11 display through scrap's XShm capturer.
//!
//! scrap does the fast part (one shared-memory `GetImage` per frame, with
//! the next request already in flight) but says nothing when things go
//! wrong: it enumerates monitors through a freed reply, ignores request
//! errors, and keeps returning the old buffer when the screen changes size
//! or the server dies. So this module enumerates monitors itself over a
//! second, pure-Rust X connection ([`x11rb`]), builds scrap's `Display`
//! from that, checks the server's pixel format before trusting scrap's
//! "4 bytes a pixel" assumption, and watches RandR and root-window events on
//! that second connection so a resolution change or a vanished display
//! becomes a typed [`CaptureError`] instead of a stale picture.

use std::ffi::CString;
use std::rc::Rc;

use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::Event;
use x11rb::protocol::randr::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, ChangeWindowAttributesAux, ConnectionExt as _, EventMask};
use x11rb::rust_connection::RustConnection;

/// Why capturing failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// No X server answered at that display name.
    #[error("cannot connect to X display {display}: {reason}")]
    Connect {
        /// The display name tried (`$DISPLAY` when none was given).
        display: String,
        /// What the connection attempt said.
        reason: String,
    },
    /// The requested display index does not exist.
    #[error("display {index} does not exist ({count} displays found)")]
    NoSuchDisplay {
        /// Index asked for.
        index: usize,
        /// How many there are.
        count: usize,
    },
    /// The screen stores pixels in a way this capturer does not convert.
    #[error(
        "unsupported pixel format: depth {depth}, {bits_per_pixel} bits per pixel, {byte_order}"
    )]
    UnsupportedPixelFormat {
        /// Root depth.
        depth: u8,
        /// Bits per pixel in images of that depth.
        bits_per_pixel: u8,
        /// Image byte order and channel masks, as text.
        byte_order: String,
    },
    /// The captured display changed size. The capturer has already
    /// re-opened itself at the new size: the next [`Capturer::capture`]
    /// returns frames of `now`, and an encoder must start a new stream.
    #[error("display resolution changed from {before:?} to {now:?}")]
    ResolutionChanged {
        /// Size before, (width, height).
        before: (u16, u16),
        /// Size now.
        now: (u16, u16),
    },
    /// The X server went away or the monitor was removed.
    #[error("the display went away: {0}")]
    DisplayGone(String),
    /// Setting up shared memory for the capture failed.
    #[error("cannot set up the capture: {0}")]
    Setup(#[source] std::io::Error),
}

/// One monitor of an X screen, as RandR describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayInfo {
    /// Position in [`list_displays`]'s answer; pass it to [`Capturer::open`].
    pub index: usize,
    /// RandR's monitor name (e.g. `"screen"`, `"DP-1"`).
    pub name: String,
    /// Left edge on the X screen.
    pub x: i16,
    /// Top edge on the X screen.
    pub y: i16,
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// Whether RandR marks it primary.
    pub primary: bool,
}

/// How a captured pixel is laid out in memory (4 bytes, the fourth unused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// Blue, green, red, unused: 24-bit TrueColor on a little-endian server.
    Bgrx,
    /// Red, green, blue, unused.
    Rgbx,
}

/// A borrowed captured frame. `data` holds `height` rows of `stride` bytes.
#[derive(Debug, Clone, Copy)]
pub struct CapturedFrame<'a> {
    /// Pixel rows, `stride` bytes apart.
    pub data: &'a [u8],
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// Bytes from one row to the next (at least `width * 4`).
    pub stride: usize,
    /// Channel order.
    pub format: PixelFormat,
}

/// The watcher connection: enumeration, format and change events.
struct Watcher {
    conn: RustConnection,
    root: xproto::Window,
    format: PixelFormat,
    stride_for: fn(u16) -> usize,
}

fn display_label(display: Option<&str>) -> String {
    display
        .map(str::to_owned)
        .or_else(|| std::env::var("DISPLAY").ok())
        .unwrap_or_else(|| "(unset)".to_owned())
}

impl Watcher {
    fn connect(display: Option<&str>) -> Result<Self, CaptureError> {
        let (conn, screen_num) =
            RustConnection::connect(display).map_err(|e| CaptureError::Connect {
                display: display_label(display),
                reason: e.to_string(),
            })?;
        let setup = conn.setup();
        let screen = &setup.roots[screen_num];
        let root = screen.root;
        let depth = screen.root_depth;
        let bits_per_pixel = setup
            .pixmap_formats
            .iter()
            .find(|f| f.depth == depth)
            .map_or(0, |f| f.bits_per_pixel);
        let visual = screen
            .allowed_depths
            .iter()
            .flat_map(|d| d.visuals.iter())
            .find(|v| v.visual_id == screen.root_visual);
        let masks = visual.map(|v| (v.red_mask, v.green_mask, v.blue_mask));
        let lsb = setup.image_byte_order == xproto::ImageOrder::LSB_FIRST;
        // scrap sizes its buffer as width * height * 4, so only 32-bit
        // pixels with 8-bit channels can be read correctly.
        let format = match (depth, bits_per_pixel, masks, lsb) {
            (24 | 32, 32, Some((0xff_0000, 0xff00, 0xff)), true) => PixelFormat::Bgrx,
            (24 | 32, 32, Some((0xff, 0xff00, 0xff_0000)), true) => PixelFormat::Rgbx,
            (24 | 32, 32, Some((0xff, 0xff00, 0xff_0000)), false) => PixelFormat::Bgrx,
            (24 | 32, 32, Some((0xff_0000, 0xff00, 0xff)), false) => PixelFormat::Rgbx,
            _ => {
                return Err(CaptureError::UnsupportedPixelFormat {
                    depth,
                    bits_per_pixel,
                    byte_order: format!(
                        "{} first, masks {masks:x?}",
                        if lsb { "LSB" } else { "MSB" }
                    ),
                });
            }
        };
        // With 32 bits a pixel the 32-bit scanline pad never adds bytes.
        fn stride(width: u16) -> usize {
            usize::from(width) * 4
        }
        Ok(Self {
            conn,
            root,
            format,
            stride_for: stride,
        })
    }

    fn gone(e: impl std::fmt::Display) -> CaptureError {
        CaptureError::DisplayGone(e.to_string())
    }

    /// Monitors of the screen; the whole screen when RandR lists none.
    fn monitors(&self) -> Result<Vec<DisplayInfo>, CaptureError> {
        let has_randr = self
            .conn
            .extension_information(randr::X11_EXTENSION_NAME)
            .map_err(Self::gone)?
            .is_some();
        let mut out = Vec::new();
        if has_randr {
            let reply = self
                .conn
                .randr_get_monitors(self.root, true)
                .map_err(Self::gone)?
                .reply()
                .map_err(Self::gone)?;
            for (index, m) in reply.monitors.iter().enumerate() {
                let name = self
                    .conn
                    .get_atom_name(m.name)
                    .map_err(Self::gone)?
                    .reply()
                    .map(|r| String::from_utf8_lossy(&r.name).into_owned())
                    .unwrap_or_default();
                out.push(DisplayInfo {
                    index,
                    name,
                    x: m.x,
                    y: m.y,
                    width: m.width,
                    height: m.height,
                    primary: m.primary,
                });
            }
        }
        if out.is_empty() {
            let geometry = self
                .conn
                .get_geometry(self.root)
                .map_err(Self::gone)?
                .reply()
                .map_err(Self::gone)?;
            out.push(DisplayInfo {
                index: 0,
                name: "screen".to_owned(),
                x: 0,
                y: 0,
                width: geometry.width,
                height: geometry.height,
                primary: true,
            });
        }
        Ok(out)
    }

    /// Asks the server to tell us about size and monitor changes.
    fn subscribe(&self) -> Result<(), CaptureError> {
        self.conn
            .change_window_attributes(
                self.root,
                &ChangeWindowAttributesAux::new().event_mask(EventMask::STRUCTURE_NOTIFY),
            )
            .map_err(Self::gone)?;
        if self
            .conn
            .extension_information(randr::X11_EXTENSION_NAME)
            .map_err(Self::gone)?
            .is_some()
        {
            self.conn
                .randr_select_input(
                    self.root,
                    randr::NotifyMask::SCREEN_CHANGE
                        | randr::NotifyMask::CRTC_CHANGE
                        | randr::NotifyMask::OUTPUT_CHANGE,
                )
                .map_err(Self::gone)?;
        }
        self.conn.flush().map_err(Self::gone)?;
        Ok(())
    }

    /// Whether any geometry-related event arrived since the last call.
    /// A broken connection means the server is gone.
    fn geometry_events(&self) -> Result<bool, CaptureError> {
        let mut changed = false;
        while let Some(event) = self.conn.poll_for_event().map_err(Self::gone)? {
            changed |= matches!(
                event,
                Event::ConfigureNotify(_)
                    | Event::RandrScreenChangeNotify(_)
                    | Event::RandrNotify(_)
            );
        }
        Ok(changed)
    }
}

/// Lists the monitors of X display `display` (`None`: `$DISPLAY`).
pub fn list_displays(display: Option<&str>) -> Result<Vec<DisplayInfo>, CaptureError> {
    Watcher::connect(display)?.monitors()
}

/// Captures one monitor of an X display.
///
/// Not `Send`: scrap's connection is single-threaded, so open the capturer
/// on the thread that captures.
pub struct Capturer {
    display_name: Option<String>,
    watcher: Watcher,
    info: DisplayInfo,
    inner: scrap::x11::Capturer,
    recheck_pending: bool,
}

impl std::fmt::Debug for Capturer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capturer")
            .field("display", &self.display_name)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

fn open_scrap(
    display: Option<&str>,
    root: u32,
    info: &DisplayInfo,
) -> Result<scrap::x11::Capturer, CaptureError> {
    let name = display
        .map(CString::new)
        .transpose()
        .map_err(|_| CaptureError::Connect {
            display: display_label(display),
            reason: "display name contains a NUL byte".to_owned(),
        })?;
    let server =
        scrap::x11::Server::connect(name.as_ref().map_or(std::ptr::null(), |n| n.as_ptr()))
            .map_err(|e| CaptureError::Connect {
                display: display_label(display),
                reason: format!("{e:?}"),
            })?;
    let rect = scrap::x11::Rect {
        x: info.x,
        y: info.y,
        w: info.width,
        h: info.height,
    };
    // SAFETY: `root` is the root window of the same screen on the same
    // server (both connections use the display name's default screen), so
    // scrap's capture requests name a window that exists there.
    let display = unsafe { scrap::x11::Display::new(Rc::new(server), info.primary, rect, root) };
    scrap::x11::Capturer::new(display).map_err(CaptureError::Setup)
}

impl Capturer {
    /// Opens monitor `index` of X display `display` (`None`: `$DISPLAY`).
    pub fn open(display: Option<&str>, index: usize) -> Result<Self, CaptureError> {
        let watcher = Watcher::connect(display)?;
        watcher.subscribe()?;
        let monitors = watcher.monitors()?;
        let count = monitors.len();
        let info = monitors
            .into_iter()
            .nth(index)
            .ok_or(CaptureError::NoSuchDisplay { index, count })?;
        let inner = open_scrap(display, watcher.root, &info)?;
        Ok(Self {
            display_name: display.map(str::to_owned),
            watcher,
            info,
            inner,
            recheck_pending: false,
        })
    }

    /// The monitor being captured (its size is the frames' size).
    pub fn info(&self) -> &DisplayInfo {
        &self.info
    }

    /// Channel order of captured frames.
    pub fn pixel_format(&self) -> PixelFormat {
        self.watcher.format
    }

    /// Captures the next frame.
    ///
    /// scrap keeps one request in flight, so the picture returned was
    /// requested at the previous call: call at a steady rate (the pipeline
    /// polls at its frame rate) and the lag is one poll interval.
    pub fn capture(&mut self) -> Result<CapturedFrame<'_>, CaptureError> {
        if std::mem::take(&mut self.recheck_pending) | self.watcher.geometry_events()? {
            self.recheck()?;
        }
        let data = self.inner.frame();
        // A dead server leaves scrap returning its old buffer; the watcher
        // notices the closed socket. A size change seen here is handled
        // before the next frame (this one was requested at the old size).
        if self.watcher.geometry_events()? {
            self.recheck_pending = true;
        }
        Ok(CapturedFrame {
            data,
            width: self.info.width,
            height: self.info.height,
            stride: (self.watcher.stride_for)(self.info.width),
            format: self.watcher.format,
        })
    }

    /// Re-reads the monitor layout after a change event; re-opens at a new
    /// size and reports it.
    fn recheck(&mut self) -> Result<(), CaptureError> {
        let monitors = self.watcher.monitors()?;
        let Some(now) = monitors
            .iter()
            .find(|m| m.name == self.info.name)
            .or_else(|| monitors.get(self.info.index))
            .cloned()
        else {
            return Err(CaptureError::DisplayGone(format!(
                "monitor {} was removed",
                self.info.name
            )));
        };
        if (now.x, now.y, now.width, now.height)
            == (self.info.x, self.info.y, self.info.width, self.info.height)
        {
            return Ok(());
        }
        let before = (self.info.width, self.info.height);
        self.inner = open_scrap(self.display_name.as_deref(), self.watcher.root, &now)?;
        self.info = now;
        Err(CaptureError::ResolutionChanged {
            before,
            now: (self.info.width, self.info.height),
        })
    }
}
