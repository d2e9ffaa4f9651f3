//! Mesh benchmarks: tasks through router + processor worker, and goals through a
//! 3-stage pipeline, with 1 KiB payloads, on `MemoryBus` and on `NatsBus` (against a
//! nats-server started through loom-testkit), printing p50/p99 latency and rates.
//!
//! `cargo bench -p loom-mesh --bench mesh` runs the full measurement. Without `--bench`
//! (as when `cargo test --all-targets` runs bench targets) it does a quick smoke pass
//! only. `cargo bench -p loom-mesh --bench mesh -- nats/tasks` runs the keys containing
//! the filter (keys are printed in the table's last column).
//!
//! Topology: the router and every worker (and the pipeline orchestrator) run as the
//! library starts them (`spawn_router`, `spawn_worker`, `spawn_pipeline`), on a tokio
//! multi-thread runtime with 2 workers. On NATS each component has its own connection,
//! as separate processes would. Logging is on at `info` (or `RUST_LOG`) with the CLI's
//! formatter writing to a sink, so the mesh pays what `loom up` pays for its logs.
//!
//! The task client subscribes once to `loom.results.bench`, publishes `TaskMessage`s
//! (parent `bench`) to `loom.tasks.incoming` and matches results by `task_id`. Task bodies
//! are the exact bytes `serde_json` gives for the message, built from a template (the
//! client is not what is measured).

// The table on stdout is what this binary is for.
#![allow(clippy::print_stdout)]

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use hdrhistogram::Histogram;
use loom_bus::{Bus, MemoryBus, NatsBus, NatsOptions, Subscription};
use loom_core::config::{RouterRules, WorkerConfig, load_pipeline, load_worker};
use loom_core::message::{JsonObject, OrchestratorGoal, TaskMessage, TaskStatus};
use loom_core::subject::TASKS_INCOMING;
use loom_mesh::actor::ActorHandle;
use loom_mesh::pipeline::{PipelineOptions, spawn_pipeline, submit_goal};
use loom_mesh::processors::build_processor;
use loom_mesh::router::spawn_router;
use loom_mesh::worker::{ServeTiers, WorkerHandle, spawn_worker};
use loom_testkit::{NatsServer, TempWorkspace};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// Size of the `text` every task and goal carries.
const PAYLOAD_BYTES: usize = 1024;

/// Outstanding tasks in the throughput runs.
const WINDOWS: [usize; 3] = [64, 256, 1024];

/// Worker `max_concurrent` values tried in the task runs (8 is `loom up`'s default).
const WORKER_CONCURRENCY: [usize; 2] = [1, 8];

/// Concurrent goal clients in the pipeline throughput runs.
const GOAL_CLIENTS: [usize; 2] = [16, 64];

/// Workers' `max_concurrent` in the pipeline runs (`loom up`'s default).
const PIPELINE_WORKER_CONCURRENCY: usize = 8;

/// Where results come back: `loom.results.{RESULTS_PARENT}`.
const RESULTS_PARENT: &str = "bench";

/// How long any single operation may take before the benchmark aborts.
const OP_TIMEOUT: Duration = Duration::from_secs(30);

/// Each measurement runs this many times in a full run; the table shows the median
/// rate and the range.
const REPEATS: usize = 3;

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// How many operations each run performs.
#[derive(Clone, Copy)]
struct Counts {
    warmup: usize,
    sequential: usize,
    windowed: usize,
    goals_sequential: usize,
    goals_concurrent: usize,
}

impl Counts {
    const MEMORY: Self = Self {
        warmup: 2_000,
        sequential: 20_000,
        windowed: 200_000,
        goals_sequential: 2_000,
        goals_concurrent: 20_000,
    };
    const NATS: Self = Self {
        warmup: 1_000,
        sequential: 5_000,
        windowed: 100_000,
        goals_sequential: 1_000,
        goals_concurrent: 5_000,
    };
    const SMOKE: Self = Self {
        warmup: 10,
        sequential: 50,
        windowed: 1_100,
        goals_sequential: 5,
        goals_concurrent: 64,
    };
}

/// Which benchmarks to run and how often.
struct Plan {
    full: bool,
    /// Only keys containing the filter run.
    filter: Option<String>,
}

