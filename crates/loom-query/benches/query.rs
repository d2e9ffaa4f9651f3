//! Query backend benchmark: each action of the SQLite backend on a generated
//! 100,000-row document table, called through `QueryBackend::execute` (payload
//! validation, one `spawn_blocking` per call, JSON rows), printing p50/p99 latency and
//! queries per second, sequentially and with 4 concurrent callers, and the process CPU
//! time per sequential query.
//!
//! `cargo bench -p loom-query --bench query` runs the full measurement. Without
//! `--bench` (as under `cargo test --all-targets`) it does a quick smoke pass on 2,000
//! rows. `cargo bench -p loom-query --bench query -- search` runs the actions whose name
//! contains the filter.
//!
//! Setup: the rows come from the docman corpus generator (`examples/gen_corpus`), are
//! written as JSONL and loaded with `ingest` using `IngestOptions::from_config` (FTS5 over
//! `full_text, summary`, indexes on filter and stats columns) and embeddings from the
//! loom-testkit LLM stand-in (8 dimensions), which also embeds `vector_search` queries.
//! The ingest time is reported too.

// The table on stdout is what this binary is for.
#![allow(
    clippy::print_stdout,
    clippy::unwrap_used,
    missing_docs,
    unreachable_pub
)]

#[path = "../examples/gen_corpus/corpus.rs"]
mod corpus;

use std::sync::Arc;
use std::time::{Duration, Instant};

use loom_core::config::QueryAction;
use loom_query::{IngestOptions, IngestSource, QueryBackend, QueryConfig, SqliteBackend, ingest};
use loom_testkit::LlmStandIn;
use serde_json::{Map, Value, json};

/// Any single call taking longer than this aborts the benchmark.
const OP_TIMEOUT: Duration = Duration::from_secs(30);
/// Concurrent callers in the throughput runs.
const CONCURRENCY: usize = 4;

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Builds the payload of call `i`.
type Payload = Box<dyn Fn(usize) -> Value + Send + Sync>;

