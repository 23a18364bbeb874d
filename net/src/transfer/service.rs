//! The transfer service: a task that runs every transfer of one session
//! side, fed the session's transfer messages and the person's decisions,
//! and sending through a [`Link`]. The app's engines forward
//! [`Message::Transfer`](crate::message::Message::Transfer) to it and show
//! its [`TransferEvent`]s; they do no transfer logic themselves.
//!
//! Pacing: each outgoing transfer has its own [`Window`](super::window::Window)
//! of bytes in flight, and its chunks go into the session's ordered stream
//! one by one as acknowledgements return, so a video frame never queues
//! behind more than one window of chunks.

use super::disk::{Inbox, scan};
use super::manifest::{Limits, Manifest, ValidManifest};
use super::path::RelPath;
use super::sender::SendStats;
use super::store::{
    PIECE_OVERHEAD, ParkedFile, PieceCipher, StoreEvent, StoreKey, StoreRequest, stored_size,
};
use super::workers::{Key, Link, ReadJob, Reader, Report, Sink, WriteJob, Writer};
use super::{Bitmap, CancelReason, Receiver, Refusal, Sender, TransferId, TransferMsg, detail};
use crate::frame::ChannelId;
use crate::message::Message;
use rand::RngCore;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

pub use super::workers::Link as TransferLink;

/// How often progress is reported.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// The span a transfer's speed is measured over.
const RATE_SPAN: Duration = Duration::from_secs(2);
/// Offers one peer may have waiting for an answer.
pub const MAX_OFFERS_WAITING: usize = 8;
/// Key of transfers with the relay's store rather than a peer.
const STORE: ChannelId = ChannelId::CONTROL;

#[derive(Debug, Clone, Default)]
pub struct ServiceConfig {
    /// Take every offer into this folder without asking.
    pub auto_accept: Option<PathBuf>,
    pub limits: Limits,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// To the peer.
    Send,
    /// From the peer.
    Receive,
    /// Host: up to the relay's store.
    Park,
    /// Viewer: down from the relay's store.
    Fetch,
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Direction::Send => "send",
            Direction::Receive => "receive",
            Direction::Park => "park",
            Direction::Fetch => "fetch",
        })
    }
}

/// What a transfer holds, for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The first top-level name, with "and N more" when there are more.
    pub name: String,
    pub files: usize,
    pub bytes: u64,
}

impl Summary {
    fn of(m: &ValidManifest) -> Summary {
        let mut tops: Vec<&str> = m.paths().iter().map(RelPath::top).collect();
        tops.dedup();
        let name = match tops.as_slice() {
            [] => String::new(),
            [one] => (*one).to_owned(),
            [first, rest @ ..] => format!("{first} and {} more", rest.len()),
        };
        Summary {
            name,
            files: m.files().len(),
            bytes: m.total_bytes(),
        }
    }
}

/// How a finished transfer went.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Outcome {
    pub bytes: u64,
    /// Sending: chunks this side put on the link (repeats included), and
    /// their bytes.
    pub chunks_sent: u64,
    pub bytes_sent: u64,
    /// Chunks sent again because the receiver found them damaged.
    pub resent: u64,
    /// Chunks the receiver already had (resume).
    pub skipped: u64,
    /// Receiving: chunks that failed their check and were asked for again.
    pub damaged: u64,
    pub secs: f64,
}

