//! `loom processor`: serve a non-LLM worker (built-in processors and subprocesses).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use loom_core::config::{WorkerKind, load_worker};
use loom_core::message::ModelTier;
use loom_mesh::worker::ServeTiers;

use crate::runtime::{NatsArgs, serve_worker};

/// The long help of `loom processor`.
pub(crate) const LONG_ABOUT: &str = "Serve a non-LLM worker: a built-in processor (echo, text_stats) or a \
subprocess (processing_backend: subprocess).\n\n\
Tasks arrive on loom.tasks.{name}.{tier} in queue group processors-{name}, so replicas share \
them; by default every tier is served. Each task's payload is checked against input_schema, \
processed within timeout_seconds, its output checked against output_schema, and a TaskResult \
published to loom.results.{parent_task_id}. A cancel message on loom.control.cancel.{task_id} \
stops a task in flight. Runs until SIGINT or SIGTERM, then finishes in-flight tasks and drains.";

/// Arguments of `loom processor`.
#[derive(Debug, Args)]
pub struct ProcessorArgs {
    /// The worker config (worker_kind: processor).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,

    /// Serve only this tier (repeatable); default: every tier.
    #[arg(long = "tier", value_name = "TIER", value_parser = parse_tier)]
    pub tiers: Vec<ModelTier>,

    /// Tasks handled at once.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub max_concurrent: usize,

    #[command(flatten)]
    pub nats: NatsArgs,
}

pub(crate) fn parse_tier(s: &str) -> Result<ModelTier, String> {
    s.parse()
        .map_err(|e: loom_core::message::UnknownTier| e.to_string())
}

/// Runs `loom processor`.
pub(crate) fn run(args: &ProcessorArgs) -> anyhow::Result<ExitCode> {
    let config = load_worker(&args.config)?;
    if matches!(config.kind, WorkerKind::Llm { .. }) {
        bail!(
            "{} is an LLM worker; run it with `loom worker`",
            args.config.display()
        );
    }
    let processor = loom_mesh::processors::build_processor(&config).map_err(|e| {
        anyhow::anyhow!(e).context(format!(
            "worker '{}' ({})",
            config.name,
            args.config.display()
        ))
    })?;
    let tiers = if args.tiers.is_empty() {
        ServeTiers::All
    } else {
        ServeTiers::Only(args.tiers.clone())
    };
    serve_worker(
        &args.nats,
        &format!("loom-processor-{}", config.name),
        config,
        processor,
        tiers,
        args.max_concurrent,
    )
}
