//! `loom pipeline`: run a pipeline orchestrator.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use loom_core::config::load_pipeline;
use loom_mesh::pipeline::{PipelineOptions, spawn_pipeline};

use crate::runtime::{NatsArgs, close_bus, shutdown_on_signals, tokio_runtime};

/// The long help of `loom pipeline`.
pub(crate) const LONG_ABOUT: &str = "Run a pipeline orchestrator.\n\n\
Goals addressed to loom.goals.{name} run stage by stage: stages whose dependencies are done \
run together, each as a task through the router, and the final TaskResult (stage outputs and \
a _timeline) goes to loom.results.{goal_id}. A progress message per finished stage goes to \
loom.progress.{goal_id}. With --compat-incoming the orchestrator also takes goals from the \
shared loom.goals.incoming, as loom-ai 0.9.0 clients send them. Runs until SIGINT or SIGTERM, \
then finishes in-flight goals and drains.";

/// Arguments of `loom pipeline`.
#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// The pipeline config.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,

    /// Also take goals from loom.goals.incoming (for loom-ai 0.9.0 clients).
    #[arg(long)]
    pub compat_incoming: bool,

    #[command(flatten)]
    pub nats: NatsArgs,
}

/// Runs `loom pipeline`.
pub(crate) fn run(args: &PipelineArgs) -> anyhow::Result<ExitCode> {
    let config = load_pipeline(&args.config)?;
    tokio_runtime()?.block_on(async {
        let bus = args
            .nats
            .connect(&format!("loom-pipeline-{}", config.name))
            .await?;
        let shutdown = shutdown_on_signals();
        let options = PipelineOptions::default().with_compat_incoming(args.compat_incoming);
        let actors = spawn_pipeline(bus.clone(), config, options, shutdown).await?;
        for a in actors {
            a.join().await;
        }
        close_bus(&*bus).await;
        Ok(ExitCode::SUCCESS)
    })
}
