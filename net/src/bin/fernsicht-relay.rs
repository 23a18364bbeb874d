//! `fernsicht-relay`: the relay ("tunnel") server that pairs viewers with
//! hosts by session number and forwards their end-to-end encrypted frames.

use anyhow::Context;
use clap::Parser;
use fernsicht_net::relay::{DEFAULT_PORT, Relay, RelayConfig};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Relay server for Fernsicht remote-support sessions. It hands out session
/// numbers, pairs viewers with hosts and forwards their frames; it never
/// holds a session key and cannot read or alter a session.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address and port to listen on.
    #[arg(long, env = "FERNSICHT_RELAY_LISTEN", default_value_t = SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)))]
    listen: SocketAddr,

    /// Directory for the relay's state (the store of burned session
    /// numbers). Default: the platform's local data directory.
    #[arg(long, env = "FERNSICHT_RELAY_DATA")]
    data: Option<PathBuf>,

    /// Most viewers per session.
    #[arg(long, env = "FERNSICHT_RELAY_MAX_VIEWERS", default_value_t = 16)]
    max_viewers: usize,
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
    let mut config = RelayConfig::new(args.listen, data.clone());
    config.max_viewers = args.max_viewers;
    let relay = Relay::bind(config)
        .await
        .with_context(|| format!("starting the relay (data in {})", data.display()))?;
    println!("listening on {}", relay.local_addr());
    std::io::stdout().flush()?;
    let handle = relay.spawn();
    tokio::signal::ctrl_c().await?;
    tracing::info!("shutting down");
    handle.shutdown().await;
    Ok(())
}
