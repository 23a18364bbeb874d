//! The relay ("tunnel") server: hands out session numbers, pairs viewers
//! with hosts and forwards their frames by channel.
//!
//! The relay reads only the clear frame headers and control messages. It
//! never holds a session key: handshake frames pass through unchanged (and
//! are bound into the peers' transcripts), sealed frames are opaque to it.

pub mod backoff;
pub mod clock;
pub mod cluster;
mod conn;
mod family;
pub mod files;
mod hub;
mod metrics;
pub mod numbers;
mod outbox;
pub mod records;
pub mod rendezvous;

use crate::tls::{Fingerprint, RelayIdentity, TlsError};
use backoff::JoinBackoff;
use clock::{Clock, SystemClock};
use hub::Hub;
use numbers::{NumberStore, StoreError};
use records::{RecordError, Records};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

/// The relay's well-known port, as in the FastViewer seed.
pub const DEFAULT_PORT: u16 = 4663;

/// Where the relay's TLS certificate comes from.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// Made on first start and kept in the data directory, for these names.
    SelfSigned { names: Vec<String> },
    /// PEM files, e.g. from a public CA.
    Files { cert: PathBuf, key: PathBuf },
}

#[derive(Clone)]
pub struct RelayConfig {
    /// Every address to listen on; each serves TLS and WebSocket-over-TLS.
    /// Addresses after the first that cannot be bound (e.g. ports 443 and
    /// 80 without the right to bind them) are skipped with a warning.
    pub listen: Vec<SocketAddr>,
    pub tls: TlsSource,
    /// Where the relay keeps its state (the burned session numbers).
    pub data_dir: PathBuf,
    /// Viewers per session.
    pub max_viewers: usize,
    /// Bytes queued for one connection before it counts as too slow.
    pub queue_limit: usize,
    /// A connection that sends nothing for this long is dropped (clients
    /// ping every 15 s).
    pub idle_timeout: Duration,
    /// A single write that takes longer than this drops the connection.
    pub write_timeout: Duration,
    /// Time a new connection has to say what it wants.
    pub hello_timeout: Duration,
    /// How long the place of a host or viewer whose connection dropped is
    /// kept for it to come back ([`crate::control::ClientRequest::Resume`]);
    /// zero ends its part at once.
    pub resume_grace: Duration,
    pub clock: Arc<dyn Clock>,
    /// Bounds of the encrypted file store (`DATA/files`).
    pub store: files::StoreLimits,
    /// How long participant records (IP address, session number, start
    /// and end) are kept; zero keeps none at all.
    pub retention: Duration,
    /// Where to serve Prometheus metrics (`GET /metrics`); none by default.
    pub metrics: Option<SocketAddr>,
    /// Where the UDP rendezvous for hole punching answers.
    pub rendezvous: rendezvous::RendezvousAt,
    /// Share numbers, sessions and back-off with the relays of a family
    /// through Redis; none: this relay is on its own.
    pub cluster: Option<cluster::ClusterSettings>,
}

