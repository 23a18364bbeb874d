//! The relay's file store: hosts park sealed files here for every viewer
//! of their session (`transfer::store` says what the clients do).
//!
//! The relay holds ciphertext only and cannot open it: it never sees a
//! key, a name or a hash. Files live under `DATA/files/SESSION/SLOT` while
//! the session lives and are deleted when it ends; what a crashed relay
//! left behind is deleted at start, since no session survives a restart.
//! Space is reserved when a host opens a slot, so the per-session and
//! per-relay limits hold before a byte is written, and a refusal says which
//! limit it hit.

use crate::number::SessionNumber;
use crate::transfer::store::{StoreEvent, StoreRefusal, StoreRequest};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Limits of the file store. A per-session limit of 0 switches it off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Bytes one session may park at once.
    pub per_session: u64,
    /// Bytes all sessions together may park.
    pub per_relay: u64,
    /// Files one session may park at once.
    pub files_per_session: u32,
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits {
            per_session: 1 << 30,
            per_relay: 8 << 30,
            files_per_session: 64,
        }
    }
}

/// One parked file.
struct Slot {
    size: u64,
    piece_len: u64,
    pieces: u64,
    /// The next piece the host must put.
    next: u64,
    committed: bool,
}

#[derive(Default)]
struct SessionFiles {
    used: u64,
    slots: HashMap<u64, Slot>,
}

#[derive(Default)]
struct State {
    used: u64,
    sessions: HashMap<SessionNumber, SessionFiles>,
}

pub struct FileStore {
    root: PathBuf,
    limits: StoreLimits,
    state: Mutex<State>,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(unix)]
fn write_at(f: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, buf, offset)
}

#[cfg(unix)]
fn read_at(f: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, offset)
}

#[cfg(windows)]
fn write_at(f: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = f.seek_write(buf, offset)?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        buf = &buf[n..];
        offset += n as u64;
    }
    Ok(())
}

#[cfg(windows)]
fn read_at(f: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = f.seek_read(buf, offset)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}

impl FileStore {
    /// Opens the store under `root`, deleting whatever an earlier run left.
    pub fn open(root: PathBuf, limits: StoreLimits) -> io::Result<FileStore> {
        match fs::remove_dir_all(&root) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        fs::create_dir_all(&root)?;
        Ok(FileStore {
            root,
            limits,
            state: Mutex::new(State::default()),
        })
    }

    fn session_dir(&self, session: SessionNumber) -> PathBuf {
        self.root.join(session.to_string())
    }

    fn slot_path(&self, session: SessionNumber, file: u64) -> PathBuf {
        self.session_dir(session).join(format!("{file:016x}"))
    }

