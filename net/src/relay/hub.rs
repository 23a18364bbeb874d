//! Who is connected to whom: live sessions, their host and their viewers.
//!
//! Each session has its own lock, so routing a frame only contends with the
//! same session's other connections, never with the whole relay.

use super::outbox::{Outbox, Overflow};
use crate::control::{LeaveReason, RelayEvent};
use crate::number::SessionNumber;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

/// One connection as seen by the router: where to queue its frames and how
/// to close it.
#[derive(Clone)]
pub struct Peer {
    pub outbox: Outbox,
    pub cancel: CancellationToken,
    /// Tells this connection from the one that may replace it on resume.
    pub id: u64,
}

impl Peer {
    /// Tells the peer why, then closes its connection.
    pub fn close(&self, reason: LeaveReason) {
        self.outbox.event(&RelayEvent::Closed { reason });
        self.cancel.cancel();
    }
}

/// A secret the relay hands each participant for taking its place again
/// after a dropped connection.
pub type ResumeToken = [u8; 32];

/// What the relay keeps of a resume token: its SHA-256. A copy of the
/// relay's memory or of the family's shared store does not let anyone take
/// a place.
pub type TokenHash = [u8; 32];

pub fn token_hash(token: &ResumeToken) -> TokenHash {
    use sha2::Digest;
    sha2::Sha256::digest(token).into()
}

/// A participant's place in a session: its connection while it has one.
struct Slot {
    peer: Option<Peer>,
    token: TokenHash,
    /// Bumped on every detach and resume, so that a grace timer from an
    /// earlier absence cannot end a later one.
    generation: u64,
}

impl Slot {
    fn new(peer: Peer, token: &ResumeToken) -> Self {
        Slot {
            peer: Some(peer),
            token: token_hash(token),
            generation: 0,
        }
    }

    /// A place taken over from another relay, empty until its participant
    /// comes back (generation 1, for the grace timer).
    fn empty(token: TokenHash) -> Self {
        Slot {
            peer: None,
            token,
            generation: 1,
        }
    }

    /// Forgets `peer_id`'s connection; the generation of this absence.
    fn detach(&mut self, peer_id: u64) -> Option<u64> {
        if self.peer.as_ref().map(|p| p.id) != Some(peer_id) {
            return None;
        }
        self.peer = None;
        self.generation += 1;
        Some(self.generation)
    }

    fn away(&self, generation: u64) -> bool {
        self.peer.is_none() && self.generation == generation
    }

    /// Puts `peer` in the place if it holds the token; an old connection
    /// still there (not yet noticed dead) is closed.
    fn resume(&mut self, peer: Peer, token: &ResumeToken) -> bool {
        if !bool::from(self.token.ct_eq(&token_hash(token))) {
            return false;
        }
        if let Some(old) = self.peer.replace(peer) {
            old.cancel.cancel();
        }
        self.generation += 1;
        true
    }
}

pub struct Session {
    pub number: SessionNumber,
    host: Mutex<Slot>,
    viewers: Mutex<Viewers>,
}

struct Viewers {
    map: HashMap<u16, Slot>,
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
    pub fn new(number: SessionNumber, host: Peer, token: &ResumeToken) -> Self {
        Session {
            number,
            host: Mutex::new(Slot::new(host, token)),
            viewers: Mutex::new(Viewers {
                map: HashMap::new(),
                next_channel: 1,
                closed: false,
            }),
        }
    }

    /// A session taken over from a relay of the family that is gone: every
    /// place is empty, waiting for its participant (generation 1).
    pub fn adopted(number: SessionNumber, places: &super::cluster::Places) -> Self {
        Session {
            number,
            host: Mutex::new(Slot::empty(places.host)),
            viewers: Mutex::new(Viewers {
                map: places
                    .viewers
                    .iter()
                    .map(|(channel, token)| (*channel, Slot::empty(*token)))
                    .collect(),
                next_channel: places.next_channel.max(1),
                closed: false,
            }),
        }
    }

    /// The viewers' channels, for the grace timers of an adopted session.
    pub fn channels(&self) -> Vec<u16> {
        lock(&self.viewers).map.keys().copied().collect()
    }

    /// The channel the next viewer gets.
    pub fn next_channel(&self) -> u16 {
        lock(&self.viewers).next_channel
    }

    fn host_peer(&self) -> Option<Peer> {
        lock(&self.host).peer.clone()
    }

    /// Queues a viewer's frame for the host. While the host is away the
    /// frame is dropped (`Ok(false)`): the ends resend what the other
    /// missed once they are back.
    pub fn to_host(&self, bytes: Vec<u8>) -> Result<bool, Overflow> {
        match self.host_peer() {
            Some(p) => p.outbox.push(bytes).map(|()| true),
            None => Ok(false),
        }
    }

    fn host_event(&self, event: &RelayEvent) {
        if let Some(p) = self.host_peer() {
            p.outbox.event(event);
        }
    }

    /// Adds a viewer and tells the host; returns its channel. Channels are
    /// never reused within a session, so a late frame for a viewer that left
    /// can never reach a newcomer.
    pub fn add_viewer(
        &self,
        peer: Peer,
        token: &ResumeToken,
        max: usize,
    ) -> Result<u16, AddViewerError> {
        let channel = {
            let mut v = lock(&self.viewers);
            if v.closed {
                return Err(AddViewerError::Ended);
            }
            if v.map.len() >= max || v.next_channel == u16::MAX {
                return Err(AddViewerError::Full);
            }
            let channel = v.next_channel;
            v.next_channel += 1;
            v.map.insert(channel, Slot::new(peer, token));
            channel
        };
        self.host_event(&RelayEvent::ViewerJoined { channel });
        Ok(channel)
    }

