//! How the transfer service plugs into the host's and the viewer's
//! sessions: their handles are its [`Link`], and their events carry its
//! messages. The engines call [`TransferService::host_event`] or
//! [`TransferService::viewer_event`] with every session event and handle
//! what comes back as before.

use super::TransferMsg;
use super::service::TransferService;
use super::store::StoreRequest;
use super::workers::Link;
use crate::client::{HostEvent, HostHandle, ViewerEvent, ViewerHandle};
use crate::frame::ChannelId;
use crate::message::Message;

impl Link for HostHandle {
    fn send(&self, peer: ChannelId, message: Message) {
        self.send_to(peer, &message);
    }

    fn store(&self, request: StoreRequest) {
        HostHandle::store(self, request);
    }
}

impl Link for ViewerHandle {
    fn send(&self, _peer: ChannelId, message: Message) {
        ViewerHandle::send(self, message);
    }

    fn store(&self, request: StoreRequest) {
        ViewerHandle::store(self, request);
    }
}

impl TransferService {
    /// Takes the transfer parts of a host session event: transfer messages
    /// and file-store answers are consumed (`None`); viewers that arrive or
    /// leave are noted and their events returned like every other event.
    pub fn host_event(&self, event: HostEvent) -> Option<HostEvent> {
        match event {
            HostEvent::Message {
                message: Message::Transfer(TransferMsg::Parked(_)),
                ..
            } => {
                // Only a host parks files; from a viewer it would point
                // this host at its own store. Dropped.
                tracing::warn!("a viewer announced a parked file; ignored");
                None
            }
            HostEvent::Message {
                viewer,
                message: Message::Transfer(t),
            } => {
                self.on_message(viewer, t);
                None
            }
            HostEvent::Store(e) => {
                self.on_store_event(e);
                None
            }
            HostEvent::ViewerConnected { viewer, .. } => {
                self.peer_allowed(viewer);
                Some(event)
            }
            HostEvent::ViewerLeft { viewer, .. } => {
                self.peer_gone(viewer);
                Some(event)
            }
            HostEvent::ViewerReconnecting { viewer } => {
                self.peer_away(viewer);
                Some(event)
            }
            HostEvent::ViewerResumed { viewer } => {
                self.peer_back(viewer);
                Some(event)
            }
            other => Some(other),
        }
    }

    /// Takes the transfer parts of a viewer session event; `host` names the
    /// host in the service's events (the viewer's own channel does).
    pub fn viewer_event(&self, host: ChannelId, event: ViewerEvent) -> Option<ViewerEvent> {
        match event {
            ViewerEvent::Message(Message::Transfer(t)) => {
                self.on_message(host, t);
                None
            }
            ViewerEvent::Store(e) => {
                self.on_store_event(e);
                None
            }
            ViewerEvent::Ended(_) => {
                self.peer_gone(host);
                Some(event)
            }
            ViewerEvent::Reconnecting => {
                self.peer_away(host);
                Some(event)
            }
            ViewerEvent::Resumed => {
                self.peer_back(host);
                Some(event)
            }
            other => Some(other),
        }
    }
}
