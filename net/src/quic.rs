//! QUIC for the punched direct path: the host's throw-away certificate,
//! the viewer's pin on it, and a QUIC stream as a byte stream for frames.
//!
//! The host makes a fresh certificate per viewer and sends its SHA-256
//! inside the end-to-end session; the viewer accepts exactly that
//! certificate. The relay, which carries the offer only as ciphertext,
//! can therefore neither read nor replace it, and cannot pose as the host
//! on the QUIC path. TLS inside QUIC then encrypts the path once more; the
//! frames on it are the session's sealed frames as on every path.

use crate::tls::{Fingerprint, PinVerifier};
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The name in the host's certificate and the viewer's handshake; the pin,
/// not the name, decides.
pub(crate) const SERVER_NAME: &str = "fernsicht-host";
/// Application protocol, so that a QUIC peer of another kind fails the
/// handshake instead of being taken for a host.
const ALPN: &[u8] = b"fernsicht-direct/1";
/// A punched path stays open through NATs that forget quiet mappings
/// after 30 s.
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// A peer silent this long (despite keep-alives) is gone.
const IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// First guess of the round trip before any is measured: lower than
/// quinn's 333 ms, so that an Initial dropped before the other side's NAT
/// opened is sent again soon.
const INITIAL_RTT: Duration = Duration::from_millis(100);
/// Longest wait for the peer to acknowledge our last bytes when a path
/// closes (the goodbye must arrive).
const LINGER: Duration = Duration::from_secs(3);

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum QuicError {
    #[error("cannot make the host's certificate")]
    Certificate(#[from] rcgen::Error),
    #[error("invalid TLS configuration")]
    Tls(#[from] rustls::Error),
    #[error("TLS configuration unusable for QUIC")]
    NoQuicSuite(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
}

/// The certificate does not match the fingerprint from the encrypted
/// session.
#[derive(Debug, Error)]
#[error(
    "the host's QUIC certificate {got} is not the one it announced ({want}) in the encrypted session"
)]
pub struct HostPinMismatch {
    pub want: Fingerprint,
    pub got: Fingerprint,
}

fn host_mismatch(want: Fingerprint, got: Fingerprint) -> Arc<dyn std::error::Error + Send + Sync> {
    Arc::new(HostPinMismatch { want, got })
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn transport() -> Arc<quinn::TransportConfig> {
    let mut t = quinn::TransportConfig::default();
    t.keep_alive_interval(Some(KEEP_ALIVE));
    t.initial_rtt(INITIAL_RTT);
    // The session uses one stream; the peer may open no more.
    t.max_concurrent_uni_streams(0u8.into());
    t.max_concurrent_bidi_streams(1u8.into());
    if let Ok(idle) = IDLE_TIMEOUT.try_into() {
        t.max_idle_timeout(Some(idle));
    }
    Arc::new(t)
}

/// The host's side: a server configuration with a fresh certificate, and
/// that certificate's fingerprint for the offer.
pub(crate) fn server_config() -> Result<(quinn::ServerConfig, Fingerprint), QuicError> {
    let key = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(vec![SERVER_NAME.to_owned()])?.self_signed(&key)?;
    let der = cert.der().clone();
    let fingerprint = Fingerprint::of(&der);
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![der], key)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls)?));
    config.transport_config(transport());
    Ok((config, fingerprint))
}

/// The viewer's side: trusts exactly the certificate `pin`.
pub(crate) fn client_config(pin: Fingerprint) -> Result<quinn::ClientConfig, QuicError> {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinVerifier::with_mismatch(
            Some(pin),
            host_mismatch,
        )))
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let mut config = quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls)?));
    config.transport_config(transport());
    Ok(config)
}

type Acked =
    Pin<Box<dyn Future<Output = Result<Option<quinn::VarInt>, quinn::StoppedError>> + Send + Sync>>;

/// One QUIC stream as a byte stream, holding its connection and endpoint:
/// the endpoint's socket lives as long as the path does.
pub struct QuicStream {
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    /// Set by the first `poll_shutdown`: the peer's acknowledgement of
    /// everything we wrote.
    acked: Option<Acked>,
    connection: quinn::Connection,
    endpoint: quinn::Endpoint,
}

impl std::fmt::Debug for QuicStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicStream")
            .field("peer", &self.connection.remote_address())
            .finish_non_exhaustive()
    }
}

impl QuicStream {
    pub(crate) fn new(
        (recv, send): (quinn::RecvStream, quinn::SendStream),
        connection: quinn::Connection,
        endpoint: quinn::Endpoint,
    ) -> QuicStream {
        QuicStream {
            send,
            recv,
            acked: None,
            connection,
            endpoint,
        }
    }
}

impl Drop for QuicStream {
    /// Dropping the last handle of a QUIC connection closes it at once and
    /// discards what is not yet delivered: keep it (and the endpoint) until
    /// the peer has acknowledged everything we wrote, within [`LINGER`].
    fn drop(&mut self) {
        let _ = self.send.finish();
        let acked = self.send.stopped();
        let endpoint = self.endpoint.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = tokio::time::timeout(LINGER, acked).await;
                drop(endpoint);
            });
        }
    }
}

impl AsyncRead for QuicStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.recv).poll_read(cx, buf)
    }
}

impl AsyncWrite for QuicStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        AsyncWrite::poll_write(Pin::new(&mut self.send), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.send).poll_flush(cx)
    }

    /// Finishes the stream and waits until the peer has acknowledged all of
    /// it: quinn's own shutdown returns at once, and a process that exits
    /// right after would take its last frames (the goodbye) with it.
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        let acked = this.acked.get_or_insert_with(|| {
            // Already finished (or reset) is fine: wait for what was sent.
            let _ = this.send.finish();
            Box::pin(this.send.stopped())
        });
        match acked.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(_)) => Poll::Ready(Ok(())),
            Poll::Ready(Err(e)) => Poll::Ready(Err(std::io::Error::other(e))),
        }
    }
}
