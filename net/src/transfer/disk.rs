//! The file system side of a transfer, kept apart from the protocol:
//! describing files to send ([`scan`]), reading their chunks ([`Source`]),
//! and on the receiving side keeping partial files and moving finished ones
//! to safe, never-overwriting names ([`Inbox`], [`Partial`]).
//!
//! Receiving writes only below the chosen folder. Partial data lives in
//! `FOLDER/.fernsicht-partial/ID/` under file numbers, never under the
//! sender's names, so nothing the sender says is used as a path until the
//! file is complete and verified. Then its final name is claimed with an
//! exclusive create (an existing file is never replaced: a clash becomes
//! `name (1).ext`) and the partial file is renamed onto the claim. A
//! folder that already exists at the top is not merged into: the transfer
//! gets `folder (1)`. Existing folders below our own top folder are only
//! entered if they are real folders, not links.
//!
//! Resuming needs no bookkeeping that could go stale: the partial folder
//! keeps the manifest, and on a new offer with the same id every chunk on
//! disk is hashed again; what checks out is not sent again.

use super::manifest::{ChunkPlace, Entry, EntryKind, Manifest, ManifestError, ValidManifest};
use super::path::{PathError, RelPath, numbered};
use super::tree::FileHasher;
use super::{Bitmap, Limits};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

/// The folder inside the receiver's folder that holds partial transfers.
pub const PARTIAL_DIR: &str = ".fernsicht-partial";
/// How far `name (n).ext` counts before giving up.
const MAX_RENAMES: u32 = 9999;
/// Space a transfer leaves free on the receiver's disk: a transfer that
/// would fill it to the last byte is refused before it starts.
pub const SPACE_HEADROOM: u64 = 64 << 20;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DiskError {
    #[error("cannot read {path}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {path}")]
    Write { path: PathBuf, source: io::Error },
    #[error("{0} is not a folder")]
    NotAFolder(PathBuf),
    #[error("the name of {0} is not valid UTF-8")]
    NameNotUtf8(PathBuf),
    #[error("{path} cannot be sent")]
    BadName { path: PathBuf, source: PathError },
    #[error("{0} changed while it was read")]
    Changed(PathBuf),
    #[error("nothing to send")]
    Empty,
    #[error("too many files named like '{0}'")]
    TooManyClashes(String),
    #[error("{0} is a link; received files are never written through links")]
    Link(PathBuf),
    #[error(
        "not enough space in {folder}: the files need {needed} bytes more and {free} are free \
         (keeping {SPACE_HEADROOM} free)"
    )]
    NoSpace {
        folder: PathBuf,
        needed: u64,
        free: u64,
    },
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

fn read_err(path: &Path) -> impl FnOnce(io::Error) -> DiskError + '_ {
    move |source| DiskError::Read {
        path: path.to_path_buf(),
        source,
    }
}

fn write_err(path: &Path) -> impl FnOnce(io::Error) -> DiskError + '_ {
    move |source| DiskError::Write {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(unix)]
fn read_exact_at(f: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(f: &File, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match f.seek_read(buf, offset)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(unix)]
fn write_all_at(f: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, buf, offset)
}

