//! The disk threads of the transfer service: one reader per outgoing
//! transfer, one writer per incoming one. Reading, hashing, sealing and
//! writing 256 KiB at a time would stall an async task, and a thread per
//! transfer keeps the order of its chunks without any locking.

use super::disk::{DiskError, Inbox, Partial, SourceReader};
use super::manifest::{ChunkPlace, ValidManifest};
use super::path::RelPath;
use super::store::{PieceCipher, StoreRequest};
use super::{Bitmap, TransferId, TransferMsg};
use crate::frame::ChannelId;
use crate::message::Message;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use tokio::sync::mpsc;

/// Where the service's messages go: the session (and, for the file
/// store, the relay behind it).
pub trait Link: Send + Sync + 'static {
    /// A sealed message to `peer` (the host's viewer channel; a viewer
    /// ignores `peer`: its only peer is the host).
    fn send(&self, peer: ChannelId, message: Message);
    /// A request to the relay's file store.
    fn store(&self, request: StoreRequest);
}

/// Which transfer a worker reports about.
pub(super) type Key = (ChannelId, TransferId);

/// What the workers tell the service.
#[derive(Debug)]
pub(super) enum Report {
    ReadFailed(Key, String),
    Opened(Key, Result<Bitmap, String>),
    Verified(Key, u64),
    Damaged(Key, u64),
    FileDone(Key, Result<(RelPath, PathBuf), String>),
    AllDone(Key, Result<(), String>),
    WriteFailed(Key, String),
}

/// Where a reader sends the chunks it reads.
#[derive(Clone)]
pub(super) enum Sink {
    /// To the peer, as transfer chunks.
    Peer(ChannelId),
    /// To the relay's store, sealed under the parked file's key.
    Store { file: u64, cipher: Arc<PieceCipher> },
}

pub(super) struct ReadJob {
    pub chunk: u64,
    pub place: ChunkPlace,
    /// The reader's generation when the job was made; a job from before a
    /// pause or cancel is dropped.
    pub generation: u64,
}

/// An outgoing transfer's reader thread.
pub(super) struct Reader {
    jobs: std_mpsc::Sender<ReadJob>,
    generation: Arc<AtomicU64>,
}

