//! The host's session: registers with the relay, runs one handshake per
//! viewer, asks the person for consent, and carries messages.

mod commands;
mod frames;
mod paths;
mod punch;

use frames::{ViewerFailure, open, seal, seal_or_err, send, send_or_fail};

use super::limiter::HandshakeLimiter;
use super::link::{self, HANDSHAKE_TIMEOUT, KEEPALIVE, LinkWriter, Reader};
use super::path::{self, DirectPath, PathRead, SessionPath};
use super::resume::{MAX_FRUITLESS, Phase, RESUME_WINDOW, Resumable, ResumeMsg};
use super::{ClientError, RelayAddr, SessionEnd};
use crate::control::{ClientRequest, RELAY_PROTOCOL, RelayEvent};
use crate::direct::{Accepted, DirectListener, DirectOptions, PathKey, Registry};
use crate::frame::{ChannelId, Frame, FrameType};
use crate::handshake::{
    AbortReason, AuthCode, HandshakeConfig, HandshakeError, HostExpectFinished, HostExpectReveal,
    HostExpectViewerHello, HostHandshake, abort_frame, as_abort,
};
use crate::message::{ByeReason, Message, Permission};
use crate::number::SessionNumber;
use crate::record::{Opener, Sealer};
use std::collections::HashMap;
use std::time::Instant;
use tokio::sync::mpsc;

/// Handshakes in progress at once; more joins wait for the relay to retry.
const MAX_HANDSHAKES: usize = 8;

#[derive(Debug, Clone)]
pub struct HostOptions {
    pub relay: RelayAddr,
    /// How to reach and trust the relay.
    pub connect: super::ConnectOptions,
    /// The other relays of the same service (its family): tried in turn
    /// when the link to `relay` is lost and it does not take us back, since
    /// a sibling takes over the sessions of a relay that died.
    pub family: Vec<super::Route>,
    pub handshake: HandshakeConfig,
    /// Accept direct connections from allowed viewers; `None`: relay only.
    pub direct: Option<DirectOptions>,
}

/// What happens in a host's session, for the UI to show.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostEvent {
    /// A viewer completed the handshake and waits for the person's
    /// decision. Show the name and the code; call [`HostHandle::decide`].
    ViewerRequest {
        viewer: ChannelId,
        name: String,
        code: AuthCode,
    },
    /// The person allowed the viewer.
    ViewerConnected {
        viewer: ChannelId,
        name: String,
        permission: Permission,
    },
    /// A viewer is gone (left, removed, denied, dropped).
    ViewerLeft { viewer: ChannelId, reason: String },
    /// A viewer's handshake failed; it was removed.
    HandshakeFailed { viewer: ChannelId, error: String },
    /// A message from an allowed viewer.
    Message { viewer: ChannelId, message: Message },
    /// A viewer's session moved to another path.
    ViewerPath {
        viewer: ChannelId,
        path: SessionPath,
    },
    /// Our link to the relay dropped; the session waits for it to return.
    Reconnecting,
    /// The link to the relay is back (each viewer then resumes).
    Reconnected,
    /// A viewer's link dropped; its place is kept for it.
    ViewerReconnecting { viewer: ChannelId },
    /// The viewer is back and proved it still holds the session keys;
    /// nothing sent meanwhile is lost.
    ViewerResumed { viewer: ChannelId },
    /// The session is over; no more events follow.
    Ended(SessionEnd),
    /// An answer of the relay's file store.
    Store(crate::transfer::store::StoreEvent),
}

#[derive(Debug)]
enum Command {
    Decide {
        viewer: ChannelId,
        permission: Option<Permission>,
    },
    SetPermission {
        viewer: ChannelId,
        permission: Permission,
    },
    Remove {
        viewer: ChannelId,
    },
    /// `encoded` is the message encoded once, sealed per viewer.
    Send {
        viewers: Option<Vec<ChannelId>>,
        encoded: Vec<u8>,
    },
    End,
    /// A request to the relay's file store.
    Store(crate::transfer::store::StoreRequest),
}

