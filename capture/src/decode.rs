//! H.264 decoding to RGBA for the viewer, robust to damaged input.
//!
//! A decoder that was fed a damaged or missing access unit shows garbage
//! until the next keyframe, because every later P-frame builds on the
//! broken picture. So after any error this decoder refuses P-frames with
//! [`DecodeError::NeedKeyframe`] (the viewer then asks the host for one)
//! and starts over, with a fresh openh264 instance, at the next IDR.

use openh264::decoder::{DecodedYUV, Decoder as OhDecoder};
use openh264::formats::YUVSource;
use yuv::YuvPlanarImage;

use crate::convert::{MATRIX, RANGE};

/// A decoded picture: tightly packed RGBA8 rows, as
/// `egui::ColorImage::from_rgba_unmultiplied` takes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RgbaImage {
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// `width * height * 4` bytes, alpha 255.
    pub pixels: Vec<u8>,
}

/// Why a picture could not be shown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The decoder could not be created.
    #[error("cannot create the H.264 decoder: {0}")]
    Init(String),
    /// The access unit is damaged or refers to a lost one. Ask for a
    /// keyframe; decoding resumes there.
    #[error("damaged H.264 access unit: {0}")]
    Corrupt(String),
    /// Still waiting for a keyframe after an error or at the start.
    #[error("waiting for a keyframe")]
    NeedKeyframe,
}

/// Whether an Annex-B access unit holds an IDR slice (NAL type 5).
pub fn contains_idr(access_unit: &[u8]) -> bool {
    openh264::nal_units(access_unit).any(|nal| {
        let header = nal
            .iter()
            .position(|&b| b != 0)
            .and_then(|i| nal.get(i + 1));
        // `nal_units` yields NALs with their start code (00 00 01 / 00 00 00 01).
        header.is_some_and(|h| h & 0x1f == 5)
    })
}

/// Decodes access units of one stream to RGBA.
pub struct Decoder {
    inner: OhDecoder,
    synced: bool,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("synced", &self.synced)
            .finish_non_exhaustive()
    }
}

fn new_inner() -> Result<OhDecoder, DecodeError> {
    OhDecoder::new().map_err(|e| DecodeError::Init(e.to_string()))
}

impl Decoder {
    /// A decoder waiting for the first keyframe.
    pub fn new() -> Result<Self, DecodeError> {
        Ok(Self {
            inner: new_inner()?,
            synced: false,
        })
    }

    /// Whether the decoder needs a keyframe before it can show anything.
    pub fn needs_keyframe(&self) -> bool {
        !self.synced
    }

    /// Decodes one access unit. `Ok(None)` means it produced no picture
    /// (e.g. parameter sets alone).
    pub fn decode(&mut self, access_unit: &[u8]) -> Result<Option<RgbaImage>, DecodeError> {
        if !self.synced {
            if !contains_idr(access_unit) {
                return Err(DecodeError::NeedKeyframe);
            }
            self.inner = new_inner()?;
            self.synced = true;
        }
        let result = match self.inner.decode(access_unit) {
            Ok(Some(yuv)) => to_rgba(&yuv).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(DecodeError::Corrupt(e.to_string())),
        };
        if result.is_err() {
            self.synced = false;
        }
        result
    }
}

fn to_rgba(yuv: &DecodedYUV<'_>) -> Result<RgbaImage, DecodeError> {
    let (w, h) = yuv.dimensions();
    let (ys, us, vs) = yuv.strides();
    let (width, height) = (
        u16::try_from(w).map_err(|e| DecodeError::Corrupt(e.to_string()))?,
        u16::try_from(h).map_err(|e| DecodeError::Corrupt(e.to_string()))?,
    );
    let image = YuvPlanarImage {
        y_plane: yuv.y(),
        y_stride: ys as u32,
        u_plane: yuv.u(),
        u_stride: us as u32,
        v_plane: yuv.v(),
        v_stride: vs as u32,
        width: w as u32,
        height: h as u32,
    };
    let mut pixels = vec![0u8; w * h * 4];
    yuv::yuv420_to_rgba(&image, &mut pixels, (w * 4) as u32, RANGE, MATRIX)
        .map_err(|e| DecodeError::Corrupt(e.to_string()))?;
    Ok(RgbaImage {
        width,
        height,
        pixels,
    })
}
