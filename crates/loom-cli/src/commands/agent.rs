//! `loom agent run`: one agent run with the tools of an MCP servers file.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use loom_core::message::ModelTier;
use loom_llm::agent::{Agent, DEFAULT_MAX_TURNS};
use loom_mcp::PrefixMode;
use serde_json::json;

use crate::EXIT_NO;
use crate::commands::processor::parse_tier;
use crate::commands::tools::{registry_from, warn_unavailable};
use crate::runtime::{tier_backends, tokio_runtime};

/// The long help of `loom agent`.
pub(crate) const LONG_ABOUT: &str = "Run an agent: a model with instructions and the tools of \
the MCP servers in --servers (a Claude Desktop style {\"mcpServers\": {…}} file).\n\n\
The model is the backend of --model's tier (local, standard or frontier), configured as for \
`loom worker`: environment variables (ANTHROPIC_API_KEY, OPENAI_API_KEY, OLLAMA_URL, \
LM_STUDIO_URL, …) or the user config file ($LOOM_HOME/config.yaml or ~/.loom/config.yaml).\n\n\
The result is printed as JSON on stdout: output, turns, tool_calls, usage, interrupted and \
interruption_reason (\"mcp:<server>\" when a server was unreachable for the whole run; its \
tools were missing, the others worked).\n\n\
Exit status: 0 the run completed; 1 it was interrupted; 2 bad arguments or a model error.\n\n\
Example:\n  \
loom agent run --servers servers.json --model standard \"What changed in this repo?\"";

/// Arguments of `loom agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: AgentCommand,
}

/// The `loom agent` subcommands.
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Run the agent once on a prompt and print the result as JSON.
    Run(RunArgs),
}

/// Arguments of `loom agent run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The user's prompt.
    pub prompt: String,

    /// The servers file ({"mcpServers": {…}}); without it the agent has no tools.
    #[arg(long, value_name = "FILE", env = "LOOM_MCP_SERVERS")]
    pub servers: Option<PathBuf>,

    /// The model tier: local, standard or frontier.
    #[arg(long, value_name = "TIER", default_value = "standard", value_parser = parse_tier)]
    pub model: ModelTier,

    /// The system instructions.
    #[arg(
        long,
        value_name = "TEXT",
        default_value = "You are a helpful assistant. Use the tools when they help."
    )]
    pub instructions: String,

    /// The most model calls of the run.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_TURNS)]
    pub max_turns: usize,

    /// Seconds each tool call may take.
    #[arg(long, value_name = "SECS", default_value_t = 120.0)]
    pub tool_timeout: f64,

    /// When tool names carry their server's prefix: conditional, always, never.
    #[arg(long, value_name = "MODE", default_value = "conditional")]
    pub prefix_mode: PrefixMode,
}

/// Runs `loom agent`.
pub(crate) fn run(args: &AgentArgs) -> anyhow::Result<ExitCode> {
    let AgentCommand::Run(args) = &args.command;
    let tool_timeout = Duration::try_from_secs_f64(args.tool_timeout)
        .ok()
        .filter(|d| !d.is_zero())
        .context("--tool-timeout must be a number of seconds greater than 0")?;
    let model = tier_backends()?.get(args.model)?;
    let registry = match &args.servers {
        Some(path) => Some(registry_from(Some(path), args.prefix_mode)?),
        None => None,
    };
    let runtime = tokio_runtime()?;
    runtime.block_on(async {
        let mut agent = Agent::new(args.instructions.clone(), Arc::clone(&model))
            .max_turns(args.max_turns)
            .tool_timeout(tool_timeout);
        if let Some(registry) = &registry {
            agent = agent.tools(registry.clone());
        }
        let result = agent.run(args.prompt.clone()).await;
        if let Some(registry) = &registry {
            warn_unavailable(registry);
            registry.close().await;
        }
        let result = result?;
        let calls: Vec<_> = result
            .tool_calls
            .iter()
            .map(|c| json!({"name": c.name, "arguments": c.arguments, "result": c.result, "is_error": c.is_error}))
            .collect();
        let value = json!({
            "output": result.output,
            "turns": result.turns,
            "tool_calls": calls,
            "usage": result.usage,
            "interrupted": result.interrupted,
            "interruption_reason": result.interruption_reason,
        });
        writeln!(std::io::stdout().lock(), "{}", serde_json::to_string_pretty(&value)?)?;
        Ok(if result.interrupted {
            ExitCode::from(EXIT_NO)
        } else {
            ExitCode::SUCCESS
        })
    })
}
