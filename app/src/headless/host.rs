//! `fernsicht host --headless`: shares this screen ($DISPLAY) from the
//! terminal.

use crate::cli::{Accept, HostArgs};
use crate::config::ConfigStore;
use crate::embedded;
use crate::engine::{HostEngine, HostEngineConfig, HostUpdate};
use crate::say;
use crate::trust;
use fernsicht_net::ChannelId;
use fernsicht_net::client::RelayAddr;
use fernsicht_net::message::Permission;
use fernsicht_net::transfer::service::TransferEvent;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

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
    let proxy = trust::proxy_setting(args.proxy.as_deref());
    let mut store = ConfigStore::platform();
    let saved = store.load();
    let (relay, connect, _embedded) = match args.relay {
        Some(addr) => {
            let connect =
                trust::connect_options(&addr, args.relay_pin, saved.remembered(&addr), proxy);
            (addr, connect, None)
        }
        None => {
            let relay = embedded::start(args.listen).await?;
            say!("embedded relay listening on {}", relay.addr);
            say!("relay certificate {}", relay.fingerprint);
            let local = RelayAddr::new("127.0.0.1", relay.addr.port());
            // Our own relay: exactly its certificate.
            let connect = trust::connect_options(&local, Some(relay.fingerprint), None, proxy);
            (local, connect, Some(relay))
        }
    };
    let first_use = connect.trust == fernsicht_net::tls::RelayTrust::FirstUse;
    let mut config = HostEngineConfig::new(relay.clone());
    config.connect = connect;
    config.password = args.password;
    config.inbox = args.inbox.clone();
    config.direct = (!args.no_direct).then(|| fernsicht_net::direct::DirectOptions {
        listen: std::net::SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, args.direct_port)),
        advertise: None,
        punch: true,
    });
    let mut engine = HostEngine::start(config, &tokio::runtime::Handle::current(), Arc::new(|| {}));

    let mut lines = super::stdin_lines();
    let mut pending: VecDeque<Pending> = VecDeque::new();
    let mut names: HashMap<ChannelId, String> = HashMap::new();
    let mut stdin_open = true;
    // Ending after we asked for it is success; anything else is not.
    let mut stopping = false;
    let interrupted = super::interrupted();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            update = engine.update() => {
                let Some(update) = update else { return Ok(ExitCode::FAILURE) };
                match update {
                    HostUpdate::SessionNumber(n) => say!("session {n}"),
                    HostUpdate::Link(link) => {
                        say!("relay link {} certificate {}", link.path, link.fingerprint);
                        if first_use {
                            super::remember_relay(&mut store, &relay, link.fingerprint);
                        }
                    }
                    HostUpdate::Request { viewer, name, code } => {
                        say!("viewer {viewer} \"{name}\" code {code}");
                        match args.accept {
                            Accept::View => engine.decide(viewer, Some(Permission::ViewOnly)),
                            Accept::Control => engine.decide(viewer, Some(Permission::Control)),
                            Accept::Ask => {
                                let p = Pending { viewer, name, code: code.to_string() };
                                if pending.is_empty() {
                                    prompt(&p);
                                }
                                pending.push_back(p);
                            }
                        }
                    }
                    HostUpdate::Connected { viewer, name, permission, link } => {
                        say!("connected {viewer} \"{name}\" {permission} {link}");
                        names.insert(viewer, name);
                    }
                    HostUpdate::PermissionChanged { viewer, permission } => {
                        say!("permission {viewer} {permission}");
                    }
                    HostUpdate::Left { viewer, reason } => {
                        pending.retain(|p| p.viewer != viewer);
                        names.remove(&viewer);
                        say!("left {viewer}: {reason}");
                    }
                    HostUpdate::HandshakeFailed { viewer, error } => {
                        say!("handshake failed {viewer}: {error}");
                    }
                    HostUpdate::Chat { viewer, name, text } => say!("{viewer} {name}: {text}"),
                    HostUpdate::Encoder(e) => say!("encoder {e}"),
                    HostUpdate::Direct(Ok(at)) => say!("direct connections on {at}"),
                    HostUpdate::Direct(Err(e)) => say!("warning: no direct connections: {e}"),
                    HostUpdate::Path { viewer, detail, .. } => say!("path {viewer} {detail}"),
                    HostUpdate::Reconnecting(true) => say!("reconnecting"),
                    HostUpdate::Reconnecting(false) => say!("reconnected"),
                    HostUpdate::ViewerReconnecting { viewer, away: true } => say!("reconnecting {viewer}"),
                    HostUpdate::ViewerReconnecting { viewer, away: false } => say!("resumed {viewer}"),
                    HostUpdate::Warning(w) => say!("warning: {w}"),
                    HostUpdate::Transfer(event) => {
                        say!("{}", super::transfer::line(&event));
                        if let TransferEvent::Offered { peer, id, .. } = event {
                            // Only reached without --inbox (it accepts by itself).
                            engine.decline_files(peer, id);
                            say!("{}", super::transfer::declined(&id));
                        }
                    }
                    HostUpdate::Ended(reason) => {
                        say!("ended: {reason}");
                        return Ok(if stopping { ExitCode::SUCCESS } else { ExitCode::FAILURE });
                    }
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
                            engine.decide(p.viewer, d);
                            pending.pop_front();
                            if let Some(next) = pending.front() {
                                prompt(next);
                            }
                        }
                        None => prompt(p),
                    }
                } else if let Some(rest) = line.strip_prefix("/remove ") {
                    match rest.trim().trim_start_matches('#').parse::<u16>() {
                        Ok(n) => engine.remove(ChannelId(n)),
                        Err(_) => say!("usage: /remove N (the viewer's #number)"),
                    }
                } else if let Some(rest) = line.strip_prefix("/view ") {
                    if let Ok(n) = rest.trim().trim_start_matches('#').parse::<u16>() {
                        engine.set_permission(ChannelId(n), Permission::ViewOnly);
                    }
                } else if let Some(rest) = line.strip_prefix("/control ") {
                    if let Ok(n) = rest.trim().trim_start_matches('#').parse::<u16>() {
                        engine.set_permission(ChannelId(n), Permission::Control);
                    }
                } else if let Some(rest) = line.strip_prefix("/send ") {
                    let viewers: Vec<ChannelId> = names.keys().copied().collect();
                    engine.send_files(viewers, vec![PathBuf::from(rest.trim())]);
                } else if let Some(rest) = line.strip_prefix("/park ") {
                    engine.park(vec![PathBuf::from(rest.trim())]);
                } else if line.trim() == "/quit" {
                    stopping = true;
                    engine.stop();
                } else if !line.is_empty() {
                    engine.chat(line);
                }
            }
            _ = &mut interrupted, if !stopping => {
                stopping = true;
                engine.stop();
            }
        }
    }
}
