//! Federation overhead: what the gateway adds to a proxied upstream tool call, against
//! calling the upstream directly, in one run against the same upstream.
//!
//! The upstream is server-everything over streamable HTTP (the installed test copy, see
//! `scripts/install-mcp-test-servers`), tool `echo`. The gateway runs in this process
//! (`Gateway::start` with only `tools.mcp_servers`, served by `HttpServer` on loopback),
//! so the proxied path is client → HTTP → gateway → its one upstream session → HTTP →
//! server-everything, and the direct path is client → HTTP → server-everything. Clients
//! are rmcp with a pooled `reqwest::Client`; the direct client negotiates the protocol
//! the gateway's upstream client does (2026-07-28 preferred, 2025-11-25 fallback).
//!
//! A fourth path calls through `loom_mcp::Registry` in this process — the gateway's own
//! upstream client without the client → gateway hop — to split the overhead between the
//! registry and the extra HTTP hop (rmcp server, JSON, loopback).
//!
//! Paths are measured in interleaved blocks (direct, registry, gateway with a 2025-11-25
//! client, gateway with a 2026-07-28 client, repeated), so drift of a shared machine hits all
//! alike; one call at a time. The table gives p50/p90/p99/mean per path and the p50
//! and mean overhead of each gateway path over the direct one.
//!
//! `cargo bench -p loom-gateway --bench federation` (options after `--`: `--calls N`
//! per path, default 3000; `--blocks N`, default 10; `--warmup N`, default 200).
//! Without `--bench` (as `cargo test --all-targets` runs it) it makes a quick smoke pass,
//! and skips when the test servers are not installed.

// The table on stdout is what this binary is for.
#![allow(clippy::print_stdout, clippy::print_stderr)]

// Shared bench helpers; each bench uses only some of them.
#[allow(dead_code)]
mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use loom_bus::{Bus, MemoryBus};
use loom_gateway::{Gateway, GatewayOptions, HttpOptions, HttpServer};
use loom_testkit::mcp_servers::{Background, free_port, wait_for_port};
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ProtocolVersion};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use common::{BenchResult, Client, histogram, micros};

/// How long one call or handshake may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest latency the histograms hold, in microseconds.
const MAX_LATENCY_US: u64 = 60_000_000;

struct Options {
    full: bool,
    calls: usize,
    blocks: usize,
    warmup: usize,
}

impl Options {
    fn parse() -> BenchResult<Options> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let full = args.iter().any(|a| a == "--bench");
        let mut o = Options {
            full,
            calls: if full { 3000 } else { 30 },
            blocks: if full { 10 } else { 2 },
            warmup: if full { 200 } else { 5 },
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut number = |name: &str| -> BenchResult<usize> {
                let v = it.next().ok_or(format!("{name} needs a value"))?;
                Ok(v.parse()?)
            };
            match arg.as_str() {
                "--calls" => o.calls = number("--calls")?.max(1),
                "--blocks" => o.blocks = number("--blocks")?.max(1),
                "--warmup" => o.warmup = number("--warmup")?,
                _ => {}
            }
        }
        Ok(o)
    }
}

/// server-everything's entry point, or `None` (smoke pass) when it is not installed.
fn everything(full: bool) -> Option<String> {
    if full {
        return Some(loom_testkit::mcp_servers::everything_js());
    }
    let dir = std::env::var_os("LOOM_MCP_TEST_SERVERS")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/loom/mcp-servers"))
        })?;
    let js = dir.join("npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    js.exists().then(|| js.display().to_string())
}

/// A client at `url`: `mode`, or the 2025-11-25 `initialize` handshake when `None`.
async fn connect(
    http: &reqwest013::Client,
    url: &str,
    mode: Option<ClientLifecycleMode>,
) -> BenchResult<Client> {
    let transport = StreamableHttpClientTransport::with_client(
        http.clone(),
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()),
    );
    let client = match mode {
        Some(mode) => {
            tokio::time::timeout(CALL_TIMEOUT, ().serve_with_lifecycle(transport, mode)).await
        }
        None => tokio::time::timeout(CALL_TIMEOUT, ().serve(transport)).await,
    };
    Ok(client.map_err(|_| "handshake timed out")??)
}

fn auto() -> ClientLifecycleMode {
    ClientLifecycleMode::Auto {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
        legacy_version: Some(ProtocolVersion::V_2025_11_25),
    }
}

fn modern() -> ClientLifecycleMode {
    ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    }
}

/// One checked `tools/call echo`.
async fn call(client: &Client, arguments: &Map<String, Value>) -> BenchResult<()> {
    let params = CallToolRequestParams::new("echo").with_arguments(arguments.clone());
    let result = tokio::time::timeout(CALL_TIMEOUT, client.call_tool(params))
        .await
        .map_err(|_| "call timed out")??;
    let text = result
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.as_str())
        .unwrap_or_default();
    if result.is_error == Some(true) || !text.contains("federation") {
        return Err(format!("unexpected result: {result:?}").into());
    }
    Ok(())
}

/// Who makes the calls of one path.
enum Caller {
    /// An rmcp client over HTTP.
    Rmcp(Client),
    /// The gateway's own upstream client (`loom_mcp::Registry`) in this process: the
    /// proxied path without the client → gateway HTTP hop.
    Registry(loom_mcp::Registry),
}

