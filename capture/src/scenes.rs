//! The four benchmark scenes (static desktop, typing, scrolling, full-screen
//! video) painted step by step on an X server, shared by `capture-bench`
//! and the app's `latency-bench` so both measure the same pictures.

use crate::testing::{PaintError, Painter, test_pattern};

impl Stage {
    /// The painter, for benches that draw more on top (a frame counter).
    pub fn painter(&self) -> &Painter {
        &self.painter
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scene {
    Static,
    Typing,
    Scrolling,
    Video,
}

impl Scene {
    pub fn name(self) -> &'static str {
        match self {
            Scene::Static => "static desktop",
            Scene::Typing => "typing",
            Scene::Scrolling => "scrolling page",
            Scene::Video => "full-screen video",
        }
    }
}

/// Paints scene steps; everything is a pure function of the step number.
pub struct Stage {
    painter: Painter,
    pub w: u16,
    pub h: u16,
    page: Vec<u8>,
    texture: Vec<u8>,
}

const TEXT_X: i16 = 80;
const TEXT_Y: i16 = 60;
const PAGE_W: u16 = 960;

fn glyph(code: u32) -> [u8; 8 * 14] {
    let mut g = [0u8; 8 * 14];
    let mut s = code.wrapping_mul(2_654_435_761) | 1;
    for row in 2..12 {
        for col in 1..7 {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            g[row * 8 + col] = u8::from(s.is_multiple_of(3));
        }
    }
    g
}

impl Stage {
    pub fn new(display: &str, w: u16, h: u16) -> Result<Self, PaintError> {
        let painter = Painter::connect(display)?;
        // A long page of text lines for scrolling.
        let page_h = 4 * usize::from(h);
        let mut page = vec![255u8; usize::from(PAGE_W) * page_h * 4];
        for line in 0..page_h / 18 {
            for ch in 0..(PAGE_W as usize / 9 - 4) {
                if (ch * 7 + line * 3) % 11 == 0 {
                    continue;
                }
                let g = glyph((line * 131 + ch) as u32);
                for gy in 0..14 {
                    for gx in 0..8 {
                        if g[gy * 8 + gx] == 1 {
                            let (x, y) = (16 + ch * 9 + gx, line * 18 + gy);
                            page[(y * usize::from(PAGE_W) + x) * 4..][..3]
                                .copy_from_slice(&[30, 30, 30]);
                        }
                    }
                }
            }
        }
        // A smooth, detailed texture twice the screen for "video".
        let (tw, th) = (2 * usize::from(w), 2 * usize::from(h));
        let mut texture = vec![0u8; tw * th * 4];
        let mut s = 0x1234_5678u32;
        for y in 0..th {
            for x in 0..tw {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                let fx = x as f32 / 90.0;
                let fy = y as f32 / 70.0;
                let base = 128.0 + 60.0 * (fx.sin() + (fy * 1.3).cos()) + f32::from((s & 15) as u8);
                let p = &mut texture[(y * tw + x) * 4..][..4];
                p[0] = base.clamp(0.0, 255.0) as u8;
                p[1] = (base * 0.8 + 30.0 * (fx * 0.7 + fy).sin()).clamp(0.0, 255.0) as u8;
                p[2] = (255.0 - base).clamp(0.0, 255.0) as u8;
            }
        }
        Ok(Self {
            painter,
            w,
            h,
            page,
            texture,
        })
    }

    /// The "desktop" every scene starts from.
    pub fn desktop(&self) -> Result<(), PaintError> {
        let bg = test_pattern(self.w, self.h, 1);
        self.painter.put_bgrx(0, 0, self.w, self.h, &bg)?;
        self.painter
            .fill(TEXT_X, TEXT_Y, PAGE_W, self.h - 120, 0xffffff)?;
        self.painter.sync()?;
        Ok(())
    }

    pub fn step(&self, scene: Scene, i: usize) -> Result<(), PaintError> {
        match scene {
            Scene::Static => {}
            Scene::Typing => {
                // One character per step, 100 per line.
                let (col, line) = (i % 100, i / 100);
                let g = glyph(i as u32);
                let mut px = vec![255u8; 8 * 14 * 4];
                for (k, &on) in g.iter().enumerate() {
                    if on == 1 {
                        px[k * 4..][..3].copy_from_slice(&[20, 20, 20]);
                    }
                }
                let x = TEXT_X + 16 + (col * 9) as i16;
                let y = TEXT_Y + 16 + (line * 18) as i16;
                self.painter.put_bgrx(x, y, 8, 14, &px)?;
            }
            Scene::Scrolling => {
                let view_h = usize::from(self.h - 120);
                let top = (i * 12) % (self.page.len() / (usize::from(PAGE_W) * 4) - view_h);
                let row = usize::from(PAGE_W) * 4;
                let view = &self.page[top * row..(top + view_h) * row];
                self.painter
                    .put_bgrx(TEXT_X, TEXT_Y, PAGE_W, view_h as u16, view)?;
            }
            Scene::Video => {
                let (w, h) = (usize::from(self.w), usize::from(self.h));
                let tw = 2 * w;
                let (ox, oy) = ((i * 7) % w, (i * 3) % h);
                let mut frame = Vec::with_capacity(w * h * 4);
                for y in 0..h {
                    let start = ((y + oy) * tw + ox) * 4;
                    frame.extend_from_slice(&self.texture[start..start + w * 4]);
                }
                self.painter.put_bgrx(0, 0, self.w, self.h, &frame)?;
            }
        }
        self.painter.sync()?;
        Ok(())
    }
}
