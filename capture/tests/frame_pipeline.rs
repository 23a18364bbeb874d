//! End-to-end tests of the frame pipeline against real X servers (each test
//! starts its own Xvfb from `fernsicht_capture::testing`), real H.264 from
//! openh264, and FFmpeg as an independent decoder.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use fernsicht_capture::testing::{Painter, Xephyr, Xvfb, test_pattern};
use fernsicht_capture::{
    Candidate, CaptureError, Capturer, DecodeError, Decoder, EncodedFrame, Encoder, EncoderChoice,
    EncoderKind, EncoderSettings, I420Frame, OpenH264Encoder, Pipeline, PipelineConfig, probe,
    probe_with, quality,
};

const W: u16 = 320;
const H: u16 = 240;

fn settings(width: u16, height: u16) -> EncoderSettings {
    EncoderSettings {
        width,
        height,
        bitrate_bps: 4_000_000,
        max_fps: 30.0,
    }
}

/// Paints the test pattern on `display` and waits until the server drew it.
fn paint_pattern(display: &str, width: u16, height: u16, seed: u8) -> Vec<u8> {
    let painter = Painter::connect(display).unwrap();
    let pattern = test_pattern(width, height, seed);
    painter.put_bgrx(0, 0, width, height, &pattern).unwrap();
    painter.sync().unwrap();
    pattern
}

/// Captures until the frame equals `expected` (scrap delivers the picture
/// requested at the previous call), returning a copy of the frame's bytes.
fn capture_until(capturer: &mut Capturer, expected: &[u8]) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let frame = capturer.capture().unwrap();
        let row = usize::from(frame.width) * 4;
        let packed: Vec<u8> = (0..usize::from(frame.height))
            .flat_map(|y| frame.data[y * frame.stride..][..row].iter().copied())
            .collect();
        // Compare colour bytes only: the fourth byte of a 24-bit pixel is
        // undefined.
        let same = packed.len() == expected.len()
            && packed
                .chunks_exact(4)
                .zip(expected.chunks_exact(4))
                .all(|(a, b)| a[..3] == b[..3]);
        if same {
            return packed;
        }
        assert!(
            Instant::now() < deadline,
            "the painted pattern never showed up in the capture"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn encode_capture(
    encoder: &mut dyn Encoder,
    capturer: &mut Capturer,
    t_ms: u64,
) -> Option<EncodedFrame> {
    let frame = capturer.capture().unwrap();
    let mut i420 = I420Frame::new(frame.width, frame.height);
    i420.convert_from(&frame).unwrap();
    encoder.encode(&i420, Duration::from_millis(t_ms)).unwrap()
}

fn frame_of(data: &[u8], width: u16, height: u16) -> fernsicht_capture::CapturedFrame<'_> {
    fernsicht_capture::CapturedFrame {
        data,
        width,
        height,
        stride: usize::from(width) * 4,
        format: fernsicht_capture::PixelFormat::Bgrx,
    }
}

#[test]
fn pattern_on_xvfb_is_captured_exactly_and_decodes_back_above_35_db() {
    let xvfb = Xvfb::start(u32::from(W), u32::from(H)).unwrap();
    let displays = fernsicht_capture::list_displays(Some(xvfb.display())).unwrap();
    assert_eq!(displays.len(), 1);
    assert_eq!((displays[0].width, displays[0].height), (W, H));

    let pattern = paint_pattern(xvfb.display(), W, H, 0);
    let mut capturer = Capturer::open(Some(xvfb.display()), 0).unwrap();
    let captured = capture_until(&mut capturer, &pattern);

    let mut i420 = I420Frame::new(W, H);
    i420.convert_from(&frame_of(&captured, W, H)).unwrap();
    let mut encoder = OpenH264Encoder::new(settings(W, H)).unwrap();
    let encoded = encoder
        .encode(&i420, Duration::ZERO)
        .unwrap()
        .expect("first frame encoded");
    assert!(encoded.is_keyframe);
    assert_eq!((encoded.width, encoded.height), (W, H));

    let mut decoder = Decoder::new().unwrap();
    let image = decoder.decode(&encoded.data).unwrap().expect("a picture");
    let psnr = quality::psnr_rgb(&frame_of(&captured, W, H), &image).unwrap();
    assert!(psnr >= 35.0, "PSNR {psnr:.2} dB");
}

