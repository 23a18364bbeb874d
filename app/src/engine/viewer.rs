//! The viewer's engine: joins a session, decodes the host's screen on its
//! own thread and keeps the newest picture for the UI.

use super::keys::take_viewer_key;
use super::meter::RateMeter;
use super::{LinkKind, Notify};
use fernsicht_capture::{DecodeError, Decoder};
use fernsicht_input::InputEvent;
use fernsicht_net::client::{
    ConnectOptions, LinkInfo, RelayAddr, Route, ViewerEvent, ViewerHandle, ViewerOptions,
    start_viewer,
};
use fernsicht_net::handshake::{AuthCode, HandshakeConfig};
use fernsicht_net::message::{DisplayDesc, Message, Permission, VideoFrame};
use fernsicht_net::transfer::TransferId;
use fernsicht_net::transfer::service::{ServiceConfig, TransferEvent, TransferService};
use fernsicht_net::{ChannelId, SessionNumber};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Frames waiting for the decoder, at most; beyond that the viewer drops
/// them and resumes at a keyframe instead of falling behind.
const DECODE_QUEUE: usize = 16;
/// Keyframe requests no more often than this.
const KEYFRAME_SPACING: Duration = Duration::from_millis(300);
/// Round-trip probes.
const PING_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct ViewerEngineConfig {
    pub relay: RelayAddr,
    /// How to reach and trust the relay.
    pub connect: ConnectOptions,
    /// The relay's family (other relays of the same service), tried when
    /// the link is lost and the relay does not take the session back.
    pub family: Vec<Route>,
    pub number: SessionNumber,
    pub password: Option<String>,
    pub name: String,
    /// Also write every received H.264 access unit to this file (an
    /// elementary stream any player can open).
    pub record: Option<PathBuf>,
    /// Take files the host sends (or parks) into this folder without asking.
    pub save_to: Option<PathBuf>,
    /// Take the host's offer of a direct connection.
    pub direct: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ViewerUpdate {
    /// How the link to the relay runs, and the relay's certificate.
    Link(LinkInfo),
    /// Show it: the helper reads it out to the host.
    Code(AuthCode),
    /// Keys confirmed: end-to-end encrypted. Waiting for consent.
    Connected,
    Allowed(Permission),
    PermissionChanged(Permission),
    Displays {
        displays: Vec<DisplayDesc>,
        shared: u16,
    },
    Encoder(String),
    Chat(String),
    /// The session moved to another path ("direct 192.0.2.7:4663").
    Path(String),
    /// The link dropped and the session waits for it (`true`), or it is
    /// back with nothing lost (`false`).
    Reconnecting(bool),
    /// The session is over; no more updates follow.
    Ended(String),
    /// File transfers: offers to answer, progress, results.
    Transfer(TransferEvent),
}

/// Gaps between video frames as they arrive, since the last
/// [`ViewerEngine::mark_video_gap`]: whether the picture keeps flowing
/// while a file transfer shares the link.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct VideoGap {
    pub frames: u64,
    pub largest: Duration,
}

#[derive(Default)]
struct GapMeter {
    last: Option<Instant>,
    since_mark: VideoGap,
}

/// A decoded picture of the host's screen, packed RGBA.
#[derive(Debug)]
pub struct RemoteFrame {
    pub id: u64,
    pub display: u16,
    pub width: u32,
    pub height: u32,
    pub rgba: Vec<u8>,
    /// The host's capture time of this picture (host session clock).
    pub captured_us: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ViewerStats {
    pub fps: f32,
    pub kbps: f32,
    pub rtt_ms: Option<f32>,
    pub link: LinkKind,
    pub encoder: Option<String>,
    /// Pictures decoded since the start.
    pub frames_decoded: u64,
    /// Video bytes received since the start.
    pub bytes_received: u64,
}

enum UiCommand {
    Input(Vec<Vec<u8>>),
    Chat(String),
    SelectDisplay(u16),
    Leave,
    SendFiles(Vec<PathBuf>),
    AcceptFiles(ChannelId, TransferId, PathBuf),
    DeclineFiles(ChannelId, TransferId),
    CancelTransfer(ChannelId, TransferId),
    Fetch(u64, PathBuf),
}

/// State shared with the decoder thread and the UI.
struct Shared {
    newest: Mutex<Option<Arc<RemoteFrame>>>,
    fresh: Mutex<bool>,
    decoded: AtomicU64,
    received: AtomicU64,
    fps: Mutex<RateMeter>,
    kbps: Mutex<RateMeter>,
    rtt_ms: Mutex<Option<f32>>,
    encoder: Mutex<Option<String>>,
    gaps: Mutex<GapMeter>,
    link: Mutex<LinkKind>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs a viewer session. Dropping it leaves the session.
pub struct ViewerEngine {
    commands: mpsc::UnboundedSender<UiCommand>,
    updates: mpsc::UnboundedReceiver<ViewerUpdate>,
    shared: Arc<Shared>,
}

impl ViewerEngine {
    /// Joins `config.number` on `runtime`.
    pub fn start(
        config: ViewerEngineConfig,
        runtime: &tokio::runtime::Handle,
        notify: Notify,
    ) -> Self {
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (up_tx, up_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            newest: Mutex::new(None),
            fresh: Mutex::new(false),
            decoded: AtomicU64::new(0),
            received: AtomicU64::new(0),
            fps: Mutex::default(),
            kbps: Mutex::default(),
            rtt_ms: Mutex::new(None),
            encoder: Mutex::new(None),
            gaps: Mutex::default(),
            link: Mutex::new(LinkKind::Relayed),
        });
        runtime.spawn(run(config, cmd_rx, up_tx, shared.clone(), notify));
        ViewerEngine {
            commands: cmd_tx,
            updates: up_rx,
            shared,
        }
    }

