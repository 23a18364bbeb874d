//! Picture quality measures used by the tests and the benchmark.

use crate::capture::{CapturedFrame, PixelFormat};
use crate::decode::RgbaImage;

/// PSNR in dB from a mean squared error over 8-bit samples (capped at 100
/// for identical pictures).
pub fn psnr_from_mse(mse: f64) -> f64 {
    if mse <= 1e-10 {
        100.0
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }
}

/// PSNR over the R, G and B channels of a captured frame and a decoded
/// picture of the same size (`None` if the sizes differ).
pub fn psnr_rgb(source: &CapturedFrame<'_>, decoded: &RgbaImage) -> Option<f64> {
    if (source.width & !1, source.height & !1) != (decoded.width, decoded.height) {
        return None;
    }
    let (w, h) = (usize::from(decoded.width), usize::from(decoded.height));
    let (r, b) = match source.format {
        PixelFormat::Bgrx => (2, 0),
        PixelFormat::Rgbx => (0, 2),
    };
    let mut sum = 0u64;
    for y in 0..h {
        let src = &source.data[y * source.stride..][..w * 4];
        let dst = &decoded.pixels[y * w * 4..][..w * 4];
        for (s, d) in src.chunks_exact(4).zip(dst.chunks_exact(4)) {
            for (a, c) in [(s[r], d[0]), (s[1], d[1]), (s[b], d[2])] {
                let e = i64::from(a) - i64::from(c);
                sum += (e * e) as u64;
            }
        }
    }
    Some(psnr_from_mse(sum as f64 / (w * h * 3) as f64))
}

/// PSNR of two 8-bit planes of equal length.
pub fn psnr_plane(a: &[u8], b: &[u8]) -> Option<f64> {
    if a.len() != b.len() || a.is_empty() {
        return None;
    }
    let sum: u64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let e = i64::from(x) - i64::from(y);
            (e * e) as u64
        })
        .sum();
    Some(psnr_from_mse(sum as f64 / a.len() as f64))
}
