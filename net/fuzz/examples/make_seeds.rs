//! Writes the seed corpus under `net/fuzz/seeds/`: one small input per
//! message kind, from the same deterministic honest session the targets
//! replay. Run it again after a change to the wire format:
//! `cd net/fuzz && cargo run --example make_seeds`.

use fernsicht_net::control::{ClientRequest, JoinRefusal, LeaveReason, RELAY_PROTOCOL, RelayEvent};
use fernsicht_net::frame::{Frame, FrameType, HEADER_LEN};
use fernsicht_net::handshake::{AbortReason, abort_frame};
use fernsicht_net::message::{DisplayDesc, Message, VideoFrame};
use fernsicht_net::transfer::{Entry, EntryKind, Manifest, TransferMsg};
use fernsicht_net::number::SessionNumber;
use fernsicht_net_fuzz::{CHANNEL, concat, host_messages, recording, viewer_messages};
use std::fs;
use std::path::{Path, PathBuf};

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let mut seeds = Seeds::default();
    let number = SessionNumber::new(54321).expect("a 5-digit number");
    let requests = [
        ClientRequest::Register {
            protocol: RELAY_PROTOCOL,
        },
        ClientRequest::Join {
            protocol: RELAY_PROTOCOL,
            number,
        },
        ClientRequest::RemoveViewer { channel: 2 },
        ClientRequest::EndSession,
        ClientRequest::Ping { id: 1 },
    ];
    let events = [
        RelayEvent::Registered { number },
        RelayEvent::Joined { channel: 1 },
        RelayEvent::ViewerLeft {
            channel: 1,
            reason: LeaveReason::TooSlow,
        },
        RelayEvent::Refused {
            reason: JoinRefusal::BackOff {
                retry_after_secs: 60,
            },
        },
        RelayEvent::Closed {
            reason: LeaveReason::SessionEnded,
        },
    ];
    let controls: Vec<Frame> = requests
        .iter()
        .map(ClientRequest::to_frame)
        .chain(events.iter().map(RelayEvent::to_frame))
        .collect();
    for f in &controls {
        seeds.add("control", [&[0][..], &f.encode()].concat());
        seeds.add("control", [&[1][..], &f.payload].concat());
    }

    for password in [false, true] {
        let rec = recording(password);
        let mode = u8::from(password) << 1;
        for f in rec.to_viewer.iter().chain(&rec.to_host) {
            seeds.add("frame", f.encode());
        }
        let handshake_frames = rec.to_viewer.iter().chain(&rec.to_host);
        for f in handshake_frames.filter(|f| f.header.frame_type == FrameType::Handshake) {
            seeds.add("handshake_message", f.payload.clone());
        }
        seeds.add(
            "handshake_states",
            [&[mode][..], &concat(&rec.to_viewer)].concat(),
        );
        seeds.add(
            "handshake_states",
            [&[mode | 1][..], &concat(&rec.to_host)].concat(),
        );
        seeds.add(
            "frame_reader",
            [&[0, 0, 0, 0][..], &concat(&rec.to_viewer)].concat(),
        );
        let mut cut = concat(&rec.to_host);
        cut.truncate(cut.len() - 5);
        seeds.add("frame_reader", [&[7, 0, 200, 1][..], &cut].concat());
    }
    seeds.add("frame", concat(&controls[..2]));
    seeds.add("frame", controls[0].encode()[..HEADER_LEN - 1].to_vec());
    let abort = abort_frame(AbortReason::ProtocolError, CHANNEL, 3);
    seeds.add("frame", abort.encode());
    seeds.add("handshake_message", abort.payload);
    seeds.add(
        "frame_reader",
        [&[1, 2, 3, 0][..], &concat(&controls)].concat(),
    );

    for m in host_messages().iter().chain(&viewer_messages()) {
        seeds.add("message", m.encode());
    }
    let more = [
        Message::Pong { id: u64::MAX },
        Message::Video(VideoFrame {
            id: 1,
            display: 0,
            width: 1920,
            height: 1080,
            keyframe: true,
            captured_us: 123_456,
            data: vec![0, 0, 0, 1, 0x67, 0x42],
        }),
        Message::VideoAck { id: 1 },
        Message::KeyframeRequest,
        Message::Displays {
            displays: vec![DisplayDesc {
                index: 0,
                name: "screen".into(),
                x: 0,
                y: 0,
                width: 1920,
                height: 1080,
            }],
            shared: 0,
        },
        Message::SelectDisplay { index: 1 },
        Message::StreamInfo {
            encoder: "openh264".into(),
        },
        Message::Input {
            events: vec![1, 2, 3],
        },
    ];
    for m in more {
        seeds.add("message", m.encode());
    }

    // The mitm target reads a script through `arbitrary` (1.5): four bytes
    // choose the passwords, four each the six handshake tampers (zeros:
    // deliver), then each record is a continuation byte, a direction byte
    // and four bytes of tamper.
    let honest = [0u8; 28];
    let record = |to_viewer: u8, tamper: [u8; 4]| [&[1, to_viewer][..], &tamper].concat();
    let deliver = [0; 4];
    let mut neither = honest.to_vec();
    for to_viewer in [1, 1, 0, 0] {
        neither.extend(record(to_viewer, deliver));
    }
    seeds.add("handshake_mitm", neither);
    let mut same_password = [0, 0, 0, 0x40].to_vec();
    same_password.extend(&honest[4..]);
    for to_viewer in [1, 0] {
        same_password.extend(record(to_viewer, deliver));
    }
    seeds.add("handshake_mitm", same_password);
    // A flipped bit in the first record, then an untouched one.
    let mut flipped = honest.to_vec();
    flipped.extend(record(1, [0, 0, 0, 0x40]));
    flipped.extend([9, 0, 0, 0]);
    flipped.extend(record(1, deliver));
    seeds.add("handshake_mitm", flipped);

    // Transfer offers: an honest folder of two files, and hostile ones.
    let file = |path: &[u8], data: &[u8]| {
        let hash = *blake3::hash(data).as_bytes();
        Entry {
            path: path.to_vec(),
            kind: EntryKind::File {
                size: data.len() as u64,
                hash,
                chunks: if data.is_empty() { vec![] } else { vec![hash] },
            },
        }
    };
    let dir = |path: &[u8]| Entry {
        path: path.to_vec(),
        kind: EntryKind::Dir,
    };
    for entries in [
        vec![dir(b"proj"), file(b"proj/a.txt", b"hello"), file(b"proj/empty", b"")],
        vec![file(b"../escape", b"x")],
        vec![file(b"/etc/passwd", b"x")],
        vec![file(b"a.txt", b"1"), file(b"A.TXT", b"2")],
    ] {
        let offer = Message::Transfer(TransferMsg::Offer {
            manifest: Manifest {
                chunk_log2: 18,
                entries,
            },
        });
        seeds.add("transfer_manifest", offer.encode());
        seeds.add("message", offer.encode());
    }
    seeds.add("transfer_manifest", b"folder/sub/file.txt".to_vec());
    seeds.add("transfer_manifest", b"C:\\x".to_vec());
    // Accept nothing, send all, intact chunks, a damaged one, acks.
    seeds.add(
        "transfer_chunks",
        vec![2, 0, 0, 5, 0, 0, 0, 0, 1, 0, 2, 1, 7, 3, 1, 3, 0, 4, 2, 0, 3, 0, 3, 5, 0],
    );

    seeds.write(&root)
}

#[derive(Default)]
struct Seeds(Vec<(&'static str, Vec<u8>)>);

impl Seeds {
    fn add(&mut self, target: &'static str, bytes: Vec<u8>) {
        self.0.push((target, bytes));
    }

    fn write(self, root: &Path) -> std::io::Result<()> {
        if root.exists() {
            fs::remove_dir_all(root)?;
        }
        let mut count: std::collections::HashMap<&str, usize> = Default::default();
        for (target, bytes) in self.0 {
            let n = count.entry(target).or_default();
            *n += 1;
            let dir: PathBuf = root.join(target);
            fs::create_dir_all(&dir)?;
            fs::write(dir.join(format!("seed-{n:02}")), bytes)?;
        }
        for (target, n) in count {
            println!("{target}: {n} seeds");
        }
        Ok(())
    }
}
