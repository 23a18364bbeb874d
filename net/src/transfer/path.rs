//! Relative paths as they travel in a manifest, parsed rather than
//! validated: a [`RelPath`] can only be made from bytes that name a place
//! strictly inside the receiver's chosen folder, on every platform.
//!
//! The sender is not trusted. Its path bytes must be UTF-8 with `/` as the
//! only separator; every component must be a plain name. Anything a file
//! system could read as "elsewhere" is refused rather than cleaned up,
//! because a cleaned-up path is no longer the one the sender meant:
//! `..`, `.`, empty components, absolute paths, backslashes and colons
//! (Windows separators, drive letters and alternate data streams), control
//! characters, invisible direction overrides (which make `exe.txt` look
//! like `txt.exe`), names Windows reserves for devices (`CON`, `NUL`, …),
//! and names ending in a dot or space (Windows drops those, so two different
//! names would land on one file).

use std::fmt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Longest path, in bytes (Linux's `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest single name, in bytes (most file systems' limit).
pub const MAX_NAME_BYTES: usize = 255;
/// Deepest nesting of folders.
pub const MAX_DEPTH: usize = 64;

/// Why a path from a manifest was refused. Each variant says what is wrong
/// in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PathError {
    #[error("a path is empty")]
    Empty,
    #[error("a path is not valid UTF-8")]
    NotUtf8,
    #[error("path '{0}' is absolute")]
    Absolute(String),
    #[error("path '{0}' has an empty part")]
    EmptyComponent(String),
    #[error("path '{0}' leaves the folder ('..' or '.')")]
    DotComponent(String),
    #[error("path '{0}' contains a backslash or colon")]
    ForeignSeparator(String),
    #[error("path '{0}' contains control or direction-override characters")]
    ControlCharacter(String),
    #[error("path '{0}' uses a name Windows reserves for devices")]
    ReservedName(String),
    #[error("path '{0}' has a name ending in a dot or space")]
    TrailingDotOrSpace(String),
    #[error("a path is longer than {MAX_PATH_BYTES} bytes")]
    TooLong,
    #[error("path '{0}' has a name longer than {MAX_NAME_BYTES} bytes")]
    NameTooLong(String),
    #[error("path '{0}' is nested deeper than {MAX_DEPTH} folders")]
    TooDeep(String),
}

/// A path relative to the receiver's folder, made only of plain names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RelPath(String);

