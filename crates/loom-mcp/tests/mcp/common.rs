//! Locating the real test servers (installing them once when needed), fixtures, timeouts.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use loom_mcp::{ClientOptions, RegistryOptions, ServerSpec};

/// The longest any awaited step of a test may take.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// Awaits `fut`, failing the test with `what` if it takes longer than [`WAIT`].
pub(crate) async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Where scripts/install-mcp-test-servers put the servers: `$LOOM_MCP_TEST_SERVERS`, or
/// else the installer is run (idempotent, cached, flock-guarded) and its answer used.
/// A missing server fails the test; it never skips.
pub(crate) fn servers_dir() -> &'static Path {
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

pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub(crate) fn python() -> PathBuf {
    let p = servers_dir().join("venv/bin/python");
    assert!(p.exists(), "missing {}", p.display());
    p
}

pub(crate) fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

pub(crate) fn everything_js() -> String {
    let p = servers_dir()
        .join("npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    assert!(p.exists(), "missing {}", p.display());
    p.display().to_string()
}

pub(crate) fn no_env() -> [(&'static str, &'static str); 0] {
    []
}

/// The fixture server (tests/fixtures/fixture_server.py) named `name` with `flags`.
pub(crate) fn fixture_spec(name: &str, flags: &[&str]) -> ServerSpec {
    let mut args = vec![fixture("fixture_server.py")];
    args.extend(flags.iter().map(|f| f.to_string()));
    ServerSpec::stdio(name, python().display().to_string(), args, no_env(), None)
        .expect("valid spec")
}

/// server-everything over stdio.
pub(crate) fn everything_spec(name: &str) -> ServerSpec {
    ServerSpec::stdio(
        name,
        "node",
        [everything_js(), "stdio".into()],
        no_env(),
        None,
    )
    .expect("valid spec")
}

/// Short timeouts for tests.
pub(crate) fn quick_options() -> RegistryOptions {
    RegistryOptions {
        client: ClientOptions {
            init_timeout: Duration::from_secs(20),
            call_timeout: Duration::from_secs(20),
            close_grace: Duration::from_millis(500),
        },
        ..RegistryOptions::default()
    }
}

/// A free loopback port.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Waits until something accepts TCP connections on `port`.
pub(crate) async fn wait_for_port(port: u16) {
    within("the server's port", async {
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// Whether process `pid` is alive (not a zombie).
pub(crate) fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Waits up to 10 s for `pid` to be gone.
pub(crate) async fn wait_gone(pid: u32) -> bool {
    for _ in 0..200 {
        if !alive(pid) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A background process killed (group and all) when dropped.
pub(crate) struct Background(pub(crate) std::process::Child);

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