    /// Bytes reserved by all sessions.
    pub fn used(&self) -> u64 {
        lock(&self.state).used
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A request from the session's host. Blocking (file I/O).
    pub fn host(&self, session: SessionNumber, request: StoreRequest) -> StoreEvent {
        match request {
            StoreRequest::Open {
                file,
                size,
                piece_len,
            } => self.open_slot(session, file, size, u64::from(piece_len)),
            StoreRequest::Put { file, index, data } => self.put(session, file, index, &data),
            StoreRequest::Commit { file } => {
                let mut state = lock(&self.state);
                let slot = state
                    .sessions
                    .get_mut(&session)
                    .and_then(|s| s.slots.get_mut(&file));
                match slot {
                    Some(slot) if slot.next == slot.pieces => {
                        slot.committed = true;
                        StoreEvent::Committed { file }
                    }
                    Some(_) => refused(file, StoreRefusal::BadPiece),
                    None => refused(file, StoreRefusal::NoSuchFile),
                }
            }
            StoreRequest::Delete { file } => {
                let removed = {
                    let mut state = lock(&self.state);
                    let freed = state
                        .sessions
                        .get_mut(&session)
                        .and_then(|s| s.slots.remove(&file).map(|slot| (s, slot.size)))
                        .map(|(s, size)| {
                            s.used -= size;
                            size
                        });
                    if let Some(size) = freed {
                        state.used -= size;
                    }
                    freed.is_some()
                };
                if !removed {
                    return refused(file, StoreRefusal::NoSuchFile);
                }
                let _ = fs::remove_file(self.slot_path(session, file));
                StoreEvent::Deleted { file }
            }
            StoreRequest::Get { file, index } => self.get(session, file, index),
        }
    }

    /// A request from a viewer of the session: it may only fetch.
    pub fn viewer(&self, session: SessionNumber, request: StoreRequest) -> StoreEvent {
        match request {
            StoreRequest::Get { file, index } => self.get(session, file, index),
            StoreRequest::Open { file, .. }
            | StoreRequest::Put { file, .. }
            | StoreRequest::Commit { file }
            | StoreRequest::Delete { file } => refused(file, StoreRefusal::NotHost),
        }
    }

    fn open_slot(
        &self,
        session: SessionNumber,
        file: u64,
        size: u64,
        piece_len: u64,
    ) -> StoreEvent {
        if self.limits.per_session == 0 {
            return refused(file, StoreRefusal::Disabled);
        }
        if piece_len == 0 || piece_len > crate::frame::MAX_PAYLOAD as u64 / 2 {
            return refused(file, StoreRefusal::BadPiece);
        }
        {
            let mut state = lock(&self.state);
            let relay_used = state.used;
            let s = state.sessions.entry(session).or_default();
            if s.slots.contains_key(&file) {
                return refused(file, StoreRefusal::Exists);
            }
            if s.slots.len() >= self.limits.files_per_session as usize {
                return refused(
                    file,
                    StoreRefusal::TooManyFiles {
                        limit: self.limits.files_per_session,
                    },
                );
            }
            if s.used.saturating_add(size) > self.limits.per_session {
                return refused(
                    file,
                    StoreRefusal::SessionFull {
                        limit: self.limits.per_session,
                    },
                );
            }
            if relay_used.saturating_add(size) > self.limits.per_relay {
                return refused(
                    file,
                    StoreRefusal::RelayFull {
                        limit: self.limits.per_relay,
                    },
                );
            }
            s.used += size;
            s.slots.insert(
                file,
                Slot {
                    size,
                    piece_len,
                    pieces: size.div_ceil(piece_len),
                    next: 0,
                    committed: false,
                },
            );
            state.used += size;
        }
        let made = fs::create_dir_all(self.session_dir(session)).and_then(|()| {
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(self.slot_path(session, file))
        });
        match made {
            Ok(_) => StoreEvent::Opened { file },
            Err(e) => {
                tracing::warn!(error = %e, "file store: cannot create a slot");
                self.host(session, StoreRequest::Delete { file });
                refused(file, StoreRefusal::Failed)
            }
        }
    }

    fn put(&self, session: SessionNumber, file: u64, index: u32, data: &[u8]) -> StoreEvent {
        let index = u64::from(index);
        let offset = {
            let mut state = lock(&self.state);
            let Some(slot) = state
                .sessions
                .get_mut(&session)
                .and_then(|s| s.slots.get_mut(&file))
            else {
                return refused(file, StoreRefusal::NoSuchFile);
            };
            let expected = if index + 1 == slot.pieces {
                slot.size - slot.piece_len * index
            } else {
                slot.piece_len
            };
            if slot.committed || index != slot.next || data.len() as u64 != expected {
                return refused(file, StoreRefusal::BadPiece);
            }
            slot.next += 1;
            index * slot.piece_len
        };
        let written = OpenOptions::new()
            .write(true)
            .open(self.slot_path(session, file))
            .and_then(|f| write_at(&f, data, offset));
        match written {
            Ok(()) => StoreEvent::Stored {
                file,
                index: index as u32,
            },
            Err(e) => {
                tracing::warn!(error = %e, "file store: write failed");
                refused(file, StoreRefusal::Failed)
            }
        }
    }

    fn get(&self, session: SessionNumber, file: u64, index: u32) -> StoreEvent {
        let index = u64::from(index);
        let (offset, len) = {
            let state = lock(&self.state);
            match state
                .sessions
                .get(&session)
                .and_then(|s| s.slots.get(&file))
            {
                Some(slot) if slot.committed && index < slot.pieces => {
                    let offset = index * slot.piece_len;
                    (offset, slot.piece_len.min(slot.size - offset))
                }
                _ => return refused(file, StoreRefusal::NoSuchFile),
            }
        };
        let mut data = vec![0u8; len as usize];
        let read =
            File::open(self.slot_path(session, file)).and_then(|f| read_at(&f, &mut data, offset));
        match read {
            Ok(()) => StoreEvent::Piece {
                file,
                index: index as u32,
                data,
            },
            Err(e) => {
                tracing::warn!(error = %e, "file store: read failed");
                refused(file, StoreRefusal::Failed)
            }
        }
    }

    /// The session ended: its files are deleted and their space freed.
    pub fn end_session(&self, session: SessionNumber) {
        let had = {
            let mut state = lock(&self.state);
            match state.sessions.remove(&session) {
                Some(s) => {
                    state.used -= s.used;
                    true
                }
                None => false,
            }
        };
        if had
            && let Err(e) = fs::remove_dir_all(self.session_dir(session))
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, "file store: cannot delete a session's files");
        }
    }
}

