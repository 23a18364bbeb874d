//! The relay's UDP rendezvous: it tells a client the address and port its
//! datagrams arrive from (its "reflexive" address, as a NAT rewrote it), so
//! that host and viewer can offer each other an address that works from
//! outside their networks and punch a hole for a direct QUIC path (see
//! [`crate::punch`]).
//!
//! The relay only reflects: it keeps no state, learns nothing but the
//! source address it already sees, and never takes part in the path. So
//! that it cannot be used to amplify traffic towards a forged source, an
//! answer is exactly as long as the request (requests of any other length
//! are ignored) and the answers per second are capped.
//!
//! Both messages are [`PROBE_LEN`] bytes:
//!
//! ```text
//! request  "FSR1" ‖ 0x01 ‖ id (12 random bytes) ‖ 23 zero bytes
//! answer   "FSR1" ‖ 0x02 ‖ id ‖ family (4 or 6) ‖ port (u16 BE) ‖ address (16 bytes, v4 in the first 4) ‖ 4 zero bytes
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

/// Length of a request and of its answer.
pub const PROBE_LEN: usize = 40;
const MAGIC: &[u8; 4] = b"FSR1";
const REQUEST: u8 = 1;
const ANSWER: u8 = 2;
/// Answers per second, all clients together: plenty for session set-ups
/// (two probes each), too few to matter as a reflector.
const MAX_ANSWERS_PER_SEC: u32 = 2000;

/// Where the relay answers probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RendezvousAt {
    /// UDP on the main listener's address and port (4663/udp by default),
    /// where clients look for it.
    MainPort,
    /// UDP on this address.
    At(SocketAddr),
    /// No rendezvous: host and viewer offer only their local addresses.
    Off,
}

/// What is wrong with a datagram that should be a probe or its answer.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProbeError {
    #[error("a probe is {PROBE_LEN} bytes, not {0}")]
    Length(usize),
    #[error("not a Fernsicht rendezvous message")]
    Magic,
    #[error("unexpected rendezvous message kind {0}")]
    Kind(u8),
    #[error("an answer to another probe")]
    OtherProbe,
    #[error("unknown address family {0}")]
    Family(u8),
}

/// A client's request, identified by random bytes so that a stale or
/// forged answer is not taken for this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    pub id: [u8; 12],
}

impl Probe {
    pub fn random() -> Probe {
        Probe { id: rand::random() }
    }

    pub fn encode(&self) -> [u8; PROBE_LEN] {
        let mut out = [0u8; PROBE_LEN];
        out[..4].copy_from_slice(MAGIC);
        out[4] = REQUEST;
        out[5..17].copy_from_slice(&self.id);
        out
    }

    /// The address in the relay's answer to this probe.
    pub fn parse_answer(&self, bytes: &[u8]) -> Result<SocketAddr, ProbeError> {
        let (kind, id) = header(bytes)?;
        if kind != ANSWER {
            return Err(ProbeError::Kind(kind));
        }
        if id != self.id {
            return Err(ProbeError::OtherProbe);
        }
        let port = u16::from_be_bytes([bytes[18], bytes[19]]);
        let raw = &bytes[20..36];
        let ip = match bytes[17] {
            4 => IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3])),
            6 => {
                let mut v6 = [0u8; 16];
                v6.copy_from_slice(raw);
                IpAddr::V6(Ipv6Addr::from(v6))
            }
            other => return Err(ProbeError::Family(other)),
        };
        Ok(SocketAddr::new(ip, port))
    }
}

/// Checks length and magic; returns the kind and the probe id.
fn header(bytes: &[u8]) -> Result<(u8, [u8; 12]), ProbeError> {
    if bytes.len() != PROBE_LEN {
        return Err(ProbeError::Length(bytes.len()));
    }
    if &bytes[..4] != MAGIC {
        return Err(ProbeError::Magic);
    }
    let mut id = [0u8; 12];
    id.copy_from_slice(&bytes[5..17]);
    Ok((bytes[4], id))
}

/// The relay's answer to `request`, which came from `from`.
pub fn answer(request: &[u8], from: SocketAddr) -> Result<[u8; PROBE_LEN], ProbeError> {
    let (kind, id) = header(request)?;
    if kind != REQUEST {
        return Err(ProbeError::Kind(kind));
    }
    let mut out = [0u8; PROBE_LEN];
    out[..4].copy_from_slice(MAGIC);
    out[4] = ANSWER;
    out[5..17].copy_from_slice(&id);
    // A v4 client on a dual-stack socket shows up as ::ffff:a.b.c.d.
    let ip = match from.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            out[17] = 4;
            out[20..24].copy_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            out[17] = 6;
            out[20..36].copy_from_slice(&v6.octets());
        }
    }
    out[18..20].copy_from_slice(&from.port().to_be_bytes());
    Ok(out)
}

/// A fixed budget of answers per second.
struct Budget {
    second: Instant,
    used: u32,
}

