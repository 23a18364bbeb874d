//! Files parked at the relay's encrypted store: putting them there in
//! sealed pieces, committing them, telling viewers, and fetching them back.

use super::*;

impl Service {
    pub(super) fn start_parking(
        &mut self,
        scanned: Result<(Manifest, crate::transfer::disk::Source), String>,
    ) {
        let (manifest, source) = match scanned {
            Ok(s) => s,
            Err(e) => return self.emit(TransferEvent::Problem(format!("cannot park: {e}"))),
        };
        if manifest.entries.len() != 1
            || !matches!(
                manifest.entries[0].kind,
                crate::transfer::EntryKind::File { .. }
            )
        {
            return self.emit(TransferEvent::Problem(
                "cannot park: the relay's store takes one file at a time, not folders".into(),
            ));
        }
        let valid = match ValidManifest::new(manifest, &Limits::default()) {
            Ok(v) => Arc::new(v),
            Err(e) => return self.emit(TransferEvent::Problem(format!("cannot park: {e}"))),
        };
        // A fresh slot, hence a fresh key: no (key, piece) pair is ever
        // sealed twice, even if the same file is parked again.
        let file = rand::rngs::OsRng.next_u64();
        let key = StoreKey::derive(&self.store_secret, file);
        let pieces = valid.total_chunks() as u32;
        let cipher = Arc::new(PieceCipher::new(&key, file, pieces));
        let id = valid.id();
        let reader = Reader::spawn(
            (STORE, id),
            source.reader(),
            Sink::Store { file, cipher },
            self.link.clone(),
            self.reports.clone(),
        );
        let summary = Summary::of(&valid);
        self.link.store(StoreRequest::Open {
            file,
            size: stored_size(valid.total_bytes(), valid.chunk_len()),
            piece_len: (valid.chunk_len() + PIECE_OVERHEAD) as u32,
        });
        self.outgoing.insert(
            (STORE, id),
            Outgoing {
                sender: Sender::new(valid.clone()),
                reader,
                direction: Direction::Park,
                summary: summary.clone(),
                started: Instant::now(),
                meter: Meter::default(),
            },
        );
        self.parks.insert(
            file,
            Park {
                id,
                manifest: valid,
                key,
                committed: false,
            },
        );
        self.emit(TransferEvent::Offering {
            peer: STORE,
            id,
            direction: Direction::Park,
            summary,
        });
    }

