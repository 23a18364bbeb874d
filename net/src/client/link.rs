//! The client's connection to a relay: connect, a writer task, and reading
//! the relay's control events.

use super::{ClientError, RelayAddr};
use crate::control::RelayEvent;
use crate::frame::{Frame, FrameType};
use crate::tls::Fingerprint;
use crate::transport::connect::{ConnectOptions, LinkPath, connect_relay};
use crate::transport::{BoxStream, FrameReader, FrameWriter, TransportError};
use std::time::Duration;
use tokio::io::ReadHalf;
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
pub(super) async fn connect(
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
    Ok((FrameReader::new(read), LinkWriter { tx, task }, info))
}

/// Reads the relay's answer to our first request.
pub(super) async fn first_event(
    reader: &mut Reader,
    addr: &RelayAddr,
) -> Result<RelayEvent, ClientError> {
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
