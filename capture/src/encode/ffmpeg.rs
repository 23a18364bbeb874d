//! Hardware H.264 encoders through FFmpeg's libraries.
//!
//! NVENC, Quick Sync, AMF, Media Foundation and VideoToolbox take frames in
//! system memory (NV12); VA-API needs them uploaded into a hardware frame
//! pool first, which is the one place this module speaks FFmpeg's C API
//! directly. Every encoder is opened for low latency (no B-frames, no
//! look-ahead, constant bit rate, no periodic IDR) with intra refresh where
//! the encoder has it.

use std::ffi::CString;
use std::ptr;
use std::time::Duration;

use ff::ffi;
use ffmpeg_next as ff;

use super::{EncodeError, EncodedFrame, Encoder, EncoderKind, EncoderSettings};
use crate::convert::I420Frame;

fn open_error(kind: EncoderKind, reason: impl std::fmt::Display) -> EncodeError {
    EncodeError::Open {
        kind,
        reason: reason.to_string(),
    }
}

fn encode_error(kind: EncoderKind, reason: impl std::fmt::Display) -> EncodeError {
    EncodeError::Encode {
        kind,
        reason: reason.to_string(),
    }
}

/// Low-latency options, per FFmpeg encoder.
fn options(kind: EncoderKind, device: Option<&str>) -> ff::Dictionary<'static> {
    let mut o = ff::Dictionary::new();
    match kind {
        EncoderKind::Nvenc => {
            o.set("preset", "p1");
            o.set("tune", "ull");
            o.set("zerolatency", "1");
            o.set("delay", "0");
            o.set("rc", "cbr");
            o.set("intra-refresh", "1");
            o.set("forced-idr", "1");
            if let Some(gpu) = device {
                o.set("gpu", gpu);
            }
        }
        EncoderKind::Qsv => {
            o.set("preset", "veryfast");
            o.set("async_depth", "1");
            o.set("look_ahead", "0");
            o.set("forced_idr", "1");
            o.set("int_ref_type", "vertical");
        }
        EncoderKind::Vaapi => {
            o.set("rc_mode", "CBR");
        }
        EncoderKind::MediaFoundation => {
            o.set("scenario", "display_remoting");
            o.set("rate_control", "cbr");
            o.set("hw_encoding", "1");
        }
        EncoderKind::Amf => {
            o.set("usage", "ultralowlatency");
            o.set("rc", "cbr");
        }
        EncoderKind::VideoToolbox => {
            o.set("realtime", "1");
            o.set("allow_sw", "0");
        }
        EncoderKind::OpenH264 => {}
    }
    o
}

/// A VA-API device and frame pool (owned `AVBufferRef`s).
struct VaapiFrames {
    device: *mut ffi::AVBufferRef,
    frames: *mut ffi::AVBufferRef,
}

// SAFETY: the buffers are reference-counted FFmpeg objects used only by
// the encoder that owns this value, from one thread at a time.
unsafe impl Send for VaapiFrames {}

impl VaapiFrames {
    fn new(device_path: &str, width: u16, height: u16) -> Result<Self, EncodeError> {
        let kind = EncoderKind::Vaapi;
        let path = CString::new(device_path).map_err(|e| open_error(kind, e))?;
        let mut this = Self {
            device: ptr::null_mut(),
            frames: ptr::null_mut(),
        };
        // SAFETY: plain FFmpeg C API use; every pointer is checked before
        // use and released in Drop.
        unsafe {
            let err = ffi::av_hwdevice_ctx_create(
                &mut this.device,
                ffi::AVHWDeviceType::AV_HWDEVICE_TYPE_VAAPI,
                path.as_ptr(),
                ptr::null_mut(),
                0,
            );
            if err < 0 {
                return Err(open_error(
                    kind,
                    format!(
                        "no VA-API device at {device_path}: {}",
                        ff::Error::from(err)
                    ),
                ));
            }
            this.frames = ffi::av_hwframe_ctx_alloc(this.device);
            if this.frames.is_null() {
                return Err(open_error(kind, "cannot allocate a VA-API frame pool"));
            }
            let ctx = (*this.frames).data.cast::<ffi::AVHWFramesContext>();
            (*ctx).format = ffi::AVPixelFormat::AV_PIX_FMT_VAAPI;
            (*ctx).sw_format = ffi::AVPixelFormat::AV_PIX_FMT_NV12;
            (*ctx).width = i32::from(width);
            (*ctx).height = i32::from(height);
            (*ctx).initial_pool_size = 4;
            let err = ffi::av_hwframe_ctx_init(this.frames);
            if err < 0 {
                return Err(open_error(
                    kind,
                    format!("VA-API frame pool: {}", ff::Error::from(err)),
                ));
            }
        }
        Ok(this)
    }
}

