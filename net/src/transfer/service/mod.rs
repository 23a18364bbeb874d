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

mod parking;
mod peers;

use peers::sent_outcome;

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
}
