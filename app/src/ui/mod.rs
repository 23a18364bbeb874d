//! The window: start screen, consent dialog, sharing panel and viewer.
//!
//! Each screen is a plain state struct with `apply(update)` for what the
//! session engines report and `take_actions()` for what the person chose,
//! drawn by `*_ui` functions. [`app::FernsichtApp`] owns the engines and
//! pumps one into the other; no socket or codec is touched here.

pub mod app;
pub mod chat;
pub mod host;
pub mod settings;
pub mod start;
pub mod transfers;
pub mod viewer;

use eframe::egui;
use fernsicht_net::handshake::AuthCode;

/// The window's title and the app id desktops group it by.
pub const TITLE: &str = "Fernsicht";
pub const APP_ID: &str = "fernsicht";

/// Whether a window can be opened here. On X11 desktops (and XWayland)
/// `DISPLAY` names the server; without it, e.g. over SSH, there is none.
pub fn display_available() -> bool {
    if cfg!(any(target_os = "windows", target_os = "macos")) {
        return true;
    }
    std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty())
}

/// The code the two people compare, grouped in threes for reading aloud
/// (`123 456`).
pub fn code_text(code: AuthCode) -> String {
    let digits = code.to_string();
    let mut out = String::with_capacity(digits.len() + 2);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(c);
    }
    out
}

/// The window icon, from `assets/` (rendered from its SVG source).
pub fn icon() -> Option<egui::IconData> {
    match eframe::icon_data::from_png_bytes(include_bytes!("../../../assets/fernsicht-128.png")) {
        Ok(icon) => Some(icon),
        Err(e) => {
            tracing::warn!("the window icon does not decode: {e}");
            None
        }
    }
}

/// Settles the look once: a little larger text than egui's default, since
/// people read numbers off this window aloud.
pub fn set_style(ctx: &egui::Context) {
    ctx.all_styles_mut(|style| {
        for (text_style, font) in style.text_styles.iter_mut() {
            if matches!(text_style, egui::TextStyle::Body | egui::TextStyle::Button) {
                font.size = 15.0;
            }
        }
        style.spacing.button_padding = egui::vec2(8.0, 4.0);
    });
    // Ctrl+plus and friends belong to the remote screen while controlling it.
    ctx.options_mut(|o| o.zoom_with_keyboard = false);
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod unit_tests {
    #[test]
    fn icon_decodes() {
        let icon = super::icon();
        assert!(matches!(icon, Some(i) if i.width == 128 && i.height == 128));
    }
}
