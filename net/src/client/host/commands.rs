//! What the host's person (through the handle) asks of the session:
//! decide, change permission, remove, send, end.

use super::*;

impl Host {
    pub(super) async fn on_command(&mut self, cmd: Command) -> Result<Flow, ClientError> {
        match cmd {
            Command::Decide { viewer, permission } => {
                let mut link = match self.viewers.remove(&viewer) {
                    Some(Slot::Pending(link)) => link,
                    // Decided already (or still shaking hands): leave it.
                    Some(other) => {
                        self.viewers.insert(viewer, other);
                        return Ok(Flow::Continue);
                    }
                    None => return Ok(Flow::Continue),
                };
                match permission {
                    Some(permission) => {
                        let f = seal_or_err(&mut link, &Message::Allowed { permission })?;
                        send_or_fail(&self.writer, &link, f).await?;
                        self.emit(HostEvent::ViewerConnected {
                            viewer,
                            name: link.name.clone(),
                            permission,
                        });
                        if !self.candidates.is_empty() || self.punch {
                            self.registry.insert(viewer, link.path_key.clone());
                        }
                        if !self.candidates.is_empty() {
                            let offer = Message::DirectOffer {
                                addrs: self.candidates.clone(),
                            };
                            let f = seal_or_err(&mut link, &offer)?;
                            send_or_fail(&self.writer, &link, f).await?;
                        }
                        self.prepare_punch(viewer);
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
                    if let Err(e) = send(&self.writer, link, f).await {
                        self.lose_viewer(viewer, e).await?;
                    }
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
                let mut lost = Vec::new();
                for ch in targets {
                    if let Some(Slot::Active(link, _)) = self.viewers.get_mut(&ch) {
                        let f = link.resume.seal(&mut link.sealer, encoded.clone())?;
                        if let Err(e) = send(&self.writer, link, f).await {
                            lost.push((ch, e));
                        }
                    }
                }
                for (ch, e) in lost {
                    self.lose_viewer(ch, e).await?;
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
                        // A broken direct path: the relay's end of session
                        // tells the viewer instead.
                        let _ = send(&self.writer, &link, f).await;
                        if let Some(direct) = link.direct {
                            direct.finish().await;
                        }
                    }
                }
                self.writer
                    .send(&ClientRequest::EndSession.to_frame())
                    .await?;
                return Ok(Flow::Stop(SessionEnd::Local));
            }
            Command::Store(request) => {
                self.writer
                    .send_owned(ClientRequest::Store(request).to_frame())
                    .await?;
            }
        }
        Ok(Flow::Continue)
    }

    /// Tells a viewer why it goes (sealed, so the relay cannot forge it),
    /// then has the relay drop it.
    pub(super) async fn say_bye(
        &mut self,
        link: &mut Link,
        viewer: ChannelId,
        reason: ByeReason,
    ) -> Result<(), ClientError> {
        let f = seal_or_err(link, &Message::Bye { reason })?;
        // A broken direct path: the relay's removal tells the viewer instead.
        let _ = send(&self.writer, link, f).await;
        if let Some(direct) = link.direct.take() {
            direct.finish().await;
        }
        self.registry.remove(viewer);
        self.writer
            .send(&ClientRequest::RemoveViewer { channel: viewer.0 }.to_frame())
            .await
    }
}
