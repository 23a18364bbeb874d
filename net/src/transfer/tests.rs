//! Both sides of a transfer stepped in one thread, with real files on both
//! ends and the "network" in between a plain function the test controls.
#![allow(clippy::unwrap_used)]

use super::disk::{DiskError, Inbox, PARTIAL_DIR, SPACE_HEADROOM, scan};
use super::{Bitmap, Limits, Receiver, Sender, TransferMsg, ValidManifest};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

fn pseudo_random(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// What one run of the in-memory link did.
#[derive(Debug, Default)]
struct Run {
    sent: Vec<u64>,
    bad: Vec<u64>,
    finished: Vec<String>,
}

/// Steps sender and receiver until done, or until `cut_after` chunks have
/// been sent (the connection drops). `alter` may change a chunk's data on
/// its way (as a fault between hashing and sending would).
fn run(
    sender: &mut Sender,
    source: &super::disk::Source,
    inbox: &Inbox,
    cut_after: Option<usize>,
    mut alter: impl FnMut(u64, &mut Vec<u8>),
) -> Run {
    let manifest = sender.manifest().clone();
    // The offer crosses the wire as a message.
    let offered = match sender.offer() {
        TransferMsg::Offer { manifest } => manifest,
        other => panic!("{other:?}"),
    };
    let valid = Arc::new(ValidManifest::new(offered, &Limits::default()).unwrap());
    assert_eq!(valid.id(), manifest.id());
    let (mut partial, have) = inbox.open(valid.clone()).unwrap();
    let mut receiver = Receiver::new(valid.clone(), have).unwrap();
    let TransferMsg::Accept { have, .. } = receiver.accept() else {
        panic!()
    };
    sender.on_accept(&have).unwrap();
    let mut out = Run::default();
    for f in receiver.complete_files().collect::<Vec<_>>() {
        out.finished
            .push(partial.finish_file(f).unwrap().to_string());
    }
    let mut reader = source.reader();
    let t = Instant::now();
    let mut step = 0u64;
    loop {
        step += 1;
        let now = t + Duration::from_millis(step);
        let Some((chunk, place)) = sender.poll_chunk(now) else {
            assert!(sender.all_acked(), "sender stalled");
            break;
        };
        if cut_after.is_some_and(|n| out.sent.len() >= n) {
            sender.pause();
            return out;
        }
        out.sent.push(chunk);
        let mut data = reader.read(&place).unwrap();
        alter(chunk, &mut data);
        let place = receiver.on_chunk(chunk).unwrap().unwrap();
        if !valid.verify(chunk, &data) {
            out.bad.push(chunk);
            let TransferMsg::Bad { chunk, .. } = receiver.damaged(chunk) else {
                panic!()
            };
            sender.on_bad(chunk).unwrap();
            continue;
        }
        partial.write(&place, &data).unwrap();
        let w = receiver.written(chunk);
        sender
            .on_ack(chunk, now + Duration::from_millis(1))
            .unwrap();
        if let Some(f) = w.file_complete {
            out.finished
                .push(partial.finish_file(f).unwrap().to_string());
        }
    }
    assert!(receiver.is_done());
    sender.on_done().unwrap();
    partial.finish().unwrap();
    out
}

fn tree(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = vec![
        (PathBuf::from("proj/a.bin"), pseudo_random(700_000, 1)),
        (PathBuf::from("proj/src/b.txt"), b"hello".to_vec()),
        (
            PathBuf::from("proj/src/deep/c.bin"),
            pseudo_random(65_536 * 3, 2),
        ),
        (PathBuf::from("proj/empty.txt"), Vec::new()),
    ];
    for (p, d) in &files {
        write(&root.join(p), d);
    }
    std::fs::create_dir_all(root.join("proj/nothing/here")).unwrap();
    files.sort();
    files
}

fn sender_for(paths: &[PathBuf]) -> (Sender, super::disk::Source) {
    let (m, source) = scan(paths).unwrap();
    let valid = Arc::new(ValidManifest::new(m, &Limits::default()).unwrap());
    (Sender::new(valid), source)
}

#[test]
fn a_folder_tree_arrives_whole_and_a_flipped_bit_is_sent_again() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let files = tree(src.path());
    let (mut sender, source) = sender_for(&[src.path().join("proj")]);
    let total = sender.manifest().total_chunks();
    let inbox = Inbox::new(dst.path()).unwrap();
    let mut flipped = false;
    let r = run(&mut sender, &source, &inbox, None, |chunk, data| {
        if chunk == 2 && !flipped {
            data[1234] ^= 0x04;
            flipped = true;
        }
    });
    assert_eq!(r.bad, vec![2]);
    // Every chunk once, the damaged one twice.
    assert_eq!(r.sent.len() as u64, total + 1);
    assert_eq!(r.sent.iter().filter(|c| **c == 2).count(), 2);
    assert_eq!(sender.stats().resent, 1);
    for (p, d) in &files {
        assert_eq!(
            &std::fs::read(dst.path().join(p)).unwrap(),
            d,
            "{}",
            p.display()
        );
    }
    assert!(dst.path().join("proj/nothing/here").is_dir());
    assert!(
        !dst.path().join(PARTIAL_DIR).exists(),
        "partial state left behind"
    );
}

