//! The viewer's session: joins a host by number, runs the handshake, waits
//! for the person's consent, and carries messages.

use super::link::{self, HANDSHAKE_TIMEOUT, KEEPALIVE, LinkWriter, Reader};
use super::{ClientError, RelayAddr, SessionEnd};
use crate::control::{ClientRequest, RELAY_PROTOCOL, RelayEvent};
use crate::frame::{ChannelId, Frame, FrameType};
use crate::handshake::{
    AuthCode, HandshakeConfig, HandshakeError, ViewerExpectFinished, ViewerExpectHostHello,
    ViewerExpectKey, ViewerHandshake, ViewerKey, abort_frame, as_abort,
};
use crate::message::{ByeReason, Message, Permission};
use crate::number::SessionNumber;
use crate::record::{Opener, Sealer};
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
pub struct ViewerOptions {
    pub relay: RelayAddr,
    /// How to reach and trust the relay.
    pub connect: super::ConnectOptions,
    pub number: SessionNumber,
    pub handshake: HandshakeConfig,
    /// Shown to the host in its consent dialog.
    pub name: String,
    /// A fresh key pair, generated ahead of time (see [`ViewerKey`]).
    pub key: ViewerKey,
}

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ViewerEvent {
    /// Keys are derived: show this code so the helper can read it out.
    Code(AuthCode),
    /// The host proved it holds the same keys: the link is end-to-end
    /// encrypted. The host's person still has to allow the connection.
    Connected,
    /// The host's person allowed the connection.
    Allowed(Permission),
    PermissionChanged(Permission),
    /// A message from the host.
    Message(Message),
    /// The session is over; no more events follow.
    Ended(SessionEnd),
}

#[derive(Clone)]
pub struct ViewerHandle {
    tx: mpsc::UnboundedSender<ViewerCommand>,
}

#[derive(Debug)]
enum ViewerCommand {
    Send(Message),
    Leave,
}

impl ViewerHandle {
    /// Sends a message once the host has allowed us (dropped before).
    pub fn send(&self, message: Message) {
        let _ = self.tx.send(ViewerCommand::Send(message));
    }

    pub fn leave(&self) {
        let _ = self.tx.send(ViewerCommand::Leave);
    }
}

pub struct ViewerSession {
    pub channel: ChannelId,
    /// How the link to the relay runs.
    pub link: super::LinkInfo,
    pub handle: ViewerHandle,
    pub events: mpsc::UnboundedReceiver<ViewerEvent>,
}

/// Joins the session `options.number`. Returns once the relay has paired
/// us with the host, so a wrong number fails here with a clear error.
pub async fn start_viewer(options: ViewerOptions) -> Result<ViewerSession, ClientError> {
    let (mut reader, writer, link) = link::connect(&options.relay, &options.connect).await?;
    writer
        .send(
            &ClientRequest::Join {
                protocol: RELAY_PROTOCOL,
                number: options.number,
            }
            .to_frame(),
        )
        .await?;
    let channel = match link::first_event(&mut reader, &options.relay).await? {
        RelayEvent::Joined { channel } if channel != 0 => ChannelId(channel),
        RelayEvent::Refused { reason } => return Err(ClientError::Refused(reason)),
        RelayEvent::Closed { reason } => return Err(ClientError::RelayClosed(reason)),
        other => {
            return Err(ClientError::RelayProtocol(format!(
                "answered the join with {other:?}"
            )));
        }
    };
    let state = ViewerHandshake::start(&options.handshake, &options.name, options.key, channel);
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let viewer = Viewer {
        channel,
        writer,
        events: ev_tx,
        state: Some(State::Hello(state)),
    };
    tokio::spawn(viewer.run(reader, cmd_rx));
    Ok(ViewerSession {
        channel,
        link,
        handle: ViewerHandle { tx: cmd_tx },
        events: ev_rx,
    })
}

enum State {
    Hello(ViewerExpectHostHello),
    Key(ViewerExpectKey),
    Finished(ViewerExpectFinished),
    /// Keys confirmed, waiting for consent.
    Waiting(Link),
    Allowed(Link),
}

struct Link {
    sealer: Sealer,
    opener: Opener,
}

struct Viewer {
    channel: ChannelId,
    writer: LinkWriter,
    events: mpsc::UnboundedSender<ViewerEvent>,
    state: Option<State>,
}

enum Flow {
    Continue,
    Stop(SessionEnd),
}

impl Viewer {
    fn handshaking(&self) -> bool {
        matches!(
            self.state,
            Some(State::Hello(_) | State::Key(_) | State::Finished(_))
        )
    }

    fn emit(&self, e: ViewerEvent) {
        let _ = self.events.send(e);
    }

    async fn run(
        mut self,
        mut reader: Reader,
        mut commands: mpsc::UnboundedReceiver<ViewerCommand>,
    ) {
        let mut keepalive =
            tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
        let handshake_deadline = tokio::time::sleep(HANDSHAKE_TIMEOUT);
        tokio::pin!(handshake_deadline);
        let end = loop {
            let flow = tokio::select! {
                frame = reader.read_frame() => match frame {
                    Ok(Some(frame)) => self.on_frame(frame).await,
                    Ok(None) => Ok(Flow::Stop(SessionEnd::Failed("the relay closed the connection".into()))),
                    Err(e) => Err(ClientError::from(e)),
                },
                cmd = commands.recv() => self.on_command(cmd.unwrap_or(ViewerCommand::Leave)).await,
                _ = keepalive.tick() => self
                    .writer
                    .send(&ClientRequest::Ping { id: 0 }.to_frame())
                    .await
                    .map(|_| Flow::Continue),
                _ = &mut handshake_deadline, if self.handshaking() => Err(ClientError::HandshakeTimeout),
            };
            match flow {
                Ok(Flow::Continue) => {}
                Ok(Flow::Stop(end)) => break end,
                Err(e) => break SessionEnd::Failed(crate::error_chain(&e)),
            }
        };
        let Self { writer, events, .. } = self;
        writer.finish().await;
        let _ = events.send(ViewerEvent::Ended(end));
    }

