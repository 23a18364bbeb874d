//! The manifest: what a transfer contains, as the sender describes it, and
//! the checks that turn the sender's description into something the
//! receiver may act on ([`ValidManifest`]).
//!
//! Chunks are numbered across the whole transfer ("global" chunk numbers,
//! files in manifest order), so that acknowledgements, resume state and the
//! "what I already have" bitmap are one flat range.

use super::TransferId;
use super::path::{PathError, RelPath};
use super::tree::{self, Hash32};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use thiserror::Error;

/// Smallest and largest chunk, as log2 of the byte count. Chunks are whole
/// BLAKE3 subtrees (≥ 1 KiB, a power of two); 64 KiB–4 MiB keeps the
/// per-chunk cost small and one chunk short enough to interleave with video.
pub const MIN_CHUNK_LOG2: u8 = 16;
pub const MAX_CHUNK_LOG2: u8 = 22;
/// The usual chunk: 256 KiB.
pub const DEFAULT_CHUNK_LOG2: u8 = 18;
/// Most chunks in one transfer. Bounds the manifest (32 bytes each: 4 MiB)
/// and the resume bitmap; larger transfers use larger chunks.
pub const MAX_CHUNKS: u64 = 1 << 17;
/// Most entries (files and folders) in one transfer.
pub const MAX_ENTRIES: usize = 100_000;

/// One file or folder, as the sender describes it. The path travels as
/// bytes so that a path that is not UTF-8 is a clear refusal of the
/// transfer, not a message that fails to decode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    #[serde(with = "serde_bytes")]
    pub path: Vec<u8>,
    pub kind: EntryKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryKind {
    /// A folder; listed so that empty folders arrive too.
    Dir,
    File {
        size: u64,
        /// BLAKE3 of the whole file (what `b3sum` prints).
        hash: Hash32,
        /// One chaining value per chunk; they merge to `hash`.
        chunks: Vec<Hash32>,
    },
}

/// What the sender offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub chunk_log2: u8,
    pub entries: Vec<Entry>,
}

impl Manifest {
    /// The transfer's id: a hash of the manifest. The same files offered
    /// again (after a dropped connection, even from a restarted app) have
    /// the same id, which is how a receiver finds its partial state; and a
    /// sender cannot make a receiver resume into a transfer it did not
    /// describe identically.
    pub fn id(&self) -> TransferId {
        let bytes = postcard::to_stdvec(self).unwrap_or_default();
        let h = blake3::Hasher::new_derive_key("fernsicht transfer id v1")
            .update(&bytes)
            .finalize();
        let mut id = [0u8; 16];
        id.copy_from_slice(&h.as_bytes()[..16]);
        TransferId(id)
    }

    pub fn chunk_len(&self) -> u64 {
        1u64 << self.chunk_log2.min(63)
    }

    /// The smallest allowed chunk size that keeps `total` bytes within
    /// [`MAX_CHUNKS`], at least the default.
    pub fn chunk_log2_for(total: u64) -> u8 {
        let mut log2 = DEFAULT_CHUNK_LOG2;
        while log2 < MAX_CHUNK_LOG2 && tree::chunk_count(total, 1 << log2) > MAX_CHUNKS {
            log2 += 1;
        }
        log2
    }
}

/// What a receiver allows beyond the protocol's own bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_entries: usize,
    /// Most bytes in one transfer.
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: MAX_ENTRIES,
            max_bytes: MAX_CHUNKS << MAX_CHUNK_LOG2,
        }
    }
}

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ManifestError {
    #[error("the transfer is empty")]
    Empty,
    #[error("{0} files and folders are more than the {1} allowed")]
    TooManyEntries(usize, usize),
    #[error("chunk size 2^{0} is not between 2^{MIN_CHUNK_LOG2} and 2^{MAX_CHUNK_LOG2} bytes")]
    BadChunkSize(u8),
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("'{0}' appears twice (names differing only in case count as the same)")]
    Duplicate(String),
    #[error("'{0}' is both a file and a folder")]
    FileAndFolder(String),
    #[error("the transfer is larger than the {limit} bytes allowed")]
    TooLarge { limit: u64 },
    #[error("the transfer has more than {MAX_CHUNKS} chunks")]
    TooManyChunks,
    #[error("the chunk hashes of '{0}' do not match its size")]
    ChunkCountMismatch(String),
    #[error("the chunk hashes of '{0}' do not add up to its file hash")]
    HashMismatch(String),
}

