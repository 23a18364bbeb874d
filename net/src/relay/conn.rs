//! One client connection: its first request decides whether it is a host
//! or a viewer; from then on its frames are routed by channel.

use super::hub::{AddViewerError, Peer, Session};
use super::outbox::{Overflow, spawn_writer};
use super::{Shared, Stats, hub_lock};
use crate::control::{ClientRequest, JoinRefusal, LeaveReason, RELAY_PROTOCOL, RelayEvent};
use crate::frame::{ChannelId, Frame, FrameType, Header};
use crate::number::SessionNumber;
use crate::transport::BoxStream;
use crate::transport::{FrameReader, TransportError};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::AsyncRead;
use tokio_util::sync::CancellationToken;

pub(super) async fn handle(shared: Arc<Shared>, stream: BoxStream, addr: SocketAddr) {
    let (read, write) = tokio::io::split(stream);
    let cancel = shared.shutdown.child_token();
    let (outbox, writer) = spawn_writer(
        write,
        shared.config.queue_limit,
        shared.config.write_timeout,
        cancel.clone(),
    );
    let me = Peer {
        outbox,
        cancel: cancel.clone(),
    };
    let mut reader = FrameReader::new(read);

    let first = tokio::time::timeout(shared.config.hello_timeout, reader.read_frame()).await;
    let request = match first {
        Ok(Ok(Some(frame))) => ClientRequest::from_frame(&frame).ok(),
        _ => None,
    };
    match request {
        Some(ClientRequest::Register { protocol }) if protocol == RELAY_PROTOCOL => {
            host(&shared, reader, me, addr).await;
        }
        Some(ClientRequest::Join { protocol, number }) if protocol == RELAY_PROTOCOL => {
            viewer(&shared, reader, me, addr, number).await;
        }
        Some(ClientRequest::Join { protocol, .. }) => {
            me.outbox.event(&RelayEvent::Refused {
                reason: JoinRefusal::ProtocolMismatch {
                    relay: RELAY_PROTOCOL,
                    client: protocol,
                },
            });
            me.cancel.cancel();
        }
        _ => {
            Stats::add(&shared.stats.protocol_errors, 1);
            me.close(LeaveReason::ProtocolViolation);
        }
    }
    cancel.cancel();
    let _ = writer.await;
}

/// What ended a connection's reading loop.
enum End {
    /// Closed by someone else (host removed a viewer, session ended,
    /// shutdown): nothing more to tell.
    Cancelled,
    /// The peer closed its side cleanly.
    Left,
    /// The peer said it ends the session (hosts only).
    SessionEnded,
    Violation,
    TimedOut,
    TooSlow,
}

/// Reads the next frame unless the connection is cancelled or idle too long.
async fn next_frame<R: AsyncRead + Unpin>(
    shared: &Shared,
    reader: &mut FrameReader<R>,
    cancel: &CancellationToken,
) -> Result<(Header, Vec<u8>), End> {
    tokio::select! {
        _ = cancel.cancelled() => Err(End::Cancelled),
        r = tokio::time::timeout(shared.config.idle_timeout, reader.read_raw()) => match r {
            Err(_) => Err(End::TimedOut),
            Ok(Ok(Some(frame))) => Ok(frame),
            Ok(Ok(None)) => Err(End::Left),
            Ok(Err(TransportError::Io(_))) => Err(End::Left),
            Ok(Err(TransportError::Frame(e))) => {
                tracing::debug!(error = %e, "invalid frame");
                Err(End::Violation)
            }
        }
    }
}

/// Answers a client's ping; anything else on the control channel of an
/// established connection is a protocol violation, except the host's own
/// requests, which `host` handles before calling this.
fn liveness(me: &Peer, request: &ClientRequest) -> Result<(), End> {
    match request {
        ClientRequest::Ping { id } => {
            me.outbox.event(&RelayEvent::Pong { id: *id });
            Ok(())
        }
        ClientRequest::Pong { .. } => Ok(()),
        _ => Err(End::Violation),
    }
}

