//! Both transfer state machines driven by arbitrary operations against one
//! honest manifest: chunks with arbitrary numbers and bytes into the
//! receiver (through the same verify-then-write path the service uses),
//! arbitrary accepts, acknowledgements and damage reports into the sender.
//! Never a panic; a chunk is accepted only with its true bytes, and the
//! receiver is done only when every chunk arrived intact.

#![no_main]

use fernsicht_net::transfer::tree::FileHasher;
use fernsicht_net::transfer::{
    Bitmap, Entry, EntryKind, Limits, Manifest, Receiver, Sender, ValidManifest,
};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

const CHUNK: usize = 1 << 16;

/// Two files: 2½ chunks and one chunk of pattern bytes.
fn files() -> &'static [Vec<u8>; 2] {
    static FILES: OnceLock<[Vec<u8>; 2]> = OnceLock::new();
    FILES.get_or_init(|| {
        [
            (0..CHUNK * 5 / 2).map(|i| (i * 31 % 251) as u8).collect(),
            (0..CHUNK / 3).map(|i| (i % 7) as u8).collect(),
        ]
    })
}

fn manifest() -> Arc<ValidManifest> {
    static M: OnceLock<Arc<ValidManifest>> = OnceLock::new();
    M.get_or_init(|| {
        let entries = files()
            .iter()
            .enumerate()
            .map(|(i, data)| {
                let mut h = FileHasher::new(data.len() as u64, CHUNK as u64);
                for c in data.chunks(CHUNK) {
                    h.chunk(c);
                }
                let (hash, chunks) = h.finish();
                Entry {
                    path: format!("f{i}").into_bytes(),
                    kind: EntryKind::File {
                        size: data.len() as u64,
                        hash,
                        chunks,
                    },
                }
            })
            .collect();
        let m = Manifest {
            chunk_log2: 16,
            entries,
        };
        Arc::new(ValidManifest::new(m, &Limits::default()).expect("the honest manifest is valid"))
    })
    .clone()
}

/// The true bytes of global chunk `c`.
fn truth(m: &ValidManifest, c: u64) -> Option<&'static [u8]> {
    let p = m.place(c)?;
    let data = &files()[p.file];
    Some(&data[p.offset as usize..(p.offset + p.len) as usize])
}

fuzz_target!(|data: &[u8]| {
    let m = manifest();
    let total = m.total_chunks();
    let mut receiver = Receiver::new(m.clone(), Bitmap::new(total)).expect("fits");
    let mut sender = Sender::new(m.clone());
    let mut intact = Bitmap::new(total);
    let t0 = Instant::now();
    let mut input = data;
    let mut step = 0u64;
    while let [op, arg, rest @ ..] = input {
        step += 1;
        let now = t0 + Duration::from_millis(step);
        let chunk = u64::from(*arg % 8);
        input = rest;
        match op % 6 {
            // A chunk: its true bytes, perhaps changed, cut or lengthened.
            0 | 1 => {
                let Ok(Some(place)) = receiver.on_chunk(chunk) else {
                    continue;
                };
                let mut bytes = truth(&m, chunk).map(<[u8]>::to_vec).unwrap_or_default();
                if *op % 6 == 1 {
                    if let [at, bit, tail @ ..] = input {
                        let i = usize::from(*at) * 997 % (bytes.len() + 2);
                        match i.checked_sub(bytes.len()) {
                            Some(0) => bytes.push(*bit),
                            Some(_) => {
                                bytes.pop();
                            }
                            None => bytes[i] ^= 1 << (bit % 8),
                        }
                        input = tail;
                    }
                }
                let ok = m.verify(chunk, &bytes);
                assert_eq!(ok, truth(&m, chunk) == Some(&bytes[..]), "verify lied for {chunk}");
                assert_eq!(place.len as usize, truth(&m, chunk).map_or(0, <[u8]>::len));
                if ok {
                    intact.set(chunk);
                    receiver.written(chunk);
                } else {
                    receiver.damaged(chunk);
                }
            }
            2 => {
                let mut have = vec![*arg; total.div_ceil(8) as usize];
                if let [n, tail @ ..] = input {
                    have.truncate(usize::from(*n % 4));
                    input = tail;
                }
                let _ = sender.on_accept(&have);
            }
            3 => {
                let _ = sender.on_ack(chunk, now);
            }
            4 => {
                let _ = sender.on_bad(chunk);
            }
            _ => {
                while let Some((c, place)) = sender.poll_chunk(now) {
                    assert!(c < total);
                    assert_eq!(m.place(c), Some(place));
                }
                sender.pause();
            }
        }
        assert_eq!(receiver.is_done(), intact.is_full());
        assert!(receiver.bytes_done() <= m.total_bytes());
        assert!(sender.bytes_done() <= m.total_bytes());
    }
});