impl Drop for VaapiFrames {
    fn drop(&mut self) {
        // SAFETY: both are null or owned references.
        unsafe {
            ffi::av_buffer_unref(&mut self.frames);
            ffi::av_buffer_unref(&mut self.device);
        }
    }
}

/// An FFmpeg encoder (hardware or not) opened for low latency.
pub(crate) struct FfmpegEncoder {
    kind: EncoderKind,
    device: Option<String>,
    settings: EncoderSettings,
    encoder: ff::encoder::Video,
    vaapi: Option<VaapiFrames>,
    nv12: ff::frame::Video,
    packet: ff::Packet,
    keyframe_pending: bool,
    reopen: bool,
}

impl FfmpegEncoder {
    /// Opens `kind` at `settings`; `device` is the VA-API render node or the
    /// NVENC GPU index.
    pub(crate) fn open(
        kind: EncoderKind,
        device: Option<&str>,
        settings: EncoderSettings,
    ) -> Result<Self, EncodeError> {
        ff::init().map_err(|e| open_error(kind, e))?;
        let name = kind.ffmpeg_name().ok_or(EncodeError::NotBuilt(kind))?;
        let codec = ff::encoder::find_by_name(name)
            .ok_or_else(|| open_error(kind, format!("this FFmpeg has no {name}")))?;
        let mut video = ff::codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(|e| open_error(kind, e))?;
        let fps = settings.max_fps.round().max(1.0) as i32;
        video.set_width(u32::from(settings.width));
        video.set_height(u32::from(settings.height));
        video.set_time_base((1, 1000));
        video.set_frame_rate(Some((fps, 1)));
        video.set_bit_rate(settings.bitrate_bps as usize);
        video.set_max_bit_rate(settings.bitrate_bps as usize);
        video.set_max_b_frames(0);
        // No periodic IDR: keyframes come on request.
        video.set_gop(i32::MAX as u32);
        let vaapi = if kind == EncoderKind::Vaapi {
            let path = device.unwrap_or("/dev/dri/renderD128");
            let frames = VaapiFrames::new(path, settings.width, settings.height)?;
            video.set_format(ff::format::Pixel::VAAPI);
            // SAFETY: the context takes its own reference to the pool.
            unsafe {
                (*video.as_mut_ptr()).hw_frames_ctx = ffi::av_buffer_ref(frames.frames);
            }
            Some(frames)
        } else {
            video.set_format(ff::format::Pixel::NV12);
            None
        };
        let encoder = video
            .open_with(options(kind, device))
            .map_err(|e| open_error(kind, format!("{name}: {e}")))?;
        Ok(Self {
            kind,
            device: device.map(str::to_owned),
            settings,
            encoder,
            vaapi,
            nv12: ff::frame::Video::new(
                ff::format::Pixel::NV12,
                u32::from(settings.width),
                u32::from(settings.height),
            ),
            packet: ff::Packet::empty(),
            keyframe_pending: true,
            reopen: false,
        })
    }

    fn fill_nv12(&mut self, frame: &I420Frame) {
        let (w, h) = (usize::from(frame.width()), usize::from(frame.height()));
        let y_stride = self.nv12.stride(0);
        let y_plane = self.nv12.data_mut(0);
        for (row, src) in frame.y().chunks_exact(w).take(h).enumerate() {
            y_plane[row * y_stride..][..w].copy_from_slice(src);
        }
        let uv_stride = self.nv12.stride(1);
        let uv_plane = self.nv12.data_mut(1);
        for (row, (u, v)) in frame
            .u()
            .chunks_exact(w / 2)
            .zip(frame.v().chunks_exact(w / 2))
            .take(h / 2)
            .enumerate()
        {
            let dst = &mut uv_plane[row * uv_stride..][..w];
            for (pair, (&u, &v)) in dst.chunks_exact_mut(2).zip(u.iter().zip(v)) {
                pair[0] = u;
                pair[1] = v;
            }
        }
    }

