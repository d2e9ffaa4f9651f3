//! The `loom` command line: parse arguments, build library configs, run, pick an exit code.
//!
//! Exit codes (also in `loom --help`): 0 success; 1 the command ran and said no
//! (`validate` found errors); 2 usage or runtime error. Results go to stdout,
//! logs and diagnostics to stderr.

mod commands;
mod logging;
mod runtime;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code when the command ran and its answer is "no".
pub const EXIT_NO: u8 = 1;
/// Exit code for usage and runtime errors.
pub const EXIT_ERROR: u8 = 2;

/// Loom: an actor mesh for LLM workers, with an MCP gateway in front of it.
///
/// Exit codes: 0 success; 1 the command ran and said no (e.g. `validate` found
/// errors); 2 usage or runtime error.
#[derive(Debug, Parser)]
#[command(
    name = "loom",
    version,
    about,
    long_about,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,

    /// Log more: -v for debug, -vv for trace. RUST_LOG, when set, wins.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Log only errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the MCP gateway (stdio or streamable HTTP).
    #[command(long_about = commands::mcp::LONG_ABOUT)]
    Mcp(commands::mcp::McpArgs),
    /// Run a whole mesh (router, workers, pipelines) in one process.
    #[command(long_about = commands::up::LONG_ABOUT)]
    Up(commands::up::UpArgs),
    /// Send one goal or task, wait, and print the result as JSON.
    #[command(long_about = commands::submit::LONG_ABOUT)]
    Submit(commands::submit::SubmitArgs),
    /// Route tasks from loom.tasks.incoming to worker subjects.
    #[command(long_about = commands::router::LONG_ABOUT)]
    Router(commands::router::RouterArgs),
    /// Serve an LLM worker.
    #[command(long_about = commands::worker::LONG_ABOUT)]
    Worker(commands::worker::WorkerArgs),
    /// Serve a non-LLM worker (built-in processor or subprocess).
    #[command(long_about = commands::processor::LONG_ABOUT)]
    Processor(commands::processor::ProcessorArgs),
    /// Run a pipeline orchestrator.
    #[command(long_about = commands::pipeline::LONG_ABOUT)]
    Pipeline(commands::pipeline::PipelineArgs),
    /// Work with query-backend databases (ingest JSONL or CSV).
    Query(commands::query::QueryArgs),
    /// Check config files and report every error with its file, line and key path.
    #[command(long_about = commands::validate::LONG_ABOUT)]
    Validate(commands::validate::ValidateArgs),
    /// Worker configs, test bench, evals, impact analysis and dead letters.
    #[command(long_about = commands::workshop::LONG_ABOUT)]
    Workshop(commands::workshop::WorkshopArgs),
    /// List and call the tools, resources and prompts of MCP servers (a servers.json).
    #[command(long_about = commands::tools::LONG_ABOUT)]
    Tools(commands::tools::ToolsArgs),
    /// Run an agent: a model with the tools of MCP servers.
    #[command(long_about = commands::agent::LONG_ABOUT)]
    Agent(commands::agent::AgentArgs),
}

/// Runs the command line of this process.
pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout and usage errors to stderr, and picks the code.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_ERROR } else { 0 });
        }
    };
    // Commands whose output is a result for a person keep the log to warnings unless asked.
    let quiet_by_default = matches!(
        cli.command,
        Command::Submit(_) | Command::Validate(_) | Command::Tools(_) | Command::Agent(_)
    );
    logging::init(cli.verbose, cli.quiet, quiet_by_default);
    let result = match cli.command {
        Command::Validate(args) => commands::validate::run(&args),
        Command::Up(args) => commands::up::run(&args),
        Command::Mcp(args) => commands::mcp::run(&args),
        Command::Query(args) => commands::query::run(&args),
        Command::Submit(args) => commands::submit::run(&args),
        Command::Router(args) => commands::router::run(&args),
        Command::Worker(args) => commands::worker::run(&args),
        Command::Processor(args) => commands::processor::run(&args),
        Command::Pipeline(args) => commands::pipeline::run(&args),
        Command::Workshop(args) => commands::workshop::run(&args),
        Command::Tools(args) => commands::tools::run(&args),
        Command::Agent(args) => commands::agent::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            report_error(&e);
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// A reader closed our stdout (`loom submit … | head`): not an error.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        let io_kind = c
            .downcast_ref::<std::io::Error>()
            .map(std::io::Error::kind)
            .or_else(|| {
                c.downcast_ref::<serde_json::Error>()
                    .and_then(serde_json::Error::io_error_kind)
            });
        io_kind == Some(std::io::ErrorKind::BrokenPipe)
    })
}

#[allow(clippy::print_stderr)] // The one place a runtime error is shown to the user.
fn report_error(e: &anyhow::Error) {
    eprintln!("error: {e:#}");
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
