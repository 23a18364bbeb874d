//! The relay's side of a link: TLS, then either frames directly or a
//! WebSocket upgrade (told apart by the first bytes), on every port the
//! relay listens on.

use super::rewind::Rewind;
use super::stream::BoxStream;
use super::ws::{WS_PATH, WsStream};
use std::time::Duration;
use thiserror::Error;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

/// How a client reached the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptedPath {
    Tls,
    WebSocket,
}

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AcceptError {
    #[error("TLS handshake with the client failed")]
    Tls(#[source] std::io::Error),
    #[error("the client did not finish setting up in time")]
    Timeout,
    #[error("the client closed the link before saying anything")]
    Closed(#[source] std::io::Error),
    #[error("WebSocket upgrade failed")]
    WebSocket(#[source] tokio_tungstenite::tungstenite::Error),
}

/// Completes TLS (and a WebSocket upgrade if that is what the client asks
/// for) within `timeout`.
pub async fn accept(
    tcp: TcpStream,
    acceptor: &TlsAcceptor,
    timeout: Duration,
) -> Result<(BoxStream, AcceptedPath), AcceptError> {
    let _ = tcp.set_nodelay(true);
    let work = async {
        let mut tls = acceptor.accept(tcp).await.map_err(AcceptError::Tls)?;
        // Frames start with the version byte 1; a WebSocket upgrade with
        // "GET ". Four bytes tell them apart.
        let mut first = [0u8; 4];
        tls.read_exact(&mut first)
            .await
            .map_err(AcceptError::Closed)?;
        let stream = Rewind::new(first.to_vec(), tls);
        if &first == b"GET " {
            // The callback's error type is fixed by tungstenite.
            #[allow(clippy::result_large_err)]
            let check_path = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
                if req.uri().path() == WS_PATH {
                    Ok(resp)
                } else {
                    let mut e = ErrorResponse::new(Some("not found".into()));
                    *e.status_mut() = StatusCode::NOT_FOUND;
                    Err(e)
                }
            };
            let ws = tokio_tungstenite::accept_hdr_async(stream, check_path)
                .await
                .map_err(AcceptError::WebSocket)?;
            Ok((
                Box::new(WsStream::new(ws)) as BoxStream,
                AcceptedPath::WebSocket,
            ))
        } else {
            Ok((Box::new(stream) as BoxStream, AcceptedPath::Tls))
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| AcceptError::Timeout)?
}
