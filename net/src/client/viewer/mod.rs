//! The viewer's session: joins a host by number, runs the handshake, waits
//! for the person's consent, and carries messages.

mod paths;

use paths::{PathNews, Quic, Tcp};

use super::link::{self, HANDSHAKE_TIMEOUT, KEEPALIVE, LinkWriter, Reader};
use super::path::{self, DirectPath, PathRead, SessionPath};
use super::resume::{MAX_FRUITLESS, Phase, RESUME_WINDOW, Resumable, ResumeMsg};
use super::{ClientError, RelayAddr, SessionEnd};
use crate::control::{ClientRequest, RELAY_PROTOCOL, RelayEvent};
use crate::direct::PathKey;
use crate::frame::{ChannelId, Frame, FrameType};
use crate::handshake::{
    AuthCode, HandshakeConfig, HandshakeError, ViewerExpectFinished, ViewerExpectHostHello,
    ViewerExpectKey, ViewerHandshake, ViewerKey, abort_frame, as_abort,
};
use crate::message::{ByeReason, Message, Permission};
use crate::number::SessionNumber;
use crate::record::{Opener, Sealer};
use tokio::sync::mpsc;

/// How long a viewer on a direct path waits for the host's goodbye after the
/// relay closed its link.
const BYE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct ViewerOptions {
    pub relay: RelayAddr,
    /// How to reach and trust the relay.
    pub connect: super::ConnectOptions,
    /// The other relays of the same service (its family): tried in turn
    /// when the link to `relay` is lost and it does not take us back, since
    /// a sibling takes over the sessions of a relay that died.
    pub family: Vec<super::Route>,
    pub number: SessionNumber,
    pub handshake: HandshakeConfig,
    /// Shown to the host in its consent dialog.
    pub name: String,
    /// A fresh key pair, generated ahead of time (see [`ViewerKey`]).
    pub key: ViewerKey,
    /// Take the host's offer of a direct connection.
    pub direct: bool,
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
    /// The session moved to another path.
    Path(SessionPath),
    /// The connection dropped (ours or the host's); the session waits for
    /// it to come back.
    Reconnecting,
    /// Back: both sides proved they still hold the keys, and nothing sent
    /// meanwhile is lost.
    Resumed,
    /// The session is over; no more events follow.
    Ended(SessionEnd),
    /// An answer of the relay's file store.
    Store(crate::transfer::store::StoreEvent),
}

#[derive(Clone)]
pub struct ViewerHandle {
    tx: mpsc::UnboundedSender<ViewerCommand>,
}

#[derive(Debug)]
enum ViewerCommand {
    Send(Message),
    Leave,
    Store(crate::transfer::store::StoreRequest),
}

impl ViewerHandle {
    /// Sends a message once the host has allowed us (dropped before).
    pub fn send(&self, message: Message) {
        let _ = self.tx.send(ViewerCommand::Send(message));
    }

    pub fn leave(&self) {
        let _ = self.tx.send(ViewerCommand::Leave);
    }

