//! The client's way to a relay: TLS on the relay's own port (4663) first,
//! then a WebSocket over TLS on 443 and then 80 — through the proxy the
//! environment or the system names, and directly — so that a session
//! gets out of networks that let only web traffic through.

use super::proxy::{self, ProxyError, ProxySetting};
use super::stream::BoxStream;
use super::ws::{WS_PATH, WsStream};
use crate::client::RelayAddr;
use crate::tls::{self, Fingerprint, PinMismatch, RelayTrust, TlsError};
use std::fmt;
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub trust: RelayTrust,
    pub proxy: ProxySetting,
    /// Ports for the WebSocket fallback, in order.
    pub fallback_ports: Vec<u16>,
    /// Time one attempt may take (TCP, proxy, TLS and WebSocket set-up):
    /// short, since a firewall that drops packets makes a connect hang.
    pub attempt_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            trust: RelayTrust::System,
            proxy: ProxySetting::Auto,
            fallback_ports: vec![443, 80],
            attempt_timeout: Duration::from_secs(4),
        }
    }
}

/// Which way the link to the relay runs, for the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkPath {
    Tls { port: u16 },
    WebSocket { port: u16, proxy: Option<String> },
}

impl fmt::Display for LinkPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkPath::Tls { port } => write!(f, "TLS, port {port}"),
            LinkPath::WebSocket { port, proxy: None } => {
                write!(f, "WebSocket over TLS, port {port}")
            }
            LinkPath::WebSocket {
                port,
                proxy: Some(p),
            } => write!(f, "WebSocket over TLS, port {port}, via proxy {p}"),
        }
    }
}

/// An open link to a relay.
pub struct RelayLink {
    pub stream: BoxStream,
    pub path: LinkPath,
    /// The certificate the relay presented (to pin on first use).
    pub fingerprint: Fingerprint,
}

/// One way that did not work.
#[derive(Debug)]
pub struct Attempt {
    pub path: LinkPath,
    pub error: String,
}

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// Not the relay we were told to trust: trying other ports would only
    /// reach the same impostor.
    #[error(transparent)]
    PinMismatch(#[from] PinMismatch),
    /// The proxy setting needs fixing (credentials).
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("no way to the relay worked: {}", summary(.0))]
    AllFailed(Vec<Attempt>),
}

fn summary(attempts: &[Attempt]) -> String {
    attempts
        .iter()
        .map(|a| format!("{} ({})", a.path, a.error))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why one attempt failed; `Fatal` ends the search.
enum Failure {
    Fatal(ConnectError),
    Next(String),
}

fn io_failure(e: std::io::Error) -> Failure {
    // A pinned certificate that does not match comes back from rustls
    // inside an io::Error; find it and stop.
    if let Some(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other))) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        && let Some(mismatch) = other.0.downcast_ref::<PinMismatch>()
    {
        return Failure::Fatal(ConnectError::PinMismatch(PinMismatch {
            want: mismatch.want,
            got: mismatch.got,
        }));
    }
    Failure::Next(crate::error_chain(&e))
}

/// Connects to the relay at `addr`, trying each way in turn.
pub async fn connect_relay(
    addr: &RelayAddr,
    options: &ConnectOptions,
) -> Result<RelayLink, ConnectError> {
    let config = tls::client_config(&options.trust)?;
    let connector = TlsConnector::from(config);
    let host = addr.host();
    let mut plan = vec![(LinkPath::Tls { port: addr.port() }, None)];
    let proxy = proxy::proxy_for(&options.proxy, host)?;
    for &port in &options.fallback_ports {
        if let Some(p) = &proxy {
            plan.push((
                LinkPath::WebSocket {
                    port,
                    proxy: Some(p.to_string()),
                },
                Some(p.clone()),
            ));
        }
        plan.push((LinkPath::WebSocket { port, proxy: None }, None));
    }
    let mut failed = Vec::new();
    for (path, via) in plan {
        let attempt = async {
            let port = match &path {
                LinkPath::Tls { port } | LinkPath::WebSocket { port, .. } => *port,
            };
            let tcp = match &via {
                Some(p) => proxy::tunnel(p, host, port, options.attempt_timeout)
                    .await
                    .map_err(|e| {
                        if e.is_fatal() {
                            Failure::Fatal(e.into())
                        } else {
                            Failure::Next(crate::error_chain(&e))
                        }
                    })?,
                None => {
                    let s = TcpStream::connect((host, port)).await.map_err(io_failure)?;
                    let _ = s.set_nodelay(true);
                    s
                }
            };
            let tls = connector
                .connect(tls::server_name(host), tcp)
                .await
                .map_err(io_failure)?;
            let fingerprint = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| Fingerprint::of(c))
                .ok_or_else(|| Failure::Next("the relay sent no certificate".into()))?;
            let stream: BoxStream = match &path {
                LinkPath::Tls { .. } => Box::new(tls),
                LinkPath::WebSocket { .. } => Box::new(websocket(tls, host, port).await?),
            };
            Ok::<_, Failure>(RelayLink {
                stream,
                path: path.clone(),
                fingerprint,
            })
        };
        match tokio::time::timeout(options.attempt_timeout, attempt).await {
            Ok(Ok(link)) => return Ok(link),
            Ok(Err(Failure::Fatal(e))) => return Err(e),
            Ok(Err(Failure::Next(error))) => failed.push(Attempt { path, error }),
            Err(_) => failed.push(Attempt {
                path,
                error: "timed out".into(),
            }),
        }
    }
    Err(ConnectError::AllFailed(failed))
}

async fn websocket<S>(tls: S, host: &str, port: u16) -> Result<WsStream<S>, Failure>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let url = format!("wss://{host}:{port}{WS_PATH}");
    let (ws, _) = tokio_tungstenite::client_async(url, tls)
        .await
        .map_err(|e| Failure::Next(format!("WebSocket upgrade failed: {e}")))?;
    Ok(WsStream::new(ws))
}
