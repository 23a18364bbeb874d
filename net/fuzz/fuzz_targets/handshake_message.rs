//! `HandshakeMessage::decode` on arbitrary payloads: never a panic, what
//! decodes round-trips, and `as_abort` recognises exactly the aborts.

#![no_main]

use fernsicht_net::frame::{Frame, FrameType};
use fernsicht_net::handshake::{HandshakeMessage, as_abort};
use fernsicht_net_fuzz::CHANNEL;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let decoded = HandshakeMessage::decode(data).ok();
    if let Some(msg) = &decoded {
        let again = HandshakeMessage::decode(&msg.encode()).ok();
        assert_eq!(again.as_ref(), Some(msg), "decode(encode(m)) != m");
    }
    let Ok(frame) = Frame::new(FrameType::Handshake, CHANNEL, 0, data.to_vec()) else {
        return;
    };
    let expected = match decoded {
        Some(HandshakeMessage::Abort(reason)) => Some(reason),
        _ => None,
    };
    assert_eq!(as_abort(&frame), expected);
});