#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TransferEvent {
    /// The peer offers files: [`TransferService::accept`] or `decline`.
    Offered {
        peer: ChannelId,
        id: TransferId,
        summary: Summary,
    },
    /// An offer was refused without asking (invalid, unsafe, too large).
    Refused {
        peer: ChannelId,
        id: TransferId,
        reason: String,
    },
    /// We offered (or started parking); waiting for the other side.
    Offering {
        peer: ChannelId,
        id: TransferId,
        direction: Direction,
        summary: Summary,
    },
    /// Chunks flow. `resumed` bytes were there already.
    Started {
        peer: ChannelId,
        id: TransferId,
        direction: Direction,
        summary: Summary,
        resumed: u64,
        folder: Option<PathBuf>,
    },
    Progress {
        peer: ChannelId,
        id: TransferId,
        done: u64,
        total: u64,
        bytes_per_sec: f64,
    },
    /// A received file is complete, checked, and at its final place.
    FileReceived {
        peer: ChannelId,
        id: TransferId,
        path: RelPath,
        full: PathBuf,
    },
    Finished {
        peer: ChannelId,
        id: TransferId,
        direction: Direction,
        outcome: Outcome,
    },
    /// Stopped: cancelled, refused, lost or failed. Partial files of a
    /// lost connection stay for a resume.
    Failed {
        peer: ChannelId,
        id: TransferId,
        direction: Direction,
        reason: String,
    },
    /// Host: a file is parked in the relay's store for every viewer.
    Parked {
        file: u64,
        id: TransferId,
        summary: Summary,
    },
    /// Viewer: the host parked a file; [`TransferService::fetch`] it.
    ParkedAvailable {
        file: u64,
        id: TransferId,
        summary: Summary,
    },
    /// A request could not be carried out (nothing to send, a folder that
    /// cannot be read); no transfer was started.
    Problem(String),
}

enum Command {
    Message(ChannelId, TransferMsg),
    Store(StoreEvent),
    Send(Vec<ChannelId>, Vec<PathBuf>),
    Scanned(
        Vec<ChannelId>,
        Result<(Manifest, super::disk::Source), String>,
    ),
    Accept(ChannelId, TransferId, PathBuf),
    Decline(ChannelId, TransferId),
    Cancel(ChannelId, TransferId),
    Park(Vec<PathBuf>),
    Parkable(Result<(Manifest, super::disk::Source), String>),
    Fetch(u64, PathBuf),
    PeerAllowed(ChannelId),
    PeerGone(ChannelId),
    PeerAway(ChannelId),
    PeerBack(ChannelId),
}

/// Controls the service. Cheap to clone; the task ends when every handle
/// is dropped.
#[derive(Clone)]
pub struct TransferService {
    tx: mpsc::UnboundedSender<Command>,
}

impl TransferService {
    /// Starts the service on the current tokio runtime.
    pub fn spawn(
        link: Arc<dyn Link>,
        config: ServiceConfig,
    ) -> (TransferService, mpsc::UnboundedReceiver<TransferEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (rep_tx, rep_rx) = mpsc::unbounded_channel();
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let service = Service {
            link,
            config,
            events: ev_tx,
            reports: rep_tx,
            commands: tx.clone(),
            outgoing: HashMap::new(),
            incoming: HashMap::new(),
            offers: HashMap::new(),
            resume_into: HashMap::new(),
            store_secret: secret,
            parks: HashMap::new(),
            peers: HashSet::new(),
            away: HashSet::new(),
            known_parked: HashMap::new(),
        };
        tokio::spawn(service.run(rx, rep_rx));
        (TransferService { tx }, ev_rx)
    }

    fn send(&self, c: Command) {
        let _ = self.tx.send(c);
    }

    /// A transfer message from `peer`.
    pub fn on_message(&self, peer: ChannelId, message: TransferMsg) {
        self.send(Command::Message(peer, message));
    }

    /// A file-store event from the relay.
    pub fn on_store_event(&self, event: StoreEvent) {
        self.send(Command::Store(event));
    }

    /// Offers files and folders to each of `peers`.
    pub fn send_files(&self, peers: Vec<ChannelId>, paths: Vec<PathBuf>) {
        self.send(Command::Send(peers, paths));
    }

    pub fn accept(&self, peer: ChannelId, id: TransferId, folder: PathBuf) {
        self.send(Command::Accept(peer, id, folder));
    }

    pub fn decline(&self, peer: ChannelId, id: TransferId) {
        self.send(Command::Decline(peer, id));
    }

    /// Stops a transfer in either direction and tells the other side.
    pub fn cancel(&self, peer: ChannelId, id: TransferId) {
        self.send(Command::Cancel(peer, id));
    }

    /// Host: parks one file in the relay's store for every viewer.
    pub fn park(&self, paths: Vec<PathBuf>) {
        self.send(Command::Park(paths));
    }

    /// Viewer: downloads a parked file into `folder`.
    pub fn fetch(&self, file: u64, folder: PathBuf) {
        self.send(Command::Fetch(file, folder));
    }

