//! The relay's per-connection send queue, bounded in bytes.
//!
//! Frames for a connection are queued here by whichever task routes them
//! and written by the connection's own writer task. The queue never blocks
//! the sender: when a peer reads too slowly and its queue would exceed the
//! limit, the push fails and the relay drops that peer. One slow viewer can
//! therefore neither stall its host nor grow the relay's memory.

use crate::control::RelayEvent;
use crate::transport::FrameWriter;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The queue is full: the peer cannot keep up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Vec<u8>>,
    queued: Arc<AtomicUsize>,
    limit: usize,
}

impl Outbox {
    /// Queues whole frames' bytes, or fails if that would exceed the limit.
    pub fn push(&self, bytes: Vec<u8>) -> Result<(), Overflow> {
        let len = bytes.len();
        let before = self.queued.fetch_add(len, Ordering::AcqRel);
        if before + len > self.limit {
            self.queued.fetch_sub(len, Ordering::AcqRel);
            return Err(Overflow);
        }
        if self.tx.send(bytes).is_err() {
            // Writer gone: the connection is closing anyway.
            self.queued.fetch_sub(len, Ordering::AcqRel);
        }
        Ok(())
    }

    /// Queues a relay event that carries data (a stored piece) within the
    /// limit, like forwarded frames.
    pub fn data_event(&self, event: &RelayEvent) -> Result<(), Overflow> {
        self.push(event.to_frame().encode())
    }

    /// Queues a relay event regardless of the limit: events are tiny and
    /// must reach the peer even when its queue is full of data.
    pub fn event(&self, event: &RelayEvent) {
        let bytes = event.to_frame().encode();
        let len = bytes.len();
        self.queued.fetch_add(len, Ordering::AcqRel);
        if self.tx.send(bytes).is_err() {
            self.queued.fetch_sub(len, Ordering::AcqRel);
        }
    }
}

/// Starts the writer task of a connection and returns its outbox. The task
/// ends when `cancel` fires (after a short drain, so a final `Closed` event
/// still goes out), when a write fails or stalls past `write_timeout`, or
/// when every outbox clone is dropped.
pub fn spawn_writer<W>(
    writer: W,
    limit: usize,
    write_timeout: Duration,
    cancel: CancellationToken,
) -> (Outbox, tokio::task::JoinHandle<()>)
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let queued = Arc::new(AtomicUsize::new(0));
    let outbox = Outbox {
        tx,
        queued: queued.clone(),
        limit,
    };
    let task = tokio::spawn(async move {
        let mut w = FrameWriter::new(writer);
        loop {
            let next = tokio::select! {
                biased;
                m = rx.recv() => m,
                _ = cancel.cancelled() => break,
            };
            let Some(bytes) = next else { break };
            let len = bytes.len();
            let ok = tokio::time::timeout(write_timeout, async {
                w.write_raw_buffered(&bytes).await?;
                if rx.is_empty() {
                    w.flush().await?;
                }
                Ok::<_, std::io::Error>(())
            })
            .await;
            queued.fetch_sub(len, Ordering::AcqRel);
            if !matches!(ok, Ok(Ok(()))) {
                cancel.cancel();
                return;
            }
        }
        // Drain what was queued before the close (the final event), but
        // never wait long for a peer that does not read.
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Ok(bytes) = rx.try_recv() {
                w.write_raw_buffered(&bytes).await?;
            }
            w.flush().await?;
            w.shutdown().await
        })
        .await;
    });
    (outbox, task)
}