    pub fn try_update(&mut self) -> Option<ViewerUpdate> {
        self.updates.try_recv().ok()
    }

    /// The next update; `None` once the engine has stopped.
    pub async fn update(&mut self) -> Option<ViewerUpdate> {
        self.updates.recv().await
    }

    /// The newest decoded picture, if there is one the caller has not
    /// taken yet (latest wins: older ones are gone).
    pub fn take_frame(&self) -> Option<Arc<RemoteFrame>> {
        let mut fresh = lock(&self.shared.fresh);
        if !std::mem::take(&mut *fresh) {
            return None;
        }
        lock(&self.shared.newest).clone()
    }

    /// The newest decoded picture, taken or not.
    pub fn newest_frame(&self) -> Option<Arc<RemoteFrame>> {
        lock(&self.shared.newest).clone()
    }

    pub fn stats(&self) -> ViewerStats {
        let now = Instant::now();
        ViewerStats {
            fps: lock(&self.shared.fps).count_rate(now),
            kbps: lock(&self.shared.kbps).amount_rate(now) * 8.0 / 1000.0,
            rtt_ms: *lock(&self.shared.rtt_ms),
            link: *lock(&self.shared.link),
            encoder: lock(&self.shared.encoder).clone(),
            frames_decoded: self.shared.decoded.load(Ordering::Relaxed),
            bytes_received: self.shared.received.load(Ordering::Relaxed),
        }
    }

    /// Sends keyboard and mouse events (the host drops them unless it
    /// allowed control).
    pub fn send_input(&self, events: &[InputEvent]) {
        let encoded: Vec<Vec<u8>> = events.iter().filter_map(|e| e.to_bytes().ok()).collect();
        if !encoded.is_empty() {
            let _ = self.commands.send(UiCommand::Input(encoded));
        }
    }

    pub fn chat(&self, text: String) {
        let _ = self.commands.send(UiCommand::Chat(text));
    }

    pub fn select_display(&self, index: u16) {
        let _ = self.commands.send(UiCommand::SelectDisplay(index));
    }

    pub fn leave(&self) {
        let _ = self.commands.send(UiCommand::Leave);
    }

    /// Offers files and folders to the host.
    pub fn send_files(&self, paths: Vec<PathBuf>) {
        let _ = self.commands.send(UiCommand::SendFiles(paths));
    }

    /// Takes the files the host offers into `folder`.
    pub fn accept_files(&self, peer: ChannelId, id: TransferId, folder: PathBuf) {
        let _ = self.commands.send(UiCommand::AcceptFiles(peer, id, folder));
    }

    pub fn decline_files(&self, peer: ChannelId, id: TransferId) {
        let _ = self.commands.send(UiCommand::DeclineFiles(peer, id));
    }

    pub fn cancel_transfer(&self, peer: ChannelId, id: TransferId) {
        let _ = self.commands.send(UiCommand::CancelTransfer(peer, id));
    }

    /// Downloads a file the host parked in the relay's store.
    pub fn fetch(&self, file: u64, folder: PathBuf) {
        let _ = self.commands.send(UiCommand::Fetch(file, folder));
    }

    /// Starts measuring video gaps afresh.
    pub fn mark_video_gap(&self) {
        let mut g = lock(&self.shared.gaps);
        g.since_mark = VideoGap::default();
    }

