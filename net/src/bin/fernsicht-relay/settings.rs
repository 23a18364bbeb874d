//! The relay's settings: one definition serves the command line, the
//! environment (`FERNSICHT_RELAY_*`) and the settings file, so `--help`
//! documents every key the file may hold. The command line wins over the
//! environment, which wins over the file, which wins over the defaults.

use anyhow::Context;
use clap::ValueEnum;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// One readable line per event.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Every setting; unset ones take the defaults named in their help.
#[derive(Debug, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// Address and port to listen on; repeat or separate with commas. Every
    /// port serves TLS and WebSocket-over-TLS. Addresses after the first
    /// that cannot be bound are skipped with a warning. Default:
    /// 0.0.0.0:4663, and 443 and 80 for clients behind firewalls and
    /// proxies.
    #[arg(long, env = "FERNSICHT_RELAY_LISTEN", value_delimiter = ',')]
    pub listen: Option<Vec<SocketAddr>>,

    /// TLS certificate chain (PEM), e.g. from a public CA; needs `key`.
    /// Without it the relay makes its own certificate on first start,
    /// keeps it in the data directory and prints its fingerprint for
    /// clients to pin.
    #[arg(long, env = "FERNSICHT_RELAY_CERT")]
    pub cert: Option<PathBuf>,

    /// The certificate's private key (PEM); needs `cert`.
    #[arg(long, env = "FERNSICHT_RELAY_KEY")]
    pub key: Option<PathBuf>,

    /// Names (DNS or addresses) to put in a self-made certificate.
    #[arg(long, env = "FERNSICHT_RELAY_NAME", value_delimiter = ',')]
    pub name: Option<Vec<String>>,

    /// Directory for the relay's state: the store of burned session
    /// numbers, the participant records, its certificate, and the files
    /// hosts park, encrypted, under `files/`. Default: the platform's local
    /// data directory.
    #[arg(long, env = "FERNSICHT_RELAY_DATA")]
    pub data: Option<PathBuf>,

    /// Most viewers per session. Default: 16.
    #[arg(long, env = "FERNSICHT_RELAY_MAX_VIEWERS")]
    pub max_viewers: Option<usize>,

    /// Most MiB one session may park in the file store at once (0 switches
    /// the store off). Parked files are ciphertext the relay cannot read,
    /// deleted when their session ends. Default: 1024.
    #[arg(long, env = "FERNSICHT_RELAY_STORE_SESSION_MIB")]
    pub store_session_mib: Option<u64>,

    /// Most MiB all sessions together may park. Default: 8192.
    #[arg(long, env = "FERNSICHT_RELAY_STORE_TOTAL_MIB")]
    pub store_total_mib: Option<u64>,

    /// Most files one session may park at once. Default: 64.
    #[arg(long, env = "FERNSICHT_RELAY_STORE_FILES")]
    pub store_files: Option<u32>,

    /// Days to keep participant records (source IP address, session
    /// number, host or viewer, start and end of each connection; nothing
    /// else is recorded). Older ones are deleted on their own; 0 records
    /// nothing. Default: 14.
    #[arg(long, env = "FERNSICHT_RELAY_RETENTION_DAYS")]
    pub retention_days: Option<u32>,

    /// Serve Prometheus metrics (`GET /metrics`: sessions, viewers, bytes
    /// forwarded, refusals, errors) on this address, e.g. 127.0.0.1:9663.
    /// Default: no metrics endpoint.
    #[arg(long, env = "FERNSICHT_RELAY_METRICS")]
    pub metrics: Option<SocketAddr>,

    /// UDP address where hosts and viewers learn their public address for
    /// hole punching, or `off`. A relay with several addresses should name
    /// the one clients reach. Default: the first listen address (4663/udp).
    #[arg(long, env = "FERNSICHT_RELAY_RENDEZVOUS")]
    pub rendezvous: Option<String>,

    /// Share session numbers, the map of sessions to relays and the
    /// back-off counters with the other relays of a family (tunnel1,
    /// tunnel2, …) through this Redis, e.g. redis://10.0.0.5/. A viewer who
    /// reaches any relay of the family is sent to the one that holds the
    /// host, and when a relay dies its sessions move to the others. Give
    /// Redis persistence (appendonly yes) so burned numbers survive it.
    /// Default: this relay is on its own, with numbers in its data
    /// directory.
    #[arg(long, env = "FERNSICHT_RELAY_REDIS")]
    pub redis: Option<String>,

    /// With `redis`: the address clients reach this relay at
    /// (host:port), where its siblings send viewers; also its name in the
    /// family. Default: the first `name` with the main port, else the
    /// first listen address if it is a specific one.
    #[arg(long, env = "FERNSICHT_RELAY_PUBLIC")]
    pub public: Option<String>,

    /// Log lines as text or as JSON objects (to stderr; the level comes
    /// from RUST_LOG, default info). Default: text.
    #[arg(long, env = "FERNSICHT_RELAY_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

impl Settings {
    /// Reads a settings file (TOML, keys as the long options, e.g.
    /// `max-viewers = 8`).
    pub fn from_file(path: &Path) -> anyhow::Result<Settings> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the settings file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("in the settings file {}", path.display()))
    }

    /// Fills what `self` leaves unset from `lower`.
    pub fn or(self, lower: Settings) -> Settings {
        Settings {
            listen: self.listen.or(lower.listen),
            cert: self.cert.or(lower.cert),
            key: self.key.or(lower.key),
            name: self.name.or(lower.name),
            data: self.data.or(lower.data),
            max_viewers: self.max_viewers.or(lower.max_viewers),
            store_session_mib: self.store_session_mib.or(lower.store_session_mib),
            store_total_mib: self.store_total_mib.or(lower.store_total_mib),
            store_files: self.store_files.or(lower.store_files),
            retention_days: self.retention_days.or(lower.retention_days),
            metrics: self.metrics.or(lower.metrics),
            rendezvous: self.rendezvous.or(lower.rendezvous),
            redis: self.redis.or(lower.redis),
            public: self.public.or(lower.public),
            log_format: self.log_format.or(lower.log_format),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_takes_the_option_names_and_refuses_unknown_keys() {
        let s: Settings = toml::from_str(
            "listen = [\"127.0.0.1:4663\"]\nmax-viewers = 3\nretention-days = 7\nlog-format = \"json\"\n",
        )
        .unwrap();
        assert_eq!(s.max_viewers, Some(3));
        assert_eq!(s.retention_days, Some(7));
        assert_eq!(s.log_format, Some(LogFormat::Json));
        let e = toml::from_str::<Settings>("max_viewer = 3\n").unwrap_err();
        assert!(e.to_string().contains("max_viewer"), "{e}");
    }

    #[test]
    fn the_command_line_wins_over_the_file() {
        let cli = Settings {
            max_viewers: Some(2),
            ..Settings::default()
        };
        let file = Settings {
            max_viewers: Some(9),
            retention_days: Some(1),
            ..Settings::default()
        };
        let merged = cli.or(file);
        assert_eq!(merged.max_viewers, Some(2));
        assert_eq!(merged.retention_days, Some(1));
    }
}