    /// Host: a viewer was allowed; it learns about the parked files.
    pub fn peer_allowed(&self, peer: ChannelId) {
        self.send(Command::PeerAllowed(peer));
    }

    /// The peer's connection is gone: its transfers stop; partial files
    /// stay, and the same files offered again resume.
    pub fn peer_gone(&self, peer: ChannelId) {
        self.send(Command::PeerGone(peer));
    }

    /// The peer's connection dropped and the session waits for it to come
    /// back (its transfers just pause). Meanwhile the same files offered
    /// on another connection take its incoming transfers over.
    pub fn peer_away(&self, peer: ChannelId) {
        self.send(Command::PeerAway(peer));
    }

    /// The peer is back; its transfers go on where they were.
    pub fn peer_back(&self, peer: ChannelId) {
        self.send(Command::PeerBack(peer));
    }
}

/// Speed over the last [`RATE_SPAN`].
#[derive(Default)]
struct Meter {
    samples: VecDeque<(Instant, u64)>,
    reported: Option<u64>,
}

impl Meter {
    fn rate(&mut self, now: Instant, done: u64) -> f64 {
        self.samples.push_back((now, done));
        while self
            .samples
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > RATE_SPAN)
            && self.samples.len() > 2
        {
            self.samples.pop_front();
        }
        match (self.samples.front(), self.samples.back()) {
            (Some((t0, b0)), Some((t1, b1))) if t1 > t0 => {
                (b1 - b0) as f64 / t1.duration_since(*t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}

struct Outgoing {
    sender: Sender,
    reader: Reader,
    direction: Direction,
    summary: Summary,
    started: Instant,
    meter: Meter,
}

struct Incoming {
    manifest: Arc<ValidManifest>,
    /// `None` while the partial state is being opened (hashed again).
    receiver: Option<Receiver>,
    writer: Writer,
    direction: Direction,
    summary: Summary,
    folder: PathBuf,
    started: Instant,
    meter: Meter,
    /// The writer was told to finish (it stops after that).
    finish_sent: bool,
    /// Fetching from the store: its pacing and its cipher.
    fetch: Option<(u64, Sender, Arc<PieceCipher>)>,
}

/// A file the host parks or has parked.
struct Park {
    id: TransferId,
    manifest: Arc<ValidManifest>,
    key: StoreKey,
    committed: bool,
}

struct Service {
    link: Arc<dyn Link>,
    config: ServiceConfig,
    events: mpsc::UnboundedSender<TransferEvent>,
    reports: mpsc::UnboundedSender<Report>,
    commands: mpsc::UnboundedSender<Command>,
    outgoing: HashMap<Key, Outgoing>,
    incoming: HashMap<Key, Incoming>,
    /// Offers waiting for the person.
    offers: HashMap<Key, Arc<ValidManifest>>,
    /// Transfers accepted before whose connection dropped: offered again,
    /// they resume into the same folder without asking.
    resume_into: HashMap<TransferId, PathBuf>,
    store_secret: [u8; 32],
    parks: HashMap<u64, Park>,
    peers: HashSet<ChannelId>,
    /// Peers whose connection dropped, waiting to come back.
    away: HashSet<ChannelId>,
    known_parked: HashMap<u64, ParkedFile>,
}

impl Service {
    fn emit(&self, e: TransferEvent) {
        let _ = self.events.send(e);
    }

    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut reports: mpsc::UnboundedReceiver<Report>,
    ) {
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        loop {
            tokio::select! {
                c = commands.recv() => match c {
                    Some(c) => self.on_command(c),
                    None => break,
                },
                Some(r) = reports.recv() => self.on_report(r),
                _ = tick.tick() => self.progress(),
            }
            self.pump(Instant::now());
        }
    }

    fn on_command(&mut self, c: Command) {
        match c {
            Command::Message(peer, m) => self.on_message(peer, m),
            Command::Store(e) => self.on_store(e),
            Command::Send(peers, paths) => {
                let tx = self.commands.clone();
                tokio::task::spawn_blocking(move || {
                    let r = scan(&paths).map_err(|e| crate::error_chain(&e));
                    let _ = tx.send(Command::Scanned(peers, r));
                });
            }
            Command::Scanned(peers, r) => self.start_sending(peers, r),
            Command::Accept(peer, id, folder) => {
                if let Some(m) = self.offers.remove(&(peer, id)) {
                    self.accept(peer, m, folder);
                }
            }
            Command::Decline(peer, id) => {
                if self.offers.remove(&(peer, id)).is_some() {
                    self.send(
                        peer,
                        TransferMsg::Refuse {
                            id,
                            reason: Refusal::Declined,
                        },
                    );
                }
            }
            Command::Cancel(peer, id) => self.cancel(peer, id),
            Command::Park(paths) => {
                let tx = self.commands.clone();
                tokio::task::spawn_blocking(move || {
                    let r = scan(&paths).map_err(|e| crate::error_chain(&e));
                    let _ = tx.send(Command::Parkable(r));
                });
            }
            Command::Parkable(r) => self.start_parking(r),
            Command::Fetch(file, folder) => self.start_fetch(file, folder),
            Command::PeerAllowed(peer) => {
                self.peers.insert(peer);
                let notices: Vec<ParkedFile> = self
                    .parks
                    .iter()
                    .filter(|(_, p)| p.committed)
                    .map(|(file, p)| ParkedFile {
                        file: *file,
                        manifest: p.manifest.manifest().clone(),
                        key: p.key.to_bytes(),
                    })
                    .collect();
                for n in notices {
                    self.send(peer, TransferMsg::Parked(n));
                }
            }
            Command::PeerGone(peer) => self.peer_gone(peer),
            Command::PeerAway(peer) => {
                self.away.insert(peer);
            }
            Command::PeerBack(peer) => {
                self.away.remove(&peer);
            }
        }
    }

    fn send(&self, peer: ChannelId, m: TransferMsg) {
        self.link.send(peer, Message::Transfer(m));
    }

    fn on_message(&mut self, peer: ChannelId, m: TransferMsg) {
        let now = Instant::now();
        match m {
            TransferMsg::Offer { manifest } => self.on_offer(peer, manifest),
            TransferMsg::Accept { id, have } => {
                if let Some(o) = self.outgoing.get_mut(&(peer, id)) {
                    match o.sender.on_accept(&have) {
                        Ok(()) => {
                            let e = TransferEvent::Started {
                                peer,
                                id,
                                direction: o.direction,
                                summary: o.summary.clone(),
                                resumed: o.sender.bytes_done(),
                                folder: None,
                            };
                            self.emit(e);
                        }
                        Err(e) => self.protocol_failure(peer, id, e.to_string()),
                    }
                }
            }
            TransferMsg::Refuse { id, reason } => {
                if let Some(o) = self.outgoing.remove(&(peer, id)) {
                    self.emit(TransferEvent::Failed {
                        peer,
                        id,
                        direction: o.direction,
                        reason: reason.to_string(),
                    });
                }
            }
            TransferMsg::Chunk { id, chunk, data } => {
                let Some(inc) = self.incoming.get(&(peer, id)) else {
                    return; // late chunk of a cancelled transfer
                };
                let Some(receiver) = &inc.receiver else {
                    return self.protocol_failure(peer, id, "chunk before accept".into());
                };
                match receiver.on_chunk(chunk) {
                    Ok(Some(place)) => inc.writer.send(WriteJob::Chunk {
                        chunk,
                        place,
                        data,
                        piece: None,
                    }),
                    Ok(None) => self.send(peer, TransferMsg::Ack { id, chunk }),
                    Err(e) => self.protocol_failure(peer, id, e.to_string()),
                }
            }
            TransferMsg::Ack { id, chunk } => {
                if let Some(o) = self.outgoing.get_mut(&(peer, id))
                    && let Err(e) = o.sender.on_ack(chunk, now)
                {
                    self.protocol_failure(peer, id, e.to_string());
                }
            }
            TransferMsg::Bad { id, chunk } => {
                if let Some(o) = self.outgoing.get_mut(&(peer, id)) {
                    tracing::warn!(
                        chunk,
                        "the receiver found a chunk damaged; sending it again"
                    );
                    if let Err(e) = o.sender.on_bad(chunk) {
                        self.send(
                            peer,
                            TransferMsg::Cancel {
                                id,
                                reason: CancelReason::ChunkKeepsFailing,
                            },
                        );
                        self.fail(peer, id, e.to_string());
                    }
                }
            }
            TransferMsg::Cancel { id, reason } => {
                self.offers.remove(&(peer, id));
                let why = format!("the other side stopped the transfer: {reason}");
                if let Some(inc) = self.incoming.remove(&(peer, id)) {
                    inc.writer.send(WriteJob::Discard);
                    self.emit(TransferEvent::Failed {
                        peer,
                        id,
                        direction: inc.direction,
                        reason: why,
                    });
                } else if let Some(o) = self.outgoing.remove(&(peer, id)) {
                    o.reader.flush();
                    self.emit(TransferEvent::Failed {
                        peer,
                        id,
                        direction: o.direction,
                        reason: why,
                    });
                }
            }
            TransferMsg::Done { id } => {
                if let Some(mut o) = self.outgoing.remove(&(peer, id)) {
                    match o.sender.on_done() {
                        Ok(()) => self.emit(TransferEvent::Finished {
                            peer,
                            id,
                            direction: o.direction,
                            outcome: sent_outcome(
                                &o.sender.stats(),
                                o.sender.bytes_done(),
                                o.started,
                            ),
                        }),
                        Err(e) => {
                            self.outgoing.insert((peer, id), o);
                            self.protocol_failure(peer, id, e.to_string());
                        }
                    }
                }
            }
            TransferMsg::Parked(p) => self.on_parked(p),
        }
    }

    fn on_offer(&mut self, peer: ChannelId, manifest: Manifest) {
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

    fn accept(&mut self, peer: ChannelId, manifest: Arc<ValidManifest>, folder: PathBuf) {
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

    fn on_report(&mut self, r: Report) {
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
    fn opened(&mut self, key: Key, have: Bitmap) {
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

    fn finish_file(&mut self, key: Key, file: usize) {
        if let Some(inc) = self.incoming.get_mut(&key) {
            inc.writer.send(WriteJob::FinishFile(file));
        }
        self.maybe_finish(key);
    }

    /// Every chunk is in: the writer finishes after the files it was
    /// given (its queue keeps the order).
    fn maybe_finish(&mut self, key: Key) {
        if let Some(inc) = self.incoming.get_mut(&key)
            && !inc.finish_sent
            && inc.receiver.as_ref().is_some_and(Receiver::is_done)
        {
            // Once: the writer stops after it.
            inc.writer.send(WriteJob::Finish);
            inc.finish_sent = true;
        }
    }

    fn drop_incoming(&mut self, key: Key, reason: String) {
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
    fn protocol_failure(&mut self, peer: ChannelId, id: TransferId, why: String) {
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

    fn fail(&mut self, peer: ChannelId, id: TransferId, reason: String) {
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

    fn cancel(&mut self, peer: ChannelId, id: TransferId) {
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

    fn peer_gone(&mut self, peer: ChannelId) {
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

    fn start_sending(
        &mut self,
        peers: Vec<ChannelId>,
        scanned: Result<(Manifest, super::disk::Source), String>,
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

    fn start_parking(&mut self, scanned: Result<(Manifest, super::disk::Source), String>) {
        let (manifest, source) = match scanned {
            Ok(s) => s,
            Err(e) => return self.emit(TransferEvent::Problem(format!("cannot park: {e}"))),
        };
        if manifest.entries.len() != 1
            || !matches!(manifest.entries[0].kind, super::EntryKind::File { .. })
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

    fn on_store(&mut self, e: StoreEvent) {
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

    fn maybe_commit(&mut self, file: u64) {
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

    fn on_parked(&mut self, p: ParkedFile) {
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

    fn start_fetch(&mut self, file: u64, folder: PathBuf) {
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

    /// Hands chunks to the readers (and piece requests to the relay) as
    /// far as each transfer's window allows.
    fn pump(&mut self, now: Instant) {
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

    fn progress(&mut self) {
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

fn sent_outcome(stats: &SendStats, bytes: u64, started: Instant) -> Outcome {
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