/// Where a file's bytes are in the transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Index into [`ValidManifest::entries`].
    pub entry: usize,
    pub path: RelPath,
    pub size: u64,
    pub hash: Hash32,
    /// Global number of its first chunk.
    pub first_chunk: u64,
    pub chunks: u64,
}

/// A global chunk's place: which file, where, how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkPlace {
    /// Index into [`ValidManifest::files`].
    pub file: usize,
    /// The chunk's number within its file.
    pub index: u64,
    pub offset: u64,
    pub len: u64,
}

/// A manifest that passed every check: paths are safe, names unique,
/// sizes within bounds, and each file's chunk hashes add up to its hash.
#[derive(Debug, Clone)]
pub struct ValidManifest {
    manifest: Manifest,
    id: TransferId,
    paths: Vec<RelPath>,
    files: Vec<FileInfo>,
    total_bytes: u64,
    total_chunks: u64,
}

impl ValidManifest {
    pub fn new(manifest: Manifest, limits: &Limits) -> Result<ValidManifest, ManifestError> {
        if manifest.entries.is_empty() {
            return Err(ManifestError::Empty);
        }
        let max_entries = limits.max_entries.min(MAX_ENTRIES);
        if manifest.entries.len() > max_entries {
            return Err(ManifestError::TooManyEntries(
                manifest.entries.len(),
                max_entries,
            ));
        }
        if !(MIN_CHUNK_LOG2..=MAX_CHUNK_LOG2).contains(&manifest.chunk_log2) {
            return Err(ManifestError::BadChunkSize(manifest.chunk_log2));
        }
        let chunk_len = manifest.chunk_len();
        let mut paths = Vec::with_capacity(manifest.entries.len());
        let mut seen = HashSet::new();
        let mut file_names = HashSet::new();
        for e in &manifest.entries {
            let path = RelPath::parse(&e.path)?;
            if !seen.insert(path.folded()) {
                return Err(ManifestError::Duplicate(path.to_string()));
            }
            if matches!(e.kind, EntryKind::File { .. }) {
                file_names.insert(path.folded());
            }
            paths.push(path);
        }
        // A file may not also be a folder on the way to another entry.
        for path in &paths {
            let folded = path.folded();
            let mut prefix = String::new();
            for (i, name) in folded.split('/').enumerate() {
                if i > 0 {
                    if file_names.contains(&prefix) {
                        return Err(ManifestError::FileAndFolder(prefix));
                    }
                    prefix.push('/');
                }
                prefix.push_str(name);
            }
        }
        let max_bytes = limits.max_bytes;
        let mut files = Vec::new();
        let mut total_bytes = 0u64;
        let mut total_chunks = 0u64;
        for (i, e) in manifest.entries.iter().enumerate() {
            let EntryKind::File { size, hash, chunks } = &e.kind else {
                continue;
            };
            total_bytes = total_bytes
                .checked_add(*size)
                .filter(|t| *t <= max_bytes)
                .ok_or(ManifestError::TooLarge { limit: max_bytes })?;
            let count = tree::chunk_count(*size, chunk_len);
            if count != chunks.len() as u64 {
                return Err(ManifestError::ChunkCountMismatch(paths[i].to_string()));
            }
            if tree::file_hash(chunks) != *hash {
                return Err(ManifestError::HashMismatch(paths[i].to_string()));
            }
            files.push(FileInfo {
                entry: i,
                path: paths[i].clone(),
                size: *size,
                hash: *hash,
                first_chunk: total_chunks,
                chunks: count,
            });
            total_chunks += count;
            if total_chunks > MAX_CHUNKS {
                return Err(ManifestError::TooManyChunks);
            }
        }
        Ok(ValidManifest {
            id: manifest.id(),
            manifest,
            paths,
            files,
            total_bytes,
            total_chunks,
        })
    }

