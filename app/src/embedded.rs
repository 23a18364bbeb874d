//! The relay the app starts for itself when none is configured, so two
//! machines on one network connect with nothing else installed.

use anyhow::Context;
use fernsicht_net::relay::{DEFAULT_PORT, Relay, RelayConfig, RelayHandle};
use std::net::SocketAddr;

/// Starts an embedded relay on `listen`, or on 0.0.0.0:4663 and, if that
/// port is taken, on any free port.
pub async fn start(listen: Option<SocketAddr>) -> anyhow::Result<RelayHandle> {
    let data = dirs::data_local_dir()
        .context("no local data directory for the embedded relay")?
        .join("fernsicht")
        .join("embedded-relay");
    let candidates = match listen {
        Some(a) => vec![a],
        None => vec![
            SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
            SocketAddr::from(([0, 0, 0, 0], 0)),
        ],
    };
    // A second instance on this machine finds the store locked: it then
    // keeps its own (numbers stay unique per store, and the two relays
    // listen on different ports anyway).
    let own = data.join(format!("instance-{}", std::process::id()));
    let mut last = None;
    for addr in candidates {
        for dir in [&data, &own] {
            match Relay::bind(RelayConfig::new(addr, dir.clone())).await {
                Ok(relay) => return Ok(relay.spawn()),
                Err(e) => last = Some(e),
            }
        }
    }
    Err(last
        .map(anyhow::Error::from)
        .unwrap_or_else(|| anyhow::anyhow!("no address to listen on")))
    .context("starting the embedded relay")
}
