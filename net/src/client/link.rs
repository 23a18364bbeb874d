//! The client's connection to a relay: connect, a writer task, and reading
//! the relay's control events.

use super::{ClientError, RelayAddr};
use crate::control::{ClientRequest, RELAY_PROTOCOL, RelayEvent};
use crate::frame::{Frame, FrameType};
use crate::tls::{Fingerprint, RelayTrust};
use crate::transport::connect::{ConnectOptions, LinkPath, connect_relay};
use crate::transport::{BoxStream, FrameReader, FrameWriter, TransportError};
use std::time::Duration;
use tokio::io::{AsyncWrite, ReadHalf};
use tokio::sync::mpsc;

/// How long connecting and the relay's first answer may take.
pub(super) const RELAY_TIMEOUT: Duration = Duration::from_secs(10);
/// Interval of our pings to the relay (it drops connections idle for 60 s).
pub(super) const KEEPALIVE: Duration = Duration::from_secs(15);
/// Time a handshake may take from pairing to confirmed keys. It ends a
/// handshake that a relay (or a broken peer) leaves hanging.
pub(super) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Frames waiting for the socket before senders wait: a little buffering
/// for bursts, without hiding a slow link behind a deep queue.
const SEND_QUEUE: usize = 64;

pub(super) type Reader = FrameReader<ReadHalf<BoxStream>>;

/// How the link to the relay runs, for the status bar, and which
/// certificate the relay showed (to pin on first use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    pub path: LinkPath,
    pub fingerprint: Fingerprint,
}

/// Sends frames through the connection's writer task.
pub(super) struct LinkWriter {
    tx: mpsc::Sender<Frame>,
    task: tokio::task::JoinHandle<()>,
}

/// Longest wait for queued frames (the goodbyes) to reach the socket when
/// a session ends.
const FINISH_TIMEOUT: Duration = Duration::from_secs(3);

impl LinkWriter {
    /// A writer task for `write`: frames queue up to [`SEND_QUEUE`] and go
    /// out in batches, flushed when the queue runs empty.
    pub(super) fn spawn<W: AsyncWrite + Unpin + Send + 'static>(write: W) -> LinkWriter {
        let (tx, mut rx) = mpsc::channel::<Frame>(SEND_QUEUE);
        let task = tokio::spawn(async move {
            let mut w = FrameWriter::new(write);
            while let Some(frame) = rx.recv().await {
                if w.write_frame_buffered(&frame).await.is_err() {
                    return;
                }
                if rx.is_empty() && w.flush().await.is_err() {
                    return;
                }
            }
            let _ = w.shutdown().await;
        });
        LinkWriter { tx, task }
    }

    /// Sends what is queued, then closes the connection. Without this, a
    /// process that exits right after ending its session could lose its
    /// last frames, and the peer would see a dropped link instead of a
    /// goodbye.
    pub(super) async fn finish(self) {
        drop(self.tx);
        let _ = tokio::time::timeout(FINISH_TIMEOUT, self.task).await;
    }

    pub(super) async fn send(&self, frame: &Frame) -> Result<(), ClientError> {
        self.send_owned(frame.clone()).await
    }

    /// Sends a frame without copying it.
    pub(super) async fn send_owned(&self, frame: Frame) -> Result<(), ClientError> {
        self.tx.send(frame).await.map_err(|_| {
            ClientError::Transport(TransportError::Io(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "connection to the relay closed",
            )))
        })
    }
}

/// Connects to the relay; returns the reading half, a writer, and how the
/// link runs.
async fn connect(
    addr: &RelayAddr,
    options: &ConnectOptions,
) -> Result<(Reader, LinkWriter, LinkInfo), ClientError> {
    let link = tokio::time::timeout(RELAY_TIMEOUT * 3, connect_relay(addr, options))
        .await
        .map_err(|_| ClientError::Timeout(addr.clone()))?
        .map_err(|source| ClientError::Connect {
            addr: addr.clone(),
            source,
        })?;
    let info = LinkInfo {
        path: link.path,
        fingerprint: link.fingerprint,
    };
    let (read, write) = tokio::io::split(link.stream);
    Ok((FrameReader::new(read), LinkWriter::spawn(write), info))
}

/// Reads the relay's answer to our first request.
async fn first_event(reader: &mut Reader, addr: &RelayAddr) -> Result<RelayEvent, ClientError> {
    let frame = tokio::time::timeout(RELAY_TIMEOUT, reader.read_frame())
        .await
        .map_err(|_| ClientError::Timeout(addr.clone()))??
        .ok_or_else(|| ClientError::RelayProtocol("closed the connection at once".into()))?;
    if frame.header.frame_type != FrameType::Control {
        return Err(ClientError::RelayProtocol(
            "sent session data before answering".into(),
        ));
    }
    RelayEvent::from_frame(&frame).map_err(|e| ClientError::RelayProtocol(crate::error_chain(&e)))
}