    /// Sends a request to the relay's file store (answers come as
    /// [`ViewerEvent::Store`]).
    pub fn store(&self, request: crate::transfer::store::StoreRequest) {
        let _ = self.tx.send(ViewerCommand::Store(request));
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
    let join = ClientRequest::Join {
        protocol: RELAY_PROTOCOL,
        number: options.number,
    };
    let answer = link::ask(&(options.relay.clone(), options.connect.clone()), &join).await?;
    let (reader, writer, link) = (answer.reader, answer.writer, answer.info);
    let channel = match answer.event {
        RelayEvent::Joined { channel } if channel != 0 => ChannelId(channel),
        RelayEvent::Refused { reason } => return Err(ClientError::Refused(reason)),
        RelayEvent::Closed { reason } => return Err(ClientError::RelayClosed(reason)),
        other => {
            return Err(ClientError::RelayProtocol(format!(
                "answered the join with {other:?}"
            )));
        }
    };
    // The relay that holds the session, maybe not the one we asked.
    let (relay, connect) = answer.route;
    let state = ViewerHandshake::start(&options.handshake, &options.name, options.key, channel);
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let (path_tx, path_rx) = path::reads();
    let (dial_tx, dial_rx) = mpsc::unbounded_channel();
    let viewer = Viewer {
        channel,
        relay,
        connect,
        family: options.family,
        number: options.number,
        token: None,
        progress: false,
        fruitless: 0,
        closing: None,
        writer,
        events: ev_tx,
        state: Some(State::Hello(state)),
        take_direct: options.direct,
        direct: Direct::None,
        tcp: Tcp::Idle,
        quic: Quic::Idle,
        host_switched: false,
        path_tx,
        dial_tx,
    };
    tokio::spawn(viewer.run(reader, cmd_rx, dial_rx, path_rx));
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
    path_key: PathKey,
    resume: Resumable,
}

/// Whether the session runs on a direct path.
enum Direct {
    None,
    Up(DirectPath),
}

struct Viewer {
    channel: ChannelId,
    relay: RelayAddr,
    connect: super::ConnectOptions,
    family: Vec<super::Route>,
    number: SessionNumber,
    /// The relay's token for taking our place again after a dropped link.
    token: Option<[u8; 32]>,
    /// A sealed frame arrived since the last reconnection.
    progress: bool,
    /// The relay closed our link while we talk directly; the session ends
    /// at this time unless the host's sealed goodbye comes first.
    closing: Option<(crate::control::LeaveReason, tokio::time::Instant)>,
    /// Reconnections in a row without progress.
    fruitless: u32,
    writer: LinkWriter,
    events: mpsc::UnboundedSender<ViewerEvent>,
    state: Option<State>,
    take_direct: bool,
    direct: Direct,
    /// The dial to the host's TCP offer.
    tcp: Tcp,
    /// The attempt at a punched QUIC path.
    quic: Quic,
    /// The host's `PathSwitch` arrived: its frames come direct now.
    host_switched: bool,
    path_tx: mpsc::Sender<PathRead>,
    dial_tx: mpsc::UnboundedSender<PathNews>,
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
        mut dialed: mpsc::UnboundedReceiver<PathNews>,
        mut path_reads: mpsc::Receiver<PathRead>,
    ) {
        let mut keepalive =
            tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
        let handshake_deadline = tokio::time::sleep(HANDSHAKE_TIMEOUT);
        tokio::pin!(handshake_deadline);
        let mut ack_tick = tokio::time::interval(std::time::Duration::from_secs(1));
        // The relay closed our link for good; the direct path may still
        // carry the host's last words.
        let mut relay_done = false;
        let end = loop {
            let flow = tokio::select! {
                frame = reader.read_frame(), if !relay_done => match frame {
                    Ok(Some(frame)) => self.on_frame(frame).await,
                    Ok(None) => Err(ClientError::Transport(crate::transport::TransportError::Io(
                        std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the relay closed the connection"),
                    ))),
                    Err(e) => Err(ClientError::from(e)),
                },
                _ = ack_tick.tick() => self.acknowledge().await,
                cmd = commands.recv() => self.on_command(cmd.unwrap_or(ViewerCommand::Leave)).await,
                _ = keepalive.tick() => self
                    .writer
                    .send(&ClientRequest::Ping { id: 0 }.to_frame())
                    .await
                    .map(|_| Flow::Continue),
                _ = &mut handshake_deadline, if self.handshaking() => Err(ClientError::HandshakeTimeout),
                _ = tokio::time::sleep_until(self.closing.map_or_else(tokio::time::Instant::now, |c| c.1)), if self.closing.is_some() => {
                    Ok(Flow::Stop(SessionEnd::Relay(self.closing.map_or(crate::control::LeaveReason::Left, |c| c.0))))
                }
                Some(news) = dialed.recv() => self.on_path_news(news).await,
                Some((_, read)) = path_reads.recv() => self.on_path_read(read).await,
            };
            match flow {
                Ok(Flow::Continue) => {}
                Ok(Flow::Stop(end)) => break end,
                Err(ClientError::Transport(_)) if self.closing.is_some() => relay_done = true,
                Err(ClientError::Transport(e)) if self.fruitless >= MAX_FRUITLESS => {
                    break SessionEnd::Failed(format!(
                        "the connection to the relay keeps dropping ({MAX_FRUITLESS} reconnections without progress): {}",
                        crate::error_chain(&e)
                    ));
                }
                Err(ClientError::Transport(e)) if self.can_resume() => {
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
            direct,
            ..
        } = self;
        if let Direct::Up(direct) = direct {
            direct.finish().await;
        }
        writer.finish().await;
        let _ = events.send(ViewerEvent::Ended(end));
    }

    async fn on_frame(&mut self, frame: Frame) -> Result<Flow, ClientError> {
        if frame.header.frame_type == FrameType::Control {
            return match RelayEvent::from_frame(&frame)
                .map_err(|e| ClientError::RelayProtocol(crate::error_chain(&e)))?
            {
                RelayEvent::Closed { reason } => {
                    if matches!(self.direct, Direct::Up(_)) {
                        // The host's goodbye travels the direct path and may
                        // still be on its way: give it a moment to say why.
                        self.closing = Some((reason, tokio::time::Instant::now() + BYE_GRACE));
                        Ok(Flow::Continue)
                    } else {
                        Ok(Flow::Stop(SessionEnd::Relay(reason)))
                    }
                }
                RelayEvent::Ping { id } => {
                    self.writer
                        .send(&ClientRequest::Pong { id }.to_frame())
                        .await?;
                    Ok(Flow::Continue)
                }
                RelayEvent::Pong { .. } => Ok(Flow::Continue),
                RelayEvent::Store(event) => {
                    self.emit(ViewerEvent::Store(event));
                    Ok(Flow::Continue)
                }
                RelayEvent::ResumeToken { token } => {
                    self.token = Some(token);
                    Ok(Flow::Continue)
                }
                RelayEvent::PeerAway { .. } => {
                    // The host's link dropped: hold everything until it is
                    // back and has proved itself (unless we talk directly).
                    if !matches!(self.direct, Direct::Up(_))
                        && let Some(State::Waiting(link) | State::Allowed(link)) = &mut self.state
                    {
                        link.resume.resuming = Some(Phase::Away);
                        self.emit(ViewerEvent::Reconnecting);
                    }
                    Ok(Flow::Continue)
                }
                RelayEvent::PeerBack { .. } => Ok(Flow::Continue),
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
                    resume: Resumable::new(est.path_key.clone(), self.channel),
                    path_key: est.path_key,
                }));
            }
            State::Waiting(link) => return self.on_session_frame(link, false, frame).await,
            State::Allowed(link) => return self.on_session_frame(link, true, frame).await,
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
            Message::Ping { id } => self.send_sealed(&mut link, &Message::Pong { id }).await?,
            Message::Received { next_seq } => link.resume.acknowledged(next_seq),
            Message::DirectOffer { addrs } => self.on_direct_offer(&link, addrs),
            Message::PunchOffer(offer) => self.on_punch_offer(offer),
            Message::PathSwitch => {
                self.host_switched = true;
                let trying = self.trying();
                match &mut self.direct {
                    Direct::Up(direct) => direct.open(),
                    // Our side of the proof is still finishing.
                    Direct::None if trying => {}
                    Direct::None => {
                        return Err(ClientError::PeerProtocol(
                            "the host switched to a direct path that does not exist".into(),
                        ));
                    }
                }
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
                // Before the host allows us, messages are dropped.
                match self.state.take() {
                    Some(State::Allowed(mut link)) => {
                        let r = self.send_sealed(&mut link, &message).await;
                        self.state = Some(State::Allowed(link));
                        r?;
                    }
                    other => self.state = other,
                }
                Ok(Flow::Continue)
            }
            ViewerCommand::Leave => {
                if let Some(State::Waiting(mut link) | State::Allowed(mut link)) = self.state.take()
                {
                    let bye = Message::Bye {
                        reason: ByeReason::ViewerLeft,
                    };
                    // Leaving mid-reconnection: the relay tells the host.
                    let _ = self.send_sealed(&mut link, &bye).await;
                }
                Ok(Flow::Stop(SessionEnd::Local))
            }
            ViewerCommand::Store(request) => {
                self.writer
                    .send_owned(ClientRequest::Store(request).to_frame())
                    .await?;
                Ok(Flow::Continue)
            }
        }
    }
}