async fn host<R: AsyncRead + Unpin>(
    shared: &Arc<Shared>,
    mut reader: FrameReader<R>,
    me: Peer,
    addr: SocketAddr,
) {
    let allocated = {
        let shared = shared.clone();
        tokio::task::spawn_blocking(move || {
            hub_lock(&shared.store).allocate(&mut rand::thread_rng())
        })
        .await
    };
    let number = match allocated {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot allocate a session number");
            me.close(LeaveReason::RelayShutdown);
            return;
        }
        Err(e) => {
            tracing::error!(error = %e, "number allocation task failed");
            me.close(LeaveReason::RelayShutdown);
            return;
        }
    };
    let session = Arc::new(Session::new(number, me.clone()));
    shared.hub.insert(session.clone());
    Stats::add(&shared.stats.sessions_total, 1);
    me.outbox.event(&RelayEvent::Registered { number });
    tracing::info!(%addr, session = %number, "host registered");

    let end = loop {
        let (header, raw) = match next_frame(shared, &mut reader, &me.cancel).await {
            Ok(f) => f,
            Err(end) => break end,
        };
        match header.frame_type {
            FrameType::Control => {
                let Some(request) = parse_control(header, raw) else {
                    break End::Violation;
                };
                match request {
                    ClientRequest::RemoveViewer { channel } => {
                        session.remove_viewer(channel, LeaveReason::Removed);
                    }
                    ClientRequest::EndSession => break End::SessionEnded,
                    other => {
                        if let Err(end) = liveness(&me, &other) {
                            break end;
                        }
                    }
                }
            }
            FrameType::Handshake | FrameType::Sealed => {
                if header.channel == ChannelId::CONTROL {
                    break End::Violation;
                }
                let len = raw.len() as u64;
                if session.to_viewer(header.channel.0, raw) {
                    Stats::add(&shared.stats.frames_forwarded, 1);
                    Stats::add(&shared.stats.bytes_forwarded, len);
                }
            }
        }
    };

    // The number stays burned: it was burned when it was handed out.
    shared.hub.remove(number);
    let (viewer_reason, host_reason) = match end {
        End::SessionEnded => (LeaveReason::SessionEnded, Some(LeaveReason::SessionEnded)),
        End::Violation => {
            Stats::add(&shared.stats.protocol_errors, 1);
            (LeaveReason::HostGone, Some(LeaveReason::ProtocolViolation))
        }
        End::TimedOut => (LeaveReason::HostGone, Some(LeaveReason::TimedOut)),
        End::TooSlow => (LeaveReason::HostGone, Some(LeaveReason::TooSlow)),
        End::Cancelled => (LeaveReason::RelayShutdown, None),
        End::Left => (LeaveReason::HostGone, None),
    };
    session.end(viewer_reason);
    if let Some(reason) = host_reason {
        me.close(reason);
    }
    tracing::info!(%addr, session = %number, "session ended");
}

async fn viewer<R: AsyncRead + Unpin>(
    shared: &Arc<Shared>,
    mut reader: FrameReader<R>,
    me: Peer,
    addr: SocketAddr,
    number: SessionNumber,
) {
    let now = shared.config.clock.now();
    if let Err(wait) = hub_lock(&shared.backoff).check(addr.ip(), now) {
        Stats::add(&shared.stats.backoff_hits, 1);
        Stats::add(&shared.stats.joins_refused, 1);
        me.outbox.event(&RelayEvent::Refused {
            reason: JoinRefusal::BackOff {
                retry_after_secs: wait.as_secs_f64().ceil() as u64,
            },
        });
        return;
    }
    let Some(session) = shared.hub.get(number) else {
        hub_lock(&shared.backoff).failure(addr.ip(), now);
        Stats::add(&shared.stats.joins_refused, 1);
        me.outbox.event(&RelayEvent::Refused {
            reason: JoinRefusal::NoSuchSession,
        });
        tracing::info!(%addr, "join to an unknown number refused");
        return;
    };
    hub_lock(&shared.backoff).success(addr.ip());
    let channel = match session.add_viewer(me.clone(), shared.config.max_viewers) {
        Ok(c) => c,
        Err(e) => {
            Stats::add(&shared.stats.joins_refused, 1);
            me.outbox.event(&RelayEvent::Refused {
                reason: match e {
                    AddViewerError::Full => JoinRefusal::SessionFull,
                    AddViewerError::Ended => JoinRefusal::NoSuchSession,
                },
            });
            return;
        }
    };
    Stats::add(&shared.stats.viewers_total, 1);
    me.outbox.event(&RelayEvent::Joined { channel });
    tracing::info!(%addr, session = %number, channel, "viewer joined");

    let end = loop {
        let (header, raw) = match next_frame(shared, &mut reader, &me.cancel).await {
            Ok(f) => f,
            Err(end) => break end,
        };
        match header.frame_type {
            FrameType::Control => {
                let Some(request) = parse_control(header, raw) else {
                    break End::Violation;
                };
                if let Err(end) = liveness(&me, &request) {
                    break end;
                }
            }
            FrameType::Handshake | FrameType::Sealed => {
                // A viewer may only speak on its own channel: it cannot
                // impersonate another viewer towards the host.
                if header.channel.0 != channel {
                    break End::Violation;
                }
                let len = raw.len() as u64;
                match session.host.outbox.push(raw) {
                    Ok(()) => {
                        Stats::add(&shared.stats.frames_forwarded, 1);
                        Stats::add(&shared.stats.bytes_forwarded, len);
                    }
                    Err(Overflow) => break End::TooSlow,
                }
            }
        }
    };
    let reason = match end {
        End::Cancelled => return, // removed or session ended: already told
        End::Left | End::SessionEnded => LeaveReason::Left,
        End::Violation => {
            Stats::add(&shared.stats.protocol_errors, 1);
            LeaveReason::ProtocolViolation
        }
        End::TimedOut => LeaveReason::TimedOut,
        End::TooSlow => {
            Stats::add(&shared.stats.dropped_slow, 1);
            LeaveReason::TooSlow
        }
    };
    session.remove_viewer(channel, reason);
    tracing::info!(%addr, session = %number, channel, %reason, "viewer left");
}

fn parse_control(header: Header, raw: Vec<u8>) -> Option<ClientRequest> {
    let frame = Frame {
        header,
        payload: raw[crate::frame::HEADER_LEN..].to_vec(),
    };
    ClientRequest::from_frame(&frame).ok()
}
