//! The "Help someone" half of the start screen: the session number the
//! other person reads out, and Connect.

use eframe::egui;
use fernsicht_net::SessionNumber;
use fernsicht_net::client::RelayAddr;
use fernsicht_net::number::MAX_DIGITS;

/// What the helper typed on the start screen.
#[derive(Debug, Clone, Default)]
pub struct StartScreen {
    /// The number as shown: digits only, grouped like
    /// [`SessionNumber::grouped`].
    pub number: String,
    pub password: String,
    pub name: String,
    /// A relay typed for this connection only; empty: the configured ones.
    pub relay: String,
    /// What the relay field says when empty (the relays that will be tried).
    pub relay_hint: String,
    /// Set when the user clicks Connect with a valid number.
    connect: Option<ConnectRequest>,
}

/// The user asked to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    pub number: SessionNumber,
    pub password: Option<String>,
    pub name: String,
    /// The relay typed for this connection, if any.
    pub relay: Option<RelayAddr>,
}

impl StartScreen {
    pub fn new(name: String) -> Self {
        StartScreen {
            name,
            ..Default::default()
        }
    }

    /// The number typed so far, if it is a whole, valid one.
    pub fn parsed(&self) -> Option<SessionNumber> {
        self.number.parse().ok()
    }

    /// What is wrong with the number, once there is enough of it to say
    /// (while typing the first digits nothing is "wrong" yet).
    pub fn problem(&self) -> Option<String> {
        let digits = digits_of(&self.number);
        if digits.starts_with('0') {
            return Some("A session number never starts with 0.".into());
        }
        if digits.len() < 5 {
            return None;
        }
        self.number.parse::<SessionNumber>().err().map(|e| {
            let mut s = e.to_string();
            // The error reads as a sentence in the UI.
            if let Some(first) = s.get(..1) {
                s.replace_range(..1, &first.to_uppercase());
            }
            s + "."
        })
    }

    /// The relay typed, or what is wrong with it; `Ok(None)` when empty.
    pub fn parsed_relay(&self) -> Result<Option<RelayAddr>, String> {
        let text = self.relay.trim();
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|e| format!("Relay: {e}."))
    }

    /// The connect request of this frame, if the user made one.
    pub fn take_connect(&mut self) -> Option<ConnectRequest> {
        self.connect.take()
    }
}

fn digits_of(s: &str) -> String {
    s.chars().filter(char::is_ascii_digit).collect()
}

/// Digits grouped the way the host's screen shows them: the last three
/// apart (`12 345`, `123 456`), so the typed number looks like the one read
/// out.
pub fn group_digits(digits: &str) -> String {
    if digits.len() <= 3 {
        return digits.to_owned();
    }
    let split = digits.len() - 3;
    format!("{} {}", &digits[..split], &digits[split..])
}

/// Keeps only digits (at most a session number's worth) and regroups them.
/// Returns the new text and where a cursor that had `digits_before` digits
/// to its left now sits (in characters).
fn normalise(text: &str, digits_before: usize) -> (String, usize) {
    let mut digits = digits_of(text);
    digits.truncate(MAX_DIGITS as usize);
    let grouped = group_digits(&digits);
    let mut seen = 0;
    let mut cursor = grouped.chars().count();
    if digits_before < digits.len() {
        for (i, c) in grouped.chars().enumerate() {
            if seen == digits_before {
                cursor = i;
                break;
            }
            if c.is_ascii_digit() {
                seen += 1;
            }
        }
    }
    (grouped, cursor)
}

