//! Direct paths between host and viewer that bypass the relay.
//!
//! Once a viewer is allowed, the host tells it (inside the encrypted
//! session) the addresses it listens on. The viewer dials them while the
//! relayed session goes on; the first TCP connection on which both ends
//! prove that they hold this session's path key carries the session from
//! then on. The proof is a challenge–response with HMAC-SHA256 under a key
//! from the handshake's key schedule, so neither a stranger on the network
//! nor the relay can take over the path; the frames on it are the same
//! sealed frames as before, so nothing else changes.
//!
//! On the wire, after the TCP connect:
//!
//! ```text
//! host → viewer   "FSD1" ‖ challenge (32 random bytes)
//! viewer → host   channel (u16, big-endian) ‖ HMAC(key, "fernsicht direct viewer" ‖ challenge ‖ channel)
//! host → viewer   HMAC(key, "fernsicht direct host" ‖ challenge ‖ channel)
//! ```
//!
//! Then sealed frames of that one viewer's channel, both ways.
//!
//! A QUIC path made by hole punching ([`crate::punch`]) runs the same
//! exchange on its first bidirectional stream, after a 4-byte opener.

use crate::frame::ChannelId;
use crate::transport::BoxStream;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use subtle::ConstantTimeEq;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use zeroize::Zeroizing;

/// The port hosts listen on for direct connections (the relay's too, on
/// another machine).
pub const DIRECT_PORT: u16 = 4663;
/// Most addresses a host offers; more are a malformed message.
pub const MAX_CANDIDATES: usize = 16;
/// Time the proof exchange may take on one connection: a LAN answers in
/// milliseconds, and a dropped packet must not hold the session up.
const PROOF_TIMEOUT: Duration = Duration::from_secs(3);
const MAGIC: &[u8; 4] = b"FSD1";

/// The per-viewer secret both ends derive from the handshake.
#[derive(Clone)]
pub struct PathKey(pub(crate) Zeroizing<[u8; 32]>);

impl std::fmt::Debug for PathKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PathKey(..)")
    }
}

impl PathKey {
    /// A key from raw bytes. Sessions derive theirs from the handshake;
    /// this is for benchmarks and tests that set up a path on its own.
    pub fn from_bytes(bytes: [u8; 32]) -> PathKey {
        PathKey(Zeroizing::new(bytes))
    }

    fn mac(&self, role: &[u8], challenge: &[u8; 32], channel: ChannelId) -> [u8; 32] {
        self.mac_parts(&[role, challenge, &channel.0.to_be_bytes()])
    }

    /// HMAC-SHA256 over the concatenated `parts` (each a fixed length or a
    /// distinct label at a fixed place, so the concatenation is unambiguous).
    pub(crate) fn mac_parts(&self, parts: &[&[u8]]) -> [u8; 32] {
        // HMAC takes keys of any length: this cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_slice())
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

const VIEWER_ROLE: &[u8] = b"fernsicht direct viewer";
const HOST_ROLE: &[u8] = b"fernsicht direct host";

/// Where the host listens for direct connections and what it offers.
#[derive(Debug, Clone)]
pub struct DirectOptions {
    /// Address to listen on; if its port is taken, any free port is used.
    pub listen: SocketAddr,
    /// Addresses to offer. `None`: every non-loopback address of this
    /// machine's interfaces.
    pub advertise: Option<Vec<IpAddr>>,
    /// Also offer a QUIC path through a hole punched with the relay's
    /// help, for viewers that cannot reach these addresses.
    pub punch: bool,
}

impl Default for DirectOptions {
    fn default() -> Self {
        DirectOptions {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, DIRECT_PORT)),
            advertise: None,
            punch: true,
        }
    }
}

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DirectError {
    #[error("cannot listen for direct connections on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the host offered no address")]
    NoCandidates,
    #[error("no direct connection worked: {}", .0.join("; "))]
    AllFailed(Vec<String>),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("no answer within {} s", PROOF_TIMEOUT.as_secs())]
    Timeout,
    #[error("not a Fernsicht host")]
    NotAHost,
    #[error("the other end does not hold this session's keys")]
    BadProof,
    #[error("no viewer waits for a direct path on channel {0}")]
    UnknownChannel(u16),
}

/// The viewers whose direct connections the host accepts, with their path
/// keys. Shared between the session task and the accept task.
#[derive(Clone, Default)]
pub struct Registry(Arc<Mutex<HashMap<ChannelId, Entry>>>);

struct Entry {
    key: PathKey,
    /// A direct path is already set up: later ones are refused, so that
    /// a viewer that reaches several addresses ends up with exactly one.
    taken: bool,
}

impl Registry {
    pub fn insert(&self, channel: ChannelId, key: PathKey) {
        self.lock().insert(channel, Entry { key, taken: false });
    }

