//! Network namespaces made by a test and removed when it ends: a small
//! private network in which firewalls and NATs can be set up without
//! touching the machine's own.

use std::ffi::OsStr;
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// One network namespace; deleted (with its interfaces) on drop.
pub struct Netns {
    name: String,
}

/// Why namespace tests cannot run here, if they cannot.
///
/// Only what the machine truly lacks counts: not being root, or a kernel
/// that refuses namespaces. A missing tool is a set-up error instead, since
/// `scripts/setup-debian.sh` installs them.
///
/// Checked once per test process: tests running in parallel would
/// otherwise race for the probe namespace's name and one would wrongly
/// conclude that namespaces are refused.
pub fn unavailable() -> Option<String> {
    static ANSWER: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ANSWER.get_or_init(probe).clone()
}

fn probe() -> Option<String> {
    // /proc/self belongs to the process's effective user.
    let euid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX);
    if euid != 0 {
        return Some("network namespaces need root".into());
    }
    for tool in ["ip", "nft"] {
        assert!(
            Command::new(tool).arg("-V").output().is_ok(),
            "`{tool}` is missing: run scripts/setup-debian.sh"
        );
    }
    let probe = format!("fsprobe{}", std::process::id());
    let made = run_quiet("ip", ["netns", "add", &probe]);
    let _ = run_quiet("ip", ["netns", "del", &probe]);
    match made {
        Ok(()) => None,
        Err(e) => Some(format!("this kernel refuses network namespaces: {e}")),
    }
}

fn run_quiet<I, S>(program: &str, args: I) -> Result<(), String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(program);
    cmd.args(args);
    let out = cmd
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    /// A fresh namespace with its loopback up; `tag` keeps names of
    /// parallel tests apart.
    pub fn new(tag: &str) -> Netns {
        static COUNT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "fs{}-{}-{tag}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::Relaxed)
        );
        run_quiet("ip", ["netns", "add", &name]).unwrap();
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n <ns> args…`, which must succeed.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", &self.name];
        all.extend_from_slice(args);
        run_quiet("ip", all).unwrap();
    }

    /// Runs a shell command inside the namespace; it must succeed.
    pub fn sh(&self, script: &str) {
        run_quiet("ip", ["netns", "exec", &self.name, "sh", "-ec", script]).unwrap();
    }

    /// Loads an nftables ruleset inside the namespace.
    pub fn nft(&self, ruleset: &str) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("rules.nft");
        std::fs::write(&file, ruleset).unwrap();
        run_quiet(
            "ip",
            [
                OsStr::new("netns"),
                OsStr::new("exec"),
                OsStr::new(&self.name),
                OsStr::new("nft"),
                OsStr::new("-f"),
                file.as_os_str(),
            ],
        )
        .unwrap();
    }

    /// The packet count of the nftables rule whose comment is `comment`.
    pub fn nft_counter(&self, comment: &str) -> u64 {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, "nft", "list", "ruleset"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.contains(&format!("comment \"{comment}\"")))
            .unwrap_or_else(|| panic!("no rule {comment:?} in {text}"));
        let after = line.split("counter packets ").nth(1).unwrap();
        after.split_whitespace().next().unwrap().parse().unwrap()
    }

    /// A command that runs `program` inside the namespace.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// Joins this namespace and `other` with a veth pair: `here` and
    /// `there` are (interface name, address with prefix), e.g.
    /// `("wan", "10.66.0.1/24")`.
    pub fn link(&self, here: (&str, &str), other: &Netns, there: (&str, &str)) {
        self.ip(&[
            "link",
            "add",
            here.0,
            "type",
            "veth",
            "peer",
            "name",
            there.0,
            "netns",
            &other.name,
        ]);
        self.ip(&["addr", "add", here.1, "dev", here.0]);
        self.ip(&["link", "set", here.0, "up"]);
        other.ip(&["addr", "add", there.1, "dev", there.0]);
        other.ip(&["link", "set", there.0, "up"]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run_quiet("ip", ["netns", "del", &self.name]);
    }
}