    pub fn id(&self) -> TransferId {
        self.id
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    pub fn chunk_len(&self) -> u64 {
        self.manifest.chunk_len()
    }

    /// Every entry's checked path, in manifest order.
    pub fn paths(&self) -> &[RelPath] {
        &self.paths
    }

    /// The folders, for creating empty ones.
    pub fn dirs(&self) -> impl Iterator<Item = &RelPath> {
        self.manifest
            .entries
            .iter()
            .zip(&self.paths)
            .filter(|(e, _)| e.kind == EntryKind::Dir)
            .map(|(_, p)| p)
    }

    pub fn files(&self) -> &[FileInfo] {
        &self.files
    }

    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    pub fn total_chunks(&self) -> u64 {
        self.total_chunks
    }

    /// The chunk hash a chunk must have.
    pub fn chunk_hash(&self, place: &ChunkPlace) -> Option<&Hash32> {
        let f = self.files.get(place.file)?;
        match &self.manifest.entries.get(f.entry)?.kind {
            EntryKind::File { chunks, .. } => chunks.get(place.index as usize),
            EntryKind::Dir => None,
        }
    }

    /// Where global chunk `chunk` belongs; `None` if there is no such chunk.
    pub fn place(&self, chunk: u64) -> Option<ChunkPlace> {
        if chunk >= self.total_chunks {
            return None;
        }
        // The last file whose first chunk is at or before `chunk`; files
        // without chunks share their first_chunk with the next one, and
        // the partition point skips past them.
        let after = self.files.partition_point(|f| f.first_chunk <= chunk);
        let file = after.checked_sub(1)?;
        let f = &self.files[file];
        let index = chunk - f.first_chunk;
        if index >= f.chunks {
            return None;
        }
        let offset = index * self.chunk_len();
        Some(ChunkPlace {
            file,
            index,
            offset,
            len: (f.size - offset).min(self.chunk_len()),
        })
    }

    /// Whether `data` is chunk `chunk`: right length, right hash. The
    /// length is checked first, so hostile data never reaches the hasher
    /// at a size it would refuse.
    pub fn verify(&self, chunk: u64, data: &[u8]) -> bool {
        let Some(place) = self.place(chunk) else {
            return false;
        };
        if data.len() as u64 != place.len {
            return false;
        }
        let Some(want) = self.chunk_hash(&place) else {
            return false;
        };
        let chunks = self.files[place.file].chunks;
        tree::chunk_hash(data, place.index, self.chunk_len(), chunks) == *want
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A manifest for in-memory files `(path, bytes)`.
    pub(crate) fn manifest_of(files: &[(&str, &[u8])], chunk_log2: u8) -> Manifest {
        let chunk_len = 1u64 << chunk_log2;
        Manifest {
            chunk_log2,
            entries: files
                .iter()
                .map(|(p, data)| {
                    let mut h = tree::FileHasher::new(data.len() as u64, chunk_len);
                    for c in data.chunks(chunk_len as usize) {
                        h.chunk(c);
                    }
                    let (hash, chunks) = h.finish();
                    Entry {
                        path: p.as_bytes().to_vec(),
                        kind: EntryKind::File {
                            size: data.len() as u64,
                            hash,
                            chunks,
                        },
                    }
                })
                .collect(),
        }
    }

    #[test]
    fn chunks_are_placed_across_files() {
        let a = vec![1u8; 70_000];
        let b: Vec<u8> = Vec::new();
        let c = vec![3u8; 65_536 * 2];
        let m = manifest_of(&[("a", &a), ("empty", &b), ("dir/c", &c)], 16);
        let v = ValidManifest::new(m, &Limits::default()).unwrap();
        assert_eq!(v.total_chunks(), 4);
        assert_eq!(v.total_bytes(), 70_000 + 131_072);
        let p = v.place(1).unwrap();
        assert_eq!(
            (p.file, p.index, p.offset, p.len),
            (0, 1, 65_536, 70_000 - 65_536)
        );
        let p = v.place(2).unwrap();
        assert_eq!((p.file, p.index, p.offset), (2, 0, 0));
        assert!(v.place(4).is_none());
        assert!(v.verify(1, &a[65_536..]));
        assert!(!v.verify(1, &a[65_535..]), "wrong length");
        assert!(v.verify(3, &c[65_536..]));
        let mut bad = c[65_536..].to_vec();
        bad[7] ^= 0x10;
        assert!(!v.verify(3, &bad));
    }

    #[test]
    fn hostile_manifests_are_refused_with_a_reason() {
        let ok = manifest_of(&[("x", b"hello")], 16);
        let with_path = |p: &[u8]| {
            let mut m = ok.clone();
            m.entries[0].path = p.to_vec();
            ValidManifest::new(m, &Limits::default()).unwrap_err()
        };
        assert!(matches!(
            with_path(b"../x"),
            ManifestError::Path(PathError::DotComponent(_))
        ));
        assert!(matches!(
            with_path(b"/etc/x"),
            ManifestError::Path(PathError::Absolute(_))
        ));
        assert!(matches!(with_path(b"a\x07b"), ManifestError::Path(_)));
        assert_eq!(
            with_path(b"../x").to_string(),
            "path '../x' leaves the folder ('..' or '.')"
        );

        // A huge size with the chunk list of a small file.
        let mut m = ok.clone();
        if let EntryKind::File { size, .. } = &mut m.entries[0].kind {
            *size = u64::MAX;
        }
        assert!(matches!(
            ValidManifest::new(m, &Limits::default()),
            Err(ManifestError::TooLarge { .. })
        ));
        let mut m = ok.clone();
        if let EntryKind::File { size, .. } = &mut m.entries[0].kind {
            *size = 1 << 40;
        }
        assert!(matches!(
            ValidManifest::new(
                m,
                &Limits {
                    max_entries: 10,
                    max_bytes: 1 << 50
                }
            ),
            Err(ManifestError::ChunkCountMismatch(_))
        ));
        // Within the protocol but over this receiver's limit.
        let big = vec![0u8; 100_000];
        let m = manifest_of(&[("big", &big)], 16);
        assert!(matches!(
            ValidManifest::new(
                m,
                &Limits {
                    max_entries: 10,
                    max_bytes: 99_999
                }
            ),
            Err(ManifestError::TooLarge { limit: 99_999 })
        ));

        let m = manifest_of(&[("a.txt", b"1"), ("A.TXT", b"2")], 16);
        assert!(matches!(
            ValidManifest::new(m, &Limits::default()),
            Err(ManifestError::Duplicate(_))
        ));
        let m = manifest_of(&[("a", b"1"), ("a/b", b"2")], 16);
        assert!(matches!(
            ValidManifest::new(m, &Limits::default()),
            Err(ManifestError::FileAndFolder(_))
        ));
        let files: Vec<(String, Vec<u8>)> = (0..11).map(|i| (format!("f{i}"), vec![])).collect();
        let refs: Vec<(&str, &[u8])> = files.iter().map(|(p, d)| (p.as_str(), &d[..])).collect();
        assert!(matches!(
            ValidManifest::new(
                manifest_of(&refs, 16),
                &Limits {
                    max_entries: 10,
                    max_bytes: 1 << 30
                }
            ),
            Err(ManifestError::TooManyEntries(11, 10))
        ));
        let mut m = ok.clone();
        m.chunk_log2 = 63;
        assert!(matches!(
            ValidManifest::new(m, &Limits::default()),
            Err(ManifestError::BadChunkSize(63))
        ));
        let mut m = ok.clone();
        if let EntryKind::File { hash, .. } = &mut m.entries[0].kind {
            hash[0] ^= 1;
        }
        assert!(matches!(
            ValidManifest::new(m, &Limits::default()),
            Err(ManifestError::HashMismatch(_))
        ));
        assert!(matches!(
            ValidManifest::new(
                Manifest {
                    chunk_log2: 18,
                    entries: vec![]
                },
                &Limits::default()
            ),
            Err(ManifestError::Empty)
        ));
    }

    #[test]
    fn the_id_follows_the_content() {
        let a = manifest_of(&[("x", b"hello")], 16);
        let b = manifest_of(&[("x", b"hellO")], 16);
        assert_eq!(a.id(), a.clone().id());
        assert_ne!(a.id(), b.id());
        assert_eq!(Manifest::chunk_log2_for(1 << 30), DEFAULT_CHUNK_LOG2);
        assert_eq!(Manifest::chunk_log2_for(64 << 30), 19);
    }
}