impl Plan {
    fn wants(&self, key: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| key.contains(f))
    }

    /// Whether any key starting with `prefix` may be wanted.
    fn wants_prefix(&self, prefix: &str) -> bool {
        self.filter
            .as_deref()
            .is_none_or(|f| !f.contains('/') || f.starts_with(prefix) || prefix.starts_with(f))
    }

    fn repeats(&self) -> usize {
        if self.full { REPEATS } else { 1 }
    }
}

/// One measured run: latencies (ns), the rate, and the CPU time spent per operation.
struct Run {
    hist: Histogram<u64>,
    rate: f64,
    cpu: CpuPerOp,
}

/// CPU time per operation (task or goal) of this process (mesh and client) and of
/// nats-server, in µs; from `/proc`, so steadier than rates on a shared machine.
#[derive(Clone, Copy, Default)]
struct CpuPerOp {
    process: Option<f64>,
    server: Option<f64>,
}

/// Reads the CPU time of this process and of the nats-server around a run.
#[derive(Clone, Copy)]
struct CpuMeter {
    server_pid: Option<u32>,
}

/// CPU times at the start of a run.
struct CpuMark {
    process: Option<Duration>,
    server: Option<Duration>,
}

impl CpuMeter {
    fn start(&self) -> CpuMark {
        CpuMark {
            process: cpu_time("self"),
            server: self.server_pid.and_then(|pid| cpu_time(&pid.to_string())),
        }
    }

    fn per_op(&self, mark: &CpuMark, ops: usize) -> CpuPerOp {
        let per_op = |before: Option<Duration>, after: Option<Duration>| {
            let spent = after?.checked_sub(before?)?;
            Some(spent.as_secs_f64() * 1e6 / ops.max(1) as f64)
        };
        CpuPerOp {
            process: per_op(mark.process, cpu_time("self")),
            server: per_op(
                mark.server,
                self.server_pid.and_then(|pid| cpu_time(&pid.to_string())),
            ),
        }
    }
}

/// User + system CPU time of `/proc/{pid}` (`utime` and `stime`, in clock ticks of
/// 1/100 s, Linux's USER_HZ).
fn cpu_time(pid: &str) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after it are plain.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// The pid of the nats-server listening on `port` (as loom-testkit starts it).
fn nats_server_pid(port: u16) -> Option<u32> {
    let port = port.to_string();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
        let is_server = args
            .first()
            .is_some_and(|arg0| arg0.ends_with(b"nats-server"));
        let on_port = args
            .windows(2)
            .any(|w| w[0] == b"-p" && w[1] == port.as_bytes());
        if is_server && on_port {
            return Some(pid);
        }
    }
    None
}

/// One line of the results table.
struct Row {
    bus: &'static str,
    what: String,
    in_flight: String,
    key: String,
    runs: Vec<Run>,
}

fn main() -> BenchResult<()> {
    let plan = Plan {
        full: std::env::args().any(|arg| arg == "--bench"),
        filter: std::env::args().skip(1).find(|arg| !arg.starts_with("--")),
    };
    install_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let plan = Arc::new(plan);
    let full = plan.full;
    // Everything runs in a spawned task on a worker thread, as Loom's actors do; the
    // thread that calls `block_on` is not a worker, and waking it costs a futex call.
    let rows = runtime.block_on(runtime.spawn(async move {
        let plan = &*plan;
        let configs = Configs::load()?;
        let mut rows = Vec::new();
        if plan.wants_prefix("memory/") {
            let counts = if plan.full {
                Counts::MEMORY
            } else {
                Counts::SMOKE
            };
            let kind = BusKind::Memory(Arc::new(MemoryBus::new()));
            let meter = CpuMeter { server_pid: None };
            rows.extend(run_suite(plan, &kind, &configs, counts, meter).await?);
        }
        if plan.wants_prefix("nats/") {
            let server = NatsServer::start()?;
            let counts = if plan.full {
                Counts::NATS
            } else {
                Counts::SMOKE
            };
            let kind = BusKind::Nats(server.url());
            let meter = CpuMeter {
                server_pid: nats_server_pid(server.port()),
            };
            rows.extend(run_suite(plan, &kind, &configs, counts, meter).await?);
            drop(server);
        }
        BenchResult::Ok(rows)
    }))??;
    print_table(&rows, full);
    Ok(())
}