#[test]
fn our_stream_decodes_in_ffmpeg_to_the_same_picture() {
    let xvfb = Xvfb::start(u32::from(W), u32::from(H)).unwrap();
    let mut capturer = Capturer::open(Some(xvfb.display()), 0).unwrap();
    let mut encoder = OpenH264Encoder::new(settings(W, H)).unwrap();
    let mut decoder = Decoder::new().unwrap();
    let mut stream = Vec::new();
    let mut last = None;
    let mut source = Vec::new();
    // Three different pictures: a keyframe and two P-frames.
    for (i, seed) in [0u8, 3, 6].into_iter().enumerate() {
        let pattern = paint_pattern(xvfb.display(), W, H, seed);
        source = capture_until(&mut capturer, &pattern);
        let mut i420 = I420Frame::new(W, H);
        i420.convert_from(&frame_of(&source, W, H)).unwrap();
        let frame = encoder
            .encode(&i420, Duration::from_millis(i as u64 * 33))
            .unwrap()
            .unwrap();
        assert_eq!(frame.is_keyframe, i == 0);
        stream.extend_from_slice(&frame.data);
        last = decoder.decode(&frame.data).unwrap();
    }
    let ours = last.expect("our decoder produced a picture");

    let mut ffmpeg = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "h264",
            "-i",
            "pipe:0",
        ])
        .args(["-f", "rawvideo", "-pix_fmt", "rgba", "pipe:1"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ffmpeg runs");
    let mut stdin = ffmpeg.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&stream));
    let output = ffmpeg.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success());
    let frame_len = usize::from(W) * usize::from(H) * 4;
    assert_eq!(
        output.stdout.len(),
        3 * frame_len,
        "FFmpeg decoded three pictures"
    );
    let theirs = fernsicht_capture::RgbaImage {
        width: W,
        height: H,
        pixels: output.stdout[2 * frame_len..].to_vec(),
    };
    let vs_source = quality::psnr_rgb(&frame_of(&source, W, H), &theirs).unwrap();
    assert!(
        vs_source >= 35.0,
        "FFmpeg's picture vs source: {vs_source:.2} dB"
    );
    let mse: f64 = ours
        .pixels
        .iter()
        .zip(&theirs.pixels)
        .map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2))
        .sum::<f64>()
        / ours.pixels.len() as f64;
    let agreement = quality::psnr_from_mse(mse);
    assert!(
        agreement >= 40.0,
        "our decoder vs FFmpeg: {agreement:.2} dB"
    );
}

#[test]
fn static_screen_produces_no_frames_after_the_first() {
    let xvfb = Xvfb::start(u32::from(W), u32::from(H)).unwrap();
    let painter = Painter::connect(xvfb.display()).unwrap();
    painter
        .put_bgrx(0, 0, W, H, &test_pattern(W, H, 1))
        .unwrap();
    painter.sync().unwrap();
    let pipeline = Pipeline::start(PipelineConfig {
        x_display: Some(xvfb.display().to_owned()),
        display_index: 0,
        bitrate_bps: 2_000_000,
        max_fps: 30.0,
        encoder: EncoderChoice::Only(EncoderKind::OpenH264),
    })
    .unwrap();
    let first = pipeline
        .recv_timeout(Duration::from_secs(5))
        .unwrap()
        .expect("first frame");
    assert!(first.is_keyframe);
    // Rate control may need a frame or two to settle the first picture;
    // after that a static screen must send nothing at all.
    let mut settle = 0;
    while pipeline
        .recv_timeout(Duration::from_millis(300))
        .unwrap()
        .is_some()
    {
        settle += 1;
        assert!(settle < 5, "static screen keeps producing frames");
    }
    assert!(
        pipeline
            .recv_timeout(Duration::from_millis(1500))
            .unwrap()
            .is_none(),
        "a frame was encoded for an unchanged screen"
    );

    // Still alive: a change is sent, and a keyframe comes on request.
    painter.fill(10, 10, 40, 20, 0xff0000).unwrap();
    painter.sync().unwrap();
    let changed = pipeline
        .recv_timeout(Duration::from_secs(5))
        .unwrap()
        .expect("change sent");
    assert!(!changed.is_keyframe);
    while pipeline
        .recv_timeout(Duration::from_millis(300))
        .unwrap()
        .is_some()
    {}
    pipeline.request_keyframe();
    let key = pipeline
        .recv_timeout(Duration::from_secs(5))
        .unwrap()
        .expect("keyframe sent");
    assert!(key.is_keyframe);
}

