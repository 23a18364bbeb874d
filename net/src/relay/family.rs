//! What a connection handler asks of the relay's family: numbers, where a
//! session lives, back-off, taking over sessions. Without `--redis` each
//! answer comes from this relay alone.
//!
//! A Redis that does not answer never stops a session already here: the
//! relay then serves what it holds itself and logs the failure. Only new
//! numbers need Redis, since a number burned only locally could be handed
//! out again by a sibling.

use super::cluster::{Adoption, Owner};
use super::hub::{ResumeToken, Session, token_hash};
use super::{Shared, Stats, hub_lock};
use crate::control::{LeaveReason, RelayEvent};
use crate::number::SessionNumber;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

fn warn(what: &str, e: &super::cluster::ClusterError) {
    tracing::warn!(error = %crate::error_chain(e), "shared store (Redis): {what}");
}

/// A fresh, burned session number.
pub(super) async fn allocate(shared: &Arc<Shared>) -> Result<SessionNumber, String> {
    if let Some(cluster) = &shared.cluster {
        return cluster.allocate().await.map_err(|e| crate::error_chain(&e));
    }
    let shared = shared.clone();
    match tokio::task::spawn_blocking(move || {
        hub_lock(&shared.store).allocate(&mut rand::thread_rng())
    })
    .await
    {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => Err(crate::error_chain(&e)),
        Err(e) => Err(e.to_string()),
    }
}

/// A host registered here.
pub(super) async fn hosted(shared: &Shared, number: SessionNumber, token: &ResumeToken) {
    if let Some(cluster) = &shared.cluster
        && let Err(e) = cluster.hosted(number, &token_hash(token)).await
    {
        warn("cannot record a new session", &e);
    }
}

/// A viewer joined `session` here on `channel`.
pub(super) async fn joined(shared: &Shared, session: &Session, channel: u16, token: &ResumeToken) {
    if let Some(cluster) = &shared.cluster
        && let Err(e) = cluster
            .joined(
                session.number,
                channel,
                &token_hash(token),
                session.next_channel(),
            )
            .await
    {
        warn("cannot record a viewer", &e);
    }
}

/// The viewer on `channel` left for good: its token must not take its
/// place back at another relay either.
pub(super) async fn forget_viewer(shared: &Shared, number: SessionNumber, channel: u16) {
    if let Some(cluster) = &shared.cluster
        && let Err(e) = cluster.left(number, channel).await
    {
        warn("cannot forget a viewer", &e);
    }
}

/// The session ended here.
pub(crate) async fn forget_session(shared: &Shared, number: SessionNumber) {
    if let Some(cluster) = &shared.cluster
        && let Err(e) = cluster.ended(number).await
    {
        warn("cannot forget a session", &e);
    }
}

/// How long `ip` must wait before it may try a number, if it must: this
/// relay's own count, and the family's.
pub(super) async fn must_wait(shared: &Shared, ip: IpAddr) -> Option<Duration> {
    let now = shared.config.clock.now();
    let local = hub_lock(&shared.backoff).check(ip, now).err();
    let shared_wait = match &shared.cluster {
        Some(cluster) => match cluster.check(ip).await {
            Ok(r) => r.err(),
            Err(e) => {
                warn("cannot check the back-off", &e);
                None
            }
        },
        None => None,
    };
    let wait = local.max(shared_wait)?;
    Stats::add(&shared.stats.backoff_hits, 1);
    Some(wait)
}

/// `ip` asked for a number (or a place) no relay holds.
pub(super) async fn failed(shared: &Shared, ip: IpAddr) {
    let now = shared.config.clock.now();
    hub_lock(&shared.backoff).failure(ip, now);
    if let Some(cluster) = &shared.cluster
        && let Err(e) = cluster.failure(ip).await
    {
        warn("cannot count a wrong number", &e);
    }
}

