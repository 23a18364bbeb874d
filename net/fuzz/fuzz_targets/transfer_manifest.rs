//! The transfer manifest checks on arbitrary input: `Message::decode` then
//! `ValidManifest::new` for offers, and `RelPath::parse` on the raw bytes.
//! Never a panic; whatever passes names a place strictly inside the
//! receiver's folder, and its chunk layout adds up.

#![no_main]

use fernsicht_net::message::Message;
use fernsicht_net::transfer::path::RelPath;
use fernsicht_net::transfer::{Limits, TransferMsg, ValidManifest};
use libfuzzer_sys::fuzz_target;

fn check_path(p: &RelPath) {
    let s = p.as_str();
    assert!(!s.is_empty() && !s.starts_with('/'), "{s:?}");
    assert!(!s.contains('\\') && !s.contains(':'), "{s:?}");
    assert!(!s.chars().any(char::is_control), "{s:?}");
    for name in p.names() {
        assert!(!name.is_empty() && name != "." && name != "..", "{s:?}");
    }
    let under = p.under(std::path::Path::new("/inbox"));
    assert!(under.starts_with("/inbox") && under != std::path::Path::new("/inbox"));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = RelPath::parse(data) {
        check_path(&p);
    }
    let Ok(Message::Transfer(TransferMsg::Offer { manifest })) = Message::decode(data) else {
        return;
    };
    let limits = Limits {
        max_entries: 1000,
        max_bytes: 1 << 40,
    };
    let Ok(valid) = ValidManifest::new(manifest, &limits) else {
        return;
    };
    for p in valid.paths() {
        check_path(p);
    }
    let mut chunks = 0;
    let mut bytes = 0;
    for f in valid.files() {
        assert_eq!(f.first_chunk, chunks);
        chunks += f.chunks;
        bytes += f.size;
    }
    assert_eq!(chunks, valid.total_chunks());
    assert_eq!(bytes, valid.total_bytes());
    assert!(bytes <= limits.max_bytes);
    for c in 0..valid.total_chunks().min(64) {
        let place = valid.place(c).expect("every chunk has a place");
        assert!(place.len > 0 && place.len <= valid.chunk_len());
    }
    assert!(valid.place(valid.total_chunks()).is_none());
});