fn assert_encodes_and_decodes(encoder: &mut dyn Encoder) {
    let pattern = test_pattern(W, H, 2);
    let mut i420 = I420Frame::new(W, H);
    i420.convert_from(&frame_of(&pattern, W, H)).unwrap();
    let frame = encoder
        .encode(&i420, Duration::ZERO)
        .unwrap()
        .expect("encoded");
    let image = Decoder::new()
        .unwrap()
        .decode(&frame.data)
        .unwrap()
        .expect("decoded");
    assert!(quality::psnr_rgb(&frame_of(&pattern, W, H), &image).unwrap() >= 35.0);
}

#[test]
fn probe_falls_back_to_openh264_when_no_hardware_encoder_opens() {
    // Devices that exist nowhere, so this holds on any machine.
    let candidates = [
        Candidate::on_device(EncoderKind::Vaapi, "/nonexistent/renderD128"),
        Candidate::on_device(EncoderKind::Nvenc, "99"),
    ];
    let (mut encoder, report) = probe_with(&candidates, settings(W, H)).unwrap();
    assert_eq!(report.chosen, EncoderKind::OpenH264);
    assert_eq!(encoder.kind(), EncoderKind::OpenH264);
    assert_eq!(report.attempts.len(), 3);
    for attempt in &report.attempts[..2] {
        let why = attempt
            .outcome
            .as_ref()
            .expect_err("hardware must not open");
        assert!(!why.is_empty());
    }
    assert!(report.attempts[2].outcome.is_ok());
    assert!(
        report.to_string().starts_with("encoder: openh264"),
        "{report}"
    );
    assert_encodes_and_decodes(encoder.as_mut());

    // The real probe of this machine: whatever it picks must work, and
    // everything tried before it must say why it did not.
    let (mut encoder, report) = probe(settings(W, H)).unwrap();
    println!("{report}");
    assert_eq!(
        report.attempts.last().unwrap().candidate.kind,
        report.chosen
    );
    assert!(
        report.attempts[..report.attempts.len() - 1]
            .iter()
            .all(|a| a.outcome.is_err())
    );
    assert!(report.attempts.len() > 1, "hardware candidates were probed");
    assert_encodes_and_decodes(encoder.as_mut());
}

/// Encodes pictures that differ a little each time (a moving block).
fn encoded_sequence(count: usize) -> (Vec<EncodedFrame>, Vec<Vec<u8>>) {
    let mut encoder = OpenH264Encoder::new(settings(W, H)).unwrap();
    let mut frames = Vec::new();
    let mut sources = Vec::new();
    for i in 0..count {
        let mut pattern = test_pattern(W, H, 4);
        for y in 100..140 {
            for x in (20 + i * 12)..(60 + i * 12) {
                pattern[(y * usize::from(W) + x) * 4..][..3].copy_from_slice(&[0, 200, 0]);
            }
        }
        let mut i420 = I420Frame::new(W, H);
        i420.convert_from(&frame_of(&pattern, W, H)).unwrap();
        if i == count - 1 {
            encoder.request_keyframe();
        }
        frames.push(
            encoder
                .encode(&i420, Duration::from_millis(i as u64 * 33))
                .unwrap()
                .unwrap(),
        );
        sources.push(pattern);
    }
    (frames, sources)
}

