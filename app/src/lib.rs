//! The Fernsicht desktop app as a library: the session engines, the
//! headless modes and the command line, so that the `fernsicht` binary stays
//! a thin `main` and tests can drive every part.
//!
//! `fernsicht host` shares this screen under a session number;
//! `fernsicht view NUMBER` connects to one. Both open the window ([`ui`]);
//! with `--headless` they run in the terminal (for automation and tests).

pub mod cli;
pub mod config;
pub mod embedded;
pub mod engine;
pub mod headless;
pub mod trust;
pub mod ui;