    pub fn remove(&self, channel: ChannelId) {
        self.lock().remove(&channel);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ChannelId, Entry>> {
        // A panic elsewhere while holding the lock leaves a plain map.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn key(&self, channel: ChannelId) -> Option<PathKey> {
        self.lock()
            .get(&channel)
            .filter(|e| !e.taken)
            .map(|e| e.key.clone())
    }

    /// Whether a direct connection for `channel` passed its proof.
    pub fn claimed(&self, channel: ChannelId) -> bool {
        self.lock().get(&channel).is_some_and(|e| e.taken)
    }

    /// Claims the channel's direct path; false if another took it first.
    fn claim(&self, channel: ChannelId) -> bool {
        match self.lock().get_mut(&channel) {
            Some(e) if !e.taken => {
                e.taken = true;
                true
            }
            _ => false,
        }
    }
}

/// What carries a direct path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectKind {
    /// A TCP connection to the host's listener (same network, or a host
    /// reachable from outside).
    Tcp,
    /// A QUIC connection through a hole punched in both NATs.
    Quic,
}

/// An authenticated direct connection, ready for sealed frames.
pub struct Accepted {
    pub channel: ChannelId,
    pub stream: BoxStream,
    pub peer: SocketAddr,
    pub kind: DirectKind,
}

impl std::fmt::Debug for Accepted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accepted")
            .field("channel", &self.channel)
            .field("peer", &self.peer)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// The host's listener for direct connections.
pub struct DirectListener {
    listener: TcpListener,
    advertise: Option<Vec<IpAddr>>,
}

impl DirectListener {
    pub async fn bind(options: &DirectOptions) -> Result<DirectListener, DirectError> {
        let listener = match TcpListener::bind(options.listen).await {
            Ok(l) => l,
            // Another Fernsicht (or anything) has the port: any port does,
            // since the viewer learns it from the offer.
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                let any = SocketAddr::new(options.listen.ip(), 0);
                TcpListener::bind(any)
                    .await
                    .map_err(|source| DirectError::Listen { addr: any, source })?
            }
            Err(source) => {
                return Err(DirectError::Listen {
                    addr: options.listen,
                    source,
                });
            }
        };
        Ok(DirectListener {
            listener,
            advertise: options.advertise.clone(),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The addresses to offer viewers.
    pub fn candidates(&self) -> Vec<SocketAddr> {
        let Ok(local) = self.listener.local_addr() else {
            return Vec::new();
        };
        let ips = match &self.advertise {
            Some(ips) => ips.clone(),
            None if !local.ip().is_unspecified() => vec![local.ip()],
            None => interface_addresses(local.is_ipv6()),
        };
        ips.into_iter()
            .take(MAX_CANDIDATES)
            .map(|ip| SocketAddr::new(ip, local.port()))
            .collect()
    }

    /// Accepts connections for ever, proving each against `registry`;
    /// authenticated ones go to `accepted`. Ends when `accepted` closes.
    pub fn spawn(self, registry: Registry, accepted: mpsc::UnboundedSender<Accepted>) {
        tokio::spawn(async move {
            loop {
                let (stream, peer) = tokio::select! {
                    r = self.listener.accept() => match r {
                        Ok(c) => c,
                        // Out of file descriptors and the like: wait, retry.
                        Err(_) => {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                    _ = accepted.closed() => return,
                };
                let registry = registry.clone();
                let accepted = accepted.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(PROOF_TIMEOUT, answer(stream, &registry)).await {
                        Ok(Ok((channel, stream))) => {
                            let _ = stream.set_nodelay(true);
                            let _ = accepted.send(Accepted {
                                channel,
                                stream: Box::new(stream),
                                peer,
                                kind: DirectKind::Tcp,
                            });
                        }
                        Ok(Err(e)) => tracing::debug!("direct connection from {peer}: {e}"),
                        Err(_) => tracing::debug!("direct connection from {peer}: timed out"),
                    }
                });
            }
        });
    }
}

/// Every address of this machine's interfaces that a peer could reach,
/// loopback excluded.
pub(crate) fn interface_addresses(with_v6: bool) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.is_loopback())
        .map(|i| i.ip())
        .filter(|ip| match ip {
            IpAddr::V4(_) => true,
            // Link-local v6 addresses need a scope id the offer cannot carry.
            IpAddr::V6(v6) => with_v6 && (v6.segments()[0] & 0xffc0) != 0xfe80,
        })
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

/// The host's side of the proof on one incoming connection.
pub(crate) async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    registry: &Registry,
) -> Result<(ChannelId, S), DirectError> {
    let mut challenge = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut challenge);
    let mut greeting = [0u8; 36];
    greeting[..4].copy_from_slice(MAGIC);
    greeting[4..].copy_from_slice(&challenge);
    stream.write_all(&greeting).await?;

    let mut proof = [0u8; 34];
    stream.read_exact(&mut proof).await?;
    let raw_channel = u16::from_be_bytes([proof[0], proof[1]]);
    let channel = ChannelId(raw_channel);
    let key = registry
        .key(channel)
        .ok_or(DirectError::UnknownChannel(raw_channel))?;
    let want = key.mac(VIEWER_ROLE, &challenge, channel);
    if !bool::from(want.ct_eq(&proof[2..])) {
        return Err(DirectError::BadProof);
    }
    if !registry.claim(channel) {
        return Err(DirectError::UnknownChannel(raw_channel));
    }
    stream
        .write_all(&key.mac(HOST_ROLE, &challenge, channel))
        .await?;
    stream.flush().await?;
    Ok((channel, stream))
}

