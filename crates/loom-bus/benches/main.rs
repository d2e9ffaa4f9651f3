//! Bus benchmarks: publish→receive and request/reply with 1 KiB payloads, on
//! `MemoryBus` and on `NatsBus` over loopback (against a nats-server started through
//! loom-testkit), printing p50/p99 latency and messages per second.
//!
//! `cargo bench -p loom-bus` runs the full measurement. Without `--bench` (as when
//! `cargo test --all-targets` runs bench targets) it does a quick smoke pass only.
//!
//! The figures are measured through the `Bus` trait object, as Loom's other crates use
//! it, on a tokio multi-thread runtime with 2 workers.

// The table on stdout is what this binary is for.
#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use hdrhistogram::Histogram;
use loom_bus::{Bus, MemoryBus, NatsBus, NatsOptions};
use loom_testkit::NatsServer;
use tokio::sync::Notify;

/// Payload size of every message.
const PAYLOAD_BYTES: usize = 1024;

/// Concurrent requesters in the request/reply throughput run.
const CONCURRENCY: usize = 32;

/// Messages a streaming publisher may be ahead of its subscriber, so neither bus
/// drops messages for a slow consumer during the run.
const STREAM_WINDOW: u64 = 8_192;

/// How long any single operation may take before the benchmark aborts.
const OP_TIMEOUT: Duration = Duration::from_secs(10);

type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// How many operations each run performs.
#[derive(Clone, Copy)]
struct Counts {
    warmup: usize,
    latency: usize,
    stream: usize,
    request_latency: usize,
    request_throughput: usize,
}

impl Counts {
    const MEMORY: Self = Self {
        warmup: 20_000,
        latency: 200_000,
        stream: 1_000_000,
        request_latency: 200_000,
        request_throughput: 1_000_000,
    };
    const NATS: Self = Self {
        warmup: 2_000,
        latency: 20_000,
        stream: 200_000,
        request_latency: 20_000,
        request_throughput: 200_000,
    };
    const SMOKE: Self = Self {
        warmup: 10,
        latency: 100,
        stream: 1_000,
        request_latency: 100,
        request_throughput: 320,
    };
}

/// Each measurement runs this many times in a full run; the table shows the run with
/// the highest rate, because on a shared 2-core machine other processes only ever
/// make a run slower.
const REPEATS: usize = 3;

/// One line of the results table.
struct Row {
    bus: &'static str,
    operation: String,
    latency: Option<Histogram<u64>>,
    rate: f64,
}

/// Which benchmarks to run and how often.
struct Plan {
    full: bool,
    /// `cargo bench -p loom-bus -- memory/request` runs only keys containing the filter.
    filter: Option<String>,
}

impl Plan {
    fn wants(&self, key: &str) -> bool {
        self.filter.as_deref().is_none_or(|f| key.contains(f))
    }

    /// Whether any benchmark of suite `name` may be wanted (a filter without `/` can
    /// match an operation of any suite).
    fn wants_suite(&self, name: &str) -> bool {
        self.filter
            .as_deref()
            .is_none_or(|f| !f.contains('/') || f.starts_with(&format!("{name}/")))
    }

    fn repeats(&self) -> usize {
        if self.full { REPEATS } else { 1 }
    }
}

/// Keeps the best of several runs of one measurement.
fn best(runs: Vec<(Option<Histogram<u64>>, f64)>) -> Option<(Option<Histogram<u64>>, f64)> {
    runs.into_iter().max_by(|a, b| a.1.total_cmp(&b.1))
}

fn main() -> BenchResult<()> {
    let plan = Plan {
        full: std::env::args().any(|arg| arg == "--bench"),
        filter: std::env::args().skip(1).find(|arg| !arg.starts_with("--")),
    };
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
        let mut rows = Vec::new();
        if plan.wants_suite("memory") {
            let counts = if plan.full {
                Counts::MEMORY
            } else {
                Counts::SMOKE
            };
            let memory: Arc<dyn Bus> = Arc::new(MemoryBus::new());
            let buses = Buses {
                name: "memory",
                raw_url: None,
                client: memory.clone(),
                subscriber: memory.clone(),
                responder: memory,
            };
            rows.extend(run_suite(plan, &buses, counts).await?);
        }
        if plan.wants_suite("nats") {
            let server = NatsServer::start()?;
            let counts = if plan.full {
                Counts::NATS
            } else {
                Counts::SMOKE
            };
            let connect = || NatsBus::connect(NatsOptions::new(&server.url()));
            let buses = Buses {
                name: "nats",
                raw_url: Some(server.url()),
                client: Arc::new(connect().await?),
                subscriber: Arc::new(connect().await?),
                responder: Arc::new(connect().await?),
            };
            rows.extend(run_suite(plan, &buses, counts).await?);
        }
        BenchResult::Ok(rows)
    }))??;
    print_table(&rows, full);
    Ok(())
}

