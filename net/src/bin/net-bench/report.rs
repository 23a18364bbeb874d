//! Reading `openssl speed`, scratch space, and the figures as a table.

use super::*;

/// AES-256-GCM bytes per second of `openssl speed` for 16 KiB blocks, the
/// best of [`ROUNDS`] runs of [`SEAL_TIME`] each.
pub(crate) fn openssl_speed() -> Result<f64, OpensslError> {
    let seconds = SEAL_TIME.as_secs().to_string();
    let mut best = 0.0f64;
    for _ in 0..ROUNDS {
        let out = std::process::Command::new("openssl")
            .args(["speed", "-evp", "aes-256-gcm", "-bytes", "16384"])
            .args(["-seconds", &seconds])
            .output()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => OpensslError::NotFound,
                _ => OpensslError::Failed(e.to_string()),
            })?;
        if !out.status.success() {
            return Err(OpensslError::Failed(
                String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            ));
        }
        let rate = parse_openssl_speed(&String::from_utf8_lossy(&out.stdout))
            .ok_or_else(|| OpensslError::Failed("unexpected output of openssl speed".into()))?;
        best = best.max(rate);
    }
    Ok(best)
}

pub(crate) enum OpensslError {
    NotFound,
    Failed(String),
}

/// Reads the 16384-byte column of `openssl speed` output, which looks like
/// `type 16384 bytes` over `AES-256-GCM 3533060.65k` (in 1000s of bytes/s).
pub(crate) fn parse_openssl_speed(text: &str) -> Option<f64> {
    let header = text.lines().find(|l| l.starts_with("type"))?;
    let column = header
        .split_whitespace()
        .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
        .position(|t| t == "16384")?;
    let row = text
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("aes-256-gcm"))?;
    let value = row.split_whitespace().nth(1 + column)?;
    let thousands: f64 = value.trim_end_matches('k').parse().ok()?;
    Some(thousands * 1000.0)
}

/// A scratch directory for a relay's state, removed when dropped.
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Scratch {
    pub(crate) fn new(tag: &str) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("net-bench-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One line about the machine the figures come from.
pub(crate) fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, name)| name.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!(
        "machine: {cores} cores available, {cpu}, {}-{}; release build of fernsicht-net {}",
        std::env::consts::OS,
        std::env::consts::ARCH,
        env!("CARGO_PKG_VERSION"),
    )
}

pub(crate) fn percentiles(times: &mut [Duration]) -> String {
    times.sort();
    let at = |q: f64| {
        let i = ((times.len().saturating_sub(1)) as f64 * q).round() as usize;
        times.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    format!("p50 {:.2} ms, p99 {:.2} ms", at(0.5), at(0.99))
}

pub(crate) fn rate(m: &Moved) -> f64 {
    m.bytes as f64 / m.elapsed.as_secs_f64()
}

/// The fastest of several rounds.
pub(crate) fn best(rounds: Vec<Moved>) -> Moved {
    rounds
        .into_iter()
        .max_by(|a, b| rate(a).total_cmp(&rate(b)))
        .unwrap_or(Moved {
            bytes: 0,
            elapsed: Duration::from_secs(1),
        })
}

pub(crate) fn mb_per_s(m: &Moved) -> String {
    format!("{:.0} MB/s", rate(m) / 1e6)
}

pub(crate) fn human(bytes: usize) -> String {
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{} KiB", bytes / KIB)
    }
}

pub(crate) fn moved(m: &Moved) -> String {
    format!(
        "{} bytes ({:.2} GiB) in {:.2} s",
        m.bytes,
        m.bytes as f64 / (1u64 << 30) as f64,
        m.elapsed.as_secs_f64()
    )
}

/// The results, printed as one Markdown table.
#[derive(Default)]
pub(crate) struct Table(Vec<[String; 3]>);

impl Table {
    pub(crate) fn row(&mut self, what: String, result: String, detail: String) {
        self.0.push([what, result, detail]);
    }

    pub(crate) fn print(&self) {
        let header = ["measurement", "result", "detail"].map(String::from);
        let mut widths = [0usize; 3];
        for row in std::iter::once(&header).chain(&self.0) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |row: &[String; 3]| {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            println!("| {} |", cells.join(" | "));
        };
        line(&header);
        println!("|{}|", widths.map(|w| "-".repeat(w + 2)).join("|"));
        for row in &self.0 {
            line(row);
        }
    }
}
