//! One client connection: its first request decides whether it is a host
//! or a viewer; from then on its frames are routed by channel.

use super::hub::{AddViewerError, Peer, ResumeToken, Session};
use super::outbox::{Overflow, spawn_writer};
use super::records::Role;
use super::{Shared, Stats, family};
use crate::control::{ClientRequest, JoinRefusal, LeaveReason, RELAY_PROTOCOL, RelayEvent};
use crate::frame::{ChannelId, Frame, FrameType, Header};
use crate::number::SessionNumber;
use crate::transport::BoxStream;
use crate::transport::{FrameReader, TransportError};
use rand::RngCore;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::AsyncRead;
use tokio_util::sync::CancellationToken;

pub(super) async fn handle(shared: Arc<Shared>, stream: BoxStream, addr: SocketAddr) {
    let (read, write) = tokio::io::split(stream);
    let cancel = shared.links.child_token();
    let (outbox, writer) = spawn_writer(
        write,
        shared.config.queue_limit,
        shared.config.write_timeout,
        cancel.clone(),
    );
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    let me = Peer {
        outbox,
        cancel: cancel.clone(),
        id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
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
        Some(ClientRequest::Resume {
            protocol,
            number,
            channel,
            token,
        }) if protocol == RELAY_PROTOCOL => {
            resume(&shared, reader, me, addr, number, channel, token).await;
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
            // A connection that ends mid-frame dropped (a proxy died, a
            // network went away): it may come back.
            Ok(Err(TransportError::Frame(crate::frame::FrameError::Truncated { .. }))) => {
                Err(End::Left)
            }
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
    reader: FrameReader<R>,
    me: Peer,
    addr: SocketAddr,
) {
    let number = match family::allocate(shared).await {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "cannot allocate a session number");
            me.close(LeaveReason::RelayShutdown);
            return;
        }
    };
    let token = fresh_token();
    let session = Arc::new(Session::new(number, me.clone(), &token));
    shared.hub.insert(session.clone());
    family::hosted(shared, number, &token).await;
    Stats::add(&shared.stats.sessions_total, 1);
    me.outbox.event(&RelayEvent::Registered { number });
    me.outbox.event(&RelayEvent::ResumeToken { token });
    tracing::info!(session = %number, "host registered");
    serve_host(shared, session, reader, me, addr).await;
}

fn fresh_token() -> ResumeToken {
    let mut token = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut token);
    token
}

/// A connection still in its place that was cancelled, while the relay is
/// not shutting down, was cancelled by its own writer: a write failed or
/// stalled, so the connection dropped like any other.
fn write_failure_is_a_drop(shared: &Shared, end: End) -> End {
    match end {
        End::Cancelled if !shared.shutdown.is_cancelled() => End::Left,
        other => other,
    }
}

/// A dropped connection (not a goodbye, not a violation) may come back.
fn may_resume(shared: &Shared, end: &End) -> bool {
    matches!(end, End::Left | End::TimedOut) && !shared.config.resume_grace.is_zero()
}

/// Forwards a host's frames until its connection ends; then ends the
/// session, or keeps it for the host's return if the connection dropped.
async fn serve_host<R: AsyncRead + Unpin>(
    shared: &Arc<Shared>,
    session: Arc<Session>,
    mut reader: FrameReader<R>,
    me: Peer,
    addr: SocketAddr,
) {
    let number = session.number;
    let _visit = shared.records.visit(addr.ip(), number, Role::Host);
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
                    ClientRequest::Store(request) => {
                        let event = store(shared, number, request, true).await;
                        me.outbox.event(&RelayEvent::Store(event));
                    }
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

    if !session.is_host(me.id) {
        // A resumed connection took over; this one is history.
        return;
    }
    if shared.shutdown.is_cancelled() {
        // The relay stops: it ends or hands over every session itself
        // (`Relay::run`), and must not forget one it hands over.
        return;
    }
    let end = write_failure_is_a_drop(shared, end);
    if may_resume(shared, &end)
        && let Some(generation) = session.host_away(me.id)
    {
        tracing::info!(session = %number, "host connection dropped; keeping its place");
        end_if_host_stays_away(shared, &session, generation);
        return;
    }
    // The number stays burned: it was burned when it was handed out.
    shared.hub.remove(number);
    {
        let shared = shared.clone();
        let _ = tokio::task::spawn_blocking(move || shared.files.end_session(number)).await;
    }
    family::forget_session(shared, number).await;
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
    tracing::info!(session = %number, "session ended");
}

