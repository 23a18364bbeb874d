//! Where the host's displays sit in its desktop, and how a position relative
//! to one display becomes a desktop pixel.

use crate::event::{DisplayId, PointerPosition};

/// One host display: its name and its rectangle in desktop pixels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplayArea {
    /// The name viewers use for it.
    pub id: DisplayId,
    /// Left edge in desktop pixels (may be negative on Windows and macOS).
    pub x: i32,
    /// Top edge in desktop pixels.
    pub y: i32,
    /// Width in pixels (at least 1).
    pub width: u32,
    /// Height in pixels (at least 1).
    pub height: u32,
}

/// The host's displays, as the injector maps pointer positions onto them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DisplayLayout {
    displays: Vec<DisplayArea>,
}

/// A position could not be mapped onto the host's desktop.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum LayoutError {
    /// The viewer named a display the host does not have (it may have been
    /// unplugged since the viewer last heard of it).
    #[error("no display named {0:?} on this host")]
    UnknownDisplay(DisplayId),
    /// A fraction was NaN or infinite.
    #[error("pointer position ({x}, {y}) is not a number")]
    NotFinite {
        /// The horizontal fraction.
        x: f32,
        /// The vertical fraction.
        y: f32,
    },
}

impl DisplayLayout {
    /// A layout of these displays. Displays with a zero width or height are
    /// left out: nothing can be pointed at on them.
    pub fn new(displays: impl IntoIterator<Item = DisplayArea>) -> Self {
        Self {
            displays: displays
                .into_iter()
                .filter(|d| d.width > 0 && d.height > 0)
                .collect(),
        }
    }

    /// The displays, in the order given.
    pub fn displays(&self) -> &[DisplayArea] {
        &self.displays
    }

    /// The display with this name.
    pub fn get(&self, id: &DisplayId) -> Option<&DisplayArea> {
        self.displays.iter().find(|d| &d.id == id)
    }

    /// The desktop pixel a position points at.
    ///
    /// Fractions outside `0..=1` are clamped to the display's edge rather than
    /// refused, so a drag that leaves the picture keeps following the edge
    /// instead of jumping onto a neighbouring monitor.
    pub fn to_desktop(&self, pos: &PointerPosition) -> Result<(i32, i32), LayoutError> {
        if !pos.x.is_finite() || !pos.y.is_finite() {
            return Err(LayoutError::NotFinite { x: pos.x, y: pos.y });
        }
        let area = self
            .get(&pos.display)
            .ok_or_else(|| LayoutError::UnknownDisplay(pos.display.clone()))?;
        Ok((
            area.x.saturating_add(pixel_in(pos.x, area.width)),
            area.y.saturating_add(pixel_in(pos.y, area.height)),
        ))
    }
}

/// The pixel index (0..len) covering `fraction` of a `len`-pixel span.
fn pixel_in(fraction: f32, len: u32) -> i32 {
    let last = len.saturating_sub(1);
    // f64 keeps the product exact for any realistic display size.
    let pixel = (f64::from(fraction) * f64::from(len)).floor();
    let clamped = pixel.clamp(0.0, f64::from(last));
    // Float-to-int `as` saturates; displays are far narrower than i32::MAX.
    clamped as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_monitors() -> DisplayLayout {
        DisplayLayout::new([
            DisplayArea {
                id: DisplayId::new("left"),
                x: 0,
                y: 0,
                width: 800,
                height: 600,
            },
            DisplayArea {
                id: DisplayId::new("right"),
                x: 800,
                y: 0,
                width: 1024,
                height: 768,
            },
        ])
    }

    fn at(display: &str, x: f32, y: f32) -> PointerPosition {
        PointerPosition {
            display: DisplayId::new(display),
            x,
            y,
        }
    }

    #[test]
    fn pixel_centres_map_to_their_pixel_on_each_monitor() {
        let layout = two_monitors();
        for (name, ox, w, h) in [("left", 0, 800u32, 600u32), ("right", 800, 1024, 768)] {
            for px in [0u32, 1, 399, w - 2, w - 1] {
                let py = (px * 7) % h;
                let pos = at(
                    name,
                    (px as f32 + 0.5) / w as f32,
                    (py as f32 + 0.5) / h as f32,
                );
                assert_eq!(
                    layout.to_desktop(&pos).unwrap(),
                    (ox + px as i32, py as i32),
                    "{name} {px},{py}"
                );
            }
        }
    }

    #[test]
    fn positions_past_the_edge_stay_on_their_monitor() {
        let layout = two_monitors();
        assert_eq!(
            layout.to_desktop(&at("left", 1.0, 1.0)).unwrap(),
            (799, 599)
        );
        assert_eq!(layout.to_desktop(&at("left", 7.0, -3.0)).unwrap(), (799, 0));
        assert_eq!(
            layout.to_desktop(&at("right", -0.5, 0.0)).unwrap(),
            (800, 0)
        );
    }

    #[test]
    fn unknown_displays_and_nan_are_errors() {
        let layout = two_monitors();
        assert_eq!(
            layout.to_desktop(&at("middle", 0.5, 0.5)),
            Err(LayoutError::UnknownDisplay(DisplayId::new("middle")))
        );
        assert!(matches!(
            layout.to_desktop(&at("left", f32::NAN, 0.5)),
            Err(LayoutError::NotFinite { .. })
        ));
        assert!(matches!(
            layout.to_desktop(&at("left", 0.5, f32::INFINITY)),
            Err(LayoutError::NotFinite { .. })
        ));
    }
}
