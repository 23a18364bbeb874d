//! The service's side of each peer: offers taken or declined, reports of
//! the disk workers, finishing, failing and cancelling transfers, and
//! pacing what goes out.

use super::*;

impl Service {
    pub(super) fn on_offer(&mut self, peer: ChannelId, manifest: Manifest) {
        let id = manifest.id();
        let valid = match ValidManifest::new(manifest, &self.config.limits) {
            Ok(v) => Arc::new(v),
            Err(e) => {
                let reason = e.to_string();
                self.send(
                    peer,
                    TransferMsg::Refuse {
                        id,
                        reason: Refusal::Invalid(detail(reason.clone())),
                    },
                );
                self.emit(TransferEvent::Refused { peer, id, reason });
                return;
            }
        };
        // The same offer again on the same link (a reconnect that kept the
        // channel): start over from what is on disk.
        if let Some(inc) = self.incoming.remove(&(peer, id)) {
            self.resume_into.insert(id, inc.folder);
        }
        // The same files from a new connection while the one that sent them
        // is away (the helper's app died, or it joined again from another
        // network): the new one takes over from the chunks on disk.
        let stalled: Vec<Key> = self
            .incoming
            .keys()
            .filter(|(p, i)| *i == id && self.away.contains(p))
            .copied()
            .collect();
        for key in stalled {
            if let Some(inc) = self.incoming.remove(&key) {
                // Dropping the writer keeps the partial files.
                self.resume_into.insert(id, inc.folder);
                self.send(
                    key.0,
                    TransferMsg::Cancel {
                        id,
                        reason: CancelReason::TakenOver,
                    },
                );
                self.emit(TransferEvent::Failed {
                    peer: key.0,
                    id,
                    direction: inc.direction,
                    reason: "the connection was lost; the same files came again on a new \
                             connection and go on there"
                        .into(),
                });
            }
        }
        if self.incoming.keys().any(|(_, i)| *i == id) {
            self.send(
                peer,
                TransferMsg::Refuse {
                    id,
                    reason: Refusal::Busy,
                },
            );
            return;
        }
        let folder = self
            .resume_into
            .get(&id)
            .cloned()
            .or_else(|| self.config.auto_accept.clone());
        match folder {
            Some(folder) => self.accept(peer, valid, folder),
            None => {
                // Offers wait in memory for the person: a peer cannot pile
                // up more than a few.
                if !self.offers.contains_key(&(peer, id))
                    && self.offers.keys().filter(|(p, _)| *p == peer).count() >= MAX_OFFERS_WAITING
                {
                    let reason = Refusal::TooManyOffers;
                    self.emit(TransferEvent::Refused {
                        peer,
                        id,
                        reason: reason.to_string(),
                    });
                    self.send(peer, TransferMsg::Refuse { id, reason });
                    return;
                }
                let summary = Summary::of(&valid);
                self.offers.insert((peer, id), valid);
                self.emit(TransferEvent::Offered { peer, id, summary });
            }
        }
    }

    pub(super) fn accept(
        &mut self,
        peer: ChannelId,
        manifest: Arc<ValidManifest>,
        folder: PathBuf,
    ) {
        let id = manifest.id();
        let inbox = match Inbox::new(&folder) {
            Ok(i) => i,
            Err(e) => {
                let reason = crate::error_chain(&e);
                self.send(
                    peer,
                    TransferMsg::Refuse {
                        id,
                        reason: Refusal::CannotStore(detail(reason.clone())),
                    },
                );
                self.emit(TransferEvent::Failed {
                    peer,
                    id,
                    direction: Direction::Receive,
                    reason,
                });
                return;
            }
        };
        let writer = Writer::spawn((peer, id), inbox, manifest.clone(), self.reports.clone());
        self.resume_into.insert(id, folder.clone());
        self.incoming.insert(
            (peer, id),
            Incoming {
                summary: Summary::of(&manifest),
                manifest,
                receiver: None,
                writer,
                direction: Direction::Receive,
                folder,
                started: Instant::now(),
                meter: Meter::default(),
                finish_sent: false,
                fetch: None,
            },
        );
    }