/// The subscriber `loom up` installs (info, or `RUST_LOG`), writing to a sink: the mesh
/// formats its log lines as it would in production, without the terminal's cost.
fn install_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::sink)
        .with_ansi(false)
        .with_target(false)
        .try_init();
}

/// How components reach each other.
enum BusKind {
    /// One in-process bus shared by everyone.
    Memory(Arc<MemoryBus>),
    /// A nats-server; every component connects on its own.
    Nats(String),
}

impl BusKind {
    fn name(&self) -> &'static str {
        match self {
            BusKind::Memory(_) => "memory",
            BusKind::Nats(_) => "nats",
        }
    }

    /// A handle for one component: the shared bus, or a new NATS connection.
    async fn connect(&self) -> BenchResult<Arc<dyn Bus>> {
        Ok(match self {
            BusKind::Memory(bus) => bus.clone(),
            BusKind::Nats(url) => Arc::new(NatsBus::connect(NatsOptions::new(url)).await?),
        })
    }
}

/// The worker and pipeline configs, read as `loom` reads them.
struct Configs {
    text_stats: WorkerConfig,
    echo: WorkerConfig,
    /// Holds the pipeline YAML files.
    _dir: TempWorkspace,
    chain: PathBuf,
    fanout: PathBuf,
}

impl Configs {
    fn load() -> BenchResult<Self> {
        let workers = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/docman/workers");
        let text_stats = load_worker(&workers.join("text_stats.yaml"))?;
        let echo = load_worker(&workers.join("echo.yaml"))?;
        let dir = TempWorkspace::new()?;
        let chain = dir.write(
            "bench_chain.yaml",
            "name: bench_chain\n\
             timeout_seconds: 30\n\
             max_concurrent_goals: 256\n\
             pipeline_stages:\n\
             \x20 - name: stats\n\
             \x20   worker_type: text_stats\n\
             \x20   input_mapping:\n\
             \x20     text: goal.context.text\n\
             \x20 - name: first\n\
             \x20   worker_type: echo\n\
             \x20   input_mapping:\n\
             \x20     reversed: stats.output.reversed\n\
             \x20     words: stats.output.word_count\n\
             \x20 - name: second\n\
             \x20   worker_type: echo\n\
             \x20   input_mapping:\n\
             \x20     text: first.output.reversed\n\
             \x20     words: first.output.words\n",
        )?;
        let fanout = dir.write(
            "bench_fanout.yaml",
            "name: bench_fanout\n\
             timeout_seconds: 30\n\
             max_concurrent_goals: 256\n\
             pipeline_stages:\n\
             \x20 - name: stats\n\
             \x20   worker_type: text_stats\n\
             \x20   input_mapping:\n\
             \x20     text: goal.context.text\n\
             \x20 - name: left\n\
             \x20   worker_type: echo\n\
             \x20   input_mapping:\n\
             \x20     reversed: stats.output.reversed\n\
             \x20 - name: right\n\
             \x20   worker_type: echo\n\
             \x20   input_mapping:\n\
             \x20     words: stats.output.word_count\n\
             \x20     text: goal.context.text\n",
        )?;
        Ok(Configs {
            text_stats,
            echo,
            _dir: dir,
            chain,
            fanout,
        })
    }
}

/// A text of exactly [`PAYLOAD_BYTES`] bytes: words of varied length.
fn payload_text() -> String {
    const WORDS: [&str; 8] = [
        "the", "quick", "brown", "fox", "jumps", "over", "the", "lazy",
    ];
    let mut text = String::with_capacity(PAYLOAD_BYTES + 8);
    let mut i = 0;
    while text.len() < PAYLOAD_BYTES {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(WORDS[i % WORDS.len()]);
        i += 1;
    }
    text.truncate(PAYLOAD_BYTES);
    text
}

