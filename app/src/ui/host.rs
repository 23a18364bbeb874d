//! The host's side: the session number to read out ("Get help"), the
//! consent dialog for every incoming helper, and the panel of who is
//! connected while sharing.
//!
//! [`HostScreen`] is plain state: the app feeds it the engine's
//! [`HostUpdate`]s and carries out the [`HostAction`]s the person chose, so
//! tests drive it with real update values and no engine.

use super::chat::{ChatLog, chat_ui};
use super::code_text;
use super::transfers::{TransferAction, Transfers, transfers_ui};
use crate::engine::{HostUpdate, LinkKind};
use eframe::egui;
use fernsicht_net::handshake::AuthCode;
use fernsicht_net::message::Permission;
use fernsicht_net::{ChannelId, SessionNumber};
use std::collections::VecDeque;

/// Where the host's session stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostStatus {
    /// Registering with the relay; no number yet.
    Connecting,
    /// The number is known; helpers can connect.
    Ready(SessionNumber),
    /// Sharing is over (stopped, or the relay is gone).
    Ended(String),
}

/// A helper asking to connect, waiting for the person's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRequest {
    pub viewer: ChannelId,
    pub name: String,
    pub code: AuthCode,
}

/// A connected helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewerRow {
    pub viewer: ChannelId,
    pub name: String,
    pub permission: Permission,
    pub link: LinkKind,
    /// Its link dropped; its place is kept while it comes back.
    pub reconnecting: bool,
}

/// What the person decided, for the app to pass to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostAction {
    /// `None`: deny.
    Decide(ChannelId, Option<Permission>),
    SetPermission(ChannelId, Permission),
    Remove(ChannelId),
    Chat(String),
    /// Stop sharing for everyone.
    Stop,
    /// Start a new session (after the last one ended, or with a new
    /// password); the number changes.
    Restart {
        password: Option<String>,
    },
    /// Pick files with the native dialog and send them to every helper.
    PickFilesToSend,
    /// Pick a file with the native dialog and park it at the relay.
    PickFileToPark,
    Transfer(TransferAction),
}

/// The host's state as the window shows it.
#[derive(Debug, Clone)]
pub struct HostScreen {
    pub status: HostStatus,
    /// Where the host is registered, in words ("relay.example.org:4663").
    pub relay_note: String,
    pub requests: VecDeque<ConsentRequest>,
    pub viewers: Vec<ViewerRow>,
    pub chat: ChatLog,
    pub transfers: Transfers,
    pub encoder: Option<String>,
    /// How the link to the relay runs (TLS on its port, or the WebSocket
    /// fallback, maybe through a proxy).
    pub link_path: Option<String>,
    /// Our link to the relay dropped and is being restored.
    pub reconnecting: bool,
    pub warnings: Vec<String>,
    /// Short notes about helpers that left or failed to connect, newest last.
    pub notes: Vec<String>,
    /// The password field's contents.
    pub password: String,
    /// The password the running session uses.
    pub password_in_use: Option<String>,
    actions: Vec<HostAction>,
}

/// How many notes to keep: the panel is small.
const MAX_NOTES: usize = 5;

impl HostScreen {
    pub fn new(relay_note: impl Into<String>, password: Option<String>) -> Self {
        HostScreen {
            status: HostStatus::Connecting,
            relay_note: relay_note.into(),
            requests: VecDeque::new(),
            viewers: Vec::new(),
            chat: ChatLog::default(),
            transfers: Transfers::default(),
            encoder: None,
            link_path: None,
            reconnecting: false,
            warnings: Vec::new(),
            notes: Vec::new(),
            password: password.clone().unwrap_or_default(),
            password_in_use: password,
            actions: Vec::new(),
        }
    }

    /// The session number, once the relay gave one.
    pub fn number(&self) -> Option<SessionNumber> {
        match self.status {
            HostStatus::Ready(n) => Some(n),
            _ => None,
        }
    }

    pub fn is_sharing(&self) -> bool {
        !self.viewers.is_empty()
    }

