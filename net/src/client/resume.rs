//! Keeping a host–viewer session through a dropped relay connection.
//!
//! Each side keeps the sealed frames it sent until the other acknowledges
//! them (`Message::Received`, sent every [`ACK_EVERY`] frames or once a
//! second). When a connection drops, the relay keeps the place of the side
//! that dropped for a while; that side reconnects with its relay token.
//! Then the two ends prove to each other, over the relay, that they still
//! hold the session's keys, and each tells the other how far it has read:
//!
//! ```text
//! host → viewer   Hello   { host nonce }
//! viewer → host   Answer  { host nonce, viewer nonce, viewer's next seq, MAC_v }
//! host → viewer   Confirm { viewer nonce, host's next seq, MAC_h }
//! ```
//!
//! with MAC = HMAC(path key, role ‖ host nonce ‖ viewer nonce ‖ channel ‖
//! next seq). Each side then sends again what the other has not read, in
//! order, under the same keys and sequence numbers: the bytes on the wire
//! are the very frames sealed before, so no nonce is ever used for a
//! second plaintext. Each answer names the step it answers, so that a late
//! answer to an earlier attempt (both links may drop, one after the other)
//! is ignored instead of failing the proof. While a side is resuming it sends nothing new and
//! drops incoming sealed frames; the exchange tells the other side to send
//! them again. A party without the keys (a relay that kept a token, a
//! stranger who stole one) cannot produce the MAC and is refused.

use crate::direct::PathKey;
use crate::frame::{ChannelId, Frame, FrameType};
use crate::record::{RecordError, Sealer};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use subtle::ConstantTimeEq;

/// The receiver acknowledges after this many frames (and once a second).
pub(super) const ACK_EVERY: u32 = 64;
/// Most bytes of unacknowledged frames kept per direction. Past it the
/// oldest go; a resume that needs them fails instead of losing data.
const MAX_UNACKED: usize = 64 << 20;
/// Reconnections in a row after which nothing new arrived before the link
/// dropped again: then the link is not flaky but broken (or broken on
/// purpose), and the session ends instead of looping.
pub(super) const MAX_FRUITLESS: u32 = 3;
/// Time a dropped side has to come back; the relay keeps its place as long.
pub(super) const RESUME_WINDOW: std::time::Duration = std::time::Duration::from_secs(30);

const VIEWER_ROLE: &[u8] = b"fernsicht resume viewer";
const HOST_ROLE: &[u8] = b"fernsicht resume host";

/// The resume exchange, carried in handshake-type frames on the viewer's
/// channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum ResumeMsg {
    Hello {
        nonce: [u8; 32],
    },
    Answer {
        hello: [u8; 32],
        nonce: [u8; 32],
        next_seq: u64,
        mac: [u8; 32],
    },
    Confirm {
        answer: [u8; 32],
        next_seq: u64,
        mac: [u8; 32],
    },
    /// Viewer → host: our direct path broke; start the exchange on the
    /// relay. Unauthenticated, like a dropped link: all it can do is send
    /// the session back to the relay, where the exchange above decides.
    PathLost,
}

impl ResumeMsg {
    pub fn to_frame(&self, channel: ChannelId) -> Frame {
        let payload = postcard::to_stdvec(self).unwrap_or_default();
        Frame {
            header: crate::frame::Header {
                frame_type: FrameType::Handshake,
                channel,
                seq: 0,
                len: payload.len() as u32,
            },
            payload,
        }
    }

    pub fn from_frame(frame: &Frame) -> Option<ResumeMsg> {
        match postcard::take_from_bytes(&frame.payload) {
            Ok((msg, [])) => Some(msg),
            _ => None,
        }
    }
}

pub(super) fn nonce() -> [u8; 32] {
    let mut n = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut n);
    n
}

/// One side's resume state for one host–viewer pair.
pub(super) struct Resumable {
    key: PathKey,
    channel: ChannelId,
    unacked: VecDeque<Frame>,
    unacked_bytes: usize,
    /// Frames below this were dropped from `unacked` unacknowledged.
    lost_before: u64,
    /// Frames opened since our last acknowledgement.
    unacked_in: u32,
    /// Set while resuming: nothing new goes out, sealed frames coming in
    /// are dropped (they will be sent again).
    pub resuming: Option<Phase>,
}

/// Where the exchange stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for the link (ours or the peer's) to come back.
    Away,
    /// Host: sent Hello with this nonce, waiting for the Answer.
    Hello([u8; 32]),
    /// Viewer: answered with this viewer nonce to this host nonce.
    Answered { host: [u8; 32], viewer: [u8; 32] },
}

