//! Query tools through the gateway: each action of a SQLite query backend on a
//! generated 100,000-row document table, called as an MCP tool (`tools/call` over
//! streamable HTTP with an rmcp client) on the real `loom mcp` binary, whose embedded
//! bus carries every call to the router and the query worker `docs_query` and back.
//!
//! What one full run does (`cargo bench -p loom-gateway --bench query_tools`):
//!
//! 1. **Data**, prepared once and cached under the target directory
//!    (`<target>/loom-bench/query-tools-<rows>/`): documents `0..rows` of the docman
//!    corpus generator (`loom-query/examples/gen_corpus`), loaded with `ingest` and
//!    `IngestOptions::from_config` and 8-dimensional embeddings from the loom-testkit LLM
//!    stand-in, exactly as `loom-query`'s backend bench (`benches/query.rs`) does, with the
//!    same `backend_config`. The cache is rebuilt when the generated corpus or the
//!    settings change (a hash of both is kept next to the database).
//! 2. A gateway config (`tools.queries`: `docs_search`, `docs_filter`, `docs_stats`,
//!    `docs_get`, `docs_vector_search` on that database, absolute paths; the embedding
//!    endpoint is a fresh stand-in in this process) and `loom mcp --config …
//!    --transport http --port <free>` (embedded bus).
//! 3. For each case (the backend bench's cases, same payloads): warm-up calls, then N
//!    sequential calls on one client → p50/p99/mean latency (request to checked result,
//!    in the client), the gateway's CPU time per call (user + system of the whole
//!    process, from `/proc/<pid>/stat`), calls/s; then the same N calls spread over 4
//!    concurrent clients (one MCP session each) → calls/s. Every answer must be a tool
//!    result that is not `isError` and carries `results` (`document` for get); failures
//!    are counted, and a full run with failures exits with an error.
//!
//! Clients speak the 2025-11-25 protocol (an `initialize` session) over one pooled
//! keep-alive HTTP connection each, as a long-lived MCP client does.
//!
//! Options (after `--`): a case filter (any word not starting with `-`: runs the cases
//! whose name contains it), `--loom PATH` (default: `$LOOM_BIN`, else `loom` next to
//! this bench's build directory, `$CARGO_TARGET_DIR/release/loom`,
//! `target/release/loom`), `--rows N`, `--calls N` (sequential calls of the cheap cases;
//! the expensive ones run fewer), `--keep-log`.
//!
//! Without `--bench` (as when `cargo test --all-targets` runs bench targets) it does a
//! quick smoke pass on 300 rows in a temporary directory, and skips when no `loom`
//! binary has been built.

// The table on stdout is what this binary is for.
#![allow(clippy::print_stdout, clippy::print_stderr)]

#[path = "../../loom-query/examples/gen_corpus/corpus.rs"]
mod corpus;

// Shared bench helpers; each bench uses only some of them.
#[allow(dead_code)]
mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use loom_query::{IngestOptions, IngestSource, QueryConfig, ingest};
use loom_testkit::LlmStandIn;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Map, Value, json};

use common::{
    BenchResult, Client, GatewayProcess, build_dir, clock_ticks_per_second, close, cpu_ticks,
    histogram, load_average, micros,
};

/// How long one call may take before it counts as an error.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a launched gateway may take to list its tools.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Concurrent clients in the throughput runs.
const CONCURRENCY: usize = 4;

/// Largest latency the histograms hold, in microseconds.
const MAX_LATENCY_US: u64 = 120_000_000;

/// Bumped when the way the cached database is built changes.
const CACHE_VERSION: u32 = 1;

/// The query entry's tool prefix.
const PREFIX: &str = "docs";

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

struct Options {
    full: bool,
    loom: Option<PathBuf>,
    rows: usize,
    calls: usize,
    filter: Option<String>,
    keep_log: bool,
}

