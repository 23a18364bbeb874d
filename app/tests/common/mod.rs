//! Helpers for the app's end-to-end tests: the `fernsicht` binary as a
//! child process with its output as lines, and a relay on loopback.
#![allow(dead_code, clippy::unwrap_used)] // test support: a failed set-up is a failed test

use fernsicht_net::relay::{Relay, RelayConfig, RelayHandle};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const WAIT: Duration = Duration::from_secs(30);

/// A running `fernsicht` process with its output as a stream of lines.
pub struct App {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl App {
    pub fn start(args: &[&str]) -> App {
        Self::start_with_env(args, &[])
    }

    /// Starts with extra environment variables (e.g. the X display to share).
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> App {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fernsicht"))
            .args(args)
            // Only the X display a test names: never the developer's.
            .env_remove("DISPLAY")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        App {
            stdin: child.stdin.take().unwrap(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line starting with `prefix` and returns it.
    pub fn expect(&mut self, prefix: &str) -> String {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(_) => panic!("no line starting with {prefix:?}; saw {:?}", self.seen),
            }
        }
    }

    pub fn type_line(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    /// Waits for the process to exit on its own.
    pub fn exit_code(&mut self) -> i32 {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(std::time::Instant::now() < deadline, "process did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn relay() -> (RelayHandle, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = RelayConfig::new("127.0.0.1:0".parse().unwrap(), dir.path().into());
    (Relay::bind(config).await.unwrap().spawn(), dir)
}

/// Runs blocking process I/O off the runtime that serves the relay.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}