/// Characters that render as nothing or reorder text around them.
fn is_invisible_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn is_reserved_on_windows(name: &str) -> bool {
    // "CON", "con.txt", "COM1.tar.gz": the device wins on Windows whatever
    // the extension.
    let stem = name.split('.').next().unwrap_or(name).trim_end();
    let upper = stem.to_ascii_uppercase();
    matches!(upper.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((upper.starts_with("COM") || upper.starts_with("LPT"))
            && upper.len() == 4
            && upper.as_bytes()[3].is_ascii_digit())
}

/// A printable form of a refused path for error messages: never the raw
/// control characters, never unbounded.
fn shown(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(120)
        .map(|c| {
            if c.is_control() || is_invisible_control(c) {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect();
    if s.chars().count() > 120 {
        out.push('…');
    }
    out
}

impl RelPath {
    /// Parses path bytes from a manifest.
    pub fn parse(bytes: &[u8]) -> Result<RelPath, PathError> {
        if bytes.is_empty() {
            return Err(PathError::Empty);
        }
        if bytes.len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong);
        }
        let s = std::str::from_utf8(bytes).map_err(|_| PathError::NotUtf8)?;
        if s.chars().any(|c| c.is_control() || is_invisible_control(c)) {
            return Err(PathError::ControlCharacter(shown(s)));
        }
        if s.starts_with('/') {
            return Err(PathError::Absolute(shown(s)));
        }
        if s.contains('\\') || s.contains(':') {
            return Err(PathError::ForeignSeparator(shown(s)));
        }
        let mut depth = 0;
        for name in s.split('/') {
            depth += 1;
            if name.is_empty() {
                return Err(PathError::EmptyComponent(shown(s)));
            }
            if name == "." || name == ".." {
                return Err(PathError::DotComponent(shown(s)));
            }
            if name.len() > MAX_NAME_BYTES {
                return Err(PathError::NameTooLong(shown(s)));
            }
            if name.ends_with('.') || name.ends_with(' ') {
                return Err(PathError::TrailingDotOrSpace(shown(s)));
            }
            if is_reserved_on_windows(name) {
                return Err(PathError::ReservedName(shown(s)));
            }
        }
        if depth > MAX_DEPTH {
            return Err(PathError::TooDeep(shown(s)));
        }
        Ok(RelPath(s.to_owned()))
    }

    /// Makes a path from names the sender's own file system gave; the same
    /// rules apply, so a sender never offers what a receiver would refuse.
    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<RelPath, PathError> {
        let joined: Vec<&str> = names.into_iter().collect();
        RelPath::parse(joined.join("/").as_bytes())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The plain names, outermost first.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The outermost name: the file itself, or the top folder it is in.
    pub fn top(&self) -> &str {
        self.0.split('/').next().unwrap_or(&self.0)
    }

    pub fn depth(&self) -> usize {
        self.names().count()
    }

    /// The same path below `root` on this machine. Safe by construction:
    /// every component is a plain name.
    pub fn under(&self, root: &Path) -> PathBuf {
        let mut p = root.to_path_buf();
        p.extend(self.names());
        p
    }

    /// For duplicate checks on case-insensitive file systems.
    pub fn folded(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for RelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `name (n).ext`: how a name that already exists is renamed. The
/// extension is kept so the file still opens with the right program; a
/// leading dot (".bashrc") is a name, not an extension.
pub fn numbered(name: &str, n: u32) -> String {
    match name.rfind('.') {
        Some(dot) if dot > 0 => format!("{} ({n}){}", &name[..dot], &name[dot..]),
        _ => format!("{name} ({n})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_parse() {
        for ok in [
            "a.txt",
            "folder/sub/file.bin",
            ".hidden",
            "Grüße ✓.txt",
            "a..b",
            "what?.txt",
        ] {
            let p = RelPath::parse(ok.as_bytes()).unwrap();
            assert_eq!(p.as_str(), ok);
        }
        let p = RelPath::parse(b"proj/src/main.rs").unwrap();
        assert_eq!(p.top(), "proj");
        assert_eq!(p.depth(), 3);
        assert_eq!(
            p.under(Path::new("/inbox")),
            PathBuf::from("/inbox/proj/src/main.rs")
        );
    }

    #[test]
    fn escaping_and_hostile_paths_are_refused() {
        type Case<'a> = (&'a [u8], fn(&PathError) -> bool);
        let cases: &[Case] = &[
            (b"", |e| matches!(e, PathError::Empty)),
            (b"../x", |e| matches!(e, PathError::DotComponent(_))),
            (b"a/../../x", |e| matches!(e, PathError::DotComponent(_))),
            (b"./x", |e| matches!(e, PathError::DotComponent(_))),
            (b"..", |e| matches!(e, PathError::DotComponent(_))),
            (b"/etc/passwd", |e| matches!(e, PathError::Absolute(_))),
            (b"C:\\Windows\\x", |e| {
                matches!(e, PathError::ForeignSeparator(_))
            }),
            (b"C:x", |e| matches!(e, PathError::ForeignSeparator(_))),
            (b"..\\x", |e| matches!(e, PathError::ForeignSeparator(_))),
            (b"\\\\server\\share", |e| {
                matches!(e, PathError::ForeignSeparator(_))
            }),
            (b"file.txt:stream", |e| {
                matches!(e, PathError::ForeignSeparator(_))
            }),
            (b"a//b", |e| matches!(e, PathError::EmptyComponent(_))),
            (b"a/", |e| matches!(e, PathError::EmptyComponent(_))),
            (b"bad\nname", |e| {
                matches!(e, PathError::ControlCharacter(_))
            }),
            (b"nul\0byte", |e| {
                matches!(e, PathError::ControlCharacter(_))
            }),
            ("gnp\u{202E}exe.txt".as_bytes(), |e| {
                matches!(e, PathError::ControlCharacter(_))
            }),
            (b"\xff\xfe.txt", |e| matches!(e, PathError::NotUtf8)),
            (b"CON", |e| matches!(e, PathError::ReservedName(_))),
            (b"dir/nul.txt", |e| matches!(e, PathError::ReservedName(_))),
            (b"com1.tar.gz", |e| matches!(e, PathError::ReservedName(_))),
            (b"dot.", |e| matches!(e, PathError::TrailingDotOrSpace(_))),
            (b"space /x", |e| {
                matches!(e, PathError::TrailingDotOrSpace(_))
            }),
        ];
        for (bytes, is) in cases {
            let e = RelPath::parse(bytes).unwrap_err();
            assert!(is(&e), "{:?} gave {e:?}", String::from_utf8_lossy(bytes));
            // The message never carries the raw control characters.
            assert!(!e.to_string().contains('\n'));
            assert!(!e.to_string().contains('\u{202E}'));
        }
        let long_name = "x".repeat(MAX_NAME_BYTES + 1);
        assert!(matches!(
            RelPath::parse(long_name.as_bytes()),
            Err(PathError::NameTooLong(_))
        ));
        let deep = vec!["d"; MAX_DEPTH + 1].join("/");
        assert!(matches!(
            RelPath::parse(deep.as_bytes()),
            Err(PathError::TooDeep(_))
        ));
        assert!(matches!(
            RelPath::parse(&vec![b'a'; MAX_PATH_BYTES + 1]),
            Err(PathError::TooLong)
        ));
        // Reserved names only as whole names.
        assert!(RelPath::parse(b"console.log").is_ok());
        assert!(RelPath::parse(b"com10").is_ok());
    }

    #[test]
    fn clashing_names_are_numbered_before_the_extension() {
        assert_eq!(numbered("report.pdf", 1), "report (1).pdf");
        assert_eq!(numbered("archive.tar.gz", 2), "archive.tar (2).gz");
        assert_eq!(numbered("folder", 3), "folder (3)");
        assert_eq!(numbered(".bashrc", 1), ".bashrc (1)");
    }
}