/// Controls a running host session. Cheap to clone.
#[derive(Clone)]
pub struct HostHandle {
    tx: mpsc::UnboundedSender<Command>,
}

impl HostHandle {
    fn send(&self, c: Command) {
        // If the session task is gone the session has ended, and its Ended
        // event says why; nothing left to do here.
        let _ = self.tx.send(c);
    }

    /// Allows a waiting viewer with `permission`, or denies it with `None`.
    pub fn decide(&self, viewer: ChannelId, permission: Option<Permission>) {
        self.send(Command::Decide { viewer, permission });
    }

    pub fn set_permission(&self, viewer: ChannelId, permission: Permission) {
        self.send(Command::SetPermission { viewer, permission });
    }

    pub fn remove(&self, viewer: ChannelId) {
        self.send(Command::Remove { viewer });
    }

    /// Sends to one allowed viewer.
    pub fn send_to(&self, viewer: ChannelId, message: &Message) {
        self.send_to_many(vec![viewer], message);
    }

    /// Sends one message to several allowed viewers, encoding it once (a
    /// video frame goes to every viewer that keeps up).
    pub fn send_to_many(&self, viewers: Vec<ChannelId>, message: &Message) {
        self.send(Command::Send {
            viewers: Some(viewers),
            encoded: message.encode(),
        });
    }

    /// Sends to every allowed viewer.
    pub fn broadcast(&self, message: &Message) {
        self.send(Command::Send {
            viewers: None,
            encoded: message.encode(),
        });
    }

    /// Stops sharing: says goodbye to every viewer and ends the session.
    pub fn end(&self) {
        self.send(Command::End);
    }

    /// Sends a request to the relay's file store (answers come as
    /// [`HostEvent::Store`]).
    pub fn store(&self, request: crate::transfer::store::StoreRequest) {
        self.send(Command::Store(request));
    }
}

pub struct HostSession {
    pub number: SessionNumber,
    /// How the link to the relay runs.
    pub link: super::LinkInfo,
    /// Where viewers may connect directly, if anywhere; the session still
    /// runs without, through the relay.
    pub direct: Result<std::net::SocketAddr, String>,
    pub handle: HostHandle,
    pub events: mpsc::UnboundedReceiver<HostEvent>,
}

/// Connects to the relay and registers; returns once the session number is
/// known.
pub async fn start_host(options: HostOptions) -> Result<HostSession, ClientError> {
    let register = ClientRequest::Register {
        protocol: RELAY_PROTOCOL,
    };
    let answer = link::ask(&(options.relay.clone(), options.connect.clone()), &register).await?;
    let (reader, writer, link) = (answer.reader, answer.writer, answer.info);
    let number = match answer.event {
        RelayEvent::Registered { number } => number,
        RelayEvent::Closed { reason } => return Err(ClientError::RelayClosed(reason)),
        other => {
            return Err(ClientError::RelayProtocol(format!(
                "answered registration with {other:?}"
            )));
        }
    };
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let (path_tx, path_rx) = path::reads();
    let registry = Registry::default();
    let (accepted_tx, accepted_rx) = mpsc::unbounded_channel();
    let (punch_tx, punch_rx) = mpsc::unbounded_channel();
    let (direct, candidates) = match &options.direct {
        None => (Err("direct connections are off".to_owned()), Vec::new()),
        Some(o) => match DirectListener::bind(o).await {
            Ok(listener) => {
                let candidates = listener.candidates();
                let at = listener.local_addr().map_err(|e| e.to_string());
                listener.spawn(registry.clone(), accepted_tx.clone());
                (at, candidates)
            }
            Err(e) => (Err(crate::error_chain(&e)), Vec::new()),
        },
    };
    let host = Host {
        config: options.handshake,
        relay: options.relay.clone(),
        connect: options.connect.clone(),
        family: options.family.clone(),
        number,
        token: None,
        progress: false,
        fruitless: 0,
        writer,
        events: ev_tx,
        viewers: HashMap::new(),
        deadlines: HashMap::new(),
        limiter: HandshakeLimiter::new(),
        registry,
        candidates,
        path_tx,
        punch: options.direct.as_ref().is_some_and(|o| o.punch),
        punches: HashMap::new(),
        punch_tx,
        accepted_tx,
    };
    tokio::spawn(host.run(reader, cmd_rx, accepted_rx, path_rx, punch_rx));
    Ok(HostSession {
        number,
        link,
        direct,
        handle: HostHandle { tx: cmd_tx },
        events: ev_rx,
    })
}

