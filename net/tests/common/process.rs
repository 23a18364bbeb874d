//! The relay binary as a process, and the relay protocol spoken raw: for
//! the tests that start, kill and restart real relays.
#![allow(dead_code, clippy::unwrap_used)] // test support: a failed set-up is a failed test

use fernsicht_net::SessionNumber;
use fernsicht_net::control::{ClientRequest, RELAY_PROTOCOL, RelayEvent};
use fernsicht_net::tls::{Fingerprint, RelayTrust};
use fernsicht_net::transport::connect::{ConnectOptions, connect_relay};
use fernsicht_net::transport::{FrameReader, FrameWriter};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct RelayProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub fingerprint: Fingerprint,
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start(data: &Path) -> RelayProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fernsicht-relay"));
    cmd.args(["--listen", "127.0.0.1:0", "--data"]).arg(data);
    spawn(cmd).0
}

/// Starts the relay and reads its start-up lines: the address, then maybe
/// the metrics endpoint, then the certificate. Returns the metrics address
/// too, if there is one.
pub fn spawn(mut cmd: Command) -> (RelayProcess, Option<String>) {
    let mut child = cmd
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut next = || {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        line.trim().to_owned()
    };
    let line = next();
    let addr = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .parse()
        .unwrap();
    let mut cert = next();
    let mut metrics = None;
    if let Some(m) = cert.strip_prefix("metrics on http://") {
        metrics = Some(m.trim_end_matches("/metrics").to_owned());
        cert = next();
    }
    let fingerprint = cert
        .strip_prefix("certificate ")
        .unwrap_or_else(|| panic!("unexpected line: {cert:?}"))
        .parse()
        .unwrap();
    (
        RelayProcess {
            child,
            addr,
            fingerprint,
        },
        metrics,
    )
}

pub async fn link(
    relay: &RelayProcess,
) -> (
    FrameReader<tokio::io::ReadHalf<fernsicht_net::transport::BoxStream>>,
    FrameWriter<tokio::io::WriteHalf<fernsicht_net::transport::BoxStream>>,
) {
    let options = ConnectOptions {
        trust: RelayTrust::Pinned(relay.fingerprint),
        fallback_ports: Vec::new(),
        ..Default::default()
    };
    let link = connect_relay(&relay.addr.into(), &options).await.unwrap();
    let (r, w) = tokio::io::split(link.stream);
    (FrameReader::new(r), FrameWriter::new(w))
}

/// A viewer's join: the relay's first answer, and the link to keep it.
pub async fn join(relay: &RelayProcess, number: SessionNumber) -> (RelayEvent, impl Drop) {
    let (mut r, mut w) = link(relay).await;
    w.write_frame(
        &ClientRequest::Join {
            protocol: RELAY_PROTOCOL,
            number,
        }
        .to_frame(),
    )
    .await
    .unwrap();
    let event = RelayEvent::from_frame(&r.read_frame().await.unwrap().unwrap()).unwrap();
    (event, Box::new((r, w)))
}

/// Registers one host and returns its number.
pub async fn register(relay: &RelayProcess) -> SessionNumber {
    register_and_stay(relay).await.0
}

/// Registers one host and keeps its link open.
pub async fn register_and_stay(relay: &RelayProcess) -> (SessionNumber, impl Drop) {
    let (mut r, mut w) = link(relay).await;
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
    (number, Box::new((r, w)))
}