#[cfg(windows)]
fn write_all_at(f: &File, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match f.seek_write(buf, offset)? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => {
                buf = &buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// A file or folder found while scanning, before hashing.
enum Found {
    Dir(RelPath),
    File(RelPath, PathBuf, u64),
}

fn name_of(path: &Path) -> Result<String, DiskError> {
    let name = path
        .file_name()
        .ok_or_else(|| DiskError::NameNotUtf8(path.to_path_buf()))?;
    name.to_str()
        .map(str::to_owned)
        .ok_or_else(|| DiskError::NameNotUtf8(path.to_path_buf()))
}

fn walk(path: &Path, names: &mut Vec<String>, out: &mut Vec<Found>) -> Result<(), DiskError> {
    let meta = fs::symlink_metadata(path).map_err(read_err(path))?;
    let rel = |names: &Vec<String>| {
        RelPath::from_names(names.iter().map(String::as_str)).map_err(|source| DiskError::BadName {
            path: path.to_path_buf(),
            source,
        })
    };
    if meta.is_file() {
        out.push(Found::File(rel(names)?, path.to_path_buf(), meta.len()));
    } else if meta.is_dir() {
        out.push(Found::Dir(rel(names)?));
        let mut children: Vec<PathBuf> = fs::read_dir(path)
            .map_err(read_err(path))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(read_err(path))?;
        // Sorted, so the same folder always makes the same manifest (and id).
        children.sort();
        for child in children {
            names.push(name_of(&child)?);
            walk(&child, names, out)?;
            names.pop();
        }
    }
    // Links and special files are skipped: a link could point anywhere,
    // and a pipe has no size to announce.
    Ok(())
}

/// Describes files and folders for sending: walks folders (in name order,
/// not following links), reads every file once to hash it, and returns the
/// manifest with where each of its files is on this machine.
pub fn scan(paths: &[PathBuf]) -> Result<(Manifest, Source), DiskError> {
    let mut found = Vec::new();
    for p in paths {
        let mut names = vec![name_of(p)?];
        walk(p, &mut names, &mut found)?;
    }
    let total: u64 = found
        .iter()
        .map(|f| match f {
            Found::File(_, _, size) => *size,
            Found::Dir(_) => 0,
        })
        .sum();
    let chunk_log2 = Manifest::chunk_log2_for(total);
    let chunk_len = 1u64 << chunk_log2;
    let mut entries = Vec::with_capacity(found.len());
    let mut sources = Vec::new();
    let mut buf = vec![0u8; chunk_len as usize];
    for f in found {
        match f {
            Found::Dir(rel) => entries.push(Entry {
                path: rel.as_str().as_bytes().to_vec(),
                kind: EntryKind::Dir,
            }),
            Found::File(rel, path, size) => {
                let mut file = File::open(&path).map_err(read_err(&path))?;
                let mut hasher = FileHasher::new(size, chunk_len);
                let mut left = size;
                while left > 0 {
                    let n = left.min(chunk_len) as usize;
                    file.read_exact(&mut buf[..n]).map_err(|e| {
                        if e.kind() == io::ErrorKind::UnexpectedEof {
                            DiskError::Changed(path.clone())
                        } else {
                            DiskError::Read {
                                path: path.clone(),
                                source: e,
                            }
                        }
                    })?;
                    hasher.chunk(&buf[..n]);
                    left -= n as u64;
                }
                let (hash, chunks) = hasher.finish();
                entries.push(Entry {
                    path: rel.as_str().as_bytes().to_vec(),
                    kind: EntryKind::File { size, hash, chunks },
                });
                sources.push(path);
            }
        }
    }
    if entries.is_empty() {
        return Err(DiskError::Empty);
    }
    Ok((
        Manifest {
            chunk_log2,
            entries,
        },
        Source { files: sources },
    ))
}

/// Where the files of a manifest made by [`scan`] are, by file number.
#[derive(Debug, Clone)]
pub struct Source {
    files: Vec<PathBuf>,
}

impl Source {
    pub fn new(files: Vec<PathBuf>) -> Self {
        Source { files }
    }

    pub fn reader(&self) -> SourceReader {
        SourceReader {
            files: self.files.clone(),
            open: None,
        }
    }
}

/// Reads chunks, keeping the current file open (chunks go mostly in order).
pub struct SourceReader {
    files: Vec<PathBuf>,
    open: Option<(usize, File)>,
}

impl SourceReader {
    pub fn read(&mut self, place: &ChunkPlace) -> Result<Vec<u8>, DiskError> {
        let path = self.files.get(place.file).ok_or(DiskError::Empty)?.clone();
        if self.open.as_ref().is_none_or(|(i, _)| *i != place.file) {
            self.open = Some((place.file, File::open(&path).map_err(read_err(&path))?));
        }
        let Some((_, file)) = &self.open else {
            return Err(DiskError::Empty);
        };
        let mut buf = vec![0u8; place.len as usize];
        read_exact_at(file, &mut buf, place.offset).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                DiskError::Changed(path.clone())
            } else {
                DiskError::Read {
                    path: path.clone(),
                    source: e,
                }
            }
        })?;
        Ok(buf)
    }
}

/// A folder that receives transfers.
#[derive(Debug, Clone)]
pub struct Inbox {
    root: PathBuf,
    /// Bytes free for new files below a folder (the file system's answer;
    /// tests put in their own).
    free_space: fn(&Path) -> io::Result<u64>,
}

impl Inbox {
    pub fn new(root: impl Into<PathBuf>) -> Result<Inbox, DiskError> {
        let root = root.into();
        let meta = fs::metadata(&root).map_err(read_err(&root))?;
        if !meta.is_dir() {
            return Err(DiskError::NotAFolder(root));
        }
        Ok(Inbox {
            root,
            free_space: |p| fs4::available_space(p),
        })
    }

