//! H.264 encoders behind one trait, and the start-up probe that picks one.
//!
//! Every encoder produces an Annex-B access unit per picture, never uses
//! B-frames (a frame leaves the encoder as soon as it is encoded) and has no
//! periodic IDR: a keyframe is sent when someone asks for one (a viewer
//! joins, a decoder lost sync), because on a reliable link periodic
//! keyframes only cost bandwidth. Encoders that can refresh gradually
//! (NVENC, QSV: intra refresh) do so; openh264 cannot, and says so through
//! [`Encoder::intra_refresh`].

mod openh264;
mod probe;

#[cfg(feature = "hardware")]
mod ffmpeg;

use std::time::Duration;

pub use self::openh264::OpenH264Encoder;
pub use self::probe::{Candidate, ProbeAttempt, ProbeReport, probe, probe_with};

use crate::convert::I420Frame;

/// One encoded picture: an H.264 access unit in Annex-B byte-stream form
/// (start codes, SPS/PPS before every keyframe), ready to seal and send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedFrame {
    /// NAL units with start codes.
    pub data: Vec<u8>,
    /// Whether a decoder can start here (IDR with parameter sets).
    pub is_keyframe: bool,
    /// Picture width.
    pub width: u16,
    /// Picture height.
    pub height: u16,
    /// Capture time relative to the start of the stream.
    pub timestamp: Duration,
}

/// Which encoder implementation runs; the app shows [`EncoderKind::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EncoderKind {
    /// Cisco's openh264, in software; always available.
    OpenH264,
    /// VA-API (Intel/AMD on Linux), through FFmpeg's `h264_vaapi`.
    Vaapi,
    /// NVIDIA NVENC, through FFmpeg's `h264_nvenc` (Linux and Windows).
    Nvenc,
    /// Intel Quick Sync, through FFmpeg's `h264_qsv` (Linux and Windows).
    Qsv,
    /// Windows Media Foundation, through FFmpeg's `h264_mf`.
    MediaFoundation,
    /// AMD AMF on Windows, through FFmpeg's `h264_amf`.
    Amf,
    /// Apple VideoToolbox on macOS, through FFmpeg's `h264_videotoolbox`.
    VideoToolbox,
}

impl EncoderKind {
    /// A short human name, e.g. "openh264 (software)" or "NVENC (hardware)".
    pub fn name(self) -> &'static str {
        match self {
            Self::OpenH264 => "openh264 (software)",
            Self::Vaapi => "VA-API (hardware)",
            Self::Nvenc => "NVENC (hardware)",
            Self::Qsv => "Quick Sync (hardware)",
            Self::MediaFoundation => "Media Foundation (hardware)",
            Self::Amf => "AMF (hardware)",
            Self::VideoToolbox => "VideoToolbox (hardware)",
        }
    }

    /// FFmpeg's name for the encoder, or `None` for openh264.
    pub fn ffmpeg_name(self) -> Option<&'static str> {
        match self {
            Self::OpenH264 => None,
            Self::Vaapi => Some("h264_vaapi"),
            Self::Nvenc => Some("h264_nvenc"),
            Self::Qsv => Some("h264_qsv"),
            Self::MediaFoundation => Some("h264_mf"),
            Self::Amf => Some("h264_amf"),
            Self::VideoToolbox => Some("h264_videotoolbox"),
        }
    }

    /// Whether it runs on dedicated hardware.
    pub fn is_hardware(self) -> bool {
        self != Self::OpenH264
    }

    /// The hardware encoders worth trying on this platform, best first.
    pub fn hardware_for_platform() -> &'static [EncoderKind] {
        if cfg!(target_os = "windows") {
            &[Self::Nvenc, Self::Qsv, Self::Amf, Self::MediaFoundation]
        } else if cfg!(target_os = "macos") {
            &[Self::VideoToolbox]
        } else {
            &[Self::Vaapi, Self::Nvenc, Self::Qsv]
        }
    }
}

impl std::fmt::Display for EncoderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What an encoder is opened with.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EncoderSettings {
    /// Picture width (even).
    pub width: u16,
    /// Picture height (even).
    pub height: u16,
    /// Target bit rate in bits per second.
    pub bitrate_bps: u32,
    /// Highest frame rate the stream will carry.
    pub max_fps: f32,
}

/// Why encoding failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoder could not be opened with these settings.
    #[error("cannot open {kind}: {reason}")]
    Open {
        /// Which encoder.
        kind: EncoderKind,
        /// What it said.
        reason: String,
    },
    /// Encoding a picture failed.
    #[error("{kind} failed to encode: {reason}")]
    Encode {
        /// Which encoder.
        kind: EncoderKind,
        /// What it said.
        reason: String,
    },
    /// This build has no support for the encoder.
    #[error("{0} is not built in (enable the `hardware` feature)")]
    NotBuilt(EncoderKind),
}

/// An H.264 encoder. The host session engine encodes once per captured
/// change and seals the same [`EncodedFrame`] for every viewer.
pub trait Encoder: Send {
    /// Which implementation this is.
    fn kind(&self) -> EncoderKind;

    /// Encodes one picture. `Ok(None)` means the rate control dropped it
    /// (the picture is not in the stream; send the next change anyway).
    fn encode(
        &mut self,
        frame: &I420Frame,
        timestamp: Duration,
    ) -> Result<Option<EncodedFrame>, EncodeError>;

    /// Makes the next encoded picture an IDR keyframe with parameter sets.
    fn request_keyframe(&mut self);

    /// Changes the target bit rate and frame rate while running.
    fn set_rate(&mut self, bitrate_bps: u32, max_fps: f32) -> Result<(), EncodeError>;

    /// The settings in force (size follows the last encoded picture).
    fn settings(&self) -> EncoderSettings;

    /// Whether the encoder repairs the picture gradually with intra refresh.
    fn intra_refresh(&self) -> bool;
}

/// Opens an encoder of `kind` directly, without probing.
pub fn open(kind: EncoderKind, settings: EncoderSettings) -> Result<Box<dyn Encoder>, EncodeError> {
    probe::open_candidate(&Candidate::new(kind), settings)
}
