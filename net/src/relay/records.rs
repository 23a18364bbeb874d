//! The only thing the relay remembers about people: for each connection of a
//! host or viewer, its source IP address, the session number, whether it
//! was the host or a viewer, and when it started and ended. Nothing about
//! content, names or file names ever reaches this store (the relay never
//! sees them in clear anyway). Records older than the retention period
//! (14 days by default) are deleted on their own, and the database file is
//! compacted afterwards so that the deleted records do not linger in free
//! pages.
//!
//! Connection tasks must never wait for a disk, so they only send events to
//! one recorder thread, which writes them in batches.

use crate::number::SessionNumber;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use thiserror::Error;

use super::clock::Clock;

/// How long records are kept unless configured otherwise.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// How often the recorder looks for records past their retention.
const PURGE_EVERY: Duration = Duration::from_secs(60 * 60);

/// Events written per transaction at most.
const BATCH: usize = 1024;

const VISITS: TableDefinition<u64, &[u8]> = TableDefinition::new("visits");

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RecordError {
    #[error("participant records")]
    Db(#[from] redb::Error),
    #[error("a participant record cannot be decoded")]
    Decode(#[from] postcard::Error),
    #[error("the recorder has stopped")]
    Stopped,
}

fn db_err<E: Into<redb::Error>>(e: E) -> RecordError {
    RecordError::Db(e.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Host,
    Viewer,
}

/// One connection of one participant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visit {
    pub ip: IpAddr,
    pub number: SessionNumber,
    pub role: Role,
    /// Seconds since the Unix epoch.
    pub start: u64,
    /// Seconds since the Unix epoch; `None` while the connection lasts.
    pub end: Option<u64>,
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The records on disk. Used by the recorder thread only (and by tests).
pub struct RecordStore {
    db: Database,
}

impl RecordStore {
    /// Opens (or creates) the store. Visits a previous run left open ended
    /// when that run ended, which is not known: they are closed at `now`,
    /// so they are purged in time like every other.
    pub fn open(path: &Path, now: SystemTime) -> Result<(Self, u64), RecordError> {
        let db = Database::create(path).map_err(db_err)?;
        let now = unix_secs(now);
        let txn = db.begin_write().map_err(db_err)?;
        let next_id;
        {
            let mut table = txn.open_table(VISITS).map_err(db_err)?;
            next_id = table
                .last()
                .map_err(db_err)?
                .map_or(1, |(k, _)| k.value() + 1);
            let mut open = Vec::new();
            for entry in table.iter().map_err(db_err)? {
                let (k, v) = entry.map_err(db_err)?;
                let mut visit: Visit = postcard::from_bytes(v.value())?;
                if visit.end.is_none() {
                    visit.end = Some(now);
                    open.push((k.value(), visit));
                }
            }
            for (id, visit) in open {
                table
                    .insert(id, postcard::to_allocvec(&visit)?.as_slice())
                    .map_err(db_err)?;
            }
        }
        txn.commit().map_err(db_err)?;
        Ok((RecordStore { db }, next_id))
    }

    /// Writes a batch of events in one transaction.
    fn apply(&mut self, events: &[Event]) -> Result<(), RecordError> {
        let txn = self.db.begin_write().map_err(db_err)?;
        {
            let mut table = txn.open_table(VISITS).map_err(db_err)?;
            for event in events {
                match event {
                    Event::Start { id, visit } => {
                        table
                            .insert(*id, postcard::to_allocvec(visit)?.as_slice())
                            .map_err(db_err)?;
                    }
                    Event::End { id, at } => {
                        let visit = match table.get(*id).map_err(db_err)? {
                            Some(v) => Some(postcard::from_bytes::<Visit>(v.value())?),
                            None => None,
                        };
                        if let Some(mut visit) = visit {
                            visit.end = Some(*at);
                            table
                                .insert(*id, postcard::to_allocvec(&visit)?.as_slice())
                                .map_err(db_err)?;
                        }
                    }
                }
            }
        }
        txn.commit().map_err(db_err)
    }

    /// Deletes every visit that ended (or, if still open, started) more
    /// than `retention` before `now`, then compacts the file. Returns how
    /// many were deleted.
    pub fn purge(&mut self, now: SystemTime, retention: Duration) -> Result<u64, RecordError> {
        let cutoff = unix_secs(now).saturating_sub(retention.as_secs());
        let txn = self.db.begin_write().map_err(db_err)?;
        let mut deleted = 0;
        {
            let mut table = txn.open_table(VISITS).map_err(db_err)?;
            // An undecodable record is deleted too: it cannot prove its age.
            let expired = table
                .extract_if(|_, v| {
                    postcard::from_bytes::<Visit>(v)
                        .map_or(true, |visit| visit.end.unwrap_or(visit.start) < cutoff)
                })
                .map_err(db_err)?;
            for entry in expired {
                entry.map_err(db_err)?;
                deleted += 1;
            }
        }
        txn.commit().map_err(db_err)?;
        if deleted > 0 {
            self.db.compact().map_err(db_err)?;
        }
        Ok(deleted)
    }

    /// Every record in the store at `path`, oldest first, without changing
    /// it (for an operator answering a legal request). Fails while a relay
    /// has the store open.
    pub fn read(path: &Path) -> Result<Vec<Visit>, RecordError> {
        let db = Database::open(path).map_err(db_err)?;
        RecordStore { db }.visits()
    }

    /// Every record, oldest first.
    pub fn visits(&self) -> Result<Vec<Visit>, RecordError> {
        let txn = self.db.begin_read().map_err(db_err)?;
        let table = txn.open_table(VISITS).map_err(db_err)?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(db_err)? {
            let (_, v) = entry.map_err(db_err)?;
            out.push(postcard::from_bytes(v.value())?);
        }
        Ok(out)
    }
}

enum Event {
    Start { id: u64, visit: Visit },
    End { id: u64, at: u64 },
}

enum Command {
    Event(Event),
    /// Purge now and say how many went (tests, and an operator's clock jump).
    Purge(mpsc::Sender<Result<u64, RecordError>>),
    /// Answer once everything sent before is on disk.
    Flush(mpsc::Sender<Result<Vec<Visit>, RecordError>>),
}

/// The connection tasks' side of the records: cheap to clone, never blocks.
#[derive(Clone)]
pub struct Records {
    tx: Option<mpsc::Sender<Command>>,
    next_id: Arc<AtomicU64>,
    clock: Arc<dyn Clock>,
}

impl Records {
    /// Starts the recorder thread on `path`. A zero `retention` records
    /// nothing at all.
    pub fn start(
        path: &Path,
        retention: Duration,
        clock: Arc<dyn Clock>,
    ) -> Result<Records, RecordError> {
        if retention.is_zero() {
            return Ok(Records {
                tx: None,
                next_id: Arc::new(AtomicU64::new(1)),
                clock,
            });
        }
        let (mut store, next_id) = RecordStore::open(path, clock.wall())?;
        store.purge(clock.wall(), retention)?;
        let (tx, rx) = mpsc::channel();
        let thread_clock = clock.clone();
        std::thread::Builder::new()
            .name("relay-records".into())
            .spawn(move || record(store, rx, retention, thread_clock))
            .map_err(|e| RecordError::Db(redb::Error::Io(e)))?;
        Ok(Records {
            tx: Some(tx),
            next_id: Arc::new(AtomicU64::new(next_id)),
            clock,
        })
    }

    /// Records that a participant connected; the visit ends when the
    /// returned guard is dropped.
    pub fn visit(&self, ip: IpAddr, number: SessionNumber, role: Role) -> VisitGuard {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let start = unix_secs(self.clock.wall());
        self.send(Command::Event(Event::Start {
            id,
            visit: Visit {
                ip,
                number,
                role,
                start,
                end: None,
            },
        }));
        VisitGuard {
            id,
            records: self.clone(),
        }
    }

    fn send(&self, command: Command) {
        if let Some(tx) = &self.tx {
            // A stopped recorder has already logged why.
            let _ = tx.send(command);
        }
    }

    /// Deletes what is past the retention period now.
    pub fn purge(&self) -> Result<u64, RecordError> {
        let (reply, answer) = mpsc::channel();
        let Some(tx) = &self.tx else { return Ok(0) };
        tx.send(Command::Purge(reply))
            .map_err(|_| RecordError::Stopped)?;
        answer.recv().map_err(|_| RecordError::Stopped)?
    }

    /// Every record, once everything recorded so far is on disk.
    pub fn visits(&self) -> Result<Vec<Visit>, RecordError> {
        let (reply, answer) = mpsc::channel();
        let Some(tx) = &self.tx else {
            return Ok(Vec::new());
        };
        tx.send(Command::Flush(reply))
            .map_err(|_| RecordError::Stopped)?;
        answer.recv().map_err(|_| RecordError::Stopped)?
    }
}

/// Ends its visit's record when dropped, however the connection ended.
pub struct VisitGuard {
    id: u64,
    records: Records,
}

impl Drop for VisitGuard {
    fn drop(&mut self) {
        let at = unix_secs(self.records.clock.wall());
        self.records
            .send(Command::Event(Event::End { id: self.id, at }));
    }
}

/// The recorder thread: writes events in batches, purges every hour, ends
/// when every sender is gone.
fn record(
    mut store: RecordStore,
    rx: mpsc::Receiver<Command>,
    retention: Duration,
    clock: Arc<dyn Clock>,
) {
    let mut last_purge = std::time::Instant::now();
    let mut batch = Vec::new();
    loop {
        let first = match rx.recv_timeout(PURGE_EVERY) {
            Ok(c) => Some(c),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let mut replies = Vec::new();
        let mut purge_asked = Vec::new();
        for command in first.into_iter().chain(rx.try_iter().take(BATCH)) {
            match command {
                Command::Event(e) => batch.push(e),
                Command::Purge(reply) => purge_asked.push(reply),
                Command::Flush(reply) => replies.push(reply),
            }
        }
        if !batch.is_empty() {
            if let Err(e) = store.apply(&batch) {
                tracing::error!(error = %crate::error_chain(&e), "cannot write participant records");
            }
            batch.clear();
        }
        if !purge_asked.is_empty() || last_purge.elapsed() >= PURGE_EVERY {
            last_purge = std::time::Instant::now();
            let result = store.purge(clock.wall(), retention);
            match &result {
                Ok(n) if *n > 0 => tracing::info!(deleted = n, "purged old participant records"),
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %crate::error_chain(e), "cannot purge participant records")
                }
            }
            for reply in purge_asked {
                let _ = reply.send(match &result {
                    Ok(n) => Ok(*n),
                    Err(_) => Err(RecordError::Stopped),
                });
            }
        }
        for reply in replies {
            let _ = reply.send(store.visits());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::clock::ManualClock;

    const DAY: Duration = Duration::from_secs(24 * 60 * 60);

    fn number(n: u64) -> SessionNumber {
        SessionNumber::new(n).unwrap()
    }

    #[test]
    fn records_past_the_retention_period_are_purged_and_younger_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::default());
        let records = Records::start(
            &dir.path().join("records.redb"),
            DEFAULT_RETENTION,
            clock.clone(),
        )
        .unwrap();
        let old_ip: IpAddr = "198.51.100.7".parse().unwrap();
        let new_ip: IpAddr = "203.0.113.9".parse().unwrap();
        drop(records.visit(old_ip, number(12345), Role::Host));
        clock.advance(2 * DAY);
        drop(records.visit(new_ip, number(23456), Role::Viewer));
        // One still connected since before the period: its record stays
        // while it lasts (its start is not its end).
        clock.advance(13 * DAY);
        let live = records.visit(new_ip, number(34567), Role::Host);

        // Day 15: the first visit is past 14 days, the second is 13 days old.
        assert_eq!(records.purge().unwrap(), 1);
        let left = records.visits().unwrap();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left.iter().all(|v| v.ip == new_ip));
        assert_eq!(left[0].role, Role::Viewer);
        assert_eq!(left[0].number, number(23456));
        assert!(left[0].end.is_some());
        assert_eq!(left[1].end, None, "a live visit has no end yet");

        clock.advance(2 * DAY);
        assert_eq!(records.purge().unwrap(), 1);
        drop(live);
        clock.advance(14 * DAY + Duration::from_secs(1));
        assert_eq!(records.purge().unwrap(), 1);
        assert!(records.visits().unwrap().is_empty());
    }

    #[test]
    fn a_restart_closes_visits_left_open_and_keeps_ids_unique() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.redb");
        let clock = Arc::new(ManualClock::default());
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        {
            // The relay dies while a host is connected: its visit has no end.
            let (mut store, id) = RecordStore::open(&path, clock.wall()).unwrap();
            let visit = Visit {
                ip,
                number: number(11111),
                role: Role::Host,
                start: unix_secs(clock.wall()),
                end: None,
            };
            store.apply(&[Event::Start { id, visit }]).unwrap();
        }
        clock.advance(Duration::from_secs(90));
        let records = Records::start(&path, DEFAULT_RETENTION, clock.clone()).unwrap();
        drop(records.visit(ip, number(22222), Role::Viewer));
        let visits = records.visits().unwrap();
        assert_eq!(visits.len(), 2, "{visits:?}");
        assert_eq!(visits[0].end, Some(visits[0].start + 90));
        assert_eq!(visits[1].number, number(22222));
        assert!(visits[1].end.is_some());
    }

    #[test]
    fn zero_retention_records_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("records.redb");
        let records =
            Records::start(&path, Duration::ZERO, Arc::new(ManualClock::default())).unwrap();
        drop(records.visit("192.0.2.1".parse().unwrap(), number(11111), Role::Host));
        assert!(records.visits().unwrap().is_empty());
        assert!(!path.exists());
    }
}
