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
        if let Message::Chat { text } = &msg
            && text.chars().count() > MAX_CHAT_CHARS
        {
            return Err(MessageError::ChatTooLong);
        }
        Ok(msg)
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
