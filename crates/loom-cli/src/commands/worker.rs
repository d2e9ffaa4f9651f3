//! `loom worker`: serve an LLM worker.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::bail;
use clap::Args;
use loom_core::config::{WorkerKind, load_worker};
use loom_core::message::ModelTier;
use loom_mesh::llm_worker::LlmWorker;
use loom_mesh::worker::ServeTiers;
use tracing::warn;

use crate::commands::processor::parse_tier;
use crate::runtime::{NatsArgs, serve_worker};

/// The long help of `loom worker`.
pub(crate) const LONG_ABOUT: &str = "Serve an LLM worker (worker_kind: llm).\n\n\
Tasks arrive on loom.tasks.{name}.{tier} in queue group workers-{name}. The tier of the \
subject picks the model backend, configured from the environment:\n\
  local     LM_STUDIO_URL (+LM_STUDIO_MODEL) or OLLAMA_URL (+OLLAMA_MODEL, default llama3.2:3b);\n\
            LOOM_LOCAL_BACKEND=ollama|lmstudio forces one\n\
  standard  ANTHROPIC_API_KEY (model LOOM_STANDARD_MODEL), else OPENAI_BASE_URL\n\
            (+OPENAI_API_KEY, OPENAI_MODEL) for any OpenAI-compatible server\n\
  frontier  ANTHROPIC_API_KEY (model FRONTIER_MODEL)\n\
ANTHROPIC_VERSION overrides the anthropic-version header (default 2023-06-01).\n\n\
Each variable may instead be set in the user config, $LOOM_HOME/config.yaml or \
~/.loom/config.yaml (keys ollama_url, ollama_model, lm_studio_url, lm_studio_model, \
local_backend, anthropic_api_key, anthropic_version, standard_model, frontier_model, \
openai_base_url, openai_api_key, openai_model; optionally under a `backends:` section); \
environment variables win.\n\n\
By default the worker serves its default_model_tier (else standard). Runs until SIGINT or \
SIGTERM, then finishes in-flight tasks and drains.";

/// Arguments of `loom worker`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The worker config (worker_kind: llm, the default).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,

    /// Serve this tier (repeatable); default: the worker's default_model_tier, else standard.
    #[arg(long = "tier", value_name = "TIER", value_parser = parse_tier)]
    pub tiers: Vec<ModelTier>,

    /// Tasks handled at once.
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub max_concurrent: usize,

    #[command(flatten)]
    pub nats: NatsArgs,
}

/// Runs `loom worker`.
pub(crate) fn run(args: &WorkerArgs) -> anyhow::Result<ExitCode> {
    let config = load_worker(&args.config)?;
    if !matches!(config.kind, WorkerKind::Llm { .. }) {
        bail!(
            "{} is a processor worker; run it with `loom processor`",
            args.config.display()
        );
    }
    let backends = crate::runtime::tier_backends()?;
    let tiers = if args.tiers.is_empty() {
        ServeTiers::default_for(&config)
    } else {
        ServeTiers::Only(args.tiers.clone())
    };
    let served: Vec<ModelTier> = match &tiers {
        ServeTiers::Only(list) if !list.is_empty() => list.clone(),
        _ => ModelTier::ALL.to_vec(),
    };
    for tier in served {
        if let Err(e) = backends.get(tier) {
            warn!(worker = %config.name, tier = %tier, error = %e, "No model backend for a served tier; its tasks will fail.");
        }
    }
    let client_name = format!("loom-worker-{}", config.name);
    let mut worker = LlmWorker::new(config.clone(), backends)?;
    if let Some(section) = &config.mcp_servers {
        // The worker's MCP servers live as long as this process (children die with it).
        let tools = loom_mesh::mcp::McpTools::from_section(section)
            .map_err(|e| anyhow::anyhow!("worker '{}': mcp_servers: {e}", config.name))?;
        worker = worker.with_tool_host(Arc::new(tools));
    }
    let processor = Arc::new(worker);
    serve_worker(
        &args.nats,
        &client_name,
        config,
        processor,
        tiers,
        args.max_concurrent,
    )
}
