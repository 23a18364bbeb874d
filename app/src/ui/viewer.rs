//! The helper's window: the remote screen, keyboard and mouse forwarded to
//! it, a status bar that always says how the link runs and that it is end-to-end
//! encrypted, a display picker and the chat.
//!
//! [`ViewerScreen`] is plain state fed with the engine's [`ViewerUpdate`]s,
//! decoded pictures and statistics; what the helper does comes back as
//! [`ViewerAction`]s for the app to hand to the engine.

use super::chat::{ChatLog, chat_ui};
use super::code_text;
use crate::engine::{RemoteFrame, ViewerStats, ViewerUpdate};
use eframe::egui;
use fernsicht_input::{DisplayId, EguiMapper, InputEvent, PictureGeometry};
use fernsicht_net::SessionNumber;
use fernsicht_net::handshake::AuthCode;
use fernsicht_net::message::{DisplayDesc, Permission};

/// The words the status bar uses for the session's encryption.
pub const ENCRYPTED_TEXT: &str = "end-to-end encrypted (AES-256-GCM)";

/// Where the session stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewerPhase {
    /// Reaching the relay and the host, running the handshake.
    Connecting,
    /// Keys confirmed; the host has not answered yet.
    WaitingForConsent,
    Allowed(Permission),
    Ended(String),
}

/// How the picture is sized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zoom {
    /// The whole remote screen fits the window.
    Fit,
    /// One host pixel per screen pixel, scrolling.
    Actual,
}

/// What the helper did, for the app to pass to the engine.
#[derive(Debug, Clone, PartialEq)]
pub enum ViewerAction {
    Input(Vec<InputEvent>),
    Chat(String),
    SelectDisplay(u16),
    Leave,
    /// Close the ended session's window and go back to the start screen.
    Close,
}

/// The decoded remote screen on the GPU.
struct Picture {
    texture: egui::TextureHandle,
    display: u16,
    size: [usize; 2],
}

/// The viewer's state as the window shows it.
pub struct ViewerScreen {
    pub number: SessionNumber,
    pub relay_note: String,
    pub phase: ViewerPhase,
    pub code: Option<AuthCode>,
    /// Keys confirmed: everything from here on is end-to-end encrypted.
    pub encrypted: bool,
    pub displays: Vec<DisplayDesc>,
    /// The display the host shares.
    pub shared: u16,
    pub encoder: Option<String>,
    /// How the link to the relay runs (TLS, or the WebSocket fallback).
    pub link_path: Option<String>,
    /// The engine's latest figures; the app refreshes them every frame.
    pub stats: Option<ViewerStats>,
    pub chat: ChatLog,
    pub show_chat: bool,
    pub zoom: Zoom,
    /// The helper's switch for sending keyboard and mouse.
    pub forward_input: bool,
    picture: Option<Picture>,
    /// Where the picture was last drawn (points).
    picture_rect: Option<egui::Rect>,
    mapper: EguiMapper,
    /// Whether the mapper may hold keys or buttons on the host.
    forwarding: bool,
    /// Whether the picture had the keyboard last frame.
    picture_focused: bool,
    actions: Vec<ViewerAction>,
}

impl ViewerScreen {
    pub fn new(number: SessionNumber, relay_note: impl Into<String>) -> Self {
        ViewerScreen {
            number,
            relay_note: relay_note.into(),
            phase: ViewerPhase::Connecting,
            code: None,
            encrypted: false,
            displays: Vec::new(),
            shared: 0,
            encoder: None,
            link_path: None,
            stats: None,
            chat: ChatLog::default(),
            show_chat: false,
            zoom: Zoom::Fit,
            forward_input: true,
            picture: None,
            picture_rect: None,
            mapper: EguiMapper::new(),
            forwarding: false,
            picture_focused: false,
            actions: Vec::new(),
        }
    }

    /// Takes in one update from the engine.
    pub fn apply(&mut self, update: ViewerUpdate) {
        match update {
            ViewerUpdate::Code(code) => self.code = Some(code),
            ViewerUpdate::Connected => {
                self.encrypted = true;
                if self.phase == ViewerPhase::Connecting {
                    self.phase = ViewerPhase::WaitingForConsent;
                }
            }
            ViewerUpdate::Allowed(p) | ViewerUpdate::PermissionChanged(p) => {
                self.phase = ViewerPhase::Allowed(p);
            }
            ViewerUpdate::Displays { displays, shared } => {
                self.displays = displays;
                self.shared = shared;
            }
            ViewerUpdate::Encoder(e) => self.encoder = Some(e),
            ViewerUpdate::Link(link) => self.link_path = Some(link.path.to_string()),
            ViewerUpdate::Chat(text) => {
                self.chat.received("Host", text);
                self.show_chat = true;
            }
            ViewerUpdate::Ended(reason) => self.phase = ViewerPhase::Ended(reason),
        }
    }