    fn name_of(&self, viewer: ChannelId) -> Option<&str> {
        self.viewers
            .iter()
            .map(|v| (v.viewer, v.name.as_str()))
            .chain(self.requests.iter().map(|r| (r.viewer, r.name.as_str())))
            .find(|(id, _)| *id == viewer)
            .map(|(_, n)| n)
    }

    fn note(&mut self, text: String) {
        self.notes.push(text);
        if self.notes.len() > MAX_NOTES {
            self.notes.remove(0);
        }
    }

    /// Takes in one update from the engine.
    pub fn apply(&mut self, update: HostUpdate) {
        match update {
            HostUpdate::SessionNumber(n) => self.status = HostStatus::Ready(n),
            HostUpdate::Request { viewer, name, code } => {
                self.requests.retain(|r| r.viewer != viewer);
                self.requests
                    .push_back(ConsentRequest { viewer, name, code });
            }
            HostUpdate::Connected {
                viewer,
                name,
                permission,
                link,
            } => {
                self.requests.retain(|r| r.viewer != viewer);
                let row = ViewerRow {
                    viewer,
                    name,
                    permission,
                    link,
                    reconnecting: false,
                };
                match self.viewers.iter_mut().find(|v| v.viewer == viewer) {
                    Some(v) => *v = row,
                    None => self.viewers.push(row),
                }
            }
            HostUpdate::PermissionChanged { viewer, permission } => {
                if let Some(v) = self.viewers.iter_mut().find(|v| v.viewer == viewer) {
                    v.permission = permission;
                }
            }
            HostUpdate::Left { viewer, reason } => {
                let name = self.name_of(viewer).unwrap_or("A helper").to_owned();
                self.requests.retain(|r| r.viewer != viewer);
                self.viewers.retain(|v| v.viewer != viewer);
                self.note(format!("{name} left: {reason}"));
            }
            HostUpdate::HandshakeFailed { viewer, error } => {
                self.requests.retain(|r| r.viewer != viewer);
                self.note(format!("A helper could not connect: {error}"));
            }
            HostUpdate::Chat { name, text, .. } => self.chat.received(name, text),
            HostUpdate::Encoder(e) => self.encoder = Some(e),
            HostUpdate::Path { viewer, link, .. } => {
                if let Some(v) = self.viewers.iter_mut().find(|v| v.viewer == viewer) {
                    v.link = link;
                }
            }
            HostUpdate::Direct(Err(e)) => tracing::warn!("no direct connections: {e}"),
            HostUpdate::Direct(Ok(_)) => {}
            HostUpdate::Reconnecting(away) => self.reconnecting = away,
            HostUpdate::ViewerReconnecting { viewer, away } => {
                if let Some(v) = self.viewers.iter_mut().find(|v| v.viewer == viewer) {
                    v.reconnecting = away;
                }
            }
            HostUpdate::Link(link) => self.link_path = Some(link.path.to_string()),
            HostUpdate::Warning(w) => {
                if !self.warnings.contains(&w) {
                    self.warnings.push(w);
                }
            }
            HostUpdate::Transfer(event) => self.transfers.apply(event),
            HostUpdate::Ended(reason) => {
                self.status = HostStatus::Ended(reason);
                self.requests.clear();
                self.viewers.clear();
            }
        }
    }

    /// The person's decisions since the last call, oldest first.
    pub fn take_actions(&mut self) -> Vec<HostAction> {
        let mut actions = std::mem::take(&mut self.actions);
        actions.extend(
            self.transfers
                .take_actions()
                .into_iter()
                .map(HostAction::Transfer),
        );
        actions
    }

    fn decide(&mut self, permission: Option<Permission>) {
        if let Some(request) = self.requests.pop_front() {
            self.actions
                .push(HostAction::Decide(request.viewer, permission));
        }
    }

