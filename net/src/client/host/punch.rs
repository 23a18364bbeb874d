//! The host's side of hole punching: a QUIC endpoint per allowed viewer,
//! prepared off the session loop, offered inside the session, and pointed
//! at the viewer's candidates when its answer comes. A proven connection
//! arrives with the direct TCP ones (see [`Host::on_direct`]).

use super::*;
use crate::punch::{HostPunch, PunchAnswer, PunchError, PunchOffer};

/// A viewer's endpoint, ready to offer (or why there is none).
pub(super) type PunchReady = (ChannelId, Result<(HostPunch, PunchOffer), PunchError>);

impl Host {
    /// A viewer was allowed: bind and probe for it in the background, so
    /// the relayed session starts at once.
    pub(super) fn prepare_punch(&self, ch: ChannelId) {
        if !self.punch {
            return;
        }
        let relay = self.relay.clone();
        let registry = self.registry.clone();
        let accepted = self.accepted_tx.clone();
        let ready = self.punch_tx.clone();
        tokio::spawn(async move {
            let r = HostPunch::start(&relay, registry, accepted).await;
            let _ = ready.send((ch, r));
        });
    }

    /// The endpoint is ready: offer it to the viewer, unless it is gone or
    /// already talks to us directly.
    pub(super) async fn on_punch_ready(&mut self, ready: PunchReady) -> Result<Flow, ClientError> {
        let (ch, prepared) = ready;
        let (punch, offer) = match prepared {
            Ok(p) => p,
            Err(e) => {
                tracing::info!("no QUIC path offered: {}", crate::error_chain(&e));
                return Ok(Flow::Continue);
            }
        };
        let Some(Slot::Active(link, _)) = self.viewers.get_mut(&ch) else {
            return Ok(Flow::Continue);
        };
        if link.direct.is_some() {
            return Ok(Flow::Continue);
        }
        let f = seal_or_err(link, &Message::PunchOffer(offer))?;
        send_or_fail(&self.writer, link, f).await?;
        self.punches.insert(ch, punch);
        Ok(Flow::Continue)
    }

    /// The viewer's candidates: punch towards them.
    pub(super) fn on_punch_answer(&mut self, ch: ChannelId, answer: &PunchAnswer) {
        if let Some(punch) = self.punches.get_mut(&ch) {
            punch.punch(answer);
        }
    }
}
