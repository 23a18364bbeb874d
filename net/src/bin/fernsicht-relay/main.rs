//! `fernsicht-relay`: the relay ("tunnel") server that pairs viewers with
//! hosts by session number and forwards their end-to-end encrypted frames.

mod settings;

use anyhow::Context;
use clap::Parser;
use fernsicht_net::relay::cluster::ClusterSettings;
use fernsicht_net::relay::files::StoreLimits;
use fernsicht_net::relay::rendezvous::RendezvousAt;
use fernsicht_net::relay::{DEFAULT_PORT, Relay, RelayConfig, TlsSource};
use settings::{LogFormat, Settings};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Relay server for Fernsicht remote-support sessions. It hands out session
/// numbers, pairs viewers with hosts and forwards their frames; it never
/// holds a session key and cannot read or alter a session. It records only
/// each participant's IP address, session number and connection times, for
/// `--retention-days`.
///
/// Every option can also be set in the environment (FERNSICHT_RELAY_*) or in
/// the settings file under the option's name; the command line wins over
/// the environment, which wins over the file.
#[derive(Debug, Parser)]
#[command(name = "fernsicht-relay", version, about, long_about)]
struct Args {
    /// Settings file (TOML), e.g. /etc/fernsicht-relay/relay.toml; its keys
    /// are the long option names (`max-viewers = 8`).
    #[arg(long, env = "FERNSICHT_RELAY_CONFIG")]
    config: Option<PathBuf>,

    #[command(flatten)]
    settings: Settings,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Print the participant records (start, end, role, session number, IP
    /// address), oldest first, one per line, and exit. Needs the relay that
    /// uses the data directory to be stopped.
    Records,
}

fn main() -> std::process::ExitCode {
    match tokio::runtime::Runtime::new()
        .context("starting the runtime")
        .and_then(|rt| rt.block_on(run()))
    {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}

/// The relay's configuration from the merged settings.
fn config(s: Settings) -> anyhow::Result<RelayConfig> {
    let data = match s.data {
        Some(d) => d,
        None => dirs::data_local_dir()
            .context("no data directory on this system: set data (--data DIR)")?
            .join("fernsicht-relay"),
    };
    let listen = match s.listen {
        Some(l) if !l.is_empty() => l,
        _ => [DEFAULT_PORT, 443, 80]
            .map(|port| SocketAddr::from(([0, 0, 0, 0], port)))
            .to_vec(),
    };
    let mut config = RelayConfig::new(listen[0], data);
    config.listen = listen;
    if let Some(n) = s.max_viewers {
        config.max_viewers = n;
    }
    let defaults = StoreLimits::default();
    config.store = StoreLimits {
        per_session: s
            .store_session_mib
            .map_or(defaults.per_session, |m| m.saturating_mul(1 << 20)),
        per_relay: s
            .store_total_mib
            .map_or(defaults.per_relay, |m| m.saturating_mul(1 << 20)),
        files_per_session: s.store_files.unwrap_or(defaults.files_per_session),
    };
    if let Some(days) = s.retention_days {
        config.retention = Duration::from_secs(u64::from(days) * 24 * 60 * 60);
    }
    config.metrics = s.metrics;
    config.rendezvous = match s.rendezvous.as_deref() {
        None => RendezvousAt::MainPort,
        Some("off") => RendezvousAt::Off,
        Some(addr) => RendezvousAt::At(addr.parse().with_context(|| {
            format!("rendezvous: expected an address like 0.0.0.0:4663, or off, not {addr:?}")
        })?),
    };
    if let Some(redis) = s.redis {
        let public = match (s.public, s.name.as_ref().and_then(|n| n.first())) {
            (Some(p), _) => p,
            (None, Some(name)) => format!("{name}:{}", config.listen[0].port()),
            (None, None) if !config.listen[0].ip().is_unspecified() => config.listen[0].to_string(),
            (None, None) => anyhow::bail!(
                "redis needs public: the address clients reach this relay at, e.g. tunnel1.example.org:4663"
            ),
        };
        public
            .parse::<fernsicht_net::client::RelayAddr>()
            .with_context(|| format!("public: {public:?} is not an address"))?;
        config.cluster = Some(ClusterSettings { redis, public });
    }
    config.tls = match (s.cert, s.key) {
        (Some(cert), Some(key)) => TlsSource::Files { cert, key },
        (None, None) => TlsSource::SelfSigned {
            names: s.name.unwrap_or_default(),
        },
        _ => anyhow::bail!("cert and key go together: set both or neither"),
    };
    Ok(config)
}

fn print_records(data: &std::path::Path) -> anyhow::Result<()> {
    use fernsicht_net::relay::records::{RecordStore, Role};
    let path = data.join("records.redb");
    if !path.exists() {
        println!("no records in {}", data.display());
        return Ok(());
    }
    let visits = RecordStore::read(&path)
        .with_context(|| format!("reading {} (is the relay still running?)", path.display()))?;
    let time = |secs: u64| {
        i64::try_from(secs)
            .ok()
            .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_else(|| secs.to_string())
    };
    let mut out = std::io::stdout().lock();
    for v in visits {
        let role = match v.role {
            Role::Host => "host",
            Role::Viewer => "viewer",
        };
        let end = v.end.map_or_else(|| "-".to_owned(), time);
        writeln!(out, "{} {end} {role} {} {}", time(v.start), v.number, v.ip)?;
    }
    Ok(())
}

/// SIGINT (Ctrl-C, the systemd unit's KillSignal) or SIGTERM (containers).
async fn stop_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        Ok(tokio::signal::ctrl_c().await?)
    }
}

async fn run() -> anyhow::Result<()> {
    let args = Args::parse();
    let settings = match &args.config {
        Some(path) => args.settings.or(Settings::from_file(path)?),
        None => args.settings,
    };
    init_logging(settings.log_format.unwrap_or(LogFormat::Text));
    let config = config(settings)?;
    if let Some(Command::Records) = args.command {
        return print_records(&config.data_dir);
    }
    let data = config.data_dir.clone();
    let relay = Relay::bind(config)
        .await
        .with_context(|| format!("starting the relay (data in {})", data.display()))?;
    // The first line is the main address (scripts and tests read it).
    println!("listening on {}", relay.local_addr());
    for extra in relay.local_addrs().iter().skip(1) {
        println!("also listening on {extra}");
    }
    if let Some(metrics) = relay.metrics_addr() {
        println!("metrics on http://{metrics}/metrics");
    }
    println!("certificate {}", relay.fingerprint());
    // On the log, not stdout: scripts read the lines above and may close
    // the pipe after them.
    if let Some(udp) = relay.rendezvous_addr() {
        tracing::info!("UDP rendezvous on {udp}");
    }
    if let Some(family) = relay.family_name() {
        tracing::info!("sharing sessions through Redis as {family}");
    }
    std::io::stdout().flush()?;
    let handle = relay.spawn();
    stop_signal().await?;
    tracing::info!("shutting down");
    handle.shutdown().await;
    Ok(())
}
