//! How a bit rate turns into a frame rate.
//!
//! At a fixed bit rate, fewer frames mean more bits per frame. Screen
//! content is mostly text, which turns to unreadable mush when starved, so
//! on a thin link we keep each frame's budget at a floor and lower the
//! frame rate instead: at 150 kbit/s a 1080p screen gets about 5 sharp
//! frames a second rather than 30 blurred ones.

/// Bits a frame should get at least, per million pixels.
pub const MIN_BITS_PER_MEGAPIXEL_FRAME: f64 = 14_000.0;

/// Lowest frame rate we go down to; below this the picture stops feeling
/// live, and the encoder's own rate control takes over.
pub const MIN_FPS: f32 = 2.0;

/// The frame rate to encode at for `bitrate_bps` on a `width`×`height`
/// screen, at most `max_fps`.
pub fn frame_rate_for(bitrate_bps: u32, width: u16, height: u16, max_fps: f32) -> f32 {
    let megapixels = (f64::from(width) * f64::from(height) / 1e6).max(0.1);
    let fps = f64::from(bitrate_bps) / (MIN_BITS_PER_MEGAPIXEL_FRAME * megapixels);
    (fps as f32).clamp(MIN_FPS.min(max_fps), max_fps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thin_links_lower_the_frame_rate_first() {
        let fast = frame_rate_for(8_000_000, 1920, 1080, 60.0);
        let thin = frame_rate_for(150_000, 1920, 1080, 60.0);
        assert_eq!(fast, 60.0);
        assert!(
            (4.0..=6.0).contains(&thin),
            "150 kbit/s at 1080p: {thin} fps"
        );
        // Smaller screens keep more frames at the same rate.
        assert!(frame_rate_for(150_000, 1280, 720, 60.0) > thin);
        assert_eq!(frame_rate_for(1, 1920, 1080, 60.0), MIN_FPS);
    }
}
