//! The relay's Prometheus endpoint: counts of sessions, viewers, bytes and
//! refusals, read from [`Stats`](super::Stats) at each scrape. Nothing in it
//! names a session, a person or an address.
//!
//! The endpoint is a few lines of HTTP/1.1 over tokio rather than a web
//! framework: it answers one `GET /metrics` per connection and nothing
//! else, and a framework would add more to the build than the relay has.

use super::Shared;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Longest request head the endpoint reads.
const MAX_REQUEST: usize = 8 * 1024;
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Reads the relay's counters at scrape time. Holds the relay weakly: the
/// endpoint must not keep a shut-down relay alive.
struct RelayCollector(Weak<Shared>);

impl std::fmt::Debug for RelayCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RelayCollector")
    }
}

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: i64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for RelayCollector {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(shared) = self.0.upgrade() else {
            return Ok(());
        };
        let s = &shared.stats;
        let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let live = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        gauge(
            &mut e,
            "fernsicht_relay_sessions",
            "Sessions open now",
            live(shared.hub.len()),
        )?;
        gauge(
            &mut e,
            "fernsicht_relay_viewers",
            "Viewers connected now",
            live(shared.hub.viewers()),
        )?;
        gauge(
            &mut e,
            "fernsicht_relay_stored_bytes",
            "Bytes parked (encrypted) in the file store",
            i64::try_from(shared.files.used()).unwrap_or(i64::MAX),
        )?;
        counter(
            &mut e,
            "fernsicht_relay_sessions_opened",
            "Sessions registered",
            load(&s.sessions_total),
        )?;
        counter(
            &mut e,
            "fernsicht_relay_viewers_joined",
            "Viewers that joined a session",
            load(&s.viewers_total),
        )?;
        counter(
            &mut e,
            "fernsicht_relay_frames_forwarded",
            "Frames forwarded",
            load(&s.frames_forwarded),
        )?;
        counter(
            &mut e,
            "fernsicht_relay_bytes_forwarded",
            "Bytes of frames forwarded",
            load(&s.bytes_forwarded),
        )?;
        counter(
            &mut e,
            "fernsicht_relay_joins_refused",
            "Joins refused (wrong number, full, back-off)",
            load(&s.joins_refused),
        )?;
        counter(
            &mut e,
            "fernsicht_relay_backoff_hits",
            "Joins refused because the address must wait",
            load(&s.backoff_hits),
        )?;
        counter(
            &mut e,
            "fernsicht_relay_dropped_slow",
            "Connections dropped for not keeping up",
            load(&s.dropped_slow),
        )?;
        counter(
            &mut e,
            "fernsicht_relay_redirects",
            "Joins and resumes sent on to the relay of the family that holds the session",
            load(&s.redirects),
        )?;
        counter(
            &mut e,
            "fernsicht_relay_sessions_taken_over",
            "Sessions taken over from a relay of the family that died",
            load(&s.taken_over),
        )?;
        counter(
            &mut e,
            "fernsicht_relay_protocol_errors",
            "Connections closed for a protocol violation",
            load(&s.protocol_errors),
        )?;
        Ok(())
    }
}

/// The registry the endpoint encodes.
pub(super) fn registry(shared: &Arc<Shared>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(RelayCollector(Arc::downgrade(shared))));
    registry
}

/// Answers scrapes until the task is aborted.
pub(super) async fn serve(listener: TcpListener, registry: Arc<Registry>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let registry = registry.clone();
                tokio::spawn(async move {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(10), answer(stream, &registry))
                            .await;
                });
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn answer(mut stream: TcpStream, registry: &Registry) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let path = loop {
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                break (request.method == Some("GET"))
                    .then(|| request.path.unwrap_or("").to_owned());
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST => continue,
            _ => break None,
        }
    };
    let (status, content_type, body) = match path.as_deref() {
        Some("/metrics") => {
            let mut body = String::new();
            match prometheus_client::encoding::text::encode(&mut body, registry) {
                Ok(()) => ("200 OK", CONTENT_TYPE, body),
                Err(_) => (
                    "500 Internal Server Error",
                    "text/plain",
                    "encoding failed\n".into(),
                ),
            }
        }
        Some(_) => (
            "404 Not Found",
            "text/plain",
            "only /metrics is here\n".into(),
        ),
        None => ("400 Bad Request", "text/plain", "bad request\n".into()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
