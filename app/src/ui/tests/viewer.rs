//! The viewer window: status bar, displays, picture, input, files.

use super::host::{connected, host_harness};
use super::*;

/// The viewer shows a spinner while waiting, which never settles: its
/// tests step a fixed number of frames instead of `run`.
fn settle(harness: &mut Harness<'_, ViewerScreen>) {
    harness.run_steps(4);
}

fn viewer_harness() -> Harness<'static, ViewerScreen> {
    Harness::builder()
        .with_size(egui::vec2(1000.0, 700.0))
        .build_ui_state(
            |ui, viewer: &mut ViewerScreen| {
                set_style(ui.ctx());
                viewer_ui(ui, viewer);
            },
            ViewerScreen::new(number(48213), "via relay r.example:4663"),
        )
}

fn stats() -> ViewerStats {
    ViewerStats {
        fps: 29.7,
        kbps: 2140.0,
        rtt_ms: Some(12.4),
        link: LinkKind::Relayed,
        encoder: Some("openh264 (software)".into()),
        frames_decoded: 300,
        bytes_received: 80_000_000,
    }
}

fn display(index: u16, name: &str, x: i32) -> DisplayDesc {
    DisplayDesc {
        index,
        name: name.into(),
        x,
        y: 0,
        width: 64,
        height: 48,
    }
}

/// A 64×48 picture: left half red, right half blue.
fn picture(display: u16) -> RemoteFrame {
    let mut rgba = Vec::with_capacity(64 * 48 * 4);
    for _y in 0..48 {
        for x in 0..64 {
            rgba.extend_from_slice(if x < 32 {
                &[255, 0, 0, 255]
            } else {
                &[0, 0, 255, 255]
            });
        }
    }
    RemoteFrame {
        id: 1,
        display,
        width: 64,
        height: 48,
        rgba,
        captured_us: 0,
    }
}

#[test]
fn viewer_status_bar_shows_link_encryption_code_encoder_and_figures() {
    let code = real_code();
    let mut harness = viewer_harness();
    settle(&mut harness);
    assert!(harness.query_by_label("connecting").is_some());
    assert!(harness.query_by_label("securing the connection…").is_some());
    assert!(harness.query_by_label(ENCRYPTED_TEXT).is_none());

    harness.state_mut().apply(ViewerUpdate::Code(code));
    harness.state_mut().apply(ViewerUpdate::Connected);
    settle(&mut harness);
    assert!(harness.query_by_label(ENCRYPTED_TEXT).is_some());
    assert!(
        harness
            .query_by_label("Waiting for the other person to allow the connection.")
            .is_some()
    );
    // The code is in the status bar, and large in the middle until allowed.
    let code_item = format!("code {}", code_text(code));
    assert!(harness.query_by_label(&code_item).is_some());
    assert!(harness.query_by_label(&code_text(code)).is_some());

    harness
        .state_mut()
        .apply(ViewerUpdate::Allowed(Permission::Control));
    harness.state_mut().stats = Some(stats());
    settle(&mut harness);
    assert_eq!(ENCRYPTED_TEXT, "end-to-end encrypted (AES-256-GCM)");
    for text in [
        "relayed",
        ENCRYPTED_TEXT,
        code_item.as_str(),
        "openh264 (software)",
        "30 frames/s",
        "round trip 12 ms",
        "2.1 Mbit/s",
    ] {
        assert!(
            harness.query_by_label(text).is_some(),
            "status bar shows {text:?}"
        );
    }

    let mut direct = stats();
    direct.link = LinkKind::Direct;
    direct.rtt_ms = None;
    direct.kbps = 640.0;
    harness.state_mut().stats = Some(direct);
    settle(&mut harness);
    for text in ["direct", "round trip –", "640 kbit/s"] {
        assert!(
            harness.query_by_label(text).is_some(),
            "status bar shows {text:?}"
        );
    }
}

