//! File transfers as both windows show them: offers to answer, a progress
//! bar per transfer with speed and time left, and the files parked in the
//! relay's store.
//!
//! [`Transfers`] is plain state fed with the engines' [`TransferEvent`]s;
//! what the person chooses comes back as [`TransferAction`]s. Picking a
//! folder or files with the native dialog happens in the app (`app.rs`),
//! outside this state, so it can be tested without a desktop.

use eframe::egui;
use fernsicht_net::ChannelId;
use fernsicht_net::transfer::TransferId;
use fernsicht_net::transfer::service::{Direction, Summary, TransferEvent};
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

/// Where a transfer stands.
#[derive(Debug, Clone, PartialEq)]
pub enum RowState {
    /// Offered; the other side has not answered.
    Waiting,
    Running,
    Done(String),
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TransferRow {
    pub peer: ChannelId,
    pub id: TransferId,
    pub direction: Direction,
    pub name: String,
    pub total: u64,
    pub done: u64,
    pub bytes_per_sec: f64,
    pub state: RowState,
    /// Where received files went.
    pub folder: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Offer {
    pub peer: ChannelId,
    pub id: TransferId,
    pub summary: Summary,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParkedRow {
    pub file: u64,
    pub name: String,
    pub bytes: u64,
}

/// What the person chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferAction {
    /// Take an offer; the app asks for a folder.
    Accept(ChannelId, TransferId),
    Decline(ChannelId, TransferId),
    Cancel(ChannelId, TransferId),
    /// Download a parked file; the app asks for a folder.
    Fetch(u64),
}

#[derive(Debug, Clone, Default)]
pub struct Transfers {
    pub rows: Vec<TransferRow>,
    pub offers: VecDeque<Offer>,
    pub parked: Vec<ParkedRow>,
    /// Problems that started no transfer, newest last.
    pub problems: Vec<String>,
    actions: Vec<TransferAction>,
}

impl Transfers {
    fn row(&mut self, peer: ChannelId, id: TransferId) -> Option<&mut TransferRow> {
        self.rows
            .iter_mut()
            .rev()
            .find(|r| r.peer == peer && r.id == id)
    }

    fn upsert(&mut self, row: TransferRow) {
        match self.row(row.peer, row.id) {
            Some(r) if matches!(r.state, RowState::Waiting | RowState::Running) => *r = row,
            _ => self.rows.push(row),
        }
    }

    pub fn apply(&mut self, event: TransferEvent) {
        match event {
            TransferEvent::Offered { peer, id, summary } => {
                self.offers.retain(|o| !(o.peer == peer && o.id == id));
                self.offers.push_back(Offer { peer, id, summary });
            }
            TransferEvent::Refused { reason, .. } => {
                self.problems.push(format!("Refused files: {reason}"));
            }
            TransferEvent::Offering {
                peer,
                id,
                direction,
                summary,
            } => self.upsert(TransferRow {
                peer,
                id,
                direction,
                name: summary.name,
                total: summary.bytes,
                done: 0,
                bytes_per_sec: 0.0,
                state: RowState::Waiting,
                folder: None,
            }),
            TransferEvent::Started {
                peer,
                id,
                direction,
                summary,
                resumed,
                folder,
            } => self.upsert(TransferRow {
                peer,
                id,
                direction,
                name: summary.name,
                total: summary.bytes,
                done: resumed,
                bytes_per_sec: 0.0,
                state: RowState::Running,
                folder,
            }),
            TransferEvent::Progress {
                peer,
                id,
                done,
                total,
                bytes_per_sec,
            } => {
                if let Some(r) = self.row(peer, id) {
                    r.done = done;
                    r.total = total;
                    r.bytes_per_sec = bytes_per_sec;
                }
            }
            TransferEvent::Finished {
                peer, id, outcome, ..
            } => {
                if let Some(r) = self.row(peer, id) {
                    r.done = r.total;
                    r.state = RowState::Done(format!(
                        "{} in {:.1} s",
                        size_text(outcome.bytes),
                        outcome.secs
                    ));
                }
            }
            TransferEvent::Failed {
                peer, id, reason, ..
            } => {
                self.offers.retain(|o| !(o.peer == peer && o.id == id));
                if let Some(r) = self.row(peer, id) {
                    r.state = RowState::Failed(reason);
                }
            }
            TransferEvent::Parked { file, summary, .. }
            | TransferEvent::ParkedAvailable { file, summary, .. }
                if !self.parked.iter().any(|p| p.file == file) =>
            {
                self.parked.push(ParkedRow {
                    file,
                    name: summary.name,
                    bytes: summary.bytes,
                });
            }
            TransferEvent::Problem(p) => self.problems.push(p),
            _ => {}
        }
    }

    /// The person's choices since the last call, oldest first.
    pub fn take_actions(&mut self) -> Vec<TransferAction> {
        std::mem::take(&mut self.actions)
    }

    /// Whether there is anything to show.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
            && self.offers.is_empty()
            && self.parked.is_empty()
            && self.problems.is_empty()
    }
}

/// A size the way people read it.
pub fn size_text(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kB", b / 1e3)
    } else {
        format!("{bytes} bytes")
    }
}

