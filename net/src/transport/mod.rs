//! Frames over any async byte stream, and the streams themselves: TLS to
//! the relay, WebSocket and proxy fallbacks ([`connect`]), and the relay's
//! side ([`accept`]). Thin on purpose: all protocol decisions live in the
//! sans-I/O modules.

pub mod accept;
pub mod connect;
pub mod proxy;
mod rewind;
pub mod stream;
mod ws;

pub use stream::{BoxStream, ByteStream};

use crate::frame::{Frame, FrameError, HEADER_LEN, Header};
use std::io;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};

/// Reading buffer size: large enough that small frames cost one syscall.
const READ_BUFFER: usize = 64 * 1024;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum TransportError {
    #[error("connection lost")]
    Io(#[from] io::Error),
    #[error("the other end sent an invalid frame")]
    Frame(#[from] FrameError),
}

/// Reads whole frames, checking each header before reading its payload.
pub struct FrameReader<R> {
    inner: BufReader<R>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub fn new(inner: R) -> Self {
        FrameReader {
            inner: BufReader::with_capacity(READ_BUFFER, inner),
        }
    }

    /// The next frame, or `None` when the peer closed the connection between
    /// two frames. A connection closed inside a frame is
    /// [`FrameError::Truncated`].
    pub async fn read_frame(&mut self) -> Result<Option<Frame>, TransportError> {
        let Some((header, raw)) = self.read_raw().await? else {
            return Ok(None);
        };
        Ok(Some(Frame {
            header,
            payload: raw[HEADER_LEN..].to_vec(),
        }))
    }

    /// The next frame as its parsed header plus the complete wire bytes
    /// (header included), for forwarding without re-encoding.
    pub async fn read_raw(&mut self) -> Result<Option<(Header, Vec<u8>)>, TransportError> {
        let mut head = [0u8; HEADER_LEN];
        let mut filled = 0;
        while filled < HEADER_LEN {
            let n = self.inner.read(&mut head[filled..]).await?;
            if n == 0 {
                if filled == 0 {
                    return Ok(None);
                }
                return Err(FrameError::Truncated {
                    have: filled,
                    need: HEADER_LEN,
                }
                .into());
            }
            filled += n;
        }
        let header = Header::parse(&head)?;
        let total = HEADER_LEN + header.len as usize;
        // Grow the buffer as bytes arrive rather than trusting the announced
        // length: a peer that announces 8 MiB and sends nothing then costs
        // 64 KiB, not 8 MiB, per connection.
        let mut raw = Vec::with_capacity(total.min(HEADER_LEN + READ_BUFFER));
        raw.extend_from_slice(&head);
        let mut payload = (&mut self.inner).take(header.len as u64);
        payload.read_to_end(&mut raw).await?;
        if raw.len() < total {
            return Err(FrameError::Truncated {
                have: raw.len(),
                need: total,
            }
            .into());
        }
        Ok(Some((header, raw)))
    }
}

/// Writes frames; a frame is flushed as soon as it is written, since every
/// frame is either interactive or large enough to fill packets on its own.
pub struct FrameWriter<W: AsyncWrite> {
    inner: BufWriter<W>,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub fn new(inner: W) -> Self {
        FrameWriter {
            inner: BufWriter::with_capacity(READ_BUFFER, inner),
        }
    }

    pub async fn write_frame(&mut self, frame: &Frame) -> io::Result<()> {
        self.inner.write_all(&frame.header.to_bytes()).await?;
        self.inner.write_all(&frame.payload).await?;
        self.inner.flush().await
    }

    /// Writes a frame without flushing, for a burst of frames followed by
    /// [`FrameWriter::flush`].
    pub async fn write_frame_buffered(&mut self, frame: &Frame) -> io::Result<()> {
        self.inner.write_all(&frame.header.to_bytes()).await?;
        self.inner.write_all(&frame.payload).await
    }

    /// Writes bytes that already form whole frames (as read by
    /// [`FrameReader::read_raw`]).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes).await?;
        self.inner.flush().await
    }

    /// Writes without flushing, for a burst of frames followed by
    /// [`FrameWriter::flush`].
    pub async fn write_raw_buffered(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes).await
    }

    pub async fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().await
    }

    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.inner.shutdown().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{ChannelId, FrameType};

    #[tokio::test]
    async fn frames_cross_a_pipe() {
        let (a, b) = tokio::io::duplex(1024);
        let mut w = FrameWriter::new(a);
        let mut r = FrameReader::new(b);
        let f = Frame::new(FrameType::Sealed, ChannelId(2), 9, vec![7; 5000]).unwrap();
        let writer = tokio::spawn(async move {
            w.write_frame(&f).await.unwrap();
            w.shutdown().await.unwrap();
            f
        });
        let got = r.read_frame().await.unwrap().unwrap();
        assert_eq!(got, writer.await.unwrap());
        assert!(r.read_frame().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn truncated_frame_is_an_error() {
        let (mut a, b) = tokio::io::duplex(1024);
        let mut r = FrameReader::new(b);
        let bytes = Frame::new(FrameType::Sealed, ChannelId(2), 9, vec![7; 100])
            .unwrap()
            .encode();
        a.write_all(&bytes[..50]).await.unwrap();
        drop(a);
        assert!(matches!(
            r.read_frame().await,
            Err(TransportError::Frame(FrameError::Truncated {
                have: 50,
                need: 116
            }))
        ));
    }
}