impl Caller {
    async fn call(&self, arguments: &Map<String, Value>) -> BenchResult<()> {
        match self {
            Caller::Rmcp(client) => call(client, arguments).await,
            Caller::Registry(registry) => {
                let out = tokio::time::timeout(
                    CALL_TIMEOUT,
                    registry.call_result("echo", arguments.clone()),
                )
                .await
                .map_err(|_| "call timed out")??;
                if out.is_error == Some(true) {
                    return Err(format!("unexpected result: {out:?}").into());
                }
                Ok(())
            }
        }
    }
}

struct Path {
    label: &'static str,
    caller: Caller,
    hist: Histogram<u64>,
}

fn us(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> BenchResult<()> {
    let options = Options::parse()?;
    let Some(js) = everything(options.full) else {
        eprintln!(
            "federation bench: the MCP test servers are not installed; skipping (scripts/install-mcp-test-servers)"
        );
        return Ok(());
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let port = free_port();
    let mut upstream = {
        let mut cmd = std::process::Command::new("node");
        cmd.args([js.as_str(), "streamableHttp"])
            .env("PORT", port.to_string())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        Background::from_child(cmd.spawn()?)
    };
    if !wait_for_port(port, Duration::from_secs(30)).await {
        return Err("server-everything did not start".into());
    }
    let upstream_url = format!("http://127.0.0.1:{port}/mcp");

    let dir = tempfile::tempdir()?;
    let config = dir.path().join("federation.yaml");
    std::fs::write(
        &config,
        format!(
            "name: federation-bench\ntools:\n  mcp_servers:\n    everything: {{url: '{upstream_url}'}}\n"
        ),
    )?;
    let config = loom_core::config::load_gateway(&config).map_err(|e| e.to_string())?;
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let shutdown = CancellationToken::new();
    let gateway = Gateway::start(
        config,
        bus,
        GatewayOptions::default().embedded(true),
        shutdown.clone(),
    )
    .await?;
    let server = HttpServer::bind(
        gateway.handler(),
        HttpOptions::new("127.0.0.1:0".parse()?),
        shutdown.clone(),
    )
    .await?;
    let gateway_url = format!("http://{}/mcp", server.local_addr());
    let stop = shutdown.clone();
    let served = tokio::spawn(async move {
        let _ = server.run(stop).await;
        gateway.stop().await;
    });

    let http = reqwest013::Client::builder().build()?;
    let mut paths = vec![
        Path {
            label: "direct",
            caller: Caller::Rmcp(connect(&http, &upstream_url, Some(auto())).await?),
            hist: histogram(MAX_LATENCY_US),
        },
        Path {
            label: "loom-mcp Registry in process",
            caller: Caller::Registry(loom_mcp::Registry::new([loom_mcp::ServerSpec::http(
                "everything",
                upstream_url.clone(),
                [] as [(&str, &str); 0],
                None,
            )?])?),
            hist: histogram(MAX_LATENCY_US),
        },
        Path {
            label: "gateway, 2025-11-25 client",
            caller: Caller::Rmcp(connect(&http, &gateway_url, None).await?),
            hist: histogram(MAX_LATENCY_US),
        },
        Path {
            label: "gateway, 2026-07-28 client",
            caller: Caller::Rmcp(connect(&http, &gateway_url, Some(modern())).await?),
            hist: histogram(MAX_LATENCY_US),
        },
    ];
    let arguments = json!({"message": "federation"})
        .as_object()
        .cloned()
        .unwrap_or_default();
    for p in &paths {
        for _ in 0..options.warmup {
            p.caller.call(&arguments).await?;
        }
    }
    let per_block = options.calls.div_ceil(options.blocks);
    let started = Instant::now();
    for _ in 0..options.blocks {
        for p in &mut paths {
            for _ in 0..per_block {
                let t = Instant::now();
                p.caller.call(&arguments).await?;
                p.hist.record(micros(t.elapsed(), MAX_LATENCY_US))?;
            }
        }
    }
    let elapsed = started.elapsed();

    println!(
        "federation: tools/call echo on server-everything (streamable HTTP), {} calls per path in {} interleaved blocks, one at a time ({:.1} s){}",
        per_block * options.blocks,
        options.blocks,
        elapsed.as_secs_f64(),
        if options.full { "" } else { " [smoke pass]" }
    );
    println!("| path | p50 ms | p90 ms | p99 ms | mean ms | overhead p50 ms | overhead mean ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let (direct_p50, direct_mean) = (us(&paths[0].hist, 0.5), paths[0].hist.mean() / 1000.0);
    for p in &paths {
        let (p50, mean) = (us(&p.hist, 0.5), p.hist.mean() / 1000.0);
        let overhead = |v: f64, base: f64| {
            if p.label == "direct" {
                "–".to_owned()
            } else {
                format!("{:.3}", v - base)
            }
        };
        println!(
            "| {} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {} |",
            p.label,
            p50,
            us(&p.hist, 0.9),
            us(&p.hist, 0.99),
            mean,
            overhead(p50, direct_p50),
            overhead(mean, direct_mean),
        );
    }
    for p in paths {
        match p.caller {
            Caller::Rmcp(client) => {
                let _ = tokio::time::timeout(Duration::from_secs(5), client.cancel()).await;
            }
            Caller::Registry(registry) => registry.close().await,
        }
    }
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), served).await;
    upstream.kill();
    Ok(())
}
