//! The host's engine: shares the screen with the viewers the person allowed.

use super::capture_worker::{self, CaptureWorker, Output};
use super::injection::{self, InjectionWorker};
use super::stream::{MIN_BITRATE, Verdict, ViewerStream};
use super::{LinkKind, Notify, gate_permission};
use fernsicht_capture::list_displays;
use fernsicht_input::ViewerId;
use fernsicht_net::client::{
    ConnectOptions, HostEvent, HostHandle, HostOptions, LinkInfo, RelayAddr, Route, start_host,
};
use fernsicht_net::direct::DirectOptions;
use fernsicht_net::handshake::{AuthCode, HandshakeConfig};
use fernsicht_net::message::{DisplayDesc, Message, Permission, VideoFrame};
use fernsicht_net::transfer::TransferId;
use fernsicht_net::transfer::service::{ServiceConfig, TransferEvent, TransferService};
use fernsicht_net::{ChannelId, SessionNumber};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Keyframes on request no more often than this: each costs as much as
/// dozens of ordinary frames.
const KEYFRAME_SPACING: Duration = Duration::from_millis(300);
/// How often pending keyframe wishes are looked at when no frame comes.
const HOUSEKEEPING: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct HostEngineConfig {
    pub relay: RelayAddr,
    /// How to reach and trust the relay.
    pub connect: ConnectOptions,
    /// The relay's family (other relays of the same service), tried when
    /// the link is lost and the relay does not take the session back.
    pub family: Vec<Route>,
    pub password: Option<String>,
    /// The X display to share (`None`: `$DISPLAY`).
    pub x_display: Option<String>,
    pub max_bitrate_bps: u32,
    pub max_fps: f32,
    /// Take files viewers send into this folder without asking.
    pub inbox: Option<PathBuf>,
    /// Where allowed viewers may connect directly; `None`: relay only.
    pub direct: Option<DirectOptions>,
}

