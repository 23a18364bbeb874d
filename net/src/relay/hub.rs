//! Who is connected to whom: live sessions, their host and their viewers.
//!
//! Each session has its own lock, so routing a frame only contends with the
//! same session's other connections, never with the whole relay.

use super::outbox::{Outbox, Overflow};
use crate::control::{LeaveReason, RelayEvent};
use crate::number::SessionNumber;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio_util::sync::CancellationToken;

/// One connection as seen by the router: where to queue its frames and how
/// to close it.
#[derive(Clone)]
pub struct Peer {
    pub outbox: Outbox,
    pub cancel: CancellationToken,
}

impl Peer {
    /// Tells the peer why, then closes its connection.
    pub fn close(&self, reason: LeaveReason) {
        self.outbox.event(&RelayEvent::Closed { reason });
        self.cancel.cancel();
    }
}

pub struct Session {
    pub number: SessionNumber,
    pub host: Peer,
    viewers: Mutex<Viewers>,
}

struct Viewers {
    map: HashMap<u16, Peer>,
    next_channel: u16,
    /// Set when the session ends, so no viewer joins a dying session.
    closed: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep going.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Why a viewer could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddViewerError {
    Full,
    Ended,
}

impl Session {
    pub fn new(number: SessionNumber, host: Peer) -> Self {
        Session {
            number,
            host,
            viewers: Mutex::new(Viewers {
                map: HashMap::new(),
                next_channel: 1,
                closed: false,
            }),
        }
    }

    /// Adds a viewer and tells the host; returns its channel. Channels are
    /// never reused within a session, so a late frame for a viewer that left
    /// can never reach a newcomer.
    pub fn add_viewer(&self, peer: Peer, max: usize) -> Result<u16, AddViewerError> {
        let mut v = lock(&self.viewers);
        if v.closed {
            return Err(AddViewerError::Ended);
        }
        if v.map.len() >= max || v.next_channel == u16::MAX {
            return Err(AddViewerError::Full);
        }
        let channel = v.next_channel;
        v.next_channel += 1;
        v.map.insert(channel, peer);
        self.host
            .outbox
            .event(&RelayEvent::ViewerJoined { channel });
        Ok(channel)
    }

    /// Forwards a host frame to the viewer on `channel`. A viewer whose queue
    /// is full is dropped. Frames for a channel that is gone are discarded:
    /// they are late frames for a viewer that just left.
    pub fn to_viewer(&self, channel: u16, bytes: Vec<u8>) -> bool {
        let peer = lock(&self.viewers).map.get(&channel).cloned();
        match peer {
            Some(p) => match p.outbox.push(bytes) {
                Ok(()) => true,
                Err(Overflow) => {
                    self.remove_viewer(channel, LeaveReason::TooSlow);
                    false
                }
            },
            None => false,
        }
    }

    /// Removes a viewer (if still there): closes it and tells the host.
    pub fn remove_viewer(&self, channel: u16, reason: LeaveReason) {
        let removed = lock(&self.viewers).map.remove(&channel);
        if let Some(peer) = removed {
            peer.close(reason);
            self.host
                .outbox
                .event(&RelayEvent::ViewerLeft { channel, reason });
        }
    }

    /// Ends the session: every viewer is closed with `reason`.
    pub fn end(&self, reason: LeaveReason) {
        let viewers: Vec<Peer> = {
            let mut v = lock(&self.viewers);
            v.closed = true;
            v.map.drain().map(|(_, p)| p).collect()
        };
        for p in viewers {
            p.close(reason);
        }
    }

    pub fn viewer_count(&self) -> usize {
        lock(&self.viewers).map.len()
    }
}

/// All live sessions of this relay.
#[derive(Default)]
pub struct Hub {
    sessions: Mutex<HashMap<SessionNumber, Arc<Session>>>,
}

impl Hub {
    pub fn insert(&self, session: Arc<Session>) {
        lock(&self.sessions).insert(session.number, session);
    }

    pub fn get(&self, number: SessionNumber) -> Option<Arc<Session>> {
        lock(&self.sessions).get(&number).cloned()
    }

    pub fn remove(&self, number: SessionNumber) -> Option<Arc<Session>> {
        lock(&self.sessions).remove(&number)
    }

    pub fn len(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// Every session, for shutdown.
    pub fn drain(&self) -> Vec<Arc<Session>> {
        lock(&self.sessions).drain().map(|(_, s)| s).collect()
    }
}
