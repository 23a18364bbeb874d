//! The host session's paths to each viewer beyond the first relay link:
//! direct connections (set up, read, lost) and the way back after a
//! dropped relay link (reconnect, prove the keys, resend, acknowledge).

use super::*;

impl Host {
    /// Handles a frame of an established viewer: the resume exchange, sealed
    /// data dropped while the viewer resumes (it is sent again), or an
    /// opened message (acknowledged every so often).
    pub(super) async fn session_frame(
        &mut self,
        ch: ChannelId,
        link: &mut Link,
        frame: Frame,
    ) -> Result<Option<Message>, ViewerFailure> {
        if frame.header.frame_type == FrameType::Handshake {
            let msg = ResumeMsg::from_frame(&frame);
            if msg == Some(ResumeMsg::PathLost) {
                self.leave_direct(ch, link, "the viewer lost its direct path")
                    .await?;
                return Ok(None);
            }
            let Some(ResumeMsg::Answer {
                hello,
                nonce,
                next_seq,
                mac,
            }) = msg
            else {
                return Err(ViewerFailure::Stream(
                    "an unexpected handshake frame in the session".into(),
                ));
            };
            let Some((confirm, again)) = link
                .resume
                .confirm(hello, nonce, next_seq, &mac, link.opener.next_seq())
                .map_err(|e| ViewerFailure::Stream(format!("reconnection refused: {e}")))?
            else {
                // A late answer to an earlier attempt.
                return Ok(None);
            };
            self.writer.send_owned(confirm).await?;
            for f in again {
                self.writer.send_owned(f).await?;
            }
            self.emit(HostEvent::ViewerResumed { viewer: ch });
            return Ok(None);
        }
        if link.resume.resuming.is_some() && link.direct.is_none() {
            return Ok(None);
        }
        let msg = open(link, frame)?;
        self.progress = true;
        if link.resume.opened() {
            link.resume.take_ack_due();
            let next_seq = link.opener.next_seq();
            let f = seal(link, &Message::Received { next_seq })?;
            send(&self.writer, link, f).await?;
        }
        Ok(Some(msg))
    }

    /// Tells each viewer how far we have read, where anything arrived since.
    pub(super) async fn acknowledge(&mut self) -> Result<Flow, ClientError> {
        let mut lost = Vec::new();
        for (ch, slot) in &mut self.viewers {
            if let Slot::Pending(link) | Slot::Active(link, _) = slot
                && link.resume.resuming.is_none()
                && link.resume.take_ack_due()
            {
                let next_seq = link.opener.next_seq();
                let f = seal_or_err(link, &Message::Received { next_seq })?;
                if let Err(e) = send(&self.writer, link, f).await {
                    lost.push((*ch, e));
                }
            }
        }
        for (ch, e) in lost {
            self.lose_viewer(ch, e).await?;
        }
        Ok(Flow::Continue)
    }

    /// Connects to the relay again and takes the session's place back;
    /// each relayed viewer then proves itself again and gets what it missed.
    pub(super) async fn reconnect(&mut self) -> Result<Reader, ClientError> {
        self.emit(HostEvent::Reconnecting);
        let mut unfinished = Vec::new();
        for (ch, slot) in &mut self.viewers {
            match slot {
                Slot::Pending(link) | Slot::Active(link, _) => {
                    if link.direct.is_none() {
                        link.resume.resuming = Some(Phase::Away);
                    }
                }
                _ => unfinished.push(*ch),
            }
        }
        let token = self.token.ok_or(ClientError::HandshakeTimeout)?;
        let routes = super::link::routes(&(self.relay.clone(), self.connect.clone()), &self.family);
        let (reader, writer, (relay, connect)) =
            super::link::resume(&routes, self.number, 0, token, RESUME_WINDOW).await?;
        self.writer = writer;
        if relay != self.relay {
            tracing::info!(relay = %relay, "the session goes on through another relay of the family");
        }
        (self.relay, self.connect) = (relay, connect);
        self.emit(HostEvent::Reconnected);
        for ch in unfinished {
            self.drop_viewer(ch, None).await?;
            self.emit(HostEvent::HandshakeFailed {
                viewer: ch,
                error: "our connection dropped during the viewer's handshake".into(),
            });
        }
        let mut hellos = Vec::new();
        for slot in self.viewers.values_mut() {
            if let Slot::Pending(link) | Slot::Active(link, _) = slot
                && link.direct.is_none()
            {
                hellos.push(link.resume.hello());
            }
        }
        for hello in hellos {
            self.writer.send_owned(hello).await?;
        }
        Ok(reader)
    }