async fn run_suite(
    plan: &Plan,
    kind: &BusKind,
    configs: &Configs,
    counts: Counts,
    meter: CpuMeter,
) -> BenchResult<Vec<Row>> {
    let name = kind.name();
    let mut rows = Vec::new();
    for max_concurrent in WORKER_CONCURRENCY {
        let prefix = format!("{name}/tasks-c{max_concurrent}");
        if !plan.wants_prefix(&prefix) {
            continue;
        }
        let seq_key = format!("{prefix}/seq");
        let window_keys: Vec<(usize, String)> = WINDOWS
            .iter()
            .map(|&w| (w, format!("{prefix}/w{w}")))
            .collect();
        // Sequential latency hardly depends on the worker's concurrency: run it once.
        let run_seq = max_concurrent == 1 && plan.wants(&seq_key);
        if !run_seq && !window_keys.iter().any(|(_, k)| plan.wants(k)) {
            continue;
        }
        let mut mesh = TaskMesh::start(kind, &configs.text_stats, max_concurrent, meter).await?;
        mesh.sequential(counts.warmup).await?;
        if run_seq {
            let mut runs = Vec::new();
            for _ in 0..plan.repeats() {
                runs.push(mesh.sequential(counts.sequential).await?);
            }
            rows.push(Row {
                bus: name,
                what: format!("task → router → text_stats (max_concurrent {max_concurrent})"),
                in_flight: "1".into(),
                key: seq_key,
                runs,
            });
        }
        for (window, key) in window_keys {
            if !plan.wants(&key) {
                continue;
            }
            let mut runs = Vec::new();
            for _ in 0..plan.repeats() {
                runs.push(mesh.windowed(counts.windowed, window).await?);
            }
            rows.push(Row {
                bus: name,
                what: format!("task → router → text_stats (max_concurrent {max_concurrent})"),
                in_flight: window.to_string(),
                key,
                runs,
            });
        }
        mesh.stop().await;
    }

    for (pipeline, path) in [("chain", &configs.chain), ("fanout", &configs.fanout)] {
        let prefix = format!("{name}/goals-{pipeline}");
        if !plan.wants_prefix(&prefix) {
            continue;
        }
        let seq_key = format!("{prefix}/seq");
        let client_keys: Vec<(usize, String)> = GOAL_CLIENTS
            .iter()
            .map(|&c| (c, format!("{prefix}/c{c}")))
            .collect();
        if !plan.wants(&seq_key) && !client_keys.iter().any(|(_, k)| plan.wants(k)) {
            continue;
        }
        let what = match pipeline {
            "chain" => "goal: text_stats → echo → echo",
            _ => "goal: text_stats → (echo ∥ echo)",
        };
        let mesh = PipelineMesh::start(kind, configs, path, meter).await?;
        mesh.goals(counts.warmup.min(200), 1).await?;
        if plan.wants(&seq_key) {
            let mut runs = Vec::new();
            for _ in 0..plan.repeats() {
                runs.push(mesh.goals(counts.goals_sequential, 1).await?);
            }
            rows.push(Row {
                bus: name,
                what: what.into(),
                in_flight: "1".into(),
                key: seq_key,
                runs,
            });
        }
        for (clients, key) in client_keys {
            if !plan.wants(&key) {
                continue;
            }
            let mut runs = Vec::new();
            for _ in 0..plan.repeats() {
                runs.push(mesh.goals(counts.goals_concurrent, clients).await?);
            }
            rows.push(Row {
                bus: name,
                what: what.into(),
                in_flight: clients.to_string(),
                key,
                runs,
            });
        }
        mesh.stop().await;
    }
    Ok(rows)
}

// ---------------------------------------------------------------------------------------
// Tasks through router + worker
// ---------------------------------------------------------------------------------------

/// A router and one processor worker, and a client subscribed to its results.
struct TaskMesh {
    shutdown: CancellationToken,
    router: ActorHandle,
    worker: WorkerHandle,
    client: Arc<dyn Bus>,
    results: Subscription,
    template: TaskTemplate,
    /// Numbers each run, so a late result of an earlier run is never matched.
    run: u64,
    meter: CpuMeter,
}

