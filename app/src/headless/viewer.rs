//! `fernsicht view NUMBER --headless`: watches (and, with a script,
//! controls) a session from the terminal.

use super::script::{self, Step};
use crate::cli::ViewArgs;
use crate::config::ConfigStore;
use crate::engine::{
    RemoteFrame, ViewerEngine, ViewerEngineConfig, ViewerStats, ViewerUpdate, prewarm_viewer_key,
};
use crate::say;
use crate::trust;
use anyhow::Context;
use fernsicht_input::DisplayId;
use fernsicht_net::message::DisplayDesc;
use fernsicht_net::transfer::service::{Direction, TransferEvent};
use std::collections::VecDeque;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::sync::Notify as TokioNotify;

fn default_name() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "helper".into())
}

/// Saves a picture as PNG.
fn save_png(frame: &RemoteFrame, path: &Path) -> anyhow::Result<()> {
    image::save_buffer(
        path,
        &frame.rgba,
        frame.width,
        frame.height,
        image::ExtendedColorType::Rgba8,
    )
    .with_context(|| format!("writing {}", path.display()))
}

pub async fn run(args: ViewArgs) -> anyhow::Result<ExitCode> {
    prewarm_viewer_key();
    let mut steps: VecDeque<Step> = match &args.script {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the script {}", path.display()))?;
            script::parse(&text)?.into()
        }
        None => VecDeque::new(),
    };
    let scripted = args.script.is_some();
    let wake = Arc::new(TokioNotify::new());
    let notify = {
        let wake = wake.clone();
        Arc::new(move || wake.notify_one())
    };
    let mut store = ConfigStore::platform();
    let saved = store.load();
    let connect = trust::connect_options(
        &args.relay,
        args.relay_pin,
        saved.remembered(&args.relay),
        trust::proxy_setting(args.proxy.as_deref()),
    );
    let first_use = connect.trust == fernsicht_net::tls::RelayTrust::FirstUse;
    let mut engine = ViewerEngine::start(
        ViewerEngineConfig {
            family: Vec::new(),
            relay: args.relay.clone(),
            connect,
            number: args.number,
            password: args.password.clone(),
            name: args.name.clone().unwrap_or_else(default_name),
            record: args.record.clone(),
            save_to: args.save_to.clone(),
            direct: !args.no_direct,
        },
        &tokio::runtime::Handle::current(),
        notify,
    );

    let handle_lines = !scripted;
    let mut lines = super::stdin_lines();
    let mut stdin_open = handle_lines;
    let mut shared: Option<DisplayDesc> = None;
    let mut allowed = false;
    let mut joined = false;
    let mut leaving = false;
    // The --send transfer: not yet asked for, running, or over (and how).
    let mut sending = if args.send.is_empty() {
        Send::None
    } else {
        Send::Waiting
    };
    let mut failed_send = false;
    // Frames decoded when the current wait-frames step began, and how many.
    let mut waiting: Option<(u64, u64)> = None;
    let interrupted = super::interrupted();
    tokio::pin!(interrupted);
    loop {
        // Progress of --frames and the script, whenever anything happened.
        let decoded = engine.stats().frames_decoded;
        if !leaving {
            let sends_done = matches!(sending, Send::None | Send::Over);
            if sending == Send::Over && args.frames.is_none() && !scripted {
                leaving = true;
                engine.leave();
            }
            if let Some(n) = args.frames
                && decoded >= n
                && steps.is_empty()
                && sends_done
            {
                leaving = true;
                engine.leave();
            }
            if allowed && decoded > 0 {
                if let Some(display) = &shared {
                    run_steps(&engine, &mut steps, &mut waiting, decoded, display)?;
                }
                if scripted && steps.is_empty() && args.frames.is_none() {
                    leaving = true;
                    engine.leave();
                }
            }
        }
        tokio::select! {
            update = engine.update() => {
                let Some(update) = update else { return Ok(ExitCode::FAILURE) };
                match update {
                    ViewerUpdate::Link(link) => {
                        say!("relay link {} certificate {}", link.path, link.fingerprint);
                        if first_use {
                            super::remember_relay(&mut store, &args.relay, link.fingerprint);
                        }
                    }
                    ViewerUpdate::Code(code) => {
                        joined = true;
                        say!("code {code}");
                    }
                    ViewerUpdate::Connected => {
                        say!("connected e2e aes-256-gcm");
                        say!("waiting for the host to allow the connection");
                    }
                    ViewerUpdate::Allowed(p) => {
                        allowed = true;
                        say!("allowed {p}");
                        if sending == Send::Waiting {
                            sending = Send::Running;
                            engine.send_files(args.send.clone());
                        }
                    }
                    ViewerUpdate::Transfer(event) => {
                        let mut text = super::transfer::line(&event);
                        match &event {
                            TransferEvent::Started { .. } => engine.mark_video_gap(),
                            TransferEvent::Finished { .. } => {
                                text.push_str(&super::transfer::gap_suffix(engine.video_gap()));
                            }
                            _ => {}
                        }
                        say!("{text}");
                        match event {
                            TransferEvent::Offered { peer, id, .. } => {
                                engine.decline_files(peer, id);
                                say!("{}", super::transfer::declined(&id));
                            }
                            TransferEvent::Finished { direction: Direction::Send, .. } => {
                                sending = Send::Over;
                            }
                            TransferEvent::Failed { direction: Direction::Send, .. }
                            | TransferEvent::Problem(_) if sending == Send::Running => {
                                failed_send = true;
                                sending = Send::Over;
                            }
                            _ => {}
                        }
                    }
                    ViewerUpdate::PermissionChanged(p) => say!("permission {p}"),
                    ViewerUpdate::Path(p) => say!("path {p}"),
                    ViewerUpdate::Reconnecting(true) => say!("reconnecting"),
                    ViewerUpdate::Reconnecting(false) => say!("resumed"),
                    ViewerUpdate::Displays { displays, shared: index } => {
                        for d in &displays {
                            say!("display {} {} {}x{}", d.index, d.name, d.width, d.height);
                        }
                        shared = displays.into_iter().find(|d| d.index == index);
                    }
                    ViewerUpdate::Encoder(e) => say!("encoder {e}"),
                    ViewerUpdate::Chat(text) => say!("host: {text}"),
                    ViewerUpdate::Ended(reason) if !joined => {
                        // Never got as far as a handshake: a plain error.
                        eprintln!("error: {reason}");
                        return Ok(ExitCode::from(2));
                    }
                    ViewerUpdate::Ended(reason) => {
                        let stats: ViewerStats = engine.stats();
                        say!("frames {}", stats.frames_decoded);
                        if let (Some(path), Some(frame)) = (&args.screenshot, engine.newest_frame()) {
                            save_png(&frame, path)?;
                            say!("screenshot {}", path.display());
                        }
                        say!("ended: {reason}");
                        let clean = (leaving || reason == "the host stopped sharing") && !failed_send;
                        return Ok(if clean { ExitCode::SUCCESS } else { ExitCode::FAILURE });
                    }
                }
            }
            _ = wake.notified() => {}
            line = lines.recv(), if stdin_open => match line {
                Some(line) if line.trim() == "/quit" => {
                    leaving = true;
                    engine.leave();
                }
                Some(line) if !line.is_empty() => engine.chat(line),
                Some(_) => {}
                None => stdin_open = false,
            },
            _ = &mut interrupted, if !leaving => {
                leaving = true;
                engine.leave();
            }
        }
    }
}

/// Where the `--send` transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Send {
    None,
    /// Until the host allows the connection.
    Waiting,
    Running,
    Over,
}

/// Runs script steps until one has to wait for pictures.
fn run_steps(
    engine: &ViewerEngine,
    steps: &mut VecDeque<Step>,
    waiting: &mut Option<(u64, u64)>,
    decoded: u64,
    display: &DisplayDesc,
) -> anyhow::Result<()> {
    let id = DisplayId::new(display.name.clone());
    while let Some(step) = steps.front() {
        match step {
            Step::WaitFrames(n) => {
                let (start, n) = *waiting.get_or_insert((decoded, *n));
                if decoded < start + n {
                    return Ok(());
                }
                *waiting = None;
            }
            Step::Screenshot(path) => {
                if let Some(frame) = engine.newest_frame() {
                    save_png(&frame, path)?;
                    say!("screenshot {}", path.display());
                }
            }
            other => engine.send_input(&other.events(&id, display.width, display.height)),
        }
        steps.pop_front();
    }
    Ok(())
}