    /// The same folder, with free space as `free_space` says.
    pub fn with_free_space(mut self, free_space: fn(&Path) -> io::Result<u64>) -> Inbox {
        self.free_space = free_space;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn partial_dir(&self, manifest: &ValidManifest) -> PathBuf {
        self.root.join(PARTIAL_DIR).join(manifest.id().to_string())
    }

    /// Opens the partial state of a transfer, making it if new. For a
    /// transfer seen before, returns the chunks already on disk and
    /// verified. Refused, with nothing written, if the rest would not fit
    /// on the disk with [`SPACE_HEADROOM`] to spare.
    pub fn open(&self, manifest: Arc<ValidManifest>) -> Result<(Partial, Bitmap), DiskError> {
        let dir = self.partial_dir(&manifest);
        let encoded = postcard::to_stdvec(manifest.manifest()).unwrap_or_default();
        let mut partial = Partial {
            root: self.root.clone(),
            dir: dir.clone(),
            manifest: manifest.clone(),
            tops: HashMap::new(),
            open: None,
        };
        let mut have = Bitmap::new(manifest.total_chunks());
        let saved = fs::read(dir.join("manifest")).ok();
        let known = saved.as_deref() == Some(&encoded[..]);
        if known {
            partial.tops = read_tops(&dir.join("names"));
            partial.rehash(&mut have);
        }
        let needed = manifest.total_bytes() - super::sender::bytes_in(&manifest, &have);
        match (self.free_space)(&self.root) {
            Ok(free) if free < needed.saturating_add(SPACE_HEADROOM) => {
                return Err(DiskError::NoSpace {
                    folder: self.root.clone(),
                    needed,
                    free,
                });
            }
            Ok(_) => {}
            // A file system that cannot say: the writes will tell.
            Err(e) => tracing::debug!(error = %e, "cannot ask for free space"),
        }
        if !known {
            // Unknown or unreadable: start afresh.
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).map_err(write_err(&dir))?;
            let path = dir.join("manifest");
            fs::write(&path, &encoded).map_err(write_err(&path))?;
        }
        Ok((partial, have))
    }

    /// Checks a manifest against this inbox's limits.
    pub fn check(manifest: Manifest, limits: &Limits) -> Result<ValidManifest, ManifestError> {
        ValidManifest::new(manifest, limits)
    }
}

fn read_tops(path: &Path) -> HashMap<String, String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
        .collect()
}

/// One transfer being received into an [`Inbox`].
pub struct Partial {
    root: PathBuf,
    dir: PathBuf,
    manifest: Arc<ValidManifest>,
    /// Top-level folder names of the manifest → the names they got here.
    tops: HashMap<String, String>,
    open: Option<(usize, File)>,
}