    pub(super) fn on_report(&mut self, r: Report) {
        match r {
            Report::Opened(key, Ok(have)) => self.opened(key, have),
            Report::Opened(key, Err(e)) => {
                if key.0 != STORE {
                    self.send(
                        key.0,
                        TransferMsg::Refuse {
                            id: key.1,
                            reason: Refusal::CannotStore(detail(e.clone())),
                        },
                    );
                }
                self.drop_incoming(key, e);
            }
            Report::Verified(key, chunk) => {
                let Some(inc) = self.incoming.get_mut(&key) else {
                    return;
                };
                let Some(receiver) = &mut inc.receiver else {
                    return;
                };
                let written = receiver.written(chunk);
                match &mut inc.fetch {
                    Some((_, pacer, _)) => {
                        let _ = pacer.on_ack(chunk, Instant::now());
                    }
                    None => self.send(key.0, TransferMsg::Ack { id: key.1, chunk }),
                }
                if let Some(file) = written.file_complete {
                    self.finish_file(key, file);
                }
            }
            Report::Damaged(key, chunk) => {
                let Some(inc) = self.incoming.get_mut(&key) else {
                    return;
                };
                let Some(receiver) = &mut inc.receiver else {
                    return;
                };
                let bad = receiver.damaged(chunk);
                tracing::warn!(chunk, "a received chunk failed its check; asking again");
                match &mut inc.fetch {
                    Some((_, pacer, _)) => {
                        if pacer.on_bad(chunk).is_err() {
                            self.drop_incoming(
                                key,
                                "the relay's copy of the file is damaged".into(),
                            );
                        }
                    }
                    None => self.send(key.0, bad),
                }
            }
            Report::FileDone(key, Ok((path, full))) => {
                self.emit(TransferEvent::FileReceived {
                    peer: key.0,
                    id: key.1,
                    path,
                    full,
                });
            }
            Report::FileDone(key, Err(e)) | Report::WriteFailed(key, e) => {
                if key.0 != STORE {
                    self.send(
                        key.0,
                        TransferMsg::Cancel {
                            id: key.1,
                            reason: CancelReason::WriteFailed(detail(e.clone())),
                        },
                    );
                }
                self.drop_incoming(key, e);
            }
            Report::AllDone(key, r) => {
                let Some(inc) = self.incoming.remove(&key) else {
                    return;
                };
                self.resume_into.remove(&key.1);
                match r {
                    Ok(()) => {
                        if key.0 != STORE {
                            self.send(key.0, TransferMsg::Done { id: key.1 });
                        }
                        let (bytes, damaged) = inc
                            .receiver
                            .as_ref()
                            .map(|r| (r.bytes_done(), r.damaged_count()))
                            .unwrap_or_default();
                        self.emit(TransferEvent::Finished {
                            peer: key.0,
                            id: key.1,
                            direction: inc.direction,
                            outcome: Outcome {
                                bytes,
                                damaged,
                                secs: inc.started.elapsed().as_secs_f64(),
                                ..Outcome::default()
                            },
                        });
                    }
                    Err(e) => self.emit(TransferEvent::Failed {
                        peer: key.0,
                        id: key.1,
                        direction: inc.direction,
                        reason: e,
                    }),
                }
            }
            Report::ReadFailed(key, e) => {
                if key.0 != STORE {
                    self.send(
                        key.0,
                        TransferMsg::Cancel {
                            id: key.1,
                            reason: CancelReason::ReadFailed(detail(e.clone())),
                        },
                    );
                }
                self.fail(key.0, key.1, e);
            }
        }
    }

    /// The partial state is open: accept (or start fetching) with what is
    /// already there.
    pub(super) fn opened(&mut self, key: Key, have: Bitmap) {
        let Some(inc) = self.incoming.get_mut(&key) else {
            return;
        };
        let receiver = match Receiver::new(inc.manifest.clone(), have.clone()) {
            Ok(r) => r,
            Err(e) => return self.drop_incoming(key, e.to_string()),
        };
        let resumed = receiver.bytes_done();
        let complete: Vec<usize> = receiver.complete_files().collect();
        let accept = receiver.accept();
        inc.receiver = Some(receiver);
        if let Some((_, pacer, _)) = &mut inc.fetch {
            let _ = pacer.on_accept(have.as_bytes());
        }
        let started = TransferEvent::Started {
            peer: key.0,
            id: key.1,
            direction: inc.direction,
            summary: inc.summary.clone(),
            resumed,
            folder: Some(inc.folder.clone()),
        };
        if key.0 != STORE {
            self.send(key.0, accept);
        }
        self.emit(started);
        for file in complete {
            self.finish_file(key, file);
        }
        // A transfer of nothing but empty files and folders is done now.
        self.maybe_finish(key);
    }

