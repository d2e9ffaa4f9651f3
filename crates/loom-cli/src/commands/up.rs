//! `loom up`: run a whole mesh (router, workers, pipelines) in one process.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::bail;
use clap::Args;
use loom_core::config::{self, AnyConfig, ConfigError};
use loom_mesh::mesh::{DEFAULT_WORKER_CONCURRENCY, MeshOptions, MeshPlan, start_mesh};
use tracing::{info, warn};

use crate::runtime::{NatsArgs, close_bus, shutdown_on_signals, tokio_runtime};

/// The long help of `loom up`.
pub(crate) const LONG_ABOUT: &str = "Run a whole mesh in one process: the router, every worker and every \
pipeline found in the given configs.\n\n\
Each --config is a file or a directory searched recursively for *.yaml (as `loom validate` \
does). Worker, pipeline and router-rules configs are run; a gateway config contributes the \
workers and pipelines it references. LLM workers take their model backends from the \
environment (see `loom worker --help`).\n\n\
Without --nats-url everything runs on the in-process bus, so every pipeline stage must have \
its worker among the configs. With --nats-url the components join that NATS mesh, and stages \
may be served by workers running elsewhere. Runs until SIGINT or SIGTERM, then finishes \
in-flight work and drains.";

/// Arguments of `loom up`.
#[derive(Debug, Args)]
pub struct UpArgs {
    /// Config files or directories (repeatable).
    #[arg(long = "config", value_name = "PATH", required = true)]
    pub configs: Vec<PathBuf>,

    /// Do not run a router (one runs elsewhere on the NATS mesh).
    #[arg(long)]
    pub no_router: bool,

    /// Also take goals from loom.goals.incoming (for loom-ai 0.9.0 clients).
    #[arg(long)]
    pub compat_goals: bool,

    /// Tasks each worker handles at once.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_WORKER_CONCURRENCY)]
    pub max_concurrent: usize,

    #[command(flatten)]
    pub nats: NatsArgs,
}

/// Loads every config under `paths` into a plan, reporting all config errors at once.
/// On the in-process bus (`embedded`), a stage without its worker is an error.
pub(crate) fn load_plan(paths: &[PathBuf], embedded: bool) -> anyhow::Result<MeshPlan> {
    let mut configs: Vec<AnyConfig> = Vec::new();
    let mut errors: Vec<ConfigError> = Vec::new();
    for found in config::find_config_files(paths)? {
        let kind = if found.named {
            None
        } else {
            match config::detect_kind(&found.path) {
                Ok(Some(k)) => Some(k),
                Ok(None) => continue,
                Err(e) => {
                    errors.extend(e);
                    continue;
                }
            }
        };
        match config::load_any(&found.path, kind) {
            Ok(c) => configs.push(c),
            Err(e) => errors.extend(e),
        }
    }
    if !errors.is_empty() {
        errors.sort();
        errors.dedup();
        let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
        bail!(
            "{} config error{}:\n{}",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" },
            lines.join("\n")
        );
    }
    let plan = MeshPlan::from_configs(configs)?;
    if plan.is_empty() {
        bail!("no worker, pipeline or router-rules config found in the given paths");
    }
    let missing = plan.missing_workers();
    if embedded && !missing.is_empty() {
        let lines: Vec<String> = missing.iter().map(|m| format!("  {m}")).collect();
        bail!(
            "on the in-process bus nothing else can serve these stages; add the workers' configs or pass --nats-url:\n{}",
            lines.join("\n")
        );
    }
    for m in missing {
        warn!(pipeline = %m.pipeline, stage = %m.stage, worker = %m.worker, "No worker for this stage here; it must run elsewhere on the mesh.");
    }
    Ok(plan)
}

/// Runs `loom up`.
pub(crate) fn run(args: &UpArgs) -> anyhow::Result<ExitCode> {
    let embedded = args.nats.nats_url.is_none();
    let plan = load_plan(&args.configs, embedded)?;
    let backends = crate::runtime::tier_backends()?;
    tokio_runtime()?.block_on(async {
        let bus = args.nats.connect_or_embedded("loom-up").await?;
        let shutdown = shutdown_on_signals();
        let options = MeshOptions::default()
            .with_router(!args.no_router)
            .with_worker_concurrency(args.max_concurrent)
            .with_compat_goals(args.compat_goals);
        let mesh = start_mesh(bus.clone(), plan, backends, options, shutdown).await?;
        if embedded {
            info!("The mesh runs on the in-process bus: only this process can reach it. Pass --nats-url to join a NATS mesh.");
        }
        mesh.join().await;
        close_bus(&*bus).await;
        Ok(ExitCode::SUCCESS)
    })
}
