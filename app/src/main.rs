//! `fernsicht`: end-to-end encrypted remote support (see the library's
//! docs for the parts).
//!
//! `fernsicht host` and `fernsicht view NUMBER` open the window in that mode;
//! with `--headless` they run in the terminal. Plain `fernsicht` opens the
//! start screen, or shares this screen in the terminal when there is no
//! display to open a window on.

use clap::{CommandFactory, FromArgMatches};
use fernsicht::cli::{Cli, Command};
use fernsicht::headless;
use fernsicht::ui;
use fernsicht::ui::app::{Launch, Mode};
use std::process::ExitCode;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // The window tries the configured relays unless one was given.
    let view_relay_given = matches
        .subcommand_matches("view")
        .and_then(|m| m.value_source("relay"))
        .is_some_and(|s| s != clap::parser::ValueSource::DefaultValue);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let window = |launch: Launch| ui::app::run(launch, &runtime).map(|()| ExitCode::SUCCESS);
    let result = match cli.command {
        None if ui::display_available() => window(Launch::start()).or_else(|e| {
            // Plain `fernsicht` still helps when the window cannot open.
            eprintln!("{e:#}: sharing this screen in the terminal instead");
            terminal_host(&runtime)
        }),
        None => {
            eprintln!("no display to open a window on: sharing this screen in the terminal");
            terminal_host(&runtime)
        }
        Some(Command::Host(args)) if !args.headless => window(Launch {
            mode: Mode::Host,
            relay: args.relay,
            password: args.password,
            name: None,
            listen: args.listen,
        }),
        Some(Command::View(args)) if !args.headless => window(Launch {
            mode: Mode::View(args.number),
            relay: view_relay_given.then_some(args.relay),
            password: args.password,
            name: args.name,
            listen: None,
        }),
        Some(Command::Host(args)) => runtime.block_on(headless::host::run(args)),
        Some(Command::View(args)) => runtime.block_on(headless::viewer::run(args)),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Today's terminal host, for when there is no window.
fn terminal_host(runtime: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
    match Command::default() {
        Command::Host(args) => runtime.block_on(headless::host::run(args)),
        Command::View(args) => runtime.block_on(headless::viewer::run(args)),
    }
}