/// Redirects followed for one request: the relay that holds a session
/// answers itself, so one hop is normal; more means relays disagree.
const MAX_REDIRECTS: usize = 2;

/// A relay of the service and how to reach it.
pub type Route = (RelayAddr, ConnectOptions);

/// A relay's first answer to a request, and where it came from.
pub(super) struct Answer {
    pub reader: Reader,
    pub writer: LinkWriter,
    pub info: LinkInfo,
    pub event: RelayEvent,
    /// The relay that answered: the one asked, or the one it sent us to.
    pub route: Route,
}

/// Connects to `route`, sends `request` and reads the answer. A relay of a
/// family that does not hold the session names the one that does
/// ([`RelayEvent::Redirect`]); the request goes there, with that relay's
/// certificate pinned as the trusted relay vouched for it.
pub(super) async fn ask(route: &Route, request: &ClientRequest) -> Result<Answer, ClientError> {
    let mut route = route.clone();
    for _ in 0..=MAX_REDIRECTS {
        let (mut reader, writer, info) = connect(&route.0, &route.1).await?;
        writer.send(&request.to_frame()).await?;
        match first_event(&mut reader, &route.0).await? {
            RelayEvent::Redirect { relay, fingerprint } => {
                let addr: RelayAddr = relay.parse().map_err(|_| {
                    ClientError::RelayProtocol(format!("sent us to {relay:?}, not an address"))
                })?;
                tracing::info!(from = %route.0, to = %addr, "the relay sent us to the one that holds the session");
                let connect = ConnectOptions {
                    trust: RelayTrust::Pinned(Fingerprint(fingerprint)),
                    ..route.1.clone()
                };
                writer.finish().await;
                route = (addr, connect);
            }
            event => {
                return Ok(Answer {
                    reader,
                    writer,
                    info,
                    event,
                    route,
                });
            }
        }
    }
    Err(ClientError::RelayProtocol(format!(
        "sent us on more than {MAX_REDIRECTS} times"
    )))
}

/// Connects again after a dropped link and takes back the place `token`
/// holds (`channel` 0: the host's). `routes[0]` is the relay we had; the
/// others are its family, tried in turn while it cannot be reached, since
/// a sibling takes over the sessions of a relay that died. Retries with
/// growing pauses until `window` has passed. A refusal by our own relay
/// ends it at once; a sibling's refusal may only mean it is not of the
/// family, so the search goes on.
pub(super) async fn resume(
    routes: &[Route],
    number: crate::number::SessionNumber,
    channel: u16,
    token: [u8; 32],
    window: Duration,
) -> Result<(Reader, LinkWriter, Route), ClientError> {
    let first = routes
        .first()
        .ok_or_else(|| ClientError::RelayProtocol("no relay to reconnect to".into()))?;
    let request = ClientRequest::Resume {
        protocol: RELAY_PROTOCOL,
        number,
        channel,
        token,
    };
    let deadline = tokio::time::Instant::now() + window;
    let mut pause = Duration::from_millis(200);
    let mut last = String::new();
    for attempt in 0usize.. {
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        let ours = attempt % routes.len() == 0;
        let route = &routes[attempt % routes.len()];
        let answer = async {
            let answer = ask(route, &request).await?;
            match answer.event {
                RelayEvent::Resumed => Ok(Ok((answer.reader, answer.writer, answer.route))),
                RelayEvent::Refused { reason } => Ok(Err(ClientError::Refused(reason))),
                RelayEvent::Closed { reason } => Ok(Err(ClientError::RelayClosed(reason))),
                other => Err(ClientError::RelayProtocol(format!(
                    "answered the reconnection with {other:?}"
                ))),
            }
        };
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(Ok(link))) => return Ok(link),
            Ok(Ok(Err(refused))) if ours => return Err(refused),
            Ok(Ok(Err(refused))) => last = format!("{}: {}", route.0, crate::error_chain(&refused)),
            Ok(Err(e)) => last = crate::error_chain(&e),
            Err(_) => break,
        }
        // A whole round over the family failed: wait before the next.
        if (attempt + 1) % routes.len() == 0 {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }
    Err(ClientError::LinkLost {
        addr: first.0.clone(),
        secs: window.as_secs(),
        last,
    })
}

/// Our relay first, then the rest of its family (without repeating it).
pub(super) fn routes(current: &Route, family: &[Route]) -> Vec<Route> {
    let mut all = vec![current.clone()];
    all.extend(family.iter().filter(|r| r.0 != current.0).cloned());
    all
}