    /// Shows a newly decoded picture, updating the texture in place.
    pub fn show_frame(&mut self, ctx: &egui::Context, frame: &RemoteFrame) {
        let size = [frame.width as usize, frame.height as usize];
        if frame.rgba.len() != size[0] * size[1] * 4 {
            tracing::warn!(
                "dropping a {}x{} picture with {} bytes",
                size[0],
                size[1],
                frame.rgba.len()
            );
            return;
        }
        let image = egui::ColorImage::from_rgba_unmultiplied(size, &frame.rgba);
        let options = egui::TextureOptions::LINEAR;
        match &mut self.picture {
            Some(p) => {
                p.texture.set(image, options);
                p.size = size;
                p.display = frame.display;
            }
            None => {
                self.picture = Some(Picture {
                    texture: ctx.load_texture("remote-screen", image, options),
                    display: frame.display,
                    size,
                });
            }
        }
    }

    /// Where the picture was last drawn, in points.
    #[cfg(test)]
    pub fn picture_rect(&self) -> Option<egui::Rect> {
        self.picture_rect
    }

    /// Whether a picture has arrived.
    pub fn has_picture(&self) -> bool {
        self.picture.is_some()
    }

    pub fn permission(&self) -> Option<Permission> {
        match self.phase {
            ViewerPhase::Allowed(p) => Some(p),
            _ => None,
        }
    }

    pub fn is_ended(&self) -> bool {
        matches!(self.phase, ViewerPhase::Ended(_))
    }

    /// The helper's actions since the last call, oldest first.
    pub fn take_actions(&mut self) -> Vec<ViewerAction> {
        std::mem::take(&mut self.actions)
    }

    /// Leaves the session: the same as the button.
    pub fn leave(&mut self) {
        self.stop_forwarding();
        self.actions.push(ViewerAction::Leave);
    }

    /// Lets go of everything held on the host.
    fn stop_forwarding(&mut self) {
        if self.forwarding {
            self.forwarding = false;
            let release = self.mapper.release_all();
            if !release.is_empty() {
                self.actions.push(ViewerAction::Input(release));
            }
        }
    }

    /// The host display with `index`, as the host described it.
    fn display(&self, index: u16) -> Option<&DisplayDesc> {
        self.displays.iter().find(|d| d.index == index)
    }

    /// The status bar's items, left to right.
    pub fn status_items(&self) -> Vec<String> {
        let mut items = Vec::new();
        items.push(match (&self.stats, &self.link_path) {
            (Some(s), Some(path)) => format!("{} ({path})", s.link),
            (Some(s), None) => s.link.to_string(),
            (None, _) => "connecting".into(),
        });
        items.push(if self.encrypted {
            ENCRYPTED_TEXT.into()
        } else {
            "securing the connection…".into()
        });
        if let Some(code) = self.code {
            items.push(format!("code {}", code_text(code)));
        }
        let encoder = self
            .stats
            .as_ref()
            .and_then(|s| s.encoder.clone())
            .or_else(|| self.encoder.clone());
        items.push(encoder.unwrap_or_else(|| "encoder: –".into()));
        if let Some(s) = &self.stats {
            items.push(format!("{:.0} frames/s", s.fps));
            items.push(match s.rtt_ms {
                Some(ms) => format!("round trip {ms:.0} ms"),
                None => "round trip –".into(),
            });
            items.push(bitrate_text(s.kbps));
        }
        items
    }
}

/// A bitrate the way people read it.
pub fn bitrate_text(kbps: f32) -> String {
    if kbps >= 1000.0 {
        format!("{:.1} Mbit/s", kbps / 1000.0)
    } else {
        format!("{kbps:.0} kbit/s")
    }
}

/// The whole viewer window.
pub fn viewer_ui(ui: &mut egui::Ui, viewer: &mut ViewerScreen) {
    egui::Panel::top("viewer_toolbar").show(ui, |ui| toolbar_ui(ui, viewer));
    egui::Panel::bottom("viewer_status").show(ui, |ui| status_bar_ui(ui, viewer));
    if viewer.show_chat {
        egui::Panel::right("viewer_chat")
            .default_size(260.0)
            .show(ui, |ui| {
                let height = (ui.available_height() - 60.0).max(60.0);
                if let Some(text) = chat_ui(ui, &mut viewer.chat, height) {
                    viewer.actions.push(ViewerAction::Chat(text));
                }
            });
    }
    egui::CentralPanel::no_frame().show(ui, |ui| {
        if viewer.has_picture() && !viewer.is_ended() {
            picture_ui(ui, viewer);
        } else {
            viewer.stop_forwarding();
            waiting_ui(ui, viewer);
        }
    });
}