    async fn on_frame(&mut self, frame: Frame) -> Result<Flow, ClientError> {
        if frame.header.frame_type == FrameType::Control {
            return match RelayEvent::from_frame(&frame)
                .map_err(|e| ClientError::RelayProtocol(crate::error_chain(&e)))?
            {
                RelayEvent::Closed { reason } => Ok(Flow::Stop(SessionEnd::Relay(reason))),
                RelayEvent::Ping { id } => {
                    self.writer
                        .send(&ClientRequest::Pong { id }.to_frame())
                        .await?;
                    Ok(Flow::Continue)
                }
                RelayEvent::Pong { .. } => Ok(Flow::Continue),
                other => Err(ClientError::RelayProtocol(format!(
                    "unexpected event {other:?}"
                ))),
            };
        }
        let Some(state) = self.state.take() else {
            return Ok(Flow::Continue);
        };
        match self.advance(state, frame).await {
            Ok(flow) => Ok(flow),
            Err(ClientError::Handshake(e)) => {
                // Tell the host why, unless it was the host that gave up.
                if !matches!(e, HandshakeError::Aborted(_)) {
                    let _ = self
                        .writer
                        .send(&abort_frame(e.abort_reason(), self.channel, 0))
                        .await;
                }
                Err(ClientError::Handshake(e))
            }
            Err(e) => Err(e),
        }
    }

    async fn advance(&mut self, state: State, frame: Frame) -> Result<Flow, ClientError> {
        if matches!(state, State::Hello(_) | State::Key(_) | State::Finished(_))
            && let Some(reason) = as_abort(&frame)
        {
            return Err(HandshakeError::Aborted(reason).into());
        }
        match state {
            State::Hello(s) => {
                let (next, out) = s.receive(&frame, &mut rand::thread_rng())?;
                self.writer.send(&out).await?;
                self.state = Some(State::Key(next));
            }
            State::Key(s) => {
                let (next, [reveal, finished]) = s.receive(&frame)?;
                self.writer.send(&reveal).await?;
                self.writer.send(&finished).await?;
                self.emit(ViewerEvent::Code(next.code()));
                self.state = Some(State::Finished(next));
            }
            State::Finished(s) => {
                let est = s.receive(frame)?;
                self.emit(ViewerEvent::Connected);
                self.state = Some(State::Waiting(Link {
                    sealer: est.sealer,
                    opener: est.opener,
                }));
            }
            State::Waiting(mut link) => {
                let msg = open(&mut link, frame)?;
                return self.on_message(link, false, msg).await;
            }
            State::Allowed(mut link) => {
                let msg = open(&mut link, frame)?;
                return self.on_message(link, true, msg).await;
            }
        }
        Ok(Flow::Continue)
    }

    /// Handles a host message; before consent only `Allowed` and `Bye` mean
    /// anything.
    async fn on_message(
        &mut self,
        mut link: Link,
        allowed: bool,
        msg: Message,
    ) -> Result<Flow, ClientError> {
        match msg {
            Message::Bye { reason } => return Ok(Flow::Stop(SessionEnd::Peer(reason))),
            Message::Allowed { permission } if !allowed => {
                self.emit(ViewerEvent::Allowed(permission));
                self.state = Some(State::Allowed(link));
                return Ok(Flow::Continue);
            }
            _ if !allowed => {}
            Message::PermissionChanged { permission } => {
                self.emit(ViewerEvent::PermissionChanged(permission));
            }
            Message::Ping { id } => {
                let f = link.sealer.seal_vec(Message::Pong { id }.encode())?;
                self.writer.send(&f).await?;
            }
            other => self.emit(ViewerEvent::Message(other)),
        }
        self.state = Some(if allowed {
            State::Allowed(link)
        } else {
            State::Waiting(link)
        });
        Ok(Flow::Continue)
    }

    async fn on_command(&mut self, cmd: ViewerCommand) -> Result<Flow, ClientError> {
        match cmd {
            ViewerCommand::Send(message) => {
                if let Some(State::Allowed(link)) = &mut self.state {
                    let f = link.sealer.seal_vec(message.encode())?;
                    self.writer.send(&f).await?;
                }
                Ok(Flow::Continue)
            }
            ViewerCommand::Leave => {
                if let Some(State::Waiting(link) | State::Allowed(link)) = &mut self.state {
                    let f = link.sealer.seal(
                        &Message::Bye {
                            reason: ByeReason::ViewerLeft,
                        }
                        .encode(),
                    )?;
                    self.writer.send(&f).await?;
                }
                Ok(Flow::Stop(SessionEnd::Local))
            }
        }
    }
}

fn open(link: &mut Link, frame: Frame) -> Result<Message, ClientError> {
    let plain = link.opener.open(frame)?;
    Message::decode(&plain).map_err(|e| ClientError::PeerProtocol(e.to_string()))
}