impl Reader {
    pub fn spawn(
        key: Key,
        mut source: SourceReader,
        sink: Sink,
        link: Arc<dyn Link>,
        reports: mpsc::UnboundedSender<Report>,
    ) -> Reader {
        let (tx, rx) = std_mpsc::channel::<ReadJob>();
        let generation = Arc::new(AtomicU64::new(0));
        let current = generation.clone();
        let spawned = std::thread::Builder::new()
            .name("transfer-read".into())
            .spawn(move || {
                for job in rx {
                    if job.generation != current.load(Ordering::Acquire) {
                        continue;
                    }
                    let data = match source.read(&job.place) {
                        Ok(d) => d,
                        Err(e) => {
                            let _ = reports.send(Report::ReadFailed(key, crate::error_chain(&e)));
                            return;
                        }
                    };
                    match &sink {
                        Sink::Peer(peer) => link.send(
                            *peer,
                            Message::Transfer(TransferMsg::Chunk {
                                id: key.1,
                                chunk: job.chunk,
                                data,
                            }),
                        ),
                        Sink::Store { file, cipher } => {
                            let index = job.chunk as u32;
                            link.store(StoreRequest::Put {
                                file: *file,
                                index,
                                data: cipher.seal(index, data),
                            })
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a transfer reader");
        }
        Reader {
            jobs: tx,
            generation,
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn read(&self, job: ReadJob) {
        let _ = self.jobs.send(job);
    }

    /// Drops every queued job (pause, cancel).
    pub fn flush(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

pub(super) enum WriteJob {
    /// A chunk to check and write; `piece` set when it comes sealed from
    /// the relay's store.
    Chunk {
        chunk: u64,
        place: ChunkPlace,
        data: Vec<u8>,
        piece: Option<Arc<PieceCipher>>,
    },
    FinishFile(usize),
    Finish,
    Discard,
}

/// An incoming transfer's writer thread; it owns the partial files.
pub(super) struct Writer {
    jobs: std_mpsc::Sender<WriteJob>,
    /// Cleared when the service drops this writer (connection lost,
    /// cancel): the thread then skips what is queued except a discard and
    /// reports nothing more, so a new writer for the same transfer (a
    /// resume) never hears from this one.
    live: Arc<AtomicBool>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.live.store(false, Ordering::Release);
    }
}

impl Writer {
    /// Opens (or resumes) the partial state in `inbox` on the thread and
    /// reports [`Report::Opened`] with the chunks already there.
    pub fn spawn(
        key: Key,
        inbox: Inbox,
        manifest: Arc<ValidManifest>,
        reports: mpsc::UnboundedSender<Report>,
    ) -> Writer {
        let (tx, rx) = std_mpsc::channel::<WriteJob>();
        let live = Arc::new(AtomicBool::new(true));
        let alive = live.clone();
        let reports = Reports {
            tx: reports,
            live: live.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name("transfer-write".into())
            .spawn(move || {
                let mut partial = match inbox.open(manifest.clone()) {
                    Ok((partial, have)) => {
                        let _ = reports.send(Report::Opened(key, Ok(have)));
                        partial
                    }
                    Err(e) => {
                        let _ = reports.send(Report::Opened(key, Err(crate::error_chain(&e))));
                        return;
                    }
                };
                for job in rx {
                    // Once dropped, only a discard still counts: a cancel
                    // queues one and drops the writer at once.
                    if !alive.load(Ordering::Acquire) && !matches!(job, WriteJob::Discard) {
                        continue;
                    }
                    match job {
                        WriteJob::Chunk {
                            chunk,
                            place,
                            data,
                            piece,
                        } => {
                            let data = match piece {
                                Some(cipher) => match cipher.open(chunk as u32, data) {
                                    Ok(d) => d,
                                    Err(_) => {
                                        let _ = reports.send(Report::Damaged(key, chunk));
                                        continue;
                                    }
                                },
                                None => data,
                            };
                            if !manifest.verify(chunk, &data) {
                                let _ = reports.send(Report::Damaged(key, chunk));
                                continue;
                            }
                            match partial.write(&place, &data) {
                                Ok(()) => {
                                    let _ = reports.send(Report::Verified(key, chunk));
                                }
                                Err(e) => {
                                    let _ = reports
                                        .send(Report::WriteFailed(key, crate::error_chain(&e)));
                                    return;
                                }
                            }
                        }
                        WriteJob::FinishFile(file) => {
                            let done = finish_file(&mut partial, file);
                            let failed = done.is_err();
                            let _ = reports.send(Report::FileDone(key, done));
                            if failed {
                                // Never finish (and clean up) after a file
                                // that did not reach its place.
                                return;
                            }
                        }
                        WriteJob::Finish => {
                            let r = partial.finish().map_err(|e| crate::error_chain(&e));
                            let _ = reports.send(Report::AllDone(key, r));
                            return;
                        }
                        WriteJob::Discard => {
                            partial.discard();
                            return;
                        }
                    }
                }
                // The service dropped us (connection gone): the partial
                // files stay for a resume.
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a transfer writer");
        }
        Writer { jobs: tx, live }
    }

    pub fn send(&self, job: WriteJob) {
        let _ = self.jobs.send(job);
    }
}

/// A writer's reports, silenced once its [`Writer`] is dropped.
struct Reports {
    tx: mpsc::UnboundedSender<Report>,
    live: Arc<AtomicBool>,
}

impl Reports {
    fn send(&self, r: Report) -> Result<(), ()> {
        if !self.live.load(Ordering::Acquire) {
            return Err(());
        }
        self.tx.send(r).map_err(|_| ())
    }
}

fn finish_file(partial: &mut Partial, file: usize) -> Result<(RelPath, PathBuf), String> {
    partial
        .finish_file(file)
        .map(|rel| {
            let full = rel.under(partial.root());
            (rel, full)
        })
        .map_err(|e: DiskError| crate::error_chain(&e))
}