    /// A viewer proved itself on our direct listener: tell it, on the relay,
    /// that our frames for it take the direct path from now on.
    pub(super) async fn on_direct(&mut self, accepted: Accepted) -> Result<Flow, ClientError> {
        let ch = accepted.channel;
        let Some(Slot::Active(link, _)) = self.viewers.get_mut(&ch) else {
            return Ok(Flow::Continue);
        };
        if link.direct.is_some() {
            return Ok(Flow::Continue);
        }
        if link.resume.resuming.is_some() {
            // Mid-reconnection: let the viewer's dial fail; it stays relayed.
            return Ok(Flow::Continue);
        }
        let f = seal_or_err(link, &Message::PathSwitch)?;
        self.writer.send(&f).await?;
        let mut direct = DirectPath::new(accepted.stream, ch, self.path_tx.clone());
        if link.peer_switched {
            direct.open();
        }
        link.direct = Some(direct);
        // Its endpoint stops punching; a QUIC path keeps its own socket.
        self.punches.remove(&ch);
        self.emit(HostEvent::ViewerPath {
            viewer: ch,
            path: SessionPath::of(accepted.kind, accepted.peer),
        });
        Ok(Flow::Continue)
    }

    /// A frame (or the end) from a viewer's direct path.
    pub(super) async fn on_path_read(
        &mut self,
        ch: ChannelId,
        read: Result<Option<Frame>, crate::transport::TransportError>,
    ) -> Result<Flow, ClientError> {
        let on_direct = matches!(
            self.viewers.get(&ch),
            Some(Slot::Active(
                Link {
                    direct: Some(_),
                    ..
                },
                _
            ))
        );
        if !on_direct {
            // Late news from a viewer that is already gone.
            return Ok(Flow::Continue);
        }
        match read {
            Ok(Some(frame))
                if frame.header.frame_type == FrameType::Sealed && frame.header.channel == ch =>
            {
                self.on_frame(frame).await
            }
            Ok(Some(_)) => {
                self.lose_viewer(
                    ch,
                    ViewerFailure::Stream(
                        "the viewer sent a foreign frame on its direct path".into(),
                    ),
                )
                .await?;
                Ok(Flow::Continue)
            }
            Ok(None) => {
                self.fall_back(ch, "the direct connection to the viewer closed")
                    .await?;
                Ok(Flow::Continue)
            }
            Err(e) => {
                let why = format!(
                    "the direct connection to the viewer broke: {}",
                    crate::error_chain(&e)
                );
                self.fall_back(ch, &why).await?;
                Ok(Flow::Continue)
            }
        }
    }

    /// A viewer's own path failed: drop it, keep everyone else.
    pub(super) async fn lose_viewer(
        &mut self,
        ch: ChannelId,
        why: ViewerFailure,
    ) -> Result<(), ClientError> {
        let reason = match why {
            ViewerFailure::Link(e) => return Err(e),
            ViewerFailure::Stream(s) => s,
            ViewerFailure::DirectBroke(s) => return self.fall_back(ch, &s).await,
            ViewerFailure::Handshake(e) => crate::error_chain(&e),
        };
        if self.viewers.contains_key(&ch) {
            self.drop_viewer(ch, None).await?;
            self.emit(HostEvent::ViewerLeft { viewer: ch, reason });
        }
        Ok(())
    }

    /// A viewer's direct path broke (TCP or QUIC): go back to the relay
    /// instead of dropping the viewer. The resume exchange runs there as
    /// after a dropped relay link: the viewer proves it still holds the
    /// keys, and each side sends again what the other did not get, so the
    /// session goes on where it was. Dropping our end closes the path, so
    /// a viewer that has not noticed yet hears it too.
    pub(super) async fn fall_back(&mut self, ch: ChannelId, why: &str) -> Result<(), ClientError> {
        let Some(Slot::Active(mut link, permission)) = self.viewers.remove(&ch) else {
            return Ok(());
        };
        let r = self.leave_direct(ch, &mut link, why).await;
        self.viewers.insert(ch, Slot::Active(link, permission));
        r
    }

    /// [`Host::fall_back`] for a viewer whose link is at hand.
    async fn leave_direct(
        &mut self,
        ch: ChannelId,
        link: &mut Link,
        why: &str,
    ) -> Result<(), ClientError> {
        if link.direct.take().is_none() {
            return Ok(());
        }
        tracing::info!("{why}; viewer {ch} goes back to the relay");
        link.peer_switched = false;
        let hello = link.resume.hello();
        self.writer.send_owned(hello).await?;
        self.emit(HostEvent::ViewerPath {
            viewer: ch,
            path: SessionPath::Relayed,
        });
        Ok(())
    }
}