#[test]
fn a_dropped_transfer_resumes_without_sending_verified_chunks_again() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let data = pseudo_random(40 * 262_144 + 99, 3);
    write(&src.path().join("big.bin"), &data);
    let paths = [src.path().join("big.bin")];
    let inbox = Inbox::new(dst.path()).unwrap();

    let (mut sender, source) = sender_for(&paths);
    let total = sender.manifest().total_chunks();
    let first = run(&mut sender, &source, &inbox, Some(17), |_, _| {});
    assert_eq!(first.sent.len(), 17);
    assert!(!dst.path().join("big.bin").exists());

    // A new sender (a restarted app) offers the same file: same id, and
    // the receiver finds the 17 chunks on disk by hashing them again.
    let (mut again, source) = sender_for(&paths);
    assert_eq!(again.id(), sender.id());
    let second = run(&mut again, &source, &inbox, None, |_, _| {});
    assert_eq!(second.sent.len() as u64, total - 17);
    assert!(second.sent.iter().all(|c| !first.sent.contains(c)));
    assert_eq!(again.stats().skipped, 17);
    assert_eq!(std::fs::read(dst.path().join("big.bin")).unwrap(), data);
}

#[test]
fn a_damaged_partial_chunk_on_disk_is_fetched_again() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let data = pseudo_random(10 * 262_144, 4);
    write(&src.path().join("f.bin"), &data);
    let paths = [src.path().join("f.bin")];
    let inbox = Inbox::new(dst.path()).unwrap();
    let (mut sender, source) = sender_for(&paths);
    run(&mut sender, &source, &inbox, Some(6), |_, _| {});
    // Corrupt chunk 3 in the partial file.
    let part_dir = std::fs::read_dir(dst.path().join(PARTIAL_DIR))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let part = part_dir.join("0.part");
    let mut bytes = std::fs::read(&part).unwrap();
    bytes[3 * 262_144 + 10] ^= 1;
    std::fs::write(&part, bytes).unwrap();

    let (mut again, source) = sender_for(&paths);
    let second = run(&mut again, &source, &inbox, None, |_, _| {});
    let mut sent = second.sent.clone();
    sent.sort();
    assert_eq!(sent, vec![3, 6, 7, 8, 9]);
    assert_eq!(std::fs::read(dst.path().join("f.bin")).unwrap(), data);
}

#[test]
fn name_clashes_are_renamed_and_nothing_is_overwritten() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    write(&src.path().join("report.pdf"), b"new report");
    write(&src.path().join("proj/x.txt"), b"new x");
    write(&dst.path().join("report.pdf"), b"old report");
    write(&dst.path().join("report (1).pdf"), b"older report");
    write(&dst.path().join("proj/x.txt"), b"old x");
    let inbox = Inbox::new(dst.path()).unwrap();
    let (mut sender, source) =
        sender_for(&[src.path().join("report.pdf"), src.path().join("proj")]);
    let r = run(&mut sender, &source, &inbox, None, |_, _| {});
    let mut finished = r.finished.clone();
    finished.sort();
    assert_eq!(finished, vec!["proj (1)/x.txt", "report (2).pdf"]);
    let read = |p: &str| std::fs::read(dst.path().join(p)).unwrap();
    assert_eq!(read("report.pdf"), b"old report");
    assert_eq!(read("report (1).pdf"), b"older report");
    assert_eq!(read("report (2).pdf"), b"new report");
    assert_eq!(read("proj/x.txt"), b"old x");
    assert_eq!(read("proj (1)/x.txt"), b"new x");
}

#[cfg(unix)]
#[test]
fn links_in_the_sent_folder_are_skipped() {
    let src = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    write(&outside.path().join("secret"), b"not for sending");
    write(&src.path().join("dir/plain.txt"), b"ok");
    std::os::unix::fs::symlink(outside.path().join("secret"), src.path().join("dir/link")).unwrap();
    let (m, _) = scan(&[src.path().join("dir")]).unwrap();
    let names: Vec<String> = m
        .entries
        .iter()
        .map(|e| String::from_utf8(e.path.clone()).unwrap())
        .collect();
    assert_eq!(names, vec!["dir", "dir/plain.txt"]);
}

#[test]
fn bitmaps_refuse_what_does_not_fit() {
    let mut b = Bitmap::new(10);
    assert!(b.set(9));
    assert!(!b.set(9));
    assert!(!b.set(10));
    assert_eq!(b.count(), 1);
    assert!(Bitmap::from_bytes(b.as_bytes(), 10).is_some());
    assert!(Bitmap::from_bytes(&[0, 0, 0], 10).is_none());
    assert!(
        Bitmap::from_bytes(&[0, 0b0000_0100], 10).is_none(),
        "bit 10 set"
    );
}

#[test]
fn a_transfer_that_does_not_fit_on_the_disk_is_refused_before_anything_is_written() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    let data = pseudo_random(12 * 262_144, 5);
    write(&src.path().join("big.bin"), &data);
    let paths = [src.path().join("big.bin")];
    let (mut sender, source) = sender_for(&paths);
    let manifest = sender.manifest().clone();

    // Room for 11 of the 12 chunks (beyond the headroom): refused, and
    // nothing written.
    let tight = Inbox::new(dst.path())
        .unwrap()
        .with_free_space(|_| Ok(SPACE_HEADROOM + 11 * 262_144));
    match tight.open(manifest.clone()) {
        Err(DiskError::NoSpace { needed, free, .. }) => {
            assert_eq!(needed, 12 * 262_144);
            assert_eq!(free, SPACE_HEADROOM + 11 * 262_144);
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("a transfer larger than the free space was accepted"),
    }
    assert_eq!(std::fs::read_dir(dst.path()).unwrap().count(), 0);

    // Half of it arrives where there is room; the rest then fits the same
    // tight disk: only what is missing counts.
    let roomy = Inbox::new(dst.path()).unwrap();
    run(&mut sender, &source, &roomy, Some(6), |_, _| {});
    let (_, have) = tight.open(manifest).unwrap();
    assert_eq!(have.count(), 6);
}
