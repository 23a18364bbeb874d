//! Host and viewer sessions over a relay: the async shells around the
//! handshake and record layer that the app (GUI or headless) drives through
//! a handle and an event stream.

pub mod family;
mod host;
mod limiter;
mod link;
mod path;
mod resume;
mod viewer;

pub use crate::transport::connect::{ConnectOptions, LinkPath};
pub use host::{HostEvent, HostHandle, HostOptions, HostSession, start_host};
pub use limiter::HandshakeLimiter;
pub use link::{LinkInfo, Route};
pub use path::SessionPath;
pub use viewer::{ViewerEvent, ViewerHandle, ViewerOptions, ViewerSession, start_viewer};

use crate::control::{JoinRefusal, LeaveReason};
use crate::handshake::HandshakeError;
use crate::record::RecordError;
use crate::relay::DEFAULT_PORT;
use crate::transport::TransportError;
use std::fmt;
use std::str::FromStr;
use thiserror::Error;

/// Where a relay is: `host`, `host:port`, `1.2.3.4:port` or `[::1]:port`.
/// The port defaults to 4663.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RelayAddr {
    host: String,
    port: u16,
}

impl RelayAddr {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        RelayAddr {
            host: host.into(),
            port,
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl From<std::net::SocketAddr> for RelayAddr {
    fn from(a: std::net::SocketAddr) -> Self {
        RelayAddr::new(a.ip().to_string(), a.port())
    }
}

impl fmt::Display for RelayAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum RelayAddrError {
    #[error("empty relay address")]
    Empty,
    #[error("invalid port in relay address '{0}'")]
    BadPort(String),
}

impl FromStr for RelayAddr {
    type Err = RelayAddrError;

    fn from_str(s: &str) -> Result<Self, RelayAddrError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(RelayAddrError::Empty);
        }
        if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
            return Ok(sa.into());
        }
        if let Ok(ip) = s.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
            return Ok(RelayAddr::new(ip.to_string(), DEFAULT_PORT));
        }
        match s.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() => {
                let port = port
                    .parse()
                    .map_err(|_| RelayAddrError::BadPort(s.to_owned()))?;
                Ok(RelayAddr::new(host, port))
            }
            Some(_) => Err(RelayAddrError::Empty),
            None => Ok(RelayAddr::new(s, DEFAULT_PORT)),
        }
    }
}

/// Why a session could not start or had to end.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("cannot reach the relay at {addr}")]
    Connect {
        addr: RelayAddr,
        source: crate::transport::connect::ConnectError,
    },
    #[error("the relay at {0} did not answer in time")]
    Timeout(RelayAddr),
    #[error("the relay refused")]
    Refused(#[from] JoinRefusal),
    #[error("the relay closed the connection: {0}")]
    RelayClosed(LeaveReason),
    #[error("the relay broke the protocol: {0}")]
    RelayProtocol(String),
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("secure connection failed")]
    Handshake(#[from] HandshakeError),
    #[error("the encrypted stream was damaged or tampered with")]
    Record(#[from] RecordError),
    #[error("the host did not complete the secure connection in time")]
    HandshakeTimeout,
    #[error("the other side sent an invalid message: {0}")]
    PeerProtocol(String),
    #[error(
        "lost the connection to the relay at {addr} and could not get it back within {secs} s (last: {last})"
    )]
    LinkLost {
        addr: RelayAddr,
        secs: u64,
        last: String,
    },
}

/// How a session ended, for the event stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// We ended it ourselves.
    Local,
    /// The other side said goodbye (inside the encrypted session).
    Peer(crate::message::ByeReason),
    /// The relay closed the connection.
    Relay(LeaveReason),
    /// Something failed; the text says what, for the user.
    Failed(String),
}

impl fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionEnd::Local => f.write_str("ended here"),
            SessionEnd::Peer(r) => write!(f, "{r}"),
            SessionEnd::Relay(r) => write!(f, "relay: {r}"),
            SessionEnd::Failed(e) => f.write_str(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_addresses_parse() {
        assert_eq!(
            "relay.example:443".parse::<RelayAddr>().unwrap(),
            RelayAddr::new("relay.example", 443)
        );
        assert_eq!(
            "tunnel1.example".parse::<RelayAddr>().unwrap(),
            RelayAddr::new("tunnel1.example", 4663)
        );
        assert_eq!(
            "127.0.0.1:5000".parse::<RelayAddr>().unwrap().to_string(),
            "127.0.0.1:5000"
        );
        assert_eq!(
            "[::1]:7".parse::<RelayAddr>().unwrap().to_string(),
            "[::1]:7"
        );
        assert_eq!("::1".parse::<RelayAddr>().unwrap().port(), 4663);
        assert!("host:x".parse::<RelayAddr>().is_err());
        assert!("".parse::<RelayAddr>().is_err());
    }
}
