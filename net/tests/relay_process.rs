//! The `fernsicht-relay` binary as a real process: start-up line, numbers
//! that survive a crash, a clear error when its store is taken, and its
//! settings from the command line, the environment and a file.
#![allow(clippy::unwrap_used)] // integration tests: a failed step is a failed test

mod common;

use common::process::*;
use fernsicht_net::control::RelayEvent;
use std::collections::HashSet;
use std::process::Command;

#[tokio::test]
async fn numbers_survive_a_crash_and_never_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let mut seen = HashSet::new();
    for round in 0..2 {
        // SIGKILL at the end of each round: no clean shutdown to rely on.
        let relay = start(dir.path());
        for _ in 0..1000 {
            let n = register(&relay).await;
            assert!(seen.insert(n), "{n} handed out twice (round {round})");
            assert_eq!(n.digits(), 5);
        }
    }
    assert_eq!(seen.len(), 2000);
}

#[tokio::test]
async fn a_second_relay_on_the_same_data_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let _first = start(dir.path());
    let out = Command::new(env!("CARGO_BIN_EXE_fernsicht-relay"))
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("starting the relay"), "{err}");
    assert!(err.contains(&dir.path().display().to_string()), "{err}");
}

#[tokio::test]
async fn settings_come_from_the_command_line_then_the_environment_then_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let file = dir.path().join("relay.toml");
    std::fs::write(
        &file,
        format!(
            "# a settings file as an operator writes it\n\
             listen = [\"127.0.0.1:9\"]\n\
             data = \"{}\"\n\
             max-viewers = 5\n\
             metrics = \"127.0.0.1:0\"\n",
            data.display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fernsicht-relay"));
    cmd.arg("--config")
        .arg(&file)
        .args(["--listen", "127.0.0.1:0"])
        .env("FERNSICHT_RELAY_MAX_VIEWERS", "1");
    let (relay, metrics) = spawn(cmd);
    // The command line's address, the file's metrics and data directory.
    assert_ne!(relay.addr.port(), 9);
    assert!(metrics.is_some(), "metrics endpoint from the file");
    assert!(data.join("numbers.redb").exists());
    // The environment's one viewer per session beats the file's five.
    let (number, _host) = register_and_stay(&relay).await;
    let (first, _keep) = join(&relay, number).await;
    assert!(matches!(first, RelayEvent::Joined { .. }), "{first:?}");
    let (second, _keep2) = join(&relay, number).await;
    assert!(
        matches!(
            second,
            RelayEvent::Refused {
                reason: fernsicht_net::control::JoinRefusal::SessionFull
            }
        ),
        "{second:?}"
    );
}

#[test]
fn a_wrong_key_in_the_settings_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relay.toml");
    std::fs::write(&file, "max-viewers = 4\nmax_viewer = 3\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_fernsicht-relay"))
        .arg("--config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_viewer"), "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");
}

#[test]
fn help_documents_every_setting_and_its_environment_variable() {
    let out = Command::new(env!("CARGO_BIN_EXE_fernsicht-relay"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for option in [
        "config",
        "listen",
        "cert",
        "key",
        "name",
        "data",
        "max-viewers",
        "store-session-mib",
        "store-total-mib",
        "store-files",
        "retention-days",
        "metrics",
        "log-format",
        "rendezvous",
        "redis",
        "public",
    ] {
        assert!(
            help.contains(&format!("--{option}")),
            "--{option} missing:\n{help}"
        );
        let env = format!(
            "FERNSICHT_RELAY_{}",
            option.to_uppercase().replace('-', "_")
        );
        assert!(help.contains(&env), "{env} missing:\n{help}");
    }
    assert!(help.contains("records"), "the records command:\n{help}");
}
