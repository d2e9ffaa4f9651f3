//! `loom router`: route tasks from `loom.tasks.incoming` to worker subjects.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use loom_core::config::{RouterRules, load_router_rules};

use crate::runtime::{NatsArgs, close_bus, shutdown_on_signals, tokio_runtime};

/// The long help of `loom router`.
pub(crate) const LONG_ABOUT: &str = "Route tasks from loom.tasks.incoming to loom.tasks.{worker_type}.{tier}.\n\n\
The router applies tier overrides (rewriting the task's model_tier), per-tier rate limits \
(max_concurrent dispatches per minute, and an optional tokens_per_minute budget), and \
dead-letters malformed, misnamed or rate-limited tasks on loom.tasks.dead_letter while \
answering their caller with a FAILED result at once. Replicas share the work (queue group \
'router'). Runs until SIGINT or SIGTERM, then finishes in-flight work and drains.";

/// Arguments of `loom router`.
#[derive(Debug, Args)]
pub struct RouterArgs {
    /// Router rules (tier_overrides, rate_limits); without it, no overrides and no limits.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(flatten)]
    pub nats: NatsArgs,
}

/// Runs `loom router`.
pub(crate) fn run(args: &RouterArgs) -> anyhow::Result<ExitCode> {
    let rules = match &args.config {
        Some(path) => load_router_rules(path)?,
        None => RouterRules::default(),
    };
    tokio_runtime()?.block_on(async {
        let bus = args.nats.connect("loom-router").await?;
        let shutdown = shutdown_on_signals();
        let router = loom_mesh::router::spawn_router(bus.clone(), rules, shutdown.clone()).await?;
        router.join().await;
        close_bus(&*bus).await;
        Ok(ExitCode::SUCCESS)
    })
}