    /// Video frames and the largest gap between two since the mark.
    pub fn video_gap(&self) -> VideoGap {
        lock(&self.shared.gaps).since_mark
    }
}

/// What the decoder thread reports back.
enum Decoded {
    Frame(u64),
    NeedKeyframe(u64),
}

async fn run(
    config: ViewerEngineConfig,
    mut commands: mpsc::UnboundedReceiver<UiCommand>,
    updates: mpsc::UnboundedSender<ViewerUpdate>,
    shared: Arc<Shared>,
    notify: Notify,
) {
    let emit = |u: ViewerUpdate| {
        let _ = updates.send(u);
        notify();
    };
    let key = match tokio::task::spawn_blocking(take_viewer_key).await {
        Ok(Ok(k)) => k,
        Ok(Err(e)) => return emit(ViewerUpdate::Ended(format!("cannot make a key pair: {e}"))),
        Err(e) => return emit(ViewerUpdate::Ended(format!("cannot make a key pair: {e}"))),
    };
    let mut record = match &config.record {
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => Some(std::io::BufWriter::new(f)),
            Err(e) => {
                return emit(ViewerUpdate::Ended(format!(
                    "cannot write {}: {e}",
                    path.display()
                )));
            }
        },
        None => None,
    };
    let session = start_viewer(ViewerOptions {
        family: config.family.clone(),
        relay: config.relay.clone(),
        connect: config.connect.clone(),
        number: config.number,
        handshake: HandshakeConfig::with_password(config.password.as_deref()),
        name: config.name.clone(),
        key,
        direct: config.direct,
    })
    .await;
    let mut session = match session {
        Ok(s) => s,
        Err(e) => {
            return emit(ViewerUpdate::Ended(format!(
                "joining session {} via {}: {}",
                config.number,
                config.relay,
                fernsicht_net::error_chain(&e)
            )));
        }
    };
    emit(ViewerUpdate::Link(session.link.clone()));
    let handle = session.handle.clone();
    let channel = session.channel;
    let (transfers, mut transfer_events) = TransferService::spawn(
        Arc::new(session.handle.clone()),
        ServiceConfig {
            auto_accept: config.save_to.clone(),
            ..ServiceConfig::default()
        },
    );
    let (decode_tx, mut decoded) = spawn_decoder(shared.clone(), notify.clone());
    let mut expected: Option<u64> = None;
    let mut last_keyframe_request: Option<Instant> = None;
    let mut pings: Vec<(u64, Instant)> = Vec::new();
    let mut next_ping = 0u64;
    let mut ping = tokio::time::interval(PING_EVERY);
    let mut request_keyframe = |handle: &ViewerHandle| {
        let now = Instant::now();
        if last_keyframe_request
            .is_none_or(|t| now.saturating_duration_since(t) >= KEYFRAME_SPACING)
        {
            handle.send(Message::KeyframeRequest);
            last_keyframe_request = Some(now);
        }
    };
    loop {
        tokio::select! {
            event = session.events.recv() => {
                let Some(event) = event else { break };
                let Some(event) = transfers.viewer_event(channel, event) else { continue };
                match event {
                    ViewerEvent::Code(code) => emit(ViewerUpdate::Code(code)),
                    ViewerEvent::Connected => emit(ViewerUpdate::Connected),
                    ViewerEvent::Allowed(p) => emit(ViewerUpdate::Allowed(p)),
                    ViewerEvent::PermissionChanged(p) => emit(ViewerUpdate::PermissionChanged(p)),
                    ViewerEvent::Message(Message::Video(frame)) => {
                        let now = Instant::now();
                        {
                            let mut g = lock(&shared.gaps);
                            if let Some(last) = g.last {
                                let gap = now.saturating_duration_since(last);
                                g.since_mark.largest = g.since_mark.largest.max(gap);
                            }
                            g.last = Some(now);
                            g.since_mark.frames += 1;
                        }
                        lock(&shared.kbps).record(now, frame.data.len() as u64);
                        shared.received.fetch_add(frame.data.len() as u64, Ordering::Relaxed);
                        if let Some(r) = &mut record
                            && let Err(e) = r.write_all(&frame.data)
                        {
                            handle.leave();
                            emit(ViewerUpdate::Ended(format!("cannot record the stream: {e}")));
                            record = None;
                        }
                        // A gap means the host skipped frames for us: only a
                        // keyframe can follow it.
                        let in_sequence = expected.is_none_or(|e| e == frame.id);
                        expected = Some(frame.id + 1);
                        if !in_sequence && !frame.keyframe {
                            request_keyframe(&handle);
                            continue;
                        }
                        if decode_tx.try_send(frame).is_err() {
                            // The decoder is behind: drop and resume at a keyframe.
                            expected = None;
                            request_keyframe(&handle);
                        }
                    }
                    ViewerEvent::Message(Message::Displays { displays, shared: index }) => {
                        emit(ViewerUpdate::Displays { displays, shared: index });
                    }
                    ViewerEvent::Message(Message::StreamInfo { encoder }) => {
                        *lock(&shared.encoder) = Some(encoder.clone());
                        emit(ViewerUpdate::Encoder(encoder));
                    }
                    ViewerEvent::Message(Message::Chat { text }) => emit(ViewerUpdate::Chat(text)),
                    ViewerEvent::Message(Message::Pong { id }) => {
                        if let Some(pos) = pings.iter().position(|(p, _)| *p == id) {
                            let rtt = pings[pos].1.elapsed().as_secs_f32() * 1000.0;
                            pings.drain(..=pos);
                            *lock(&shared.rtt_ms) = Some(rtt);
                        }
                    }
                    ViewerEvent::Message(_) => {}
                    ViewerEvent::Reconnecting => emit(ViewerUpdate::Reconnecting(true)),
                    ViewerEvent::Resumed => emit(ViewerUpdate::Reconnecting(false)),
                    ViewerEvent::Path(path) => {
                        *lock(&shared.link) = LinkKind::of(path);
                        emit(ViewerUpdate::Path(path.to_string()));
                    }
                    ViewerEvent::Ended(end) => {
                        emit(ViewerUpdate::Ended(end.to_string()));
                        break;
                    }
                    _ => {}
                }
            }
            Some(d) = decoded.recv() => match d {
                Decoded::Frame(id) => handle.send(Message::VideoAck { id }),
                Decoded::NeedKeyframe(id) => {
                    handle.send(Message::VideoAck { id });
                    request_keyframe(&handle);
                }
            },
            command = commands.recv() => match command {
                Some(UiCommand::Input(events)) => {
                    for events in events {
                        handle.send(Message::Input { events });
                    }
                }
                Some(UiCommand::Chat(text)) => handle.send(Message::Chat { text }),
                Some(UiCommand::SelectDisplay(index)) => handle.send(Message::SelectDisplay { index }),
                Some(UiCommand::Leave) | None => handle.leave(),
                Some(UiCommand::SendFiles(paths)) => transfers.send_files(vec![channel], paths),
                Some(UiCommand::AcceptFiles(peer, id, folder)) => transfers.accept(peer, id, folder),
                Some(UiCommand::DeclineFiles(peer, id)) => transfers.decline(peer, id),
                Some(UiCommand::CancelTransfer(peer, id)) => transfers.cancel(peer, id),
                Some(UiCommand::Fetch(file, folder)) => transfers.fetch(file, folder),
            },
            Some(event) = transfer_events.recv() => emit(ViewerUpdate::Transfer(event)),
            _ = ping.tick() => {
                pings.push((next_ping, Instant::now()));
                if pings.len() > 8 {
                    pings.remove(0);
                }
                handle.send(Message::Ping { id: next_ping });
                next_ping += 1;
            }
        }
    }
    if let Some(mut r) = record {
        let _ = r.flush();
    }
}