/// A viewer's state on the host.
enum Slot {
    Hello(HostExpectViewerHello),
    Reveal(HostExpectReveal),
    Finished(HostExpectFinished),
    /// Keys confirmed; waiting for the person to allow or deny.
    Pending(Link),
    Active(Link, Permission),
}

struct Link {
    sealer: Sealer,
    opener: Opener,
    name: String,
    path_key: PathKey,
    /// Set once the viewer's session moved off the relay.
    direct: Option<DirectPath>,
    /// The viewer's `PathSwitch` came before its direct connection got here.
    peer_switched: bool,
    resume: Resumable,
}

impl Link {
    /// Where this viewer's sealed frames go: its direct path once there is
    /// one, else the relay.
    fn out<'a>(&'a self, relay: &'a LinkWriter) -> &'a LinkWriter {
        self.direct.as_ref().map_or(relay, |d| &d.writer)
    }
}

impl Slot {
    fn handshaking(&self) -> bool {
        matches!(self, Slot::Hello(_) | Slot::Reveal(_) | Slot::Finished(_))
    }
}

struct Host {
    config: HandshakeConfig,
    relay: RelayAddr,
    connect: super::ConnectOptions,
    family: Vec<super::Route>,
    number: SessionNumber,
    /// The relay's token for taking our place again after a dropped link.
    token: Option<[u8; 32]>,
    /// A sealed frame arrived since the last reconnection.
    progress: bool,
    /// Reconnections in a row without progress.
    fruitless: u32,
    writer: LinkWriter,
    events: mpsc::UnboundedSender<HostEvent>,
    viewers: HashMap<ChannelId, Slot>,
    /// When each handshake in progress must be complete.
    deadlines: HashMap<ChannelId, Instant>,
    limiter: HandshakeLimiter,
    /// Path keys of the viewers whose direct connections we accept.
    registry: Registry,
    /// Addresses offered to allowed viewers; empty: no direct paths.
    candidates: Vec<std::net::SocketAddr>,
    /// Where direct paths' readers deliver frames.
    path_tx: mpsc::Sender<PathRead>,
    /// Offer allowed viewers a QUIC path punched through NATs.
    punch: bool,
    /// Each viewer's QUIC endpoint until a direct path is up.
    punches: HashMap<ChannelId, crate::punch::HostPunch>,
    /// Where prepared endpoints arrive.
    punch_tx: mpsc::UnboundedSender<punch::PunchReady>,
    /// Where proven direct connections (TCP and QUIC) arrive.
    accepted_tx: mpsc::UnboundedSender<Accepted>,
}

/// What the session loop should do after handling an input.
enum Flow {
    Continue,
    Stop(SessionEnd),
}

impl Host {
    fn emit(&self, e: HostEvent) {
        let _ = self.events.send(e);
    }

