//! One viewer's direct path as a session uses it: a writer task, and a
//! reader task that stays shut until the peer's `PathSwitch` has arrived on
//! the relay, so that frames from the two paths can never interleave.

use super::link::LinkWriter;
use crate::frame::{ChannelId, Frame};
use crate::transport::{BoxStream, FrameReader, TransportError};
use std::net::SocketAddr;
use tokio::sync::{mpsc, oneshot};

/// Which way a viewer's session runs, for the status bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionPath {
    /// Through the relay.
    Relayed,
    /// Straight to the other side's address over TCP.
    Direct(SocketAddr),
    /// Straight to the other side's (public) address over QUIC, through a
    /// hole punched in the NATs between.
    DirectQuic(SocketAddr),
}

impl SessionPath {
    pub(super) fn of(kind: crate::direct::DirectKind, peer: SocketAddr) -> SessionPath {
        match kind {
            crate::direct::DirectKind::Tcp => SessionPath::Direct(peer),
            crate::direct::DirectKind::Quic => SessionPath::DirectQuic(peer),
        }
    }
}

impl std::fmt::Display for SessionPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionPath::Relayed => f.write_str("relayed"),
            SessionPath::Direct(addr) => write!(f, "direct {addr}"),
            SessionPath::DirectQuic(addr) => write!(f, "direct (QUIC) {addr}"),
        }
    }
}

/// What a direct path's reader hands the session: a frame, the end of the
/// stream (`Ok(None)`), or why it broke.
pub(super) type PathRead = (ChannelId, Result<Option<Frame>, TransportError>);

/// Frames read ahead per path before the reader waits for the session.
const READ_AHEAD: usize = 64;

pub(super) fn reads() -> (mpsc::Sender<PathRead>, mpsc::Receiver<PathRead>) {
    mpsc::channel(READ_AHEAD)
}

pub(super) struct DirectPath {
    pub writer: LinkWriter,
    /// Opens the reader; `None` once opened.
    go: Option<oneshot::Sender<()>>,
    _reader: AbortOnDrop,
}

/// Stops the reader task with its path: a reader blocked on a socket would
/// otherwise outlive the viewer it belonged to.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl DirectPath {
    pub fn new(stream: BoxStream, channel: ChannelId, out: mpsc::Sender<PathRead>) -> DirectPath {
        let (read, write) = tokio::io::split(stream);
        let (go, gate) = oneshot::channel::<()>();
        let reader = tokio::spawn(async move {
            // Dropped without opening: the path was never used.
            if gate.await.is_err() {
                return;
            }
            let mut reader = FrameReader::new(read);
            loop {
                let r = reader.read_frame().await;
                let last = !matches!(r, Ok(Some(_)));
                if out.send((channel, r)).await.is_err() || last {
                    return;
                }
            }
        });
        DirectPath {
            writer: LinkWriter::spawn(write),
            go: Some(go),
            _reader: AbortOnDrop(reader),
        }
    }

    /// The peer's last frame on the relay has been read: read this path
    /// from now on.
    pub fn open(&mut self) {
        if let Some(go) = self.go.take() {
            let _ = go.send(());
        }
    }

    /// Sends what is queued and closes the path.
    pub async fn finish(self) {
        self.writer.finish().await;
    }
}