#[test]
fn display_picker_appears_with_two_displays_and_selects() {
    let mut harness = viewer_harness();
    harness
        .state_mut()
        .apply(ViewerUpdate::Allowed(Permission::ViewOnly));
    harness.state_mut().apply(ViewerUpdate::Displays {
        displays: vec![display(0, "DP-1", 0)],
        shared: 0,
    });
    settle(&mut harness);
    assert!(
        harness.query_by_label("Display").is_none(),
        "one display: no picker"
    );

    harness.state_mut().apply(ViewerUpdate::Displays {
        displays: vec![display(0, "DP-1", 0), display(1, "HDMI-1", 64)],
        shared: 0,
    });
    settle(&mut harness);
    harness
        .get_by_role_and_label(Role::ComboBox, "Display")
        .click();
    settle(&mut harness);
    harness.get_by_label("2: HDMI-1 (64×48)").click();
    settle(&mut harness);
    assert_eq!(
        harness.take_actions_for_test(),
        [ViewerAction::SelectDisplay(1)]
    );
    assert_eq!(harness.state().shared, 1);
}

#[test]
fn picture_is_a_texture_and_clicks_on_it_reach_the_host_only_with_control() {
    let mut harness = viewer_harness();
    harness
        .state_mut()
        .apply(ViewerUpdate::Allowed(Permission::Control));
    harness.state_mut().apply(ViewerUpdate::Displays {
        displays: vec![display(0, "DP-1", 0)],
        shared: 0,
    });
    let ctx = harness.ctx.clone();
    harness.state_mut().show_frame(&ctx, &picture(0));
    settle(&mut harness);
    assert!(harness.state().has_picture());
    let _ = harness.take_actions_for_test();

    // Fit: the 64×48 picture is scaled up to fill the middle. Click a
    // quarter in from its left edge, half-way down.
    let rect = harness.state().picture_rect().unwrap();
    assert!(
        rect.width() > 64.0 * 5.0,
        "fit scales the picture up: {rect:?}"
    );
    assert!((rect.width() / rect.height() - 64.0 / 48.0).abs() < 0.01);
    let target = egui::pos2(rect.left() + rect.width() / 4.0, rect.center().y);
    click_at(&mut harness, target);
    let input: Vec<InputEvent> = harness
        .take_actions_for_test()
        .into_iter()
        .flat_map(|a| match a {
            ViewerAction::Input(events) => events,
            _ => Vec::new(),
        })
        .collect();
    let press = input
        .iter()
        .position(|e| matches!(e, InputEvent::ButtonDown(_)))
        .expect("the click reaches the host");
    let InputEvent::PointerMove(at) = &input[press - 1] else {
        panic!("a move before the press: {input:?}");
    };
    assert_eq!(at.display.as_str(), "DP-1");
    assert!(
        (at.x - 0.25).abs() < 0.02 && (at.y - 0.5).abs() < 0.02,
        "{at:?}"
    );

    // View only: the same click sends nothing.
    harness
        .state_mut()
        .apply(ViewerUpdate::PermissionChanged(Permission::ViewOnly));
    settle(&mut harness);
    let _ = harness.take_actions_for_test();
    click_at(&mut harness, target);
    let sent: Vec<_> = harness
        .take_actions_for_test()
        .into_iter()
        .filter(|a| matches!(a, ViewerAction::Input(e) if e.iter().any(|e| matches!(e, InputEvent::ButtonDown(_)))))
        .collect();
    assert!(sent.is_empty(), "view only: {sent:?}");
}

