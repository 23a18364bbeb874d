//! `fernsicht`: end-to-end encrypted remote support.
//!
//! `fernsicht host` shares this screen under a session number;
//! `fernsicht view NUMBER` connects to one. With `--headless` both run in
//! the terminal (for automation and tests); the window comes with the GUI.

mod cli;
mod embedded;
mod headless;

use clap::Parser;
use cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command.unwrap_or_default() {
            Command::Host(args) => headless::host::run(args).await,
            Command::View(args) => headless::viewer::run(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
