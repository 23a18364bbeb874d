//! One type for every byte stream a frame can travel on: TCP, TLS,
//! WebSocket, a proxy tunnel.

use tokio::io::{AsyncRead, AsyncWrite};

/// A bidirectional byte stream.
pub trait ByteStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> ByteStream for T {}

pub type BoxStream = Box<dyn ByteStream>;
