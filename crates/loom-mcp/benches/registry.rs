//! Registry benchmarks against a real server (server-everything over stdio, installed by
//! scripts/install-mcp-test-servers): the registry's per-call overhead against a bare rmcp
//! client in the same run, and the time to connect five stdio servers in parallel.
//!
//! Run with `cargo bench -p loom-mcp --bench registry` (prints the figures).

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use loom_mcp::{Registry, ServerSpec};
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use serde_json::{Map, Value, json};

const ROUNDS: usize = 10;
const CALLS_PER_ROUND: usize = 100;

fn everything() -> String {
    let dir = std::env::var_os("LOOM_MCP_TEST_SERVERS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../scripts/install-mcp-test-servers");
            let out = Command::new(script).output().unwrap();
            assert!(out.status.success(), "installer failed");
            PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
        });
    dir.join("npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js")
        .display()
        .to_string()
}

fn spec(name: &str, js: &str) -> ServerSpec {
    ServerSpec::stdio(name, "node", [js, "stdio"], [] as [(&str, &str); 0], None).unwrap()
}

fn args() -> Map<String, Value> {
    json!({"message": "bench"}).as_object().cloned().unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let js = everything();

    // Bare rmcp client and registry, each on its own server-everything child.
    let mut command = tokio::process::Command::new("node");
    command.arg(&js).arg("stdio");
    let transport = rmcp::transport::TokioChildProcess::builder(command)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
        .0;
    let bare = ().serve(transport).await.unwrap();
    let registry = Registry::new([spec("everything", &js)]).unwrap();
    registry.connect().await;
    // Warm up both.
    for _ in 0..50 {
        bare.call_tool(CallToolRequestParams::new("echo").with_arguments(args()))
            .await
            .unwrap();
        registry.call("echo", args()).await.unwrap();
    }
    let mut bare_rounds = Vec::new();
    let mut registry_rounds = Vec::new();
    // Interleaved rounds so both see the same machine load.
    for _ in 0..ROUNDS {
        let started = Instant::now();
        for _ in 0..CALLS_PER_ROUND {
            bare.call_tool(CallToolRequestParams::new("echo").with_arguments(args()))
                .await
                .unwrap();
        }
        bare_rounds.push(started.elapsed() / CALLS_PER_ROUND as u32);
        let started = Instant::now();
        for _ in 0..CALLS_PER_ROUND {
            registry.call("echo", args()).await.unwrap();
        }
        registry_rounds.push(started.elapsed() / CALLS_PER_ROUND as u32);
    }
    let bare_median = median(bare_rounds);
    let registry_median = median(registry_rounds);
    println!(
        "registry::call overhead (server-everything echo, stdio, {ROUNDS}×{CALLS_PER_ROUND} calls each, interleaved):"
    );
    println!(
        "  bare rmcp client : {:>8.1} µs/call (median round)",
        bare_median.as_secs_f64() * 1e6
    );
    println!(
        "  loom-mcp Registry: {:>8.1} µs/call (median round)",
        registry_median.as_secs_f64() * 1e6
    );
    println!(
        "  ratio            : {:.3}×",
        registry_median.as_secs_f64() / bare_median.as_secs_f64()
    );
    let _ = bare.cancel().await;
    registry.close().await;

    // Five stdio servers connected in parallel (spawn, dual-era handshake, tools/list).
    let mut times = Vec::new();
    for _ in 0..5 {
        let registry = Registry::new((0..5).map(|i| spec(&format!("s{i}"), &js))).unwrap();
        let started = Instant::now();
        registry.connect().await;
        times.push(started.elapsed());
        assert!(registry.unavailable().is_empty());
        registry.close().await;
    }
    println!(
        "registry::connect of 5 server-everything stdio servers in parallel: median {:.0} ms (min {:.0} ms, 5 runs)",
        median(times.clone()).as_secs_f64() * 1e3,
        times.iter().min().unwrap().as_secs_f64() * 1e3
    );
}
