//! The eframe app: owns the session engines and pumps their updates into
//! the screens, and the screens' actions into the engines.

use super::host::{HostAction, HostScreen, HostStatus, consent_ui, get_help_ui};
use super::settings::{SettingsEditor, settings_ui};
use super::start::{ConnectRequest, StartScreen, help_someone_ui};
use super::transfers::TransferAction;
use super::viewer::{ViewerAction, ViewerScreen, viewer_ui};
use crate::config::{Config, ConfigStore};
use crate::embedded;
use crate::engine::{self, HostEngine, HostEngineConfig, Notify, ViewerEngine, ViewerEngineConfig};
use crate::say;
use crate::trust;
use eframe::egui;
use fernsicht_net::SessionNumber;
use fernsicht_net::client::RelayAddr;
use fernsicht_net::client::{ConnectOptions, LinkInfo, Route};
use fernsicht_net::relay::{DEFAULT_PORT, RelayHandle};
use fernsicht_net::tls::RelayTrust;
use fernsicht_net::transport::proxy::ProxySetting;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the window starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Both halves: get help and help someone (`fernsicht`).
    Start,
    /// Only "Get help" (`fernsicht host`).
    Host,
    /// Straight into a session (`fernsicht view NUMBER`).
    View(SessionNumber),
}

/// What the command line says for the window.
#[derive(Debug, Clone)]
pub struct Launch {
    pub mode: Mode,
    /// A relay given on the command line, used instead of the configured ones.
    pub relay: Option<RelayAddr>,
    pub password: Option<String>,
    pub name: Option<String>,
    /// Address for the embedded relay.
    pub listen: Option<SocketAddr>,
}

impl Launch {
    /// Plain `fernsicht`: the start screen with the configured relays.
    pub fn start() -> Self {
        Launch {
            mode: Mode::Start,
            relay: None,
            password: None,
            name: None,
            listen: None,
        }
    }
}

/// Sharing frames: what the host engine is asked to keep within.
const MAX_BITRATE_BPS: u32 = 8_000_000;
const MAX_FPS: f32 = 30.0;
/// How long closing the window waits for the engines to say goodbye.
const GOODBYE: Duration = Duration::from_secs(1);

struct HostSide {
    /// `None` when no relay could be had at all (the screen says why).
    engine: Option<HostEngine>,
    screen: HostScreen,
    /// Relays still to try if this one does not give a number.
    fallback: VecDeque<RelayAddr>,
}

struct ViewerSide {
    engine: ViewerEngine,
    screen: ViewerScreen,
    request: ConnectRequest,
    /// The relay the engine uses now.
    relay: RelayAddr,
    fallback: VecDeque<RelayAddr>,
}

pub struct FernsichtApp {
    runtime: tokio::runtime::Handle,
    notify: Notify,
    launch: Launch,
    store: ConfigStore,
    config: Config,
    settings: SettingsEditor,
    start: StartScreen,
    host: Option<HostSide>,
    viewer: Option<ViewerSide>,
    /// The relay inside this app, once started; kept for the app's lifetime.
    embedded: Option<RelayHandle>,
    /// The config file's problem, until the user dismisses it.
    config_problem: Option<String>,
}

impl FernsichtApp {
    pub fn new(
        ctx: &egui::Context,
        runtime: tokio::runtime::Handle,
        launch: Launch,
        mut store: ConfigStore,
    ) -> Self {
        super::set_style(ctx);
        let config = store.load();
        let config_problem = store.problem().map(str::to_owned);
        if let Some(p) = &config_problem {
            tracing::warn!("{p}");
        }
        let repaint = ctx.clone();
        let notify: Notify = Arc::new(move || repaint.request_repaint());
        let name = launch.name.clone().unwrap_or_else(|| config.display_name());
        let mut app = FernsichtApp {
            runtime,
            notify,
            store,
            settings: SettingsEditor::default(),
            start: StartScreen::new(name),
            host: None,
            viewer: None,
            embedded: None,
            config_problem,
            config,
            launch,
        };
        app.start.relay_hint = app.viewer_relay_hint();
        match app.launch.mode.clone() {
            Mode::Start | Mode::Host => {
                let password = app.launch.password.clone();
                app.start_host(password);
            }
            Mode::View(number) => {
                let request = ConnectRequest {
                    number,
                    password: app.launch.password.clone(),
                    name: app.start.name.clone(),
                    relay: None,
                };
                app.start_viewer(request);
            }
        }
        app
    }

