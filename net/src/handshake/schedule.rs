//! The key schedule: from the session key, the optional password key and
//! the transcript to the two traffic keys and the code people compare.

use crate::record::{Direction, TrafficKey};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

/// The short authentication string both screens show. Equal codes mean both
/// sides saw the same handshake, so nobody sits in between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthCode {
    value: u32,
    digits: u32,
}

impl AuthCode {
    pub fn value(self) -> u32 {
        self.value
    }

    pub fn digits(self) -> u32 {
        self.digits
    }
}

impl std::fmt::Display for AuthCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:0width$}", self.value, width = self.digits as usize)
    }
}

/// Everything derived after the reveal.
pub(super) struct KeySchedule {
    hkdf: Hkdf<Sha256>,
}

impl KeySchedule {
    /// `transcript` must cover every handshake frame up to and including the
    /// reveal: the code then depends on the viewer's secret value, which
    /// nobody knew when the last free choice (the key message) was made.
    pub(super) fn new(
        transcript: &[u8; 32],
        session_key: &[u8; 32],
        pake_key: Option<&[u8]>,
    ) -> Self {
        let mut ikm = Zeroizing::new(Vec::with_capacity(64));
        ikm.extend_from_slice(session_key);
        if let Some(k) = pake_key {
            ikm.extend_from_slice(k);
        }
        KeySchedule {
            hkdf: Hkdf::<Sha256>::new(Some(transcript), &ikm),
        }
    }

    fn expand<const N: usize>(&self, label: &[u8]) -> Zeroizing<[u8; N]> {
        let mut out = Zeroizing::new([0u8; N]);
        // N is at most 32 here, far below HKDF-SHA256's limit of 8160 bytes.
        let _ = self.hkdf.expand(label, out.as_mut());
        out
    }

    pub(super) fn traffic_key(&self, direction: Direction) -> TrafficKey {
        let label: &[u8] = match direction {
            Direction::HostToViewer => b"fernsicht v1 traffic host to viewer",
            Direction::ViewerToHost => b"fernsicht v1 traffic viewer to host",
        };
        TrafficKey {
            bytes: self.expand::<32>(label),
            direction,
        }
    }

    /// The secret that proves, on a path that bypasses the relay, that the
    /// other end holds this session's keys (see [`crate::direct`]).
    pub(super) fn path_key(&self) -> crate::direct::PathKey {
        crate::direct::PathKey(self.expand::<32>(b"fernsicht v1 direct path key"))
    }

    /// The code, `digits` long. 8 bytes of HKDF output reduced modulo
    /// 10^digits: the bias is below 10^-12 for 6 digits.
    pub(super) fn auth_code(&self, digits: u32) -> AuthCode {
        let digits = digits.clamp(1, 9);
        let raw = self.expand::<8>(b"fernsicht v1 authentication code");
        let value = (u64::from_be_bytes(*raw) % 10u64.pow(digits)) as u32;
        AuthCode { value, digits }
    }
}