fn toolbar_ui(ui: &mut egui::Ui, viewer: &mut ViewerScreen) {
    ui.horizontal(|ui| {
        ui.strong(format!("Session {}", viewer.number.grouped()));
        ui.separator();
        display_picker_ui(ui, viewer);
        ui.selectable_value(&mut viewer.zoom, Zoom::Fit, "Fit")
            .on_hover_text("Fit the remote screen to the window");
        ui.selectable_value(&mut viewer.zoom, Zoom::Actual, "1:1")
            .on_hover_text("One remote pixel per screen pixel");
        ui.separator();
        let control = viewer.permission() == Some(Permission::Control);
        ui.add_enabled(
            control,
            egui::Checkbox::new(&mut viewer.forward_input, "Keyboard and mouse"),
        )
        .on_hover_text("Send your keyboard and mouse to the remote screen")
        .on_disabled_hover_text("The host allowed viewing only");
        if !viewer.forward_input {
            viewer.stop_forwarding();
        }
        ui.separator();
        let chat = if viewer.chat.unread > 0 {
            format!("Chat ({})", viewer.chat.unread)
        } else {
            "Chat".into()
        };
        ui.toggle_value(&mut viewer.show_chat, chat);
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if !viewer.is_ended() && ui.button("Leave").clicked() {
                viewer.leave();
            }
        });
    });
}

/// Picks the host display to watch, when the host has more than one.
pub fn display_picker_ui(ui: &mut egui::Ui, viewer: &mut ViewerScreen) {
    if viewer.displays.len() < 2 {
        return;
    }
    let current = viewer
        .display(viewer.shared)
        .map(display_label)
        .unwrap_or_else(|| format!("Display {}", viewer.shared + 1));
    let mut chosen = None;
    let l = ui.label("Display");
    egui::ComboBox::from_id_salt("display_picker")
        .selected_text(current)
        .show_ui(ui, |ui| {
            for d in &viewer.displays {
                if ui
                    .selectable_label(d.index == viewer.shared, display_label(d))
                    .clicked()
                {
                    chosen = Some(d.index);
                }
            }
        })
        .response
        .labelled_by(l.id);
    if let Some(index) = chosen
        && index != viewer.shared
    {
        viewer.stop_forwarding();
        viewer.shared = index;
        viewer.actions.push(ViewerAction::SelectDisplay(index));
    }
    ui.separator();
}

fn display_label(d: &DisplayDesc) -> String {
    format!("{}: {} ({}×{})", d.index + 1, d.name, d.width, d.height)
}

/// The status bar: link, encryption, code, encoder, frames/s, round trip,
/// bitrate.
pub fn status_bar_ui(ui: &mut egui::Ui, viewer: &ViewerScreen) {
    // A notch smaller than the body text, so it fits one line on a narrow
    // window; it wraps rather than hides anything.
    if let Some(font) = ui.style_mut().text_styles.get_mut(&egui::TextStyle::Body) {
        font.size = 13.0;
    }
    ui.horizontal_wrapped(|ui| {
        for (i, item) in viewer.status_items().into_iter().enumerate() {
            if i > 0 {
                ui.separator();
            }
            ui.label(item);
        }
    });
}

/// What the central area shows before the picture arrives, and after the
/// session ends.
fn waiting_ui(ui: &mut egui::Ui, viewer: &mut ViewerScreen) {
    ui.vertical_centered(|ui| {
        ui.add_space(ui.available_height() / 4.0);
        match &viewer.phase {
            ViewerPhase::Connecting => {
                ui.spinner();
                ui.label(format!(
                    "Connecting to session {}…",
                    viewer.number.grouped()
                ));
                ui.weak(&viewer.relay_note);
            }
            ViewerPhase::WaitingForConsent => {
                ui.label("Waiting for the other person to allow the connection.");
            }
            ViewerPhase::Allowed(_) => {
                ui.spinner();
                ui.label("Waiting for the first picture…");
            }
            ViewerPhase::Ended(reason) => {
                ui.heading("The session has ended");
                ui.label(reason);
                if ui.button("Back to the start screen").clicked() {
                    viewer.actions.push(ViewerAction::Close);
                }
            }
        }
        if let Some(code) = viewer.code
            && !viewer.is_ended()
        {
            ui.add_space(12.0);
            ui.label("Tell them this code; it must match the one on their screen:");
            ui.label(
                egui::RichText::new(code_text(code))
                    .size(40.0)
                    .strong()
                    .monospace(),
            );
        }
    });
}