impl TaskMesh {
    async fn start(
        kind: &BusKind,
        config: &WorkerConfig,
        max_concurrent: usize,
        meter: CpuMeter,
    ) -> BenchResult<Self> {
        let shutdown = CancellationToken::new();
        let router_bus = kind.connect().await?;
        let router =
            spawn_router(router_bus.clone(), RouterRules::default(), shutdown.clone()).await?;
        router_bus.flush().await?;
        let worker_bus = kind.connect().await?;
        let processor = build_processor(config)?;
        let worker = spawn_worker(
            worker_bus.clone(),
            config.clone(),
            processor,
            ServeTiers::All,
            max_concurrent,
            shutdown.clone(),
        )
        .await?;
        worker_bus.flush().await?;
        let client = kind.connect().await?;
        let results = client
            .subscribe(&format!("loom.results.{RESULTS_PARENT}"), None)
            .await?;
        client.flush().await?;
        let mut payload = JsonObject::new();
        payload.insert("text".into(), Value::String(payload_text()));
        let task = TaskMessage::new(&config.name, payload).with_parent_task_id(RESULTS_PARENT);
        Ok(TaskMesh {
            shutdown,
            router,
            worker,
            client,
            results,
            template: TaskTemplate::new(&task)?,
            run: 0,
            meter,
        })
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.router.join().await;
        self.worker.join().await;
        // Dropping the handles closes NATS connections; the memory bus stays open.
    }

    /// One task at a time: publish, wait for its result.
    async fn sequential(&mut self, n: usize) -> BenchResult<Run> {
        self.run += 1;
        let run = self.run;
        let mut hist = histogram()?;
        let cpu = self.meter.start();
        let started = Instant::now();
        for seq in 0..n as u64 {
            let body = self.template.body(run, seq);
            let t0 = Instant::now();
            self.client.publish(TASKS_INCOMING, body).await?;
            loop {
                let message = tokio::time::timeout(OP_TIMEOUT, self.results.next())
                    .await
                    .map_err(|_| "no task result within the timeout")?
                    .ok_or("result subscription ended")?;
                if parse_result(&message.payload)? == Some((run, seq)) {
                    break;
                }
            }
            hist.saturating_record(nanos(t0.elapsed()));
        }
        Ok(Run {
            hist,
            rate: n as f64 / started.elapsed().as_secs_f64(),
            cpu: self.meter.per_op(&cpu, n),
        })
    }

    /// `n` tasks with at most `window` outstanding: a spawned sender publishes whenever
    /// a result frees a slot; this task collects results.
    async fn windowed(&mut self, n: usize, window: usize) -> BenchResult<Run> {
        self.run += 1;
        let run = self.run;
        let sent: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
        let slots = Arc::new(Semaphore::new(window));
        let cpu = self.meter.start();
        let base = Instant::now();
        let sender = {
            let sent = sent.clone();
            let slots = slots.clone();
            let client = self.client.clone();
            let template = self.template.clone();
            tokio::spawn(async move {
                for seq in 0..n {
                    slots.acquire().await?.forget();
                    let body = template.body(run, seq as u64);
                    sent[seq].store(nanos(base.elapsed()), Ordering::Relaxed);
                    client.publish(TASKS_INCOMING, body).await?;
                }
                BenchResult::Ok(())
            })
        };
        let mut hist = histogram()?;
        let mut received = 0;
        while received < n {
            let message = tokio::time::timeout(OP_TIMEOUT, self.results.next())
                .await
                .map_err(|_| format!("no task result within the timeout ({received} of {n})"))?
                .ok_or("result subscription ended")?;
            let Some((r, seq)) = parse_result(&message.payload)? else {
                continue;
            };
            if r != run {
                continue;
            }
            let at = sent[seq as usize].load(Ordering::Relaxed);
            hist.saturating_record(nanos(base.elapsed()).saturating_sub(at));
            slots.add_permits(1);
            received += 1;
        }
        let rate = n as f64 / base.elapsed().as_secs_f64();
        let cpu = self.meter.per_op(&cpu, n);
        sender.await??;
        Ok(Run { hist, rate, cpu })
    }
}

/// The bytes of a task message with a chosen `task_id`, as `serde_json` writes them.
#[derive(Clone)]
struct TaskTemplate {
    /// Everything after the task id's value (`","parent_task_id":…}`).
    suffix: Bytes,
}

/// The task id in the template, replaced per task.
const ID_MARK: &str = "00000000-0000-4000-8000-000000000000";

