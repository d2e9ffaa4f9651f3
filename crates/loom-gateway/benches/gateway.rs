//! Gateway load generator: `tools/call` through the real `loom mcp` binary over
//! streamable HTTP, with rmcp clients, in both protocol eras.
//!
//! What one full run does (`cargo bench -p loom-gateway --bench gateway`):
//!
//! 1. **Startup**, several times: launch `loom mcp --config examples/docman/mcp.yaml
//!    --transport http --port <free>` (embedded bus: the router and the `text_stats`
//!    worker run in the gateway process) and time launch → TCP port open and launch →
//!    first successful `initialize` + `tools/list` (the rmcp client is ready before the
//!    launch, so its own set-up does not count).
//! 2. **Idle RSS** of the last launched gateway, one second after it answered.
//! 3. For every client **variant** (protocol era × HTTP client), `tools/call text_stats
//!    {"text": "the quick brown fox jumps over the lazy dog"}`:
//!    * sequential: one client, warm-up calls, then N calls one after another;
//!    * closed loop at each concurrency C: C clients (one session / transport each),
//!      each calling again as soon as its answer is in, for a duration after an
//!      unmeasured warm-up second.
//!
//!    Each phase reports p50/p90/p99/mean latency (request to checked result, measured
//!    in the client), calls/s, errors, the gateway's CPU time per call (user + system,
//!    from `/proc/<pid>/stat`) and its peak RSS (sampled every 100 ms).
//! 4. Optionally a **soak**: the largest concurrency for `--soak SECS` seconds on the
//!    legacy era (what the Python harness speaks), to show that no call fails.
//!
//! Variants: `legacy` (2025-11-25 `initialize` sessions, rmcp's default reqwest client,
//! which keeps no idle connections), `legacy-pooled` (the same with a pooled
//! `reqwest::Client`), `modern` (2026-07-28, stateless, default client) and
//! `modern-pooled`.
//!
//! Options (after `--`): `--loom PATH` (default: `$LOOM_BIN`, else `loom` next to this
//! bench's build directory, `$CARGO_TARGET_DIR/release/loom`, `target/release/loom`),
//! `--config PATH`, `--variants legacy,modern-pooled,…`, `--warmup N`, `--calls N`,
//! `--concurrency 16,64`, `--duration SECS`, `--soak SECS`, `--startups N`, `--text T`,
//! and `--url URL [--pid PID]` to load a gateway that is already running instead of
//! launching one (then startup is skipped, and RSS/CPU need `--pid`).
//!
//! Without `--bench` (as when `cargo test --all-targets` runs bench targets) it does a
//! quick smoke pass, and skips when the release `loom` binary has not been built.

// The table on stdout is what this binary is for.
#![allow(clippy::print_stdout, clippy::print_stderr)]

// Shared bench helpers; each bench uses only some of them.
#[allow(dead_code)]
mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult, ProtocolVersion};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Map, Value, json};

use common::{
    BenchResult, Client, GatewayProcess, clock_ticks_per_second, close, cpu_ticks, histogram,
    load_average, micros, rss_kib, workspace_dir,
};

/// The tool every call goes to, unless `--tool` names another.
const TOOL: &str = "text_stats";

/// A key every good answer carries.
const EXPECT_KEY: &str = "reversed";

/// How long one call may take before it counts as an error.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a launched gateway may take to answer `tools/list`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Unmeasured closed-loop warm-up before each concurrent phase.
const CONC_WARMUP: Duration = Duration::from_secs(1);

/// RSS sampling period during a phase.
const RSS_PERIOD: Duration = Duration::from_millis(100);

/// Largest latency the histograms hold, in microseconds.
const MAX_LATENCY_US: u64 = 120_000_000;

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

/// Which client: protocol era and whether its HTTP connections are pooled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Legacy,
    LegacyPooled,
    Modern,
    ModernPooled,
}

