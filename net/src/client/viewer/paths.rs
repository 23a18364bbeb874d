//! The viewer's direct paths: the TCP dial to the host's offered addresses
//! and the QUIC attempt through punched NATs, run side by side while the
//! relayed session goes on. TCP is preferred: the QUIC attempt gets its
//! handshake through meanwhile but proves the path key (which makes the
//! host take that path) only once the TCP dial has failed. Whichever path
//! is proven first carries the session; if neither works within a few
//! seconds, it stays relayed. A direct path that breaks later sends the
//! session back to the relay (see `Host::fall_back`).

use super::*;
use crate::direct::DirectKind;
use crate::punch::{PunchError, PunchOffer, ViewerPunch};
use crate::transport::BoxStream;
use std::net::SocketAddr;
use tokio::sync::oneshot;

/// What the background work on direct paths reports to the session loop.
pub(super) enum PathNews {
    /// A dial or a QUIC attempt ended: a proven stream, or why not.
    Dialed(DirectKind, Result<(BoxStream, SocketAddr), String>),
    /// Our UDP socket is bound and knows its public address.
    Prepared(Result<ViewerPunch, PunchError>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tcp {
    Idle,
    Dialing,
    Over,
}

pub(super) enum Quic {
    Idle,
    /// Binding and asking the relay's rendezvous; the host's offer waits.
    Preparing(PunchOffer),
    /// Punching and racing handshakes; `go` lets the proof go ahead.
    Connecting {
        go: Option<oneshot::Sender<()>>,
        _task: AbortOnDrop,
    },
    Over,
}

/// Aborts the QUIC attempt when it is no longer wanted.
pub(super) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Viewer {
    /// Whether a direct path may still come up.
    pub(super) fn trying(&self) -> bool {
        self.tcp == Tcp::Dialing
            || matches!(self.quic, Quic::Preparing(_) | Quic::Connecting { .. })
    }

    fn direct_up(&self) -> bool {
        matches!(self.direct, Direct::Up(_))
    }

    /// Where our sealed frames go: the direct path once we switched.
    pub(super) fn out(&self) -> &LinkWriter {
        match &self.direct {
            Direct::Up(d) => &d.writer,
            Direct::None => &self.writer,
        }
    }

    /// The host's TCP addresses: dial them all in the background.
    pub(super) fn on_direct_offer(&mut self, link: &Link, addrs: Vec<SocketAddr>) {
        if !self.take_direct || self.direct_up() || self.tcp != Tcp::Idle {
            return;
        }
        self.tcp = Tcp::Dialing;
        let (channel, key, news) = (self.channel, link.path_key.clone(), self.dial_tx.clone());
        tokio::spawn(async move {
            let r = crate::direct::dial(&addrs, channel, &key)
                .await
                .map(|(stream, at)| (Box::new(stream) as BoxStream, at))
                .map_err(|e| crate::error_chain(&e));
            let _ = news.send(PathNews::Dialed(DirectKind::Tcp, r));
        });
    }

    /// The host's QUIC offer: bind and probe in the background.
    pub(super) fn on_punch_offer(&mut self, offer: PunchOffer) {
        if !self.take_direct || self.direct_up() || !matches!(self.quic, Quic::Idle) {
            return;
        }
        self.quic = Quic::Preparing(offer);
        let (relay, news) = (self.relay.clone(), self.dial_tx.clone());
        tokio::spawn(async move {
            let _ = news.send(PathNews::Prepared(ViewerPunch::start(&relay).await));
        });
    }

    pub(super) async fn on_path_news(&mut self, news: PathNews) -> Result<Flow, ClientError> {
        match news {
            PathNews::Prepared(prepared) => self.on_prepared(prepared).await,
            PathNews::Dialed(kind, dialed) => self.on_dialed(kind, dialed).await,
        }
    }

    /// Our socket is ready: tell the host our candidates, then punch and
    /// connect to its.
    async fn on_prepared(
        &mut self,
        prepared: Result<ViewerPunch, PunchError>,
    ) -> Result<Flow, ClientError> {
        let Quic::Preparing(offer) = std::mem::replace(&mut self.quic, Quic::Over) else {
            return Ok(Flow::Continue);
        };
        let punch = match prepared {
            Ok(p) => p,
            Err(e) => return self.failed(DirectKind::Quic, crate::error_chain(&e)),
        };
        if self.direct_up() {
            return Ok(Flow::Continue);
        }
        let Some(State::Allowed(mut link)) = self.state.take() else {
            return Ok(Flow::Continue);
        };
        let sent = self
            .send_sealed(&mut link, &Message::PunchAnswer(punch.answer()))
            .await;
        let (channel, key) = (self.channel, link.path_key.clone());
        self.state = Some(State::Allowed(link));
        sent?;
        let (go_tx, go_rx) = oneshot::channel();
        let news = self.dial_tx.clone();
        let task = tokio::spawn(async move {
            let r = punch
                .connect(&offer, go_rx, channel, &key)
                .await
                .map(|(stream, at)| (Box::new(stream) as BoxStream, at))
                .map_err(|e| crate::error_chain(&e));
            let _ = news.send(PathNews::Dialed(DirectKind::Quic, r));
        });
        let mut go = Some(go_tx);
        if self.tcp != Tcp::Dialing
            && let Some(go) = go.take()
        {
            let _ = go.send(());
        }
        self.quic = Quic::Connecting {
            go,
            _task: AbortOnDrop(task),
        };
        Ok(Flow::Continue)
    }

    /// A dial or QUIC attempt ended. On success our last frame on the relay
    /// says so, and everything after it goes direct.
    async fn on_dialed(
        &mut self,
        kind: DirectKind,
        dialed: Result<(BoxStream, SocketAddr), String>,
    ) -> Result<Flow, ClientError> {
        let (stream, peer) = match dialed {
            Ok(ok) => ok,
            Err(e) => return self.failed(kind, e),
        };
        match kind {
            DirectKind::Tcp => {
                self.tcp = Tcp::Over;
                // Preferred: the QUIC attempt (if any) stops here.
                self.quic = Quic::Over;
            }
            DirectKind::Quic => self.quic = Quic::Over,
        }
        if self.direct_up() {
            return Ok(Flow::Continue);
        }
        let Some(State::Allowed(link)) = &mut self.state else {
            return Ok(Flow::Continue);
        };
        let f = link
            .resume
            .seal(&mut link.sealer, Message::PathSwitch.encode())?;
        self.writer.send_owned(f).await?;
        let mut direct = DirectPath::new(stream, self.channel, self.path_tx.clone());
        if self.host_switched {
            direct.open();
        }
        self.direct = Direct::Up(direct);
        self.emit(ViewerEvent::Path(SessionPath::of(kind, peer)));
        Ok(Flow::Continue)
    }

    /// One way to a direct path failed: let the other go ahead, or stay on
    /// the relay. A host that already switched to a path we could not prove
    /// leaves the session nowhere to go.
    fn failed(&mut self, kind: DirectKind, why: String) -> Result<Flow, ClientError> {
        match kind {
            DirectKind::Tcp => {
                tracing::info!("no direct TCP path: {why}");
                self.tcp = Tcp::Over;
                if let Quic::Connecting { go, .. } = &mut self.quic
                    && let Some(go) = go.take()
                {
                    let _ = go.send(());
                }
            }
            DirectKind::Quic => {
                tracing::info!("no punched QUIC path: {why}");
                self.quic = Quic::Over;
            }
        }
        if !self.trying() && !self.direct_up() {
            if self.host_switched {
                return Err(ClientError::PeerProtocol(format!(
                    "the host moved to a direct path that failed here: {why}"
                )));
            }
            // Said once the QUIC attempt (the last to end; a host's offer
            // may still be on its way after a quick TCP failure) failed too,
            // so that the status bar (and a test) knows the search is over.
            if matches!(self.quic, Quic::Over) {
                self.emit(ViewerEvent::Path(SessionPath::Relayed));
            }
        }
        Ok(Flow::Continue)
    }

    /// A frame, the end, or a failure of the direct path.
    pub(super) async fn on_path_read(
        &mut self,
        read: Result<Option<crate::frame::Frame>, crate::transport::TransportError>,
    ) -> Result<Flow, ClientError> {
        if !self.direct_up() {
            // Read before we left the path; the resume sends it again.
            return Ok(Flow::Continue);
        }
        let (why, closed) = match read {
            Ok(Some(frame)) if frame.header.frame_type == FrameType::Sealed => {
                return self.on_frame(frame).await;
            }
            Ok(Some(_)) => {
                return Err(ClientError::PeerProtocol(
                    "the host sent a foreign frame on the direct path".into(),
                ));
            }
            Ok(None) => ("the direct connection to the host closed".to_owned(), true),
            Err(e) => (
                format!(
                    "the direct connection to the host broke: {}",
                    crate::error_chain(&e)
                ),
                false,
            ),
        };
        // The relay already closed the session: nothing to go back to.
        if let Some((reason, _)) = self.closing {
            return Ok(Flow::Stop(if closed {
                SessionEnd::Relay(reason)
            } else {
                SessionEnd::Failed(why)
            }));
        }
        self.fall_back(&why);
        // Hold everything until the host has asked us, on the relay, to
        // prove that we still hold the keys (see `Host::fall_back`); tell
        // it, in case the break only shows on our side.
        if let Some(State::Waiting(link) | State::Allowed(link)) = &mut self.state
            && link.resume.resuming.is_none()
        {
            link.resume.resuming = Some(Phase::Away);
        }
        self.writer
            .send_owned(ResumeMsg::PathLost.to_frame(self.channel))
            .await?;
        Ok(Flow::Continue)
    }

    /// Leaves a broken (or abandoned) direct path for the relay; dropping
    /// it closes our end, so a host that has not noticed hears it too.
    pub(super) fn fall_back(&mut self, why: &str) {
        if !self.direct_up() {
            return;
        }
        tracing::info!("{why}; back to the relay");
        self.direct = Direct::None;
        self.host_switched = false;
        self.emit(ViewerEvent::Path(SessionPath::Relayed));
    }
}
