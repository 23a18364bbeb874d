//! What a relay keeps after a full session: a real relay process, a host
//! sharing a real X screen, helpers that chat, fetch a parked file and send
//! one. Every piece of content carries a canary string; afterwards neither
//! the relay's data directory nor a byte of its logs (at trace level) may
//! hold one, while its participant records do hold what they should (the
//! address, the number, the roles) — and its metrics counted the session.
#![allow(clippy::unwrap_used)] // integration tests: a failed step is a failed test

use fernsicht_capture::testing::{Painter, Xvfb, test_pattern};
use fernsicht_tests::{Proc, workspace_bin};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

const CHAT: &str = "CANARY-chat-4f1e9b";
const HOST_CHAT: &str = "CANARY-answer-77c2d0";
const VIEWER_NAME: &str = "CANARY-name-a93e51";
const PARKED_NAME: &str = "CANARY-parked-0be8c4.txt";
const PARKED_CONTENT: &str = "CANARY-parked-content-5d7a13 ";
const SENT_NAME: &str = "CANARY-sent-e61f27.txt";
const SENT_CONTENT: &str = "CANARY-sent-content-c3b9d8 ";

fn canaries() -> [&'static str; 7] {
    [
        CHAT,
        HOST_CHAT,
        VIEWER_NAME,
        PARKED_NAME,
        PARKED_CONTENT,
        SENT_NAME,
        SENT_CONTENT,
    ]
}

/// Every file below `dir`, with its bytes.
fn files_below(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

/// Fails if any canary is in any file below `dir` (file names included).
fn assert_no_canary_below(dir: &Path, when: &str) -> usize {
    let files = files_below(dir);
    for (path, bytes) in &files {
        for canary in canaries() {
            let name = path.to_string_lossy();
            assert!(
                !name.contains(canary),
                "{when}: {name} is named after content"
            );
            assert!(
                !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
                "{when}: {} holds {canary:?}",
                path.display()
            );
        }
    }
    files.len()
}

fn scrape(addr: &str) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "{response}");
    response
}

fn metric(scraped: &str, name: &str) -> u64 {
    scraped
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {scraped}"))
        .parse::<f64>()
        .unwrap() as u64
}

fn app(args: &[&str], display: Option<&str>, home: &Path) -> Proc {
    let mut cmd = Command::new(workspace_bin("fernsicht"));
    cmd.args(args)
        .env_remove("DISPLAY")
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home);
    if let Some(d) = display {
        cmd.env("DISPLAY", d);
    }
    Proc::spawn(cmd)
}

