//! The host: getting help, the consent dialog, the panel, chat and the end.

use super::*;

pub(super) fn host_harness(screen: HostScreen) -> Harness<'static, HostScreen> {
    Harness::builder()
        .with_size(egui::vec2(700.0, 700.0))
        .build_ui_state(
            |ui, host: &mut HostScreen| {
                set_style(ui.ctx());
                get_help_ui(ui, host);
                consent_ui(&ui.ctx().clone(), host);
            },
            screen,
        )
}

pub(super) fn connected(
    viewer: u16,
    name: &str,
    permission: Permission,
    link: LinkKind,
) -> HostUpdate {
    HostUpdate::Connected {
        viewer: ChannelId(viewer),
        name: name.into(),
        permission,
        link,
    }
}

#[test]
fn get_help_shows_the_grouped_number_and_the_state() {
    let mut harness = host_harness(HostScreen::new("via relay r.example:4663", None));
    harness.run();
    assert!(harness.query_by_label("Connecting to the relay…").is_some());

    harness
        .state_mut()
        .apply(HostUpdate::SessionNumber(number(48213)));
    harness.run();
    assert!(harness.query_by_label("48 213").is_some());
    assert!(
        harness
            .query_by_label("Waiting for a helper to connect")
            .is_some()
    );

    harness.get_by_label("Copy").click();
    harness.step();
    let copied = harness
        .output()
        .platform_output
        .commands
        .iter()
        .any(|c| matches!(c, egui::OutputCommand::CopyText(t) if t == "48213"));
    assert!(copied, "the number went to the clipboard");

    harness
        .state_mut()
        .apply(connected(3, "Bob", Permission::ViewOnly, LinkKind::Relayed));
    harness
        .state_mut()
        .apply(connected(4, "Eve", Permission::Control, LinkKind::Direct));
    harness.run();
    assert!(harness.query_by_label("2 helpers connected").is_some());
}

#[test]
fn consent_dialog_shows_name_and_code_and_allow_control_decides() {
    let code = real_code();
    let mut harness = host_harness(HostScreen::new("", None));
    harness
        .state_mut()
        .apply(HostUpdate::SessionNumber(number(48213)));
    harness.state_mut().apply(HostUpdate::Request {
        viewer: ChannelId(7),
        name: "Helga".into(),
        code,
    });
    harness.state_mut().apply(HostUpdate::Request {
        viewer: ChannelId(8),
        name: "Mallory".into(),
        code,
    });
    harness.run();

    assert!(harness.query_by_label("Helga wants to connect").is_some());
    let shown = code_text(code);
    assert_eq!(shown.len(), 7, "six digits in two groups: {shown}");
    assert!(
        harness.query_by_label(&shown).is_some(),
        "code {shown} shown"
    );
    assert!(harness.query_by_label("1 more waiting").is_some());
    assert!(
        harness.take_actions_for_test().is_empty(),
        "nothing decided yet"
    );

    harness.get_by_label("Allow control").click();
    harness.run();
    assert_eq!(
        harness.take_actions_for_test(),
        [HostAction::Decide(ChannelId(7), Some(Permission::Control))]
    );

    // The queue moves on to the next helper.
    assert!(harness.query_by_label("Mallory wants to connect").is_some());
    harness.get_by_label("Deny").click();
    harness.run();
    assert_eq!(
        harness.take_actions_for_test(),
        [HostAction::Decide(ChannelId(8), None)]
    );
    assert!(
        harness
            .query_by_label_contains("wants to connect")
            .is_none()
    );
}

#[test]
fn a_request_that_leaves_disappears_from_the_queue() {
    let mut harness = host_harness(HostScreen::new("", None));
    harness.state_mut().apply(HostUpdate::Request {
        viewer: ChannelId(7),
        name: "Helga".into(),
        code: real_code(),
    });
    harness.run();
    assert!(harness.query_by_label("Helga wants to connect").is_some());
    harness.state_mut().apply(HostUpdate::Left {
        viewer: ChannelId(7),
        reason: "the helper left".into(),
    });
    harness.run();
    assert!(harness.query_by_label("Helga wants to connect").is_none());
    assert!(
        harness
            .query_by_label("Helga left: the helper left")
            .is_some()
    );
}

#[test]
fn host_panel_switches_permission_removes_and_stops() {
    let mut harness = host_harness(HostScreen::new("", None));
    harness
        .state_mut()
        .apply(HostUpdate::SessionNumber(number(48213)));
    harness
        .state_mut()
        .apply(connected(3, "Bob", Permission::ViewOnly, LinkKind::Relayed));
    harness
        .state_mut()
        .apply(connected(4, "Eve", Permission::Control, LinkKind::Direct));
    harness.run();
    assert!(harness.query_by_label("Bob").is_some());
    assert!(harness.query_by_label("relayed").is_some());
    assert!(harness.query_by_label("direct").is_some());

    // Bob is view-only: give him control (the first "Control" is his row).
    harness.get_all_by_label("Control").next().unwrap().click();
    harness.run();
    assert_eq!(
        harness.take_actions_for_test(),
        [HostAction::SetPermission(ChannelId(3), Permission::Control)]
    );

    // Remove Eve (the second row).
    harness.get_all_by_label("Remove").nth(1).unwrap().click();
    harness.run();
    assert_eq!(
        harness.take_actions_for_test(),
        [HostAction::Remove(ChannelId(4))]
    );
    assert!(harness.query_by_label("Eve").is_none());
    assert!(harness.query_by_label("1 helper connected").is_some());

    harness.get_by_label("Stop sharing").click();
    harness.run();
    assert_eq!(harness.take_actions_for_test(), [HostAction::Stop]);
    assert!(harness.query_by_label("Bob").is_none());
}

#[test]
fn host_chat_sends_and_shows_messages() {
    let mut harness = host_harness(HostScreen::new("", None));
    harness
        .state_mut()
        .apply(connected(3, "Bob", Permission::Control, LinkKind::Relayed));
    harness.state_mut().apply(HostUpdate::Chat {
        viewer: ChannelId(3),
        name: "Bob".into(),
        text: "I see your screen".into(),
    });
    harness.run();
    assert!(harness.query_by_label("I see your screen").is_some());

    let field = harness.get_by_role_and_label(Role::TextInput, "Chat");
    field.focus();
    harness.run();
    harness
        .get_by_role_and_label(Role::TextInput, "Chat")
        .type_text("thanks");
    harness.run();
    harness.get_by_label("Send").click();
    harness.run();
    assert_eq!(
        harness.take_actions_for_test(),
        [HostAction::Chat("thanks".into())]
    );
    assert!(harness.query_by_label("thanks").is_some());
}

#[test]
fn ended_session_says_why() {
    let mut harness = host_harness(HostScreen::new("", None));
    harness
        .state_mut()
        .apply(HostUpdate::Ended("the relay closed the connection".into()));
    harness.run();
    assert_eq!(
        harness.state().status,
        HostStatus::Ended("the relay closed the connection".into())
    );
    assert!(
        harness
            .query_by_label("Not sharing: the relay closed the connection")
            .is_some()
    );
    harness.get_by_label("New session").click();
    harness.run();
    assert_eq!(
        harness.take_actions_for_test(),
        [HostAction::Restart { password: None }]
    );
}
