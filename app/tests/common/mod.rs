//! Helpers for the app's end-to-end tests: the `fernsicht` binary as a
//! child process with its output as lines, and a relay on loopback.
#![allow(dead_code, clippy::unwrap_used)] // test support: a failed set-up is a failed test

use fernsicht_net::relay::{Relay, RelayConfig, RelayHandle};
use fernsicht_tests::Proc;
#[allow(unused_imports)] // some test files wait on their own
pub use fernsicht_tests::WAIT;
use std::ops::{Deref, DerefMut};
use std::process::Command;

/// The `fernsicht` binary as a child process (see [`Proc`]).
pub struct App(Proc);

impl App {
    pub fn start(args: &[&str]) -> App {
        Self::start_with_env(args, &[])
    }

    /// Starts with extra environment variables (e.g. the X display to share).
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> App {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fernsicht"));
        cmd.args(args)
            // Only the X display a test names: never the developer's.
            .env_remove("DISPLAY")
            .envs(env.iter().copied());
        App(Proc::spawn(cmd))
    }
}

impl Deref for App {
    type Target = Proc;
    fn deref(&self) -> &Proc {
        &self.0
    }
}

impl DerefMut for App {
    fn deref_mut(&mut self) -> &mut Proc {
        &mut self.0
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