/// The handles one suite uses: on NATS each is its own connection.
struct Buses {
    name: &'static str,
    /// For NATS: the server, to measure async-nats itself as a baseline.
    raw_url: Option<String>,
    client: Arc<dyn Bus>,
    subscriber: Arc<dyn Bus>,
    responder: Arc<dyn Bus>,
}

async fn run_suite(plan: &Plan, buses: &Buses, counts: Counts) -> BenchResult<Vec<Row>> {
    let payload = Bytes::from(vec![b'x'; PAYLOAD_BYTES]);
    let name = buses.name;
    let client = &*buses.client;
    let mut rows = Vec::new();
    let mut push = |bus: &'static str, operation: &str, runs| {
        if let Some((latency, rate)) = best(runs) {
            rows.push(Row {
                bus,
                operation: operation.to_owned(),
                latency,
                rate,
            });
        }
    };

    if plan.wants(&format!("{name}/pubsub-latency")) {
        let mut sub = buses.subscriber.subscribe("bench.latency", None).await?;
        round_trip_barrier(&*buses.subscriber).await?;
        pubsub_latency(client, &mut sub, &payload, counts.warmup).await?;
        let mut runs = Vec::new();
        let mut raw_runs = Vec::new();
        for _ in 0..plan.repeats() {
            let (hist, rate) = pubsub_latency(client, &mut sub, &payload, counts.latency).await?;
            runs.push((Some(hist), rate));
            if let Some(url) = &buses.raw_url {
                raw_runs.push(raw_nats_pubsub_latency(url, counts).await?);
            }
        }
        push(name, "publish→receive, 1 in flight", runs);
        push("raw", "async-nats publish→receive", raw_runs);
    }

    if plan.wants(&format!("{name}/pubsub-stream")) {
        let mut runs = Vec::new();
        for _ in 0..plan.repeats() {
            let sub = buses.subscriber.subscribe("bench.stream", None).await?;
            round_trip_barrier(&*buses.subscriber).await?;
            runs.push((
                None,
                pubsub_stream(client, sub, &payload, counts.stream).await?,
            ));
        }
        push(name, "publish→receive, streaming", runs);
    }

    if plan.wants(&format!("{name}/request-seq"))
        || plan.wants(&format!("{name}/request-concurrent"))
    {
        let service = buses
            .responder
            .subscribe("bench.echo", Some("echo"))
            .await?;
        round_trip_barrier(&*buses.responder).await?;
        spawn_echo(buses.responder.clone(), service);
        request_latency(client, &payload, counts.warmup).await?;
    }

    if plan.wants(&format!("{name}/request-seq")) {
        // With NATS, runs alternate with the async-nats baseline so both see the same
        // machine load.
        let mut runs = Vec::new();
        let mut raw_runs = Vec::new();
        for _ in 0..plan.repeats() {
            let (hist, rate) = request_latency(client, &payload, counts.request_latency).await?;
            runs.push((Some(hist), rate));
            if let Some(url) = &buses.raw_url {
                raw_runs.push(raw_nats_request_latency(url, counts).await?);
            }
        }
        push(name, "request/reply, sequential", runs);
        push("raw", "async-nats request, sequential", raw_runs);
    }

    if plan.wants(&format!("{name}/request-concurrent")) {
        let mut runs = Vec::new();
        for _ in 0..plan.repeats() {
            let (hist, rate) =
                request_throughput(buses.client.clone(), &payload, counts.request_throughput)
                    .await?;
            runs.push((Some(hist), rate));
        }
        push(
            name,
            &format!("request/reply, {CONCURRENCY} concurrent"),
            runs,
        );
    }
    Ok(rows)
}