impl Budget {
    fn take(&mut self, now: Instant) -> bool {
        if now.duration_since(self.second) >= Duration::from_secs(1) {
            self.second = now;
            self.used = 0;
        }
        self.used += 1;
        self.used <= MAX_ANSWERS_PER_SEC
    }
}

/// Binds the rendezvous socket. A relay without one still relays (clients
/// then punch with local addresses only), so a failure is a warning.
pub(super) async fn bind(
    at: RendezvousAt,
    listeners: &[tokio::net::TcpListener],
) -> Option<UdpSocket> {
    let addr = match at {
        RendezvousAt::Off => return None,
        RendezvousAt::At(addr) => addr,
        // The bound port, also when the configuration asked for port 0.
        RendezvousAt::MainPort => listeners.first()?.local_addr().ok()?,
    };
    match UdpSocket::bind(addr).await {
        Ok(socket) => Some(socket),
        Err(e) => {
            tracing::warn!(%addr, error = %e, "no UDP rendezvous: hole punching will use local addresses only");
            None
        }
    }
}

/// Answers probes on `socket` until `shutdown`.
pub(super) async fn serve(socket: UdpSocket, shutdown: CancellationToken) {
    // One byte more than a probe: a longer datagram shows as too long
    // instead of being cut to size.
    let mut buf = [0u8; PROBE_LEN + 1];
    let mut budget = Budget {
        second: Instant::now(),
        used: 0,
    };
    loop {
        let (len, from) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = socket.recv_from(&mut buf) => match r {
                Ok(got) => got,
                // ICMP errors from earlier answers and the like.
                Err(_) => continue,
            },
        };
        let reply = match answer(&buf[..len], from) {
            Ok(reply) => reply,
            Err(e) => {
                tracing::debug!(%from, error = %e, "ignored a datagram on the rendezvous port");
                continue;
            }
        };
        if budget.take(Instant::now()) {
            let _ = socket.send_to(&reply, from).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_carries_the_source_and_is_no_longer_than_the_request() {
        let probe = Probe::random();
        let request = probe.encode();
        for from in [
            "203.0.113.7:40001",
            "[2001:db8::1]:9",
            "[::ffff:198.51.100.2]:80",
        ] {
            let from: SocketAddr = from.parse().unwrap();
            let reply = answer(&request, from).unwrap();
            assert_eq!(reply.len(), request.len());
            let seen = probe.parse_answer(&reply).unwrap();
            let want = match from.ip() {
                IpAddr::V6(v6) => v6
                    .to_ipv4_mapped()
                    .map_or(from, |v4| SocketAddr::new(v4.into(), from.port())),
                _ => from,
            };
            assert_eq!(seen, want);
        }
    }

    #[test]
    fn malformed_datagrams_get_no_answer() {
        let from: SocketAddr = "192.0.2.1:5".parse().unwrap();
        let request = Probe::random().encode();
        assert_eq!(answer(&request[..10], from), Err(ProbeError::Length(10)));
        let mut long = request.to_vec();
        long.push(0);
        assert_eq!(answer(&long, from), Err(ProbeError::Length(PROBE_LEN + 1)));
        let mut bad = request;
        bad[0] = b'X';
        assert_eq!(answer(&bad, from), Err(ProbeError::Magic));
        // An answer sent to the relay is not answered (no ping-pong
        // between two relays).
        let reply = answer(&request, from).unwrap();
        assert_eq!(answer(&reply, from), Err(ProbeError::Kind(ANSWER)));
    }

    #[test]
    fn an_answer_to_another_probe_is_refused() {
        let mine = Probe::random();
        let other = Probe { id: [9; 12] };
        let reply = answer(&other.encode(), "192.0.2.1:5".parse().unwrap()).unwrap();
        assert_eq!(mine.parse_answer(&reply), Err(ProbeError::OtherProbe));
        let mut odd = reply;
        odd[17] = 7;
        assert_eq!(other.parse_answer(&odd), Err(ProbeError::Family(7)));
    }

    #[test]
    fn the_budget_caps_answers_per_second() {
        let start = Instant::now();
        let mut b = Budget {
            second: start,
            used: 0,
        };
        let granted = (0..MAX_ANSWERS_PER_SEC + 10)
            .filter(|_| b.take(start))
            .count();
        assert_eq!(granted, MAX_ANSWERS_PER_SEC as usize);
        assert!(b.take(start + Duration::from_secs(1)));
    }

    #[tokio::test]
    async fn the_relay_reflects_over_udp() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let at = server.local_addr().unwrap();
        let stop = CancellationToken::new();
        tokio::spawn(serve(server, stop.clone()));
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let probe = Probe::random();
        client.send_to(&probe.encode(), at).await.unwrap();
        let mut buf = [0u8; 64];
        let (n, _) = client.recv_from(&mut buf).await.unwrap();
        assert_eq!(
            probe.parse_answer(&buf[..n]).unwrap(),
            client.local_addr().unwrap()
        );
        stop.cancel();
    }
}
