//! `Message::decode` (the plaintext of a sealed frame) on arbitrary bytes:
//! never a panic, the chat bound holds, and what decodes round-trips.

#![no_main]

use fernsicht_net::message::{MAX_CHAT_CHARS, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = Message::decode(data) else {
        return;
    };
    if let Message::Chat { text } = &msg {
        assert!(text.chars().count() <= MAX_CHAT_CHARS);
    }
    assert_eq!(
        Message::decode(&msg.encode()).ok(),
        Some(msg),
        "decode(encode(m)) != m"
    );
});
