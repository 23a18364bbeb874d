//! A direct QUIC path through two NATs: UDP hole punching with the relay
//! as rendezvous.
//!
//! Host and viewer each bind one UDP socket and ask the relay's
//! rendezvous ([`crate::relay::rendezvous`]) from which address and port
//! its datagrams arrive. They exchange their candidates (that reflexive
//! address and their local ones) inside the encrypted session: the host's
//! [`PunchOffer`] also carries the fingerprint of its fresh QUIC
//! certificate, the viewer answers with a [`PunchAnswer`]. Then both send
//! small punch datagrams to each other's candidates from that same socket,
//! so that each NAT sees traffic going out to the other and lets its
//! answers in, while the viewer keeps starting QUIC handshakes to the
//! host's candidates (the host is the QUIC server). A handshake that
//! completes proves a hole both ways; on its first stream the viewer and
//! the host run the same path-key challenge–response as a direct TCP path
//! ([`crate::direct`]), and the session moves there with `PathSwitch`.
//!
//! This works through NATs that map one socket to one public port
//! whatever the destination (most home routers, Linux masquerade). A NAT
//! that picks a new port per destination ("symmetric") defeats it: the
//! attempt gives up after [`PUNCH_TIME`] and the session stays relayed.
//! IPv4 only: a v6 host is usually reachable without punching.

use crate::client::RelayAddr;
use crate::direct::{self, Accepted, DirectError, DirectKind, MAX_CANDIDATES, PathKey, Registry};
use crate::frame::ChannelId;
use crate::quic::{self, QuicError, QuicStream};
use crate::relay::rendezvous::{PROBE_LEN, Probe};
use crate::tls::Fingerprint;
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// Version of [`PunchOffer`] and [`PunchAnswer`]; a peer ignores offers of
/// a version it does not know and the session stays relayed.
pub const PUNCH_VERSION: u8 = 1;
/// How long the viewer tries to get a QUIC handshake through (and the host
/// punches): a hole opens within a few round trips or not at all.
pub const PUNCH_TIME: Duration = Duration::from_secs(5);
/// Interval of punch datagrams to each candidate.
const PUNCH_EVERY: Duration = Duration::from_millis(100);
/// Interval of fresh QUIC handshakes to each candidate, besides quinn's
/// own retransmissions (which back off).
const ATTEMPT_EVERY: Duration = Duration::from_millis(500);
/// Probes sent to the rendezvous, and the wait for each answer.
const PROBE_TRIES: u32 = 3;
const PROBE_WAIT: Duration = Duration::from_millis(300);
/// How long the host's endpoint takes connections for one viewer; later
/// ones are refused and the socket closes (unless it carries the path).
const ACCEPT_WINDOW: Duration = Duration::from_secs(30);
/// Time a QUIC connection has from its first packet to a proven path,
/// including the viewer's wait for its TCP attempt to fail first.
const HOST_PROOF_TIME: Duration = Duration::from_secs(12);
/// Time the proof exchange may take once the stream is open.
const PROOF_TIME: Duration = Duration::from_secs(3);
/// A punch datagram. Its first byte has QUIC's fixed bit clear, so the
/// QUIC stack on the other socket drops it as not QUIC.
const PUNCH_PACKET: &[u8] = b"\0FSP1";
/// What the viewer writes first on the QUIC stream (a QUIC server sees a
/// stream only once its peer sends on it).
const OPENER: &[u8; 4] = b"FSQ1";

/// Host → viewer, inside the session: where the host's QUIC endpoint
/// listens for this viewer, and the certificate it will show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PunchOffer {
    pub version: u8,
    pub addrs: Vec<SocketAddr>,
    /// SHA-256 of the host's QUIC certificate (DER).
    pub cert: [u8; 32],
}

