//! Requests to the relay and the relay's answers: the only messages the relay
//! itself reads. They travel in clear in [`FrameType::Control`] frames on
//! channel 0, as the FastViewer seed allows for "requests to the tunnel
//! itself"; none of them carries anything of the session's content.

use crate::frame::{ChannelId, Frame, FrameError, FrameType};
use crate::number::SessionNumber;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Version of the relay protocol carried in `Register`/`Join`.
pub const RELAY_PROTOCOL: u16 = 1;

/// What a client asks of the relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ClientRequest {
    /// A host asks for a fresh session number.
    Register { protocol: u16 },
    /// A viewer asks to be paired with the host holding `number`.
    Join {
        protocol: u16,
        number: SessionNumber,
    },
    /// The host throws a viewer out; the relay closes that viewer at once.
    RemoveViewer { channel: u16 },
    /// The host ends the session; its number is burned for ever.
    EndSession,
    /// Liveness probe; the relay answers [`RelayEvent::Pong`].
    Ping { id: u64 },
    /// Answer to [`RelayEvent::Ping`].
    Pong { id: u64 },
    /// A client whose connection dropped takes its place again: the host
    /// (`channel` 0) or the viewer on `channel`, proving it with the token
    /// the relay gave it ([`RelayEvent::ResumeToken`]). The token only
    /// convinces the relay; the two ends then prove to each other that
    /// they still hold the session keys.
    Resume {
        protocol: u16,
        number: SessionNumber,
        channel: u16,
        token: [u8; 32],
    },
    /// The encrypted file store: the host parks ciphertext, viewers fetch
    /// it (`transfer::store`).
    Store(crate::transfer::store::StoreRequest),
}

/// Why the relay refused a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Error)]
#[non_exhaustive]
pub enum JoinRefusal {
    #[error("there is no session with this number (it may have ended)")]
    NoSuchSession,
    #[error("too many wrong numbers from this address: wait {retry_after_secs} s")]
    BackOff { retry_after_secs: u64 },
    #[error("the session has reached its limit of viewers")]
    SessionFull,
    #[error("the relay speaks protocol {relay}, this app speaks {client}: update one of them")]
    ProtocolMismatch { relay: u16, client: u16 },
}

/// Why a session or a viewer's place in it ended, as the relay saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Error)]
#[non_exhaustive]
pub enum LeaveReason {
    #[error("left")]
    Left,
    #[error("removed by the host")]
    Removed,
    #[error("the host ended the session")]
    SessionEnded,
    #[error("the host disconnected")]
    HostGone,
    #[error("dropped by the relay: too slow to keep up")]
    TooSlow,
    #[error("dropped by the relay: no sign of life")]
    TimedOut,
    #[error("dropped by the relay: protocol violation")]
    ProtocolViolation,
    #[error("the relay is shutting down")]
    RelayShutdown,
}

/// What the relay tells a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum RelayEvent {
    /// To a host: its session number.
    Registered { number: SessionNumber },
    /// To a viewer: it is paired, and this is its channel.
    Joined { channel: u16 },
    /// To a host: a viewer was paired on `channel`.
    ViewerJoined { channel: u16 },
    /// To a host: the viewer on `channel` is gone.
    ViewerLeft { channel: u16, reason: LeaveReason },
    /// To a viewer: the join was refused.
    Refused { reason: JoinRefusal },
    /// To anyone: the relay is closing this connection.
    Closed { reason: LeaveReason },
    /// Liveness probe; answer with [`ClientRequest::Pong`].
    Ping { id: u64 },
    /// Answer to [`ClientRequest::Ping`].
    Pong { id: u64 },
    /// To a host or viewer, right after `Registered`/`Joined`: the token for
    /// [`ClientRequest::Resume`] should the connection drop.
    ResumeToken { token: [u8; 32] },
    /// The answer to a successful [`ClientRequest::Resume`].
    Resumed,
    /// The other end's connection dropped (channel 0: the host; else that
    /// viewer); the relay keeps its place for a while.
    PeerAway { channel: u16 },
    /// The other end is back (see [`ClientRequest::Resume`]).
    PeerBack { channel: u16 },
    /// The file store's answers.
    Store(crate::transfer::store::StoreEvent),
    /// To a viewer joining, or anyone resuming: another relay of the same
    /// service holds this session. Connect to `relay` (`host:port`), whose
    /// certificate has this SHA-256 fingerprint, and ask again there. The
    /// relay that says so is the one the client trusts; a lying relay
    /// gains nothing, since sessions are end-to-end protected anyway.
    Redirect {
        relay: String,
        fingerprint: [u8; 32],
    },
}