impl Options {
    fn parse() -> BenchResult<Options> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let full = args.iter().any(|a| a == "--bench");
        let mut o = Options {
            full,
            loom: std::env::var_os("LOOM_BIN").map(PathBuf::from),
            rows: if full { 100_000 } else { 300 },
            calls: if full { 2_000 } else { 8 },
            filter: None,
            keep_log: false,
        };
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
                "--rows" => o.rows = value("--rows")?.parse()?,
                "--calls" => o.calls = value("--calls")?.parse()?,
                "--keep-log" => o.keep_log = true,
                // libtest-style flags cargo may pass: ignore.
                other if other.starts_with('-') => {}
                other if !other.is_empty() => o.filter = Some(other.to_owned()),
                _ => {}
            }
        }
        if o.rows == 0 || o.calls == 0 {
            return Err("--rows and --calls must be at least 1".into());
        }
        Ok(o)
    }

    /// The `loom` binary to launch: the option, then the build directory this bench was
    /// built into, then the usual release directories.
    fn loom_binary(&self) -> Option<PathBuf> {
        common::loom_binary(self.loom.as_deref())
    }
}

// ---------------------------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------------------------

/// The backend bench's `backend_config` (`loom-query/benches/query.rs`), on `db_path`,
/// embedding at `embed_url`.
fn backend_config(db_path: &Path, embed_url: &str) -> Map<String, Value> {
    let config = json!({
        "db_path": db_path.to_string_lossy(),
        "table_name": "documents",
        "result_columns": ["id", "title", "category", "year", "score", "tags"],
        "json_columns": ["tags"],
        "filter_fields": {
            "category": "category = ?",
            "min_year": "year >= ?",
            "min_score": "score >= ?",
            "has_attachment": "has_attachment = ?",
        },
        "stats_groups": ["category", "year"],
        "stats_aggregates": ["COUNT(*) AS record_count", "AVG(score) AS avg_score"],
        "embedding": {"provider": "openai", "url": embed_url, "model": "bench", "batch_size": 1000},
    });
    match config {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// FNV-1a, to notice a changed corpus generator or changed settings.
fn fnv1a(bytes: &[u8], mut h: u64) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// What the database was built from.
fn cache_key(rows: usize, jsonl: &str) -> String {
    let settings = Value::Object(backend_config(Path::new("documents.db"), "stand-in")).to_string();
    let h = fnv1a(
        settings.as_bytes(),
        fnv1a(jsonl.as_bytes(), 0xcbf2_9ce4_8422_2325),
    );
    format!("version {CACHE_VERSION}, rows {rows}, corpus+settings fnv1a {h:016x}\n")
}

/// What preparing the data did.
struct Prepared {
    db: PathBuf,
    rows: usize,
    built: Option<Duration>,
}

/// Builds the database in `dir` unless an up-to-date one is there.
async fn prepare(dir: &Path, rows: usize) -> BenchResult<Prepared> {
    std::fs::create_dir_all(dir)?;
    let db = dir.join("documents.db");
    let key_file = dir.join("documents.key");
    let jsonl_text = corpus::jsonl(rows);
    let key = cache_key(rows, &jsonl_text);
    if db.is_file() && std::fs::read_to_string(&key_file).is_ok_and(|k| k == key) {
        return Ok(Prepared {
            db,
            rows,
            built: None,
        });
    }
    let _ = std::fs::remove_file(&key_file);
    let partial = dir.join("documents.db.partial");
    for p in [&db, &partial] {
        let _ = std::fs::remove_file(p);
    }
    let jsonl = dir.join("documents.jsonl");
    std::fs::write(&jsonl, &jsonl_text)?;
    drop(jsonl_text);
    // A stand-in of its own, dropped with the 100,000 recorded embedding requests.
    let llm = LlmStandIn::start().await?;
    let config = QueryConfig::from_backend_config(&backend_config(&db, &llm.base_url()), dir)
        .map_err(|p| format!("{p:?}"))?;
    let started = Instant::now();
    let report = ingest(
        &partial,
        "documents",
        IngestSource::Jsonl(jsonl.clone()),
        IngestOptions::from_config(&config),
    )
    .await?;
    let built = started.elapsed();
    drop(llm);
    std::fs::rename(&partial, &db)?;
    std::fs::remove_file(&jsonl)?;
    std::fs::write(&key_file, key)?;
    Ok(Prepared {
        db,
        rows: report.rows,
        built: Some(built),
    })
}

/// YAML for `value`: mappings in block style, sequences of scalars in flow style,
/// strings double-quoted (JSON escapes are valid YAML).
fn yaml(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(m) => {
            for (k, v) in m {
                out.push_str(&pad);
                out.push_str(k);
                out.push(':');
                if matches!(v, Value::Object(_)) {
                    out.push('\n');
                    yaml(v, indent + 2, out);
                } else {
                    out.push(' ');
                    yaml(v, indent, out);
                }
            }
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(Value::to_string).collect();
            out.push('[');
            out.push_str(&items.join(", "));
            out.push_str("]\n");
        }
        scalar => {
            out.push_str(&scalar.to_string());
            out.push('\n');
        }
    }
}

/// Writes the gateway config: the five query tools on `db`.
fn write_gateway_config(dir: &Path, db: &Path, embed_url: &str) -> BenchResult<PathBuf> {
    let mut settings = String::new();
    yaml(
        &Value::Object(backend_config(db, embed_url)),
        8,
        &mut settings,
    );
    let text = format!(
        "# Written by crates/loom-gateway/benches/query_tools.rs.\n\
         name: querybench\n\
         description: Query tools over the generated document table.\n\
         tools:\n  \
           queries:\n    \
             - backend: sqlite\n      \
               name_prefix: {PREFIX}\n      \
               actions: [search, filter, stats, get, vector_search]\n      \
               backend_config:\n{settings}"
    );
    let path = dir.join("mcp.yaml");
    std::fs::write(&path, text)?;
    Ok(path)
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

/// An `initialize` session over a pooled (keep-alive) HTTP client.
async fn connect(url: &str) -> BenchResult<Client> {
    let http = reqwest013::Client::builder().build()?;
    let transport = StreamableHttpClientTransport::with_client(
        http,
        StreamableHttpClientTransportConfig::with_uri(url.to_owned()),
    );
    let client = tokio::time::timeout(CALL_TIMEOUT, ().serve(transport))
        .await
        .map_err(|_| "initialize timed out")??;
    Ok(client)
}

/// One `tools/call`, checked: an error when it fails, times out, is a tool error or
/// lacks `expect`.
async fn call(
    client: &Client,
    tool: &str,
    arguments: Map<String, Value>,
    expect: &str,
) -> Result<(), String> {
    let params = CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments);
    let result = tokio::time::timeout(CALL_TIMEOUT, client.call_tool(params))
        .await
        .map_err(|_| "timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    check(&result, expect)
}

fn check(result: &CallToolResult, expect: &str) -> Result<(), String> {
    if result.is_error == Some(true) {
        return Err(format!("isError: {:?}", result.content.first()));
    }
    match &result.structured_content {
        Some(Value::Object(o)) if o.contains_key(expect) => Ok(()),
        other => Err(format!(
            "unexpected result: {}",
            other
                .as_ref()
                .map_or_else(|| "none".to_owned(), Value::to_string)
                .chars()
                .take(300)
                .collect::<String>()
        )),
    }
}

/// Waits until the gateway lists `docs_get`.
async fn wait_ready(gateway: &GatewayProcess) -> BenchResult<Duration> {
    let started = Instant::now();
    let want = format!("{PREFIX}_get");
    loop {
        if started.elapsed() > STARTUP_TIMEOUT {
            return Err(format!(
                "the gateway did not list its tools within {STARTUP_TIMEOUT:?}; see {}",
                gateway.log.display()
            )
            .into());
        }
        let listed = async {
            let client = connect(&gateway.url()).await?;
            let tools = client.list_all_tools().await;
            close(client).await;
            BenchResult::Ok(tools?)
        };
        match tokio::time::timeout(Duration::from_secs(5), listed).await {
            Ok(Ok(tools)) if tools.iter().any(|t| t.name == want.as_str()) => {
                return Ok(started.elapsed());
            }
            Ok(Ok(_)) => return Err(format!("the gateway does not offer {want}").into()),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------

/// Builds the arguments of call `i`.
type Payload = Arc<dyn Fn(usize) -> Map<String, Value> + Send + Sync>;

/// One measured case.
struct Case {
    name: &'static str,
    action: &'static str,
    payload: Payload,
    calls: usize,
}

impl Case {
    fn tool(&self) -> String {
        format!("{PREFIX}_{}", self.action)
    }

    /// The key every good answer carries.
    fn expect(&self) -> &'static str {
        if self.action == "get" {
            "document"
        } else {
            "results"
        }
    }
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn payload(f: impl Fn(usize) -> Value + Send + Sync + 'static) -> Payload {
    Arc::new(move |i| object(f(i)))
}

/// The backend bench's cases and payloads; `calls` for the cheap ones, fewer for the
/// expensive ones (so that a full run takes minutes, not an hour, on a shared machine).
fn cases(rows: usize, calls: usize) -> Vec<Case> {
    let topics: Arc<Vec<&'static str>> = Arc::new(
        corpus::CATEGORIES
            .iter()
            .flat_map(|(_, t)| t.iter().copied())
            .collect(),
    );
    let categories: Arc<Vec<&'static str>> =
        Arc::new(corpus::CATEGORIES.iter().map(|(c, _)| *c).collect());
    let fewer = |n: usize| (calls / n).max(2);
    let year = |i: usize| corpus::FIRST_YEAR + (i % 11) as i64;
    vec![
        Case {
            name: "get (random id)",
            action: "get",
            payload: payload(move |i| json!({"id": corpus::id((i * 7919) % rows)})),
            calls,
        },
        Case {
            name: "filter (category)",
            action: "filter",
            payload: {
                let categories = categories.clone();
                payload(move |i| json!({"category": categories[i % categories.len()]}))
            },
            calls,
        },
        Case {
            name: "filter (category + min_year)",
            action: "filter",
            payload: {
                let categories = categories.clone();
                payload(
                    move |i| json!({"category": categories[i % categories.len()], "min_year": year(i)}),
                )
            },
            calls,
        },
        Case {
            name: "filter (min_score 0.95)",
            action: "filter",
            payload: payload(|_| json!({"min_score": 0.95})),
            calls,
        },
        Case {
            name: "filter (attachment + year)",
            action: "filter",
            payload: payload(move |i| json!({"has_attachment": true, "min_year": year(i)})),
            calls,
        },
        Case {
            name: "search (topic word, ~8% of rows)",
            action: "search",
            payload: {
                let topics = topics.clone();
                payload(move |i| json!({"query": topics[i % topics.len()]}))
            },
            calls: fewer(2),
        },
        Case {
            name: "search (two topic words)",
            action: "search",
            payload: {
                let topics = topics.clone();
                payload(
                    move |i| json!({"query": format!("{} {}", topics[i % topics.len()], topics[(i * 31 + 7) % topics.len()])}),
                )
            },
            calls: fewer(5),
        },
        Case {
            name: "search (codename, ~0.2% of rows)",
            action: "search",
            payload: payload(|i| json!({"query": corpus::codename((i * 13) % corpus::CODENAMES)})),
            calls,
        },
        Case {
            name: "search (no match)",
            action: "search",
            payload: payload(|_| json!({"query": "zebra"})),
            calls,
        },
        Case {
            name: "stats (category, year)",
            action: "stats",
            payload: payload(|i| json!({"group_by": if i % 2 == 0 { "category" } else { "year" }})),
            calls: fewer(10),
        },
        Case {
            name: "vector_search (limit 5)",
            action: "vector_search",
            payload: {
                let topics = topics.clone();
                payload(move |i| json!({"query": topics[i % topics.len()]}))
            },
            calls: fewer(10),
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// Measurements
// ---------------------------------------------------------------------------------------------

/// What one case measured.
struct Row {
    hist: Histogram<u64>,
    ok: usize,
    errors: usize,
    first_error: Option<String>,
    sequential_per_s: f64,
    concurrent_per_s: f64,
    gateway_cpu: Option<Duration>,
    gateway_cpu_concurrent: Option<Duration>,
    bench_cpu: Option<Duration>,
}

struct Cpu {
    gateway: String,
    ticks_per_s: u64,
}

impl Cpu {
    fn now(&self) -> (Option<u64>, Option<u64>) {
        (cpu_ticks(&self.gateway), cpu_ticks("self"))
    }

    fn per_call(&self, before: Option<u64>, after: Option<u64>, calls: usize) -> Option<Duration> {
        let ticks = after?.checked_sub(before?)?;
        if calls == 0 {
            return None;
        }
        Some(Duration::from_secs_f64(
            ticks as f64 / self.ticks_per_s as f64 / calls as f64,
        ))
    }
}

async fn measure(
    case: &Case,
    seq: &Client,
    clients: &[Arc<Client>],
    cpu: &Cpu,
) -> BenchResult<Row> {
    let tool = case.tool();
    let expect = case.expect();
    let mut errors = 0;
    let mut first_error = None;
    // Warm up caches, prepared statements and the HTTP connection.
    for i in 0..case.calls.min(50) {
        if let Err(e) = call(seq, &tool, (case.payload)(i), expect).await {
            errors += 1;
            first_error.get_or_insert(e);
        }
    }
    let mut hist = histogram(MAX_LATENCY_US);
    let mut ok = 0;
    let (gw_before, self_before) = cpu.now();
    let started = Instant::now();
    for i in 0..case.calls {
        let t = Instant::now();
        match call(seq, &tool, (case.payload)(i), expect).await {
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
    let elapsed = started.elapsed();
    let (gw_after, self_after) = cpu.now();
    let sequential_per_s = ok as f64 / elapsed.as_secs_f64();

    let (gw_before_c, _) = cpu.now();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients.len());
    for (c, client) in clients.iter().enumerate() {
        let client = Arc::clone(client);
        let payload = Arc::clone(&case.payload);
        let tool = tool.clone();
        let calls = case.calls;
        let n = clients.len();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut errors, mut first_error) = (0usize, 0usize, None);
            for i in (c..calls).step_by(n) {
                match call(&client, &tool, payload(i), expect).await {
                    Ok(()) => ok += 1,
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(e);
                    }
                }
            }
            (ok, errors, first_error)
        }));
    }
    let mut concurrent_ok = 0;
    for task in tasks {
        let (o, e, f) = task.await?;
        concurrent_ok += o;
        errors += e;
        if first_error.is_none() {
            first_error = f;
        }
    }
    let concurrent_per_s = concurrent_ok as f64 / started.elapsed().as_secs_f64();
    let (gw_after_c, _) = cpu.now();
    Ok(Row {
        hist,
        ok,
        errors,
        first_error,
        sequential_per_s,
        concurrent_per_s,
        gateway_cpu: cpu.per_call(gw_before, gw_after, ok),
        gateway_cpu_concurrent: cpu.per_call(gw_before_c, gw_after_c, concurrent_ok),
        bench_cpu: cpu.per_call(self_before, self_after, ok),
    })
}

fn format_us(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

fn format_cpu(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_owned(), |d| format_us(d.as_secs_f64() * 1e6))
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

async fn run(options: Options) -> BenchResult<()> {
    let Some(loom) = options.loom_binary() else {
        let msg =
            "no `loom` binary: run `cargo build --release -p loom-cli` first (or pass --loom PATH)";
        if options.full {
            return Err(msg.into());
        }
        println!("query_tools bench smoke pass skipped: {msg}");
        return Ok(());
    };
    let scratch = tempfile::tempdir()?;
    let data_dir = if options.full {
        build_dir()
            .and_then(|d| d.parent().map(Path::to_path_buf))
            .unwrap_or_else(std::env::temp_dir)
            .join(format!("loom-bench/query-tools-{}", options.rows))
    } else {
        scratch.path().join("data")
    };
    let load_before = load_average();
    let prepared = prepare(&data_dir, options.rows).await?;
    let db_size = std::fs::metadata(&prepared.db)?.len();
    let llm = LlmStandIn::start().await?;
    let config = write_gateway_config(scratch.path(), &prepared.db, &llm.base_url())?;
    let gateway = GatewayProcess::launch(
        &loom,
        &config,
        scratch.path().join("gateway.log"),
        // The workshop database and session markers go to the temporary folder.
        &[("LOOM_HOME", scratch.path())],
    )?;
    let ready = wait_ready(&gateway).await?;
    let cpu = Cpu {
        gateway: gateway.pid().to_string(),
        ticks_per_s: clock_ticks_per_second(),
    };

    println!(
        "loom-gateway query tools: {} mcp --transport http (embedded bus: router + query worker docs_query), SQLite, {} rows ({} MB database, {})",
        loom.display(),
        prepared.rows,
        db_size / 1_000_000,
        match prepared.built {
            Some(t) => format!(
                "built in {:.1} s, embeddings from the loom-testkit stand-in included",
                t.as_secs_f64()
            ),
            None => format!("cached in {}", data_dir.display()),
        }
    );
    println!(
        "gateway ready {:.0} ms after launch; rmcp client, 2025-11-25 session, pooled HTTP connection; {} concurrent clients in the last column",
        ready.as_secs_f64() * 1e3,
        CONCURRENCY
    );
    println!(
        "machine: {} cores, load average {load_before} at the start",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "latency in the client (request to checked result); gw CPU/call: user + system time of the gateway process per sequential call; bench CPU/call: this process (client, and the embedding stand-in for vector_search)"
    );
    println!(
        "{:<34} {:>6} {:>9} {:>9} {:>9} {:>11} {:>11} {:>9} {:>11} {:>6}",
        "tool call (payloads)",
        "calls",
        "p50",
        "p99",
        "mean",
        "gw CPU/call",
        "bench CPU",
        "calls/s",
        "4 clients/s",
        "errors"
    );

    let seq = connect(&gateway.url()).await?;
    let mut clients = Vec::with_capacity(CONCURRENCY);
    for _ in 0..CONCURRENCY {
        clients.push(Arc::new(connect(&gateway.url()).await?));
    }
    let mut errors = 0;
    let mut gateway_cpu_concurrent = Vec::new();
    for case in cases(prepared.rows, options.calls) {
        if options
            .filter
            .as_deref()
            .is_some_and(|f| !case.name.contains(f))
        {
            continue;
        }
        let row = measure(&case, &seq, &clients, &cpu).await?;
        println!(
            "{:<34} {:>6} {:>9} {:>9} {:>9} {:>11} {:>11} {:>9.0} {:>11.0} {:>6}",
            case.name,
            row.ok,
            format_us(row.hist.value_at_quantile(0.50) as f64),
            format_us(row.hist.value_at_quantile(0.99) as f64),
            format_us(row.hist.mean()),
            format_cpu(row.gateway_cpu),
            format_cpu(row.bench_cpu),
            row.sequential_per_s,
            row.concurrent_per_s,
            row.errors
        );
        if let Some(e) = &row.first_error {
            println!("  first error: {e}");
        }
        gateway_cpu_concurrent.push((case.name, row.gateway_cpu_concurrent));
        errors += row.errors;
    }
    println!(
        "gw CPU/call with {CONCURRENCY} clients: {}",
        gateway_cpu_concurrent
            .iter()
            .map(|(n, c)| format!("{} {}", n.split(' ').next().unwrap_or(n), format_cpu(*c)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("load average at the end: {}", load_average());
    close(seq).await;
    for client in clients {
        if let Ok(client) = Arc::try_unwrap(client) {
            close(client).await;
        }
    }
    if options.keep_log {
        let kept = std::env::temp_dir().join("query_tools-gateway.log");
        std::fs::copy(&gateway.log, &kept)?;
        println!("gateway log kept in {}", kept.display());
    }
    drop(gateway);
    drop(llm);
    if !options.full {
        println!(
            "query_tools bench: smoke pass only; run `cargo bench -p loom-gateway --bench query_tools` to measure."
        );
    }
    if errors > 0 {
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
    // The clients run in a spawned task, on a worker thread, as a real client would.
    runtime.block_on(async { tokio::spawn(run(options)).await? })
}