impl HostEngineConfig {
    pub fn new(relay: RelayAddr) -> Self {
        HostEngineConfig {
            relay,
            connect: ConnectOptions::default(),
            family: Vec::new(),
            password: None,
            x_display: None,
            max_bitrate_bps: 8_000_000,
            max_fps: 30.0,
            inbox: None,
            direct: Some(DirectOptions::default()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum HostUpdate {
    SessionNumber(SessionNumber),
    /// How the link to the relay runs, and the relay's certificate.
    Link(LinkInfo),
    /// Show the consent dialog: keys are confirmed, the person decides.
    Request {
        viewer: ChannelId,
        name: String,
        code: AuthCode,
    },
    Connected {
        viewer: ChannelId,
        name: String,
        permission: Permission,
        link: LinkKind,
    },
    PermissionChanged {
        viewer: ChannelId,
        permission: Permission,
    },
    Left {
        viewer: ChannelId,
        reason: String,
    },
    HandshakeFailed {
        viewer: ChannelId,
        error: String,
    },
    Chat {
        viewer: ChannelId,
        name: String,
        text: String,
    },
    /// Where viewers may connect directly, or why they cannot.
    Direct(Result<std::net::SocketAddr, String>),
    /// A viewer's session moved to another path.
    Path {
        viewer: ChannelId,
        link: LinkKind,
        detail: String,
    },
    /// The link to the relay dropped; the session waits for it to return
    /// (`true`), or it is back (`false`).
    Reconnecting(bool),
    /// A viewer's link dropped (`true`) or it is back and resumed (`false`).
    ViewerReconnecting {
        viewer: ChannelId,
        away: bool,
    },
    /// Which encoder runs, e.g. "openh264 (software)".
    Encoder(String),
    Warning(String),
    /// The session is over; no more updates follow.
    Ended(String),
    /// File transfers: offers to answer, progress, results.
    Transfer(TransferEvent),
}

enum UiCommand {
    Decide(ChannelId, Option<Permission>),
    SetPermission(ChannelId, Permission),
    Remove(ChannelId),
    Chat(String),
    Stop,
    Files(FileCommand),
}

/// What the person wants done with files.
enum FileCommand {
    Send(Vec<ChannelId>, Vec<PathBuf>),
    Accept(ChannelId, TransferId, PathBuf),
    Decline(ChannelId, TransferId),
    Cancel(ChannelId, TransferId),
    Park(Vec<PathBuf>),
}

/// Runs a host session. Dropping it stops sharing.
pub struct HostEngine {
    commands: mpsc::UnboundedSender<UiCommand>,
    updates: mpsc::UnboundedReceiver<HostUpdate>,
}

impl HostEngine {
    /// Connects to the relay and starts sharing on `runtime`; the session
    /// number arrives as the first update.
    pub fn start(
        config: HostEngineConfig,
        runtime: &tokio::runtime::Handle,
        notify: Notify,
    ) -> Self {
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (up_tx, up_rx) = mpsc::unbounded_channel();
        runtime.spawn(run(config, cmd_rx, Updates { tx: up_tx, notify }));
        HostEngine {
            commands: cmd_tx,
            updates: up_rx,
        }
    }

    /// The next update, if one is waiting.
    pub fn try_update(&mut self) -> Option<HostUpdate> {
        self.updates.try_recv().ok()
    }

    /// The next update; `None` once the engine has stopped.
    pub async fn update(&mut self) -> Option<HostUpdate> {
        self.updates.recv().await
    }

    fn send(&self, c: UiCommand) {
        let _ = self.commands.send(c);
    }

    /// Allows a waiting viewer with `permission`, or denies it (`None`).
    pub fn decide(&self, viewer: ChannelId, permission: Option<Permission>) {
        self.send(UiCommand::Decide(viewer, permission));
    }

    pub fn set_permission(&self, viewer: ChannelId, permission: Permission) {
        self.send(UiCommand::SetPermission(viewer, permission));
    }

    pub fn remove(&self, viewer: ChannelId) {
        self.send(UiCommand::Remove(viewer));
    }

    pub fn chat(&self, text: String) {
        self.send(UiCommand::Chat(text));
    }

    /// Stops sharing for everyone and ends the session.
    pub fn stop(&self) {
        self.send(UiCommand::Stop);
    }

    /// Offers files and folders to these viewers.
    pub fn send_files(&self, viewers: Vec<ChannelId>, paths: Vec<PathBuf>) {
        self.send(UiCommand::Files(FileCommand::Send(viewers, paths)));
    }

    /// Takes the files a viewer offers into `folder`.
    pub fn accept_files(&self, viewer: ChannelId, id: TransferId, folder: PathBuf) {
        self.send(UiCommand::Files(FileCommand::Accept(viewer, id, folder)));
    }

    pub fn decline_files(&self, viewer: ChannelId, id: TransferId) {
        self.send(UiCommand::Files(FileCommand::Decline(viewer, id)));
    }

    /// Stops a transfer either way (`ChannelId::CONTROL`: parking).
    pub fn cancel_transfer(&self, peer: ChannelId, id: TransferId) {
        self.send(UiCommand::Files(FileCommand::Cancel(peer, id)));
    }

    /// Parks a file in the relay's encrypted store for every viewer, now
    /// and later.
    pub fn park(&self, paths: Vec<PathBuf>) {
        self.send(UiCommand::Files(FileCommand::Park(paths)));
    }
}

struct Updates {
    tx: mpsc::UnboundedSender<HostUpdate>,
    notify: Notify,
}

impl Updates {
    fn send(&self, u: HostUpdate) {
        let _ = self.tx.send(u);
        (self.notify)();
    }
}

async fn run(
    config: HostEngineConfig,
    mut commands: mpsc::UnboundedReceiver<UiCommand>,
    updates: Updates,
) {
    let session = start_host(HostOptions {
        family: config.family.clone(),
        relay: config.relay.clone(),
        connect: config.connect.clone(),
        handshake: HandshakeConfig::with_password(config.password.as_deref()),
        direct: config.direct.clone(),
    })
    .await;
    let mut session = match session {
        Ok(s) => s,
        Err(e) => {
            updates.send(HostUpdate::Ended(fernsicht_net::error_chain(&e)));
            return;
        }
    };
    updates.send(HostUpdate::Link(session.link.clone()));
    if config.direct.is_some() {
        updates.send(HostUpdate::Direct(session.direct.clone()));
    }
    updates.send(HostUpdate::SessionNumber(session.number));
    let (warn_tx, mut warnings) = mpsc::unbounded_channel();
    let (transfers, mut transfer_events) = TransferService::spawn(
        Arc::new(session.handle.clone()),
        ServiceConfig {
            auto_accept: config.inbox.clone(),
            ..ServiceConfig::default()
        },
    );
    let mut engine = Engine {
        transfers,
        session: session.handle.clone(),
        updates,
        warn_tx,
        names: HashMap::new(),
        viewers: HashMap::new(),
        capture: None,
        injection: None,
        next_frame_id: 0,
        epoch: Instant::now(),
        last_keyframe_request: None,
        bitrate: config.max_bitrate_bps,
        config,
    };
    let mut housekeeping = tokio::time::interval(HOUSEKEEPING);
    loop {
        tokio::select! {
            event = session.events.recv() => {
                let Some(event) = event else { break };
                let Some(event) = engine.transfers.host_event(event) else { continue };
                if let Some(end) = engine.on_session(event).await {
                    engine.updates.send(HostUpdate::Ended(end));
                    break;
                }
            }
            command = commands.recv() => match command {
                Some(c) => engine.on_command(c),
                // The UI dropped the engine: stop sharing.
                None => engine.session.end(),
            },
            output = recv_frame(&mut engine.capture) => engine.on_capture(output),
            Some(warning) = warnings.recv() => engine.updates.send(HostUpdate::Warning(warning)),
            Some(event) = transfer_events.recv() => engine.updates.send(HostUpdate::Transfer(event)),
            _ = housekeeping.tick() => engine.keyframe_wishes(),
        }
    }
}

/// The next output of the capture thread, or never while nothing is shared.
async fn recv_frame(capture: &mut Option<Capture>) -> Option<Output> {
    match capture {
        Some(c) => c.frames.recv().await,
        None => std::future::pending().await,
    }
}

/// The running capture.
struct Capture {
    worker: CaptureWorker,
    frames: mpsc::Receiver<Output>,
    display: u16,
    /// When the pipeline's clock started, on the engine's clock.
    started: Duration,
}

/// A viewer the person allowed.
struct Allowed {
    name: String,
    permission: Permission,
    stream: ViewerStream,
}

struct Engine {
    config: HostEngineConfig,
    session: HostHandle,
    transfers: TransferService,
    updates: Updates,
    warn_tx: mpsc::UnboundedSender<String>,
    /// Names of viewers waiting for consent.
    names: HashMap<ChannelId, String>,
    viewers: HashMap<ChannelId, Allowed>,
    capture: Option<Capture>,
    injection: Option<InjectionWorker>,
    next_frame_id: u64,
    epoch: Instant,
    last_keyframe_request: Option<Instant>,
    bitrate: u32,
}

fn input_id(viewer: ChannelId) -> ViewerId {
    ViewerId(u64::from(viewer.0))
}

impl Engine {
    /// Handles one session event; `Some(reason)` when the session ended.
    async fn on_session(&mut self, event: HostEvent) -> Option<String> {
        match event {
            HostEvent::ViewerRequest { viewer, name, code } => {
                self.names.insert(viewer, name.clone());
                self.updates
                    .send(HostUpdate::Request { viewer, name, code });
            }
            HostEvent::ViewerConnected {
                viewer,
                name,
                permission,
            } => {
                self.names.remove(&viewer);
                self.viewer_allowed(viewer, name, permission).await;
            }
            HostEvent::ViewerLeft { viewer, reason } => {
                self.names.remove(&viewer);
                if let Some(v) = self.viewers.remove(&viewer) {
                    tracing::info!(
                        viewer = viewer.0,
                        skipped = v.stream.skipped(),
                        rtt = ?v.stream.rtt(),
                        "viewer's stream ended"
                    );
                    if let Some(inj) = &self.injection {
                        inj.send(injection::Command::Remove(input_id(viewer)));
                    }
                    if self.viewers.is_empty() {
                        // Nobody watches: stop capturing, it costs CPU.
                        self.capture = None;
                    }
                }
                self.updates.send(HostUpdate::Left { viewer, reason });
            }
            HostEvent::HandshakeFailed { viewer, error } => {
                self.updates
                    .send(HostUpdate::HandshakeFailed { viewer, error });
            }
            HostEvent::Message { viewer, message } => self.on_message(viewer, message).await,
            HostEvent::Reconnecting => self.updates.send(HostUpdate::Reconnecting(true)),
            HostEvent::Reconnected => self.updates.send(HostUpdate::Reconnecting(false)),
            HostEvent::ViewerReconnecting { viewer } => {
                self.updates
                    .send(HostUpdate::ViewerReconnecting { viewer, away: true });
            }
            HostEvent::ViewerResumed { viewer } => {
                self.updates.send(HostUpdate::ViewerReconnecting {
                    viewer,
                    away: false,
                });
            }
            HostEvent::ViewerPath { viewer, path } => {
                self.updates.send(HostUpdate::Path {
                    viewer,
                    link: LinkKind::of(path),
                    detail: path.to_string(),
                });
            }
            HostEvent::Ended(end) => return Some(end.to_string()),
            _ => {}
        }
        None
    }

    async fn viewer_allowed(&mut self, viewer: ChannelId, name: String, permission: Permission) {
        let now = Instant::now();
        self.viewers.insert(
            viewer,
            Allowed {
                name: name.clone(),
                permission,
                stream: ViewerStream::new(self.config.max_bitrate_bps, now),
            },
        );
        self.updates.send(HostUpdate::Connected {
            viewer,
            name,
            permission,
            link: LinkKind::Relayed,
        });
        if self.capture.is_none() {
            self.start_capture(0).await;
        }
        if let Some(c) = &self.capture {
            let displays = self.displays();
            self.session.send_to(
                viewer,
                &Message::Displays {
                    displays,
                    shared: c.display,
                },
            );
        }
        let injection = self.injection.get_or_insert_with(|| {
            InjectionWorker::spawn(self.config.x_display.clone(), self.warn_tx.clone())
        });
        injection.send(injection::Command::Add(
            input_id(viewer),
            gate_permission(permission),
        ));
        self.keyframe_wishes();
    }

    fn displays(&self) -> Vec<DisplayDesc> {
        match list_displays(self.config.x_display.as_deref()) {
            Ok(list) => list
                .into_iter()
                .map(|d| DisplayDesc {
                    index: d.index as u16,
                    name: d.name,
                    x: i32::from(d.x),
                    y: i32::from(d.y),
                    width: u32::from(d.width),
                    height: u32::from(d.height),
                })
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list displays");
                Vec::new()
            }
        }
    }

    /// Starts (or restarts) capturing display `index`.
    async fn start_capture(&mut self, index: u16) {
        self.capture = None;
        let (tx, rx) = mpsc::channel(1);
        let config = capture_worker::pipeline_config(
            self.config.x_display.clone(),
            usize::from(index),
            self.bitrate,
            self.config.max_fps,
        );
        let started = self.epoch.elapsed();
        let (worker, ready) = CaptureWorker::spawn(config, tx);
        match ready.await {
            Ok(Ok(s)) => {
                tracing::info!("{}", s.encoder_report);
                let encoder = s.encoder;
                self.updates.send(HostUpdate::Encoder(encoder.clone()));
                self.session.broadcast(&Message::StreamInfo { encoder });
                self.capture = Some(Capture {
                    worker,
                    frames: rx,
                    display: index,
                    started,
                });
            }
            Ok(Err(e)) => self
                .updates
                .send(HostUpdate::Warning(format!("cannot share the screen: {e}"))),
            Err(_) => self.updates.send(HostUpdate::Warning(
                "cannot share the screen: capture thread failed".into(),
            )),
        }
    }

    async fn on_message(&mut self, viewer: ChannelId, message: Message) {
        let now = Instant::now();
        let Some(v) = self.viewers.get_mut(&viewer) else {
            return;
        };
        match message {
            Message::VideoAck { id } => {
                v.stream.ack(id, now);
                self.follow_links();
                self.keyframe_wishes();
            }
            Message::KeyframeRequest => {
                v.stream.request_keyframe();
                self.keyframe_wishes();
            }
            Message::Input { events } => {
                if let Some(inj) = &self.injection {
                    inj.send(injection::Command::Event(input_id(viewer), events));
                }
            }
            Message::SelectDisplay { index }
                // Only a viewer in control may change what everyone sees.
                if v.permission == Permission::Control
                    && self.capture.as_ref().is_some_and(|c| c.display != index)
                => {
                    self.start_capture(index).await;
                    let displays = self.displays();
                    self.session.broadcast(&Message::Displays {
                        displays,
                        shared: index,
                    });
                    for v in self.viewers.values_mut() {
                        v.stream.request_keyframe();
                    }
                    self.keyframe_wishes();
                }
            Message::Chat { text } => {
                let name = v.name.clone();
                self.updates.send(HostUpdate::Chat { viewer, name, text });
            }
            _ => {}
        }
    }

    fn on_command(&mut self, command: UiCommand) {
        match command {
            UiCommand::Decide(viewer, permission) => self.session.decide(viewer, permission),
            UiCommand::SetPermission(viewer, permission) => {
                if let Some(v) = self.viewers.get_mut(&viewer) {
                    v.permission = permission;
                    self.session.set_permission(viewer, permission);
                    if let Some(inj) = &self.injection {
                        inj.send(injection::Command::SetPermission(
                            input_id(viewer),
                            gate_permission(permission),
                        ));
                    }
                    self.updates
                        .send(HostUpdate::PermissionChanged { viewer, permission });
                }
            }
            UiCommand::Remove(viewer) => self.session.remove(viewer),
            UiCommand::Chat(text) => self.session.broadcast(&Message::Chat { text }),
            UiCommand::Stop => self.session.end(),
            UiCommand::Files(f) => match f {
                FileCommand::Send(viewers, paths) => self.transfers.send_files(viewers, paths),
                FileCommand::Accept(v, id, folder) => self.transfers.accept(v, id, folder),
                FileCommand::Decline(v, id) => self.transfers.decline(v, id),
                FileCommand::Cancel(v, id) => self.transfers.cancel(v, id),
                FileCommand::Park(paths) => self.transfers.park(paths),
            },
        }
    }

    fn on_capture(&mut self, output: Option<Output>) {
        match output {
            Some(Output::Frame(frame)) => {
                let now = Instant::now();
                let id = self.next_frame_id;
                self.next_frame_id += 1;
                let targets: Vec<ChannelId> = self
                    .viewers
                    .iter_mut()
                    .filter_map(|(ch, v)| {
                        let verdict = v.stream.offer(id, frame.is_keyframe, frame.data.len(), now);
                        (verdict == Verdict::Send).then_some(*ch)
                    })
                    .collect();
                if let Some(c) = &self.capture
                    && !targets.is_empty()
                {
                    let captured = c.started + frame.timestamp;
                    self.session.send_to_many(
                        targets,
                        &Message::Video(VideoFrame {
                            id,
                            display: c.display,
                            width: u32::from(frame.width),
                            height: u32::from(frame.height),
                            keyframe: frame.is_keyframe,
                            captured_us: captured.as_micros() as u64,
                            data: frame.data,
                        }),
                    );
                }
                self.follow_links();
                self.keyframe_wishes();
            }
            Some(Output::Failed(e)) => {
                self.capture = None;
                self.updates
                    .send(HostUpdate::Warning(format!("screen sharing stopped: {e}")));
            }
            None => self.capture = None,
        }
    }

    /// Asks the encoder for a keyframe if a viewer needs one, at most every
    /// [`KEYFRAME_SPACING`].
    fn keyframe_wishes(&mut self) {
        let Some(capture) = &self.capture else { return };
        let now = Instant::now();
        if self
            .last_keyframe_request
            .is_some_and(|t| now.saturating_duration_since(t) < KEYFRAME_SPACING)
        {
            return;
        }
        let mut wanted = false;
        for v in self.viewers.values_mut() {
            wanted |= v.stream.take_keyframe_wish();
        }
        if wanted {
            capture.worker.request_keyframe();
            self.last_keyframe_request = Some(now);
        }
    }

    /// Sets the encoder to the slowest viewer's target.
    fn follow_links(&mut self) {
        let target = self
            .viewers
            .values()
            .map(|v| v.stream.target_bps())
            .min()
            .unwrap_or(self.config.max_bitrate_bps)
            .max(MIN_BITRATE);
        let diff = target.abs_diff(self.bitrate);
        if diff > self.bitrate / 20 {
            self.bitrate = target;
            if let Some(c) = &self.capture {
                c.worker.set_bitrate(target);
            }
        }
    }
}
