//! Host and viewer in the terminal: one line per event on stdout, chat and
//! answers from stdin. The output format is stable; tests and scripts
//! parse it.

pub mod host;
mod script;
pub mod viewer;

use std::io::BufRead;
use tokio::sync::mpsc;

/// Lines typed on stdin, read on their own thread so that a session never
/// waits for the keyboard. The channel closes at end of input.
///
/// A plain thread, not tokio's stdin: tokio reads stdin on a blocking-pool
/// thread that the runtime waits for at exit, so the process would hang
/// until the next line of input.
pub fn stdin_lines() -> mpsc::UnboundedReceiver<String> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Prints one line and flushes, so that a reader of a pipe sees it at once.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($arg)*);
        let _ = out.flush();
    }};
}

/// Waits for Ctrl-C (or SIGTERM on Unix).
pub async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Remembers a relay's certificate after a first-use connection, so that
/// the next connection pins it.
pub fn remember_relay(
    store: &mut crate::config::ConfigStore,
    relay: &fernsicht_net::client::RelayAddr,
    fingerprint: fernsicht_net::tls::Fingerprint,
) {
    let mut config = store.load();
    if config.remember(relay, fingerprint) {
        match store.save(&config) {
            Ok(()) => say!("remembered relay {relay} certificate {fingerprint}"),
            Err(e) => eprintln!("warning: cannot remember the relay's certificate: {e}"),
        }
    }
}