impl RelayConfig {
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        RelayConfig {
            listen: vec![listen],
            tls: TlsSource::SelfSigned { names: Vec::new() },
            data_dir,
            max_viewers: 16,
            queue_limit: 32 * 1024 * 1024,
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(20),
            hello_timeout: Duration::from_secs(10),
            resume_grace: Duration::from_secs(30),
            clock: Arc::new(SystemClock),
            store: files::StoreLimits::default(),
            retention: records::DEFAULT_RETENTION,
            metrics: None,
            rendezvous: rendezvous::RendezvousAt::MainPort,
            cluster: None,
        }
    }
}

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum RelayError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot use data directory {dir}")]
    DataDir {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the relay's TLS certificate")]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Records(#[from] RecordError),
    #[error("joining the relays' family")]
    Cluster(#[from] cluster::ClusterError),
}

/// Counters a relay keeps about itself (never about content).
#[derive(Debug, Default)]
pub struct Stats {
    pub sessions_total: AtomicU64,
    pub viewers_total: AtomicU64,
    pub frames_forwarded: AtomicU64,
    pub bytes_forwarded: AtomicU64,
    pub joins_refused: AtomicU64,
    pub backoff_hits: AtomicU64,
    pub dropped_slow: AtomicU64,
    pub protocol_errors: AtomicU64,
    /// Joins and resumes sent on to the sibling that holds the session.
    pub redirects: AtomicU64,
    /// Sessions taken over from a sibling that died.
    pub taken_over: AtomicU64,
}

impl Stats {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// State shared by every connection task.
pub(crate) struct Shared {
    config: RelayConfig,
    hub: Hub,
    store: Mutex<NumberStore>,
    backoff: Mutex<JoinBackoff>,
    files: files::FileStore,
    records: Records,
    /// The family's shared state, with `--redis`.
    cluster: Option<cluster::Cluster>,
    stats: Arc<Stats>,
    shutdown: CancellationToken,
    /// Parent of every connection's token. Cancelled only after the
    /// sessions were ended (their `Closed` queued) or handed over, so a
    /// stopping relay's last words still go out.
    links: CancellationToken,
    /// Every connection task, so that stopping waits (briefly) for them.
    tasks: tokio_util::task::TaskTracker,
}

/// A bound relay, ready to run.
pub struct Relay {
    listeners: Vec<TcpListener>,
    metrics: Option<TcpListener>,
    /// The rendezvous socket, if it could be bound.
    udp: Option<tokio::net::UdpSocket>,
    acceptor: TlsAcceptor,
    fingerprint: Fingerprint,
    shared: Arc<Shared>,
}

impl Relay {
    /// Opens the data directory and binds the listening socket.
    pub async fn bind(config: RelayConfig) -> Result<Relay, RelayError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| RelayError::DataDir {
            dir: config.data_dir.clone(),
            source,
        })?;
        let path = config.data_dir.join("numbers.redb");
        let store = tokio::task::spawn_blocking(move || NumberStore::open(&path))
            .await
            .map_err(|e| RelayError::DataDir {
                dir: config.data_dir.clone(),
                source: std::io::Error::other(e),
            })??;
        // Only after the number store opened: that lock says this is the
        // one relay using this directory, so its leftover files are ours
        // to delete.
        let store_dir = config.data_dir.join("files");
        let files = files::FileStore::open(store_dir.clone(), config.store).map_err(|source| {
            RelayError::DataDir {
                dir: store_dir,
                source,
            }
        })?;
        let records = Records::start(
            &config.data_dir.join("records.redb"),
            config.retention,
            config.clock.clone(),
        )?;
        let identity = match &config.tls {
            TlsSource::SelfSigned { names } => {
                RelayIdentity::load_or_create(&config.data_dir, names)?
            }
            TlsSource::Files { cert, key } => RelayIdentity::from_pem_files(cert, key)?,
        };
        let acceptor = TlsAcceptor::from(identity.server_config()?);
        let mut listeners = Vec::new();
        for (i, addr) in config.listen.iter().enumerate() {
            match TcpListener::bind(addr).await {
                Ok(l) => listeners.push(l),
                Err(source) if i == 0 => {
                    return Err(RelayError::Bind {
                        addr: *addr,
                        source,
                    });
                }
                Err(e) => tracing::warn!(%addr, error = %e, "not listening on this address"),
            }
        }
        let cluster = match &config.cluster {
            Some(c) => {
                // Port 0 (tests): the port the main listener got.
                let public = match c.public.parse::<crate::client::RelayAddr>() {
                    Ok(a) if a.port() == 0 => {
                        let port = listeners
                            .first()
                            .and_then(|l| l.local_addr().ok())
                            .map_or(0, |a| a.port());
                        crate::client::RelayAddr::new(a.host(), port).to_string()
                    }
                    _ => c.public.clone(),
                };
                Some(cluster::Cluster::connect(&c.redis, public, identity.fingerprint()).await?)
            }
            None => None,
        };
        let metrics = match config.metrics {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| RelayError::Bind { addr, source })?,
            ),
            None => None,
        };
        let udp = rendezvous::bind(config.rendezvous, &listeners).await;
        Ok(Relay {
            listeners,
            metrics,
            udp,
            acceptor,
            fingerprint: identity.fingerprint(),
            shared: Arc::new(Shared {
                config,
                hub: Hub::default(),
                store: Mutex::new(store),
                backoff: Mutex::new(JoinBackoff::new()),
                files,
                records,
                cluster,
                stats: Arc::new(Stats::default()),
                shutdown: CancellationToken::new(),
                links: CancellationToken::new(),
                tasks: tokio_util::task::TaskTracker::new(),
            }),
        })
    }

    /// The address of the first listener (the relay's main port).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addrs()
            .first()
            .copied()
            .unwrap_or(self.shared.config.listen[0])
    }

    /// Every address the relay listens on.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Where the metrics endpoint listens, if it does.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// What clients pin.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// This relay's name in its family (`--redis`), if it has one.
    pub fn family_name(&self) -> Option<&str> {
        self.shared.cluster.as_ref().map(|c| c.name())
    }

    /// Where the UDP rendezvous answers, if it runs.
    pub fn rendezvous_addr(&self) -> Option<SocketAddr> {
        self.udp.as_ref().and_then(|u| u.local_addr().ok())
    }

    pub fn stats(&self) -> Arc<Stats> {
        self.shared.stats.clone()
    }

    /// Runs the relay on the current tokio runtime and returns a handle to
    /// stop it.
    pub fn spawn(self) -> RelayHandle {
        let addr = self.local_addr();
        let addrs = self.local_addrs();
        let fingerprint = self.fingerprint;
        let metrics = self.metrics_addr();
        let stats = self.stats();
        let shutdown = self.shared.shutdown.clone();
        let shared = self.shared.clone();
        let task = tokio::spawn(self.run());
        RelayHandle {
            addr,
            addrs,
            metrics,
            fingerprint,
            stats,
            shutdown,
            shared,
            task,
        }
    }

    /// Accepts connections until shut down.
    pub async fn run(self) {
        let shared = self.shared;
        let mut accepting = tokio::task::JoinSet::new();
        for listener in self.listeners {
            accepting.spawn(accept_loop(listener, self.acceptor.clone(), shared.clone()));
        }
        if let Some(listener) = self.metrics {
            let registry = Arc::new(metrics::registry(&shared));
            accepting.spawn(metrics::serve(listener, registry));
        }
        if let Some(udp) = self.udp {
            accepting.spawn(rendezvous::serve(udp, shared.shutdown.clone()));
        }
        if shared.cluster.is_some() {
            accepting.spawn(cluster_heartbeat(shared.clone()));
        }
        let mut stale_sweep = tokio::time::interval(Duration::from_secs(600));
        loop {
            tokio::select! {
                _ = shared.shutdown.cancelled() => break,
                _ = stale_sweep.tick() => {
                    let now = shared.config.clock.now();
                    hub_lock(&shared.backoff).forget_stale(now);
                }
            }
        }
        accepting.abort_all();
        // In a family, stopping hands the sessions over: once our "alive"
        // key is gone, a sibling takes each session over as soon as its
        // participants resume there, so a rolling restart ends no session.
        let hand_over = match &shared.cluster {
            Some(cluster) => match cluster.leave().await {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(error = %crate::error_chain(&e), "cannot tell the family we leave: ending the sessions here");
                    false
                }
            },
            None => false,
        };
        for session in shared.hub.drain() {
            let (files, number) = (shared.clone(), session.number);
            let _ = tokio::task::spawn_blocking(move || files.files.end_session(number)).await;
            if hand_over {
                session.drop_links();
            } else {
                session.end(crate::control::LeaveReason::RelayShutdown);
                session.close_host(crate::control::LeaveReason::RelayShutdown);
                family::forget_session(&shared, number).await;
            }
        }
        if hand_over {
            tracing::info!("sessions left to the family");
        }
        shared.links.cancel();
        shared.tasks.close();
        if tokio::time::timeout(Duration::from_secs(2), shared.tasks.wait())
            .await
            .is_err()
        {
            tracing::debug!("some connections did not close in time");
        }
    }
}