#[test]
fn corrupt_access_unit_is_an_error_and_decoding_recovers_at_the_next_keyframe() {
    let (frames, sources) = encoded_sequence(6);
    assert!(frames[0].is_keyframe && frames[5].is_keyframe);
    assert!(frames[1..5].iter().all(|f| !f.is_keyframe));
    let mut decoder = Decoder::new().unwrap();
    assert!(decoder.decode(&frames[0].data).unwrap().is_some());
    assert!(decoder.decode(&frames[1].data).unwrap().is_some());

    // Damage the slice data of frame 2: keep the NAL header, overwrite
    // the rest with an invalid bit pattern.
    let mut damaged = frames[2].data.clone();
    let slice_start = damaged.len() / 4;
    damaged.truncate(slice_start + 8);
    for b in &mut damaged[slice_start..] {
        *b = 0xff;
    }
    let err = decoder
        .decode(&damaged)
        .expect_err("damage must be reported");
    assert!(matches!(err, DecodeError::Corrupt(_)), "{err}");
    // P-frames after it cannot be shown correctly: refused until a keyframe.
    assert!(matches!(
        decoder.decode(&frames[3].data),
        Err(DecodeError::NeedKeyframe)
    ));
    assert!(decoder.needs_keyframe());
    let image = decoder
        .decode(&frames[5].data)
        .unwrap()
        .expect("keyframe decodes");
    let psnr = quality::psnr_rgb(&frame_of(&sources[5], W, H), &image).unwrap();
    assert!(psnr >= 35.0, "after recovery: {psnr:.2} dB");
    assert!(!decoder.needs_keyframe());
}

#[test]
fn lost_access_unit_is_an_error_and_decoding_recovers_at_the_next_keyframe() {
    let (frames, sources) = encoded_sequence(6);
    let mut decoder = Decoder::new().unwrap();
    decoder.decode(&frames[0].data).unwrap();
    decoder.decode(&frames[1].data).unwrap();
    // Frame 2 is lost: frame 3 refers to a picture the decoder never saw.
    let lost = decoder.decode(&frames[3].data);
    assert!(lost.is_err(), "a gap in the stream must be reported");
    assert!(matches!(
        decoder.decode(&frames[4].data),
        Err(DecodeError::NeedKeyframe)
    ));
    let image = decoder
        .decode(&frames[5].data)
        .unwrap()
        .expect("keyframe decodes");
    assert!(quality::psnr_rgb(&frame_of(&sources[5], W, H), &image).unwrap() >= 35.0);
}

