//! BGRA → I420 colour conversion, whole frames or just the damaged tiles.
//!
//! The conversion uses the `yuv` crate (AVX2/SSE4.1 kernels picked at run
//! time). Full-range would be slightly sharper, but limited-range BT.601 is
//! what every H.264 decoder assumes when a stream says nothing else, so
//! FFmpeg, browsers and our own decoder all show the same colours.
//! [`I420Frame`] keeps its planes between frames, so converting only the
//! tiles that changed leaves the rest of the picture current.

use yuv::{BufferStoreMut, YuvConversionMode, YuvPlanarImageMut, YuvRange, YuvStandardMatrix};

use crate::capture::{CapturedFrame, PixelFormat};
use crate::change::Rect;

/// Colour range used in both directions.
pub(crate) const RANGE: YuvRange = YuvRange::Limited;
/// Colour matrix used in both directions.
pub(crate) const MATRIX: YuvStandardMatrix = YuvStandardMatrix::Bt601;

/// Why a conversion failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// The source does not match the destination's size.
    #[error("source is {src:?} but the I420 frame is {dst:?}")]
    SizeMismatch {
        /// Source (width, height).
        src: (u16, u16),
        /// Destination (width, height).
        dst: (u16, u16),
    },
    /// The converter rejected the buffers.
    #[error("colour conversion failed: {0}")]
    Yuv(String),
}

/// An I420 picture: a full-resolution Y plane and quarter-size U and V
/// planes, in one allocation. Odd sizes are rounded down to even, because
/// 4:2:0 chroma covers 2×2 pixels.
#[derive(Clone, Debug)]
pub struct I420Frame {
    data: Vec<u8>,
    width: u16,
    height: u16,
}

impl I420Frame {
    /// A black picture of `width`×`height` (rounded down to even).
    pub fn new(width: u16, height: u16) -> Self {
        let (width, height) = (width & !1, height & !1);
        let (w, h) = (usize::from(width), usize::from(height));
        let mut data = vec![16u8; w * h + 2 * (w / 2) * (h / 2)];
        data[w * h..].fill(128);
        Self {
            data,
            width,
            height,
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> u16 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u16 {
        self.height
    }

    fn luma_len(&self) -> usize {
        usize::from(self.width) * usize::from(self.height)
    }

    fn chroma_len(&self) -> usize {
        usize::from(self.width / 2) * usize::from(self.height / 2)
    }

    /// The Y plane, `width` bytes a row.
    pub fn y(&self) -> &[u8] {
        &self.data[..self.luma_len()]
    }

    /// The U plane, `width / 2` bytes a row.
    pub fn u(&self) -> &[u8] {
        &self.data[self.luma_len()..][..self.chroma_len()]
    }

    /// The V plane, `width / 2` bytes a row.
    pub fn v(&self) -> &[u8] {
        &self.data[self.luma_len() + self.chroma_len()..]
    }

    /// Mutable Y, U and V planes.
    pub fn planes_mut(&mut self) -> (&mut [u8], &mut [u8], &mut [u8]) {
        let (luma, chroma) = (self.luma_len(), self.chroma_len());
        let (y, uv) = self.data.split_at_mut(luma);
        let (u, v) = uv.split_at_mut(chroma);
        (y, u, v)
    }

    /// Converts the whole captured frame.
    pub fn convert_from(&mut self, frame: &CapturedFrame<'_>) -> Result<(), ConvertError> {
        self.convert_rect(frame, Rect::full(frame.width, frame.height))
    }

    /// Converts only the given rectangles (e.g. the damage of
    /// [`ChangeDetector`](crate::ChangeDetector)); the rest keeps its old
    /// content.
    pub fn convert_damage(
        &mut self,
        frame: &CapturedFrame<'_>,
        rects: &[Rect],
    ) -> Result<(), ConvertError> {
        for rect in rects {
            self.convert_rect(frame, *rect)?;
        }
        Ok(())
    }

    fn convert_rect(&mut self, frame: &CapturedFrame<'_>, rect: Rect) -> Result<(), ConvertError> {
        if (frame.width & !1, frame.height & !1) != (self.width, self.height) {
            return Err(ConvertError::SizeMismatch {
                src: (frame.width, frame.height),
                dst: (self.width, self.height),
            });
        }
        // Align to the 2×2 chroma grid and clip to the (even) frame.
        let x0 = rect.x & !1;
        let y0 = rect.y & !1;
        let x1 = (rect.x.saturating_add(rect.width).saturating_add(1) & !1).min(self.width);
        let y1 = (rect.y.saturating_add(rect.height).saturating_add(1) & !1).min(self.height);
        if x1 <= x0 || y1 <= y0 {
            return Ok(());
        }
        let (w, cw) = (usize::from(self.width), usize::from(self.width / 2));
        let (x0u, y0u) = (usize::from(x0), usize::from(y0));
        let (rw, rh) = (usize::from(x1 - x0), usize::from(y1 - y0));
        let convert = match frame.format {
            PixelFormat::Bgrx => yuv::bgra_to_yuv420,
            PixelFormat::Rgbx => yuv::rgba_to_yuv420,
        };
        let run = |image: &mut YuvPlanarImageMut<'_, u8>, src: &[u8], stride: usize| {
            convert(
                image,
                src,
                stride as u32,
                RANGE,
                MATRIX,
                YuvConversionMode::Balanced,
            )
            .map_err(|e| ConvertError::Yuv(e.to_string()))
        };
        // The converter walks whole row pairs for as long as its slices
        // last, so a sub-rectangle is handed over as slices that end exactly
        // after its last full row pair but one; that last pair goes through
        // small packed buffers.
        let body = rh - 2;
        let src_start = y0u * frame.stride + x0u * 4;
        let y_start = y0u * w + x0u;
        let c_start = y0u / 2 * cw + x0u / 2;
        let (y, u, v) = self.planes_mut();
        if body > 0 {
            let mut image = YuvPlanarImageMut {
                y_plane: BufferStoreMut::Borrowed(&mut y[y_start..y_start + w * body]),
                y_stride: w as u32,
                u_plane: BufferStoreMut::Borrowed(&mut u[c_start..c_start + cw * body / 2]),
                u_stride: cw as u32,
                v_plane: BufferStoreMut::Borrowed(&mut v[c_start..c_start + cw * body / 2]),
                v_stride: cw as u32,
                width: rw as u32,
                height: body as u32,
            };
            run(
                &mut image,
                &frame.data[src_start..src_start + frame.stride * body],
                frame.stride,
            )?;
        }
        let mut src_tail = vec![0u8; rw * 4 * 2];
        for row in 0..2 {
            let from = src_start + (body + row) * frame.stride;
            src_tail[row * rw * 4..][..rw * 4].copy_from_slice(&frame.data[from..from + rw * 4]);
        }
        let (mut y_tail, mut u_tail, mut v_tail) =
            (vec![0u8; rw * 2], vec![0u8; rw / 2], vec![0u8; rw / 2]);
        let mut image = YuvPlanarImageMut {
            y_plane: BufferStoreMut::Borrowed(&mut y_tail),
            y_stride: rw as u32,
            u_plane: BufferStoreMut::Borrowed(&mut u_tail),
            u_stride: (rw / 2) as u32,
            v_plane: BufferStoreMut::Borrowed(&mut v_tail),
            v_stride: (rw / 2) as u32,
            width: rw as u32,
            height: 2,
        };
        run(&mut image, &src_tail, rw * 4)?;
        for row in 0..2 {
            let to = y_start + (body + row) * w;
            y[to..to + rw].copy_from_slice(&y_tail[row * rw..][..rw]);
        }
        let to = c_start + body / 2 * cw;
        u[to..to + rw / 2].copy_from_slice(&u_tail);
        v[to..to + rw / 2].copy_from_slice(&v_tail);
        Ok(())
    }
}

impl openh264::formats::YUVSource for I420Frame {
    fn dimensions(&self) -> (usize, usize) {
        (usize::from(self.width), usize::from(self.height))
    }

