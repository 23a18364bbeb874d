//! The start screen: the number field and the relay setting.

use super::*;

fn start_harness() -> Harness<'static, StartScreen> {
    Harness::builder()
        .with_size(egui::vec2(500.0, 500.0))
        .build_ui_state(
            |ui, start: &mut StartScreen| {
                set_style(ui.ctx());
                help_someone_ui(ui, start);
            },
            StartScreen::new("Ada".into()),
        )
}

fn number_field<'a>(harness: &'a Harness<'_, StartScreen>) -> egui_kittest::Node<'a> {
    harness.get_by_role_and_label(Role::TextInput, "Session number")
}

#[test]
fn typing_a_number_groups_it_and_enables_connect() {
    let mut harness = start_harness();
    let connect = harness.get_by_label("Connect");
    assert!(connect.accesskit_node().is_disabled(), "no number yet");

    number_field(&harness).focus();
    harness.run();
    number_field(&harness).type_text("1234");
    harness.run();
    assert_eq!(harness.state().number, "1 234");
    assert!(
        harness
            .get_by_label("Connect")
            .accesskit_node()
            .is_disabled()
    );

    number_field(&harness).type_text("5");
    harness.run();
    assert_eq!(harness.state().number, "12 345");
    assert_eq!(number_field(&harness).value().as_deref(), Some("12 345"));
    let connect = harness.get_by_label("Connect");
    assert!(!connect.accesskit_node().is_disabled());

    connect.click();
    harness.run();
    let request = harness.state_mut().take_connect().unwrap();
    assert_eq!(request.number, number(12345));
    assert_eq!(request.name, "Ada");
    assert_eq!(request.password, None);
    assert_eq!(request.relay, None);
}

#[test]
fn letters_do_not_get_in_and_a_leading_zero_is_marked() {
    let mut harness = start_harness();
    number_field(&harness).focus();
    harness.run();
    number_field(&harness).type_text("4a2-x1");
    harness.run();
    assert_eq!(harness.state().number, "421");

    harness.state_mut().number.clear();
    harness.run();
    number_field(&harness).focus();
    harness.run();
    number_field(&harness).type_text("01234");
    harness.run();
    assert_eq!(harness.state().number, "01 234");
    assert!(
        harness
            .query_by_label_contains("never starts with 0")
            .is_some()
    );
    assert!(
        harness
            .get_by_label("Connect")
            .accesskit_node()
            .is_disabled()
    );
}

#[test]
fn a_bad_relay_is_marked_and_blocks_connect() {
    let mut harness = start_harness();
    harness.state_mut().number = "12 345".into();
    harness.state_mut().relay = "host:port".into();
    harness.run();
    assert!(harness.query_by_label_contains("Relay:").is_some());
    assert!(
        harness
            .get_by_label("Connect")
            .accesskit_node()
            .is_disabled()
    );
}
