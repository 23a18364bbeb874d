//! Remote input on the host, on a thread of its own: enigo's calls block on
//! the X server, and the session loop must never wait for them.

use fernsicht_input::{
    EnigoBackend, EnigoConfig, HostInput, Injector, InputEvent, Outcome, Permission, RateLimit,
    ViewerId, x11_display_layout,
};
use std::sync::mpsc;
use std::time::Instant;
use tokio::sync::mpsc as tmpsc;

pub enum Command {
    Add(ViewerId, Permission),
    SetPermission(ViewerId, Permission),
    Remove(ViewerId),
    Event(ViewerId, Vec<u8>),
}

/// Sends viewers' input to the injection thread.
pub struct InjectionWorker {
    tx: mpsc::Sender<Command>,
}

impl InjectionWorker {
    /// Starts the thread; it connects to the X server `x_display` (`None`:
    /// `$DISPLAY`). Problems (no X server, no permission) are reported as
    /// warnings and the host goes on without remote control.
    pub fn spawn(x_display: Option<String>, warnings: tmpsc::UnboundedSender<String>) -> Self {
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("input-injection".into())
            .spawn(move || run(x_display, rx, warnings));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the input thread");
        }
        InjectionWorker { tx }
    }

    pub fn send(&self, c: Command) {
        let _ = self.tx.send(c);
    }
}

fn run(
    x_display: Option<String>,
    rx: mpsc::Receiver<Command>,
    warnings: tmpsc::UnboundedSender<String>,
) {
    let setup = || -> Result<HostInput<EnigoBackend>, String> {
        let layout =
            x11_display_layout(x_display.as_deref()).map_err(|e| fernsicht_net::error_chain(&e))?;
        let backend = EnigoBackend::new(&EnigoConfig {
            x11_display: x_display.clone(),
            ..Default::default()
        })
        .map_err(|e| fernsicht_net::error_chain(&e))?;
        Ok(HostInput::new(
            Injector::new(backend, layout),
            RateLimit::default(),
        ))
    };
    let mut host = match setup() {
        Ok(h) => h,
        Err(e) => {
            let _ = warnings.send(format!("keyboard and mouse control unavailable: {e}"));
            // Keep draining so senders never block; nothing is injected.
            for _ in rx {}
            return;
        }
    };
    let mut warned = false;
    for command in rx {
        let result = match command {
            Command::Add(v, p) => host.add_viewer(v, p).map(|_| ()),
            Command::SetPermission(v, p) => host.set_permission(v, p).map(|_| ()),
            Command::Remove(v) => host.remove_viewer(v).map(|stats| {
                tracing::info!(viewer = v.0, ?stats, "viewer's input released");
            }),
            Command::Event(v, bytes) => match InputEvent::from_bytes(&bytes) {
                Ok(event) => host.handle(v, event, Instant::now()).map(|outcome| {
                    if let Outcome::Dropped(why) = outcome {
                        tracing::debug!(viewer = v.0, ?why, "input dropped");
                    }
                }),
                Err(e) => {
                    tracing::debug!(viewer = v.0, error = %e, "malformed input event");
                    Ok(())
                }
            },
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "input");
            if !warned {
                warned = true;
                let _ = warnings.send(format!(
                    "remote input failed: {}",
                    fernsicht_net::error_chain(&e)
                ));
            }
        }
    }
    // The engine is gone: the HostInput's injector releases on drop.
}