#[test]
fn resolution_change_mid_stream_is_handled() {
    // Xvfb cannot change its size; a nested Xephyr can, through RandR.
    let host = Xvfb::start(800, 600).unwrap();
    let nested = Xephyr::start(host.display(), u32::from(W), u32::from(H)).unwrap();
    let pattern = paint_pattern(nested.display(), W, H, 5);
    let mut capturer = Capturer::open(Some(nested.display()), 0).unwrap();
    capture_until(&mut capturer, &pattern);
    let mut encoder = OpenH264Encoder::new(settings(W, H)).unwrap();
    let mut decoder = Decoder::new().unwrap();
    let first = encode_capture(&mut encoder, &mut capturer, 0).unwrap();
    assert_eq!((first.width, first.height), (W, H));
    assert_eq!(decoder.decode(&first.data).unwrap().unwrap().width, W);

    let (w2, h2) = (640u16, 480u16);
    nested.set_size(u32::from(w2), u32::from(h2)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match capturer.capture() {
            Err(CaptureError::ResolutionChanged { before, now }) => {
                assert_eq!(before, (W, H));
                assert_eq!(now, (w2, h2));
                break;
            }
            Ok(_) => assert!(Instant::now() < deadline, "resolution change not reported"),
            Err(e) => panic!("unexpected error: {e}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!((capturer.info().width, capturer.info().height), (w2, h2));
    let pattern = paint_pattern(nested.display(), w2, h2, 7);
    let captured = capture_until(&mut capturer, &pattern);
    let mut i420 = I420Frame::new(w2, h2);
    i420.convert_from(&frame_of(&captured, w2, h2)).unwrap();
    let second = encoder
        .encode(&i420, Duration::from_millis(100))
        .unwrap()
        .unwrap();
    assert!(second.is_keyframe, "a new size starts with a keyframe");
    assert_eq!((second.width, second.height), (w2, h2));
    let image = decoder
        .decode(&second.data)
        .unwrap()
        .expect("new size decodes");
    assert_eq!((image.width, image.height), (w2, h2));
    let psnr = quality::psnr_rgb(&frame_of(&captured, w2, h2), &image).unwrap();
    assert!(psnr >= 35.0, "after the change: {psnr:.2} dB");
}

#[test]
fn display_going_away_is_a_typed_error_not_a_crash() {
    let mut xvfb = Xvfb::start(u32::from(W), u32::from(H)).unwrap();
    let mut capturer = Capturer::open(Some(xvfb.display()), 0).unwrap();
    capturer.capture().unwrap();
    xvfb.kill();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match capturer.capture() {
            Err(CaptureError::DisplayGone(_)) => break,
            Ok(_) => assert!(
                Instant::now() < deadline,
                "a dead display kept delivering frames"
            ),
            Err(e) => panic!("unexpected error: {e}"),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(matches!(
        Capturer::open(Some(xvfb.display()), 0),
        Err(CaptureError::Connect { .. })
    ));
}

#[test]
fn low_bitrate_lowers_the_frame_rate_and_holds_the_rate() {
    // A 720p screen that changes all the time, squeezed to 150 kbit/s.
    let (w, h) = (1280u16, 720u16);
    let xvfb = Xvfb::start(u32::from(w), u32::from(h)).unwrap();
    let painter = Painter::connect(xvfb.display()).unwrap();
    let patterns: Vec<Vec<u8>> = (0..4).map(|s| test_pattern(w, h, s)).collect();
    let pipeline = Pipeline::start(PipelineConfig {
        x_display: Some(xvfb.display().to_owned()),
        display_index: 0,
        bitrate_bps: 4_000_000,
        max_fps: 30.0,
        encoder: EncoderChoice::Only(EncoderKind::OpenH264),
    })
    .unwrap();
    pipeline.set_bitrate(150_000);
    let start = Instant::now();
    let measure_from = Duration::from_secs(1);
    let (mut frames, mut bytes) = (0u32, 0usize);
    let mut i = 0;
    while start.elapsed() < Duration::from_secs(4) {
        painter
            .put_bgrx(0, 0, w, h, &patterns[i % patterns.len()])
            .unwrap();
        painter.sync().unwrap();
        i += 1;
        if let Some(f) = pipeline.recv_timeout(Duration::from_millis(30)).unwrap()
            && start.elapsed() > measure_from
        {
            frames += 1;
            bytes += f.data.len();
        }
    }
    let secs = (start.elapsed() - measure_from).as_secs_f64();
    let fps = f64::from(frames) / secs;
    let kbps = bytes as f64 * 8.0 / 1000.0 / secs;
    let allowed = f64::from(fernsicht_capture::rate::frame_rate_for(150_000, w, h, 30.0));
    assert!(frames > 0, "frames still flow at a low bit rate");
    assert!(
        fps <= allowed + 1.0,
        "{fps:.1} fps, policy allows {allowed:.1}"
    );
    assert!(
        kbps < 150.0 * 2.0,
        "{kbps:.0} kbit/s at {fps:.1} fps for a 150 kbit/s target"
    );
}