/// Viewer → host, inside the session: where the viewer's punches come
/// from; the host punches towards them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PunchAnswer {
    pub version: u8,
    pub addrs: Vec<SocketAddr>,
}

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum PunchError {
    #[error("cannot use a UDP socket")]
    Socket(#[from] std::io::Error),
    #[error("offer of version {0}, this side speaks {PUNCH_VERSION}")]
    Version(u8),
    #[error("the host offered no UDP address")]
    NoCandidates,
    #[error(transparent)]
    Quic(#[from] QuicError),
    #[error("cannot start a QUIC handshake")]
    Connect(#[from] quinn::ConnectError),
    #[error("the QUIC handshake failed")]
    Handshake(#[from] quinn::ConnectionError),
    #[error("no hole through the NATs within {} s", PUNCH_TIME.as_secs())]
    NoHole,
    #[error("the direct path was not wanted any more")]
    Cancelled,
    #[error("not a Fernsicht peer")]
    NotAPeer,
    #[error("the path-key proof failed")]
    Proof(#[from] DirectError),
}

impl From<quinn::ReadExactError> for PunchError {
    fn from(e: quinn::ReadExactError) -> Self {
        PunchError::Socket(std::io::Error::other(e))
    }
}

impl From<quinn::WriteError> for PunchError {
    fn from(e: quinn::WriteError) -> Self {
        PunchError::Socket(std::io::Error::other(e))
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A bound socket and the addresses it can be reached at.
struct Gathered {
    socket: std::net::UdpSocket,
    candidates: Vec<SocketAddr>,
}

/// Binds a UDP socket and lists its candidates: the reflexive address the
/// relay saw (if it answered), then this machine's own addresses.
async fn gather(relay: &RelayAddr) -> Result<Gathered, PunchError> {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await?;
    let port = socket.local_addr()?.port();
    let mut candidates = Vec::new();
    match reflexive(&socket, relay).await {
        Ok(addr) => candidates.push(addr),
        Err(e) => tracing::info!(
            "no public address from the relay's rendezvous, offering local ones: {}",
            crate::error_chain(&e)
        ),
    }
    for ip in direct::interface_addresses(false) {
        let addr = SocketAddr::new(ip, port);
        if !candidates.contains(&addr) {
            candidates.push(addr);
        }
    }
    candidates.truncate(MAX_CANDIDATES);
    Ok(Gathered {
        socket: socket.into_std()?,
        candidates,
    })
}

/// Asks the relay's rendezvous where `socket`'s datagrams come from.
async fn reflexive(socket: &UdpSocket, relay: &RelayAddr) -> std::io::Result<SocketAddr> {
    let target = tokio::net::lookup_host((relay.host(), relay.port()))
        .await?
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| std::io::Error::other("the relay has no IPv4 address"))?;
    let probe = Probe::random();
    let mut buf = [0u8; PROBE_LEN + 1];
    for _ in 0..PROBE_TRIES {
        socket.send_to(&probe.encode(), target).await?;
        let deadline = Instant::now() + PROBE_WAIT;
        while let Ok(got) = tokio::time::timeout_at(deadline, socket.recv_from(&mut buf)).await {
            match got {
                Ok((n, from)) if from == target => match probe.parse_answer(&buf[..n]) {
                    Ok(addr) => return Ok(addr),
                    Err(e) => tracing::debug!("rendezvous answer ignored: {e}"),
                },
                // A stray datagram: keep waiting for the answer.
                Ok(_) => {}
                // An ICMP error for an earlier probe: try again.
                Err(_) => break,
            }
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("the rendezvous at {target}/udp did not answer"),
    ))
}

/// Sends punch datagrams from `socket` to `addrs` for [`PUNCH_TIME`].
fn spawn_punching(socket: std::net::UdpSocket, addrs: Vec<SocketAddr>) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        let Ok(socket) = UdpSocket::from_std(socket) else {
            return;
        };
        let end = Instant::now() + PUNCH_TIME;
        let mut tick = tokio::time::interval(PUNCH_EVERY);
        while Instant::now() < end {
            tick.tick().await;
            for addr in &addrs {
                // Unreachable candidates are expected; others may work.
                let _ = socket.send_to(PUNCH_PACKET, addr).await;
            }
        }
    }))
}

/// A QUIC endpoint on the socket that was probed, so that its port is the
/// one the NAT mapped.
fn endpoint(
    socket: std::net::UdpSocket,
    server: Option<quinn::ServerConfig>,
) -> Result<quinn::Endpoint, PunchError> {
    Ok(quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        server,
        socket,
        Arc::new(quinn::TokioRuntime),
    )?)
}

/// The host's QUIC endpoint for one viewer. Dropping it stops accepting
/// and punching; a path already proven on it keeps the socket open.
pub struct HostPunch {
    /// A second handle on the endpoint's socket, for punch datagrams.
    puncher: Option<std::net::UdpSocket>,
    _accepting: AbortOnDrop,
    punching: Option<AbortOnDrop>,
}

impl HostPunch {
    /// Binds, learns the public address, and accepts QUIC connections
    /// whose proof passes `registry`; they go to `accepted`.
    pub async fn start(
        relay: &RelayAddr,
        registry: Registry,
        accepted: mpsc::UnboundedSender<Accepted>,
    ) -> Result<(HostPunch, PunchOffer), PunchError> {
        let gathered = gather(relay).await?;
        HostPunch::on(gathered, registry, accepted)
    }

    /// The same on a socket bound to `addr`, offering only that address
    /// (no rendezvous): for tests and benchmarks on one machine.
    pub async fn bind_local(
        addr: SocketAddr,
        registry: Registry,
        accepted: mpsc::UnboundedSender<Accepted>,
    ) -> Result<(HostPunch, PunchOffer), PunchError> {
        let socket = std::net::UdpSocket::bind(addr)?;
        socket.set_nonblocking(true)?;
        let candidates = vec![socket.local_addr()?];
        HostPunch::on(Gathered { socket, candidates }, registry, accepted)
    }

    fn on(
        gathered: Gathered,
        registry: Registry,
        accepted: mpsc::UnboundedSender<Accepted>,
    ) -> Result<(HostPunch, PunchOffer), PunchError> {
        let (config, fingerprint) = quic::server_config()?;
        let puncher = gathered.socket.try_clone()?;
        let endpoint = endpoint(gathered.socket, Some(config))?;
        let accepting = AbortOnDrop(tokio::spawn(accept_loop(endpoint, registry, accepted)));
        let offer = PunchOffer {
            version: PUNCH_VERSION,
            addrs: gathered.candidates,
            cert: fingerprint.0,
        };
        Ok((
            HostPunch {
                puncher: Some(puncher),
                _accepting: accepting,
                punching: None,
            },
            offer,
        ))
    }

    /// The viewer's answer arrived: punch towards its candidates (once;
    /// a second answer is ignored, so a viewer cannot make us send more).
    pub fn punch(&mut self, answer: &PunchAnswer) {
        if answer.version != PUNCH_VERSION {
            return;
        }
        if let Some(socket) = self.puncher.take() {
            let addrs = answer.addrs.iter().take(MAX_CANDIDATES).copied().collect();
            self.punching = Some(spawn_punching(socket, addrs));
        }
    }
}

async fn accept_loop(
    endpoint: quinn::Endpoint,
    registry: Registry,
    accepted: mpsc::UnboundedSender<Accepted>,
) {
    let until = Instant::now() + ACCEPT_WINDOW;
    while let Ok(Some(incoming)) = tokio::time::timeout_at(until, endpoint.accept()).await {
        let (endpoint, registry, accepted) = (endpoint.clone(), registry.clone(), accepted.clone());
        let peer = incoming.remote_address();
        tokio::spawn(async move {
            let r = tokio::time::timeout(HOST_PROOF_TIME, answer(incoming, &registry, endpoint))
                .await
                .unwrap_or(Err(PunchError::NoHole));
            match r {
                Ok((channel, stream, peer)) => {
                    let _ = accepted.send(Accepted {
                        channel,
                        stream: Box::new(stream),
                        peer,
                        kind: DirectKind::Quic,
                    });
                }
                Err(e) => {
                    tracing::debug!("QUIC connection from {peer}: {}", crate::error_chain(&e))
                }
            }
        });
    }
    // Not taking connections any more: refuse rather than ignore them.
    endpoint.set_server_config(None);
}

/// The host's side of one QUIC connection: handshake, the viewer's stream,
/// the proof.
async fn answer(
    incoming: quinn::Incoming,
    registry: &Registry,
    endpoint: quinn::Endpoint,
) -> Result<(ChannelId, QuicStream, SocketAddr), PunchError> {
    let connection = incoming.await?;
    let peer = connection.remote_address();
    let (send, mut recv) = connection.accept_bi().await?;
    let mut opener = [0u8; 4];
    recv.read_exact(&mut opener).await?;
    if &opener != OPENER {
        return Err(PunchError::NotAPeer);
    }
    let (channel, joined) = direct::answer(tokio::io::join(recv, send), registry).await?;
    let stream = QuicStream::new(joined.into_inner(), connection, endpoint);
    Ok((channel, stream, peer))
}

/// The viewer's socket, bound and probed, before it knows the host's
/// candidates.
pub struct ViewerPunch {
    socket: std::net::UdpSocket,
    candidates: Vec<SocketAddr>,
}

impl ViewerPunch {
    /// Binds and learns the public address.
    pub async fn start(relay: &RelayAddr) -> Result<ViewerPunch, PunchError> {
        let Gathered { socket, candidates } = gather(relay).await?;
        Ok(ViewerPunch { socket, candidates })
    }

    /// On a socket bound to `addr`, without rendezvous (tests, benchmarks).
    pub fn bind_local(addr: SocketAddr) -> Result<ViewerPunch, PunchError> {
        let socket = std::net::UdpSocket::bind(addr)?;
        socket.set_nonblocking(true)?;
        let candidates = vec![socket.local_addr()?];
        Ok(ViewerPunch { socket, candidates })
    }

    /// What to tell the host.
    pub fn answer(&self) -> PunchAnswer {
        PunchAnswer {
            version: PUNCH_VERSION,
            addrs: self.candidates.clone(),
        }
    }

    /// Punches towards the host's candidates and races QUIC handshakes to
    /// them; once one is through, waits for `go` (the session's word that
    /// no TCP path won) and proves the path key on it.
    pub async fn connect(
        self,
        offer: &PunchOffer,
        go: oneshot::Receiver<()>,
        channel: ChannelId,
        key: &PathKey,
    ) -> Result<(QuicStream, SocketAddr), PunchError> {
        if offer.version != PUNCH_VERSION {
            return Err(PunchError::Version(offer.version));
        }
        let addrs: Vec<SocketAddr> = offer
            .addrs
            .iter()
            .filter(|a| a.is_ipv4())
            .take(MAX_CANDIDATES)
            .copied()
            .collect();
        if addrs.is_empty() {
            return Err(PunchError::NoCandidates);
        }
        let punching = spawn_punching(self.socket.try_clone()?, addrs.clone());
        let mut endpoint = endpoint(self.socket, None)?;
        endpoint.set_default_client_config(quic::client_config(Fingerprint(offer.cert))?);
        let connection = tokio::time::timeout(PUNCH_TIME, race(&endpoint, &addrs))
            .await
            .map_err(|_| PunchError::NoHole)??;
        drop(punching);
        go.await.map_err(|_| PunchError::Cancelled)?;
        let (mut send, recv) = connection.open_bi().await?;
        send.write_all(OPENER).await?;
        let joined = tokio::time::timeout(
            PROOF_TIME,
            direct::prove_on(tokio::io::join(recv, send), channel, key),
        )
        .await
        .map_err(|_| DirectError::Timeout)??;
        let peer = connection.remote_address();
        Ok((
            QuicStream::new(joined.into_inner(), connection, endpoint),
            peer,
        ))
    }
}

/// Starts handshakes to every candidate now and every [`ATTEMPT_EVERY`];
/// returns the first that completes. One that fails for another reason
/// than silence (a wrong certificate, a refusal) ends the race: the host
/// answered, and trying again would not change its answer.
async fn race(
    endpoint: &quinn::Endpoint,
    addrs: &[SocketAddr],
) -> Result<quinn::Connection, PunchError> {
    let mut attempts = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(ATTEMPT_EVERY);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                for &addr in addrs {
                    let connecting = endpoint.connect(addr, quic::SERVER_NAME)?;
                    attempts.spawn(connecting);
                }
            }
            Some(done) = attempts.join_next() => match done {
                Ok(Ok(connection)) => return Ok(connection),
                Ok(Err(quinn::ConnectionError::TimedOut)) => {}
                Ok(Err(e)) => return Err(e.into()),
                // Not cancelled while we hold the set; nothing to learn.
                Err(_) => {}
            },
        }
    }
}

#[cfg(test)]
mod tests;
