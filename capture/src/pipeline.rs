//! The host's frame pipeline: capture → change detection → I420 → encode,
//! on two threads joined by a [`LatestSlot`].
//!
//! The capture thread polls the screen at the frame rate, hashes it, and
//! converts and publishes a picture only when something changed (or a
//! keyframe was asked for, or the encoder dropped the last picture). The
//! encode thread takes the newest picture, paces itself to the frame rate
//! that the current bit rate allows ([`rate::frame_rate_for`]) and hands
//! each access unit to the consumer through a one-place channel: when the
//! consumer (the link) is slow, the encoder waits and the capture side
//! overwrites pictures, so latency stays at about one frame.
//!
//! [`rate::frame_rate_for`]: crate::rate::frame_rate_for

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::capture::{CaptureError, Capturer, list_displays};
use crate::change::ChangeDetector;
use crate::convert::{ConvertError, I420Frame};
use crate::encode::{
    self, EncodeError, EncodedFrame, Encoder, EncoderKind, EncoderSettings, ProbeReport,
};
use crate::handoff::LatestSlot;
use crate::rate;

/// Which encoder the pipeline uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncoderChoice {
    /// Probe hardware encoders, fall back to openh264.
    Probe,
    /// Use this one (fails if it does not open).
    Only(EncoderKind),
}

/// How to start a [`Pipeline`].
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// X display name; `None` for `$DISPLAY`.
    pub x_display: Option<String>,
    /// Monitor index from [`list_displays`].
    pub display_index: usize,
    /// Initial target bit rate.
    pub bitrate_bps: u32,
    /// Highest frame rate.
    pub max_fps: f32,
    /// Encoder selection.
    pub encoder: EncoderChoice,
}

