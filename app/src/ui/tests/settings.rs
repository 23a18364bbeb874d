//! Settings: the relays in order, a bad one refused.

use super::*;

#[test]
fn settings_save_relays_in_order_and_refuse_a_bad_one() {
    use crate::config::{Config, ConfigStore};
    use crate::ui::settings::{SettingsEditor, settings_ui};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let mut editor = SettingsEditor::default();
    editor.edit(&Config::default());
    let state = (editor, ConfigStore::at(Some(path.clone())), None::<Config>);
    let mut harness = Harness::builder()
        .with_size(egui::vec2(600.0, 500.0))
        .build_ui_state(
            |ui, (editor, store, saved): &mut (SettingsEditor, ConfigStore, Option<Config>)| {
                if let Some(config) = settings_ui(&ui.ctx().clone(), editor, store) {
                    *saved = Some(config);
                }
            },
            state,
        );
    harness.run();
    const RELAYS: &str = "Relays, one a line, tried in order";
    harness
        .get_by_role_and_label(Role::MultilineTextInput, RELAYS)
        .focus();
    harness.run();
    harness
        .get_by_role_and_label(Role::MultilineTextInput, RELAYS)
        .type_text("a.example\nbad:port");
    harness.run();
    assert!(harness.query_by_label_contains("line 2:").is_some());
    assert!(harness.get_by_label("Save").accesskit_node().is_disabled());

    harness.state_mut().0.relays = "a.example\nb.example:99".into();
    harness.run();
    harness.get_by_label("Save").click();
    harness.run();
    let saved = harness.state().2.clone().unwrap();
    let order: Vec<String> = saved
        .relay_addrs()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(order, ["a.example:4663", "b.example:99"]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.find("a.example").unwrap() < text.find("b.example").unwrap(),
        "{text}"
    );
    assert!(harness.query_by_label_contains("Saved to").is_some());
}
