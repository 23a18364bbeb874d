//! The chat panel, the same on both sides.

use eframe::egui;

/// Who wrote a chat line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Author {
    Me,
    Peer(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatLine {
    pub author: Author,
    pub text: String,
}

/// The conversation so far and what is being typed.
#[derive(Debug, Clone, Default)]
pub struct ChatLog {
    pub lines: Vec<ChatLine>,
    pub draft: String,
    /// Lines that arrived since the panel was last shown, for a badge.
    pub unread: usize,
}

impl ChatLog {
    pub fn received(&mut self, from: impl Into<String>, text: impl Into<String>) {
        self.lines.push(ChatLine {
            author: Author::Peer(from.into()),
            text: text.into(),
        });
        self.unread += 1;
    }

    fn sent(&mut self, text: String) {
        self.lines.push(ChatLine {
            author: Author::Me,
            text,
        });
    }
}

/// Draws the conversation (`history_height` points of it, scrolling) and
/// the input line; returns a message the user sent this frame (already
/// added to the log).
pub fn chat_ui(ui: &mut egui::Ui, chat: &mut ChatLog, history_height: f32) -> Option<String> {
    chat.unread = 0;
    let heading = ui.strong("Chat");
    egui::ScrollArea::vertical()
        .id_salt("chat_history")
        .max_height(history_height)
        .auto_shrink([false, true])
        .stick_to_bottom(true)
        .show(ui, |ui| {
            if chat.lines.is_empty() {
                ui.weak("No messages yet.");
            }
            for line in &chat.lines {
                let who = match &line.author {
                    Author::Me => "You",
                    Author::Peer(name) => name,
                };
                ui.horizontal_wrapped(|ui| {
                    ui.strong(format!("{who}:"));
                    ui.label(&line.text);
                });
            }
        });
    let mut sent = None;
    // A row: Send on the right, the message field filling the rest.
    ui.horizontal(|ui| {
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            let send = ui.button("Send");
            let edit = ui
                .add(
                    egui::TextEdit::singleline(&mut chat.draft)
                        .hint_text("Message")
                        .desired_width(ui.available_width()),
                )
                .labelled_by(heading.id);
            let enter = edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            if (send.clicked() || enter) && !chat.draft.trim().is_empty() {
                let text = std::mem::take(&mut chat.draft).trim().to_owned();
                chat.sent(text.clone());
                sent = Some(text);
                if enter {
                    edit.request_focus();
                }
            }
        });
    });
    sent
}
