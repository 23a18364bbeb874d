//! Several relays as one service: two (or three) real relay processes that
//! share a real `redis-server`, started by the test on a Unix socket.
//!
//! - a host on relay A and a viewer who asked relay B end up in one
//!   working session (B sends the viewer to A);
//! - numbers stay unique across both relays under concurrent registration,
//!   and across a relay's crash and restart;
//! - a guesser's back-off follows it from relay to relay;
//! - killing a relay drops only its sessions, and their host and viewer
//!   carry on through the other relay without a new number.
#![allow(clippy::unwrap_used)] // integration tests: a failed step is a failed test

mod common;

use common::process::{RelayProcess, join, register_and_stay, spawn};
use common::*;
use fernsicht_net::SessionNumber;
use fernsicht_net::client::{HostEvent, HostSession, ViewerEvent, ViewerSession};
use fernsicht_net::control::{JoinRefusal, RelayEvent};
use fernsicht_net::message::{Message, Permission};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `redis-server` of the test's own, on a Unix socket in a temporary
/// directory (no port to collide with), with an append-only file as a
/// family's Redis should have.
struct Redis {
    child: Child,
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Redis {
    fn start() -> Redis {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("redis.sock");
        let child = Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "yes"])
            .arg("--unixsocket")
            .arg(&socket)
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server) must be installed");
        let started = std::time::Instant::now();
        while !socket.exists() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not open its socket"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis {
            child,
            socket,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap()
    }

    /// The relay that holds session `n`, as the family's map says.
    async fn owner(&self, n: SessionNumber) -> Option<String> {
        redis::cmd("HGET")
            .arg(format!("fernsicht:session:{n}"))
            .arg("relay")
            .query_async(&mut self.conn().await)
            .await
            .unwrap()
    }

    async fn is_burned(&self, n: SessionNumber) -> bool {
        redis::cmd("SISMEMBER")
            .arg(format!("fernsicht:burned:{}", n.digits()))
            .arg(n.get())
            .query_async(&mut self.conn().await)
            .await
            .unwrap()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A relay process of the family, keeping its data in `data`.
fn family_relay(redis: &Redis, data: &Path) -> RelayProcess {
    spawn(family_command(redis, data)).0
}

fn family_command(redis: &Redis, data: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fernsicht-relay"));
    cmd.args(["--listen", "127.0.0.1:0", "--rendezvous", "off"])
        .args(["--public", "127.0.0.1:0", "--redis"])
        .arg(redis.url())
        .arg("--data")
        .arg(data);
    cmd
}

/// The value of `metric` at the relay's metrics endpoint.
async fn metric(endpoint: &str, metric: &str) -> u64 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(endpoint).await.unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).await.unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix(metric)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{metric} missing:\n{body}"))
}

/// Relays A and B of one family, and their data directories.
fn two_relays(redis: &Redis) -> (RelayProcess, RelayProcess, [tempfile::TempDir; 2]) {
    let data = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let a = family_relay(redis, data[0].path());
    let b = family_relay(redis, data[1].path());
    (a, b, data)
}

fn target(relay: &RelayProcess) -> Target {
    Target {
        addr: relay.addr.into(),
        connect: pinned(relay.fingerprint),
    }
}

fn chat(text: &str) -> Message {
    Message::Chat { text: text.into() }
}

/// A session whose host registered at `host_at` and whose viewer asked
/// `viewer_at`, allowed, with `family` as both sides' other relays.
async fn session(
    host_at: &Target,
    viewer_at: &Target,
    family: &[Target],
) -> (HostSession, ViewerSession) {
    let routes: Vec<_> = family
        .iter()
        .map(|t| (t.addr.clone(), t.connect.clone()))
        .collect();
    let mut host = fernsicht_net::client::start_host(fernsicht_net::client::HostOptions {
        family: routes.clone(),
        relay: host_at.addr.clone(),
        connect: host_at.connect.clone(),
        handshake: fernsicht_net::handshake::HandshakeConfig::with_password(None),
        direct: None,
    })
    .await
    .unwrap();
    let mut options = viewer_options(viewer_at, host.number, "helper", None);
    options.family = routes;
    let mut v = fernsicht_net::client::start_viewer(options).await.unwrap();
    let HostEvent::ViewerRequest { viewer: id, .. } = host_request(&mut host).await else {
        unreachable!()
    };
    host.handle.decide(id, Some(Permission::Control));
    until(&mut v.events, |e| matches!(e, ViewerEvent::Allowed(_))).await;
    (host, v)
}