/// The viewer's side: tries every candidate at once and returns the first
/// connection on which the host proved itself.
pub async fn dial(
    candidates: &[SocketAddr],
    channel: ChannelId,
    key: &PathKey,
) -> Result<(TcpStream, SocketAddr), DirectError> {
    if candidates.is_empty() {
        return Err(DirectError::NoCandidates);
    }
    let mut attempts = tokio::task::JoinSet::new();
    for &addr in candidates.iter().take(MAX_CANDIDATES) {
        let key = key.clone();
        attempts.spawn(async move {
            let r = tokio::time::timeout(PROOF_TIMEOUT, prove(addr, channel, &key))
                .await
                .unwrap_or(Err(DirectError::Timeout));
            (addr, r)
        });
    }
    let mut failed = Vec::new();
    while let Some(done) = attempts.join_next().await {
        match done {
            Ok((addr, Ok(stream))) => return Ok((stream, addr)),
            Ok((addr, Err(e))) => failed.push(format!("{addr}: {}", crate::error_chain(&e))),
            Err(e) => failed.push(e.to_string()),
        }
    }
    Err(DirectError::AllFailed(failed))
}

async fn prove(
    addr: SocketAddr,
    channel: ChannelId,
    key: &PathKey,
) -> Result<TcpStream, DirectError> {
    let stream = prove_on(TcpStream::connect(addr).await?, channel, key).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The viewer's side of the proof on a connected stream.
pub(crate) async fn prove_on<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    channel: ChannelId,
    key: &PathKey,
) -> Result<S, DirectError> {
    let mut greeting = [0u8; 36];
    stream.read_exact(&mut greeting).await?;
    if &greeting[..4] != MAGIC {
        return Err(DirectError::NotAHost);
    }
    let mut challenge = [0u8; 32];
    challenge.copy_from_slice(&greeting[4..]);
    let mut proof = [0u8; 34];
    proof[..2].copy_from_slice(&channel.0.to_be_bytes());
    proof[2..].copy_from_slice(&key.mac(VIEWER_ROLE, &challenge, channel));
    stream.write_all(&proof).await?;
    stream.flush().await?;
    let mut theirs = [0u8; 32];
    stream.read_exact(&mut theirs).await?;
    if !bool::from(key.mac(HOST_ROLE, &challenge, channel).ct_eq(&theirs)) {
        return Err(DirectError::BadProof);
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> PathKey {
        PathKey(Zeroizing::new([b; 32]))
    }

    async fn listener(registry: &Registry) -> (SocketAddr, mpsc::UnboundedReceiver<Accepted>) {
        let l = DirectListener::bind(&DirectOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            advertise: None,
            punch: false,
        })
        .await
        .unwrap();
        let addr = l.candidates()[0];
        let (tx, rx) = mpsc::unbounded_channel();
        l.spawn(registry.clone(), tx);
        (addr, rx)
    }

    #[tokio::test]
    async fn both_ends_prove_the_key_and_one_path_wins() {
        let registry = Registry::default();
        registry.insert(ChannelId(7), key(1));
        let (addr, mut accepted) = listener(&registry).await;

        // Offered twice (two addresses of one host): one path, not two.
        let (mut stream, at) = dial(&[addr, addr], ChannelId(7), &key(1)).await.unwrap();
        assert_eq!(at, addr);
        let got = accepted.recv().await.unwrap();
        assert_eq!(got.channel, ChannelId(7));
        assert_eq!(got.kind, DirectKind::Tcp);
        let mut host_side = got.stream;
        stream.write_all(b"over the direct path").await.unwrap();
        let mut buf = [0u8; 20];
        host_side.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"over the direct path");

        // A second dial for the same channel is refused.
        assert!(dial(&[addr], ChannelId(7), &key(1)).await.is_err());
    }

    #[tokio::test]
    async fn a_wrong_key_or_channel_gets_nothing() {
        let registry = Registry::default();
        registry.insert(ChannelId(7), key(1));
        let (addr, mut accepted) = listener(&registry).await;
        let e = dial(&[addr], ChannelId(7), &key(2)).await.unwrap_err();
        assert!(e.to_string().contains("no direct connection worked"), "{e}");
        let e = dial(&[addr], ChannelId(8), &key(1)).await.unwrap_err();
        assert!(e.to_string().contains("no direct connection worked"), "{e}");
        // The right viewer still gets through afterwards.
        dial(&[addr], ChannelId(7), &key(1)).await.unwrap();
        assert_eq!(accepted.recv().await.unwrap().channel, ChannelId(7));
    }

    #[tokio::test]
    async fn a_stranger_that_is_not_a_host_is_not_trusted() {
        // Something else listens there and says nothing sensible.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let _ = s.write_all(&[0u8; 36]).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let e = dial(&[addr], ChannelId(1), &key(1)).await.unwrap_err();
        assert!(e.to_string().contains("not a Fernsicht host"), "{e}");
    }
}
