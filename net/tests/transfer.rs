//! File transfer over real sessions through a relay on loopback: the
//! transfer service on both sides, files on disk at both ends.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "transfer/fixtures.rs"]
mod fixtures;

use common::*;
use fernsicht_net::client::{HostEvent, SessionPath, ViewerEvent};
use fernsicht_net::direct::DirectOptions;
use fernsicht_net::message::Message;
use fernsicht_net::transfer::TransferMsg;
use fernsicht_net::transfer::service::{
    Direction, MAX_OFFERS_WAITING, ServiceConfig, TransferEvent, TransferService,
};
use fernsicht_net::transfer::store::ParkedFile;
use fixtures::*;
use fixtures::{host, viewer};
use rand::{RngCore, SeedableRng};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread")]
async fn a_folder_tree_arrives_identical_and_a_damaged_chunk_is_sent_again() {
    let relay = relay().await;
    let inbox = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, p) in [
        "tree/a.bin",
        "tree/sub/b.bin",
        "tree/sub/deeper/c.txt",
        "tree/z.bin",
    ]
    .iter()
    .enumerate()
    {
        let len = [3 << 20, 700_000, 5, 0][i];
        random_file(&src.path().join(p), len, i as u64);
        files.push(PathBuf::from(p));
    }
    std::fs::create_dir_all(src.path().join("tree/empty")).unwrap();
    // An older "tree" is in the way: the new one must not merge into it.
    std::fs::create_dir_all(inbox.path().join("tree")).unwrap();
    std::fs::write(inbox.path().join("tree/a.bin"), b"keep me").unwrap();

    let mut host = host(&relay, Some(inbox.path())).await;
    let mut v = viewer(&mut host, &relay.target(), None).await;
    // Chunk 13 is the second chunk of sub/b.bin (a.bin has 12 chunks of
    // 256 KiB): damage it once on the way.
    *v.spy.flip.lock().unwrap() = Some(13);
    v.service
        .send_files(vec![v.channel], vec![src.path().join("tree")]);

    let received = finished(&mut host.transfers).await;
    let sent = finished(&mut v.transfers).await;
    assert_eq!(received.damaged, 1, "the host noticed the damaged chunk");
    assert_eq!(sent.resent, 1, "and the viewer sent it again");
    let total = (3 << 20) / (256 << 10) + 3 + 1;
    assert_eq!(sent.chunks_sent, total + 1);
    let spied = v.spy.sent.lock().unwrap().clone();
    assert_eq!(spied.iter().filter(|c| **c == 13).count(), 2);
    for p in &files {
        let renamed = Path::new("tree (1)").join(p.strip_prefix("tree").unwrap());
        assert_eq!(
            b3(&inbox.path().join(&renamed)),
            b3(&src.path().join(p)),
            "{}",
            p.display()
        );
    }
    assert!(inbox.path().join("tree (1)/empty").is_dir());
    assert_eq!(
        std::fs::read(inbox.path().join("tree/a.bin")).unwrap(),
        b"keep me"
    );
    assert!(!inbox.path().join(".fernsicht-partial").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_cut_mid_transfer_is_bridged_and_no_chunk_goes_twice() {
    let relay = relay().await;
    let inbox = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("big.bin");
    random_file(&file, 96 << 20, 8);
    let total = (96u64 << 20) / (256 << 10);

    let mut host = host(&relay, Some(inbox.path())).await;
    let cutter = cutter(&relay).await;
    let mut v = viewer(&mut host, &cutter.target(), None).await;
    v.service.send_files(vec![v.channel], vec![file.clone()]);
    loop {
        match next(&mut host.transfers).await {
            TransferEvent::Progress { done, .. } if done >= 32 << 20 => break,
            TransferEvent::Finished { .. } => panic!("finished before the cut"),
            _ => {}
        }
    }
    // Every connection through the cutter drops at once; new ones pass.
    cutter.cut_all();
    let sent = finished(&mut v.transfers).await;
    let received = finished(&mut host.transfers).await;
    assert!(
        cutter
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 2,
        "the viewer never reconnected"
    );
    // The session resent what the cut swallowed; the transfer itself sent
    // every chunk once.
    assert_eq!(sent.chunks_sent, total);
    assert_eq!((sent.resent, received.damaged), (0, 0));
    let spied = v.spy.sent.lock().unwrap().clone();
    assert_eq!(spied.len() as u64, total);
    assert_eq!(
        spied.iter().copied().collect::<HashSet<_>>().len() as u64,
        total
    );
    assert_eq!(b3(&inbox.path().join("big.bin")), b3(&file));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_helper_gone_mid_transfer_sends_again_only_what_was_not_verified() {
    let relay = relay().await;
    let inbox = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("big.bin");
    random_file(&file, 96 << 20, 7);
    let total = (96u64 << 20) / (256 << 10);

    let mut host = host(&relay, Some(inbox.path())).await;
    let dead_end = DeadEnd::start(&relay).await;
    let first = viewer(&mut host, &dead_end.target, None).await;
    first
        .service
        .send_files(vec![first.channel], vec![file.clone()]);
    // The helper's network goes for good once a third has been verified.
    loop {
        match next(&mut host.transfers).await {
            TransferEvent::Progress { done, .. } if done >= 32 << 20 => break,
            TransferEvent::Finished { .. } => panic!("finished before the cut"),
            _ => {}
        }
    }
    dead_end.cut();
    // The relay keeps the helper's place for a while (or, had the link
    // ended cleanly between two frames, says it left).
    until(&mut host.events, |e| {
        matches!(
            e,
            HostEvent::ViewerReconnecting { .. } | HostEvent::ViewerLeft { .. }
        )
    })
    .await;
    let acked_first = first.acked.lock().unwrap().clone();
    let sent_first = first.spy.sent.lock().unwrap().len() as u64;
    assert!(sent_first < total, "the cut came too late to test anything");

    // The helper joins again (a new join, allowed again) and sends the
    // same file: it takes over from the chunks on the host's disk.
    let mut second = viewer(&mut host, &relay.target(), None).await;
    second
        .service
        .send_files(vec![second.channel], vec![file.clone()]);
    let lost = until(&mut host.transfers, |e| {
        matches!(e, TransferEvent::Failed { .. })
    })
    .await;
    assert!(
        format!("{lost:?}").contains("connection was lost"),
        "{lost:?}"
    );
    let resumed = match until(&mut second.transfers, |e| {
        matches!(e, TransferEvent::Started { .. })
    })
    .await
    {
        TransferEvent::Started { resumed, .. } => resumed,
        _ => unreachable!(),
    };
    let outcome = finished(&mut second.transfers).await;
    finished(&mut host.transfers).await;
    let sent_second: HashSet<u64> = second.spy.sent.lock().unwrap().iter().copied().collect();

    assert!(
        resumed >= acked_first.len() as u64 * (256 << 10),
        "resumed {resumed}"
    );
    assert_eq!(outcome.skipped + outcome.chunks_sent, total);
    assert_eq!(outcome.skipped * (256 << 10), resumed);
    assert_eq!(outcome.resent, 0);
    assert_eq!(sent_second.len() as u64, outcome.chunks_sent);
    assert!(
        acked_first.is_disjoint(&sent_second),
        "chunks verified before the cut were sent again"
    );
    // Only chunks in flight at the cut went twice, at most one window.
    assert!(
        sent_first + outcome.chunks_sent <= total + 48,
        "{sent_first} + {}",
        outcome.chunks_sent
    );
    assert_eq!(b3(&inbox.path().join("big.bin")), b3(&file));
    assert!(!inbox.path().join(".fernsicht-partial").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn malicious_manifests_are_refused_and_the_session_goes_on() {
    let relay = relay().await;
    let inbox = tempfile::tempdir().unwrap();
    let mut host = host(&relay, Some(inbox.path())).await;
    let mut v = viewer(&mut host, &relay.target(), None).await;
    for (path, size, why) in [
        (&b"../x"[..], 5, "leaves the folder"),
        (b"/etc/cron.d/x", 5, "is absolute"),
        (b"C:\\Windows\\x", 5, "backslash"),
        (b"ok.txt", 1 << 62, "larger than"),
        (b"bad\x1bname", 5, "control"),
        (b"\xc3\x28", 5, "UTF-8"),
    ] {
        v.handle.send(offer(path, size));
        match until(&mut host.transfers, |e| {
            matches!(e, TransferEvent::Refused { .. })
        })
        .await
        {
            TransferEvent::Refused { reason, .. } => assert!(reason.contains(why), "{reason}"),
            _ => unreachable!(),
        }
        // The viewer is told why, inside the session.
        let told = next(&mut v.refusals).await;
        assert!(told.contains(why), "{told}");
    }
    assert_eq!(
        std::fs::read_dir(inbox.path()).unwrap().count(),
        0,
        "nothing written"
    );
    v.handle.send(Message::Chat {
        text: "still here".into(),
    });
    until(&mut host.events, |e| {
        matches!(
            e,
            HostEvent::Message {
                message: Message::Chat { .. },
                ..
            }
        )
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_relay_stores_parked_files_only_as_ciphertext_and_deletes_them_with_the_session() {
    let relay = relay().await;
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("installer.bin");
    // Recognisable content: text lines, then random bytes.
    let mut data: Vec<u8> = (0..20_000)
        .flat_map(|i| {
            format!("line {i}: the quick brown fox jumps over the lazy dog\n").into_bytes()
        })
        .collect();
    let mut noise = vec![0u8; 2 << 20];
    rand_chacha::ChaCha8Rng::seed_from_u64(9).fill_bytes(&mut noise);
    data.extend_from_slice(&noise);
    std::fs::write(&file, &data).unwrap();

    let mut host = host(&relay, None).await;
    host.service.park(vec![file.clone()]);
    let parked = until(&mut host.transfers, |e| {
        matches!(
            e,
            TransferEvent::Parked { .. } | TransferEvent::Failed { .. }
        )
    })
    .await;
    assert!(matches!(parked, TransferEvent::Parked { .. }), "{parked:?}");

    let store = relay.dir.path().join("files");
    let stored = files_under(&store);
    assert_eq!(stored.len(), 1);
    let pieces = data.len().div_ceil(256 << 10);
    assert_eq!(
        stored[0].1.len(),
        data.len() + 16 * pieces,
        "all of it, sealed"
    );
    for offset in (0..data.len() - 32).step_by(4096) {
        let needle = &data[offset..offset + 32];
        assert!(
            memchr::memmem::find(&stored[0].1, needle).is_none(),
            "plaintext at {offset} found in the store"
        );
    }
    assert!(memchr::memmem::find(&stored[0].1, b"installer").is_none());
    assert_eq!(relay.handle.stored_bytes(), stored[0].1.len() as u64);

    // A viewer who joins later fetches it from the relay.
    let downloads = tempfile::tempdir().unwrap();
    let mut v = viewer(&mut host, &relay.target(), Some(downloads.path())).await;
    let available = until(&mut v.transfers, |e| {
        matches!(e, TransferEvent::ParkedAvailable { .. })
    })
    .await;
    assert!(format!("{available:?}").contains("installer.bin"));
    let fetched = finished(&mut v.transfers).await;
    assert_eq!(fetched.bytes, data.len() as u64);
    assert_eq!(
        std::fs::read(downloads.path().join("installer.bin")).unwrap(),
        data
    );

    host.handle.end();
    until(&mut v.events, |e| matches!(e, ViewerEvent::Ended(_))).await;
    let deadline = std::time::Instant::now() + WAIT;
    while !files_under(&store).is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        files_under(&store).is_empty(),
        "the session's files outlived it"
    );
    assert_eq!(relay.handle.stored_bytes(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_store_refuses_files_over_its_limits_with_a_clear_reason() {
    let relay = relay_with(|c| c.store.per_session = 1 << 20).await;
    let src = tempfile::tempdir().unwrap();
    random_file(&src.path().join("big.bin"), 2 << 20, 1);
    std::fs::create_dir_all(src.path().join("folder")).unwrap();
    let mut host = host(&relay, None).await;
    host.service.park(vec![src.path().join("big.bin")]);
    match until(&mut host.transfers, |e| {
        matches!(e, TransferEvent::Failed { .. })
    })
    .await
    {
        TransferEvent::Failed {
            reason, direction, ..
        } => {
            assert_eq!(direction, Direction::Park);
            assert_eq!(
                reason,
                "the relay refused to store the file: this session's files would exceed the relay's limit of 1048576 bytes"
            );
        }
        _ => unreachable!(),
    }
    host.service.park(vec![src.path().join("folder")]);
    let problem = until(&mut host.transfers, |e| {
        matches!(e, TransferEvent::Problem(_))
    })
    .await;
    assert!(format!("{problem:?}").contains("one file at a time"));
    assert!(files_under(&relay.dir.path().join("files")).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn either_side_cancels_and_the_other_stops_and_cleans_up() {
    let relay = relay().await;
    let inbox = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("big.bin");
    random_file(&file, 128 << 20, 11);
    let mut host = host(&relay, Some(inbox.path())).await;
    let mut v = viewer(&mut host, &relay.target(), None).await;

    // The receiver (the host) stops it.
    v.service.send_files(vec![v.channel], vec![file.clone()]);
    let (peer, id) = loop {
        match next(&mut host.transfers).await {
            TransferEvent::Progress { peer, id, done, .. } if done > 0 => break (peer, id),
            TransferEvent::Finished { .. } => panic!("finished before the cancel"),
            _ => {}
        }
    };
    host.service.cancel(peer, id);
    assert_eq!(failed(&mut host.transfers).await, "cancelled");
    let told = failed(&mut v.transfers).await;
    assert_eq!(told, "the other side stopped the transfer: cancelled");
    no_more_chunks(&v.spy).await;
    no_partial_state(inbox.path()).await;
    assert!(!inbox.path().join("big.bin").exists());

    // The sender (the viewer) stops the next one.
    v.service.send_files(vec![v.channel], vec![file.clone()]);
    let id = loop {
        match next(&mut v.transfers).await {
            TransferEvent::Progress { id, done, .. } if done > 0 => break id,
            TransferEvent::Finished { .. } => panic!("finished before the cancel"),
            _ => {}
        }
    };
    v.service.cancel(v.channel, id);
    assert_eq!(failed(&mut v.transfers).await, "cancelled");
    let told = failed(&mut host.transfers).await;
    assert_eq!(told, "the other side stopped the transfer: cancelled");
    no_more_chunks(&v.spy).await;
    no_partial_state(inbox.path()).await;
    assert!(!inbox.path().join("big.bin").exists());

    // Nothing is stuck: the same file goes through whole afterwards.
    v.service.send_files(vec![v.channel], vec![file.clone()]);
    finished(&mut host.transfers).await;
    let outcome = finished(&mut v.transfers).await;
    assert_eq!(outcome.skipped, 0, "a cancel keeps nothing to resume from");
    assert_eq!(b3(&inbox.path().join("big.bin")), b3(&file));
}

#[tokio::test(flavor = "multi_thread")]
async fn offers_waiting_for_the_person_are_bounded_and_viewers_cannot_announce_parked_files() {
    let relay = relay().await;
    let inbox = tempfile::tempdir().unwrap();
    // No inbox at first: every offer waits for the person.
    let mut host = host(&relay, None).await;
    let mut v = viewer(&mut host, &relay.target(), None).await;
    for i in 0..=MAX_OFFERS_WAITING {
        let name = format!("f{i}.txt");
        v.handle.send(offer(name.as_bytes(), 5));
        let e = until(&mut host.transfers, |e| {
            matches!(
                e,
                TransferEvent::Offered { .. } | TransferEvent::Refused { .. }
            )
        })
        .await;
        if i < MAX_OFFERS_WAITING {
            assert!(matches!(e, TransferEvent::Offered { .. }), "{e:?}");
        } else {
            let TransferEvent::Refused { reason, .. } = e else {
                panic!("offer {i} was not refused: {e:?}")
            };
            assert!(reason.contains("too many offers"), "{reason}");
        }
    }
    let told = next(&mut v.refusals).await;
    assert!(told.contains("too many offers"), "{told}");

    // A viewer that claims a parked file: a host would fetch it into its
    // inbox. The host ignores it.
    let mut host = self::host(&relay, Some(inbox.path())).await;
    let v = viewer(&mut host, &relay.target(), None).await;
    let Message::Transfer(TransferMsg::Offer { manifest }) = offer(b"x.bin", 5) else {
        unreachable!()
    };
    v.handle
        .send(Message::Transfer(TransferMsg::Parked(ParkedFile {
            file: 7,
            manifest,
            key: [1; 32],
        })));
    v.handle.send(Message::Chat {
        text: "after".into(),
    });
    until(&mut host.events, |e| {
        matches!(
            e,
            HostEvent::Message {
                message: Message::Chat { .. },
                ..
            }
        )
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    while let Ok(e) = host.transfers.try_recv() {
        assert!(
            !matches!(
                e,
                TransferEvent::ParkedAvailable { .. } | TransferEvent::Started { .. }
            ),
            "the host acted on a viewer's parked file: {e:?}"
        );
    }
    assert_eq!(std::fs::read_dir(inbox.path()).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn files_go_both_ways_over_a_direct_path_and_the_store_still_works() {
    let relay = relay().await;
    let inbox = tempfile::tempdir().unwrap();
    let downloads = tempfile::tempdir().unwrap();
    let src = tempfile::tempdir().unwrap();
    let up = src.path().join("up.bin");
    let down = src.path().join("down.bin");
    let parked = src.path().join("parked.bin");
    random_file(&up, 16 << 20, 21);
    random_file(&down, 16 << 20, 22);
    random_file(&parked, 1 << 20, 23);
    let mut host = host_with(
        &relay,
        Some(inbox.path()),
        Some(DirectOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            advertise: None,
            punch: true,
        }),
    )
    .await;
    let mut v = viewer(&mut host, &relay.target(), Some(downloads.path())).await;
    let path = until(&mut v.events, |e| matches!(e, ViewerEvent::Path(_))).await;
    assert!(
        matches!(path, ViewerEvent::Path(SessionPath::Direct(_))),
        "{path:?}"
    );

    let relayed = || {
        relay
            .handle
            .stats
            .bytes_forwarded
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let before = relayed();
    v.service.send_files(vec![v.channel], vec![up.clone()]);
    finished(&mut v.transfers).await;
    finished(&mut host.transfers).await;
    let viewer = until(&mut host.events, |e| {
        matches!(e, HostEvent::ViewerConnected { .. })
    })
    .await;
    let HostEvent::ViewerConnected { viewer, .. } = viewer else {
        unreachable!()
    };
    host.service.send_files(vec![viewer], vec![down.clone()]);
    finished(&mut host.transfers).await;
    finished(&mut v.transfers).await;
    assert!(
        relayed() - before < 1 << 20,
        "{} bytes of 32 MiB went through the relay",
        relayed() - before
    );
    assert_eq!(b3(&inbox.path().join("up.bin")), b3(&up));
    assert_eq!(b3(&downloads.path().join("down.bin")), b3(&down));

    // Parking still goes to the relay, and the viewer fetches from there.
    host.service.park(vec![parked.clone()]);
    until(&mut host.transfers, |e| {
        matches!(e, TransferEvent::Parked { .. })
    })
    .await;
    let fetched = finished(&mut v.transfers).await;
    assert_eq!(fetched.bytes, 1 << 20);
    assert_eq!(b3(&downloads.path().join("parked.bin")), b3(&parked));
}

#[tokio::test(flavor = "multi_thread")]
async fn parked_files_go_when_a_dropped_host_does_not_come_back() {
    let relay = relay_with(|c| c.resume_grace = std::time::Duration::from_millis(300)).await;
    let src = tempfile::tempdir().unwrap();
    random_file(&src.path().join("setup.exe"), 1 << 20, 31);
    let dead_end = DeadEnd::start(&relay).await;
    let mut session = common::host(&dead_end.target, None).await;
    let (service, mut transfers) =
        TransferService::spawn(Arc::new(session.handle.clone()), ServiceConfig::default());
    let svc = service.clone();
    tokio::spawn(async move {
        while let Some(e) = session.events.recv().await {
            svc.host_event(e);
        }
    });
    service.park(vec![src.path().join("setup.exe")]);
    until(&mut transfers, |e| {
        matches!(e, TransferEvent::Parked { .. })
    })
    .await;
    let store = relay.dir.path().join("files");
    assert_eq!(files_under(&store).len(), 1);

    // The host's network goes for good: after the grace, nothing is left.
    dead_end.cut();
    let deadline = std::time::Instant::now() + WAIT;
    while (relay.handle.sessions() > 0 || !files_under(&store).is_empty())
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(relay.handle.sessions(), 0, "the session outlived the grace");
    assert!(files_under(&store).is_empty(), "its files outlived it");
    assert_eq!(relay.handle.stored_bytes(), 0);
}
