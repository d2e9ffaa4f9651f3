//! A process that uses a registry and is SIGKILLed (no close) leaves no server behind.

use std::process::{Command, Stdio};
use std::time::Duration;

use loom_mcp::Registry;

use crate::common::*;

const HELPER_ENV: &str = "LOOM_MCP_ORPHAN_HELPER_PID_FILE";

/// Not a test on its own: when run by `no_server_outlives_a_killed_owner` (which sets
/// the variable) it connects a server that ignores SIGTERM and stdin EOF, writes the
/// server's pid, and waits to be killed.
#[tokio::test]
async fn orphan_helper_process() {
    let Some(pid_file) = std::env::var_os(HELPER_ENV) else {
        return;
    };
    let registry = Registry::with_options(
        [fixture_spec("stubborn", &["--ignore-term"])],
        quick_options(),
    )
    .expect("registry");
    registry.connect().await;
    let pid = registry
        .client("stubborn")
        .expect("client")
        .pid()
        .await
        .expect("pid");
    std::fs::write(&pid_file, pid.to_string()).expect("write pid");
    tokio::time::sleep(Duration::from_secs(120)).await;
}

#[tokio::test]
async fn no_server_outlives_a_killed_owner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("server.pid");
    let _ = servers_dir(); // install first, outside the helper
    let mut helper = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "orphan::orphan_helper_process",
            "--test-threads=1",
        ])
        .env(HELPER_ENV, &pid_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start helper");
    let server_pid: u32 = within("the helper's server", async {
        loop {
            if let Ok(text) = std::fs::read_to_string(&pid_file)
                && let Ok(pid) = text.trim().parse()
            {
                return pid;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(alive(server_pid));
    helper.kill().expect("SIGKILL the owner");
    let _ = helper.wait();
    assert!(
        wait_gone(server_pid).await,
        "server {server_pid} outlived its owner"
    );
}