/// Time left at the current speed, or nothing while it is unknown.
pub fn time_left(left: u64, bytes_per_sec: f64) -> Option<Duration> {
    (bytes_per_sec > 1.0).then(|| Duration::from_secs_f64(left as f64 / bytes_per_sec))
}

fn duration_text(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{} h {} min", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

/// The line under a progress bar: "12.0 MB of 200.0 MB · 85.3 MB/s · 2 s left".
pub fn progress_text(row: &TransferRow) -> String {
    match &row.state {
        RowState::Waiting => "waiting for the other side…".into(),
        RowState::Done(s) => format!("done: {s}"),
        RowState::Failed(why) => format!("stopped: {why}"),
        RowState::Running => {
            let mut t = format!("{} of {}", size_text(row.done), size_text(row.total));
            if row.bytes_per_sec > 0.0 {
                t.push_str(&format!(" · {}/s", size_text(row.bytes_per_sec as u64)));
            }
            if let Some(left) = time_left(row.total.saturating_sub(row.done), row.bytes_per_sec) {
                t.push_str(&format!(" · {} left", duration_text(left)));
            }
            t
        }
    }
}

fn direction_text(d: Direction) -> &'static str {
    match d {
        Direction::Send => "Sending",
        Direction::Receive => "Receiving",
        Direction::Park => "Parking",
        Direction::Fetch => "Downloading",
    }
}

/// The offers, the transfers with their progress, and the parked files.
pub fn transfers_ui(ui: &mut egui::Ui, t: &mut Transfers) {
    if let Some(offer) = t.offers.front().cloned() {
        ui.group(|ui| {
            ui.strong(format!(
                "Incoming: \"{}\" ({} files, {})",
                offer.summary.name,
                offer.summary.files,
                size_text(offer.summary.bytes)
            ));
            ui.horizontal(|ui| {
                if ui.button("Save to…").clicked() {
                    t.offers.pop_front();
                    t.actions.push(TransferAction::Accept(offer.peer, offer.id));
                }
                if ui.button("Decline").clicked() {
                    t.offers.pop_front();
                    t.actions
                        .push(TransferAction::Decline(offer.peer, offer.id));
                }
            });
        });
    }
    for row in &t.rows {
        ui.label(format!(
            "{} \"{}\"",
            direction_text(row.direction),
            row.name
        ));
        ui.horizontal(|ui| {
            let fraction = if row.total == 0 {
                1.0
            } else {
                row.done as f32 / row.total as f32
            };
            ui.add(
                egui::ProgressBar::new(fraction)
                    .desired_width(220.0)
                    .show_percentage(),
            );
            if matches!(row.state, RowState::Waiting | RowState::Running)
                && ui
                    .small_button("Cancel")
                    .on_hover_text(format!("Stop \"{}\"", row.name))
                    .clicked()
            {
                t.actions.push(TransferAction::Cancel(row.peer, row.id));
            }
        });
        ui.weak(progress_text(row));
    }
    if !t.parked.is_empty() {
        ui.strong("Parked at the relay (end-to-end encrypted)");
        for p in &t.parked {
            ui.horizontal(|ui| {
                ui.label(format!("{} ({})", p.name, size_text(p.bytes)));
                if ui.small_button("Download…").clicked() {
                    t.actions.push(TransferAction::Fetch(p.file));
                }
            });
        }
    }
    for p in t.problems.iter().rev().take(3) {
        ui.colored_label(ui.visuals().warn_fg_color, p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reads_like_a_person_would_say_it() {
        let row = TransferRow {
            peer: ChannelId(1),
            id: TransferId([0; 16]),
            direction: Direction::Send,
            name: "big.iso".into(),
            total: 200_000_000,
            done: 50_000_000,
            bytes_per_sec: 25_000_000.0,
            state: RowState::Running,
            folder: None,
        };
        assert_eq!(
            progress_text(&row),
            "50.0 MB of 200.0 MB · 25.0 MB/s · 6 s left"
        );
        assert_eq!(time_left(100, 0.0), None);
        assert_eq!(duration_text(Duration::from_secs(3725)), "1 h 2 min");
    }
}
