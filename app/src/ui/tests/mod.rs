//! The screens driven through egui_kittest: widgets found by their
//! accessible labels, clicked and typed into, with real update values (the
//! code comes from a real handshake) and no engine.
#![allow(clippy::unwrap_used)] // tests: a failed step is a failed test

use super::host::{HostAction, HostScreen, HostStatus, consent_ui, get_help_ui};
use super::start::{StartScreen, help_someone_ui};
use super::viewer::{ENCRYPTED_TEXT, ViewerAction, ViewerScreen, viewer_ui};
use super::{code_text, set_style};
use crate::engine::{HostUpdate, LinkKind, RemoteFrame, ViewerStats, ViewerUpdate};
use eframe::egui;
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use fernsicht_input::InputEvent;
use fernsicht_net::handshake::{
    AuthCode, HandshakeConfig, HostHandshake, ViewerHandshake, ViewerKey,
};
use fernsicht_net::message::{DisplayDesc, Permission};
use fernsicht_net::{ChannelId, SessionNumber};
use rand::rngs::OsRng;
use std::sync::OnceLock;

/// A code as the engine reports it: from a real handshake, stepped in
/// memory (AuthCode has no other constructor, on purpose).
fn real_code() -> AuthCode {
    static CODE: OnceLock<AuthCode> = OnceLock::new();
    *CODE.get_or_init(|| {
        let config = HandshakeConfig::default();
        let channel = ChannelId(1);
        let key = ViewerKey::generate(&mut OsRng).unwrap();
        let (host, hello) = HostHandshake::start(&config, channel, &mut OsRng);
        let viewer = ViewerHandshake::start(&config, "Helga", key, channel);
        let (viewer, viewer_hello) = viewer.receive(&hello, &mut OsRng).unwrap();
        let (host, key_transport) = host.receive(&viewer_hello, &mut OsRng).unwrap();
        let (viewer, [reveal, _finished]) = viewer.receive(&key_transport).unwrap();
        let host = host.receive(&reveal).unwrap();
        assert_eq!(host.code(), viewer.code());
        host.code()
    })
}

fn number(n: u64) -> SessionNumber {
    SessionNumber::new(n).unwrap()
}

/// Lets a test read a screen's actions through its harness.
trait TakeActions<A> {
    fn take_actions_for_test(&mut self) -> Vec<A>;
}

impl TakeActions<HostAction> for Harness<'_, HostScreen> {
    fn take_actions_for_test(&mut self) -> Vec<HostAction> {
        self.state_mut().take_actions()
    }
}

impl TakeActions<ViewerAction> for Harness<'_, ViewerScreen> {
    fn take_actions_for_test(&mut self) -> Vec<ViewerAction> {
        self.state_mut().take_actions()
    }
}

mod host;
mod settings;
mod start;
mod viewer;
