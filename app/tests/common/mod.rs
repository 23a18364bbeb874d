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

/// How the app processes reach a test's relay (`--relay ADDR --relay-pin
/// PIN`), and the host and viewer commands that use it.
#[derive(Clone)]
pub struct Relayed {
    pub addr: String,
    pub pin: String,
}

impl Relayed {
    pub fn of(relay: &RelayHandle) -> Relayed {
        Relayed {
            addr: relay.addr.to_string(),
            pin: relay.fingerprint.to_string(),
        }
    }

    fn args<'a>(&'a self, head: &[&'a str], rest: &[&'a str]) -> Vec<&'a str> {
        let mut args = head.to_vec();
        args.extend([
            "--relay",
            &self.addr,
            "--relay-pin",
            &self.pin,
            "--headless",
        ]);
        args.extend(rest);
        args
    }

    /// `fernsicht host --headless` on this relay with `args`; returns it
    /// with the session number it printed.
    pub fn host(&self, args: &[&str]) -> (App, String) {
        self.host_with_env(args, &[])
    }

    /// As [`Relayed::host`], with extra environment (e.g. the display).
    pub fn host_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> (App, String) {
        let mut host = App::start_with_env(&self.args(&["host"], args), env);
        let number = host
            .expect("session ")
            .trim_start_matches("session ")
            .to_owned();
        (host, number)
    }

    /// `fernsicht view NUMBER --headless` on this relay with `args`.
    pub fn view(&self, number: &str, args: &[&str]) -> App {
        App::start(&self.args(&["view", number], args))
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