/// Why a resume failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum ResumeError {
    #[error("the other side could not prove it holds the session keys")]
    BadProof,
    #[error("frames from {0} on are no longer kept: the session cannot continue")]
    Gap(u64),
}

impl Resumable {
    pub fn new(key: PathKey, channel: ChannelId) -> Self {
        Resumable {
            key,
            channel,
            unacked: VecDeque::new(),
            unacked_bytes: 0,
            lost_before: 0,
            unacked_in: 0,
            resuming: None,
        }
    }

    /// Seals `payload`, keeping the frame until the peer acknowledges it.
    pub fn seal(&mut self, sealer: &mut Sealer, payload: Vec<u8>) -> Result<Frame, RecordError> {
        let frame = sealer.seal_vec(payload)?;
        self.keep(&frame);
        Ok(frame)
    }

    fn keep(&mut self, frame: &Frame) {
        self.unacked_bytes += frame.payload.len();
        self.unacked.push_back(frame.clone());
        while self.unacked_bytes > MAX_UNACKED {
            match self.unacked.pop_front() {
                Some(old) => {
                    self.unacked_bytes -= old.payload.len();
                    self.lost_before = old.header.seq + 1;
                }
                None => break,
            }
        }
    }

    /// The peer has read everything below `next_seq`.
    pub fn acknowledged(&mut self, next_seq: u64) {
        while let Some(f) = self.unacked.front() {
            if f.header.seq >= next_seq {
                break;
            }
            self.unacked_bytes -= f.payload.len();
            self.unacked.pop_front();
        }
    }

    /// Counts an opened frame; true when an acknowledgement is due.
    pub fn opened(&mut self) -> bool {
        self.unacked_in += 1;
        self.unacked_in >= ACK_EVERY
    }

    /// Whether frames were opened since the last acknowledgement; resets.
    pub fn take_ack_due(&mut self) -> bool {
        std::mem::replace(&mut self.unacked_in, 0) > 0
    }

    /// The kept frames from `next_seq` on, to send again.
    fn from(&mut self, next_seq: u64) -> Result<Vec<Frame>, ResumeError> {
        self.acknowledged(next_seq);
        match self.unacked.front() {
            Some(f) if f.header.seq > next_seq => Err(ResumeError::Gap(next_seq)),
            None if next_seq < self.lost_before => Err(ResumeError::Gap(next_seq)),
            _ => Ok(self.unacked.iter().cloned().collect()),
        }
    }

    fn mac(&self, role: &[u8], host: &[u8; 32], viewer: &[u8; 32], next_seq: u64) -> [u8; 32] {
        self.key.mac_parts(&[
            role,
            host,
            viewer,
            &self.channel.0.to_be_bytes(),
            &next_seq.to_be_bytes(),
        ])
    }

    /// Host: starts the exchange.
    pub fn hello(&mut self) -> Frame {
        let n = nonce();
        self.resuming = Some(Phase::Hello(n));
        ResumeMsg::Hello { nonce: n }.to_frame(self.channel)
    }

    /// Viewer: answers a Hello with how far it has read.
    pub fn answer(&mut self, host: [u8; 32], next_seq: u64) -> Frame {
        let viewer = nonce();
        self.resuming = Some(Phase::Answered { host, viewer });
        let mac = self.mac(VIEWER_ROLE, &host, &viewer, next_seq);
        ResumeMsg::Answer {
            hello: host,
            nonce: viewer,
            next_seq,
            mac,
        }
        .to_frame(self.channel)
    }

    /// Host: checks the Answer; returns the Confirm (with how far the host
    /// has read) and the frames to send again after it.
    pub fn confirm(
        &mut self,
        hello: [u8; 32],
        viewer: [u8; 32],
        their_next: u64,
        mac: &[u8; 32],
        our_next: u64,
    ) -> Result<Option<(Frame, Vec<Frame>)>, ResumeError> {
        // A late answer to an earlier Hello: not this attempt's.
        let Some(Phase::Hello(host)) = self.resuming else {
            return Ok(None);
        };
        if host != hello {
            return Ok(None);
        }
        let want = self.mac(VIEWER_ROLE, &host, &viewer, their_next);
        if !bool::from(want.ct_eq(mac)) {
            return Err(ResumeError::BadProof);
        }
        let again = self.from(their_next)?;
        self.resuming = None;
        self.unacked_in = 0;
        let mac = self.mac(HOST_ROLE, &host, &viewer, our_next);
        Ok(Some((
            ResumeMsg::Confirm {
                answer: viewer,
                next_seq: our_next,
                mac,
            }
            .to_frame(self.channel),
            again,
        )))
    }