fn refused(file: u64, reason: StoreRefusal) -> StoreEvent {
    StoreEvent::Refused { file, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(n: u64) -> SessionNumber {
        SessionNumber::new(n).unwrap()
    }

    #[test]
    fn limits_hold_and_ended_sessions_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("files");
        std::fs::create_dir_all(root.join("55555")).unwrap();
        std::fs::write(root.join("55555/stale"), b"left by a crash").unwrap();
        let store = FileStore::open(
            root.clone(),
            StoreLimits {
                per_session: 100,
                per_relay: 150,
                files_per_session: 2,
            },
        )
        .unwrap();
        assert!(!root.join("55555").exists(), "leftovers deleted at start");
        let (a, b) = (number(11111), number(22222));
        let open = |s, file, size| {
            store.host(
                s,
                StoreRequest::Open {
                    file,
                    size,
                    piece_len: 40,
                },
            )
        };
        assert_eq!(open(a, 1, 90), StoreEvent::Opened { file: 1 });
        assert_eq!(
            open(a, 2, 20),
            refused(2, StoreRefusal::SessionFull { limit: 100 })
        );
        assert_eq!(
            open(b, 3, 61),
            refused(3, StoreRefusal::RelayFull { limit: 150 })
        );
        assert_eq!(open(a, 4, 10), StoreEvent::Opened { file: 4 });
        assert_eq!(
            open(a, 5, 0),
            refused(5, StoreRefusal::TooManyFiles { limit: 2 })
        );

        // Pieces in order and of the announced size only.
        let put = |index, len: usize| {
            store.host(
                a,
                StoreRequest::Put {
                    file: 1,
                    index,
                    data: vec![index as u8; len],
                },
            )
        };
        assert_eq!(put(1, 40), refused(1, StoreRefusal::BadPiece));
        assert_eq!(put(0, 39), refused(1, StoreRefusal::BadPiece));
        assert_eq!(put(0, 40), StoreEvent::Stored { file: 1, index: 0 });
        assert_eq!(
            store.host(a, StoreRequest::Commit { file: 1 }),
            refused(1, StoreRefusal::BadPiece)
        );
        assert_eq!(put(1, 40), StoreEvent::Stored { file: 1, index: 1 });
        assert_eq!(put(2, 10), StoreEvent::Stored { file: 1, index: 2 });
        // Nothing to fetch before the commit, and viewers cannot write.
        assert_eq!(
            store.viewer(a, StoreRequest::Get { file: 1, index: 0 }),
            refused(1, StoreRefusal::NoSuchFile)
        );
        assert_eq!(
            store.host(a, StoreRequest::Commit { file: 1 }),
            StoreEvent::Committed { file: 1 }
        );
        assert_eq!(
            store.viewer(a, StoreRequest::Get { file: 1, index: 2 }),
            StoreEvent::Piece {
                file: 1,
                index: 2,
                data: vec![2; 10]
            }
        );
        assert_eq!(
            store.viewer(b, StoreRequest::Get { file: 1, index: 2 }),
            refused(1, StoreRefusal::NoSuchFile),
            "another session's file"
        );
        assert_eq!(
            store.viewer(a, StoreRequest::Delete { file: 1 }),
            refused(1, StoreRefusal::NotHost)
        );
        assert_eq!(store.used(), 100);
        store.end_session(a);
        assert_eq!(store.used(), 0);
        assert!(!root.join("11111").exists());
        assert_eq!(open(b, 3, 60), StoreEvent::Opened { file: 3 });
    }
}
