//! A private X server per test, and a small X client that reads back what
//! arrived there. Shared by the integration tests and the `input-bench`
//! binary (which includes this file by path), so it returns errors instead of
//! panicking.

#![allow(dead_code)] // each test binary uses a different part

use std::error::Error;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::protocol::Event;
use x11rb::protocol::xproto::{
    ConnectionExt as _, CreateWindowAux, EventMask, InputFocus, WindowClass,
};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

pub type BoxError = Box<dyn Error + Send + Sync>;

/// An Xvfb on a display number it picked itself; killed on drop.
pub struct Xvfb {
    child: Child,
    display: String,
}

impl Xvfb {
    /// Starts `Xvfb` with one `width`×`height` screen.
    ///
    /// `-displayfd 1` makes Xvfb choose a free display number and write it to
    /// its stdout once it accepts connections, so parallel tests never race
    /// for a number and never connect too early.
    pub fn start(width: u32, height: u32) -> Result<Self, BoxError> {
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0"])
            .arg(format!("{width}x{height}x24"))
            .args(["-nolisten", "tcp", "-noreset"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start Xvfb (is the xvfb package installed?): {e}"))?;
        let stdout = child.stdout.take().ok_or("Xvfb has no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let number: u32 = match line.trim().parse() {
            Ok(n) => n,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("Xvfb did not report a display: {line:?}").into());
            }
        };
        Ok(Self {
            child,
            display: format!(":{number}"),
        })
    }

    /// The display name, e.g. `":3"`.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// A command that runs as a client of this server only: `DISPLAY` is set
    /// on the child, never on the test process.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command.env("DISPLAY", &self.display);
        command
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A full-screen window on its own connection that receives the pointer and
/// keyboard events the server delivers, plus queries of server state.
pub struct Probe {
    conn: RustConnection,
    root: u32,
    window: u32,
}

impl Probe {
    /// A connection for queries only, with no window of its own (for tests
    /// where another client, such as an xterm, receives the input).
    pub fn queries_only(display: &str) -> Result<Self, BoxError> {
        let (conn, screen_num) = x11rb::connect(Some(display))?;
        let root = conn.setup().roots[screen_num].root;
        Ok(Self {
            conn,
            root,
            window: x11rb::NONE,
        })
    }

    /// Maps a window over the whole screen and gives it the keyboard focus.
    pub fn start(display: &str) -> Result<Self, BoxError> {
        let (conn, screen_num) = x11rb::connect(Some(display))?;
        let screen = conn.setup().roots[screen_num].clone();
        let window = conn.generate_id()?;
        conn.create_window(
            screen.root_depth,
            window,
            screen.root,
            0,
            0,
            screen.width_in_pixels,
            screen.height_in_pixels,
            0,
            WindowClass::INPUT_OUTPUT,
            screen.root_visual,
            &CreateWindowAux::new()
                .override_redirect(1)
                .background_pixel(screen.black_pixel)
                .event_mask(
                    EventMask::BUTTON_PRESS
                        | EventMask::BUTTON_RELEASE
                        | EventMask::POINTER_MOTION
                        | EventMask::KEY_PRESS
                        | EventMask::KEY_RELEASE
                        | EventMask::EXPOSURE,
                ),
        )?;
        conn.map_window(window)?;
        conn.sync()?;
        let probe = Self {
            conn,
            root: screen.root,
            window,
        };
        // Exposure means the window is on screen and will get events.
        probe
            .wait_for(Duration::from_secs(5), |e| matches!(e, Event::Expose(_)))
            .ok_or("probe window was never exposed")?;
        probe.focus(window)?;
        Ok(probe)
    }

    /// Gives the keyboard focus to `window` (this probe's, or another client's).
    pub fn focus(&self, window: u32) -> Result<(), BoxError> {
        self.conn
            .set_input_focus(InputFocus::PARENT, window, x11rb::CURRENT_TIME)?;
        self.conn.sync()?;
        Ok(())
    }

    /// The probe's window.
    pub fn window(&self) -> u32 {
        self.window
    }

    /// The connection, for requests the probe does not wrap.
    pub fn conn(&self) -> &RustConnection {
        &self.conn
    }

    /// The pointer position in root coordinates (XQueryPointer).
    pub fn pointer(&self) -> Result<(i16, i16), BoxError> {
        let reply = self.conn.query_pointer(self.root)?.reply()?;
        Ok((reply.root_x, reply.root_y))
    }

    /// The state mask of the pointer (which buttons and modifiers are down).
    pub fn pointer_mask(&self) -> Result<u16, BoxError> {
        Ok(self.conn.query_pointer(self.root)?.reply()?.mask.into())
    }

    /// The keycodes the server considers down (XQueryKeymap).
    pub fn keys_down(&self) -> Result<Vec<u8>, BoxError> {
        let keys = self.conn.query_keymap()?.reply()?.keys;
        let mut down = Vec::new();
        for (byte_index, byte) in keys.iter().enumerate() {
            for bit in 0..8 {
                if byte & (1 << bit) != 0 {
                    down.push(u8::try_from(byte_index * 8 + bit)?);
                }
            }
        }
        Ok(down)
    }

    /// The keycodes that carry `keysym` in the server's current keymap.
    pub fn keycodes_of(&self, keysym: u32) -> Result<Vec<u8>, BoxError> {
        let setup = self.conn.setup();
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let map = self
            .conn
            .get_keyboard_mapping(min, max - min + 1)?
            .reply()?;
        let per = usize::from(map.keysyms_per_keycode);
        let mut codes = Vec::new();
        for (i, syms) in map.keysyms.chunks(per.max(1)).enumerate() {
            if syms.contains(&keysym) {
                codes.push(min + u8::try_from(i)?);
            }
        }
        Ok(codes)
    }

    /// The next event within `timeout`, if any.
    pub fn next_event(&self, timeout: Duration) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.conn.poll_for_event() {
                Ok(Some(event)) => return Some(event),
                Ok(None) => {}
                Err(_) => return None,
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The first event within `timeout` that matches `pred`; others are
    /// skipped.
    pub fn wait_for(&self, timeout: Duration, pred: impl Fn(&Event) -> bool) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        while let Some(event) = self.next_event(deadline.saturating_duration_since(Instant::now()))
        {
            if pred(&event) {
                return Some(event);
            }
        }
        None
    }

    /// Every event that arrives within `quiet` of the previous one.
    pub fn drain(&self, quiet: Duration) -> Vec<Event> {
        let mut events = Vec::new();
        while let Some(event) = self.next_event(quiet) {
            events.push(event);
        }
        events
    }
}