/// The session-number field: only digits get in, and they are grouped as
/// they are typed, with the cursor kept after the digit just typed.
fn number_field_ui(ui: &mut egui::Ui, number: &mut String, label: egui::Id) -> egui::Response {
    let output = egui::TextEdit::singleline(number)
        .hint_text("12 345")
        .font(egui::TextStyle::Heading)
        .char_limit(MAX_DIGITS as usize * 2)
        .desired_width(220.0)
        .show(ui);
    let mut response = output.response.response.clone().labelled_by(label);
    if response.changed() {
        let cursor_chars = output
            .cursor_range
            .map(|r| r.primary.index.0)
            .unwrap_or(number.chars().count());
        let digits_before = number
            .chars()
            .take(cursor_chars)
            .filter(char::is_ascii_digit)
            .count();
        let (text, cursor) = normalise(number, digits_before);
        if text != *number {
            *number = text;
            let mut state = output.state;
            let at = egui::text::CCursor::new(cursor);
            state
                .cursor
                .set_char_range(Some(egui::text::CCursorRange::one(at)));
            state.store(ui.ctx(), response.id);
            response.mark_changed();
        }
    }
    response
}

/// The "Help someone" half.
pub fn help_someone_ui(ui: &mut egui::Ui, start: &mut StartScreen) {
    ui.heading("Help someone");
    ui.label("Type the session number the other person reads out to you.");
    ui.add_space(8.0);

    let label = ui.label("Session number");
    let field = number_field_ui(ui, &mut start.number, label.id);
    let problem = start.problem();
    if let Some(problem) = &problem {
        ui.colored_label(ui.visuals().error_fg_color, problem);
    }
    ui.add_space(8.0);

    egui::Grid::new("help_someone_fields")
        .num_columns(2)
        .spacing([8.0, 6.0])
        .show(ui, |ui| {
            let l = ui.label("Password");
            ui.add(
                egui::TextEdit::singleline(&mut start.password)
                    .password(true)
                    .hint_text("only if they set one"),
            )
            .labelled_by(l.id);
            ui.end_row();
            let l = ui.label("Your name");
            ui.add(egui::TextEdit::singleline(&mut start.name).hint_text("shown to them"))
                .labelled_by(l.id);
            ui.end_row();
            let l = ui.label("Relay");
            ui.add(egui::TextEdit::singleline(&mut start.relay).hint_text(&start.relay_hint))
                .labelled_by(l.id)
                .on_hover_text(
                    "The relay the other person's app uses: their address if it runs its own",
                );
            ui.end_row();
        });
    let relay = start.parsed_relay();
    if let Err(e) = &relay {
        ui.colored_label(ui.visuals().error_fg_color, e);
    }
    ui.add_space(8.0);

    let number = start.parsed().filter(|_| relay.is_ok());
    let connect = ui.add_enabled(
        number.is_some(),
        egui::Button::new("Connect").min_size(egui::vec2(120.0, 32.0)),
    );
    let enter = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
    if let Some(number) = number
        && (connect.clicked() || enter)
    {
        let password = Some(start.password.clone()).filter(|p| !p.is_empty());
        start.connect = Some(ConnectRequest {
            number,
            password,
            name: start.name.trim().to_owned(),
            relay: relay.ok().flatten(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typing_keeps_digits_only_and_groups_them() {
        assert_eq!(normalise("1", 1), ("1".into(), 1));
        assert_eq!(normalise("1234", 4), ("1 234".into(), 5));
        assert_eq!(normalise("12 3456", 6), ("123 456".into(), 7));
        assert_eq!(normalise("12a34-5", 5), ("12 345".into(), 6));
        // A digit typed in the middle keeps the cursor right after it.
        assert_eq!(normalise("1 2934", 3), ("12 934".into(), 4));
        assert_eq!(normalise("12 3 45", 3), ("12 345".into(), 4));
        // Too long: cut at the longest number there can be.
        let (text, _) = normalise(&"9".repeat(20), 20);
        assert_eq!(digits_of(&text).len(), MAX_DIGITS as usize);
    }

    #[test]
    fn problems_are_named_once_there_is_enough_to_judge() {
        let mut s = StartScreen {
            number: "12".into(),
            ..StartScreen::default()
        };
        assert_eq!(s.problem(), None);
        assert_eq!(s.parsed(), None);
        s.number = "0".into();
        assert!(s.problem().unwrap_or_default().contains("starts with 0"));
        s.number = "12 345".into();
        assert_eq!(s.problem(), None);
        assert_eq!(s.parsed().map(SessionNumber::get), Some(12345));
    }
}