impl Viewer {
    /// Seals a message for the host and sends it, unless a reconnection is
    /// under way: then it waits in the resend queue like everything else.
    async fn send_sealed(&self, link: &mut Link, message: &Message) -> Result<(), ClientError> {
        let f = link.resume.seal(&mut link.sealer, message.encode())?;
        if link.resume.resuming.is_none() {
            self.out().send_owned(f).await?;
        }
        Ok(())
    }

    /// Tells the host how far we have read, if we read anything since.
    async fn acknowledge(&mut self) -> Result<Flow, ClientError> {
        let (mut link, allowed) = match self.state.take() {
            Some(State::Waiting(link)) => (link, false),
            Some(State::Allowed(link)) => (link, true),
            other => {
                self.state = other;
                return Ok(Flow::Continue);
            }
        };
        let r = if link.resume.resuming.is_none() && link.resume.take_ack_due() {
            let next_seq = link.opener.next_seq();
            self.send_sealed(&mut link, &Message::Received { next_seq })
                .await
        } else {
            Ok(())
        };
        self.state = Some(if allowed {
            State::Allowed(link)
        } else {
            State::Waiting(link)
        });
        r.map(|()| Flow::Continue)
    }

    /// A frame of the established session: the resume exchange, or sealed
    /// data (dropped while resuming: the host sends it again).
    async fn on_session_frame(
        &mut self,
        mut link: Link,
        allowed: bool,
        frame: Frame,
    ) -> Result<Flow, ClientError> {
        let put_back = |link: Link| {
            if allowed {
                State::Allowed(link)
            } else {
                State::Waiting(link)
            }
        };
        if frame.header.frame_type == FrameType::Handshake {
            let step = ResumeMsg::from_frame(&frame);
            let result = match step {
                Some(ResumeMsg::Hello { nonce }) => {
                    // The host left our direct path for the relay.
                    self.fall_back("the host went back to the relay");
                    let answer = link.resume.answer(nonce, link.opener.next_seq());
                    self.writer.send_owned(answer).await
                }
                Some(ResumeMsg::Confirm {
                    answer,
                    next_seq,
                    mac,
                }) => {
                    match link.resume.confirmed(answer, next_seq, &mac) {
                        // A late confirmation of an earlier attempt.
                        Ok(None) => Ok(()),
                        Ok(Some(again)) => {
                            for f in again {
                                self.writer.send_owned(f).await?;
                            }
                            self.emit(ViewerEvent::Resumed);
                            Ok(())
                        }
                        Err(e) => {
                            return Ok(Flow::Stop(SessionEnd::Failed(format!(
                                "reconnecting failed: {e}"
                            ))));
                        }
                    }
                }
                _ => Err(ClientError::PeerProtocol(
                    "an unexpected handshake frame in the session".into(),
                )),
            };
            self.state = Some(put_back(link));
            return result.map(|()| Flow::Continue);
        }
        if link.resume.resuming.is_some() {
            self.state = Some(put_back(link));
            return Ok(Flow::Continue);
        }
        let msg = open(&mut link, frame)?;
        self.progress = true;
        if link.resume.opened() {
            let next_seq = link.opener.next_seq();
            if let Err(e) = self
                .send_sealed(&mut link, &Message::Received { next_seq })
                .await
            {
                self.state = Some(put_back(link));
                return Err(e);
            }
            link.resume.take_ack_due();
        }
        self.on_message(link, allowed, msg).await
    }

