//! The relay's control messages (`ClientRequest::from_frame`,
//! `RelayEvent::from_frame`) on arbitrary frames: never a panic, and what
//! decodes survives `to_frame` and back unchanged.

#![no_main]

use fernsicht_net::control::{ClientRequest, RelayEvent};
use fernsicht_net::frame::{ChannelId, Frame, FrameType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // Half the inputs are whole frames from the wire; the other half are
    // payloads in a valid control header, so the fuzzer spends its time in
    // the message decoder instead of finding the header first.
    let frame = if mode & 1 == 0 {
        match Frame::decode_exact(rest) {
            Ok(f) => f,
            Err(_) => return,
        }
    } else {
        match Frame::new(FrameType::Control, ChannelId::CONTROL, 0, rest.to_vec()) {
            Ok(f) => f,
            Err(_) => return,
        }
    };

    if let Ok(request) = ClientRequest::from_frame(&frame) {
        assert_eq!(frame.header.frame_type, FrameType::Control);
        assert_eq!(frame.header.channel, ChannelId::CONTROL);
        let wire = Frame::decode_exact(&request.to_frame().encode()).expect("to_frame is a frame");
        assert_eq!(ClientRequest::from_frame(&wire).ok(), Some(request));
    }
    if let Ok(event) = RelayEvent::from_frame(&frame) {
        assert_eq!(frame.header.frame_type, FrameType::Control);
        assert_eq!(frame.header.channel, ChannelId::CONTROL);
        let wire = Frame::decode_exact(&event.to_frame().encode()).expect("to_frame is a frame");
        assert_eq!(RelayEvent::from_frame(&wire).ok(), Some(event));
    }
});
