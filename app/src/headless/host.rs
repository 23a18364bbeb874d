//! `fernsicht host --headless`.

use crate::cli::{Accept, HostArgs};
use crate::embedded;
use crate::say;
use fernsicht_net::ChannelId;
use fernsicht_net::client::{HostEvent, HostOptions, RelayAddr, SessionEnd, start_host};
use fernsicht_net::handshake::HandshakeConfig;
use fernsicht_net::message::{Message, Permission};
use std::collections::{HashMap, VecDeque};
use std::process::ExitCode;

/// A viewer waiting for the person's answer.
struct Pending {
    viewer: ChannelId,
    name: String,
    code: String,
}

fn prompt(p: &Pending) {
    say!(
        "allow {} \"{}\" with code {}? [d]eny, [v]iew only, [c]ontrol",
        p.viewer,
        p.name,
        p.code
    );
}

pub async fn run(args: HostArgs) -> anyhow::Result<ExitCode> {
    if !args.headless {
        say!("the window is not built yet: running in the terminal (--headless)");
    }
    let (relay_addr, _embedded) = match args.relay {
        Some(addr) => (addr, None),
        None => {
            let relay = embedded::start(args.listen).await?;
            say!("embedded relay listening on {}", relay.addr);
            let local = RelayAddr::new("127.0.0.1", relay.addr.port());
            (local, Some(relay))
        }
    };
    let mut session = start_host(HostOptions {
        relay: relay_addr,
        handshake: HandshakeConfig::with_password(args.password.as_deref()),
    })
    .await?;
    say!("session {}", session.number);

    let handle = session.handle.clone();
    let mut lines = super::stdin_lines();
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut names: HashMap<ChannelId, String> = HashMap::new();
    let mut stdin_open = true;
    let interrupted = super::interrupted();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            event = session.events.recv() => {
                let Some(event) = event else { return Ok(ExitCode::FAILURE) };
                match event {
                    HostEvent::ViewerRequest { viewer, name, code } => {
                        say!("viewer {viewer} \"{name}\" code {code}");
                        match args.accept {
                            Accept::View => handle.decide(viewer, Some(Permission::ViewOnly)),
                            Accept::Control => handle.decide(viewer, Some(Permission::Control)),
                            Accept::Ask => {
                                let p = Pending { viewer, name, code: code.to_string() };
                                if pending.is_empty() {
                                    prompt(&p);
                                }
                                pending.push_back(p);
                            }
                        }
                    }
                    HostEvent::ViewerConnected { viewer, name, permission } => {
                        say!("connected {viewer} \"{name}\" {permission}");
                        names.insert(viewer, name);
                    }
                    HostEvent::ViewerLeft { viewer, reason } => {
                        pending.retain(|p| p.viewer != viewer);
                        names.remove(&viewer);
                        say!("left {viewer}: {reason}");
                    }
                    HostEvent::HandshakeFailed { viewer, error } => {
                        say!("handshake failed {viewer}: {error}");
                    }
                    HostEvent::Message { viewer, message: Message::Chat { text } } => {
                        let name = names.get(&viewer).map(String::as_str).unwrap_or("?");
                        say!("{viewer} {name}: {text}");
                    }
                    HostEvent::Message { .. } => {}
                    HostEvent::Ended(end) => {
                        say!("ended: {end}");
                        return Ok(match end {
                            SessionEnd::Local => ExitCode::SUCCESS,
                            _ => ExitCode::FAILURE,
                        });
                    }
                    _ => {}
                }
            }
            line = lines.recv(), if stdin_open => {
                let Some(line) = line else {
                    // No more input (e.g. started from a script): keep
                    // sharing until interrupted.
                    stdin_open = false;
                    continue;
                };
                if let Some(p) = pending.front() {
                    let decision = match line.trim().to_lowercase().as_str() {
                        "d" | "deny" | "n" | "no" => Some(None),
                        "v" | "view" => Some(Some(Permission::ViewOnly)),
                        "c" | "control" | "y" | "yes" => Some(Some(Permission::Control)),
                        _ => None,
                    };
                    match decision {
                        Some(d) => {
                            handle.decide(p.viewer, d);
                            pending.pop_front();
                            if let Some(next) = pending.front() {
                                prompt(next);
                            }
                        }
                        None => prompt(p),
                    }
                } else if let Some(rest) = line.strip_prefix("/remove ") {
                    match rest.trim().trim_start_matches('#').parse::<u16>() {
                        Ok(n) => handle.remove(ChannelId(n)),
                        Err(_) => say!("usage: /remove N (the viewer's #number)"),
                    }
                } else if line.trim() == "/quit" {
                    handle.end();
                } else if !line.is_empty() {
                    handle.broadcast(&Message::Chat { text: line });
                }
            }
            _ = &mut interrupted => handle.end(),
        }
    }
}
