//! File transfer lines of the headless modes. One stable line per event
//! (scripts and tests parse them); sizes in bytes, ids as eight hex digits.
//!
//! ```text
//! transfer offered 1a2b3c4d from #1 "name" 3 files 1024 bytes
//! transfer declined 1a2b3c4d: no folder to take files (--inbox / --save-to)
//! transfer refused 1a2b3c4d from #1: path '../x' leaves the folder ('..' or '.')
//! transfer offering 1a2b3c4d send "name" 3 files 1024 bytes
//! transfer started 1a2b3c4d receive resumed 0 bytes
//! transfer progress 1a2b3c4d 524288/1024000 bytes 1048576 B/s
//! transfer file 1a2b3c4d folder/name.txt
//! transfer done 1a2b3c4d send bytes 1024000 chunks-sent 4 resent 0 skipped 0 damaged 0 secs 0.12
//! transfer failed 1a2b3c4d send: the other side declined
//! transfer problem: cannot send: …
//! parked 00ab34cd56ef7890 "name" 1024 bytes
//! parked-available 00ab34cd56ef7890 "name" 1024 bytes
//! ```
//!
//! The viewer appends ` video-frames N video-gap-max-ms G` to its `done`
//! lines: pictures that arrived during the transfer and the longest wait
//! between two.

use crate::engine::VideoGap;
use fernsicht_net::transfer::service::TransferEvent;

/// The line for an event, if it has one.
pub fn line(event: &TransferEvent) -> String {
    match event {
        TransferEvent::Offered { peer, id, summary } => format!(
            "transfer offered {} from {peer} \"{}\" {} files {} bytes",
            id.short(),
            summary.name,
            summary.files,
            summary.bytes
        ),
        TransferEvent::Refused { peer, id, reason } => {
            format!("transfer refused {} from {peer}: {reason}", id.short())
        }
        TransferEvent::Offering {
            id,
            direction,
            summary,
            ..
        } => format!(
            "transfer offering {} {direction} \"{}\" {} files {} bytes",
            id.short(),
            summary.name,
            summary.files,
            summary.bytes
        ),
        TransferEvent::Started {
            id,
            direction,
            resumed,
            ..
        } => format!(
            "transfer started {} {direction} resumed {resumed} bytes",
            id.short()
        ),
        TransferEvent::Progress {
            id,
            done,
            total,
            bytes_per_sec,
            ..
        } => format!(
            "transfer progress {} {done}/{total} bytes {bytes_per_sec:.0} B/s",
            id.short()
        ),
        TransferEvent::FileReceived { id, path, .. } => {
            format!("transfer file {} {path}", id.short())
        }
        TransferEvent::Finished {
            id,
            direction,
            outcome: o,
            ..
        } => format!(
            "transfer done {} {direction} bytes {} chunks-sent {} resent {} skipped {} damaged {} secs {:.2}",
            id.short(),
            o.bytes,
            o.chunks_sent,
            o.resent,
            o.skipped,
            o.damaged,
            o.secs
        ),
        TransferEvent::Failed {
            id,
            direction,
            reason,
            ..
        } => format!("transfer failed {} {direction}: {reason}", id.short()),
        TransferEvent::Parked { file, summary, .. } => format!(
            "parked {file:016x} \"{}\" {} bytes",
            summary.name, summary.bytes
        ),
        TransferEvent::ParkedAvailable { file, summary, .. } => format!(
            "parked-available {file:016x} \"{}\" {} bytes",
            summary.name, summary.bytes
        ),
        TransferEvent::Problem(p) => format!("transfer problem: {p}"),
        other => format!("transfer {other:?}"),
    }
}

/// The viewer's addition to a `done` line.
pub fn gap_suffix(gap: VideoGap) -> String {
    format!(
        " video-frames {} video-gap-max-ms {}",
        gap.frames,
        gap.largest.as_millis()
    )
}

/// The line when an offer is declined for want of a folder.
pub fn declined(id: &fernsicht_net::transfer::TransferId) -> String {
    format!(
        "transfer declined {}: no folder to take files (--inbox / --save-to)",
        id.short()
    )
}