/// One measured case: name, action, payloads, iterations.
type Case = (&'static str, QueryAction, Payload, usize);

struct Plan {
    rows: usize,
    iterations: usize,
    vector_iterations: usize,
    filter: Option<String>,
    full: bool,
}

fn main() -> BenchResult<()> {
    let full = std::env::args().any(|a| a == "--bench");
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .filter(|a| !a.is_empty());
    let plan = if full {
        Plan {
            rows: 100_000,
            iterations: 2_000,
            vector_iterations: 200,
            filter,
            full,
        }
    } else {
        Plan {
            rows: 2_000,
            iterations: 20,
            vector_iterations: 5,
            filter,
            full,
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(plan))
}

async fn run(plan: Plan) -> BenchResult<()> {
    let dir = tempfile::tempdir()?;
    let jsonl = dir.path().join("documents.jsonl");
    std::fs::write(&jsonl, corpus::jsonl(plan.rows))?;
    let llm = LlmStandIn::start().await?;
    let backend_config = json!({
        "db_path": "documents.db",
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
        "embedding": {"provider": "openai", "url": llm.base_url(), "model": "bench", "batch_size": 1000},
    });
    let config = QueryConfig::from_backend_config(backend_config.as_object().unwrap(), dir.path())
        .map_err(|p| format!("{p:?}"))?;
    let started = Instant::now();
    let report = ingest(
        &config.db_path,
        "documents",
        IngestSource::Jsonl(jsonl),
        IngestOptions::from_config(&config),
    )
    .await?;
    let ingest_time = started.elapsed();
    let db_size = std::fs::metadata(&config.db_path)?.len();
    let backend: Arc<dyn QueryBackend> = Arc::new(SqliteBackend::open(config).await?);

    println!(
        "loom-query: SQLite backend, {} rows ({} MB database), through QueryBackend::execute, tokio multi-thread runtime (2 workers)",
        report.rows,
        db_size / 1_000_000
    );
    println!(
        "ingest: {:.1} s ({:.0} rows/s, embeddings from the loom-testkit stand-in included)",
        ingest_time.as_secs_f64(),
        report.rows as f64 / ingest_time.as_secs_f64()
    );
    println!(
        "{:<34} {:>9} {:>9} {:>10} {:>10} {:>12}",
        "action (payloads)", "p50", "p99", "cpu/query", "queries/s", "4 callers/s"
    );
    let topics: Vec<&str> = corpus::CATEGORIES
        .iter()
        .flat_map(|(_, t)| t.iter().copied())
        .collect();
    let categories: Vec<&str> = corpus::CATEGORIES.iter().map(|(c, _)| *c).collect();
    let rows = plan.rows;
    let cases: Vec<Case> = vec![
        (
            "get (random id)",
            QueryAction::Get,
            Box::new(move |i| json!({"id": corpus::id((i * 7919) % rows)})),
            plan.iterations,
        ),
        (
            "filter (category)",
            QueryAction::Filter,
            {
                let categories = categories.clone();
                Box::new(move |i| json!({"category": categories[i % categories.len()]}))
            },
            plan.iterations,
        ),
        (
            "filter (category + min_year)",
            QueryAction::Filter,
            {
                let categories = categories.clone();
                Box::new(
                    move |i| json!({"category": categories[i % categories.len()], "min_year": 2015 + (i % 11) as i64}),
                )
            },
            plan.iterations,
        ),
        (
            "filter (min_score 0.95)",
            QueryAction::Filter,
            Box::new(|_| json!({"min_score": 0.95})),
            plan.iterations,
        ),
        (
            "filter (attachment + year)",
            QueryAction::Filter,
            Box::new(|i| json!({"has_attachment": true, "min_year": 2015 + (i % 11) as i64})),
            plan.iterations,
        ),
        (
            "search (topic word, ~8% of rows)",
            QueryAction::Search,
            {
                let topics = topics.clone();
                Box::new(move |i| json!({"query": topics[i % topics.len()]}))
            },
            plan.iterations,
        ),
        (
            "search (two topic words)",
            QueryAction::Search,
            {
                let topics = topics.clone();
                Box::new(
                    move |i| json!({"query": format!("{} {}", topics[i % topics.len()], topics[(i * 31 + 7) % topics.len()])}),
                )
            },
            plan.iterations,
        ),
        (
            "search (codename, ~0.2% of rows)",
            QueryAction::Search,
            Box::new(|i| json!({"query": corpus::codename((i * 13) % corpus::CODENAMES)})),
            plan.iterations,
        ),
        (
            "search (no match)",
            QueryAction::Search,
            Box::new(|_| json!({"query": "zebra"})),
            plan.iterations,
        ),
        (
            "stats (category, year)",
            QueryAction::Stats,
            Box::new(|i| json!({"group_by": if i % 2 == 0 { "category" } else { "year" }})),
            plan.iterations / 10,
        ),
        (
            "vector_search (limit 5)",
            QueryAction::VectorSearch,
            {
                let topics = topics.clone();
                Box::new(move |i| json!({"query": topics[i % topics.len()]}))
            },
            plan.vector_iterations,
        ),
    ];
    for (name, action, payload, iterations) in cases {
        if plan.filter.as_deref().is_some_and(|f| !name.contains(f)) {
            continue;
        }
        let payload: Arc<dyn Fn(usize) -> Value + Send + Sync> = Arc::from(payload);
        // Warm up caches and prepared statements.
        for i in 0..iterations.min(50) {
            call(&*backend, action, &payload(i)).await?;
        }
        let mut latencies = Vec::with_capacity(iterations);
        let cpu_before = cpu_time();
        let started = Instant::now();
        for i in 0..iterations {
            let t = Instant::now();
            call(&*backend, action, &payload(i)).await?;
            latencies.push(t.elapsed());
        }
        let sequential = iterations as f64 / started.elapsed().as_secs_f64();
        let cpu = cpu_time()
            .zip(cpu_before)
            .map(|(after, before)| (after - before) / iterations as u32);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..CONCURRENCY {
            let backend = Arc::clone(&backend);
            let payload = Arc::clone(&payload);
            tasks.push(tokio::spawn(async move {
                for i in (c..iterations).step_by(CONCURRENCY) {
                    call(&*backend, action, &payload(i)).await?;
                }
                BenchResult::Ok(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        let concurrent = iterations as f64 / started.elapsed().as_secs_f64();
        latencies.sort_unstable();
        let pct =
            |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        println!(
            "{:<34} {:>9} {:>9} {:>10} {:>10.0} {:>12.0}",
            name,
            format_duration(pct(0.50)),
            format_duration(pct(0.99)),
            cpu.map_or_else(|| "-".to_owned(), format_duration),
            sequential,
            concurrent
        );
    }
    if !plan.full {
        println!(
            "loom-query bench: smoke pass only; run `cargo bench -p loom-query --bench query` to measure."
        );
    }
    drop(llm);
    Ok(())
}

async fn call(
    backend: &dyn QueryBackend,
    action: QueryAction,
    payload: &Value,
) -> BenchResult<Map<String, Value>> {
    let args = payload.as_object().cloned().unwrap_or_default();
    let out = tokio::time::timeout(OP_TIMEOUT, backend.execute(action, &args)).await??;
    Ok(out)
}

/// CPU time (user + system) of this process so far, from `/proc/self/stat` (Linux; 10 ms
/// ticks, so only meaningful over many queries). On a shared machine this shows what a
/// query costs regardless of how much of the CPU the process got.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may contain spaces) start at state (field 3).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

fn format_duration(d: Duration) -> String {
    let micros = d.as_secs_f64() * 1e6;
    if micros < 1000.0 {
        format!("{micros:.0} µs")
    } else {
        format!("{:.2} ms", micros / 1000.0)
    }
}