/// `serde_json` writes `task_id` first.
const ID_PREFIX: &str = "{\"task_id\":\"";

impl TaskTemplate {
    fn new(task: &TaskMessage) -> BenchResult<Self> {
        let task = task.clone().with_task_id(ID_MARK);
        let json = serde_json::to_vec(&task)?;
        let head = format!("{ID_PREFIX}{ID_MARK}");
        if !json.starts_with(head.as_bytes()) {
            return Err("serde_json no longer writes task_id first".into());
        }
        Ok(TaskTemplate {
            suffix: Bytes::copy_from_slice(&json[head.len()..]),
        })
    }

    /// The body of task `seq` of run `run`; its id is UUID-shaped: `{run:08x}-0000-4000-8000-{seq:012x}`.
    fn body(&self, run: u64, seq: u64) -> Bytes {
        let mut body = Vec::with_capacity(ID_PREFIX.len() + ID_MARK.len() + self.suffix.len());
        body.extend_from_slice(ID_PREFIX.as_bytes());
        body.extend_from_slice(task_id(run, seq).as_bytes());
        body.extend_from_slice(&self.suffix);
        Bytes::from(body)
    }
}

fn task_id(run: u64, seq: u64) -> String {
    format!("{run:08x}-0000-4000-8000-{seq:012x}")
}

/// What the client reads of a result.
#[derive(Deserialize)]
struct ResultHead<'a> {
    #[serde(borrow)]
    task_id: Cow<'a, str>,
    status: TaskStatus,
    #[serde(default)]
    error: Option<String>,
}

/// `(run, seq)` of a COMPLETED result of ours; an error for a FAILED one.
fn parse_result(payload: &[u8]) -> BenchResult<Option<(u64, u64)>> {
    let head: ResultHead<'_> = serde_json::from_slice(payload)?;
    if head.status != TaskStatus::Completed {
        return Err(format!(
            "task {} ended {}: {}",
            head.task_id,
            head.status,
            head.error.as_deref().unwrap_or("")
        )
        .into());
    }
    let id = head.task_id.as_ref();
    let parsed = (id.len() == ID_MARK.len())
        .then(|| {
            let run = u64::from_str_radix(&id[..8], 16).ok()?;
            let seq = u64::from_str_radix(&id[24..], 16).ok()?;
            Some((run, seq))
        })
        .flatten();
    Ok(parsed)
}

// ---------------------------------------------------------------------------------------
// Goals through a pipeline
// ---------------------------------------------------------------------------------------

/// A router, the text_stats and echo workers, one pipeline orchestrator, and a client.
struct PipelineMesh {
    shutdown: CancellationToken,
    router: ActorHandle,
    workers: Vec<WorkerHandle>,
    pipeline: Vec<ActorHandle>,
    client: Arc<dyn Bus>,
    name: loom_core::PipelineName,
    text: String,
    meter: CpuMeter,
}

impl PipelineMesh {
    async fn start(
        kind: &BusKind,
        configs: &Configs,
        path: &Path,
        meter: CpuMeter,
    ) -> BenchResult<Self> {
        let shutdown = CancellationToken::new();
        let router_bus = kind.connect().await?;
        let router =
            spawn_router(router_bus.clone(), RouterRules::default(), shutdown.clone()).await?;
        router_bus.flush().await?;
        let mut workers = Vec::new();
        for config in [&configs.text_stats, &configs.echo] {
            let bus = kind.connect().await?;
            let processor = build_processor(config)?;
            workers.push(
                spawn_worker(
                    bus.clone(),
                    config.clone(),
                    processor,
                    ServeTiers::All,
                    PIPELINE_WORKER_CONCURRENCY,
                    shutdown.clone(),
                )
                .await?,
            );
            bus.flush().await?;
        }
        let config = load_pipeline(path)?;
        let name = config.name.clone();
        let pipeline_bus = kind.connect().await?;
        let pipeline = spawn_pipeline(
            pipeline_bus,
            config,
            PipelineOptions::default(),
            shutdown.clone(),
        )
        .await?;
        let client = kind.connect().await?;
        Ok(PipelineMesh {
            shutdown,
            router,
            workers,
            pipeline,
            client,
            name,
            text: payload_text(),
            meter,
        })
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.router.join().await;
        for worker in self.workers {
            worker.join().await;
        }
        for actor in self.pipeline {
            actor.join().await;
        }
    }