#[test]
fn keyboard_goes_to_the_host_only_while_the_picture_has_focus() {
    let mut harness = viewer_harness();
    harness
        .state_mut()
        .apply(ViewerUpdate::Allowed(Permission::Control));
    harness.state_mut().apply(ViewerUpdate::Displays {
        displays: vec![display(0, "DP-1", 0)],
        shared: 0,
    });
    harness.state_mut().show_chat = true;
    let ctx = harness.ctx.clone();
    harness.state_mut().show_frame(&ctx, &picture(0));
    settle(&mut harness);

    let texts = |harness: &mut Harness<'_, ViewerScreen>| -> Vec<String> {
        harness
            .take_actions_for_test()
            .into_iter()
            .flat_map(|a| match a {
                ViewerAction::Input(events) => events,
                _ => Vec::new(),
            })
            .filter_map(|e| match e {
                InputEvent::Text(t) => Some(t),
                _ => None,
            })
            .collect()
    };

    // Typing before the picture was clicked stays here.
    harness.event(egui::Event::Text("no".into()));
    settle(&mut harness);
    assert!(texts(&mut harness).is_empty());

    let centre = harness.state().picture_rect().unwrap().center();
    click_at(&mut harness, centre);
    harness.event(egui::Event::Text("hi".into()));
    settle(&mut harness);
    assert_eq!(texts(&mut harness), ["hi"]);

    // The chat field takes the keyboard: typing goes there, not to the host.
    harness
        .get_by_role_and_label(Role::TextInput, "Chat")
        .focus();
    settle(&mut harness);
    harness.event(egui::Event::Text("chat".into()));
    settle(&mut harness);
    assert!(texts(&mut harness).is_empty());
    assert_eq!(harness.state().chat.draft, "chat");
}

#[test]
fn forwarding_switch_stops_input() {
    let mut harness = viewer_harness();
    harness
        .state_mut()
        .apply(ViewerUpdate::Allowed(Permission::Control));
    harness.state_mut().apply(ViewerUpdate::Displays {
        displays: vec![display(0, "DP-1", 0)],
        shared: 0,
    });
    let ctx = harness.ctx.clone();
    harness.state_mut().show_frame(&ctx, &picture(0));
    settle(&mut harness);
    harness.get_by_label("Keyboard and mouse").click();
    settle(&mut harness);
    assert!(!harness.state().forward_input);
    let _ = harness.take_actions_for_test();
    let centre = harness.state().picture_rect().unwrap().center();
    click_at(&mut harness, centre);
    let input: Vec<_> = harness
        .take_actions_for_test()
        .into_iter()
        .filter(|a| matches!(a, ViewerAction::Input(_)))
        .collect();
    assert!(input.is_empty(), "switched off: {input:?}");
}

#[test]
fn viewer_chat_and_leave() {
    let mut harness = viewer_harness();
    harness
        .state_mut()
        .apply(ViewerUpdate::Chat("hello from the host".into()));
    settle(&mut harness);
    assert!(harness.query_by_label("hello from the host").is_some());
    harness.get_by_label("Leave").click();
    settle(&mut harness);
    assert_eq!(harness.take_actions_for_test(), [ViewerAction::Leave]);

    harness
        .state_mut()
        .apply(ViewerUpdate::Ended("you left".into()));
    settle(&mut harness);
    assert!(harness.query_by_label("The session has ended").is_some());
    harness.get_by_label("Back to the start screen").click();
    settle(&mut harness);
    assert_eq!(harness.take_actions_for_test(), [ViewerAction::Close]);
}

fn click_at(harness: &mut Harness<'_, ViewerScreen>, pos: egui::Pos2) {
    harness.event(egui::Event::PointerMoved(pos));
    settle(harness);
    for pressed in [true, false] {
        harness.event(egui::Event::PointerButton {
            pos,
            button: egui::PointerButton::Primary,
            pressed,
            modifiers: egui::Modifiers::NONE,
        });
        settle(harness);
    }
}

use crate::ui::transfers::TransferAction;
use fernsicht_net::transfer::TransferId;
use fernsicht_net::transfer::service::{Direction, Summary, TransferEvent};