    async fn run(
        mut self,
        mut reader: Reader,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut accepted: mpsc::UnboundedReceiver<Accepted>,
        mut path_reads: mpsc::Receiver<PathRead>,
        mut punch_ready: mpsc::UnboundedReceiver<punch::PunchReady>,
    ) {
        let mut keepalive =
            tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
        let mut handshake_check = tokio::time::interval(std::time::Duration::from_secs(1));
        let mut ack_tick = tokio::time::interval(std::time::Duration::from_secs(1));
        let end = loop {
            let flow = tokio::select! {
                frame = reader.read_frame() => match frame {
                    Ok(Some(frame)) => self.on_frame(frame).await,
                    Ok(None) => Err(ClientError::Transport(crate::transport::TransportError::Io(
                        std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the relay closed the connection"),
                    ))),
                    Err(e) => Err(ClientError::from(e)),
                },
                _ = ack_tick.tick() => self.acknowledge().await,
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd).await,
                    // Every handle dropped: nobody can control the session.
                    None => self.on_command(Command::End).await,
                },
                _ = keepalive.tick() => self
                    .writer
                    .send(&ClientRequest::Ping { id: 0 }.to_frame())
                    .await
                    .map(|_| Flow::Continue),
                _ = handshake_check.tick() => self.expire_handshakes().await,
                Some(a) = accepted.recv() => self.on_direct(a).await,
                Some((ch, read)) = path_reads.recv() => self.on_path_read(ch, read).await,
                Some(ready) = punch_ready.recv() => self.on_punch_ready(ready).await,
            };
            match flow {
                Ok(Flow::Continue) => {}
                Ok(Flow::Stop(end)) => break end,
                Err(ClientError::Transport(e)) if self.fruitless >= MAX_FRUITLESS => {
                    break SessionEnd::Failed(format!(
                        "the connection to the relay keeps dropping ({MAX_FRUITLESS} reconnections without progress): {}",
                        crate::error_chain(&e)
                    ));
                }
                Err(ClientError::Transport(e)) if self.token.is_some() => {
                    tracing::info!("relay link lost ({}); reconnecting", crate::error_chain(&e));
                    self.fruitless = if std::mem::take(&mut self.progress) {
                        0
                    } else {
                        self.fruitless + 1
                    };
                    match self.reconnect().await {
                        Ok(r) => reader = r,
                        Err(e) => break SessionEnd::Failed(crate::error_chain(&e)),
                    }
                }
                Err(e) => break SessionEnd::Failed(crate::error_chain(&e)),
            }
        };
        let Self {
            writer,
            events,
            viewers,
            ..
        } = self;
        for slot in viewers.into_values() {
            if let Slot::Pending(link) | Slot::Active(link, _) = slot
                && let Some(direct) = link.direct
            {
                direct.finish().await;
            }
        }
        writer.finish().await;
        let _ = events.send(HostEvent::Ended(end));
    }

    async fn on_frame(&mut self, frame: Frame) -> Result<Flow, ClientError> {
        if frame.header.frame_type == FrameType::Control {
            let event = RelayEvent::from_frame(&frame)
                .map_err(|e| ClientError::RelayProtocol(crate::error_chain(&e)))?;
            return self.on_relay_event(event).await;
        }
        let ch = frame.header.channel;
        let Some(slot) = self.viewers.remove(&ch) else {
            // Late frame of a viewer that is already gone.
            return Ok(Flow::Continue);
        };
        match self.advance(ch, slot, frame).await {
            Ok(Some(slot)) => {
                if !slot.handshaking() {
                    self.deadlines.remove(&ch);
                }
                self.viewers.insert(ch, slot);
            }
            Ok(None) => {}
            Err(ViewerFailure::Handshake(e)) => {
                self.limiter.failure(Instant::now());
                let reason = if matches!(e, HandshakeError::Aborted(_)) {
                    None
                } else {
                    Some(e.abort_reason())
                };
                self.drop_viewer(ch, reason).await?;
                self.emit(HostEvent::HandshakeFailed {
                    viewer: ch,
                    error: crate::error_chain(&e),
                });
            }
            // Mid-frame the viewer's state is spent: it cannot fall back.
            Err(ViewerFailure::Stream(e) | ViewerFailure::DirectBroke(e)) => {
                self.drop_viewer(ch, None).await?;
                self.emit(HostEvent::ViewerLeft {
                    viewer: ch,
                    reason: e,
                });
            }
            Err(ViewerFailure::Link(e)) => return Err(e),
        }
        Ok(Flow::Continue)
    }

    /// Feeds a viewer's frame to its state; `None` means the viewer is gone.
    async fn advance(
        &mut self,
        ch: ChannelId,
        slot: Slot,
        frame: Frame,
    ) -> Result<Option<Slot>, ViewerFailure> {
        if slot.handshaking()
            && let Some(reason) = as_abort(&frame)
        {
            return Err(ViewerFailure::Handshake(HandshakeError::Aborted(reason)));
        }
        match slot {
            Slot::Hello(state) => {
                let (next, out) = state.receive(&frame, &mut rand::thread_rng())?;
                self.writer.send(&out).await?;
                Ok(Some(Slot::Reveal(next)))
            }
            Slot::Reveal(state) => Ok(Some(Slot::Finished(state.receive(&frame)?))),
            Slot::Finished(state) => {
                let (est, out) = state.receive(frame)?;
                self.writer.send(&out).await?;
                self.emit(HostEvent::ViewerRequest {
                    viewer: ch,
                    name: est.peer_name.clone(),
                    code: est.code,
                });
                Ok(Some(Slot::Pending(Link {
                    sealer: est.sealer,
                    opener: est.opener,
                    name: est.peer_name,
                    resume: Resumable::new(est.path_key.clone(), ch),
                    path_key: est.path_key,
                    direct: None,
                    peer_switched: false,
                })))
            }
            Slot::Pending(mut link) => {
                let Some(msg) = self.session_frame(ch, &mut link, frame).await? else {
                    return Ok(Some(Slot::Pending(link)));
                };
                // Before consent, a viewer can only leave.
                if let Message::Bye { reason } = msg {
                    self.viewer_gone(ch, reason.to_string()).await?;
                    return Ok(None);
                }
                Ok(Some(Slot::Pending(link)))
            }
            Slot::Active(mut link, permission) => {
                let Some(msg) = self.session_frame(ch, &mut link, frame).await? else {
                    return Ok(Some(Slot::Active(link, permission)));
                };
                match msg {
                    Message::Received { next_seq } => link.resume.acknowledged(next_seq),
                    Message::Bye { reason } => {
                        self.viewer_gone(ch, reason.to_string()).await?;
                        return Ok(None);
                    }
                    Message::Ping { id } => {
                        let f = seal(&mut link, &Message::Pong { id })?;
                        send(&self.writer, &link, f).await?;
                    }
                    Message::PunchAnswer(answer) => self.on_punch_answer(ch, &answer),
                    Message::PathSwitch => match &mut link.direct {
                        // Its last frame on the relay: read the direct path.
                        Some(direct) => direct.open(),
                        // The proven connection is still on its way from
                        // the listener: open it as soon as it is here.
                        None if self.registry.claimed(ch) => link.peer_switched = true,
                        None => {
                            return Err(ViewerFailure::Stream(
                                "the viewer switched to a direct path that does not exist".into(),
                            ));
                        }
                    },
                    message => self.emit(HostEvent::Message {
                        viewer: ch,
                        message,
                    }),
                }
                Ok(Some(Slot::Active(link, permission)))
            }
        }
    }

    /// A viewer said goodbye: tell the relay to drop it, tell the UI.
    async fn viewer_gone(&mut self, ch: ChannelId, reason: String) -> Result<(), ClientError> {
        self.writer
            .send(&ClientRequest::RemoveViewer { channel: ch.0 }.to_frame())
            .await?;
        self.emit(HostEvent::ViewerLeft { viewer: ch, reason });
        Ok(())
    }

    /// Removes a viewer at the relay, after an abort if one is due.
    async fn drop_viewer(
        &mut self,
        ch: ChannelId,
        abort: Option<AbortReason>,
    ) -> Result<(), ClientError> {
        self.viewers.remove(&ch);
        self.deadlines.remove(&ch);
        self.registry.remove(ch);
        self.punches.remove(&ch);
        if let Some(reason) = abort {
            self.writer.send(&abort_frame(reason, ch, 0)).await?;
        }
        self.writer
            .send(&ClientRequest::RemoveViewer { channel: ch.0 }.to_frame())
            .await
    }

    async fn on_relay_event(&mut self, event: RelayEvent) -> Result<Flow, ClientError> {
        match event {
            RelayEvent::ViewerJoined { channel } => {
                let ch = ChannelId(channel);
                let handshaking = self.viewers.values().filter(|s| s.handshaking()).count();
                if self.limiter.check(Instant::now()).is_err() || handshaking >= MAX_HANDSHAKES {
                    self.drop_viewer(ch, Some(AbortReason::RateLimited)).await?;
                    self.emit(HostEvent::HandshakeFailed {
                        viewer: ch,
                        error: "too many failed connection attempts: refused for now".into(),
                    });
                    return Ok(Flow::Continue);
                }
                let (state, hello) =
                    HostHandshake::start(&self.config, ch, &mut rand::thread_rng());
                self.writer.send(&hello).await?;
                self.viewers.insert(ch, Slot::Hello(state));
                self.deadlines
                    .insert(ch, Instant::now() + HANDSHAKE_TIMEOUT);
            }
            RelayEvent::ViewerLeft { channel, reason } => {
                let ch = ChannelId(channel);
                self.deadlines.remove(&ch);
                self.registry.remove(ch);
                self.punches.remove(&ch);
                if let Some(slot) = self.viewers.remove(&ch) {
                    if slot.handshaking() {
                        // Abandoned handshakes count as failures: see the
                        // limiter's doc.
                        self.limiter.failure(Instant::now());
                    }
                    self.emit(HostEvent::ViewerLeft {
                        viewer: ch,
                        reason: reason.to_string(),
                    });
                }
            }
            RelayEvent::Closed { reason } => return Ok(Flow::Stop(SessionEnd::Relay(reason))),
            RelayEvent::Ping { id } => {
                self.writer
                    .send(&ClientRequest::Pong { id }.to_frame())
                    .await?;
            }
            RelayEvent::Pong { .. } => {}
            RelayEvent::Store(event) => self.emit(HostEvent::Store(event)),
            RelayEvent::ResumeToken { token } => self.token = Some(token),
            RelayEvent::PeerAway { channel } => {
                let ch = ChannelId(channel);
                match self.viewers.get_mut(&ch) {
                    Some(Slot::Pending(link) | Slot::Active(link, _)) if link.direct.is_none() => {
                        link.resume.resuming = Some(Phase::Away);
                        self.emit(HostEvent::ViewerReconnecting { viewer: ch });
                    }
                    Some(slot) if slot.handshaking() => {
                        // A handshake cannot resume: the viewer starts over.
                        self.drop_viewer(ch, None).await?;
                        self.emit(HostEvent::HandshakeFailed {
                            viewer: ch,
                            error: "the viewer's connection dropped during the handshake".into(),
                        });
                    }
                    _ => {}
                }
            }
            RelayEvent::PeerBack { channel } => {
                let ch = ChannelId(channel);
                if let Some(Slot::Pending(link) | Slot::Active(link, _)) = self.viewers.get_mut(&ch)
                    && link.direct.is_none()
                {
                    let hello = link.resume.hello();
                    self.writer.send_owned(hello).await?;
                }
            }
            other => {
                return Err(ClientError::RelayProtocol(format!(
                    "unexpected event {other:?}"
                )));
            }
        }
        Ok(Flow::Continue)
    }

    /// Ends handshakes that took too long; they count as failures.
    async fn expire_handshakes(&mut self) -> Result<Flow, ClientError> {
        let now = Instant::now();
        let expired: Vec<ChannelId> = self
            .deadlines
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(ch, _)| *ch)
            .collect();
        for ch in expired {
            self.limiter.failure(now);
            self.drop_viewer(ch, Some(AbortReason::ProtocolError))
                .await?;
            self.emit(HostEvent::HandshakeFailed {
                viewer: ch,
                error: format!(
                    "the viewer did not complete the secure connection within {} s",
                    HANDSHAKE_TIMEOUT.as_secs()
                ),
            });
        }
        Ok(Flow::Continue)
    }
}
