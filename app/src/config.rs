//! What the user configures and keeps between runs: the relays to use and
//! the name shown to the person being helped.
//!
//! Kept as TOML in the platform's config directory
//! (`~/.config/fernsicht/config.toml` on Linux). A file that cannot be read
//! never stops the app: it starts with the defaults and says why, and the
//! broken file is moved aside (not silently overwritten) when settings are
//! next saved.

use fernsicht_net::client::{RelayAddr, family};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The user's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Relays to try, in order. Empty: the host runs a relay inside the app
    /// (so two machines on one network need nothing else).
    pub relays: Vec<RelayEntry>,
    /// The name shown to the person being helped; empty means the login
    /// name.
    pub name: String,
    /// Take files helpers send into the Downloads folder without asking.
    pub auto_accept_files: bool,
    /// Relay certificates seen on first use, by relay address (trust on
    /// first use; see `trust.rs`). A relay that later shows another
    /// certificate is refused until its entry is removed.
    pub known_relays: std::collections::BTreeMap<String, String>,
}

/// One relay as written in the file (`host`, `host:port`), or a family of
/// relays of one service (`tunnel{1..9}.example.org`).
///
/// A newtype so that a mistyped address is a load error naming the line,
/// not a connection error much later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RelayEntry {
    /// The family pattern as written; `None` for a single relay.
    pattern: Option<String>,
    members: Vec<RelayAddr>,
}

impl RelayEntry {
    pub fn single(addr: RelayAddr) -> Self {
        RelayEntry {
            pattern: None,
            members: vec![addr],
        }
    }
}

impl TryFrom<String> for RelayEntry {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let members = family::expand(s.trim()).map_err(|e| format!("relay '{s}': {e}"))?;
        Ok(RelayEntry {
            pattern: (members.len() > 1 || s.contains('{')).then(|| s.trim().to_owned()),
            members,
        })
    }
}

impl From<RelayEntry> for String {
    fn from(r: RelayEntry) -> String {
        match r.pattern {
            Some(p) => p,
            None => r
                .members
                .first()
                .map(ToString::to_string)
                .unwrap_or_default(),
        }
    }
}

impl Config {
    /// Where files from helpers go without asking, if the user chose so.
    pub fn files_inbox(&self) -> Option<std::path::PathBuf> {
        if self.auto_accept_files {
            dirs::download_dir().or_else(dirs::home_dir)
        } else {
            None
        }
    }

    /// The fingerprint remembered for `addr`, if any.
    pub fn remembered(&self, addr: &RelayAddr) -> Option<fernsicht_net::tls::Fingerprint> {
        self.known_relays.get(&addr.to_string())?.parse().ok()
    }

    /// Remembers `fingerprint` for `addr`; `true` if that is new.
    pub fn remember(
        &mut self,
        addr: &RelayAddr,
        fingerprint: fernsicht_net::tls::Fingerprint,
    ) -> bool {
        self.known_relays
            .insert(addr.to_string(), fingerprint.to_string())
            .as_deref()
            != Some(fingerprint.to_string().as_str())
    }

    /// The relays to try, in the order written; a family from a random
    /// member on (see [`family`]).
    pub fn relay_addrs(&self) -> Vec<RelayAddr> {
        self.relays
            .iter()
            .flat_map(|r| family::from_random_member(r.members.clone()))
            .collect()
    }

    /// The name to show to the host: the configured one, else the login
    /// name.
    pub fn display_name(&self) -> String {
        let name = self.name.trim();
        if name.is_empty() {
            login_name()
        } else {
            name.to_owned()
        }
    }

    /// Parses a config file's text.
    pub fn from_toml(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    pub fn to_toml(&self) -> String {
        // Strings and a list of strings: serialising cannot fail.
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

/// The user's login name, for when no display name is configured.
pub fn login_name() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .ok()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "helper".into())
}

/// The config file, where it lives, and what went wrong reading it.
#[derive(Debug, Clone)]
pub struct ConfigStore {
    path: Option<PathBuf>,
    /// Why the file could not be used, for the user to read.
    problem: Option<String>,
}

impl ConfigStore {
    /// The file in the platform's config directory.
    pub fn platform() -> ConfigStore {
        ConfigStore::at(dirs::config_dir().map(|d| d.join("fernsicht").join("config.toml")))
    }

