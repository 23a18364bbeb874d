//! A real X client that turns key events into characters: an xterm running
//! `cat` into a file, with the terminal in raw mode so that control
//! characters (Ctrl+C, Enter, Backspace) are written to the file as bytes
//! instead of being acted on.

#![allow(dead_code)] // each test binary uses a different part

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::xserver::{BoxError, Xvfb};

/// An xterm whose typed input ends up in a file; killed on drop.
pub struct Xterm {
    child: Child,
    dir: tempfile::TempDir,
    window: u32,
}

impl Xterm {
    /// Starts an xterm on `xvfb` and waits until `cat` is reading.
    pub fn start(xvfb: &Xvfb) -> Result<Self, BoxError> {
        let dir = tempfile::tempdir()?;
        let path = |name: &str| dir.path().join(name).display().to_string();
        // WINDOWID is set by xterm for its child: the window that takes keys.
        let script = format!(
            "stty raw -echo && echo $WINDOWID > {tmp} && mv {tmp} {ready} && exec cat > {out}",
            tmp = path("ready.tmp"),
            ready = path("ready"),
            out = path("out"),
        );
        let child = xvfb
            .command("xterm")
            // UTF-8 so that non-ASCII keysyms arrive as UTF-8 bytes.
            .args(["-u8", "-geometry", "80x24+0+0", "-e", "sh", "-c", &script])
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "C.UTF-8")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start xterm (is the xterm package installed?): {e}"))?;
        let mut xterm = Self {
            child,
            dir,
            window: 0,
        };
        let ready = xterm.dir.path().join("ready");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !ready.exists() {
            if Instant::now() > deadline {
                return Err("xterm did not start within 20 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        xterm.window = std::fs::read_to_string(&ready)?.trim().parse()?;
        Ok(xterm)
    }

    /// The window that receives the keyboard input.
    pub fn window(&self) -> u32 {
        self.window
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// What `cat` has written so far.
    pub fn typed(&self) -> Vec<u8> {
        std::fs::read(self.out()).unwrap_or_default()
    }

    /// Waits until what was typed is `expected` (or has grown past it), up to
    /// `timeout`, and returns what was typed.
    pub fn wait_for_typed(&self, expected: &[u8], timeout: Duration) -> Vec<u8> {
        let deadline = Instant::now() + timeout;
        loop {
            let typed = self.typed();
            if typed.len() >= expected.len() || Instant::now() > deadline {
                return typed;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Xterm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
