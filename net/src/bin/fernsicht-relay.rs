//! `fernsicht-relay`: the relay ("tunnel") server that pairs viewers with
//! hosts by session number and forwards their end-to-end encrypted frames.

use anyhow::Context;
use clap::Parser;
use fernsicht_net::relay::files::StoreLimits;
use fernsicht_net::relay::rendezvous::RendezvousAt;
use fernsicht_net::relay::{DEFAULT_PORT, Relay, RelayConfig, TlsSource};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Relay server for Fernsicht remote-support sessions. It hands out session
/// numbers, pairs viewers with hosts and forwards their frames; it never
/// holds a session key and cannot read or alter a session.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address and port to listen on; repeat for more. Every port serves
    /// TLS and WebSocket-over-TLS. Addresses after the first that cannot be
    /// bound are skipped with a warning. Default: 0.0.0.0:4663, and 443 and
    /// 80 for clients behind firewalls and proxies.
    #[arg(long, env = "FERNSICHT_RELAY_LISTEN", value_delimiter = ',')]
    listen: Vec<SocketAddr>,

    /// TLS certificate chain (PEM), e.g. from a public CA. Without it the
    /// relay makes its own certificate on first start, keeps it in the data
    /// directory and prints its fingerprint for clients to pin.
    #[arg(long, env = "FERNSICHT_RELAY_CERT", requires = "key")]
    cert: Option<PathBuf>,

    /// The certificate's private key (PEM).
    #[arg(long, env = "FERNSICHT_RELAY_KEY", requires = "cert")]
    key: Option<PathBuf>,

    /// Names (DNS or addresses) to put in a self-made certificate.
    #[arg(long, env = "FERNSICHT_RELAY_NAME", value_delimiter = ',')]
    name: Vec<String>,

    /// Directory for the relay's state (the store of burned session
    /// numbers, its certificate, and the files hosts park, encrypted, under
    /// `files/`). Default: the platform's local data directory.
    #[arg(long, env = "FERNSICHT_RELAY_DATA")]
    data: Option<PathBuf>,

    /// Most viewers per session.
    #[arg(long, env = "FERNSICHT_RELAY_MAX_VIEWERS", default_value_t = 16)]
    max_viewers: usize,

    /// Most MiB one session may park in the file store at once (0 switches
    /// the store off). Parked files are ciphertext the relay cannot read,
    /// deleted when their session ends.
    #[arg(long, env = "FERNSICHT_RELAY_STORE_SESSION_MIB", default_value_t = StoreLimits::default().per_session >> 20)]
    store_session_mib: u64,

    /// Most MiB all sessions together may park.
    #[arg(long, env = "FERNSICHT_RELAY_STORE_TOTAL_MIB", default_value_t = StoreLimits::default().per_relay >> 20)]
    store_total_mib: u64,

    /// Most files one session may park at once.
    #[arg(long, env = "FERNSICHT_RELAY_STORE_FILES", default_value_t = StoreLimits::default().files_per_session)]
    store_files: u32,

    /// UDP address where hosts and viewers learn their public address for
    /// hole punching, or `off`. Default: the first listen address (4663/udp).
    #[arg(long, env = "FERNSICHT_RELAY_RENDEZVOUS", value_parser = parse_rendezvous)]
    rendezvous: Option<RendezvousAt>,
}

fn parse_rendezvous(s: &str) -> Result<RendezvousAt, String> {
    if s == "off" {
        return Ok(RendezvousAt::Off);
    }
    s.parse()
        .map(RendezvousAt::At)
        .map_err(|e| format!("expected an address like 0.0.0.0:4663, or off: {e}"))
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

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let data = match args.data {
        Some(d) => d,
        None => dirs::data_local_dir()
            .context("no data directory on this system: pass --data DIR")?
            .join("fernsicht-relay"),
    };
    let listen = if args.listen.is_empty() {
        [DEFAULT_PORT, 443, 80]
            .map(|port| SocketAddr::from(([0, 0, 0, 0], port)))
            .to_vec()
    } else {
        args.listen
    };
    let mut config = RelayConfig::new(listen[0], data.clone());
    config.listen = listen;
    config.max_viewers = args.max_viewers;
    config.store = StoreLimits {
        per_session: args.store_session_mib.saturating_mul(1 << 20),
        per_relay: args.store_total_mib.saturating_mul(1 << 20),
        files_per_session: args.store_files,
    };
    config.rendezvous = args.rendezvous.unwrap_or(RendezvousAt::MainPort);
    config.tls = match (args.cert, args.key) {
        (Some(cert), Some(key)) => TlsSource::Files { cert, key },
        _ => TlsSource::SelfSigned { names: args.name },
    };
    let relay = Relay::bind(config)
        .await
        .with_context(|| format!("starting the relay (data in {})", data.display()))?;
    // The first line is the main address (scripts and tests read it).
    println!("listening on {}", relay.local_addr());
    for extra in relay.local_addrs().iter().skip(1) {
        println!("also listening on {extra}");
    }
    println!("certificate {}", relay.fingerprint());
    // On the log, not stdout: scripts read the two lines above and may
    // close the pipe after them.
    if let Some(udp) = relay.rendezvous_addr() {
        tracing::info!("UDP rendezvous on {udp}");
    }
    std::io::stdout().flush()?;
    let handle = relay.spawn();
    tokio::signal::ctrl_c().await?;
    tracing::info!("shutting down");
    handle.shutdown().await;
    Ok(())
}
