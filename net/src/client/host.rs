//! The host's session: registers with the relay, runs one handshake per
//! viewer, asks the person for consent, and carries messages.

use super::limiter::HandshakeLimiter;
use super::link::{self, HANDSHAKE_TIMEOUT, KEEPALIVE, LinkWriter, Reader};
use super::{ClientError, RelayAddr, SessionEnd};
use crate::control::{ClientRequest, RELAY_PROTOCOL, RelayEvent};
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
    pub handshake: HandshakeConfig,
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
    /// The session is over; no more events follow.
    Ended(SessionEnd),
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
}

pub struct HostSession {
    pub number: SessionNumber,
    /// How the link to the relay runs.
    pub link: super::LinkInfo,
    pub handle: HostHandle,
    pub events: mpsc::UnboundedReceiver<HostEvent>,
}

/// Connects to the relay and registers; returns once the session number is
/// known.
pub async fn start_host(options: HostOptions) -> Result<HostSession, ClientError> {
    let (mut reader, writer, link) = link::connect(&options.relay, &options.connect).await?;
    writer
        .send(
            &ClientRequest::Register {
                protocol: RELAY_PROTOCOL,
            }
            .to_frame(),
        )
        .await?;
    let number = match link::first_event(&mut reader, &options.relay).await? {
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
    let host = Host {
        config: options.handshake,
        writer,
        events: ev_tx,
        viewers: HashMap::new(),
        deadlines: HashMap::new(),
        limiter: HandshakeLimiter::new(),
    };
    tokio::spawn(host.run(reader, cmd_rx));
    Ok(HostSession {
        number,
        link,
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
}

impl Slot {
    fn handshaking(&self) -> bool {
        matches!(self, Slot::Hello(_) | Slot::Reveal(_) | Slot::Finished(_))
    }
}

struct Host {
    config: HandshakeConfig,
    writer: LinkWriter,
    events: mpsc::UnboundedSender<HostEvent>,
    viewers: HashMap<ChannelId, Slot>,
    /// When each handshake in progress must be complete.
    deadlines: HashMap<ChannelId, Instant>,
    limiter: HandshakeLimiter,
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

    async fn run(mut self, mut reader: Reader, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut keepalive =
            tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
        let mut handshake_check = tokio::time::interval(std::time::Duration::from_secs(1));
        let end = loop {
            let flow = tokio::select! {
                frame = reader.read_frame() => match frame {
                    Ok(Some(frame)) => self.on_frame(frame).await,
                    Ok(None) => Ok(Flow::Stop(SessionEnd::Failed("the relay closed the connection".into()))),
                    Err(e) => Err(ClientError::from(e)),
                },
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
            };
            match flow {
                Ok(Flow::Continue) => {}
                Ok(Flow::Stop(end)) => break end,
                Err(e) => break SessionEnd::Failed(crate::error_chain(&e)),
            }
        };
        let Self { writer, events, .. } = self;
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
            Err(ViewerFailure::Stream(e)) => {
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
                })))
            }
            Slot::Pending(mut link) => {
                let msg = open(&mut link, frame)?;
                // Before consent, a viewer can only leave.
                if let Message::Bye { reason } = msg {
                    self.viewer_gone(ch, reason.to_string()).await?;
                    return Ok(None);
                }
                Ok(Some(Slot::Pending(link)))
            }
            Slot::Active(mut link, permission) => {
                match open(&mut link, frame)? {
                    Message::Bye { reason } => {
                        self.viewer_gone(ch, reason.to_string()).await?;
                        return Ok(None);
                    }
                    Message::Ping { id } => {
                        let f = seal(&mut link, &Message::Pong { id })?;
                        self.writer.send(&f).await?;
                    }
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

    async fn on_command(&mut self, cmd: Command) -> Result<Flow, ClientError> {
        match cmd {
            Command::Decide { viewer, permission } => {
                let Some(Slot::Pending(mut link)) = self.viewers.remove(&viewer) else {
                    return Ok(Flow::Continue);
                };
                match permission {
                    Some(permission) => {
                        let f = seal_or_err(&mut link, &Message::Allowed { permission })?;
                        self.writer.send(&f).await?;
                        self.emit(HostEvent::ViewerConnected {
                            viewer,
                            name: link.name.clone(),
                            permission,
                        });
                        self.viewers.insert(viewer, Slot::Active(link, permission));
                    }
                    None => {
                        self.say_bye(&mut link, viewer, ByeReason::Denied).await?;
                        self.emit(HostEvent::ViewerLeft {
                            viewer,
                            reason: ByeReason::Denied.to_string(),
                        });
                    }
                }
            }
            Command::SetPermission { viewer, permission } => {
                if let Some(Slot::Active(link, p)) = self.viewers.get_mut(&viewer) {
                    *p = permission;
                    let f = seal_or_err(link, &Message::PermissionChanged { permission })?;
                    self.writer.send(&f).await?;
                }
            }
            Command::Remove { viewer } => {
                if let Some(slot) = self.viewers.remove(&viewer) {
                    if let Slot::Pending(mut link) | Slot::Active(mut link, _) = slot {
                        self.say_bye(&mut link, viewer, ByeReason::Removed).await?;
                    } else {
                        self.drop_viewer(viewer, Some(AbortReason::ProtocolError))
                            .await?;
                    }
                    self.emit(HostEvent::ViewerLeft {
                        viewer,
                        reason: ByeReason::Removed.to_string(),
                    });
                }
            }
            Command::Send { viewers, encoded } => {
                let targets: Vec<ChannelId> = match viewers {
                    Some(v) => v,
                    None => self.viewers.keys().copied().collect(),
                };
                for ch in targets {
                    if let Some(Slot::Active(link, _)) = self.viewers.get_mut(&ch) {
                        let f = link.sealer.seal(&encoded)?;
                        self.writer.send_owned(f).await?;
                    }
                }
            }
            Command::End => {
                let chans: Vec<ChannelId> = self.viewers.keys().copied().collect();
                for ch in chans {
                    if let Some(Slot::Pending(mut link) | Slot::Active(mut link, _)) =
                        self.viewers.remove(&ch)
                    {
                        let f = seal_or_err(
                            &mut link,
                            &Message::Bye {
                                reason: ByeReason::HostStopped,
                            },
                        )?;
                        self.writer.send(&f).await?;
                    }
                }
                self.writer
                    .send(&ClientRequest::EndSession.to_frame())
                    .await?;
                return Ok(Flow::Stop(SessionEnd::Local));
            }
        }
        Ok(Flow::Continue)
    }

    /// Tells a viewer why it goes (sealed, so the relay cannot forge it),
    /// then has the relay drop it.
    async fn say_bye(
        &mut self,
        link: &mut Link,
        viewer: ChannelId,
        reason: ByeReason,
    ) -> Result<(), ClientError> {
        let f = seal_or_err(link, &Message::Bye { reason })?;
        self.writer.send(&f).await?;
        self.writer
            .send(&ClientRequest::RemoveViewer { channel: viewer.0 }.to_frame())
            .await
    }
}

/// How handling one viewer's frame can fail: only that viewer's session, or
/// the link to the relay as a whole.
enum ViewerFailure {
    Handshake(HandshakeError),
    Stream(String),
    Link(ClientError),
}

impl From<HandshakeError> for ViewerFailure {
    fn from(e: HandshakeError) -> Self {
        ViewerFailure::Handshake(e)
    }
}

impl From<ClientError> for ViewerFailure {
    fn from(e: ClientError) -> Self {
        ViewerFailure::Link(e)
    }
}

fn open(link: &mut Link, frame: Frame) -> Result<Message, ViewerFailure> {
    let plain = link.opener.open(frame).map_err(|e| {
        ViewerFailure::Stream(format!(
            "damaged or tampered stream: {}",
            crate::error_chain(&e)
        ))
    })?;
    Message::decode(&plain).map_err(|e| ViewerFailure::Stream(e.to_string()))
}

fn seal(link: &mut Link, msg: &Message) -> Result<Frame, ViewerFailure> {
    link.sealer
        .seal_vec(msg.encode())
        .map_err(|e| ViewerFailure::Stream(e.to_string()))
}

fn seal_or_err(link: &mut Link, msg: &Message) -> Result<Frame, ClientError> {
    Ok(link.sealer.seal_vec(msg.encode())?)
}