/// The remote screen, and the keyboard and mouse sent to it.
fn picture_ui(ui: &mut egui::Ui, viewer: &mut ViewerScreen) {
    let Some(picture) = &viewer.picture else {
        return;
    };
    let texture = picture.texture.id();
    let size_px = egui::vec2(picture.size[0] as f32, picture.size[1] as f32);
    let display = picture.display;
    let points_per_pixel = 1.0 / ui.pixels_per_point();

    let (response, geometry) = match viewer.zoom {
        Zoom::Fit => {
            let avail = ui.available_rect_before_wrap();
            let scale = (avail.width() / size_px.x).min(avail.height() / size_px.y);
            let rect = egui::Rect::from_center_size(avail.center(), size_px * scale);
            let response = ui.allocate_rect(rect, egui::Sense::click_and_drag());
            ui.painter()
                .image(texture, rect, full_uv(), egui::Color32::WHITE);
            let geometry = viewer.display(display).map(|d| {
                PictureGeometry::scaled(DisplayId::new(&d.name), rect.min, size_px, scale)
            });
            (response, geometry)
        }
        Zoom::Actual => {
            let output = egui::ScrollArea::both()
                .id_salt("picture_scroll")
                .auto_shrink([false, false])
                .show(ui, |ui| {
                    let (rect, response) = ui.allocate_exact_size(
                        size_px * points_per_pixel,
                        egui::Sense::click_and_drag(),
                    );
                    ui.painter()
                        .image(texture, rect, full_uv(), egui::Color32::WHITE);
                    (rect, response)
                });
            let (rect, response) = output.inner;
            let visible = output.inner_rect;
            let geometry = viewer.display(display).map(|d| {
                PictureGeometry::scaled(
                    DisplayId::new(&d.name),
                    rect.min,
                    size_px,
                    points_per_pixel,
                )
                .with_visible(visible)
            });
            (response, geometry)
        }
    };
    viewer.picture_rect = Some(response.rect);
    forward_input(ui, viewer, &response, geometry.as_ref());
}

fn full_uv() -> egui::Rect {
    egui::Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0))
}

/// Sends this frame's keyboard and mouse to the host, when the host allowed
/// control, the helper has not switched it off, and the host has said
/// which display the picture is.
///
/// The mouse goes while it is over the picture; the keyboard only while the
/// picture has keyboard focus (a click on it gives it focus), so typing in
/// the chat stays in the chat.
fn forward_input(
    ui: &egui::Ui,
    viewer: &mut ViewerScreen,
    response: &egui::Response,
    geometry: Option<&PictureGeometry>,
) {
    let allowed = viewer.forward_input && viewer.permission() == Some(Permission::Control);
    let Some(geometry) = geometry.filter(|_| allowed) else {
        viewer.stop_forwarding();
        return;
    };
    // A press on the picture gives it the keyboard.
    if response.is_pointer_button_down_on() {
        response.request_focus();
    }
    let focused = response.has_focus();
    if focused {
        // Tab, the arrows and Escape go to the host instead of moving
        // egui's focus; clicking outside the picture takes the keyboard
        // back.
        ui.memory_mut(|m| {
            m.set_focus_lock_filter(
                response.id,
                egui::EventFilter {
                    tab: true,
                    horizontal_arrows: true,
                    vertical_arrows: true,
                    escape: true,
                },
            );
        });
    } else if viewer.picture_focused {
        // The keyboard went elsewhere: let go of what is held on the host.
        let release = viewer.mapper.release_all();
        if !release.is_empty() {
            viewer.actions.push(ViewerAction::Input(release));
        }
    }
    viewer.picture_focused = focused;
    let events: Vec<egui::Event> = ui.input(|i| {
        i.events
            .iter()
            .filter(|e| focused || !is_keyboard(e))
            .cloned()
            .collect()
    });
    let out = viewer.mapper.map_events(&events, geometry);
    viewer.forwarding = true;
    if !out.is_empty() {
        viewer.actions.push(ViewerAction::Input(out));
    }
}

fn is_keyboard(event: &egui::Event) -> bool {
    matches!(
        event,
        egui::Event::Key { .. }
            | egui::Event::Text(_)
            | egui::Event::Ime(_)
            | egui::Event::Copy
            | egui::Event::Cut
            | egui::Event::Paste(_)
            | egui::Event::PasteImage(_)
    )
}
