//! Registry benchmarks against a real server (server-everything over stdio, installed by
//! scripts/install-mcp-test-servers): the registry's per-call overhead against a bare rmcp
//! client in the same run, and the time to connect five stdio servers in parallel.
//!
//! Both sides do the same useful work per call: the bare client turns its result into the
//! model's text the way `Registry::call` does (content blocks → JSON → `tool_result_text`).
//! The two sides alternate call by call (each pair in turn led by either side), so both see
//! the same load on a shared machine.
//!
//! Run with `cargo bench -p loom-mcp --bench registry` (prints the figures).

#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use loom_mcp::output::tool_result_text;
use loom_mcp::{Registry, ServerSpec};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use serde_json::{Map, Value, json};

const ROUNDS: usize = 20;
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

/// What `Registry::call` does with a result: the text for the model.
fn text_of(result: &CallToolResult) -> String {
    let content: Vec<Value> = result
        .content
        .iter()
        .filter_map(|c| serde_json::to_value(c).ok())
        .collect();
    tool_result_text(result.structured_content.as_ref(), &content)
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
    let bare_call = || async {
        let result = bare
            .call_tool(CallToolRequestParams::new("echo").with_arguments(args()))
            .await
            .unwrap();
        assert_eq!(text_of(&result), "Echo: bench");
    };
    let registry_call = || async {
        let output = registry.call("echo", args()).await.unwrap();
        assert_eq!(output.text, "Echo: bench");
    };
    for _ in 0..50 {
        bare_call().await;
        registry_call().await;
    }
    let mut bare_rounds = Vec::new();
    let mut registry_rounds = Vec::new();
    let mut bare_calls = Vec::new();
    let mut registry_calls = Vec::new();
    let mut ratios = Vec::new();
    // Interleaved call by call, so both sides see the same machine load (the machine is
    // shared), and alternating which side of a pair goes first.
    for _ in 0..ROUNDS {
        let (mut bare_round, mut registry_round) = (Duration::ZERO, Duration::ZERO);
        for pair in 0..CALLS_PER_ROUND {
            for side in [pair % 2, 1 - pair % 2] {
                let started = Instant::now();
                if side == 0 {
                    bare_call().await;
                    bare_calls.push(started.elapsed());
                    bare_round += started.elapsed();
                } else {
                    registry_call().await;
                    registry_calls.push(started.elapsed());
                    registry_round += started.elapsed();
                }
            }
        }
        bare_rounds.push(bare_round / CALLS_PER_ROUND as u32);
        registry_rounds.push(registry_round / CALLS_PER_ROUND as u32);
        ratios.push(registry_round.as_secs_f64() / bare_round.as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    let (ratio_low, ratio_high) = (ratios[ROUNDS / 4], ratios[ROUNDS * 3 / 4]);
    let bare_median = median(bare_rounds);
    let registry_median = median(registry_rounds);
    let bare_call_median = median(bare_calls);
    let registry_call_median = median(registry_calls);
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "registry::call overhead (server-everything echo, stdio, {ROUNDS}×{CALLS_PER_ROUND} calls each, interleaved call by call):"
    );
    println!(
        "  bare rmcp client : {:>8.1} µs/call (median round), {:>6.1} µs (median call)",
        us(bare_median),
        us(bare_call_median)
    );
    println!(
        "  loom-mcp Registry: {:>8.1} µs/call (median round), {:>6.1} µs (median call)",
        us(registry_median),
        us(registry_call_median)
    );
    println!(
        "  ratio            : {:.3}× (median rounds), {:.3}× (median calls); per-round ratios: median {:.3}×, quartiles {ratio_low:.3}–{ratio_high:.3}×",
        registry_median.as_secs_f64() / bare_median.as_secs_f64(),
        registry_call_median.as_secs_f64() / bare_call_median.as_secs_f64(),
        ratios[ROUNDS / 2],
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
