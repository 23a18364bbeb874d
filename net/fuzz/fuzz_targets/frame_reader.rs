//! The async `FrameReader` on an arbitrary byte stream that arrives in
//! fuzzer-chosen pieces (with pending reads in between): never a panic, and
//! it reads exactly what `Frame::decode` reads from the same bytes, ending
//! with the same error, or with `None` only at a frame boundary.

#![no_main]

use fernsicht_net::frame::{Frame, FrameError};
use fernsicht_net::transport::{FrameReader, TransportError};
use libfuzzer_sys::fuzz_target;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::runtime::Runtime;

/// A stream that hands out its bytes in a repeating pattern of piece sizes:
/// 0 means "not ready yet" once, and every fourth read takes all it can, so
/// the stream always makes progress.
struct Trickle<'a> {
    data: &'a [u8],
    pieces: [u8; 3],
    step: usize,
}

impl AsyncRead for Trickle<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let step = self.step;
        self.step += 1;
        let limit = match self.pieces.get(step % 4) {
            Some(0) => {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Some(&n) => usize::from(n),
            None => usize::MAX,
        };
        let n = limit.min(buf.remaining()).min(self.data.len());
        let (now, later) = self.data.split_at(n);
        buf.put_slice(now);
        self.data = later;
        Poll::Ready(Ok(()))
    }
}

/// What reading the next frame must give, according to `Frame::decode`.
fn expected(rest: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
    if rest.is_empty() {
        return Ok(None);
    }
    match Frame::decode(rest)? {
        Some(found) => Ok(Some(found)),
        // The stream ends inside this frame.
        None => Err(Frame::decode_exact(rest).expect_err("an incomplete frame")),
    }
}

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((head, mut rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    let [a, b, c, mode] = *head;
    let stream = Trickle {
        data: rest,
        pieces: [a, b, c],
        step: 0,
    };
    let mut reader = FrameReader::new(stream);
    runtime().block_on(async {
        loop {
            let want = expected(rest);
            // Both ways of reading a frame, chosen per input.
            let got = if mode & 1 == 0 {
                reader.read_frame().await
            } else {
                reader.read_raw().await.map(|raw| {
                    raw.map(|(header, bytes)| {
                        let frame = Frame::decode_exact(&bytes).expect("read_raw gives one frame");
                        assert_eq!(frame.header, header);
                        frame
                    })
                })
            };
            match (want, got) {
                (Ok(Some((frame, used))), Ok(Some(read))) => {
                    assert_eq!(read, frame);
                    rest = &rest[used..];
                }
                (Ok(None), Ok(None)) => break,
                (Err(want), Err(TransportError::Frame(got))) => {
                    assert_eq!(got, want);
                    break;
                }
                (want, got) => panic!("Frame::decode gives {want:?}, FrameReader {got:?}"),
            }
        }
    });
});
