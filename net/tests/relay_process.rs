//! The `fernsicht-relay` binary as a real process: start-up line, numbers
//! that survive a crash, and a clear error when its store is taken.
#![allow(clippy::unwrap_used)] // integration tests: a failed step is a failed test

use fernsicht_net::SessionNumber;
use fernsicht_net::control::{ClientRequest, RELAY_PROTOCOL, RelayEvent};
use fernsicht_net::tls::{Fingerprint, RelayTrust};
use fernsicht_net::transport::connect::{ConnectOptions, connect_relay};
use fernsicht_net::transport::{FrameReader, FrameWriter};
use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

struct RelayProcess {
    child: Child,
    addr: SocketAddr,
    fingerprint: Fingerprint,
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(data: &Path) -> RelayProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fernsicht-relay"))
        .args(["--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let mut cert = String::new();
    out.read_line(&mut cert).unwrap();
    let fingerprint = cert
        .trim()
        .strip_prefix("certificate ")
        .unwrap_or_else(|| panic!("unexpected second line: {cert:?}"))
        .parse()
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .parse()
        .unwrap();
    RelayProcess {
        child,
        addr,
        fingerprint,
    }
}

/// Registers one host and returns its number.
async fn register(relay: &RelayProcess) -> SessionNumber {
    let options = ConnectOptions {
        trust: RelayTrust::Pinned(relay.fingerprint),
        fallback_ports: Vec::new(),
        ..Default::default()
    };
    let link = connect_relay(&relay.addr.into(), &options).await.unwrap();
    let (r, w) = tokio::io::split(link.stream);
    let (mut r, mut w) = (FrameReader::new(r), FrameWriter::new(w));
    w.write_frame(
        &ClientRequest::Register {
            protocol: RELAY_PROTOCOL,
        }
        .to_frame(),
    )
    .await
    .unwrap();
    let event = RelayEvent::from_frame(&r.read_frame().await.unwrap().unwrap()).unwrap();
    let RelayEvent::Registered { number } = event else {
        panic!("{event:?}")
    };
    number
}

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