    pub(super) fn finish_file(&mut self, key: Key, file: usize) {
        if let Some(inc) = self.incoming.get_mut(&key) {
            inc.writer.send(WriteJob::FinishFile(file));
        }
        self.maybe_finish(key);
    }

    /// Every chunk is in: the writer finishes after the files it was
    /// given (its queue keeps the order).
    pub(super) fn maybe_finish(&mut self, key: Key) {
        if let Some(inc) = self.incoming.get_mut(&key)
            && !inc.finish_sent
            && inc.receiver.as_ref().is_some_and(Receiver::is_done)
        {
            // Once: the writer stops after it.
            inc.writer.send(WriteJob::Finish);
            inc.finish_sent = true;
        }
    }

    pub(super) fn drop_incoming(&mut self, key: Key, reason: String) {
        if let Some(inc) = self.incoming.remove(&key) {
            self.emit(TransferEvent::Failed {
                peer: key.0,
                id: key.1,
                direction: inc.direction,
                reason,
            });
        }
    }

    /// A peer broke the protocol for one transfer: stop it on both sides.
    pub(super) fn protocol_failure(&mut self, peer: ChannelId, id: TransferId, why: String) {
        self.send(
            peer,
            TransferMsg::Cancel {
                id,
                reason: CancelReason::Protocol(detail(why.clone())),
            },
        );
        if let Some(inc) = self.incoming.remove(&(peer, id)) {
            inc.writer.send(WriteJob::Discard);
            self.emit(TransferEvent::Failed {
                peer,
                id,
                direction: inc.direction,
                reason: why,
            });
        } else {
            self.fail(peer, id, why);
        }
    }

    pub(super) fn fail(&mut self, peer: ChannelId, id: TransferId, reason: String) {
        if let Some(o) = self.outgoing.remove(&(peer, id)) {
            o.reader.flush();
            self.emit(TransferEvent::Failed {
                peer,
                id,
                direction: o.direction,
                reason,
            });
        }
    }

    pub(super) fn cancel(&mut self, peer: ChannelId, id: TransferId) {
        if self.offers.remove(&(peer, id)).is_some() {
            self.send(
                peer,
                TransferMsg::Refuse {
                    id,
                    reason: Refusal::Declined,
                },
            );
            return;
        }
        let cancel = TransferMsg::Cancel {
            id,
            reason: CancelReason::ByUser,
        };
        if let Some(inc) = self.incoming.remove(&(peer, id)) {
            if peer != STORE {
                self.send(peer, cancel);
            }
            inc.writer.send(WriteJob::Discard);
            self.resume_into.remove(&id);
            self.emit(TransferEvent::Failed {
                peer,
                id,
                direction: inc.direction,
                reason: "cancelled".into(),
            });
        } else if let Some(o) = self.outgoing.remove(&(peer, id)) {
            o.reader.flush();
            match o.direction {
                Direction::Park => {
                    let file = self.parks.iter().find(|(_, p)| p.id == id).map(|(f, _)| *f);
                    if let Some(file) = file {
                        self.parks.remove(&file);
                        self.link.store(StoreRequest::Delete { file });
                    }
                }
                _ => self.send(peer, cancel),
            }
            self.emit(TransferEvent::Failed {
                peer,
                id,
                direction: o.direction,
                reason: "cancelled".into(),
            });
        }
    }

    pub(super) fn peer_gone(&mut self, peer: ChannelId) {
        self.peers.remove(&peer);
        self.away.remove(&peer);
        self.offers.retain(|(p, _), _| *p != peer);
        let lost = "the connection was lost";
        let keys: Vec<Key> = self
            .outgoing
            .keys()
            .filter(|(p, _)| *p == peer)
            .copied()
            .collect();
        for key in keys {
            if let Some(o) = self.outgoing.remove(&key) {
                o.reader.flush();
                self.emit(TransferEvent::Failed {
                    peer,
                    id: key.1,
                    direction: o.direction,
                    reason: format!("{lost}; send the same files again to resume"),
                });
            }
        }
        let keys: Vec<Key> = self
            .incoming
            .keys()
            .filter(|(p, _)| *p == peer)
            .copied()
            .collect();
        for key in keys {
            // Dropping the writer keeps the partial files; the folder is
            // remembered so the same offer resumes without asking.
            if let Some(inc) = self.incoming.remove(&key) {
                self.resume_into.insert(key.1, inc.folder);
                self.emit(TransferEvent::Failed {
                    peer,
                    id: key.1,
                    direction: inc.direction,
                    reason: format!(
                        "{lost}; the partial files are kept and resume when offered again"
                    ),
                });
            }
        }
    }