    /// `n` goals from `clients` concurrent clients, each submitting one goal at a time
    /// with `submit_goal`.
    async fn goals(&self, n: usize, clients: usize) -> BenchResult<Run> {
        let per_client = n.div_ceil(clients);
        let cpu = self.meter.start();
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(clients);
        for _ in 0..clients {
            let client = self.client.clone();
            let name = self.name.clone();
            let mut context = JsonObject::new();
            context.insert("text".into(), Value::String(self.text.clone()));
            tasks.push(tokio::spawn(async move {
                let mut hist = histogram()?;
                for _ in 0..per_client {
                    let goal = OrchestratorGoal::new("bench").with_context(context.clone());
                    let t0 = Instant::now();
                    let result = submit_goal(&*client, &name, goal, OP_TIMEOUT, |_| {}).await?;
                    if result.status != TaskStatus::Completed {
                        return Err(format!(
                            "goal ended {}: {}",
                            result.status,
                            result.error.as_deref().unwrap_or("")
                        )
                        .into());
                    }
                    hist.saturating_record(nanos(t0.elapsed()));
                }
                BenchResult::Ok(hist)
            }));
        }
        let mut hist = histogram()?;
        for task in tasks {
            hist.add(task.await??)?;
        }
        let done = per_client * clients;
        Ok(Run {
            hist,
            rate: done as f64 / started.elapsed().as_secs_f64(),
            cpu: self.meter.per_op(&cpu, done),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------------------

fn histogram() -> BenchResult<Histogram<u64>> {
    // Nanoseconds, 1 ns to 60 s, 3 significant figures.
    Ok(Histogram::new_with_bounds(1, 60_000_000_000, 3)?)
}

fn nanos(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}

fn latency(hist: &Histogram<u64>, quantile: f64) -> String {
    let micros = hist.value_at_quantile(quantile) as f64 / 1_000.0;
    if micros >= 10_000.0 {
        format!("{:.1} ms", micros / 1_000.0)
    } else {
        format!("{micros:.1} µs")
    }
}

fn print_table(rows: &[Row], full: bool) {
    if full {
        println!(
            "loom-mesh: {PAYLOAD_BYTES} B text, tokio multi-thread runtime (2 workers), logging at \
             info to a sink; median of {REPEATS} runs (range), p50/p99 and CPU of the median run"
        );
        println!(
            "CPU µs/op: CPU time per task or goal of this process (router, workers, pipeline, \
             client) + of nats-server"
        );
    } else {
        println!(
            "loom-mesh benches: smoke pass only; run `cargo bench -p loom-mesh --bench mesh` to measure."
        );
    }
    println!(
        "{:<6} {:<44} {:>9} {:>10} {:>10} {:>9} {:>17} {:>13}  key",
        "bus", "path", "in flight", "p50", "p99", "per s", "range", "CPU µs/op"
    );
    for row in rows {
        let mut order: Vec<usize> = (0..row.runs.len()).collect();
        order.sort_by(|&a, &b| row.runs[a].rate.total_cmp(&row.runs[b].rate));
        let Some(&median) = order.get(order.len() / 2) else {
            continue;
        };
        let min = order.first().map_or(0.0, |&i| row.runs[i].rate);
        let max = order.last().map_or(0.0, |&i| row.runs[i].rate);
        let run = &row.runs[median];
        let cpu = match (run.cpu.process, run.cpu.server) {
            (Some(p), Some(s)) => format!("{p:.0} + {s:.0}"),
            (Some(p), None) => format!("{p:.0}"),
            _ => "-".to_owned(),
        };
        println!(
            "{:<6} {:<44} {:>9} {:>10} {:>10} {:>9} {:>17} {:>13}  {}",
            row.bus,
            row.what,
            row.in_flight,
            latency(&run.hist, 0.50),
            latency(&run.hist, 0.99),
            group_thousands(run.rate),
            format!("{}–{}", group_thousands(min), group_thousands(max)),
            cpu,
            row.key
        );
    }
}

fn group_thousands(value: f64) -> String {
    let digits = format!("{value:.0}");
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