/// Accepts on one listener: each connection gets TLS (and maybe a WebSocket
/// upgrade) on its own task, so a slow client never holds up the others.
async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                let shared = shared.clone();
                let acceptor = acceptor.clone();
                shared.tasks.clone().spawn(async move {
                    let timeout = shared.config.hello_timeout;
                    match crate::transport::accept::accept(tcp, &acceptor, timeout).await {
                        Ok((stream, _path)) => conn::handle(shared, stream, peer).await,
                        Err(e) => {
                            tracing::debug!(%peer, error = %crate::error_chain(&e), "link set-up failed")
                        }
                    }
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: wait a moment
                // rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Tells the family this relay is alive, and keeps its sessions' entries
/// from expiring. A Redis outage is logged once, and once when it ends;
/// sessions already here go on meanwhile.
async fn cluster_heartbeat(shared: Arc<Shared>) {
    let Some(cluster) = &shared.cluster else {
        return;
    };
    let mut beat = tokio::time::interval(cluster::HEARTBEAT);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let keep_every = (cluster::KEEP_EVERY.as_secs() / cluster::HEARTBEAT.as_secs()).max(1);
    let mut failing = false;
    for tick in 0u64.. {
        beat.tick().await;
        let mut result = cluster.heartbeat().await;
        if result.is_ok() && tick % keep_every == 0 {
            result = cluster.keep(&shared.hub.numbers()).await;
        }
        match result {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("the shared store (Redis) answers again");
            }
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(error = %crate::error_chain(&e), "the shared store (Redis) does not answer");
            }
            _ => {}
        }
    }
}

pub(crate) fn hub_lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A running relay.
pub struct RelayHandle {
    /// The main listening address.
    pub addr: SocketAddr,
    /// Every listening address.
    pub addrs: Vec<SocketAddr>,
    /// Where the metrics endpoint listens, if it does.
    pub metrics: Option<SocketAddr>,
    /// What clients pin.
    pub fingerprint: Fingerprint,
    pub stats: Arc<Stats>,
    shutdown: CancellationToken,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl RelayHandle {
    /// Live sessions right now.
    pub fn sessions(&self) -> usize {
        self.shared.hub.len()
    }

    /// What the relay remembers about participants.
    pub fn records(&self) -> &Records {
        &self.shared.records
    }

    /// Bytes parked in the file store by all sessions.
    pub fn stored_bytes(&self) -> u64 {
        self.shared.files.used()
    }

    /// Viewers currently paired with the host of `number`.
    pub fn viewers(&self, number: crate::SessionNumber) -> Option<usize> {
        self.shared.hub.get(number).map(|s| s.viewer_count())
    }

    /// Stops accepting, closes every session, and waits for the accept loop.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        let _ = self.task.await;
    }
}
