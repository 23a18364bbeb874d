//! The receiving side of one transfer: which chunks are verified, which
//! file is complete, and what to tell the sender. Checking a chunk's hash
//! is [`ValidManifest::verify`], run wherever the chunk is written.

use super::manifest::{ChunkPlace, ValidManifest};
use super::sender::bytes_in;
use super::{Bitmap, TransferError, TransferId, TransferMsg};
use std::sync::Arc;

/// What writing a verified chunk completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Written {
    /// This file (index into [`ValidManifest::files`]) has all its chunks.
    pub file_complete: Option<usize>,
    /// Every chunk of the transfer is in.
    pub all_done: bool,
}

pub struct Receiver {
    manifest: Arc<ValidManifest>,
    have: Bitmap,
    /// Chunks still missing per file.
    missing: Vec<u64>,
    bytes_have: u64,
    bad: u64,
}

impl Receiver {
    /// `have`: the chunks found verified on disk (resume), or none.
    pub fn new(manifest: Arc<ValidManifest>, have: Bitmap) -> Result<Self, TransferError> {
        if have.len() != manifest.total_chunks() {
            return Err(TransferError::BadBitmap);
        }
        let missing = manifest
            .files()
            .iter()
            .map(|f| {
                (f.first_chunk..f.first_chunk + f.chunks)
                    .filter(|c| !have.get(*c))
                    .count() as u64
            })
            .collect();
        Ok(Receiver {
            bytes_have: bytes_in(&manifest, &have),
            manifest,
            have,
            missing,
            bad: 0,
        })
    }

    pub fn id(&self) -> TransferId {
        self.manifest.id()
    }

    pub fn manifest(&self) -> &Arc<ValidManifest> {
        &self.manifest
    }

    /// The answer to the offer: go ahead, and this is what is here already.
    pub fn accept(&self) -> TransferMsg {
        TransferMsg::Accept {
            id: self.id(),
            have: self.have.as_bytes().to_vec(),
        }
    }

    /// Files complete before any chunk arrives: empty files, and files
    /// whose every chunk was on disk already.
    pub fn complete_files(&self) -> impl Iterator<Item = usize> + '_ {
        self.missing
            .iter()
            .enumerate()
            .filter(|(_, m)| **m == 0)
            .map(|(i, _)| i)
    }

    /// A chunk arrived: where it belongs, or `None` if it is one we already
    /// have (a repeat after a resume; it is acknowledged again and dropped).
    pub fn on_chunk(&self, chunk: u64) -> Result<Option<ChunkPlace>, TransferError> {
        let place = self
            .manifest
            .place(chunk)
            .ok_or(TransferError::NoSuchChunk(chunk))?;
        Ok((!self.have.get(chunk)).then_some(place))
    }

    /// The chunk checked out and is written.
    pub fn written(&mut self, chunk: u64) -> Written {
        let mut out = Written::default();
        if let Some(place) = self.manifest.place(chunk)
            && self.have.set(chunk)
        {
            self.bytes_have += place.len;
            let m = &mut self.missing[place.file];
            *m -= 1;
            if *m == 0 {
                out.file_complete = Some(place.file);
            }
        }
        out.all_done = self.have.is_full();
        out
    }

    /// The chunk did not match its hash: ask again.
    pub fn damaged(&mut self, chunk: u64) -> TransferMsg {
        self.bad += 1;
        TransferMsg::Bad {
            id: self.id(),
            chunk,
        }
    }

    pub fn is_done(&self) -> bool {
        self.have.is_full()
    }

    pub fn bytes_done(&self) -> u64 {
        self.bytes_have
    }

    /// Chunks verified so far.
    pub fn chunks_done(&self) -> u64 {
        self.have.count()
    }

    /// Damaged chunks seen.
    pub fn damaged_count(&self) -> u64 {
        self.bad
    }
}
