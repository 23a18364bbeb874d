//! openh264, Cisco's software H.264 encoder, tuned for screen sharing.

use std::time::Duration;

use openh264::Timestamp;
use openh264::encoder::{
    BitRate, Complexity, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, RateControlMode,
    UsageType, VuiConfig,
};
use openh264::formats::YUVSource;

use super::{EncodeError, EncodedFrame, Encoder, EncoderKind, EncoderSettings};
use crate::convert::I420Frame;

const KIND: EncoderKind = EncoderKind::OpenH264;

fn open_error(e: impl std::fmt::Display) -> EncodeError {
    EncodeError::Open {
        kind: KIND,
        reason: e.to_string(),
    }
}

fn encode_error(e: impl std::fmt::Display) -> EncodeError {
    EncodeError::Encode {
        kind: KIND,
        reason: e.to_string(),
    }
}

/// openh264 tuned for remote support: screen-content real-time mode,
/// constrained baseline (no B-frames), bit-rate rate control with frame
/// skipping (openh264 only holds a bit rate when it may skip), no periodic
/// IDR and no IDR on scene changes (keyframes only on request), BT.601
/// colours signalled in the VUI.
///
/// Screen-content mode is the slow choice for typing and the right one for
/// scrolling. Measured here (release, nasm): at 1080p with one typed
/// character a frame it spends ~16 ms a frame, while camera mode with
/// background detection needs ~5 ms; but scrolling a text page at 720p,
/// screen-content mode keeps ~35 dB at ~1.7 Mbit/s where camera mode falls
/// to ~24 dB and drops 9 frames in 10 at 5 Mbit/s. Unreadable scrolling is
/// worse than a slower encoder.
pub struct OpenH264Encoder {
    inner: openh264::encoder::Encoder,
    settings: EncoderSettings,
    size: Option<(u16, u16)>,
    keyframe_pending: bool,
}

impl std::fmt::Debug for OpenH264Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenH264Encoder")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn config(settings: &EncoderSettings) -> EncoderConfig {
    EncoderConfig::new()
        .usage_type(UsageType::ScreenContentRealTime)
        // Neither is supported in screen-content mode (openh264 warns and
        // turns them off); say so up front.
        .background_detection(false)
        .adaptive_quantization(false)
        .scene_change_detect(false)
        .rate_control_mode(RateControlMode::Bitrate)
        .bitrate(BitRate::from_bps(settings.bitrate_bps))
        .max_frame_rate(FrameRate::from_hz(settings.max_fps))
        .skip_frames(true)
        .complexity(Complexity::Low)
        .intra_frame_period(IntraFramePeriod::from_num_frames(0))
        .num_threads(1)
        .vui(VuiConfig::bt601())
}

impl OpenH264Encoder {
    /// Opens an encoder; the size is taken from the first picture.
    pub fn new(settings: EncoderSettings) -> Result<Self, EncodeError> {
        let api = openh264::OpenH264API::from_source();
        let inner = openh264::encoder::Encoder::with_api_config(api, config(&settings))
            .map_err(open_error)?;
        Ok(Self {
            inner,
            settings,
            size: None,
            keyframe_pending: false,
        })
    }
}

impl Encoder for OpenH264Encoder {
    fn kind(&self) -> EncoderKind {
        KIND
    }

    fn encode(
        &mut self,
        frame: &I420Frame,
        timestamp: Duration,
    ) -> Result<Option<EncodedFrame>, EncodeError> {
        let size = (frame.width(), frame.height());
        if self.size.is_some_and(|s| s != size) {
            // A new size starts a new stream. The crate would re-initialise
            // with the bit rate it was created with; a fresh encoder keeps
            // the rate set since.
            *self = Self::new(EncoderSettings {
                width: size.0,
                height: size.1,
                ..self.settings
            })?;
        }
        self.size = Some(size);
        self.settings.width = size.0;
        self.settings.height = size.1;
        if self.keyframe_pending {
            self.inner.force_intra_frame();
        }
        let ms = u64::try_from(timestamp.as_millis()).unwrap_or(u64::MAX / 2);
        debug_assert_eq!(
            frame.dimensions(),
            (usize::from(size.0), usize::from(size.1))
        );
        let stream = self
            .inner
            .encode_at(frame, Timestamp::from_millis(ms))
            .map_err(encode_error)?;
        let is_keyframe = match stream.frame_type() {
            FrameType::Skip => return Ok(None),
            FrameType::Invalid => return Err(encode_error("encoder returned an invalid frame")),
            FrameType::IDR => true,
            FrameType::I | FrameType::P | FrameType::IPMixed => false,
        };
        let data = stream.to_vec();
        if data.is_empty() {
            return Ok(None);
        }
        if is_keyframe {
            self.keyframe_pending = false;
        }
        Ok(Some(EncodedFrame {
            data,
            is_keyframe,
            width: size.0,
            height: size.1,
            timestamp,
        }))
    }

    fn request_keyframe(&mut self) {
        // Kept until an IDR actually comes out: a skipped frame must not
        // swallow the request.
        self.keyframe_pending = true;
    }

    fn set_rate(&mut self, bitrate_bps: u32, max_fps: f32) -> Result<(), EncodeError> {
        self.settings.bitrate_bps = bitrate_bps;
        self.settings.max_fps = max_fps;
        if self.size.is_none() {
            // Not initialised yet: the first picture opens it with these.
            *self = Self::new(self.settings)?;
            return Ok(());
        }
        let bitrate = i32::try_from(bitrate_bps).map_err(encode_error)?;
        let mut info = openh264_sys2::SBitrateInfo {
            iLayer: openh264_sys2::SPATIAL_LAYER_ALL,
            iBitrate: bitrate,
        };
        let mut max_info = info;
        let mut fps = max_fps;
        // SAFETY: the encoder is initialised (a picture was encoded); each
        // option gets a pointer to the type openh264 documents for it, and
        // only rate parameters change, which the crate does not cache.
        let results = unsafe {
            let raw = self.inner.raw_api();
            [
                raw.set_option(
                    openh264_sys2::ENCODER_OPTION_FRAME_RATE,
                    (&raw mut fps).cast(),
                ),
                raw.set_option(
                    openh264_sys2::ENCODER_OPTION_MAX_BITRATE,
                    (&raw mut max_info).cast(),
                ),
                raw.set_option(
                    openh264_sys2::ENCODER_OPTION_BITRATE,
                    (&raw mut info).cast(),
                ),
            ]
        };
        match results.iter().find(|&&r| r != 0) {
            Some(code) => Err(encode_error(format!("set_option failed with {code}"))),
            None => Ok(()),
        }
    }

    fn settings(&self) -> EncoderSettings {
        self.settings
    }

    fn intra_refresh(&self) -> bool {
        false
    }
}
