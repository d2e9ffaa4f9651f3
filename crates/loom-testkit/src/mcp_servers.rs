//! The real MCP servers Loom's tests run (server-everything, mcp-server-git, the Python
//! fixture servers), installed once by `scripts/install-mcp-test-servers`.
//!
//! [`servers_dir`] uses `$LOOM_MCP_TEST_SERVERS` when it holds an install, else runs the
//! installer (idempotent, cached, flock-guarded) and uses its answer. A missing server
//! fails the test; it never skips.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The repository root (this crate is `crates/loom-testkit`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the test servers are installed (installing them first when needed).
///
/// # Panics
/// When the installer cannot run or fails: the servers are required.
pub fn servers_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("LOOM_MCP_TEST_SERVERS").filter(|d| !d.is_empty())
            && Path::new(&dir).join("venv/bin/mcp-server-git").exists()
        {
            return PathBuf::from(dir);
        }
        let script = repo_root().join("scripts/install-mcp-test-servers");
        let out = Command::new(&script)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        assert!(
            out.status.success(),
            "{} failed ({}); the MCP test servers are required:\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

fn existing(p: PathBuf) -> String {
    assert!(p.exists(), "missing {}", p.display());
    p.display().to_string()
}

/// The venv's Python (with mcp 2.3.0, for the fixture servers).
pub fn python() -> String {
    existing(servers_dir().join("venv/bin/python"))
}

/// The `mcp-server-git` executable.
pub fn mcp_server_git() -> String {
    existing(servers_dir().join("venv/bin/mcp-server-git"))
}

/// server-everything's entry point, run as `node <this> stdio|streamableHttp`.
pub fn everything_js() -> String {
    existing(
        servers_dir()
            .join("npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js"),
    )
}

/// A fixture server of loom-mcp's tests (`fixture_server.py`, `modern_server.py`).
pub fn mcp_fixture(name: &str) -> String {
    existing(
        repo_root()
            .join("crates/loom-mcp/tests/fixtures")
            .join(name),
    )
}

/// A free loopback port.
///
/// # Panics
/// When no port can be bound.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Waits up to `limit` until something accepts TCP connections on `port`.
pub async fn wait_for_port(port: u16, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A background server process, killed when dropped.
#[derive(Debug)]
pub struct Background(Child);

impl Background {
    /// Starts `program` with `args` (stdin, stdout and stderr to /dev/null).
    ///
    /// # Panics
    /// When the program cannot start.
    pub fn start(program: &str, args: &[&str]) -> Self {
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
        Self(child)
    }

    /// Takes over a process started elsewhere.
    pub fn from_child(child: Child) -> Self {
        Self(child)
    }

    /// The modern-era Python fixture (`modern_server.py`) over streamable HTTP on `port`,
    /// at `http://127.0.0.1:{port}/mcp`.
    pub fn modern_http(port: u16) -> Self {
        let port = port.to_string();
        Self::start(
            &python(),
            &[&mcp_fixture("modern_server.py"), "http", &port],
        )
    }

    /// server-everything over streamable HTTP on `port` (`http://127.0.0.1:{port}/mcp`).
    pub fn everything_http(port: u16) -> Self {
        let mut cmd = Command::new("node");
        cmd.args([everything_js(), "streamableHttp".into()])
            .env("PORT", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Self(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("cannot start node: {e}")),
        )
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Kills the process and waits for it.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.kill();
    }
}
