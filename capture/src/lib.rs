//! Fernsicht's frame pipeline: from the host's screen to H.264 access units
//! and back to RGBA pixels on the viewer.
//!
//! # Host side
//!
//! The simple way is a [`Pipeline`]: it captures a display, skips the
//! encoder while the screen is static, converts only changed tiles, encodes
//! with the best encoder that really works here, and hands out
//! [`EncodedFrame`]s one at a time (a slow consumer makes it skip pictures,
//! never queue them). The session engine encodes once and seals the same
//! frame for every viewer; [`Pipeline::request_keyframe`] serves a joining
//! or desynchronised viewer and [`Pipeline::set_bitrate`] follows the link
//! (the frame rate drops first, see [`rate`]).
//!
//! ```no_run
//! use std::time::Duration;
//! use fernsicht_capture::{EncoderChoice, Pipeline, PipelineConfig};
//!
//! let pipeline = Pipeline::start(PipelineConfig {
//!     x_display: None,
//!     display_index: 0,
//!     bitrate_bps: 2_000_000,
//!     max_fps: 30.0,
//!     encoder: EncoderChoice::Probe,
//! })?;
//! println!("{}", pipeline.encoder_report()); // "encoder: openh264 (software); VA-API unavailable (…)"
//! while let Some(frame) = pipeline.recv_timeout(Duration::from_millis(500))? {
//!     // seal `frame.data` per viewer and send it
//!     # let _ = frame;
//! }
//! # Ok::<(), fernsicht_capture::PipelineError>(())
//! ```
//!
//! The parts are public for callers that need another arrangement (and for
//! the benchmark): [`Capturer`] and [`list_displays`] (scrap's XShm capture
//! with typed [`CaptureError`]s for a resolution change or a vanished
//! display), [`ChangeDetector`] (per-tile hashes), [`I420Frame`] (SIMD
//! BGRA→I420 of whole frames or damaged tiles), the [`Encoder`] trait with
//! [`OpenH264Encoder`] and FFmpeg hardware encoders (feature `hardware`),
//! [`probe`] with its [`ProbeReport`], and [`LatestSlot`].
//!
//! # Viewer side
//!
//! A [`Decoder`] turns access units into [`RgbaImage`]s for an egui
//! texture. After a damaged or missing access unit it returns an error and
//! then [`DecodeError::NeedKeyframe`] until a keyframe arrives: the viewer
//! asks the host for one and the picture recovers there.
//!
//! # Features
//!
//! - `hardware` (default): VA-API, NVENC and Quick Sync on Linux, plus the
//!   Windows and macOS encoders, through FFmpeg's libraries (needs the
//!   libav* development packages and libclang to build).
//! - `test-support` (default): [`testing`], a private Xvfb per test, a
//!   nested resizable Xephyr, and a painter for exact test pictures.
//!
//! Capture is X11-only for now (scrap's Windows and macOS back ends exist
//! but are not wired up).

pub mod capture;
pub mod change;
pub mod convert;
pub mod decode;
pub mod encode;
pub mod handoff;
pub mod pipeline;
pub mod quality;
pub mod rate;
#[cfg(feature = "test-support")]
pub mod scenes;
#[cfg(feature = "test-support")]
pub mod testing;

pub use capture::{CaptureError, CapturedFrame, Capturer, DisplayInfo, PixelFormat, list_displays};
pub use change::{ChangeDetector, Damage, Rect};
pub use convert::{ConvertError, I420Frame};
pub use decode::{DecodeError, Decoder, RgbaImage};
pub use encode::{
    Candidate, EncodeError, EncodedFrame, Encoder, EncoderKind, EncoderSettings, OpenH264Encoder,
    ProbeAttempt, ProbeReport, probe, probe_with,
};
pub use handoff::LatestSlot;
pub use pipeline::{EncoderChoice, Pipeline, PipelineConfig, PipelineError};