async fn viewer<R: AsyncRead + Unpin>(
    shared: &Arc<Shared>,
    reader: FrameReader<R>,
    me: Peer,
    addr: SocketAddr,
    number: SessionNumber,
) {
    if let Some(wait) = family::must_wait(shared, addr.ip()).await {
        Stats::add(&shared.stats.joins_refused, 1);
        me.outbox.event(&back_off(wait));
        return;
    }
    let Some(session) = shared.hub.get(number) else {
        match family::locate(shared, number).await {
            family::Lookup::Redirect(to) => {
                tracing::info!(session = %number, "viewer sent to the relay that holds the session");
                me.outbox.event(&to);
                return;
            }
            family::Lookup::Stranded => {}
            family::Lookup::Unknown => family::failed(shared, addr.ip()).await,
        }
        Stats::add(&shared.stats.joins_refused, 1);
        me.outbox.event(&RelayEvent::Refused {
            reason: JoinRefusal::NoSuchSession,
        });
        tracing::info!("join to an unknown number refused");
        return;
    };
    family::succeeded(shared, addr.ip()).await;
    let token = fresh_token();
    let channel = match session.add_viewer(me.clone(), &token, shared.config.max_viewers) {
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
    // Told before anything else can reach the viewer: the host may answer
    // the join at once.
    me.outbox.event(&RelayEvent::Joined { channel });
    me.outbox.event(&RelayEvent::ResumeToken { token });
    family::joined(shared, &session, channel, &token).await;
    tracing::info!(session = %number, channel, "viewer joined");
    serve_viewer(shared, session, channel, reader, me, addr).await;
}

/// Forwards a viewer's frames until its connection ends.
async fn serve_viewer<R: AsyncRead + Unpin>(
    shared: &Arc<Shared>,
    session: Arc<Session>,
    channel: u16,
    mut reader: FrameReader<R>,
    me: Peer,
    addr: SocketAddr,
) {
    let number = session.number;
    let _visit = shared.records.visit(addr.ip(), number, Role::Viewer);
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
                if let ClientRequest::Store(request) = request {
                    let event = store(shared, number, request, false).await;
                    if me.outbox.data_event(&RelayEvent::Store(event)).is_err() {
                        break End::TooSlow;
                    }
                    continue;
                }
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
                match session.to_host(raw) {
                    Ok(true) => {
                        Stats::add(&shared.stats.frames_forwarded, 1);
                        Stats::add(&shared.stats.bytes_forwarded, len);
                    }
                    Ok(false) => {}
                    Err(Overflow) => break End::TooSlow,
                }
            }
        }
    };
    if !session.is_viewer(channel, me.id) {
        // Removed, or a resumed connection took over: nothing to tell.
        if !session.has_viewer(channel) {
            family::forget_viewer(shared, number, channel).await;
        }
        return;
    }
    let end = write_failure_is_a_drop(shared, end);
    if may_resume(shared, &end)
        && let Some(generation) = session.viewer_away(channel, me.id)
    {
        tracing::info!(session = %number, channel, "viewer connection dropped; keeping its place");
        let reason = if matches!(end, End::TimedOut) {
            LeaveReason::TimedOut
        } else {
            LeaveReason::Left
        };
        family::remove_if_viewer_stays_away(shared, &session, channel, generation, reason);
        return;
    }
    let reason = match end {
        End::Cancelled => return, // relay shutting down: the session goes too
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
    family::forget_viewer(shared, number, channel).await;
    tracing::info!(session = %number, channel, %reason, "viewer left");
}