impl Variant {
    fn parse(s: &str) -> Option<Variant> {
        Some(match s {
            "legacy" => Variant::Legacy,
            "legacy-pooled" => Variant::LegacyPooled,
            "modern" => Variant::Modern,
            "modern-pooled" => Variant::ModernPooled,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Variant::Legacy => "legacy",
            Variant::LegacyPooled => "legacy-pooled",
            Variant::Modern => "modern",
            Variant::ModernPooled => "modern-pooled",
        }
    }

    fn modern(self) -> bool {
        matches!(self, Variant::Modern | Variant::ModernPooled)
    }

    fn pooled(self) -> bool {
        matches!(self, Variant::LegacyPooled | Variant::ModernPooled)
    }
}

#[derive(Debug, Clone)]
struct Options {
    full: bool,
    loom: Option<PathBuf>,
    config: PathBuf,
    url: Option<String>,
    pid: Option<u32>,
    variants: Vec<Variant>,
    warmup: usize,
    calls: usize,
    concurrency: Vec<usize>,
    duration: Duration,
    soak: Option<Duration>,
    startups: usize,
    tool: String,
    text: String,
}

impl Options {
    fn parse() -> BenchResult<Options> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let full = args.iter().any(|a| a == "--bench");
        let mut o = Options {
            full,
            loom: std::env::var_os("LOOM_BIN").map(PathBuf::from),
            config: workspace_dir().join("examples/docman/mcp.yaml"),
            url: None,
            pid: None,
            variants: vec![
                Variant::Legacy,
                Variant::LegacyPooled,
                Variant::Modern,
                Variant::ModernPooled,
            ],
            warmup: 200,
            calls: 2_000,
            concurrency: vec![16, 64],
            duration: Duration::from_secs(10),
            soak: None,
            startups: 5,
            tool: TOOL.to_owned(),
            text: "the quick brown fox jumps over the lazy dog".to_owned(),
        };
        if !full {
            o.variants = vec![Variant::Legacy, Variant::ModernPooled];
            o.warmup = 5;
            o.calls = 20;
            o.concurrency = vec![4];
            o.duration = Duration::from_millis(500);
            o.startups = 1;
        }
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .ok_or_else(|| format!("{name} needs a value").into())
                    as BenchResult<String>
            };
            match arg.as_str() {
                "--bench" => {}
                "--loom" => o.loom = Some(PathBuf::from(value("--loom")?)),
                "--config" => o.config = PathBuf::from(value("--config")?),
                "--url" => o.url = Some(value("--url")?),
                "--pid" => o.pid = Some(value("--pid")?.parse()?),
                "--variants" => {
                    o.variants = value("--variants")?
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(|s| Variant::parse(s).ok_or_else(|| format!("unknown variant {s}")))
                        .collect::<Result<_, _>>()?;
                }
                "--warmup" => o.warmup = value("--warmup")?.parse()?,
                "--calls" => o.calls = value("--calls")?.parse()?,
                "--concurrency" => {
                    o.concurrency = value("--concurrency")?
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::parse)
                        .collect::<Result<_, _>>()?;
                }
                "--duration" => {
                    o.duration = Duration::from_secs_f64(value("--duration")?.parse()?);
                }
                "--soak" => {
                    let s: f64 = value("--soak")?.parse()?;
                    o.soak = (s > 0.0).then(|| Duration::from_secs_f64(s));
                }
                "--startups" => o.startups = value("--startups")?.parse()?,
                "--tool" => o.tool = value("--tool")?,
                "--text" => o.text = value("--text")?,
                // libtest-style filters and flags cargo may pass: ignore.
                other if other.starts_with('-') => {}
                _ => {}
            }
        }
        Ok(o)
    }

    /// The `loom` binary to launch: the option, then the release build directory this
    /// bench was built into, then the usual target directories.
    fn loom_binary(&self) -> Option<PathBuf> {
        common::loom_binary(self.loom.as_deref())
    }
}

/// Samples a process's RSS until stopped; keeps the peak.
struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    fn start(pid: Option<u32>) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let (stop, peak) = (stop.clone(), peak.clone());
            async move {
                let Some(pid) = pid else { return };
                while !stop.load(Ordering::Relaxed) {
                    if let Some(r) = rss_kib(pid) {
                        peak.fetch_max(r, Ordering::Relaxed);
                    }
                    tokio::time::sleep(RSS_PERIOD).await;
                }
            }
        });
        RssSampler { stop, peak, task }
    }

    async fn finish(self) -> Option<u64> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let p = self.peak.load(Ordering::Relaxed);
        (p > 0).then_some(p)
    }
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

/// Builds clients of one variant; pooled variants share one `reqwest::Client`.
#[derive(Clone)]
struct ClientFactory {
    url: String,
    variant: Variant,
    pooled: Option<reqwest013::Client>,
}

impl ClientFactory {
    fn new(url: &str, variant: Variant) -> BenchResult<ClientFactory> {
        let pooled = if variant.pooled() {
            Some(reqwest013::Client::builder().build()?)
        } else {
            None
        };
        Ok(ClientFactory {
            url: url.to_owned(),
            variant,
            pooled,
        })
    }

