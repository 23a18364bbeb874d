//! Application messages between host and viewer. They only ever travel
//! inside sealed frames; the relay never sees them.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Longest chat message, in characters.
pub const MAX_CHAT_CHARS: usize = 4096;

/// What a viewer may do, as the host decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Permission {
    /// Sees the screen; keyboard and mouse are dropped on the host.
    ViewOnly,
    /// Sees the screen and controls keyboard and mouse.
    Control,
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Permission::ViewOnly => "view-only",
            Permission::Control => "control",
        })
    }
}

/// Why one side closes the session, told to the other inside the session so
/// that the relay cannot forge it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Error)]
#[non_exhaustive]
pub enum ByeReason {
    #[error("the helper left")]
    ViewerLeft,
    #[error("the host stopped sharing")]
    HostStopped,
    #[error("the host removed this viewer")]
    Removed,
    #[error("the host denied the connection")]
    Denied,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Message {
    /// Host → viewer: the person allowed the connection with this
    /// permission. Nothing else flows to a viewer before this.
    Allowed {
        permission: Permission,
    },
    /// Host → viewer: the permission changed while connected.
    PermissionChanged {
        permission: Permission,
    },
    /// Either way: a chat line.
    Chat {
        text: String,
    },
    /// Either way: the sender is closing the session.
    Bye {
        reason: ByeReason,
    },
    /// Either way: round-trip probe, answered with `Pong` and the same id.
    Ping {
        id: u64,
    },
    Pong {
        id: u64,
    },
    /// Host → viewer: one H.264 access unit of the shared display.
    Video(VideoFrame),
    /// Viewer → host: frame `id` arrived and was decoded. Acknowledgements
    /// pace what the host sends to this viewer and measure the round trip.
    VideoAck {
        id: u64,
    },
    /// Viewer → host: the decoder lost sync; please send a keyframe.
    KeyframeRequest,
    /// Host → viewer: the host's displays and which one is shared.
    Displays {
        displays: Vec<DisplayDesc>,
        shared: u16,
    },
    /// Viewer → host: share display `index` instead.
    SelectDisplay {
        index: u16,
    },
    /// Host → viewer: what encodes the picture, for the status bar.
    StreamInfo {
        encoder: String,
    },
    /// Viewer → host: keyboard and mouse events, encoded by the input crate
    /// (opaque here, so that this crate does not depend on it).
    Input {
        #[serde(with = "serde_bytes")]
        events: Vec<u8>,
    },
    /// Host → viewer: addresses where the host accepts a direct connection
    /// for this session (see [`crate::direct`]).
    DirectOffer {
        addrs: Vec<std::net::SocketAddr>,
    },
    /// Either way: the last frame on the old path; the sender's next frames
    /// come over the direct connection. Read the old path up to here, then
    /// the new one, and no frame is lost or reordered by the move.
    PathSwitch,
    /// Either way: everything below `next_seq` arrived; the sender may
    /// forget those frames (it keeps them to resend after a dropped link).
    Received {
        next_seq: u64,
    },
    /// Either way: file transfer (offers, chunks, acknowledgements) and,
    /// host → viewer, files parked in the relay's store.
    Transfer(crate::transfer::TransferMsg),
    /// Host → viewer: the host's UDP candidates and QUIC certificate for a
    /// path punched through both NATs (see [`crate::punch`]).
    PunchOffer(crate::punch::PunchOffer),
    /// Viewer → host: the viewer's UDP candidates; both sides punch now.
    PunchAnswer(crate::punch::PunchAnswer),
}

/// One encoded picture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoFrame {
    /// Increases by one per frame the encoder makes (a gap means this
    /// viewer skipped frames and waits for a keyframe).
    pub id: u64,
    pub display: u16,
    pub width: u32,
    pub height: u32,
    pub keyframe: bool,
    /// When the host captured the picture, in microseconds of the host's
    /// session clock; for measurements, never for ordering.
    pub captured_us: u64,
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// One of the host's displays, as the viewer's display picker shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisplayDesc {
    pub index: u16,
    pub name: String,
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Error)]
pub enum MessageError {
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("chat message longer than {MAX_CHAT_CHARS} characters")]
    ChatTooLong,
}

impl Message {
    pub fn encode(&self) -> Vec<u8> {
        // Plain data into a Vec: postcard cannot fail here.
        postcard::to_stdvec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, MessageError> {
        let (msg, rest): (Message, _) =
            postcard::take_from_bytes(bytes).map_err(|e| MessageError::Malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(MessageError::Malformed(format!(
                "{} trailing bytes",
                rest.len()
            )));
        }
        msg.check_bounds()?;
        Ok(msg)
    }
}

/// Longest display name or encoder description, in characters.
const MAX_LABEL_CHARS: usize = 128;
/// Most displays a host may list.
const MAX_DISPLAYS: usize = 32;

impl Message {
    fn check_bounds(&self) -> Result<(), MessageError> {
        let label = |s: &str| {
            if s.chars().count() > MAX_LABEL_CHARS {
                Err(MessageError::Malformed("label too long".into()))
            } else {
                Ok(())
            }
        };
        match self {
            Message::Chat { text } if text.chars().count() > MAX_CHAT_CHARS => {
                Err(MessageError::ChatTooLong)
            }
            Message::Displays { displays, .. } => {
                if displays.len() > MAX_DISPLAYS {
                    return Err(MessageError::Malformed("too many displays".into()));
                }
                displays.iter().try_for_each(|d| label(&d.name))
            }
            Message::StreamInfo { encoder } => label(encoder),
            Message::DirectOffer { addrs } if addrs.len() > crate::direct::MAX_CANDIDATES => {
                Err(MessageError::Malformed("too many direct addresses".into()))
            }
            Message::PunchOffer(crate::punch::PunchOffer { addrs, .. })
            | Message::PunchAnswer(crate::punch::PunchAnswer { addrs, .. })
                if addrs.len() > crate::direct::MAX_CANDIDATES =>
            {
                Err(MessageError::Malformed("too many UDP addresses".into()))
            }
            Message::Transfer(t) => t
                .check_bounds()
                .map_err(|e| MessageError::Malformed(e.into())),
            Message::Video(v)
                if v.width == 0 || v.height == 0 || v.width > 16384 || v.height > 16384 =>
            {
                Err(MessageError::Malformed(format!(
                    "impossible picture size {}x{}",
                    v.width, v.height
                )))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bounds() {
        for m in [
            Message::Allowed {
                permission: Permission::Control,
            },
            Message::Chat {
                text: "grüß dich".into(),
            },
            Message::Bye {
                reason: ByeReason::Removed,
            },
            Message::Ping { id: 7 },
            Message::Video(VideoFrame {
                id: 3,
                display: 0,
                width: 1920,
                height: 1080,
                keyframe: true,
                captured_us: 99,
                data: vec![0, 0, 0, 1, 0x67],
            }),
            Message::Input {
                events: vec![1, 2, 3],
            },
            Message::Displays {
                displays: vec![DisplayDesc {
                    index: 0,
                    name: "DP-1".into(),
                    x: 0,
                    y: 0,
                    width: 1920,
                    height: 1080,
                }],
                shared: 0,
            },
        ] {
            assert_eq!(Message::decode(&m.encode()).unwrap(), m);
        }
        let long = Message::Chat {
            text: "x".repeat(MAX_CHAT_CHARS + 1),
        };
        assert!(matches!(
            Message::decode(&long.encode()),
            Err(MessageError::ChatTooLong)
        ));
        assert!(Message::decode(&[0xff, 0xff]).is_err());
    }
}