/// Hands a file-store request to the store off the async threads (it reads
/// and writes files). Requests of one connection run one after another.
async fn store(
    shared: &Arc<Shared>,
    number: SessionNumber,
    request: crate::transfer::store::StoreRequest,
    from_host: bool,
) -> crate::transfer::store::StoreEvent {
    let shared = shared.clone();
    let file = match &request {
        crate::transfer::store::StoreRequest::Open { file, .. }
        | crate::transfer::store::StoreRequest::Put { file, .. }
        | crate::transfer::store::StoreRequest::Commit { file }
        | crate::transfer::store::StoreRequest::Delete { file }
        | crate::transfer::store::StoreRequest::Get { file, .. } => *file,
    };
    tokio::task::spawn_blocking(move || {
        if from_host {
            shared.files.host(number, request)
        } else {
            shared.files.viewer(number, request)
        }
    })
    .await
    .unwrap_or(crate::transfer::store::StoreEvent::Refused {
        file,
        reason: crate::transfer::store::StoreRefusal::Failed,
    })
}

/// A host or viewer back after a dropped connection.
async fn resume<R: AsyncRead + Unpin>(
    shared: &Arc<Shared>,
    reader: FrameReader<R>,
    me: Peer,
    addr: SocketAddr,
    number: SessionNumber,
    channel: u16,
    token: ResumeToken,
) {
    if let Some(wait) = family::must_wait(shared, addr.ip()).await {
        me.outbox.event(&back_off(wait));
        return;
    }
    let session = match shared.hub.get(number) {
        Some(session) => session,
        None => match family::adopt(shared, number, channel, &token).await {
            family::Adopt::Here(session) => session,
            family::Adopt::Redirect(to) => {
                tracing::info!(session = %number, channel, "resume sent to the relay that holds the session");
                me.outbox.event(&to);
                return;
            }
            family::Adopt::Refused => {
                refuse_resume(shared, &me, addr).await;
                return;
            }
        },
    };
    let resumed = if channel == 0 {
        session.resume_host(me.clone(), &token)
    } else {
        session.resume_viewer(channel, me.clone(), &token)
    };
    if !resumed {
        refuse_resume(shared, &me, addr).await;
        return;
    }
    family::succeeded(shared, addr.ip()).await;
    me.outbox.event(&RelayEvent::Resumed);
    tracing::info!(session = %number, channel, "resumed");
    if channel == 0 {
        serve_host(shared, session, reader, me, addr).await;
    } else {
        serve_viewer(shared, session, channel, reader, me, addr).await;
    }
}

/// Wrong token, or the place is gone: as good as a wrong number.
async fn refuse_resume(shared: &Shared, me: &Peer, addr: SocketAddr) {
    family::failed(shared, addr.ip()).await;
    me.outbox.event(&RelayEvent::Refused {
        reason: JoinRefusal::NoSuchSession,
    });
    tracing::info!("resume refused");
}

fn back_off(wait: std::time::Duration) -> RelayEvent {
    RelayEvent::Refused {
        reason: JoinRefusal::BackOff {
            retry_after_secs: wait.as_secs_f64().ceil() as u64,
        },
    }
}

/// Ends the session unless its host is back within the grace period after
/// its absence `generation` began.
pub(super) fn end_if_host_stays_away(
    shared: &Arc<Shared>,
    session: &Arc<Session>,
    generation: u64,
) {
    let (shared, session) = (shared.clone(), session.clone());
    tokio::spawn(async move {
        tokio::time::sleep(shared.config.resume_grace).await;
        if !session.host_still_away(generation) {
            return;
        }
        if shared
            .hub
            .get(session.number)
            .is_some_and(|s| Arc::ptr_eq(&s, &session))
        {
            shared.hub.remove(session.number);
        }
        session.end(LeaveReason::HostGone);
        let number = session.number;
        {
            let shared = shared.clone();
            let _ = tokio::task::spawn_blocking(move || shared.files.end_session(number)).await;
        }
        family::forget_session(&shared, number).await;
        tracing::info!(session = %number, "host did not come back: session ended");
    });
}

fn parse_control(header: Header, raw: Vec<u8>) -> Option<ClientRequest> {
    let frame = Frame {
        header,
        payload: raw[crate::frame::HEADER_LEN..].to_vec(),
    };
    ClientRequest::from_frame(&frame).ok()
}