/// `ip` reached a session: it starts afresh.
pub(super) async fn succeeded(shared: &Shared, ip: IpAddr) {
    hub_lock(&shared.backoff).success(ip);
    if let Some(cluster) = &shared.cluster
        && let Err(e) = cluster.success(ip).await
    {
        warn("cannot reset the back-off", &e);
    }
}

fn redirect(shared: &Shared, relay: String, fingerprint: crate::tls::Fingerprint) -> RelayEvent {
    Stats::add(&shared.stats.redirects, 1);
    RelayEvent::Redirect {
        relay,
        fingerprint: fingerprint.0,
    }
}

/// Where a number this relay does not hold is.
pub(super) enum Lookup {
    /// A live sibling holds it: tell the client this.
    Redirect(RelayEvent),
    /// A real session, whose relay is gone: not here, but not a guess.
    Stranded,
    /// No relay of the family knows it.
    Unknown,
}

pub(super) async fn locate(shared: &Shared, number: SessionNumber) -> Lookup {
    let Some(cluster) = &shared.cluster else {
        return Lookup::Unknown;
    };
    match cluster.locate(number).await {
        Ok(Some(Owner::Elsewhere { relay, fingerprint })) => {
            Lookup::Redirect(redirect(shared, relay, fingerprint))
        }
        Ok(Some(Owner::Here | Owner::Gone)) => Lookup::Stranded,
        Ok(None) => Lookup::Unknown,
        Err(e) => {
            // Counted as a wrong number: an outage must not lift the
            // back-off (this relay's own count still works).
            warn("cannot look a session up", &e);
            Lookup::Unknown
        }
    }
}

/// The answer to a resume for a session this relay does not hold.
pub(super) enum Adopt {
    /// Taken over from a relay that is gone (or from this relay before a
    /// restart): the session is in the hub now, every place empty.
    Here(Arc<Session>),
    Redirect(RelayEvent),
    Refused,
}

/// Takes session `number` over for the participant on `channel` holding
/// `token`, if the family says it may.
pub(super) async fn adopt(
    shared: &Arc<Shared>,
    number: SessionNumber,
    channel: u16,
    token: &ResumeToken,
) -> Adopt {
    let Some(cluster) = &shared.cluster else {
        return Adopt::Refused;
    };
    let places = match cluster.adopt(number, channel, &token_hash(token)).await {
        Ok(Adoption::Adopted(places)) => places,
        Ok(Adoption::Elsewhere { relay, fingerprint }) => {
            return Adopt::Redirect(redirect(shared, relay, fingerprint));
        }
        Ok(Adoption::Refused) => return Adopt::Refused,
        Err(e) => {
            warn("cannot take a session over", &e);
            return Adopt::Refused;
        }
    };
    let (session, fresh) = shared
        .hub
        .insert_if_absent(number, || Session::adopted(number, &places));
    if fresh {
        Stats::add(&shared.stats.taken_over, 1);
        tracing::info!(session = %number, "took the session over from a relay that is gone");
        // Every place is empty (generation 1) until its participant is
        // back; one that is not back within the grace period is gone.
        super::conn::end_if_host_stays_away(shared, &session, 1);
        for channel in session.channels() {
            remove_if_viewer_stays_away(shared, &session, channel, 1, LeaveReason::Left);
        }
    }
    Adopt::Here(session)
}

/// Removes the viewer on `channel` unless it is back within the grace
/// period after its absence `generation` began.
pub(super) fn remove_if_viewer_stays_away(
    shared: &Arc<Shared>,
    session: &Arc<Session>,
    channel: u16,
    generation: u64,
    reason: LeaveReason,
) {
    let (shared, session) = (shared.clone(), session.clone());
    tokio::spawn(async move {
        tokio::time::sleep(shared.config.resume_grace).await;
        if session.viewer_still_away(channel, generation) {
            session.remove_viewer(channel, reason);
            forget_viewer(&shared, session.number, channel).await;
        }
    });
}
