//! Private X servers and known pictures for tests and benchmarks.
//!
//! Every test that needs a screen starts its own [`Xvfb`] so tests run in
//! parallel under plain `cargo test` without sharing `DISPLAY`: the server
//! picks a free display number itself (`-displayfd`) and is killed when the
//! handle drops. [`Xephyr`] nests a resizable server inside one, because
//! Xvfb's RandR cannot change its size and a real resolution change needs a
//! server that can. [`Painter`] is a tiny X11 client that draws exact pixels
//! on a root window, so a test knows what the screen shows.
//!
//! Other crates (the app, input) enable the `test-support` feature to use it.

use std::io::{self, BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::xproto::{ConnectionExt, CreateGCAux, ImageFormat, Rectangle};
use x11rb::rust_connection::RustConnection;

/// Reads the display number an X server writes to `-displayfd 1` (its
/// standard output) once it accepts connections.
fn start_server(mut command: Command, what: &str) -> io::Result<(Child, String)> {
    command
        .args(["-displayfd", "1", "-nolisten", "tcp"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = command
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot start {what}: {e}")))?;
    let Some(stdout) = child.stdout.take() else {
        let _ = child.kill();
        return Err(io::Error::other(format!("{what}: no stdout")));
    };
    let mut line = String::new();
    let read = BufReader::new(stdout).read_line(&mut line);
    let number = line.trim();
    if read.is_err() || number.is_empty() || number.parse::<u32>().is_err() {
        let _ = child.kill();
        let _ = child.wait();
        return Err(io::Error::other(format!(
            "{what} did not report a display number (got {line:?})"
        )));
    }
    Ok((child, format!(":{number}")))
}

/// A private Xvfb server, killed on drop.
#[derive(Debug)]
pub struct Xvfb {
    child: Option<Child>,
    display: String,
}

impl Xvfb {
    /// Starts `Xvfb` with one 24-bit screen of `width`×`height` on a free
    /// display number and waits until it accepts connections.
    pub fn start(width: u32, height: u32) -> io::Result<Self> {
        let mut command = Command::new("Xvfb");
        // -noreset: without it the server resets when its last client
        // disconnects, and a test's next connection races the reset.
        command.args(["-screen", "0", &format!("{width}x{height}x24"), "-noreset"]);
        let (child, display) = start_server(command, "Xvfb")?;
        Ok(Self {
            child: Some(child),
            display,
        })
    }

    /// The display name, e.g. `":7"`, to pass to the capturer or as `DISPLAY`.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Kills the server now, as when a session's display goes away.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A resizable `Xephyr` server nested in a host server, killed on drop.
#[derive(Debug)]
pub struct Xephyr {
    child: Option<Child>,
    display: String,
}

impl Xephyr {
    /// Starts Xephyr at `width`×`height` inside the server `host`.
    pub fn start(host: &str, width: u32, height: u32) -> io::Result<Self> {
        let mut command = Command::new("Xephyr");
        command.env("DISPLAY", host).args([
            "-screen",
            &format!("{width}x{height}"),
            "-resizeable",
            "-noreset",
        ]);
        let (child, display) = start_server(command, "Xephyr")?;
        Ok(Self {
            child: Some(child),
            display,
        })
    }

    /// The nested display's name.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Changes the screen size through RandR (`xrandr -s`), as a user
    /// changing the resolution would.
    pub fn set_size(&self, width: u32, height: u32) -> io::Result<()> {
        let status = Command::new("xrandr")
            .env("DISPLAY", &self.display)
            .args(["-s", &format!("{width}x{height}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "xrandr -s {width}x{height} failed: {status}"
            )))
        }
    }
}

impl Drop for Xephyr {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Errors of the [`Painter`].
#[derive(Debug, thiserror::Error)]
pub enum PaintError {
    /// The X server could not be reached.
    #[error("cannot connect to X display {display}: {source}")]
    Connect {
        /// Display name.
        display: String,
        /// Cause.
        source: x11rb::errors::ConnectError,
    },
    /// A request failed.
    #[error("X request failed: {0}")]
    Request(#[from] x11rb::errors::ReplyOrIdError),
    /// The image does not match the rectangle.
    #[error("image of {len} bytes does not fill {width}x{height} BGRX pixels")]
    BadImage {
        /// Bytes given.
        len: usize,
        /// Width asked.
        width: u16,
        /// Height asked.
        height: u16,
    },
}

impl From<x11rb::errors::ConnectionError> for PaintError {
    fn from(e: x11rb::errors::ConnectionError) -> Self {
        Self::Request(e.into())
    }
}

impl From<x11rb::errors::ReplyError> for PaintError {
    fn from(e: x11rb::errors::ReplyError) -> Self {
        Self::Request(e.into())
    }
}

/// Draws exact pixels on the root window of a display.
pub struct Painter {
    conn: RustConnection,
    root: u32,
    depth: u8,
    gc: u32,
}

impl Painter {
    /// Connects to `display` (e.g. `":7"`).
    pub fn connect(display: &str) -> Result<Self, PaintError> {
        let (conn, screen_num) =
            RustConnection::connect(Some(display)).map_err(|source| PaintError::Connect {
                display: display.to_owned(),
                source,
            })?;
        let screen = &conn.setup().roots[screen_num];
        let (root, depth) = (screen.root, screen.root_depth);
        let gc = conn.generate_id()?;
        conn.create_gc(gc, root, &CreateGCAux::new())?;
        Ok(Self {
            conn,
            root,
            depth,
            gc,
        })
    }

    /// Fills a rectangle with one colour given as `0xRRGGBB`.
    pub fn fill(
        &self,
        x: i16,
        y: i16,
        width: u16,
        height: u16,
        rgb: u32,
    ) -> Result<(), PaintError> {
        self.conn.change_gc(
            self.gc,
            &x11rb::protocol::xproto::ChangeGCAux::new().foreground(rgb),
        )?;
        self.conn.poly_fill_rectangle(
            self.root,
            self.gc,
            &[Rectangle {
                x,
                y,
                width,
                height,
            }],
        )?;
        Ok(())
    }

    /// Puts a tightly packed BGRX image (4 bytes a pixel, as X stores a
    /// 24-bit little-endian screen) at (`x`, `y`), split into requests
    /// that fit the server's request size.
    pub fn put_bgrx(
        &self,
        x: i16,
        y: i16,
        width: u16,
        height: u16,
        bgrx: &[u8],
    ) -> Result<(), PaintError> {
        let row = usize::from(width) * 4;
        if bgrx.len() != row * usize::from(height) {
            return Err(PaintError::BadImage {
                len: bgrx.len(),
                width,
                height,
            });
        }
        let max = self.conn.maximum_request_bytes().saturating_sub(64);
        let rows_per_request = (max / row.max(1)).clamp(1, usize::from(height.max(1)));
        for (i, chunk) in bgrx.chunks(rows_per_request * row).enumerate() {
            let top = y + (i * rows_per_request) as i16;
            let rows = (chunk.len() / row) as u16;
            self.conn.put_image(
                ImageFormat::Z_PIXMAP,
                self.root,
                self.gc,
                width,
                rows,
                x,
                top,
                0,
                self.depth,
                chunk,
            )?;
        }
        Ok(())
    }

    /// Waits until the server has executed everything sent so far, so a
    /// capture that follows sees it.
    pub fn sync(&self) -> Result<(), PaintError> {
        self.conn.get_input_focus()?.reply()?;
        Ok(())
    }
}

/// A deterministic test picture in BGRX: colour bars over a diagonal
/// gradient with a few sharp-edged blocks, so both flat areas and edges
/// count in a PSNR.
pub fn test_pattern(width: u16, height: u16, seed: u8) -> Vec<u8> {
    let (w, h) = (usize::from(width), usize::from(height));
    let mut out = vec![0u8; w * h * 4];
    const BARS: [[u8; 3]; 8] = [
        [255, 255, 255],
        [0, 255, 255],
        [255, 255, 0],
        [0, 255, 0],
        [255, 0, 255],
        [0, 0, 255],
        [255, 0, 0],
        [30, 30, 30],
    ];
    for y in 0..h {
        for x in 0..w {
            let p = &mut out[(y * w + x) * 4..][..4];
            let (b, g, r) = if y < h / 3 {
                let bar = BARS[(x * 8 / w.max(1) + usize::from(seed)) % 8];
                (bar[0], bar[1], bar[2])
            } else {
                let t = ((x + y) * 255 / (w + h).max(1)) as u8;
                (t, t.wrapping_add(seed), 255 - t)
            };
            let block = (x / 48 + y / 48 + usize::from(seed)) % 5 == 0 && y >= h / 3;
            let (b, g, r) = if block { (20, 40, 200) } else { (b, g, r) };
            p.copy_from_slice(&[b, g, r, 0]);
        }
    }
    out
}