    /// Whether a lost relay link may be replaced without losing the session.
    fn can_resume(&self) -> bool {
        self.token.is_some() && matches!(self.state, Some(State::Waiting(_) | State::Allowed(_)))
    }

    /// Connects to the relay again and takes our place back; the host then
    /// starts the proof exchange.
    async fn reconnect(&mut self) -> Result<Reader, ClientError> {
        let direct = matches!(self.direct, Direct::Up(_));
        if let Some(State::Waiting(link) | State::Allowed(link)) = &mut self.state
            && !direct
        {
            link.resume.resuming = Some(Phase::Away);
        }
        self.emit(ViewerEvent::Reconnecting);
        let token = self.token.ok_or(ClientError::HandshakeTimeout)?;
        let routes = link::routes(&(self.relay.clone(), self.connect.clone()), &self.family);
        let (reader, writer, (relay, connect)) =
            super::link::resume(&routes, self.number, self.channel.0, token, RESUME_WINDOW).await?;
        // The old writer's task ends with the dead connection.
        self.writer = writer;
        if relay != self.relay {
            tracing::info!(relay = %relay, "the session goes on through another relay of the family");
        }
        (self.relay, self.connect) = (relay, connect);
        if direct {
            self.emit(ViewerEvent::Resumed);
        }
        Ok(reader)
    }
}

fn open(link: &mut Link, frame: Frame) -> Result<Message, ClientError> {
    let plain = link.opener.open(frame)?;
    Message::decode(&plain).map_err(|e| ClientError::PeerProtocol(e.to_string()))
}