fn histogram() -> BenchResult<Histogram<u64>> {
    // Nanoseconds, 1 ns to 60 s, 3 significant figures.
    Ok(Histogram::new_with_bounds(1, 60_000_000_000, 3)?)
}

fn nanos(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)
}

/// Once it returns, the server has processed every earlier subscribe of `bus`.
async fn round_trip_barrier(bus: &dyn Bus) -> BenchResult<()> {
    let _ = bus.request("bench.barrier", Bytes::new(), OP_TIMEOUT).await;
    Ok(())
}

async fn pubsub_latency(
    client: &dyn Bus,
    sub: &mut loom_bus::Subscription,
    payload: &Bytes,
    n: usize,
) -> BenchResult<(Histogram<u64>, f64)> {
    let mut hist = histogram()?;
    let started = Instant::now();
    for _ in 0..n {
        let t0 = Instant::now();
        client.publish("bench.latency", payload.clone()).await?;
        tokio::time::timeout(OP_TIMEOUT, sub.next())
            .await?
            .ok_or("subscription ended")?;
        hist.saturating_record(nanos(t0.elapsed()));
    }
    Ok((hist, n as f64 / started.elapsed().as_secs_f64()))
}

async fn pubsub_stream(
    client: &dyn Bus,
    mut sub: loom_bus::Subscription,
    payload: &Bytes,
    n: usize,
) -> BenchResult<f64> {
    let received = Arc::new(AtomicU64::new(0));
    let progress = Arc::new(Notify::new());
    let receiver = {
        let received = received.clone();
        let progress = progress.clone();
        tokio::spawn(async move {
            for _ in 0..n {
                if tokio::time::timeout(OP_TIMEOUT, sub.next())
                    .await
                    .ok()
                    .flatten()
                    .is_none()
                {
                    return Err("stream receiver stalled");
                }
                let count = received.fetch_add(1, Ordering::Relaxed) + 1;
                if count % (STREAM_WINDOW / 4) == 0 {
                    progress.notify_one();
                }
            }
            progress.notify_one();
            Ok(())
        })
    };
    let started = Instant::now();
    for sent in 0..n as u64 {
        while sent.saturating_sub(received.load(Ordering::Relaxed)) >= STREAM_WINDOW {
            tokio::time::timeout(OP_TIMEOUT, progress.notified()).await?;
        }
        client.publish("bench.stream", payload.clone()).await?;
    }
    client.flush().await?;
    tokio::time::timeout(OP_TIMEOUT * 6, receiver).await???;
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

fn spawn_echo(bus: Arc<dyn Bus>, mut service: loom_bus::Subscription) {
    tokio::spawn(async move {
        while let Some(message) = service.next().await {
            if let Some(reply) = message.reply {
                let _ = bus.publish(&reply, message.payload).await;
            }
        }
    });
}

async fn request_latency(
    client: &dyn Bus,
    payload: &Bytes,
    n: usize,
) -> BenchResult<(Histogram<u64>, f64)> {
    let mut hist = histogram()?;
    let started = Instant::now();
    for _ in 0..n {
        let t0 = Instant::now();
        client
            .request("bench.echo", payload.clone(), OP_TIMEOUT)
            .await?;
        hist.saturating_record(nanos(t0.elapsed()));
    }
    Ok((hist, n as f64 / started.elapsed().as_secs_f64()))
}

async fn request_throughput(
    client: Arc<dyn Bus>,
    payload: &Bytes,
    n: usize,
) -> BenchResult<(Histogram<u64>, f64)> {
    let per_task = n / CONCURRENCY;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(CONCURRENCY);
    for _ in 0..CONCURRENCY {
        let client = client.clone();
        let payload = payload.clone();
        tasks.push(tokio::spawn(async move {
            let mut hist = histogram()?;
            for _ in 0..per_task {
                let t0 = Instant::now();
                client
                    .request("bench.echo", payload.clone(), OP_TIMEOUT)
                    .await?;
                hist.saturating_record(nanos(t0.elapsed()));
            }
            BenchResult::Ok(hist)
        }));
    }
    let mut total = histogram()?;
    for task in tasks {
        total.add(task.await??)?;
    }
    let elapsed = started.elapsed();
    Ok((
        total,
        (per_task * CONCURRENCY) as f64 / elapsed.as_secs_f64(),
    ))
}

/// The same one-in-flight publish → receive on async-nats directly, as a baseline.
async fn raw_nats_pubsub_latency(
    url: &str,
    counts: Counts,
) -> BenchResult<(Option<Histogram<u64>>, f64)> {
    let client = async_nats::connect(url).await?;
    let subscriber = async_nats::connect(url).await?;
    let mut sub = subscriber.subscribe("bench.raw.latency").await?;
    subscriber.flush().await?;
    let _ = subscriber.request("bench.barrier", Bytes::new()).await;
    let payload = Bytes::from(vec![b'x'; PAYLOAD_BYTES]);
    let mut hist = histogram()?;
    let mut once = async |hist: Option<&mut Histogram<u64>>| -> BenchResult<()> {
        let t0 = Instant::now();
        client.publish("bench.raw.latency", payload.clone()).await?;
        tokio::time::timeout(OP_TIMEOUT, sub.next())
            .await?
            .ok_or("subscription ended")?;
        if let Some(hist) = hist {
            hist.saturating_record(nanos(t0.elapsed()));
        }
        Ok(())
    };
    for _ in 0..counts.warmup {
        once(None).await?;
    }
    let started = Instant::now();
    for _ in 0..counts.latency {
        once(Some(&mut hist)).await?;
    }
    let rate = counts.latency as f64 / started.elapsed().as_secs_f64();
    Ok((Some(hist), rate))
}

/// The same sequential request/reply on async-nats directly, as a baseline for the
/// `NatsBus` overhead.
async fn raw_nats_request_latency(
    url: &str,
    counts: Counts,
) -> BenchResult<(Option<Histogram<u64>>, f64)> {
    let client = async_nats::connect(url).await?;
    let responder = async_nats::connect(url).await?;
    let mut service = responder.subscribe("bench.raw").await?;
    responder.flush().await?;
    let _ = responder.request("bench.barrier", Bytes::new()).await;
    let echo = tokio::spawn(async move {
        while let Some(message) = service.next().await {
            if let Some(reply) = message.reply {
                let _ = responder.publish(reply, message.payload).await;
            }
        }
    });
    let payload = Bytes::from(vec![b'x'; PAYLOAD_BYTES]);
    let mut hist = histogram()?;
    for _ in 0..counts.warmup {
        client.request("bench.raw", payload.clone()).await?;
    }
    let started = Instant::now();
    for _ in 0..counts.request_latency {
        let t0 = Instant::now();
        client.request("bench.raw", payload.clone()).await?;
        hist.saturating_record(nanos(t0.elapsed()));
    }
    let rate = counts.request_latency as f64 / started.elapsed().as_secs_f64();
    // Dropping the responder's subscription keeps later runs to one responder.
    echo.abort();
    Ok((Some(hist), rate))
}

fn micros(hist: &Histogram<u64>, quantile: f64) -> String {
    format!(
        "{:.1} µs",
        hist.value_at_quantile(quantile) as f64 / 1_000.0
    )
}

fn print_table(rows: &[Row], full: bool) {
    if full {
        println!(
            "loom-bus: {PAYLOAD_BYTES} B payloads, tokio multi-thread runtime (2 workers), \
             through `dyn Bus`, best of {REPEATS} runs"
        );
    } else {
        println!("loom-bus benches: smoke pass only; run `cargo bench -p loom-bus` to measure.");
    }
    println!(
        "{:<7} {:<32} {:>10} {:>10} {:>14}",
        "bus", "operation", "p50", "p99", "msgs/s"
    );
    for row in rows {
        let (p50, p99) = match &row.latency {
            Some(hist) => (micros(hist, 0.50), micros(hist, 0.99)),
            None => ("-".to_owned(), "-".to_owned()),
        };
        println!(
            "{:<7} {:<32} {:>10} {:>10} {:>14}",
            row.bus,
            row.operation,
            p50,
            p99,
            group_thousands(row.rate)
        );
    }
}

fn group_thousands(value: f64) -> String {
    let digits = format!("{:.0}", value);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