/// A control frame whose payload could not be read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ControlError {
    #[error("expected a control frame, got {0:?}")]
    NotControl(FrameType),
    #[error("control frame on channel {0}, expected channel 0")]
    WrongChannel(ChannelId),
    #[error("malformed control message")]
    Malformed(#[from] postcard::Error),
    #[error(transparent)]
    Frame(#[from] FrameError),
}

fn to_frame<T: Serialize>(msg: &T) -> Frame {
    // Control messages are a few dozen bytes: far below the frame cap, and
    // postcard cannot fail on these types.
    let payload = postcard::to_stdvec(msg).unwrap_or_default();
    Frame {
        header: crate::frame::Header {
            frame_type: FrameType::Control,
            channel: ChannelId::CONTROL,
            seq: 0,
            len: payload.len() as u32,
        },
        payload,
    }
}

fn from_frame<'a, T: Deserialize<'a>>(frame: &'a Frame) -> Result<T, ControlError> {
    if frame.header.frame_type != FrameType::Control {
        return Err(ControlError::NotControl(frame.header.frame_type));
    }
    if frame.header.channel != ChannelId::CONTROL {
        return Err(ControlError::WrongChannel(frame.header.channel));
    }
    let (msg, rest) = postcard::take_from_bytes(&frame.payload)?;
    if !rest.is_empty() {
        return Err(ControlError::Malformed(
            postcard::Error::DeserializeBadEncoding,
        ));
    }
    Ok(msg)
}

impl ClientRequest {
    pub fn to_frame(&self) -> Frame {
        to_frame(self)
    }
    pub fn from_frame(frame: &Frame) -> Result<Self, ControlError> {
        from_frame(frame)
    }
}

impl RelayEvent {
    pub fn to_frame(&self) -> Frame {
        to_frame(self)
    }
    pub fn from_frame(frame: &Frame) -> Result<Self, ControlError> {
        from_frame(frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let number = SessionNumber::new(54321).unwrap();
        for req in [
            ClientRequest::Register { protocol: 1 },
            ClientRequest::Join {
                protocol: 1,
                number,
            },
            ClientRequest::RemoveViewer { channel: 3 },
            ClientRequest::EndSession,
        ] {
            let frame = Frame::decode_exact(&req.to_frame().encode()).unwrap();
            assert_eq!(ClientRequest::from_frame(&frame).unwrap(), req);
        }
        let ev = RelayEvent::Refused {
            reason: JoinRefusal::BackOff {
                retry_after_secs: 9,
            },
        };
        assert_eq!(RelayEvent::from_frame(&ev.to_frame()).unwrap(), ev);
    }

    #[test]
    fn invalid_number_in_join_is_refused_by_the_decoder() {
        // A Join whose number has 3 digits cannot be built as a SessionNumber.
        let mut frame = ClientRequest::Join {
            protocol: 1,
            number: SessionNumber::new(12345).unwrap(),
        }
        .to_frame();
        frame.payload = postcard::to_stdvec(&(1u32, 1u16, 123u64)).unwrap();
        frame.header.len = frame.payload.len() as u32;
        assert!(ClientRequest::from_frame(&frame).is_err());
    }

    #[test]
    fn trailing_garbage_is_refused() {
        let mut frame = ClientRequest::EndSession.to_frame();
        frame.payload.push(0);
        assert!(matches!(
            ClientRequest::from_frame(&frame),
            Err(ControlError::Malformed(_))
        ));
    }
}