impl Partial {
    /// The receiving folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn part_path(&self, file: usize) -> PathBuf {
        self.dir.join(format!("{file}.part"))
    }

    fn done_path(&self, file: usize) -> PathBuf {
        self.dir.join(format!("{file}.done"))
    }

    /// Marks the chunks on disk that still check out.
    fn rehash(&mut self, have: &mut Bitmap) {
        let manifest = self.manifest.clone();
        for (i, f) in manifest.files().iter().enumerate() {
            let range = f.first_chunk..f.first_chunk + f.chunks;
            if self.done_path(i).exists() {
                range.for_each(|c| {
                    have.set(c);
                });
                continue;
            }
            let Ok(file) = File::open(self.part_path(i)) else {
                continue;
            };
            let mut buf = Vec::new();
            for c in range {
                let Some(place) = manifest.place(c) else {
                    continue;
                };
                buf.resize(place.len as usize, 0);
                if read_exact_at(&file, &mut buf, place.offset).is_ok() && manifest.verify(c, &buf)
                {
                    have.set(c);
                }
            }
        }
    }

    /// Writes a verified chunk into its file's partial data.
    pub fn write(&mut self, place: &ChunkPlace, data: &[u8]) -> Result<(), DiskError> {
        let path = self.part_path(place.file);
        if self.open.as_ref().is_none_or(|(i, _)| *i != place.file) {
            let f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(write_err(&path))?;
            self.open = Some((place.file, f));
        }
        if let Some((_, f)) = &self.open {
            write_all_at(f, data, place.offset).map_err(write_err(&path))?;
        }
        Ok(())
    }

    /// Moves a complete file to its final name and returns that name
    /// (relative to the folder). Done once per file; asking again returns
    /// the same name.
    pub fn finish_file(&mut self, file: usize) -> Result<RelPath, DiskError> {
        let done = self.done_path(file);
        if let Ok(text) = fs::read_to_string(&done)
            && let Ok(rel) = RelPath::parse(text.as_bytes())
        {
            return Ok(rel);
        }
        let info = self
            .manifest
            .files()
            .get(file)
            .ok_or(DiskError::Empty)?
            .clone();
        if self.open.as_ref().is_some_and(|(i, _)| *i == file) {
            self.open = None;
        }
        let part = self.part_path(file);
        if info.size > 0 {
            // Sparse writes may leave the length short of a trailing hole;
            // the size is the manifest's.
            let f = OpenOptions::new()
                .write(true)
                .open(&part)
                .map_err(write_err(&part))?;
            f.set_len(info.size).map_err(write_err(&part))?;
        }
        let (final_rel, final_path) = self.claim(&info.path)?;
        if info.size > 0 {
            fs::rename(&part, &final_path).map_err(write_err(&final_path))?;
        }
        fs::write(&done, final_rel.as_str()).map_err(write_err(&done))?;
        Ok(final_rel)
    }

    /// Creates the (empty) folders of the manifest and removes the partial
    /// state: the transfer is complete.
    pub fn finish(mut self) -> Result<(), DiskError> {
        let manifest = self.manifest.clone();
        for dir in manifest.dirs() {
            let names: Vec<&str> = dir.names().collect();
            let top = self.top(names[0])?;
            let mut path = self.root.join(top);
            for name in &names[1..] {
                path.push(name);
                enter_dir(&path)?;
            }
        }
        fs::remove_dir_all(&self.dir).map_err(write_err(&self.dir))?;
        remove_if_empty(&self.root.join(PARTIAL_DIR));
        Ok(())
    }

    /// Drops the partial state (cancelled). Files already complete stay.
    pub fn discard(self) {
        let _ = fs::remove_dir_all(&self.dir);
        remove_if_empty(&self.root.join(PARTIAL_DIR));
    }

    /// The name a top-level folder of the manifest gets here, claiming one
    /// on first use (`name (1)` if `name` exists).
    fn top(&mut self, name: &str) -> Result<String, DiskError> {
        if let Some(t) = self.tops.get(name) {
            return Ok(t.clone());
        }
        let mut chosen = None;
        for n in 0..=MAX_RENAMES {
            let candidate = if n == 0 {
                name.to_owned()
            } else {
                numbered(name, n)
            };
            let path = self.root.join(&candidate);
            match fs::create_dir(&path) {
                Ok(()) => {
                    chosen = Some(candidate);
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(write_err(&path)(e)),
            }
        }
        let chosen = chosen.ok_or_else(|| DiskError::TooManyClashes(name.to_owned()))?;
        self.tops.insert(name.to_owned(), chosen.clone());
        let text: String = self
            .tops
            .iter()
            .map(|(a, b)| format!("{a}\t{b}\n"))
            .collect();
        let names = self.dir.join("names");
        fs::write(&names, text).map_err(write_err(&names))?;
        Ok(chosen)
    }

    /// Claims the final place of a file: its folders, then the file name
    /// itself with an exclusive create.
    fn claim(&mut self, rel: &RelPath) -> Result<(RelPath, PathBuf), DiskError> {
        let names: Vec<&str> = rel.names().collect();
        let (last, folders) = names.split_last().ok_or(DiskError::Empty)?;
        let mut out: Vec<String> = Vec::with_capacity(names.len());
        let mut dir = self.root.clone();
        if let Some((top, below)) = folders.split_first() {
            let top = self.top(top)?;
            dir.push(&top);
            out.push(top);
            for name in below {
                dir.push(name);
                enter_dir(&dir)?;
                out.push((*name).to_owned());
            }
        }
        for n in 0..=MAX_RENAMES {
            let candidate = if n == 0 {
                (*last).to_owned()
            } else {
                numbered(last, n)
            };
            let path = dir.join(&candidate);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(_) => {
                    out.push(candidate);
                    let rel =
                        RelPath::from_names(out.iter().map(String::as_str)).map_err(|source| {
                            DiskError::BadName {
                                path: path.clone(),
                                source,
                            }
                        })?;
                    return Ok((rel, path));
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(write_err(&path)(e)),
            }
        }
        Err(DiskError::TooManyClashes((*last).to_owned()))
    }
}

/// Makes a folder below one of ours, or enters it if it is already a real
/// folder; never follows a link.
fn enter_dir(path: &Path) -> Result<(), DiskError> {
    match fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let meta = fs::symlink_metadata(path).map_err(write_err(path))?;
            if meta.file_type().is_symlink() {
                Err(DiskError::Link(path.to_path_buf()))
            } else if meta.is_dir() {
                Ok(())
            } else {
                Err(DiskError::NotAFolder(path.to_path_buf()))
            }
        }
        Err(e) => Err(write_err(path)(e)),
    }
}

fn remove_if_empty(dir: &Path) {
    // Fails harmlessly when another transfer is still in there.
    let _ = fs::remove_dir(dir);
}