    /// Viewer: checks the Confirm; returns the frames to send again.
    pub fn confirmed(
        &mut self,
        answer: [u8; 32],
        their_next: u64,
        mac: &[u8; 32],
    ) -> Result<Option<Vec<Frame>>, ResumeError> {
        // A late confirmation of an earlier answer: not this attempt's.
        let Some(Phase::Answered { host, viewer }) = self.resuming else {
            return Ok(None);
        };
        if viewer != answer {
            return Ok(None);
        }
        let want = self.mac(HOST_ROLE, &host, &viewer, their_next);
        if !bool::from(want.ct_eq(mac)) {
            return Err(ResumeError::BadProof);
        }
        let again = self.from(their_next)?;
        self.resuming = None;
        self.unacked_in = 0;
        Ok(Some(again))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::Established;
    use crate::handshake::{HandshakeConfig, HostHandshake, ViewerHandshake, ViewerKey};

    fn pair() -> (Established, Established) {
        let key = ViewerKey::generate(&mut rand::rngs::OsRng).unwrap();
        let config = HandshakeConfig::default();
        let ch = ChannelId(3);
        let (host, hello) = HostHandshake::start(&config, ch, &mut rand::rngs::OsRng);
        let viewer = ViewerHandshake::start(&config, "v", key, ch);
        let (viewer, vh) = viewer.receive(&hello, &mut rand::rngs::OsRng).unwrap();
        let (host, kt) = host.receive(&vh, &mut rand::rngs::OsRng).unwrap();
        let (viewer, [reveal, fin]) = viewer.receive(&kt).unwrap();
        let host = host.receive(&reveal).unwrap();
        let (host, hfin) = host.receive(fin).unwrap();
        let viewer = viewer.receive(hfin).unwrap();
        (host, viewer)
    }

    #[test]
    fn both_sides_resend_exactly_what_the_other_missed() {
        let (mut host, mut viewer) = pair();
        let mut h = Resumable::new(host.path_key.clone(), ChannelId(3));
        let mut v = Resumable::new(viewer.path_key.clone(), ChannelId(3));
        let sent: Vec<Frame> = (0..5u8)
            .map(|i| h.seal(&mut host.sealer, vec![i; 10]).unwrap())
            .collect();
        // The viewer read the first two; the rest were lost with the link.
        for f in &sent[..2] {
            viewer.opener.open(f.clone()).unwrap();
        }
        let hello = h.hello();
        let ResumeMsg::Hello { nonce } = ResumeMsg::from_frame(&hello).unwrap() else {
            panic!()
        };
        let answer = v.answer(nonce, viewer.opener.next_seq());
        let ResumeMsg::Answer {
            hello,
            nonce,
            next_seq,
            mac,
        } = ResumeMsg::from_frame(&answer).unwrap()
        else {
            panic!()
        };
        let (confirm, again) = h
            .confirm(hello, nonce, next_seq, &mac, host.opener.next_seq())
            .unwrap()
            .unwrap();
        assert_eq!(again.len(), 3);
        for f in again {
            viewer.opener.open(f).unwrap();
        }
        let ResumeMsg::Confirm {
            answer,
            next_seq,
            mac,
        } = ResumeMsg::from_frame(&confirm).unwrap()
        else {
            panic!()
        };
        assert!(
            v.confirmed(answer, next_seq, &mac)
                .unwrap()
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn without_the_keys_there_is_no_resume() {
        let (host, _) = pair();
        let (_, stranger) = pair();
        let mut h = Resumable::new(host.path_key.clone(), ChannelId(3));
        let mut s = Resumable::new(stranger.path_key.clone(), ChannelId(3));
        let ResumeMsg::Hello { nonce } = ResumeMsg::from_frame(&h.hello()).unwrap() else {
            panic!()
        };
        let ResumeMsg::Answer {
            hello,
            nonce,
            next_seq,
            mac,
        } = ResumeMsg::from_frame(&s.answer(nonce, 0)).unwrap()
        else {
            panic!()
        };
        assert!(matches!(
            h.confirm(hello, nonce, next_seq, &mac, 0),
            Err(ResumeError::BadProof)
        ));
    }
}