    pub(super) fn start_sending(
        &mut self,
        peers: Vec<ChannelId>,
        scanned: Result<(Manifest, crate::transfer::disk::Source), String>,
    ) {
        let (manifest, source) = match scanned {
            Ok(s) => s,
            Err(e) => return self.emit(TransferEvent::Problem(format!("cannot send: {e}"))),
        };
        let valid = match ValidManifest::new(manifest, &Limits::default()) {
            Ok(v) => Arc::new(v),
            Err(e) => return self.emit(TransferEvent::Problem(format!("cannot send: {e}"))),
        };
        let id = valid.id();
        for peer in peers {
            if let Some(old) = self.outgoing.remove(&(peer, id)) {
                old.reader.flush();
            }
            let sender = Sender::new(valid.clone());
            let offer = sender.offer();
            let reader = Reader::spawn(
                (peer, id),
                source.reader(),
                Sink::Peer(peer),
                self.link.clone(),
                self.reports.clone(),
            );
            let summary = Summary::of(&valid);
            self.outgoing.insert(
                (peer, id),
                Outgoing {
                    sender,
                    reader,
                    direction: Direction::Send,
                    summary: summary.clone(),
                    started: Instant::now(),
                    meter: Meter::default(),
                },
            );
            self.send(peer, offer);
            self.emit(TransferEvent::Offering {
                peer,
                id,
                direction: Direction::Send,
                summary,
            });
        }
    }

    /// Hands chunks to the readers (and piece requests to the relay) as
    /// far as each transfer's window allows.
    pub(super) fn pump(&mut self, now: Instant) {
        for o in self.outgoing.values_mut() {
            let generation = o.reader.generation();
            while let Some((chunk, place)) = o.sender.poll_chunk(now) {
                o.reader.read(ReadJob {
                    chunk,
                    place,
                    generation,
                });
            }
        }
        for inc in self.incoming.values_mut() {
            if let Some((file, pacer, _)) = &mut inc.fetch {
                while let Some((chunk, _)) = pacer.poll_chunk(now) {
                    self.link.store(StoreRequest::Get {
                        file: *file,
                        index: chunk as u32,
                    });
                }
            }
        }
    }

    pub(super) fn progress(&mut self) {
        let now = Instant::now();
        let mut out = Vec::new();
        for ((peer, id), o) in &mut self.outgoing {
            if !o.sender.is_sending() {
                continue;
            }
            let done = o.sender.bytes_done();
            let rate = o.meter.rate(now, done);
            if o.meter.reported != Some(done) {
                o.meter.reported = Some(done);
                out.push(TransferEvent::Progress {
                    peer: *peer,
                    id: *id,
                    done,
                    total: o.sender.manifest().total_bytes(),
                    bytes_per_sec: rate,
                });
            }
        }
        for ((peer, id), inc) in &mut self.incoming {
            let Some(r) = &inc.receiver else { continue };
            let done = r.bytes_done();
            let rate = inc.meter.rate(now, done);
            if inc.meter.reported != Some(done) {
                inc.meter.reported = Some(done);
                out.push(TransferEvent::Progress {
                    peer: *peer,
                    id: *id,
                    done,
                    total: inc.manifest.total_bytes(),
                    bytes_per_sec: rate,
                });
            }
        }
        for e in out {
            self.emit(e);
        }
    }
}

pub(super) fn sent_outcome(stats: &SendStats, bytes: u64, started: Instant) -> Outcome {
    Outcome {
        bytes,
        chunks_sent: stats.chunks_sent,
        bytes_sent: stats.bytes_sent,
        resent: stats.resent,
        skipped: stats.skipped,
        damaged: 0,
        secs: started.elapsed().as_secs_f64(),
    }
}