    /// The file at `path` (`None`: nowhere to keep settings).
    pub fn at(path: Option<PathBuf>) -> ConfigStore {
        ConfigStore {
            path,
            problem: None,
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Why the settings in use are not the file's, if they are not.
    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }

    /// Reads the settings. A missing file gives the defaults quietly; an
    /// unreadable or broken one gives the defaults and a [`Self::problem`].
    pub fn load(&mut self) -> Config {
        self.problem = None;
        let Some(path) = &self.path else {
            self.problem = Some("no config directory on this system: settings are not kept".into());
            return Config::default();
        };
        match std::fs::read_to_string(path) {
            Ok(text) => match Config::from_toml(&text) {
                Ok(config) => config,
                Err(e) => {
                    self.problem = Some(format!(
                        "{} is broken, using the defaults: {}",
                        path.display(),
                        e.trim_end()
                    ));
                    Config::default()
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Config::default(),
            Err(e) => {
                self.problem = Some(format!(
                    "cannot read {}, using the defaults: {e}",
                    path.display()
                ));
                Config::default()
            }
        }
    }

    /// Writes `config`. A broken file is kept beside it as `config.toml.broken`
    /// so that saving never destroys what the user wrote.
    pub fn save(&mut self, config: &Config) -> Result<(), String> {
        let Some(path) = &self.path else {
            return Err("no config directory on this system".into());
        };
        let fail = |what: &str, e: std::io::Error| format!("cannot {what} {}: {e}", path.display());
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fail("create the folder of", e))?;
        }
        if self.problem.is_some() && path.exists() {
            let aside = path.with_extension("toml.broken");
            std::fs::rename(path, &aside).map_err(|e| fail("move aside", e))?;
        }
        // Write then rename, so a crash never leaves half a file.
        let tmp = path.with_extension("toml.tmp");
        std::fs::write(&tmp, config.to_toml()).map_err(|e| fail("write", e))?;
        std::fs::rename(&tmp, path).map_err(|e| fail("replace", e))?;
        self.problem = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trips_relays_in_order_and_the_name() {
        let config = Config {
            relays: vec![
                RelayEntry::single("relay.example.org".parse().unwrap()),
                RelayEntry::single("10.0.0.1:5000".parse().unwrap()),
                RelayEntry::try_from("tunnel{1..3}.example.org".to_owned()).unwrap(),
            ],
            name: "Ada".into(),
            auto_accept_files: true,
            known_relays: [(
                "10.0.0.1:5000".to_owned(),
                format!("sha256:{}", "ab".repeat(32)),
            )]
            .into(),
        };
        assert_eq!(
            config.remembered(&"10.0.0.1:5000".parse().unwrap()),
            Some(fernsicht_net::tls::Fingerprint([0xab; 32]))
        );
        let text = config.to_toml();
        assert!(text.contains("relay.example.org:4663"), "{text}");
        let back = Config::from_toml(&text).unwrap();
        assert_eq!(back, config);
        assert_eq!(back.relay_addrs()[1].port(), 5000);
        // The family is kept as written, and tried whole after the others.
        assert!(text.contains("tunnel{1..3}.example.org"), "{text}");
        let mut family: Vec<String> = back.relay_addrs()[2..]
            .iter()
            .map(ToString::to_string)
            .collect();
        family.sort();
        assert_eq!(
            family,
            [
                "tunnel1.example.org:4663",
                "tunnel2.example.org:4663",
                "tunnel3.example.org:4663"
            ]
        );
    }

    #[test]
    fn empty_file_means_defaults() {
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
        assert!(Config::default().relays.is_empty());
    }

    #[test]
    fn broken_file_keeps_defaults_says_where_and_is_kept_on_save() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("config.toml");
        let mut store = ConfigStore::at(Some(path.clone()));
        // Missing: defaults, no complaint.
        assert_eq!(store.load(), Config::default());
        assert_eq!(store.problem(), None);

        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "name = \"Ada\"\nrelays = [\"host:notaport\"]\n").unwrap();
        assert_eq!(store.load(), Config::default());
        let problem = store.problem().unwrap();
        assert!(problem.contains("config.toml is broken"), "{problem}");
        assert!(problem.contains("host:notaport"), "{problem}");
        assert!(problem.contains("line 2"), "{problem}");

        let fixed = Config {
            name: "Ada".into(),
            ..Config::default()
        };
        store.save(&fixed).unwrap();
        assert_eq!(store.problem(), None);
        assert_eq!(store.load(), fixed);
        let aside = std::fs::read_to_string(path.with_extension("toml.broken")).unwrap();
        assert!(aside.contains("notaport"));
    }

    #[test]
    fn unknown_keys_are_an_error_not_ignored() {
        let e = Config::from_toml("relay = \"x\"\n").unwrap_err();
        assert!(e.contains("relay"), "{e}");
    }

    #[test]
    fn display_name_falls_back_to_the_login_name() {
        let config = Config {
            name: "  ".into(),
            ..Config::default()
        };
        assert_eq!(config.display_name(), login_name());
        assert!(!config.display_name().is_empty());
    }
}
