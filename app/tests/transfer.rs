//! File transfer as a user drives it from the terminal: `fernsicht view
//! --send` and `fernsicht host --inbox`, real processes, a relay on
//! loopback; and on a real X server, whether the picture keeps flowing
//! while a large file goes the same way. Every session here stays on the
//! relay (`--no-direct`): the relay is the path under test.
#![allow(clippy::unwrap_used)] // integration tests: a failed step is a failed test

mod common;

use common::{Relayed, blocking, relay};
use fernsicht_capture::testing::{Painter, Xvfb};
use rand::{RngCore, SeedableRng};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

fn random_file(path: &Path, len: usize, seed: u64) {
    let mut data = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut data);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

fn b3(path: &Path) -> String {
    blake3::hash(&std::fs::read(path).unwrap())
        .to_hex()
        .to_string()
}

/// The number after `key` in a line of `key value` pairs.
fn field(line: &str, key: &str) -> u64 {
    let mut words = line.split_whitespace();
    while let Some(w) = words.next() {
        if w == key {
            return words.next().unwrap().parse().unwrap();
        }
    }
    panic!("no {key} in {line:?}")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_200_mib_file_and_a_folder_tree_arrive_bit_identical_through_the_relay() {
    let (relay, _dir) = relay().await;
    let relayed = Relayed::of(&relay);
    blocking(move || {
        let src = tempfile::tempdir().unwrap();
        let inbox = tempfile::tempdir().unwrap();
        let big = src.path().join("big.bin");
        random_file(&big, 200 << 20, 1);
        let tree = ["tree/a.txt", "tree/sub/b.bin", "tree/sub/deeper/c.bin"];
        for (i, p) in tree.iter().enumerate() {
            random_file(
                &src.path().join(p),
                [12, 300_000, 1 << 20][i],
                10 + i as u64,
            );
        }
        let (mut host, number) = relayed.host(&[
            "--no-direct",
            "--accept",
            "view",
            "--inbox",
            inbox.path().to_str().unwrap(),
        ]);
        let mut viewer = relayed.view(
            &number,
            &[
                "--no-direct",
                "--send",
                big.to_str().unwrap(),
                "--send",
                src.path().join("tree").to_str().unwrap(),
            ],
        );
        // --inbox: taken without asking.
        let started = host.expect("transfer started ");
        assert!(started.ends_with("receive resumed 0 bytes"), "{started}");
        let offering = viewer.expect("transfer offering ");
        assert!(
            offering.ends_with("send \"big.bin and 1 more\" 4 files 211063788 bytes"),
            "{offering}"
        );
        let sent = viewer.expect("transfer done ");
        assert!(sent.contains(" send "), "{sent}");
        // 800 chunks of the big file, 1 + 2 + 4 of the tree, each once.
        assert_eq!(field(&sent, "chunks-sent"), 807, "{sent}");
        assert_eq!(field(&sent, "resent"), 0);
        assert_eq!(
            field(&sent, "bytes"),
            (200 << 20) + 12 + 300_000 + (1 << 20)
        );
        let received = host.expect("transfer done ");
        assert!(received.contains(" receive "), "{received}");
        assert_eq!(
            viewer.exit_code(),
            0,
            "the viewer leaves once the files are sent"
        );

        assert_eq!(b3(&inbox.path().join("big.bin")), b3(&big));
        for p in tree {
            assert_eq!(b3(&inbox.path().join(p)), b3(&src.path().join(p)), "{p}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_helper_killed_mid_transfer_sends_only_the_missing_chunks_when_it_sends_again() {
    let (relay, _dir) = relay().await;
    let relayed = Relayed::of(&relay);
    blocking(move || {
        let src = tempfile::tempdir().unwrap();
        let inbox = tempfile::tempdir().unwrap();
        let big = src.path().join("big.bin");
        random_file(&big, 128 << 20, 6);
        let total_chunks = (128 << 20) / (256 << 10);
        let (mut host, number) = relayed.host(&[
            "--no-direct",
            "--accept",
            "view",
            "--inbox",
            inbox.path().to_str().unwrap(),
        ]);
        let send =
            |number: &str| relayed.view(number, &["--no-direct", "--send", big.to_str().unwrap()]);
        let first = send(&number);
        // Killed (SIGKILL: no goodbye) once part of the file is at the host.
        loop {
            let line = host.expect("transfer ");
            assert!(!line.starts_with("transfer done"), "done before the kill");
            if line.starts_with("transfer progress") {
                let done: u64 = line
                    .split_whitespace()
                    .nth(3)
                    .unwrap()
                    .split('/')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                if done > 0 {
                    break;
                }
            }
        }
        drop(first);
        assert!(inbox.path().join(".fernsicht-partial").is_dir());

        // Sent again from a new process: the relay still keeps the dead
        // one's place (it might come back), and the new one takes over.
        let mut second = send(&number);
        let lost = host.expect("transfer failed ");
        assert!(lost.contains("the connection was lost"), "{lost}");
        let started = host.expect("transfer started ");
        let resumed = field(&started, "resumed");
        assert!(resumed > 0 && resumed < 128 << 20, "{started}");
        let done = second.expect("transfer done ");
        let skipped = field(&done, "skipped");
        // Exactly what the host had verified on disk is left out.
        assert_eq!(skipped * (256 << 10), resumed, "{done}");
        assert_eq!(
            field(&done, "chunks-sent"),
            total_chunks - skipped,
            "{done}"
        );
        assert_eq!(field(&done, "resent"), 0, "{done}");
        host.expect("transfer done ");
        assert_eq!(b3(&inbox.path().join("big.bin")), b3(&big));
        assert!(!inbox.path().join(".fernsicht-partial").exists());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn files_the_host_sends_or_parks_reach_the_viewer_and_offers_without_a_folder_are_declined() {
    let (relay, _dir) = relay().await;
    let relayed = Relayed::of(&relay);
    blocking(move || {
        let src = tempfile::tempdir().unwrap();
        let downloads = tempfile::tempdir().unwrap();
        random_file(&src.path().join("report.pdf"), 700_000, 3);
        random_file(&src.path().join("setup.exe"), 1_500_000, 4);
        // Already there: must not be overwritten.
        std::fs::write(downloads.path().join("report.pdf"), b"mine").unwrap();
        let (mut host, number) = relayed.host(&["--no-direct", "--accept", "view"]);
        let mut viewer = relayed.view(
            &number,
            &[
                "--no-direct",
                "--save-to",
                downloads.path().to_str().unwrap(),
            ],
        );
        viewer.expect("allowed ");
        host.expect("connected #1");
        host.type_line(&format!(
            "/send {}",
            src.path().join("report.pdf").display()
        ));
        let started = viewer.expect("transfer started ");
        let id = started.split_whitespace().nth(2).unwrap().to_owned();
        assert_eq!(
            viewer.expect("transfer file "),
            format!("transfer file {id} report (1).pdf")
        );
        viewer.expect("transfer done ");
        host.expect("transfer done ");
        assert_eq!(
            std::fs::read(downloads.path().join("report.pdf")).unwrap(),
            b"mine"
        );
        assert_eq!(
            b3(&downloads.path().join("report (1).pdf")),
            b3(&src.path().join("report.pdf"))
        );

        host.type_line(&format!("/park {}", src.path().join("setup.exe").display()));
        assert!(
            host.expect("parked ")
                .ends_with("\"setup.exe\" 1500000 bytes")
        );
        viewer.expect("parked-available ");
        let fetched = viewer.expect("transfer done ");
        assert!(fetched.contains(" fetch "), "{fetched}");
        assert_eq!(
            b3(&downloads.path().join("setup.exe")),
            b3(&src.path().join("setup.exe"))
        );

        // A host without --inbox declines, and says so on both sides.
        let mut sender = relayed.view(
            &number,
            &[
                "--no-direct",
                "--send",
                src.path().join("setup.exe").to_str().unwrap(),
            ],
        );
        host.expect("transfer offered ");
        assert!(host.expect("transfer declined ").contains("--inbox"));
        let failed = sender.expect("transfer failed ");
        assert!(
            failed.ends_with("send: the other side declined"),
            "{failed}"
        );
        assert_ne!(sender.exit_code(), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_picture_keeps_flowing_while_a_large_file_goes_the_same_way() {
    let (relay, _dir) = relay().await;
    let relayed = Relayed::of(&relay);
    blocking(move || {
        let xvfb = Xvfb::start(640, 480).unwrap();
        let src = tempfile::tempdir().unwrap();
        let downloads = tempfile::tempdir().unwrap();
        random_file(&src.path().join("big.bin"), 160 << 20, 5);
        // A screen that never rests: a moving box, about 30 times a second.
        let stop = Arc::new(AtomicBool::new(false));
        let painting = {
            let stop = stop.clone();
            let display = xvfb.display().to_owned();
            std::thread::spawn(move || {
                let painter = Painter::connect(&display).unwrap();
                let mut i: i16 = 0;
                while !stop.load(Ordering::Relaxed) {
                    painter.fill(0, 0, 640, 480, 0x203040).unwrap();
                    painter
                        .fill((i * 7) % 560, (i * 5) % 400, 80, 80, 0xf0c020)
                        .unwrap();
                    painter.sync().unwrap();
                    i = i.wrapping_add(1);
                    std::thread::sleep(Duration::from_millis(33));
                }
            })
        };
        let (mut host, number) = relayed.host_with_env(
            &["--no-direct", "--accept", "view"],
            &[("DISPLAY", xvfb.display())],
        );
        let mut viewer = relayed.view(
            &number,
            &[
                "--no-direct",
                "--save-to",
                downloads.path().to_str().unwrap(),
            ],
        );
        viewer.expect("display 0 ");
        host.expect("connected #1");
        // Pictures flow before the transfer starts.
        std::thread::sleep(Duration::from_millis(500));
        host.type_line(&format!("/send {}", src.path().join("big.bin").display()));
        let done = viewer.expect("transfer done ");
        stop.store(true, Ordering::Relaxed);
        painting.join().unwrap();
        let frames = field(&done, "video-frames");
        let gap = field(&done, "video-gap-max-ms");
        let secs: f64 = done
            .split_whitespace()
            .skip_while(|w| *w != "secs")
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        // A behaviour bound, not a benchmark: pictures kept arriving, and
        // no wait between two came near a second.
        assert!(
            gap < 1000,
            "the picture stalled for {gap} ms during the transfer: {done}"
        );
        assert!(frames >= 2, "only {frames} pictures in {secs} s: {done}");
        assert_eq!(
            b3(&downloads.path().join("big.bin")),
            b3(&src.path().join("big.bin"))
        );
    })
    .await;
}