    pub(super) fn on_store(&mut self, e: StoreEvent) {
        let now = Instant::now();
        match e {
            StoreEvent::Opened { file } => {
                let Some(park) = self.parks.get(&file) else {
                    return;
                };
                let id = park.id;
                if let Some(o) = self.outgoing.get_mut(&(STORE, id)) {
                    let none = Bitmap::new(park.manifest.total_chunks());
                    let _ = o.sender.on_accept(none.as_bytes());
                    let e = TransferEvent::Started {
                        peer: STORE,
                        id,
                        direction: Direction::Park,
                        summary: o.summary.clone(),
                        resumed: 0,
                        folder: None,
                    };
                    self.emit(e);
                }
                self.maybe_commit(file);
            }
            StoreEvent::Stored { file, index } => {
                let Some(park) = self.parks.get(&file) else {
                    return;
                };
                if let Some(o) = self.outgoing.get_mut(&(STORE, park.id)) {
                    let _ = o.sender.on_ack(u64::from(index), now);
                }
                self.maybe_commit(file);
            }
            StoreEvent::Committed { file } => {
                let Some(park) = self.parks.get_mut(&file) else {
                    return;
                };
                park.committed = true;
                let id = park.id;
                let notice = ParkedFile {
                    file,
                    manifest: park.manifest.manifest().clone(),
                    key: park.key.to_bytes(),
                };
                let summary = Summary::of(&park.manifest);
                if let Some(mut o) = self.outgoing.remove(&(STORE, id)) {
                    let _ = o.sender.on_done();
                    self.emit(TransferEvent::Finished {
                        peer: STORE,
                        id,
                        direction: Direction::Park,
                        outcome: sent_outcome(&o.sender.stats(), o.sender.bytes_done(), o.started),
                    });
                }
                for peer in self.peers.clone() {
                    self.send(peer, TransferMsg::Parked(notice.clone()));
                }
                self.emit(TransferEvent::Parked { file, id, summary });
            }
            StoreEvent::Piece { file, index, data } => {
                let key = self
                    .incoming
                    .iter()
                    .find(|(_, inc)| inc.fetch.as_ref().is_some_and(|(f, _, _)| *f == file))
                    .map(|(k, _)| *k);
                let Some(key) = key else { return };
                let Some(inc) = self.incoming.get(&key) else {
                    return;
                };
                let (Some(receiver), Some((_, _, cipher))) = (&inc.receiver, &inc.fetch) else {
                    return;
                };
                match receiver.on_chunk(u64::from(index)) {
                    Ok(Some(place)) => inc.writer.send(WriteJob::Chunk {
                        chunk: u64::from(index),
                        place,
                        data,
                        piece: Some(cipher.clone()),
                    }),
                    Ok(None) => {}
                    Err(e) => self.drop_incoming(key, format!("the relay sent a wrong piece: {e}")),
                }
            }
            StoreEvent::Refused { file, reason } => {
                if let Some(park) = self.parks.remove(&file) {
                    self.fail(
                        STORE,
                        park.id,
                        format!("the relay refused to store the file: {reason}"),
                    );
                    return;
                }
                let key = self
                    .incoming
                    .iter()
                    .find(|(_, inc)| inc.fetch.as_ref().is_some_and(|(f, _, _)| *f == file))
                    .map(|(k, _)| *k);
                if let Some(key) = key {
                    self.drop_incoming(key, format!("the relay cannot serve the file: {reason}"));
                }
            }
            StoreEvent::Deleted { .. } => {}
        }
    }

    pub(super) fn maybe_commit(&mut self, file: u64) {
        let Some(park) = self.parks.get(&file) else {
            return;
        };
        if let Some(o) = self.outgoing.get(&(STORE, park.id))
            && o.sender.is_sending()
            && o.sender.all_acked()
        {
            self.link.store(StoreRequest::Commit { file });
        }
    }

    pub(super) fn on_parked(&mut self, p: ParkedFile) {
        let Ok(valid) = ValidManifest::new(p.manifest.clone(), &self.config.limits) else {
            tracing::warn!("the host parked a file with an invalid manifest; ignored");
            return;
        };
        let file = p.file;
        let id = valid.id();
        let summary = Summary::of(&valid);
        self.known_parked.insert(file, p);
        self.emit(TransferEvent::ParkedAvailable { file, id, summary });
        if let Some(folder) = self.config.auto_accept.clone() {
            self.start_fetch(file, folder);
        }
    }

    pub(super) fn start_fetch(&mut self, file: u64, folder: PathBuf) {
        let Some(p) = self.known_parked.get(&file) else {
            return self.emit(TransferEvent::Problem("no such parked file".into()));
        };
        let valid = match ValidManifest::new(p.manifest.clone(), &self.config.limits) {
            Ok(v) => Arc::new(v),
            Err(e) => return self.emit(TransferEvent::Problem(e.to_string())),
        };
        let id = valid.id();
        if self.incoming.contains_key(&(STORE, id)) {
            return;
        }
        let key = StoreKey::from_bytes(p.key);
        let cipher = Arc::new(PieceCipher::new(&key, file, valid.total_chunks() as u32));
        let inbox = match Inbox::new(&folder) {
            Ok(i) => i,
            Err(e) => return self.emit(TransferEvent::Problem(crate::error_chain(&e))),
        };
        let writer = Writer::spawn((STORE, id), inbox, valid.clone(), self.reports.clone());
        self.incoming.insert(
            (STORE, id),
            Incoming {
                summary: Summary::of(&valid),
                fetch: Some((file, Sender::new(valid.clone()), cipher)),
                manifest: valid,
                receiver: None,
                writer,
                direction: Direction::Fetch,
                folder,
                started: Instant::now(),
                meter: Meter::default(),
                finish_sent: false,
            },
        );
    }
}