    fn send(&mut self, pts: i64) -> Result<(), EncodeError> {
        let kind = self.kind;
        self.nv12.set_pts(Some(pts));
        self.nv12.set_kind(if self.keyframe_pending {
            ff::picture::Type::I
        } else {
            ff::picture::Type::None
        });
        match &self.vaapi {
            None => self
                .encoder
                .send_frame(&self.nv12)
                .map_err(|e| encode_error(kind, e)),
            Some(pool) => {
                // SAFETY: a fresh hardware frame from the pool, filled from
                // the NV12 frame, handed to the encoder and freed by the
                // wrapper's Drop.
                unsafe {
                    let hw = ffi::av_frame_alloc();
                    if hw.is_null() {
                        return Err(encode_error(kind, "out of memory"));
                    }
                    let hw = ff::frame::Video::wrap(hw);
                    let mut hw = hw;
                    let err = ffi::av_hwframe_get_buffer(pool.frames, hw.as_mut_ptr(), 0);
                    if err < 0 {
                        return Err(encode_error(kind, ff::Error::from(err)));
                    }
                    let err = ffi::av_hwframe_transfer_data(hw.as_mut_ptr(), self.nv12.as_ptr(), 0);
                    if err < 0 {
                        return Err(encode_error(kind, ff::Error::from(err)));
                    }
                    hw.set_pts(Some(pts));
                    hw.set_kind(self.nv12.kind());
                    self.encoder
                        .send_frame(&hw)
                        .map_err(|e| encode_error(kind, e))
                }
            }
        }
    }

    /// Collects what the encoder has ready.
    fn receive(&mut self) -> Result<(Vec<u8>, bool), EncodeError> {
        let mut data = Vec::new();
        let mut key = false;
        loop {
            match self.encoder.receive_packet(&mut self.packet) {
                Ok(()) => {
                    data.extend_from_slice(self.packet.data().unwrap_or_default());
                    key |= self.packet.is_key();
                }
                Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN => break,
                Err(ff::Error::Eof) => break,
                Err(e) => return Err(encode_error(self.kind, e)),
            }
        }
        Ok((data, key))
    }

    /// Sends end-of-stream and collects what was still inside: used by the
    /// probe, whose encoder is then thrown away.
    pub(crate) fn drain(&mut self) -> Result<Vec<u8>, EncodeError> {
        self.encoder
            .send_eof()
            .map_err(|e| encode_error(self.kind, e))?;
        Ok(self.receive()?.0)
    }
}

impl Encoder for FfmpegEncoder {
    fn kind(&self) -> EncoderKind {
        self.kind
    }

    fn encode(
        &mut self,
        frame: &I420Frame,
        timestamp: Duration,
    ) -> Result<Option<EncodedFrame>, EncodeError> {
        if self.reopen
            || (frame.width(), frame.height()) != (self.settings.width, self.settings.height)
        {
            // FFmpeg's encoders cannot change size or (mostly) rate in
            // place: open a new stream, which starts with a keyframe.
            let settings = EncoderSettings {
                width: frame.width(),
                height: frame.height(),
                ..self.settings
            };
            *self = Self::open(self.kind, self.device.as_deref(), settings)?;
        }
        self.fill_nv12(frame);
        let pts = i64::try_from(timestamp.as_millis()).unwrap_or(i64::MAX);
        self.send(pts)?;
        let (data, is_keyframe) = self.receive()?;
        if data.is_empty() {
            return Ok(None);
        }
        if is_keyframe {
            self.keyframe_pending = false;
        }
        Ok(Some(EncodedFrame {
            data,
            is_keyframe,
            width: frame.width(),
            height: frame.height(),
            timestamp,
        }))
    }

    fn request_keyframe(&mut self) {
        self.keyframe_pending = true;
    }

    fn set_rate(&mut self, bitrate_bps: u32, max_fps: f32) -> Result<(), EncodeError> {
        if (bitrate_bps, max_fps) != (self.settings.bitrate_bps, self.settings.max_fps) {
            self.settings.bitrate_bps = bitrate_bps;
            self.settings.max_fps = max_fps;
            self.reopen = true;
        }
        Ok(())
    }

    fn settings(&self) -> EncoderSettings {
        self.settings
    }

    fn intra_refresh(&self) -> bool {
        matches!(self.kind, EncoderKind::Nvenc | EncoderKind::Qsv)
    }
}