    async fn connect(&self) -> BenchResult<Client> {
        let transport = match &self.pooled {
            Some(http) => StreamableHttpClientTransport::with_client(
                http.clone(),
                StreamableHttpClientTransportConfig::with_uri(self.url.clone()),
            ),
            None => StreamableHttpClientTransport::from_uri(self.url.clone()),
        };
        let client = if self.variant.modern() {
            let lifecycle = ClientLifecycleMode::Discover {
                preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            };
            tokio::time::timeout(CALL_TIMEOUT, ().serve_with_lifecycle(transport, lifecycle))
                .await
                .map_err(|_| "discover timed out")??
        } else {
            tokio::time::timeout(CALL_TIMEOUT, ().serve(transport))
                .await
                .map_err(|_| "initialize timed out")??
        };
        Ok(client)
    }
}

/// One `tools/call`, checked: an error when it fails, times out, is a tool error, or
/// lacks the expected key.
async fn call(client: &Client, tool: &str, arguments: &Map<String, Value>) -> Result<(), String> {
    let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments.clone());
    let result = tokio::time::timeout(CALL_TIMEOUT, client.call_tool(params))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    check(&result)
}

fn check(result: &CallToolResult) -> Result<(), String> {
    if result.is_error == Some(true) {
        return Err(format!("isError: {:?}", result.content.first()));
    }
    match &result.structured_content {
        Some(Value::Object(o)) if o.contains_key(EXPECT_KEY) && !o.contains_key("error") => Ok(()),
        other => Err(format!("unexpected result: {other:?}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------------------------

/// What one phase measured.
struct Phase {
    variant: Variant,
    label: String,
    hist: Histogram<u64>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
    cpu_ms_per_call: Option<f64>,
    rss_peak_kib: Option<u64>,
}

struct Target {
    url: String,
    tool: String,
    pid: Option<u32>,
    ticks_per_s: u64,
}

impl Target {
    fn cpu(&self) -> Option<u64> {
        self.pid.and_then(cpu_ticks)
    }

    fn cpu_ms_per_call(&self, before: Option<u64>, after: Option<u64>, calls: u64) -> Option<f64> {
        let (b, a) = (before?, after?);
        if calls == 0 {
            return None;
        }
        Some((a.saturating_sub(b)) as f64 * 1000.0 / self.ticks_per_s as f64 / calls as f64)
    }
}

async fn sequential(
    target: &Target,
    variant: Variant,
    arguments: &Map<String, Value>,
    warmup: usize,
    calls: usize,
) -> BenchResult<Phase> {
    let factory = ClientFactory::new(&target.url, variant)?;
    let client = factory.connect().await?;
    let mut first_error = None;
    let mut errors = 0;
    for _ in 0..warmup {
        if let Err(e) = call(&client, &target.tool, arguments).await {
            errors += 1;
            first_error.get_or_insert(e);
        }
    }
    let mut hist = histogram(MAX_LATENCY_US);
    let mut ok = 0;
    let sampler = RssSampler::start(target.pid);
    let cpu_before = target.cpu();
    let start = Instant::now();
    for _ in 0..calls {
        let t = Instant::now();
        match call(&client, &target.tool, arguments).await {
            Ok(()) => {
                ok += 1;
                let _ = hist.record(micros(t.elapsed(), MAX_LATENCY_US));
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let elapsed = start.elapsed();
    let cpu_after = target.cpu();
    let rss_peak_kib = sampler.finish().await;
    close(client).await;
    Ok(Phase {
        variant,
        label: "sequential".to_owned(),
        hist,
        ok,
        errors,
        first_error,
        elapsed,
        cpu_ms_per_call: target.cpu_ms_per_call(cpu_before, cpu_after, ok),
        rss_peak_kib,
    })
}

/// What one closed-loop worker measured.
#[derive(Default)]
struct WorkerTally {
    ok: u64,
    errors: u64,
    first_error: Option<String>,
}

async fn closed_loop(
    target: &Target,
    variant: Variant,
    arguments: &Map<String, Value>,
    concurrency: usize,
    duration: Duration,
    label: &str,
) -> BenchResult<Phase> {
    let factory = ClientFactory::new(&target.url, variant)?;
    let mut clients = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        clients.push(factory.connect().await?);
    }
    let begin = Instant::now() + Duration::from_millis(50);
    let measure_from = begin + CONC_WARMUP;
    let end = measure_from + duration;
    let mut tasks = Vec::with_capacity(concurrency);
    for client in clients {
        let arguments = arguments.clone();
        let tool = target.tool.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = histogram(MAX_LATENCY_US);
            let mut tally = WorkerTally::default();
            tokio::time::sleep_until(begin.into()).await;
            loop {
                let t = Instant::now();
                if t >= end {
                    break;
                }
                let outcome = call(&client, &tool, &arguments).await;
                let done = Instant::now();
                if done < measure_from || done > end {
                    continue;
                }
                match outcome {
                    Ok(()) => {
                        tally.ok += 1;
                        let _ = hist.record(micros(done - t, MAX_LATENCY_US));
                    }
                    Err(e) => {
                        tally.errors += 1;
                        tally.first_error.get_or_insert(e);
                    }
                }
            }
            close(client).await;
            (hist, tally)
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let sampler = RssSampler::start(target.pid);
    let cpu_before = target.cpu();
    tokio::time::sleep_until(end.into()).await;
    let cpu_after = target.cpu();
    let rss_peak_kib = sampler.finish().await;
    let mut hist = histogram(MAX_LATENCY_US);
    let mut total = WorkerTally::default();
    for task in tasks {
        let (h, t) = task.await?;
        hist.add(&h)?;
        total.ok += t.ok;
        total.errors += t.errors;
        if total.first_error.is_none() {
            total.first_error = t.first_error;
        }
    }
    Ok(Phase {
        variant,
        label: label.to_owned(),
        hist,
        ok: total.ok,
        errors: total.errors,
        first_error: total.first_error,
        elapsed: duration,
        cpu_ms_per_call: target.cpu_ms_per_call(cpu_before, cpu_after, total.ok),
        rss_peak_kib,
    })
}

/// Launch → port open and launch → first `initialize` + `tools/list`, in ms.
struct Startup {
    port_ms: f64,
    list_ms: f64,
}

async fn measure_startup(
    tool: &str,
    loom: &Path,
    config: &Path,
    log_dir: &Path,
    n: usize,
) -> BenchResult<(Startup, GatewayProcess)> {
    let t0 = Instant::now();
    let gateway =
        GatewayProcess::launch(loom, config, log_dir.join(format!("gateway-{n}.log")), &[])?;
    let addr = format!("127.0.0.1:{}", gateway.port);
    let url = gateway.url();
    let mut port_ms = None;
    let deadline = t0 + STARTUP_TIMEOUT;
    loop {
        if Instant::now() > deadline {
            return Err(format!(
                "gateway did not answer tools/list within {STARTUP_TIMEOUT:?}; see {}",
                gateway.log.display()
            )
            .into());
        }
        if port_ms.is_none() {
            if tokio::net::TcpStream::connect(&addr).await.is_ok() {
                port_ms = Some(t0.elapsed().as_secs_f64() * 1e3);
            } else {
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
        }
        let transport = StreamableHttpClientTransport::from_uri(url.clone());
        let listed = async {
            let client = ().serve(transport).await?;
            let tools = client.list_all_tools().await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>((client, tools))
        };
        match tokio::time::timeout(Duration::from_secs(5), listed).await {
            Ok(Ok((client, tools))) if tools.iter().any(|t| t.name == tool) => {
                let list_ms = t0.elapsed().as_secs_f64() * 1e3;
                close(client).await;
                return Ok((
                    Startup {
                        port_ms: port_ms.unwrap_or(list_ms),
                        list_ms,
                    },
                    gateway,
                ));
            }
            Ok(Ok((client, _))) => {
                close(client).await;
                return Err(format!("the gateway does not offer {tool}").into());
            }
            _ => tokio::time::sleep(Duration::from_millis(2)).await,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1e3)
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn print_phases(phases: &[Phase]) {
    println!(
        "{:<14} {:<11} {:>8} {:>6} {:>9} {:>8} {:>8} {:>8} {:>8} {:>11} {:>9}",
        "client",
        "phase",
        "calls",
        "errors",
        "calls/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "mean ms",
        "gw CPU/call",
        "RSS peak"
    );
    for p in phases {
        let rate = p.ok as f64 / p.elapsed.as_secs_f64();
        let cpu = p
            .cpu_ms_per_call
            .map_or_else(|| "-".to_owned(), |c| format!("{c:.3} ms"));
        println!(
            "{:<14} {:<11} {:>8} {:>6} {:>9.0} {:>8} {:>8} {:>8} {:>8} {:>11} {:>9}",
            p.variant.name(),
            p.label,
            p.ok,
            p.errors,
            rate,
            ms(p.hist.value_at_quantile(0.50)),
            ms(p.hist.value_at_quantile(0.90)),
            ms(p.hist.value_at_quantile(0.99)),
            format!("{:.3}", p.hist.mean() / 1e3),
            cpu,
            format!("{} MiB", mib(p.rss_peak_kib)),
        );
    }
    for p in phases {
        if let Some(e) = &p.first_error {
            println!(
                "  {} {}: first error: {}",
                p.variant.name(),
                p.label,
                e.chars().take(300).collect::<String>()
            );
        }
    }
}

fn machine_line() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "?".to_owned());
    let load = load_average();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{cores} cores ({cpu}), load average {load}")
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

async fn run(options: Options) -> BenchResult<()> {
    let arguments = json!({"text": options.text})
        .as_object()
        .cloned()
        .expect("an object literal");
    let ticks_per_s = clock_ticks_per_second();
    let log_dir = tempfile::tempdir()?;
    let mut header = String::new();
    let mut launched = None;

    let target = if let Some(url) = &options.url {
        let _ = write!(header, "loom-gateway bench: gateway at {url}");
        Target {
            url: url.clone(),
            tool: options.tool.clone(),
            pid: options.pid,
            ticks_per_s,
        }
    } else {
        let Some(loom) = options.loom_binary() else {
            let msg = "no release `loom` binary: run `cargo build --release -p loom-cli` first (or pass --loom PATH)";
            if options.full {
                return Err(msg.into());
            }
            println!("gateway bench smoke pass skipped: {msg}");
            return Ok(());
        };
        let config = std::fs::canonicalize(&options.config)?;
        let _ = write!(
            header,
            "loom-gateway bench: {} mcp --config {} --transport http (embedded bus), tool {}",
            loom.display(),
            config.display(),
            options.tool
        );
        let mut startups = Vec::new();
        for n in 0..options.startups.max(1) {
            // Stop the previous launch and let its port and threads go.
            drop(launched.take());
            tokio::time::sleep(Duration::from_millis(200)).await;
            let (s, gateway) =
                measure_startup(&options.tool, &loom, &config, log_dir.path(), n).await?;
            startups.push(s);
            launched = Some(gateway);
        }
        let gateway = launched.as_ref().expect("at least one launch");
        tokio::time::sleep(Duration::from_secs(1)).await;
        let idle = rss_kib(gateway.pid());
        println!("{header}");
        println!("machine: {}", machine_line());
        let port: Vec<f64> = startups.iter().map(|s| s.port_ms).collect();
        let list: Vec<f64> = startups.iter().map(|s| s.list_ms).collect();
        let range = |v: &[f64]| {
            let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = v.iter().copied().fold(0.0, f64::max);
            format!("{lo:.1}–{hi:.1}")
        };
        println!(
            "startup ({} launches, median (min–max)): launch → port open {:.1} ms ({}); launch → first tools/list {:.1} ms ({})",
            startups.len(),
            median(port.clone()),
            range(&port),
            median(list.clone()),
            range(&list),
        );
        println!("RSS idle (1 s after startup): {} MiB", mib(idle));
        header.clear();
        Target {
            url: gateway.url(),
            tool: options.tool.clone(),
            pid: Some(gateway.pid()),
            ticks_per_s,
        }
    };
    if !header.is_empty() {
        println!("{header}");
        println!("machine: {}", machine_line());
        if let Some(pid) = target.pid {
            println!("RSS now: {} MiB", mib(rss_kib(pid)));
        }
    }
    println!(
        "load: {} warm-up + {} sequential calls; closed loop at c = {:?} for {:.1} s each after {:.0} s warm-up; latency in the client, CPU and RSS of the gateway process",
        options.warmup,
        options.calls,
        options.concurrency,
        options.duration.as_secs_f64(),
        CONC_WARMUP.as_secs_f64()
    );
    println!();

    let mut phases = Vec::new();
    for &variant in &options.variants {
        phases.push(sequential(&target, variant, &arguments, options.warmup, options.calls).await?);
        for &c in &options.concurrency {
            let label = format!("c={c}");
            phases.push(
                closed_loop(&target, variant, &arguments, c, options.duration, &label).await?,
            );
        }
    }
    if let Some(soak) = options.soak {
        let c = options.concurrency.iter().copied().max().unwrap_or(64);
        let label = format!("c={c} {:.0}s", soak.as_secs_f64());
        phases.push(closed_loop(&target, Variant::Legacy, &arguments, c, soak, &label).await?);
    }
    print_phases(&phases);
    if let Some(pid) = target.pid {
        tokio::time::sleep(Duration::from_secs(2)).await;
        println!("RSS 2 s after the load: {} MiB", mib(rss_kib(pid)));
    }
    let errors: u64 = phases.iter().map(|p| p.errors).sum();
    drop(launched);
    if errors > 0 && options.full {
        return Err(format!("{errors} calls failed").into());
    }
    Ok(())
}

fn main() -> BenchResult<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let options = Options::parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // The load runs in a spawned task, on a worker thread, as the clients of a real
    // service would.
    runtime.block_on(async { tokio::spawn(run(options)).await? })
}