    fn set_permission(&mut self, viewer: ChannelId, permission: Permission) {
        if let Some(v) = self.viewers.iter_mut().find(|v| v.viewer == viewer)
            && v.permission != permission
        {
            v.permission = permission;
            self.actions
                .push(HostAction::SetPermission(viewer, permission));
        }
    }

    fn remove(&mut self, viewer: ChannelId) {
        self.viewers.retain(|v| v.viewer != viewer);
        self.actions.push(HostAction::Remove(viewer));
    }

    /// Stops sharing for everyone: the same as the button.
    pub fn stop(&mut self) {
        self.viewers.clear();
        self.requests.clear();
        self.actions.push(HostAction::Stop);
    }

    fn status_text(&self) -> String {
        if self.reconnecting && matches!(self.status, HostStatus::Ready(_)) {
            return "Reconnecting to the relay… (the session stays open)".into();
        }
        match &self.status {
            HostStatus::Connecting => "Connecting to the relay…".into(),
            HostStatus::Ready(_) => match self.viewers.len() {
                0 if self.requests.is_empty() => "Waiting for a helper to connect".into(),
                0 => "A helper is asking to connect".into(),
                1 => "1 helper connected".into(),
                n => format!("{n} helpers connected"),
            },
            HostStatus::Ended(reason) => format!("Not sharing: {reason}"),
        }
    }
}

/// The large, colour used for the session number so it stands out; the
/// window test looks for it in a screenshot.
pub const NUMBER_COLOUR: egui::Color32 = egui::Color32::from_rgb(0x2f, 0x80, 0xed);

/// The "Get help" half: the number to read out, a copy button, the
/// password, and how the session stands. While helpers are connected it
/// also lists them ([`host_panel_ui`]).
pub fn get_help_ui(ui: &mut egui::Ui, host: &mut HostScreen) {
    ui.heading("Get help");
    ui.label("Read this number to the person helping you.");
    ui.add_space(8.0);

    ui.horizontal(|ui| {
        // Until there is a number, a grey placeholder: the number's colour
        // means "this is the number".
        let (text, colour) = match host.number() {
            Some(n) => (n.grouped(), NUMBER_COLOUR),
            None => ("– – –".into(), ui.visuals().weak_text_color()),
        };
        ui.label(egui::RichText::new(text).size(48.0).strong().color(colour));
        if let Some(n) = host.number()
            && ui
                .button("Copy")
                .on_hover_text("Copy the number to the clipboard")
                .clicked()
        {
            ui.ctx().copy_text(n.to_string());
        }
    });
    ui.label(host.status_text());
    if !host.relay_note.is_empty() {
        ui.weak(&host.relay_note);
    }
    if let Some(path) = &host.link_path {
        ui.weak(format!("Link to the relay: {path}"));
    }
    ui.add_space(8.0);

    ui.horizontal(|ui| {
        let l = ui.label("Password");
        ui.add(
            egui::TextEdit::singleline(&mut host.password)
                .password(true)
                .hint_text("optional")
                .desired_width(140.0),
        )
        .labelled_by(l.id);
        let wanted = Some(host.password.clone()).filter(|p| !p.is_empty());
        let ended = matches!(host.status, HostStatus::Ended(_));
        if (wanted != host.password_in_use || ended)
            && ui
                .add_enabled(!host.is_sharing(), egui::Button::new("New session"))
                .on_hover_text("Start a new session (with a new number) using this password")
                .on_disabled_hover_text("Stop sharing first")
                .clicked()
        {
            host.password_in_use = wanted.clone();
            host.status = HostStatus::Connecting;
            host.actions.push(HostAction::Restart { password: wanted });
        }
    });

    ui.weak(
        "Only people you allow can see your screen. Everything is end-to-end \
         encrypted: the relay in between cannot see or change it.",
    );
    for warning in &host.warnings {
        ui.colored_label(ui.visuals().warn_fg_color, warning);
    }
    for note in &host.notes {
        ui.weak(note);
    }
    if host.is_sharing() {
        ui.separator();
        host_panel_ui(ui, host);
    }
}

