//! The transfer messages. They travel inside [`crate::message::Message::Transfer`],
//! so they are sealed like everything else in a session.

use super::TransferId;
use super::manifest::Manifest;
use super::store::ParkedFile;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Longest free-text detail in a refusal, in characters.
pub const MAX_DETAIL_CHARS: usize = 300;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TransferMsg {
    /// Sender → receiver: these files, please (again, after a dropped
    /// connection: the receiver answers with what it already has).
    Offer { manifest: Manifest },
    /// Receiver → sender: go ahead; `have` is a bitmap over the transfer's
    /// chunks (bit `n` of byte `n / 8`) of those already verified here.
    Accept {
        id: TransferId,
        #[serde(with = "serde_bytes")]
        have: Vec<u8>,
    },
    /// Receiver → sender: no.
    Refuse { id: TransferId, reason: Refusal },
    /// Sender → receiver: chunk `chunk` (global number).
    Chunk {
        id: TransferId,
        chunk: u64,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    /// Receiver → sender: chunk verified and written.
    Ack { id: TransferId, chunk: u64 },
    /// Receiver → sender: chunk did not match its hash; send it again.
    Bad { id: TransferId, chunk: u64 },
    /// Either way: stop this transfer.
    Cancel {
        id: TransferId,
        reason: CancelReason,
    },
    /// Receiver → sender: every file arrived and checked out.
    Done { id: TransferId },
    /// Host → viewer: a file waits in the relay's store for this session.
    Parked(ParkedFile),
}

/// Why a receiver would not take a transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Error)]
#[non_exhaustive]
pub enum Refusal {
    #[error("the other side declined")]
    Declined,
    #[error("the other side does not take files")]
    NotAccepting,
    #[error("the transfer was refused: {0}")]
    Invalid(String),
    #[error("the other side cannot store the files: {0}")]
    CannotStore(String),
    #[error("the same files are already being received")]
    Busy,
    #[error("too many offers are waiting for an answer on the other side")]
    TooManyOffers,
}

/// Why a transfer was stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Error)]
#[non_exhaustive]
pub enum CancelReason {
    #[error("cancelled")]
    ByUser,
    #[error("a chunk kept failing its check: the file may be changing while it is sent")]
    ChunkKeepsFailing,
    #[error("cannot read the files: {0}")]
    ReadFailed(String),
    #[error("cannot write the files: {0}")]
    WriteFailed(String),
    #[error("the other side broke the transfer protocol: {0}")]
    Protocol(String),
    #[error("the same files came again on a newer connection, which goes on with them")]
    TakenOver,
}

fn bounded(s: &str) -> bool {
    s.chars().count() <= MAX_DETAIL_CHARS
}

impl TransferMsg {
    /// Bounds the decoder cannot express; checked with every message.
    pub fn check_bounds(&self) -> Result<(), &'static str> {
        let detail_ok = match self {
            TransferMsg::Refuse {
                reason: Refusal::Invalid(s) | Refusal::CannotStore(s),
                ..
            } => bounded(s),
            TransferMsg::Cancel {
                reason:
                    CancelReason::ReadFailed(s)
                    | CancelReason::WriteFailed(s)
                    | CancelReason::Protocol(s),
                ..
            } => bounded(s),
            TransferMsg::Parked(p) => p.check_bounds().is_ok(),
            _ => true,
        };
        if detail_ok {
            Ok(())
        } else {
            Err("transfer message text too long")
        }
    }
}

/// Cuts a detail to [`MAX_DETAIL_CHARS`] for sending.
pub fn detail(s: impl Into<String>) -> String {
    let s: String = s.into();
    if bounded(&s) {
        s
    } else {
        s.chars().take(MAX_DETAIL_CHARS - 1).chain(['…']).collect()
    }
}