    /// Forwards a host frame to the viewer on `channel`. A viewer whose queue
    /// is full is dropped. Frames for a channel that is gone (late frames
    /// for a viewer that just left) or away are discarded.
    pub fn to_viewer(&self, channel: u16, bytes: Vec<u8>) -> bool {
        let peer = lock(&self.viewers)
            .map
            .get(&channel)
            .and_then(|s| s.peer.clone());
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
        if let Some(slot) = removed {
            if let Some(peer) = slot.peer {
                peer.close(reason);
            }
            self.host_event(&RelayEvent::ViewerLeft { channel, reason });
        }
    }

    /// Ends the session: every viewer is closed with `reason`.
    pub fn end(&self, reason: LeaveReason) {
        let viewers: Vec<Peer> = {
            let mut v = lock(&self.viewers);
            v.closed = true;
            v.map.drain().filter_map(|(_, s)| s.peer).collect()
        };
        for p in viewers {
            p.close(reason);
        }
    }

    /// Closes every connection of the session without a word, as a link
    /// that dropped: its participants resume elsewhere.
    pub fn drop_links(&self) {
        let mut peers: Vec<Peer> = lock(&self.viewers)
            .map
            .values()
            .filter_map(|s| s.peer.clone())
            .collect();
        peers.extend(self.host_peer());
        for p in peers {
            p.cancel.cancel();
        }
    }

    pub fn viewer_count(&self) -> usize {
        lock(&self.viewers).map.len()
    }

    /// Closes the host's connection, if it has one.
    pub fn close_host(&self, reason: LeaveReason) {
        if let Some(p) = self.host_peer() {
            p.close(reason);
        }
    }

    /// Whether `peer_id` is (still) the host's connection.
    pub fn is_host(&self, peer_id: u64) -> bool {
        lock(&self.host).peer.as_ref().map(|p| p.id) == Some(peer_id)
    }

    /// The host's connection `peer_id` dropped: keep its place, tell the
    /// viewers. Returns the absence's generation for the grace timer.
    pub fn host_away(&self, peer_id: u64) -> Option<u64> {
        let generation = lock(&self.host).detach(peer_id)?;
        let viewers: Vec<Peer> = lock(&self.viewers)
            .map
            .values()
            .filter_map(|s| s.peer.clone())
            .collect();
        for v in viewers {
            v.outbox.event(&RelayEvent::PeerAway { channel: 0 });
        }
        Some(generation)
    }

    /// Whether the host is still away since `generation`.
    pub fn host_still_away(&self, generation: u64) -> bool {
        lock(&self.host).away(generation)
    }

    /// A new connection takes the host's place if it holds the token.
    pub fn resume_host(&self, peer: Peer, token: &ResumeToken) -> bool {
        if !lock(&self.host).resume(peer, token) {
            return false;
        }
        let viewers: Vec<Peer> = lock(&self.viewers)
            .map
            .values()
            .filter_map(|s| s.peer.clone())
            .collect();
        for v in viewers {
            v.outbox.event(&RelayEvent::PeerBack { channel: 0 });
        }
        true
    }

    /// A viewer's connection dropped: keep its place, tell the host.
    pub fn viewer_away(&self, channel: u16, peer_id: u64) -> Option<u64> {
        let generation = lock(&self.viewers).map.get_mut(&channel)?.detach(peer_id)?;
        self.host_event(&RelayEvent::PeerAway { channel });
        Some(generation)
    }

    pub fn viewer_still_away(&self, channel: u16, generation: u64) -> bool {
        lock(&self.viewers)
            .map
            .get(&channel)
            .is_some_and(|s| s.away(generation))
    }

    /// Whether the session still has a place on `channel`.
    pub fn has_viewer(&self, channel: u16) -> bool {
        lock(&self.viewers).map.contains_key(&channel)
    }

    /// Whether `peer_id` is (still) the connection of the viewer on `channel`.
    pub fn is_viewer(&self, channel: u16, peer_id: u64) -> bool {
        lock(&self.viewers)
            .map
            .get(&channel)
            .and_then(|s| s.peer.as_ref())
            .map(|p| p.id)
            == Some(peer_id)
    }

    /// A new connection takes the viewer's place if it holds the token.
    pub fn resume_viewer(&self, channel: u16, peer: Peer, token: &ResumeToken) -> bool {
        let resumed = lock(&self.viewers)
            .map
            .get_mut(&channel)
            .is_some_and(|s| s.resume(peer, token));
        if resumed {
            self.host_event(&RelayEvent::PeerBack { channel });
        }
        resumed
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

    /// Inserts `make()` unless a session with that number is there; returns
    /// the one in the hub. Two participants of a session taken over from
    /// another relay may arrive at once.
    pub fn insert_if_absent(
        &self,
        number: SessionNumber,
        make: impl FnOnce() -> Session,
    ) -> (Arc<Session>, bool) {
        let mut sessions = lock(&self.sessions);
        if let Some(s) = sessions.get(&number) {
            return (s.clone(), false);
        }
        let s = Arc::new(make());
        sessions.insert(number, s.clone());
        (s, true)
    }

    /// The numbers of every live session.
    pub fn numbers(&self) -> Vec<SessionNumber> {
        lock(&self.sessions).keys().copied().collect()
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

    /// Viewers connected to all sessions together.
    pub fn viewers(&self) -> usize {
        lock(&self.sessions)
            .values()
            .map(|s| s.viewer_count())
            .sum()
    }

    /// Every session, for shutdown.
    pub fn drain(&self) -> Vec<Arc<Session>> {
        lock(&self.sessions).drain().map(|(_, s)| s).collect()
    }
}