    fn strides(&self) -> (usize, usize, usize) {
        let w = usize::from(self.width);
        (w, w / 2, w / 2)
    }

    fn y(&self) -> &[u8] {
        I420Frame::y(self)
    }

    fn u(&self) -> &[u8] {
        I420Frame::u(self)
    }

    fn v(&self) -> &[u8] {
        I420Frame::v(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(data: &[u8], width: u16, height: u16) -> CapturedFrame<'_> {
        CapturedFrame {
            data,
            width,
            height,
            stride: usize::from(width) * 4,
            format: PixelFormat::Bgrx,
        }
    }

    #[test]
    fn white_black_and_red_map_to_bt601_limited_values() {
        // 4×2: white, black, red (B=0,G=0,R=255), red; two identical rows.
        let row = [255, 255, 255, 0, 0, 0, 0, 0, 0, 0, 255, 0, 0, 0, 255, 0];
        let data = [row, row].concat();
        let mut out = I420Frame::new(4, 2);
        out.convert_from(&frame(&data, 4, 2)).unwrap();
        let y = out.y();
        assert!((i32::from(y[0]) - 235).abs() <= 1, "white Y {}", y[0]);
        assert!((i32::from(y[1]) - 16).abs() <= 1, "black Y {}", y[1]);
        assert!((i32::from(y[2]) - 81).abs() <= 2, "red Y {}", y[2]);
        // Red chroma: V well above 128.
        assert!(out.v()[1] > 200, "red V {}", out.v()[1]);
    }

    #[test]
    fn region_conversion_matches_full_conversion_inside_and_leaves_outside() {
        let (w, h) = (96u16, 70u16);
        let data: Vec<u8> = (0..usize::from(w) * usize::from(h) * 4)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let mut full = I420Frame::new(w, h);
        full.convert_from(&frame(&data, w, h)).unwrap();
        let mut part = I420Frame::new(w, h);
        let rect = Rect {
            x: 64,
            y: 0,
            width: 32,
            height: 64,
        };
        part.convert_damage(&frame(&data, w, h), &[rect]).unwrap();
        for yy in 0..usize::from(h) {
            for xx in 0..usize::from(w) {
                let inside = xx >= 64 && yy < 64;
                let (a, b) = (full.y()[yy * 96 + xx], part.y()[yy * 96 + xx]);
                if inside {
                    assert_eq!(a, b, "({xx},{yy})");
                } else {
                    assert_eq!(b, 16, "({xx},{yy}) outside must be untouched");
                }
            }
        }
    }
}
