//! `fernsicht view NUMBER --headless`.

use crate::cli::ViewArgs;
use crate::say;
use anyhow::Context;
use fernsicht_net::client::{SessionEnd, ViewerEvent, ViewerOptions, start_viewer};
use fernsicht_net::handshake::{HandshakeConfig, ViewerKey};
use fernsicht_net::message::{ByeReason, Message};
use std::process::ExitCode;

fn default_name() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "helper".into())
}

pub async fn run(args: ViewArgs) -> anyhow::Result<ExitCode> {
    if !args.headless {
        say!("the window is not built yet: running in the terminal (--headless)");
    }
    // Key generation takes a few hundred milliseconds: off the async threads.
    let key = tokio::task::spawn_blocking(|| ViewerKey::generate(&mut rand::rngs::OsRng))
        .await
        .context("key generation task failed")?
        .context("generating the RSA key pair")?;
    let mut session = start_viewer(ViewerOptions {
        relay: args.relay.clone(),
        number: args.number,
        handshake: HandshakeConfig::with_password(args.password.as_deref()),
        name: args.name.unwrap_or_else(default_name),
        key,
    })
    .await
    .with_context(|| format!("joining session {} via {}", args.number, args.relay))?;

    let handle = session.handle.clone();
    let mut lines = super::stdin_lines();
    let mut stdin_open = true;
    let interrupted = super::interrupted();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            event = session.events.recv() => {
                let Some(event) = event else { return Ok(ExitCode::FAILURE) };
                match event {
                    ViewerEvent::Code(code) => say!("code {code}"),
                    ViewerEvent::Connected => {
                        say!("connected e2e aes-256-gcm");
                        say!("waiting for the host to allow the connection");
                    }
                    ViewerEvent::Allowed(p) => say!("allowed {p}"),
                    ViewerEvent::PermissionChanged(p) => say!("permission {p}"),
                    ViewerEvent::Message(Message::Chat { text }) => say!("host: {text}"),
                    ViewerEvent::Message(_) => {}
                    ViewerEvent::Ended(end) => {
                        say!("ended: {end}");
                        return Ok(match end {
                            SessionEnd::Local | SessionEnd::Peer(ByeReason::HostStopped) => ExitCode::SUCCESS,
                            _ => ExitCode::FAILURE,
                        });
                    }
                    _ => {}
                }
            }
            line = lines.recv(), if stdin_open => match line {
                Some(line) if line.trim() == "/quit" => handle.leave(),
                Some(line) if !line.is_empty() => handle.send(Message::Chat { text: line }),
                Some(_) => {}
                None => stdin_open = false,
            },
            _ = &mut interrupted => handle.leave(),
        }
    }
}
