//! `loom tools`: list and call the tools, resources and prompts of the MCP servers in a
//! Claude-Desktop-style servers file, through loom-mcp's registry.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use loom_mcp::{PrefixMode, Registry, RegistryOptions, load_servers_file};
use serde_json::{Map, Value, json};

use crate::EXIT_NO;
use crate::runtime::tokio_runtime;

/// The long help of `loom tools`.
pub(crate) const LONG_ABOUT: &str = "List and call the tools, resources and prompts of MCP \
servers, as an agent would see them.\n\n\
--servers reads a Claude Desktop style file: {\"mcpServers\": {\"git\": {\"command\": \"uvx\", \
\"args\": [\"mcp-server-git\"], \"env\": {…}, \"cwd\": \"…\"}, \"hosted\": {\"url\": \"https://…/mcp\", \
\"headers\": {…}, \"timeout\": 30}}}. Every server is connected in parallel; one that fails is \
reported on stderr and the others still answer.\n\n\
Names are bare when unique and server.tool when several servers share one (--prefix-mode); \
`call` also accepts server.tool and server__tool.\n\n\
Exit status: 0 success; 1 the tool reported an error (isError); 2 bad arguments, unknown \
tool or an unreachable server.\n\n\
Examples:\n  \
loom tools list --servers servers.json\n  \
loom tools call git.git_status '{\"repo_path\": \".\"}' --servers servers.json\n  \
loom tools resources --servers servers.json --read 'fs:file:///notes.txt'";

/// Arguments of `loom tools`.
#[derive(Debug, Args)]
pub struct ToolsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ToolsCommand,

    /// The servers file ({"mcpServers": {…}}).
    #[arg(long, value_name = "FILE", global = true, env = "LOOM_MCP_SERVERS")]
    pub servers: Option<PathBuf>,

    /// When names carry their server's prefix: conditional (only when shared), always, never.
    #[arg(
        long,
        value_name = "MODE",
        default_value = "conditional",
        global = true
    )]
    pub prefix_mode: PrefixMode,

    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The `loom tools` subcommands.
#[derive(Debug, Subcommand)]
pub enum ToolsCommand {
    /// List every server's tools.
    List,
    /// Call one tool and print its result.
    Call {
        /// The tool: its listed name, server.tool or server__tool.
        name: String,
        /// The arguments: a JSON object, or '-' to read it from stdin.
        #[arg(value_name = "JSON", default_value = "{}")]
        arguments: String,
    },
    /// List every server's resources, or read one.
    Resources {
        /// Read this resource (a listed URI or server:uri) instead of listing.
        #[arg(long, value_name = "URI")]
        read: Option<String>,
    },
    /// List every server's prompts, or get one.
    Prompts {
        /// Get this prompt instead of listing.
        #[arg(long, value_name = "NAME")]
        get: Option<String>,
        /// The prompt's arguments, a JSON object.
        #[arg(
            long = "args",
            value_name = "JSON",
            default_value = "{}",
            requires = "get"
        )]
        arguments: String,
    },
}

/// Builds the registry of `--servers`.
pub(crate) fn registry_from(
    servers: Option<&PathBuf>,
    prefix_mode: PrefixMode,
) -> anyhow::Result<Registry> {
    let Some(path) = servers else {
        bail!("--servers FILE is required (or set LOOM_MCP_SERVERS)");
    };
    let specs = load_servers_file(path)?;
    if specs.is_empty() {
        bail!("{} lists no MCP servers", path.display());
    }
    Ok(Registry::with_options(
        specs,
        RegistryOptions {
            prefix_mode,
            ..RegistryOptions::default()
        },
    )?)
}

/// Reports the servers that could not be reached, on stderr.
pub(crate) fn warn_unavailable(registry: &Registry) {
    for (server, error) in registry.unavailable() {
        tracing::warn!(server = %server, error = %error, "MCP server is unavailable.");
    }
}

fn parse_object(text: &str, what: &str) -> anyhow::Result<Map<String, Value>> {
    let text = if text == "-" {
        let mut input = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut input)
            .context("cannot read stdin")?;
        input
    } else {
        text.to_owned()
    };
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => bail!("{what} must be a JSON object"),
        Err(e) => bail!("{what} is not valid JSON: {e}"),
    }
}

/// Runs `loom tools`.
pub(crate) fn run(args: &ToolsArgs) -> anyhow::Result<ExitCode> {
    let registry = registry_from(args.servers.as_ref(), args.prefix_mode)?;
    let runtime = tokio_runtime()?;
    runtime.block_on(async {
        let code = run_command(args, &registry).await;
        registry.close().await;
        code
    })
}

async fn run_command(args: &ToolsArgs, registry: &Registry) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match &args.command {
        ToolsCommand::List => {
            let tools = registry.tools().await;
            warn_unavailable(registry);
            if args.json {
                let list: Vec<Value> = tools
                    .iter()
                    .map(|t| {
                        json!({"name": t.name, "server": t.server, "description": t.description,
                               "input_schema": t.input_schema, "destructive": t.destructive})
                    })
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
            } else {
                for t in &tools {
                    let summary = t.description.lines().next().unwrap_or_default();
                    writeln!(out, "{}\t{}\t{}", t.name, t.server, summary)?;
                }
            }
        }
        ToolsCommand::Call { name, arguments } => {
            let arguments = parse_object(arguments, "the tool arguments")?;
            let output = registry.call(name, arguments).await;
            warn_unavailable(registry);
            let output = output?;
            if args.json {
                let value = json!({"text": output.text, "structured": output.structured, "is_error": output.is_error});
                writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
            } else {
                writeln!(out, "{}", output.text)?;
            }
            if output.is_error {
                return Ok(ExitCode::from(EXIT_NO));
            }
        }
        ToolsCommand::Resources { read: Some(uri) } => {
            let value = registry.read_resource(uri, None).await?;
            match value {
                Value::String(text) if !args.json => writeln!(out, "{text}")?,
                other => writeln!(out, "{}", serde_json::to_string_pretty(&other)?)?,
            }
        }
        ToolsCommand::Resources { read: None } => {
            let resources = registry.resources().await;
            warn_unavailable(registry);
            if args.json {
                let list: Vec<Value> = resources
                    .iter()
                    .map(|r| json!({"uri": r.uri, "server": r.server, "name": r.name, "description": r.description, "mime_type": r.mime_type}))
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
            } else {
                for r in &resources {
                    writeln!(out, "{}\t{}\t{}", r.uri, r.server, r.name)?;
                }
            }
        }
        ToolsCommand::Prompts {
            get: Some(name),
            arguments,
        } => {
            let arguments = parse_object(arguments, "the prompt arguments")?;
            let value = registry.get_prompt(name, arguments).await?;
            writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
        }
        ToolsCommand::Prompts { get: None, .. } => {
            let prompts = registry.prompts().await;
            warn_unavailable(registry);
            if args.json {
                let list: Vec<Value> = prompts
                    .iter()
                    .map(|p| json!({"name": p.name, "server": p.server, "description": p.description, "arguments": p.arguments}))
                    .collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
            } else {
                for p in &prompts {
                    writeln!(out, "{}\t{}\t{}", p.name, p.server, p.description)?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
