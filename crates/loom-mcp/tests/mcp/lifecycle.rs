//! Stdio children: environment, cwd, initialize timeout, crashes and respawns, parallel
//! reconnects, cancellation, and close against a child that ignores SIGTERM.

use std::path::Path;
use std::time::{Duration, Instant};

use loom_mcp::{Client, ClientOptions, McpError, Registry, RegistryOptions, ServerSpec};
use serde_json::{Map, Value, json};

use crate::common::*;

fn args(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("object")
}

fn options(call_timeout: Duration) -> RegistryOptions {
    let mut options = quick_options();
    options.client.call_timeout = call_timeout;
    options
}

#[tokio::test]
async fn a_stdio_child_gets_the_allow_listed_env_plus_its_own_and_runs_in_its_cwd() {
    assert!(
        std::env::var("CARGO_PKG_NAME").is_ok(),
        "cargo sets it for tests"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = ServerSpec::stdio(
        "fx",
        python(),
        [fixture("fixture_server.py")],
        [("LOOM_SPEC_VAR", "from-spec")],
        Some(dir.path().to_owned()),
    )
    .expect("spec");
    let registry = Registry::with_options([spec], quick_options()).expect("registry");
    let env = within("env", registry.call("env", Map::new()))
        .await
        .expect("env");
    let env: Map<String, Value> = serde_json::from_str(&env.text).expect("json env");
    assert_eq!(env.get("LOOM_SPEC_VAR"), Some(&json!("from-spec")));
    assert!(env.contains_key("PATH"));
    assert!(
        !env.contains_key("CARGO_PKG_NAME"),
        "parent variables stay out: {env:?}"
    );
    let cwd = within("cwd", registry.call("cwd", Map::new()))
        .await
        .expect("cwd");
    assert_eq!(
        Path::new(&cwd.text).canonicalize().expect("cwd"),
        dir.path().canonicalize().expect("dir")
    );
    within("close", registry.close()).await;
}

#[tokio::test]
async fn a_server_that_never_answers_initialize_times_out() {
    let client = Client::new(
        fixture_spec("silent", &["--hang-initialize"]),
        ClientOptions {
            init_timeout: Duration::from_secs(1),
            close_grace: Duration::from_millis(200),
            ..ClientOptions::default()
        },
    );
    let started = Instant::now();
    let error = within("connect", client.connect())
        .await
        .expect_err("times out");
    assert!(
        matches!(&error, McpError::Timeout { server, operation, .. } if server == "silent" && operation == "initialize"),
        "{error}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_missing_binary_fails_to_connect_naming_the_server() {
    let spec =
        ServerSpec::stdio("ghost", "/nonexistent/mcp-server", ["x"], no_env(), None).expect("spec");
    let error = within(
        "connect",
        Client::new(spec, ClientOptions::default()).connect(),
    )
    .await
    .expect_err("fails");
    assert!(error.to_string().contains("'ghost'"), "{error}");
    assert!(
        error.to_string().contains("/nonexistent/mcp-server"),
        "{error}"
    );
}

#[tokio::test]
async fn a_crash_mid_call_surfaces_the_exit_code_and_stderr_and_the_next_call_respawns() {
    let registry =
        Registry::with_options([fixture_spec("fx", &[])], quick_options()).expect("registry");
    let first = within("pid", registry.call("pid", Map::new()))
        .await
        .expect("pid")
        .text;
    let error = within("crash", registry.call("crash", Map::new()))
        .await
        .expect_err("crashes");
    match &error {
        McpError::Exited {
            server,
            code,
            stderr_tail,
            ..
        } => {
            assert_eq!(server, "fx");
            assert_eq!(*code, Some(3));
            assert!(stderr_tail.contains("crashing on purpose"), "{stderr_tail}");
        }
        other => panic!("expected Exited, got {other}"),
    }
    let second = within("pid again", registry.call("pid", Map::new()))
        .await
        .expect("respawned")
        .text;
    assert_ne!(first, second);
    within("close", registry.close()).await;
}

#[tokio::test]
async fn a_server_killed_between_calls_reports_its_signal_and_is_respawned() {
    let registry =
        Registry::with_options([fixture_spec("fx", &[])], quick_options()).expect("registry");
    within("connect", registry.connect()).await;
    let client = registry.client("fx").expect("client").clone();
    let pid = client.pid().await.expect("pid");
    kill9(pid);
    assert!(wait_gone(pid).await);
    let error = within("client call", client.call_tool("echo", Map::new()))
        .await
        .expect_err("dead");
    assert!(
        matches!(
            error,
            McpError::Exited {
                signal: Some(9),
                ..
            }
        ),
        "{error}"
    );
    let out = within(
        "registry call",
        registry.call("echo", args(json!({"x": 1}))),
    )
    .await
    .expect("respawned");
    assert_eq!(out.text, "{\"x\": 1}");
    assert_eq!(client.connections_opened(), 2);
    within("close", registry.close()).await;
}

fn kill9(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

/// Fixture processes whose command line carries `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline"))
            && String::from_utf8_lossy(&cmdline).contains(marker)
            && alive(pid)
        {
            found.push(pid);
        }
    }
    found
}

#[tokio::test]
async fn parallel_calls_on_a_dead_server_reconnect_exactly_once_and_leak_nothing() {
    let marker = format!("marker_{}", std::process::id());
    let registry =
        Registry::with_options([fixture_spec("fx", &["--tools", &marker])], quick_options())
            .expect("registry");
    within("connect", registry.connect()).await;
    let client = registry.client("fx").expect("client").clone();
    let pid = client.pid().await.expect("pid");
    kill9(pid);
    assert!(wait_gone(pid).await);
    let calls = (0..8).map(|i| registry.call("echo", args(json!({"i": i}))));
    let results = within("parallel calls", futures::future::join_all(calls)).await;
    for result in &results {
        assert!(result.is_ok(), "{result:?}");
    }
    assert_eq!(
        client.connections_opened(),
        2,
        "one reconnect for eight callers"
    );
    assert_eq!(processes_with(&marker).len(), 1, "exactly one live server");
    within("close", registry.close()).await;
    assert!(processes_with(&marker).is_empty());
}

#[tokio::test]
async fn a_timed_out_call_is_cancelled_on_the_server() {
    let log = tempfile::NamedTempFile::new().expect("log");
    let log_path = log.path().display().to_string();
    let registry = Registry::with_options(
        [fixture_spec("fx", &["--log", &log_path])],
        options(Duration::from_secs(1)),
    )
    .expect("registry");
    let error = within("slow", registry.call("slow", args(json!({"seconds": 10}))))
        .await
        .expect_err("times out");
    assert!(
        matches!(&error, McpError::Timeout { operation, .. } if operation == "tools/call 'slow'"),
        "{error}"
    );
    let cancelled = within("cancel notification", async {
        loop {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            if text.contains("notifications/cancelled") {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(cancelled.contains("requestId"));
    within("close", registry.close()).await;
}

#[tokio::test]
async fn close_ends_a_child_that_ignores_sigterm_within_the_grace_bounds() {
    let registry = Registry::with_options(
        [fixture_spec("stubborn", &["--ignore-term"])],
        quick_options(),
    )
    .expect("registry");
    within("connect", registry.connect()).await;
    let pid = registry
        .client("stubborn")
        .expect("client")
        .pid()
        .await
        .expect("pid");
    let started = Instant::now();
    within("close", registry.close()).await;
    let took = started.elapsed();
    assert!(!alive(pid), "SIGKILL ends it");
    // close_grace is 0.5 s: session close, stdin EOF wait, SIGTERM wait, SIGKILL.
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );
}
