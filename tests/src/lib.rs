//! Helpers shared by the end-to-end tests: programs as child processes
//! whose output is read line by line, the workspace's binaries, and
//! network namespaces that put those programs behind firewalls and NATs.
#![allow(clippy::unwrap_used)] // test support: a failed set-up is a failed test

pub mod netns;
pub mod process;

pub use netns::Netns;
pub use process::{Proc, WAIT};

use std::path::PathBuf;

/// A binary of this workspace, built next to the running test.
///
/// `cargo test --workspace` builds every package's binaries before it runs
/// any test, so a missing one means the test was run on its own.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let path = exe.parent().unwrap().parent().unwrap().join(name);
    assert!(
        path.exists(),
        "{} is not built: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}
