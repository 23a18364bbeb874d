//! The settings window: the relays to use and the name shown to others.

use crate::config::{Config, ConfigStore, RelayEntry};
use eframe::egui;

/// The settings being edited, as text, until the user saves them.
#[derive(Debug, Clone, Default)]
pub struct SettingsEditor {
    pub open: bool,
    /// One relay a line, in the order they are tried.
    pub relays: String,
    pub name: String,
    pub auto_accept_files: bool,
    /// The outcome of the last save, for the user to read.
    pub message: Option<Result<String, String>>,
    /// The settings this window does not edit (remembered relay
    /// certificates), kept as they were.
    pub base: Config,
}

impl SettingsEditor {
    /// Starts editing `config`.
    pub fn edit(&mut self, config: &Config) {
        self.open = true;
        self.relays = config
            .relays
            .iter()
            .map(|r| String::from(r.clone()))
            .collect::<Vec<_>>()
            .join("\n");
        self.name = config.name.clone();
        self.auto_accept_files = config.auto_accept_files;
        self.message = None;
        self.base = config.clone();
    }

    /// The settings as typed, or what is wrong with them.
    pub fn parsed(&self) -> Result<Config, String> {
        let mut relays = Vec::new();
        for (i, line) in self.relays.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let entry = RelayEntry::try_from(line.to_owned())
                .map_err(|e| format!("line {}: {e}", i + 1))?;
            relays.push(entry);
        }
        Ok(Config {
            relays,
            name: self.name.trim().to_owned(),
            auto_accept_files: self.auto_accept_files,
            ..self.base.clone()
        })
    }
}

/// The settings window; returns the new settings when the user saved them.
pub fn settings_ui(
    ctx: &egui::Context,
    editor: &mut SettingsEditor,
    store: &mut ConfigStore,
) -> Option<Config> {
    let mut saved = None;
    let mut open = editor.open;
    egui::Window::new("Settings")
        .open(&mut open)
        .collapsible(false)
        .resizable(false)
        .show(ctx, |ui| {
            let l = ui.label("Your name, shown to the person you help");
            ui.add(
                egui::TextEdit::singleline(&mut editor.name).hint_text(crate::config::login_name()),
            )
            .labelled_by(l.id);
            ui.add_space(8.0);
            let l = ui.label("Relays, one a line, tried in order");
            ui.add(
                egui::TextEdit::multiline(&mut editor.relays)
                    .hint_text("relay.example.org:4663")
                    .desired_rows(3),
            )
            .labelled_by(l.id);
            ui.weak(
                "With none, this app runs its own relay: helpers on your network connect to it.",
            );
            ui.checkbox(
                &mut editor.auto_accept_files,
                "Save files from helpers to Downloads without asking",
            );
            ui.weak("Changes apply to the next session.");
            let parsed = editor.parsed();
            if let Err(e) = &parsed {
                ui.colored_label(ui.visuals().error_fg_color, e);
            }
            ui.add_space(8.0);
            if ui
                .add_enabled(parsed.is_ok(), egui::Button::new("Save"))
                .clicked()
                && let Ok(config) = parsed
            {
                editor.message = Some(match store.save(&config) {
                    Ok(()) => {
                        saved = Some(config);
                        Ok(match store.path() {
                            Some(p) => format!("Saved to {}", p.display()),
                            None => "Saved".into(),
                        })
                    }
                    Err(e) => Err(e),
                });
            }
            match &editor.message {
                Some(Ok(m)) => {
                    ui.weak(m);
                }
                Some(Err(e)) => {
                    ui.colored_label(ui.visuals().error_fg_color, e);
                }
                None => {}
            }
        });
    editor.open = open;
    saved
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn relays_parse_line_by_line_in_order() {
        let editor = SettingsEditor {
            relays: "a.example\n\n  b.example:99 \n".into(),
            name: " Ada ".into(),
            ..Default::default()
        };
        let config = editor.parsed().unwrap();
        let relays: Vec<String> = config.relay_addrs().iter().map(|r| r.to_string()).collect();
        assert_eq!(relays, ["a.example:4663", "b.example:99"]);
        assert_eq!(config.name, "Ada");

        let broken = SettingsEditor {
            relays: "ok.example\nbad:port".into(),
            ..Default::default()
        };
        let e = broken.parsed().unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
    }
}