/// A file dropped from the file manager, as the window backend hands it on.
#[derive(Debug)]
struct Dropped(std::path::PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &std::path::Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

fn summary(name: &str, files: usize, bytes: u64) -> Summary {
    Summary {
        name: name.into(),
        files,
        bytes,
    }
}

#[test]
fn files_dropped_on_the_viewer_go_to_the_host_with_progress_and_cancel() {
    let mut harness = viewer_harness();
    // Before the host allowed the connection, a drop sends nothing.
    harness
        .input_mut()
        .dropped_files
        .push(std::sync::Arc::new(Dropped("/home/ada/log.txt".into())));
    settle(&mut harness);
    assert_eq!(harness.take_actions_for_test(), []);

    harness
        .state_mut()
        .apply(ViewerUpdate::Allowed(Permission::ViewOnly));
    for p in ["/home/ada/log.txt", "/home/ada/screenshots"] {
        harness
            .input_mut()
            .dropped_files
            .push(std::sync::Arc::new(Dropped(p.into())));
    }
    settle(&mut harness);
    assert_eq!(
        harness.take_actions_for_test(),
        [ViewerAction::SendFiles(vec![
            "/home/ada/log.txt".into(),
            "/home/ada/screenshots".into()
        ])]
    );

    let (peer, id) = (ChannelId(1), TransferId([7; 16]));
    for event in [
        TransferEvent::Offering {
            peer,
            id,
            direction: Direction::Send,
            summary: summary("log.txt and 1 more", 9, 200_000_000),
        },
        TransferEvent::Started {
            peer,
            id,
            direction: Direction::Send,
            summary: summary("log.txt and 1 more", 9, 200_000_000),
            resumed: 0,
            folder: None,
        },
        TransferEvent::Progress {
            peer,
            id,
            done: 50_000_000,
            total: 200_000_000,
            bytes_per_sec: 25_000_000.0,
        },
    ] {
        harness.state_mut().apply(ViewerUpdate::Transfer(event));
    }
    settle(&mut harness);
    assert!(
        harness
            .query_by_label("Sending \"log.txt and 1 more\"")
            .is_some()
    );
    assert!(
        harness
            .query_by_label("50.0 MB of 200.0 MB · 25.0 MB/s · 6 s left")
            .is_some()
    );
    harness.get_by_label("Cancel").click();
    settle(&mut harness);
    assert_eq!(
        harness.take_actions_for_test(),
        [ViewerAction::Transfer(TransferAction::Cancel(peer, id))]
    );

    // Files the host parked at the relay can be downloaded.
    harness
        .state_mut()
        .apply(ViewerUpdate::Transfer(TransferEvent::ParkedAvailable {
            file: 42,
            id: TransferId([9; 16]),
            summary: summary("setup.exe", 1, 3_000_000),
        }));
    settle(&mut harness);
    assert!(harness.query_by_label("setup.exe (3.0 MB)").is_some());
    harness.get_by_label("Download…").click();
    settle(&mut harness);
    assert_eq!(
        harness.take_actions_for_test(),
        [ViewerAction::Transfer(TransferAction::Fetch(42))]
    );
}

#[test]
fn the_host_answers_an_offer_and_sends_or_parks_from_its_panel() {
    let mut harness = host_harness(HostScreen::new("", None));
    harness
        .state_mut()
        .apply(HostUpdate::SessionNumber(number(48213)));
    harness
        .state_mut()
        .apply(connected(3, "Bob", Permission::Control, LinkKind::Relayed));
    let id = TransferId([3; 16]);
    harness
        .state_mut()
        .apply(HostUpdate::Transfer(TransferEvent::Offered {
            peer: ChannelId(3),
            id,
            summary: summary("installer.msi", 1, 40_000_000),
        }));
    harness.run();
    assert!(
        harness
            .query_by_label("Incoming: \"installer.msi\" (1 files, 40.0 MB)")
            .is_some()
    );
    harness.get_by_label("Decline").click();
    harness.run();
    assert_eq!(
        harness.take_actions_for_test(),
        [HostAction::Transfer(TransferAction::Decline(
            ChannelId(3),
            id
        ))]
    );
    assert!(harness.query_by_label("Decline").is_none(), "answered once");

    harness.get_by_label("Send files…").click();
    harness.run();
    harness.get_by_label("Park a file…").click();
    harness.run();
    assert_eq!(
        harness.take_actions_for_test(),
        [HostAction::PickFilesToSend, HostAction::PickFileToPark]
    );
}
