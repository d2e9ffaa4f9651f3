//! Helpers the gateway benches share: the `loom mcp` process they launch, `/proc`
//! readings (RSS, CPU time, load), and latency histograms.
//!
//! Each bench is its own crate and `mod common;` includes this file in each, so a
//! helper one bench does not use would be dead code there; the module is included with
//! `#[allow(dead_code)]` for that reason.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rmcp::service::{RoleClient, RunningService};

pub(crate) type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// An rmcp client session.
pub(crate) type Client = RunningService<RoleClient, ()>;

/// The workspace root (this crate is `crates/loom-gateway`).
pub(crate) fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The `loom` binary to launch: `explicit` (an option), then the build directory this
/// bench was built into (`target/<profile>/deps/<bench>-<hash>` → `target/<profile>/loom`),
/// then the usual release directories.
pub(crate) fn loom_binary(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = explicit {
        return Some(p.to_path_buf());
    }
    let mut candidates = Vec::new();
    if let Some(dir) = build_dir() {
        candidates.push(dir.join("loom"));
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join("release/loom"));
    }
    candidates.push(workspace_dir().join("target/release/loom"));
    candidates.into_iter().find(|p| p.is_file())
}

/// `target/<profile>`, from this binary's path (`target/<profile>/deps/<bench>-<hash>`).
pub(crate) fn build_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    Some(exe.parent()?.parent()?.to_path_buf())
}

/// A free loopback port.
pub(crate) fn free_port() -> BenchResult<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

// ---------------------------------------------------------------------------------------------
// The gateway process
// ---------------------------------------------------------------------------------------------

/// A launched `loom mcp`; stopped (SIGTERM, then SIGKILL) when dropped.
pub(crate) struct GatewayProcess {
    child: Child,
    pub(crate) port: u16,
    /// Its stderr.
    pub(crate) log: PathBuf,
}

impl GatewayProcess {
    /// `loom mcp --config <config> --transport http` on a free port, stderr to `log`,
    /// without `LOOM_NATS_URL` and `RUST_LOG`, with `env` set.
    pub(crate) fn launch(
        loom: &Path,
        config: &Path,
        log: PathBuf,
        env: &[(&str, &Path)],
    ) -> BenchResult<Self> {
        let port = free_port()?;
        let stderr = std::fs::File::create(&log)?;
        let mut command = Command::new(loom);
        command
            .args(["mcp", "--config"])
            .arg(config)
            .args(["--transport", "http", "--port", &port.to_string()])
            .env_remove("LOOM_NATS_URL")
            .env_remove("RUST_LOG");
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", loom.display()))?;
        Ok(GatewayProcess { child, port, log })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn url(&self) -> String {
        format!("http://127.0.0.1:{}/mcp", self.port)
    }

    pub(crate) fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!(
            "gateway pid {} did not stop within 5 s of SIGTERM; killing it",
            self.child.id()
        );
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------------------------

/// Resident set size in KiB.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User + system CPU time of a whole process (all threads), in clock ticks; `pid` is a
/// number or `self`.
pub(crate) fn cpu_ticks(pid: impl std::fmt::Display) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name start with field 3 (state);
    // utime and stime are fields 14 and 15.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

pub(crate) fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// The 1, 5 and 15 minute load averages, or an empty string.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Clients and measurements
// ---------------------------------------------------------------------------------------------

/// Ends a client session, giving it 5 s.
pub(crate) async fn close(client: Client) {
    let _ = tokio::time::timeout(Duration::from_secs(5), client.cancel()).await;
}

/// A latency histogram in microseconds, up to `max_us`.
pub(crate) fn histogram(max_us: u64) -> Histogram<u64> {
    Histogram::new_with_bounds(1, max_us, 3).expect("valid histogram bounds")
}

/// `d` in microseconds, clamped to what [`histogram`]`(max_us)` holds.
pub(crate) fn micros(d: Duration, max_us: u64) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, max_us)
}
