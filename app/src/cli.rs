//! Command-line interface.

use clap::{Args, Parser, Subcommand, ValueEnum};
use fernsicht_net::SessionNumber;
use fernsicht_net::client::RelayAddr;

#[derive(Debug, Parser)]
#[command(
    name = "fernsicht",
    version,
    about = "End-to-end encrypted remote support"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Get help: share this screen under a session number.
    Host(HostArgs),
    /// Help someone: connect to a session number.
    View(ViewArgs),
}

impl Default for Command {
    /// With no subcommand and no display to open the window on, the app
    /// shares this screen in the terminal through an embedded relay, so it
    /// works with nothing else installed.
    fn default() -> Self {
        Command::Host(HostArgs {
            relay: None,
            relay_pin: None,
            proxy: None,
            headless: true,
            password: None,
            accept: Accept::Ask,
            listen: None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Accept {
    /// Ask on the terminal for every viewer.
    Ask,
    /// Allow every viewer to watch, without control.
    View,
    /// Allow every viewer full control.
    Control,
}

#[derive(Debug, Args)]
pub struct HostArgs {
    /// Relay to register with (host[:port]); without it an embedded relay
    /// is started on this machine.
    #[arg(long, env = "FERNSICHT_RELAY")]
    pub relay: Option<RelayAddr>,
    /// The relay's certificate fingerprint (`sha256:…`, as the relay prints
    /// it). Without it: a remembered one, else system CAs for names, else
    /// trust on first use for addresses.
    #[arg(long, env = "FERNSICHT_RELAY_PIN", value_name = "FINGERPRINT")]
    pub relay_pin: Option<fernsicht_net::tls::Fingerprint>,
    /// HTTP proxy for the fallback path (`http://user:password@proxy:3128`),
    /// or `off`. Default: HTTPS_PROXY/HTTP_PROXY/NO_PROXY, then the system's.
    #[arg(long, env = "FERNSICHT_PROXY", value_name = "URL")]
    pub proxy: Option<String>,
    /// Run in the terminal instead of a window.
    #[arg(long)]
    pub headless: bool,
    /// Session password: viewers must know it, and a relay in the middle
    /// cannot complete the connection without it.
    #[arg(long, env = "FERNSICHT_PASSWORD")]
    pub password: Option<String>,
    /// What to do when a viewer connects.
    #[arg(long, value_enum, default_value_t = Accept::Ask)]
    pub accept: Accept,
    /// Address for the embedded relay (default 0.0.0.0:4663, or any free
    /// port if that is taken).
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Debug, Args)]
pub struct ViewArgs {
    /// The session number the other person reads out.
    pub number: SessionNumber,
    /// Relay the host uses (host[:port]).
    #[arg(long, env = "FERNSICHT_RELAY", default_value = "127.0.0.1:4663")]
    pub relay: RelayAddr,
    /// The relay's certificate fingerprint (`sha256:…`, as the relay prints
    /// it). Without it: a remembered one, else system CAs for names, else
    /// trust on first use for addresses.
    #[arg(long, env = "FERNSICHT_RELAY_PIN", value_name = "FINGERPRINT")]
    pub relay_pin: Option<fernsicht_net::tls::Fingerprint>,
    /// HTTP proxy for the fallback path (`http://user:password@proxy:3128`),
    /// or `off`. Default: HTTPS_PROXY/HTTP_PROXY/NO_PROXY, then the system's.
    #[arg(long, env = "FERNSICHT_PROXY", value_name = "URL")]
    pub proxy: Option<String>,
    /// Run in the terminal instead of a window.
    #[arg(long)]
    pub headless: bool,
    /// The session password, if the host set one.
    #[arg(long, env = "FERNSICHT_PASSWORD")]
    pub password: Option<String>,
    /// Name shown to the host (default: your user name).
    #[arg(long)]
    pub name: Option<String>,
    /// Leave after this many pictures were decoded.
    #[arg(long, value_name = "N")]
    pub frames: Option<u64>,
    /// Save the newest picture as PNG when leaving.
    #[arg(long, value_name = "PNG")]
    pub screenshot: Option<std::path::PathBuf>,
    /// Write the received H.264 elementary stream to this file.
    #[arg(long, value_name = "FILE")]
    pub record: Option<std::path::PathBuf>,
    /// Run a script of input and screenshot commands once the picture is
    /// there, then leave (see `fernsicht help view`): move X Y, click
    /// left|right|middle, type TEXT, key ctrl+a, wait-frames N, screenshot PNG.
    #[arg(long, value_name = "FILE")]
    pub script: Option<std::path::PathBuf>,
}