/// Why the pipeline stopped or could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// Capturing failed (e.g. the display went away).
    #[error(transparent)]
    Capture(#[from] CaptureError),
    /// Colour conversion failed.
    #[error(transparent)]
    Convert(#[from] ConvertError),
    /// The encoder failed.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The pipeline's threads are gone.
    #[error("the pipeline has stopped")]
    Stopped,
}

struct Picture {
    frame: I420Frame,
    timestamp: Duration,
    keyframe: bool,
}

#[derive(Default)]
struct Control {
    stop: AtomicBool,
    keyframe: AtomicBool,
    repeat: AtomicBool,
    bitrate_bps: AtomicU32,
    error: Mutex<Option<PipelineError>>,
}

impl Control {
    fn fail(&self, e: PipelineError) {
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(e);
    }
}

/// A running capture-and-encode pipeline. Dropping it stops both threads.
pub struct Pipeline {
    control: Arc<Control>,
    slot: Arc<LatestSlot<Picture>>,
    output: Option<Receiver<Result<EncodedFrame, PipelineError>>>,
    report: ProbeReport,
    threads: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("report", &self.report)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// Opens the display, picks the encoder and starts both threads.
    pub fn start(config: PipelineConfig) -> Result<Self, PipelineError> {
        let displays = list_displays(config.x_display.as_deref())?;
        let info = displays
            .get(config.display_index)
            .ok_or(CaptureError::NoSuchDisplay {
                index: config.display_index,
                count: displays.len(),
            })?;
        let (width, height) = (info.width & !1, info.height & !1);
        let fps = rate::frame_rate_for(config.bitrate_bps, width, height, config.max_fps);
        let settings = EncoderSettings {
            width,
            height,
            bitrate_bps: config.bitrate_bps,
            max_fps: fps,
        };
        let (encoder, report) = match config.encoder {
            EncoderChoice::Probe => encode::probe(settings)?,
            EncoderChoice::Only(kind) => (
                encode::open(kind, settings)?,
                ProbeReport {
                    chosen: kind,
                    attempts: Vec::new(),
                },
            ),
        };
        let control = Arc::new(Control::default());
        control
            .bitrate_bps
            .store(config.bitrate_bps, Ordering::Relaxed);
        let slot = Arc::new(LatestSlot::new());
        let config_max_fps = config.max_fps;
        let (tx, rx) = sync_channel(1);
        let (ready_tx, ready_rx) = sync_channel(1);
        let capture = {
            let (control, slot) = (Arc::clone(&control), Arc::clone(&slot));
            std::thread::Builder::new()
                .name("capture".into())
                .spawn(move || capture_loop(&config, &control, &slot, &ready_tx))
                .map_err(|_| PipelineError::Stopped)?
        };
        // The capturer is opened on its thread; wait for it.
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = capture.join();
                return Err(e.into());
            }
            Err(_) => return Err(PipelineError::Stopped),
        }
        let max_fps = config_max_fps;
        let encode = {
            let (control, slot) = (Arc::clone(&control), Arc::clone(&slot));
            std::thread::Builder::new()
                .name("encode".into())
                .spawn(move || encode_loop(encoder, max_fps, &control, &slot, &tx))
                .map_err(|_| PipelineError::Stopped)?
        };
        Ok(Self {
            control,
            slot,
            output: Some(rx),
            report,
            threads: vec![capture, encode],
        })
    }

    /// Which encoder runs, and why the others did not.
    pub fn encoder_report(&self) -> &ProbeReport {
        &self.report
    }

    /// Makes the next encoded frame a keyframe (a viewer joined or lost sync).
    pub fn request_keyframe(&self) {
        self.control.keyframe.store(true, Ordering::Relaxed);
    }

    /// Changes the target bit rate; the frame rate follows.
    pub fn set_bitrate(&self, bitrate_bps: u32) {
        self.control
            .bitrate_bps
            .store(bitrate_bps, Ordering::Relaxed);
    }

    /// Pictures the encoder never saw because a newer one replaced them.
    pub fn skipped_pictures(&self) -> u64 {
        self.slot.skipped()
    }

    /// Waits up to `timeout` for the next access unit. `Ok(None)` on
    /// time-out (a static screen sends nothing); an error ends the stream.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<EncodedFrame>, PipelineError> {
        let Some(rx) = &self.output else {
            return Err(PipelineError::Stopped);
        };
        match rx.recv_timeout(timeout) {
            Ok(frame) => frame.map(Some),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(PipelineError::Stopped),
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.control.stop.store(true, Ordering::Relaxed);
        self.slot.close();
        // Unblocks an encoder waiting to hand over a frame.
        self.output = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn capture_loop(
    config: &PipelineConfig,
    control: &Control,
    slot: &LatestSlot<Picture>,
    ready: &SyncSender<Result<(), CaptureError>>,
) {
    let mut capturer = match Capturer::open(config.x_display.as_deref(), config.display_index) {
        Ok(c) => {
            let _ = ready.send(Ok(()));
            c
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let interval = Duration::from_secs_f32(1.0 / config.max_fps.clamp(1.0, 60.0));
    let start = Instant::now();
    let mut next = start;
    let mut detector = ChangeDetector::new();
    let mut picture: Option<I420Frame> = None;
    while !control.stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        next = next.max(now) + interval;
        let frame = match capturer.capture() {
            Ok(frame) => frame,
            Err(CaptureError::ResolutionChanged { .. }) => {
                // The next capture has the new size; everything is new.
                detector.reset();
                picture = None;
                continue;
            }
            Err(e) => {
                control.fail(e.into());
                break;
            }
        };
        let damage = detector.detect(&frame);
        let keyframe = control.keyframe.swap(false, Ordering::Relaxed);
        let repeat = control.repeat.swap(false, Ordering::Relaxed);
        let fresh = picture.is_none();
        if damage.is_empty() && !keyframe && !repeat && !fresh {
            continue;
        }
        let target = picture.get_or_insert_with(|| I420Frame::new(frame.width, frame.height));
        let converted = if fresh {
            target.convert_from(&frame)
        } else {
            target.convert_damage(&frame, &damage.rects)
        };
        if let Err(e) = converted {
            control.fail(e.into());
            break;
        }
        slot.publish_merging(
            Picture {
                frame: target.clone(),
                timestamp: start.elapsed(),
                keyframe,
            },
            |old, new| new.keyframe |= old.keyframe,
        );
    }
    slot.close();
}

fn encode_loop(
    mut encoder: Box<dyn Encoder>,
    max_fps: f32,
    control: &Control,
    slot: &LatestSlot<Picture>,
    out: &SyncSender<Result<EncodedFrame, PipelineError>>,
) {
    let mut bitrate = encoder.settings().bitrate_bps;
    let mut fps = encoder.settings().max_fps;
    let mut last: Option<Instant> = None;
    while !control.stop.load(Ordering::Relaxed) {
        let Some(mut picture) = slot.wait_take(Duration::from_millis(100)) else {
            if slot.is_closed() {
                let error = control
                    .error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take();
                let _ = out.send(Err(error.unwrap_or(PipelineError::Stopped)));
                return;
            }
            continue;
        };
        let wanted = control.bitrate_bps.load(Ordering::Relaxed);
        if wanted != bitrate {
            let s = encoder.settings();
            fps = rate::frame_rate_for(wanted, s.width, s.height, max_fps);
            if let Err(e) = encoder.set_rate(wanted, fps) {
                let _ = out.send(Err(e.into()));
                return;
            }
            bitrate = wanted;
        }
        // Pace to the frame rate the bit rate allows; whatever arrives
        // meanwhile replaces the picture (keeping a keyframe request).
        if let Some(last) = last {
            let due = last + Duration::from_secs_f32(1.0 / fps);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
                if let Some(newer) = slot.take() {
                    let keyframe = picture.keyframe;
                    picture = newer;
                    picture.keyframe |= keyframe;
                }
            }
        }
        last = Some(Instant::now());
        if picture.keyframe {
            encoder.request_keyframe();
        }
        match encoder.encode(&picture.frame, picture.timestamp) {
            Ok(Some(frame)) => {
                if out.send(Ok(frame)).is_err() {
                    return;
                }
            }
            // Dropped by rate control: have the capture side send the
            // current picture again even if nothing changes.
            Ok(None) => control.repeat.store(true, Ordering::Relaxed),
            Err(e) => {
                let _ = out.send(Err(e.into()));
                return;
            }
        }
    }
}