#[test]
fn after_a_full_session_the_relay_holds_no_content_only_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("relay");
    let home = dir.path().join("home");
    let files = dir.path().join("files");
    let inbox = dir.path().join("inbox");
    let downloads = dir.path().join("downloads");
    for d in [&home, &files, &inbox, &downloads] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::write(files.join(PARKED_NAME), PARKED_CONTENT.repeat(4000)).unwrap();
    std::fs::write(files.join(SENT_NAME), SENT_CONTENT.repeat(4000)).unwrap();

    let mut relay = Command::new(workspace_bin("fernsicht-relay"));
    relay
        .args(["--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0"])
        .arg("--data")
        .arg(&data)
        // Everything the relay could possibly log.
        .env("RUST_LOG", "trace");
    let mut relay = Proc::spawn(relay);
    let addr = relay
        .expect("listening on ")
        .trim_start_matches("listening on ")
        .to_owned();
    let metrics = relay
        .expect("metrics on http://")
        .trim_start_matches("metrics on http://")
        .trim_end_matches("/metrics")
        .to_owned();
    let pin = relay
        .expect("certificate ")
        .trim_start_matches("certificate ")
        .to_owned();
    let to_relay = [
        "--relay",
        &addr,
        "--relay-pin",
        &pin,
        "--headless",
        "--no-direct",
    ];

    // A screen with something on it, shared by the host.
    let xvfb = Xvfb::start(320, 240).unwrap();
    let painter = Painter::connect(xvfb.display()).unwrap();
    painter
        .put_bgrx(0, 0, 320, 240, &test_pattern(320, 240, 3))
        .unwrap();
    painter.sync().unwrap();
    let inbox_arg = inbox.to_str().unwrap();
    let mut host_args = vec!["host", "--accept", "control", "--inbox", inbox_arg];
    host_args.extend(to_relay);
    let mut host = app(&host_args, Some(xvfb.display()), &home);
    let number = host
        .expect("session ")
        .trim_start_matches("session ")
        .to_owned();

    // A helper who chats, sees the screen and fetches a parked file.
    let mut viewer_args = vec![
        "view",
        &number,
        "--name",
        VIEWER_NAME,
        "--save-to",
        downloads.to_str().unwrap(),
    ];
    viewer_args.extend(to_relay);
    let mut viewer = app(&viewer_args, None, &home);
    viewer.expect("allowed control");
    host.expect_containing(&format!("{VIEWER_NAME}\" code"));
    let scraped = scrape(&metrics);
    assert_eq!(metric(&scraped, "fernsicht_relay_sessions"), 1);
    assert_eq!(metric(&scraped, "fernsicht_relay_viewers"), 1);
    viewer.type_line(CHAT);
    host.expect_containing(CHAT);
    host.type_line(HOST_CHAT);
    viewer.expect(&format!("host: {HOST_CHAT}"));
    host.type_line(&format!("/park {}", files.join(PARKED_NAME).display()));
    host.expect("parked ");
    viewer.expect("transfer done ");
    assert_eq!(
        std::fs::read(downloads.join(PARKED_NAME)).unwrap(),
        PARKED_CONTENT.repeat(4000).as_bytes()
    );
    // The scan finds a canary where there is one: in the helper's downloads.
    let downloads_scan = downloads.clone();
    assert!(
        std::panic::catch_unwind(move || assert_no_canary_below(&downloads_scan, "control"))
            .is_err()
    );
    // The parked file sits in the relay's store now, as ciphertext.
    let stored = assert_no_canary_below(&data, "during the session");
    assert!(stored > 0);

    // A second helper sends a file to the host and leaves.
    let sent = files.join(SENT_NAME);
    let mut sender_args = vec!["view", &number, "--send", sent.to_str().unwrap()];
    sender_args.extend(to_relay);
    let mut sender = app(&sender_args, None, &home);
    host.expect("transfer done ");
    assert_eq!(sender.exit_code(), 0);
    assert_eq!(
        std::fs::read(inbox.join(SENT_NAME)).unwrap(),
        SENT_CONTENT.repeat(4000).as_bytes()
    );

    let scraped = scrape(&metrics);
    assert_eq!(metric(&scraped, "fernsicht_relay_sessions_opened_total"), 1);
    assert_eq!(metric(&scraped, "fernsicht_relay_viewers_joined_total"), 2);
    // The sent file went through the relay, and the screen with it (the
    // parked one went into the store, which is not forwarding).
    let forwarded = metric(&scraped, "fernsicht_relay_bytes_forwarded_total");
    assert!(
        forwarded > (SENT_CONTENT.len() * 4000) as u64,
        "{forwarded}"
    );
    for canary in canaries() {
        assert!(!scraped.contains(canary));
    }

    viewer.type_line("/quit");
    let frames = viewer.expect("frames ");
    assert_ne!(frames, "frames 0", "the screen reached the helper");
    host.type_line("/quit");
    assert_eq!(host.exit_code(), 0);

    let logs = relay.interrupt();
    assert!(logs.len() > 10, "trace logs were written: {logs:#?}");
    for line in &logs {
        for canary in canaries() {
            assert!(
                !line.contains(canary),
                "the relay logged {canary:?}: {line}"
            );
        }
        assert!(
            !line.contains(&number) || !line.contains("127.0.0.1"),
            "an address beside a number in the log: {line}"
        );
    }
    assert_no_canary_below(&data, "after the session");

    // What the relay does keep: who connected from where, for which
    // session, and when.
    let records = Command::new(workspace_bin("fernsicht-relay"))
        .arg("--data")
        .arg(&data)
        .arg("records")
        .output()
        .unwrap();
    assert!(records.status.success(), "{records:?}");
    let records = String::from_utf8(records.stdout).unwrap();
    let lines: Vec<&str> = records.lines().collect();
    assert_eq!(lines.len(), 3, "host and two helpers: {records}");
    for (line, role) in lines.iter().zip(["host", "viewer", "viewer"]) {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 5, "{line}");
        assert!(
            fields[0].starts_with("20") && fields[0].ends_with('Z'),
            "{line}"
        );
        assert!(fields[1].starts_with("20"), "ended: {line}");
        assert_eq!(&fields[2..], [role, number.as_str(), "127.0.0.1"], "{line}");
    }
}