/// One chat each way, seen on the other side.
async fn chat_both_ways(host: &mut HostSession, v: &mut ViewerSession, tag: &str) {
    host.handle.broadcast(&chat(&format!("to viewer {tag}")));
    until(&mut v.events, |e| {
        matches!(e, ViewerEvent::Message(Message::Chat { text }) if *text == format!("to viewer {tag}"))
    })
    .await;
    v.handle.send(chat(&format!("to host {tag}")));
    until(&mut host.events, |e| {
        matches!(e, HostEvent::Message { message: Message::Chat { text }, .. } if *text == format!("to host {tag}"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_at_relay_b_reaches_the_host_at_relay_a() {
    let redis = Redis::start();
    let (a, b, _data) = two_relays(&redis);
    let (ta, tb) = (target(&a), target(&b));

    let (mut host, mut v) = session(&ta, &tb, &[]).await;
    assert_eq!(redis.owner(host.number).await, Some(a.addr.to_string()));
    chat_both_ways(&mut host, &mut v, "across relays").await;
    // The viewer's link runs to A, whose certificate B vouched for.
    assert_eq!(v.link.fingerprint, a.fingerprint);

    // Relay B answers a raw join to A's session with a redirect naming A
    // and its certificate.
    let (event, _link) = join(&b, host.number).await;
    assert_eq!(
        event,
        RelayEvent::Redirect {
            relay: a.addr.to_string(),
            fingerprint: a.fingerprint.0
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_stay_unique_across_relays_under_concurrency_and_restarts() {
    let redis = Redis::start();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut seen = HashSet::new();
    let b = family_relay(&redis, db.path());
    for round in 0..2 {
        // Relay A is killed (no clean shutdown) at the end of each round
        // and comes back on the same data.
        let a = family_relay(&redis, da.path());
        // 400 hosts per relay per round, 32 at a time on each: without the
        // shared store, two relays drawing from the 90 000 five-digit
        // numbers would all but surely repeat one (1 600 draws).
        let mut clients = Vec::new();
        for relay in [&a, &b] {
            for _ in 0..32 {
                clients.push(async move {
                    let mut got = Vec::new();
                    for _ in 0..13 {
                        got.push(register_and_stay(relay).await.0);
                    }
                    got
                });
            }
        }
        for numbers in futures_util::future::join_all(clients).await {
            for n in numbers {
                assert!(seen.insert(n), "{n} handed out twice (round {round})");
                assert!(
                    redis.is_burned(n).await,
                    "{n} not burned in the shared store"
                );
            }
        }
    }
    assert_eq!(seen.len(), 2 * 2 * 32 * 13);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guessers_back_off_follows_it_to_the_other_relay() {
    let redis = Redis::start();
    let (a, b, _data) = two_relays(&redis);
    let (real, _host) = register_and_stay(&b).await;
    // Wrong numbers at A until A makes us wait.
    let mut wrong = 0;
    loop {
        let guess = SessionNumber::new(99_999 - wrong).unwrap();
        let (event, _) = join(&a, guess).await;
        match event {
            RelayEvent::Refused {
                reason: JoinRefusal::NoSuchSession,
            } => wrong += 1,
            RelayEvent::Refused {
                reason: JoinRefusal::BackOff { .. },
            } => break,
            other => panic!("{other:?}"),
        }
        assert!(wrong < 30, "no back-off after {wrong} wrong numbers");
    }
    // Keep guessing at A until the wait is long, then B refuses even the
    // real number, which it holds itself.
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..6 {
        let _ = join(&a, SessionNumber::new(99_000).unwrap()).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (event, _) = join(&b, real).await;
    assert!(
        matches!(
            event,
            RelayEvent::Refused {
                reason: JoinRefusal::BackOff { .. }
            }
        ),
        "{event:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_relay_moves_only_its_sessions_to_the_other() {
    relay_a_goes(|a| a.kill().unwrap()).await;
}

/// A relay stopped as systemd stops it (SIGINT) hands its sessions over at
/// once: a rolling restart ends no session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_is_stopped_hands_its_sessions_over() {
    relay_a_goes(|a| {
        let status = Command::new("kill")
            .args(["-INT", &a.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    })
    .await;
}

/// Sessions 1 (on A) and 2 (on B); `stop` ends relay A's process.
async fn relay_a_goes(stop: impl FnOnce(&mut Child)) {
    let redis = Redis::start();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = family_relay(&redis, da.path());
    let mut with_metrics = family_command(&redis, db.path());
    with_metrics.args(["--metrics", "127.0.0.1:0"]);
    let (b, metrics) = spawn(with_metrics);
    let metrics = metrics.unwrap();
    let (ta, tb) = (target(&a), target(&b));

    let (mut host1, mut v1) = session(&ta, &ta, std::slice::from_ref(&tb)).await;
    let (mut host2, mut v2) = session(&tb, &tb, std::slice::from_ref(&ta)).await;
    chat_both_ways(&mut host1, &mut v1, "1 before").await;
    chat_both_ways(&mut host2, &mut v2, "2 before").await;

    stop(&mut a.child);
    a.child.wait().unwrap();

    // Session 1 carries on through B, same number, same keys, once B sees
    // A gone and takes the session over.
    until(&mut v1.events, |e| matches!(e, ViewerEvent::Reconnecting)).await;
    until(&mut host1.events, |e| matches!(e, HostEvent::Reconnected)).await;
    until(&mut v1.events, |e| matches!(e, ViewerEvent::Resumed)).await;
    chat_both_ways(&mut host1, &mut v1, "1 after").await;
    assert_eq!(redis.owner(host1.number).await, Some(b.addr.to_string()));
    assert_eq!(
        metric(&metrics, "fernsicht_relay_sessions_taken_over_total").await,
        1
    );

    // Session 2 never noticed.
    chat_both_ways(&mut host2, &mut v2, "2 after").await;
    while let Ok(e) = v2.events.try_recv() {
        assert!(
            !matches!(e, ViewerEvent::Reconnecting | ViewerEvent::Ended(_)),
            "{e:?}"
        );
    }
    while let Ok(e) = host2.events.try_recv() {
        assert!(
            !matches!(e, HostEvent::Reconnecting | HostEvent::Ended(_)),
            "{e:?}"
        );
    }
}