/// The panel of connected helpers: permission, link, remove; stop for all.
pub fn host_panel_ui(ui: &mut egui::Ui, host: &mut HostScreen) {
    ui.strong("Connected");
    let mut changes = Vec::new();
    egui::Grid::new("host_viewers")
        .num_columns(4)
        .spacing([12.0, 6.0])
        .show(ui, |ui| {
            for v in &host.viewers {
                ui.label(&v.name);
                ui.horizontal(|ui| {
                    for (p, text) in [
                        (Permission::ViewOnly, "View only"),
                        (Permission::Control, "Control"),
                    ] {
                        if ui.selectable_label(v.permission == p, text).clicked() {
                            changes.push((v.viewer, Some(p)));
                        }
                    }
                });
                if v.reconnecting {
                    ui.label("reconnecting…")
                        .on_hover_text("Their connection dropped; the session waits for it");
                } else {
                    ui.label(v.link.to_string()).on_hover_text(match v.link {
                        LinkKind::Direct => "Connected directly, not through the relay",
                        LinkKind::DirectQuic => {
                            "Connected directly through both routers (QUIC), not through the relay"
                        }
                        LinkKind::Relayed => "Through the relay (it cannot read anything)",
                    });
                }
                if ui
                    .button("Remove")
                    .on_hover_text(format!("Disconnect {}", v.name))
                    .clicked()
                {
                    changes.push((v.viewer, None));
                }
                ui.end_row();
            }
        });
    for (viewer, change) in changes {
        match change {
            Some(p) => host.set_permission(viewer, p),
            None => host.remove(viewer),
        }
    }
    ui.add_space(4.0);
    if let Some(encoder) = &host.encoder {
        ui.weak(format!("Encoder: {encoder}"));
    }
    if ui.button("Stop sharing").clicked() {
        host.stop();
    }
    ui.separator();
    ui.horizontal(|ui| {
        ui.strong("Files");
        if ui
            .button("Send files…")
            .on_hover_text("Send files to everyone connected")
            .clicked()
        {
            host.actions.push(HostAction::PickFilesToSend);
        }
        if ui
            .button("Park a file…")
            .on_hover_text(
                "Leave a file at the relay, end-to-end encrypted, for everyone who \
                 connects to this session, now or later",
            )
            .clicked()
        {
            host.actions.push(HostAction::PickFileToPark);
        }
    });
    transfers_ui(ui, &mut host.transfers);
    ui.separator();
    if let Some(text) = chat_ui(ui, &mut host.chat, 160.0) {
        host.actions.push(HostAction::Chat(text));
    }
}

/// The consent dialog for the first waiting helper, if any. Nothing is
/// shared with a helper until this is answered.
pub fn consent_ui(ctx: &egui::Context, host: &mut HostScreen) {
    let Some(request) = host.requests.front().cloned() else {
        return;
    };
    let waiting = host.requests.len() - 1;
    let mut decision = None;
    egui::Modal::new(egui::Id::unique(("consent", request.viewer.0))).show(ctx, |ui| {
        ui.set_max_width(420.0);
        ui.heading(format!("{} wants to connect", request.name));
        ui.add_space(6.0);
        ui.label("Compare this code with the one on the helper's screen:");
        ui.label(
            egui::RichText::new(code_text(request.code))
                .size(40.0)
                .strong()
                .monospace(),
        );
        ui.label(
            "If the codes differ, deny: someone may be listening in. \
             Nothing is shared until you allow it.",
        );
        if waiting > 0 {
            ui.weak(format!("{waiting} more waiting"));
        }
        ui.add_space(8.0);
        ui.horizontal(|ui| {
            if ui.button("Deny").clicked() {
                decision = Some(None);
            }
            if ui.button("Allow view only").clicked() {
                decision = Some(Some(Permission::ViewOnly));
            }
            if ui.button("Allow control").clicked() {
                decision = Some(Some(Permission::Control));
            }
        });
    });
    if let Some(d) = decision {
        host.decide(d);
    }
}