/// Starts the decoder thread: it decodes frames in order, publishes each
/// picture as the newest, and reports what it did.
fn spawn_decoder(
    shared: Arc<Shared>,
    notify: Notify,
) -> (mpsc::Sender<VideoFrame>, mpsc::UnboundedReceiver<Decoded>) {
    let (tx, mut rx) = mpsc::channel::<VideoFrame>(DECODE_QUEUE);
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let spawned = std::thread::Builder::new()
        .name("decoder".into())
        .spawn(move || {
            let mut decoder = match Decoder::new() {
                Ok(d) => d,
                Err(e) => {
                    tracing::error!(error = %e, "no H.264 decoder");
                    return;
                }
            };
            while let Some(frame) = rx.blocking_recv() {
                let id = frame.id;
                let report = match decoder.decode(&frame.data) {
                    Ok(Some(picture)) => {
                        *lock(&shared.newest) = Some(Arc::new(RemoteFrame {
                            id,
                            display: frame.display,
                            width: u32::from(picture.width),
                            height: u32::from(picture.height),
                            rgba: picture.pixels,
                            captured_us: frame.captured_us,
                        }));
                        *lock(&shared.fresh) = true;
                        shared.decoded.fetch_add(1, Ordering::Relaxed);
                        lock(&shared.fps).record(Instant::now(), 1);
                        notify();
                        Decoded::Frame(id)
                    }
                    Ok(None) => Decoded::Frame(id),
                    Err(DecodeError::NeedKeyframe) => Decoded::NeedKeyframe(id),
                    Err(e) => {
                        tracing::debug!(error = %e, "frame not decoded");
                        Decoded::NeedKeyframe(id)
                    }
                };
                if out_tx.send(report).is_err() {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the decoder thread");
    }
    (tx, out_rx)
}