    /// The relays to try, in order: the command line's, else the
    /// configured ones.
    fn relays(&self) -> Vec<RelayAddr> {
        match &self.launch.relay {
            Some(r) => vec![r.clone()],
            None => self.config.relay_addrs(),
        }
    }

    fn viewer_relay_hint(&self) -> String {
        let relays = self.relays();
        if relays.is_empty() {
            "their address, e.g. 192.168.1.20".into()
        } else {
            relays
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    }

    /// Registers a new host session: with the configured relays in order, or
    /// with the relay inside this app when none is configured.
    fn start_host(&mut self, password: Option<String>) {
        if let Some(engine) = self.host.take().and_then(|h| h.engine) {
            engine.stop();
        }
        let mut relays: VecDeque<RelayAddr> = self.relays().into();
        let (first, note) = match relays.pop_front() {
            Some(r) => {
                let note = format!("via relay {r}");
                (Some(r), note)
            }
            None => match self.embedded_relay() {
                Ok((local, note)) => (Some(local), note),
                Err(e) => (None, format!("{e:#}")),
            },
        };
        let mut screen = HostScreen::new(note, password.clone());
        if first.is_none() {
            screen.status = HostStatus::Ended(screen.relay_note.clone());
        }
        self.host = Some(HostSide {
            engine: first.map(|relay| self.host_engine(relay, password)),
            screen,
            fallback: relays,
        });
    }

    /// How to reach `relay`: our embedded relay by its own certificate,
    /// others as `trust.rs` says.
    fn connect_options(&self, relay: &RelayAddr) -> ConnectOptions {
        let own = self
            .embedded
            .as_ref()
            .filter(|r| relay.host() == "127.0.0.1" && relay.port() == r.addr.port())
            .map(|r| r.fingerprint);
        trust::connect_options(
            relay,
            own,
            self.config.remembered(relay),
            ProxySetting::Auto,
        )
    }

    /// The other configured relays, for a session on `relay` to move to
    /// should `relay` die (they share sessions when they are one family).
    fn family_of(&self, relay: &RelayAddr) -> Vec<Route> {
        self.relays()
            .into_iter()
            .filter(|r| r != relay)
            .map(|r| {
                let connect = self.connect_options(&r);
                (r, connect)
            })
            .collect()
    }

    /// After a first-use connection to `relay`, remember its certificate.
    fn remember_relay(&mut self, relay: &RelayAddr, link: &LinkInfo, options: &ConnectOptions) {
        if options.trust == RelayTrust::FirstUse
            && self.config.remember(relay, link.fingerprint)
            && let Err(e) = self.store.save(&self.config)
        {
            tracing::warn!("cannot remember the relay's certificate: {e}");
        }
    }

    fn host_engine(&self, relay: RelayAddr, password: Option<String>) -> HostEngine {
        HostEngine::start(
            HostEngineConfig {
                connect: self.connect_options(&relay),
                family: self.family_of(&relay),
                relay,
                password,
                x_display: None,
                max_bitrate_bps: MAX_BITRATE_BPS,
                max_fps: MAX_FPS,
                inbox: self.config.files_inbox(),
                direct: Some(fernsicht_net::direct::DirectOptions::default()),
            },
            &self.runtime,
            self.notify.clone(),
        )
    }

    /// The relay inside this app (started on first use), as the host
    /// reaches it and as the person should describe it to a helper.
    fn embedded_relay(&mut self) -> anyhow::Result<(RelayAddr, String)> {
        let port = match &self.embedded {
            Some(r) => r.addr.port(),
            None => {
                let relay = self.runtime.block_on(embedded::start(self.launch.listen))?;
                let port = relay.addr.port();
                self.embedded = Some(relay);
                port
            }
        };
        let note = match lan_address() {
            Some(ip) => format!(
                "via the relay in this app: helpers connect to {}",
                SocketAddr::new(ip, port)
            ),
            None => format!("via the relay in this app, port {port}"),
        };
        Ok((RelayAddr::new("127.0.0.1", port), note))
    }

    fn start_viewer(&mut self, request: ConnectRequest) {
        let mut relays: VecDeque<RelayAddr> = match &request.relay {
            Some(r) => VecDeque::from([r.clone()]),
            None => self.relays().into(),
        };
        if relays.is_empty() {
            // Nothing configured: a host on this machine runs its relay here.
            relays.push_back(RelayAddr::new("127.0.0.1", DEFAULT_PORT));
        }
        let Some(relay) = relays.pop_front() else {
            return;
        };
        let screen = ViewerScreen::new(request.number, format!("via relay {relay}"));
        let engine = self.viewer_engine(&request, relay.clone());
        self.viewer = Some(ViewerSide {
            engine,
            screen,
            request,
            relay,
            fallback: relays,
        });
    }

    fn viewer_engine(&self, request: &ConnectRequest, relay: RelayAddr) -> ViewerEngine {
        ViewerEngine::start(
            ViewerEngineConfig {
                connect: self.connect_options(&relay),
                family: self.family_of(&relay),
                relay,
                number: request.number,
                password: request.password.clone(),
                name: if request.name.is_empty() {
                    self.config.display_name()
                } else {
                    request.name.clone()
                },
                record: None,
                save_to: None,
                direct: true,
            },
            &self.runtime,
            self.notify.clone(),
        )
    }

    /// Moves the host engine's updates into its screen, trying the next
    /// relay when one gives no number.
    fn pump_host(&mut self, ctx: &egui::Context) {
        let Some(host) = &mut self.host else { return };
        let Some(engine) = &mut host.engine else {
            return;
        };
        let mut retry = None;
        while let Some(update) = engine.try_update() {
            match &update {
                // For scripts and tests, as the headless host prints it.
                engine::HostUpdate::SessionNumber(n) => say!("session {n}"),
                // Someone is waiting for an answer: the window may be
                // behind others.
                engine::HostUpdate::Request { .. } => ctx.send_viewport_cmd(
                    egui::ViewportCommand::RequestUserAttention(egui::UserAttentionType::Critical),
                ),
                _ => {}
            }
            if let engine::HostUpdate::Ended(reason) = &update
                && host.screen.number().is_none()
                && matches!(host.screen.status, HostStatus::Connecting)
                && let Some(next) = host.fallback.pop_front()
            {
                tracing::warn!("relay gave no session ({reason}); trying {next}");
                retry = Some(next);
                break;
            }
            host.screen.apply(update);
        }
        if let Some(next) = retry {
            let password = host.screen.password_in_use.clone();
            host.screen.relay_note = format!("via relay {next}");
            let engine = self.host_engine(next, password);
            if let Some(host) = &mut self.host {
                host.engine = Some(engine);
            }
        }
    }

    fn pump_viewer(&mut self, ctx: &egui::Context) {
        let Some(viewer) = &mut self.viewer else {
            return;
        };
        let mut retry = None;
        let mut first_link = None;
        while let Some(update) = viewer.engine.try_update() {
            if let engine::ViewerUpdate::Link(link) = &update {
                first_link = Some(link.clone());
            }
            if let engine::ViewerUpdate::Ended(reason) = &update
                && viewer.screen.code.is_none()
                && let Some(next) = viewer.fallback.pop_front()
            {
                tracing::warn!("no session through this relay ({reason}); trying {next}");
                retry = Some(next);
                break;
            }
            viewer.screen.apply(update);
        }
        if let Some(frame) = viewer.engine.take_frame() {
            viewer.screen.show_frame(ctx, &frame);
        }
        if !viewer.screen.is_ended() {
            viewer.screen.stats = Some(viewer.engine.stats());
            // Figures in the status bar move even on a still screen.
            ctx.request_repaint_after(Duration::from_millis(500));
        }
        if let Some(link) = first_link {
            let relay = viewer.relay.clone();
            let options = self.connect_options(&relay);
            self.remember_relay(&relay, &link, &options);
        }
        if let Some(next) = retry {
            let Some(viewer) = &mut self.viewer else {
                return;
            };
            viewer.screen.relay_note = format!("via relay {next}");
            let request = viewer.request.clone();
            let engine = self.viewer_engine(&request, next.clone());
            if let Some(viewer) = &mut self.viewer {
                viewer.engine = engine;
                viewer.relay = next;
            }
        }
    }

    /// Hands what the person chose to the engines.
    fn carry_out(&mut self) {
        let mut restart = None;
        if let Some(host) = &mut self.host {
            for action in host.screen.take_actions() {
                match (action, host.engine.as_ref()) {
                    (HostAction::Restart { password }, _) => restart = Some(password),
                    (_, None) => {}
                    (HostAction::Decide(v, p), Some(e)) => e.decide(v, p),
                    (HostAction::SetPermission(v, p), Some(e)) => e.set_permission(v, p),
                    (HostAction::Remove(v), Some(e)) => e.remove(v),
                    (HostAction::Chat(text), Some(e)) => e.chat(text),
                    (HostAction::Stop, Some(e)) => e.stop(),
                    (HostAction::PickFilesToSend, Some(e)) => {
                        let viewers: Vec<_> =
                            host.screen.viewers.iter().map(|v| v.viewer).collect();
                        if let Some(paths) = rfd::FileDialog::new()
                            .set_title("Send files to everyone connected")
                            .pick_files()
                        {
                            e.send_files(viewers, paths);
                        }
                    }
                    (HostAction::PickFileToPark, Some(e)) => {
                        if let Some(path) = rfd::FileDialog::new()
                            .set_title("Park a file at the relay for everyone")
                            .pick_file()
                        {
                            e.park(vec![path]);
                        }
                    }
                    (HostAction::Transfer(action), Some(e)) => match action {
                        TransferAction::Accept(peer, id) => match pick_folder() {
                            Some(folder) => e.accept_files(peer, id, folder),
                            None => e.decline_files(peer, id),
                        },
                        TransferAction::Decline(peer, id) => e.decline_files(peer, id),
                        TransferAction::Cancel(peer, id) => e.cancel_transfer(peer, id),
                        TransferAction::Fetch(_) => {}
                    },
                }
            }
        }
        if let Some(password) = restart {
            self.start_host(password);
        }
        let mut close = false;
        if let Some(viewer) = &mut self.viewer {
            for action in viewer.screen.take_actions() {
                match action {
                    ViewerAction::Input(events) => viewer.engine.send_input(&events),
                    ViewerAction::Chat(text) => viewer.engine.chat(text),
                    ViewerAction::SelectDisplay(i) => viewer.engine.select_display(i),
                    ViewerAction::Leave => viewer.engine.leave(),
                    ViewerAction::Close => close = true,
                    ViewerAction::SendFiles(paths) => viewer.engine.send_files(paths),
                    ViewerAction::Transfer(action) => match action {
                        TransferAction::Accept(peer, id) => match pick_folder() {
                            Some(folder) => viewer.engine.accept_files(peer, id, folder),
                            None => viewer.engine.decline_files(peer, id),
                        },
                        TransferAction::Decline(peer, id) => viewer.engine.decline_files(peer, id),
                        TransferAction::Cancel(peer, id) => viewer.engine.cancel_transfer(peer, id),
                        TransferAction::Fetch(file) => {
                            if let Some(folder) = pick_folder() {
                                viewer.engine.fetch(file, folder);
                            }
                        }
                    },
                }
            }
        }
        if close {
            self.viewer = None;
            if self.host.is_none() {
                self.start_host(None);
            }
        }
        if let Some(request) = self.start.take_connect() {
            self.start_viewer(request);
        }
    }

    fn top_bar_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.strong(super::TITLE);
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if ui.button("Settings").clicked() {
                    self.settings.edit(&self.config);
                }
            });
        });
        if let Some(problem) = self.config_problem.clone() {
            ui.horizontal_wrapped(|ui| {
                ui.colored_label(ui.visuals().warn_fg_color, problem);
                if ui.small_button("Dismiss").clicked() {
                    self.config_problem = None;
                }
            });
        }
    }

    fn start_screen_ui(&mut self, ui: &mut egui::Ui) {
        egui::Panel::top("start_top").show(ui, |ui| self.top_bar_ui(ui));
        let both = self.launch.mode != Mode::Host;
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| {
                if both {
                    // `vertical`: columns justify their contents, which
                    // spreads wrapped text out word by word.
                    ui.columns(2, |cols| {
                        if let Some(host) = &mut self.host {
                            cols[0].vertical(|ui| get_help_ui(ui, &mut host.screen));
                        }
                        cols[1].vertical(|ui| help_someone_ui(ui, &mut self.start));
                    });
                } else if let Some(host) = &mut self.host {
                    get_help_ui(ui, &mut host.screen);
                }
            });
        });
    }

    /// Closing the window stops sharing and leaves the session, giving the
    /// engines a moment to tell the other side.
    fn say_goodbye(&mut self) {
        if let Some(engine) = self.host.as_ref().and_then(|h| h.engine.as_ref()) {
            engine.stop();
        }
        if let Some(viewer) = &mut self.viewer {
            viewer.engine.leave();
        }
        let deadline = Instant::now() + GOODBYE;
        let mut host_done = self.host.as_ref().is_none_or(|h| h.engine.is_none());
        let mut viewer_done = self.viewer.is_none();
        while !(host_done && viewer_done) && Instant::now() < deadline {
            if let Some(engine) = self.host.as_mut().and_then(|h| h.engine.as_mut()) {
                while let Some(u) = engine.try_update() {
                    host_done |= matches!(u, engine::HostUpdate::Ended(_));
                }
            }
            if let Some(viewer) = &mut self.viewer {
                while let Some(u) = viewer.engine.try_update() {
                    viewer_done |= matches!(u, engine::ViewerUpdate::Ended(_));
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl eframe::App for FernsichtApp {
    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.pump_host(ctx);
        self.pump_viewer(ctx);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        if let Some(viewer) = &mut self.viewer {
            viewer_ui(ui, &mut viewer.screen);
        } else {
            self.start_screen_ui(ui);
        }
        let ctx = ui.ctx().clone();
        if let Some(host) = &mut self.host {
            consent_ui(&ctx, &mut host.screen);
        }
        if let Some(saved) = settings_ui(&ctx, &mut self.settings, &mut self.store) {
            self.config = saved;
            self.config_problem = None;
            self.start.relay_hint = self.viewer_relay_hint();
        }
        self.carry_out();
    }

    fn on_exit(&mut self, _gl: Option<&eframe::glow::Context>) {
        self.say_goodbye();
    }
}

/// Asks where to save received files (the native dialog; thin on purpose:
/// everything after the choice is tested without a desktop).
fn pick_folder() -> Option<std::path::PathBuf> {
    let mut dialog = rfd::FileDialog::new().set_title("Save the files in…");
    if let Some(d) = dirs::download_dir() {
        dialog = dialog.set_directory(d);
    }
    dialog.pick_folder()
}

/// This machine's address on its network, for telling a helper where the
/// embedded relay is. Connecting a UDP socket sends nothing; it only asks
/// the routing table which local address would be used.
fn lan_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind(("0.0.0.0", 0)).ok()?;
    socket.connect(("192.0.2.1", 9)).ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// Opens the window and runs until it closes.
pub fn run(launch: Launch, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    engine::prewarm_viewer_key();
    let mut viewport = egui::ViewportBuilder::default()
        .with_title(super::TITLE)
        .with_app_id(super::APP_ID)
        .with_inner_size([1000.0, 640.0])
        .with_min_inner_size([520.0, 360.0]);
    if let Some(icon) = super::icon() {
        viewport = viewport.with_icon(icon);
    }
    let options = eframe::NativeOptions {
        viewport,
        renderer: eframe::Renderer::Glow,
        ..Default::default()
    };
    let handle = runtime.handle().clone();
    eframe::run_native(
        super::APP_ID,
        options,
        Box::new(move |cc| {
            Ok(Box::new(FernsichtApp::new(
                &cc.egui_ctx,
                handle,
                launch,
                ConfigStore::platform(),
            )))
        }),
    )
    .map_err(|e| anyhow::anyhow!("cannot open the window: {e}"))
}
