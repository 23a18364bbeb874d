//! `Frame::decode` and `Frame::decode_exact` on arbitrary bytes: never a
//! panic, the two agree with each other, and whatever decodes re-encodes to
//! exactly the bytes it came from.

#![no_main]

use fernsicht_net::frame::{Frame, FrameError, HEADER_LEN, MAX_PAYLOAD};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let exact = Frame::decode_exact(data);
    match Frame::decode(data) {
        Ok(Some((frame, used))) => {
            assert_eq!(used, HEADER_LEN + frame.payload.len());
            assert_eq!(frame.header.len as usize, frame.payload.len());
            assert!(frame.payload.len() <= MAX_PAYLOAD);
            assert_eq!(
                frame.encode(),
                &data[..used],
                "decode(bytes).encode() != bytes"
            );
            let rebuilt = Frame::new(
                frame.header.frame_type,
                frame.header.channel,
                frame.header.seq,
                frame.payload.clone(),
            )
            .expect("a decoded frame is within the limits");
            assert_eq!(rebuilt, frame);
            if used == data.len() {
                assert_eq!(exact, Ok(frame));
            } else {
                assert_eq!(exact, Err(FrameError::TrailingBytes(data.len() - used)));
                assert_eq!(Frame::decode_exact(&data[..used]), Ok(frame));
            }
        }
        Ok(None) => match exact {
            Err(FrameError::Truncated { have, need }) => {
                assert_eq!(have, data.len());
                assert!(need > have);
            }
            other => panic!("decode wants more bytes, decode_exact says {other:?}"),
        },
        Err(e) => {
            assert!(
                data.len() >= HEADER_LEN,
                "a header error needs a whole header"
            );
            assert_eq!(exact, Err(e));
        }
    }
});
