//! `loom mcp`: the MCP gateway over stdio or streamable HTTP.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use loom_core::config::load_gateway;
use loom_gateway::{Gateway, GatewayOptions, HttpOptions, HttpServer};
use secrecy::SecretString;

use crate::runtime::{NatsArgs, close_bus, shutdown_on_signals, tokio_runtime};

/// The long help of `loom mcp`.
pub(crate) const LONG_ABOUT: &str = "Serve the MCP gateway described by a config: workers, pipelines and \
query backends as MCP tools, a workspace folder as MCP resources.\n\n\
Without --nats-url (and without nats_url in the config) the router, workers and pipelines of \
the config run inside this process on the in-process bus: one command runs everything. With \
a NATS URL the gateway dispatches to a mesh running elsewhere.\n\n\
Transports: stdio (default; for Claude Desktop, Cursor and other clients that start the \
server) or streamable HTTP at http://HOST:PORT/mcp, with GET /health reporting the bus state. \
Both MCP protocol eras are served (2025-11-25 with initialize, 2026-07-28 stateless). Logs go \
to stderr only.\n\n\
HTTP security: binds 127.0.0.1 by default; only loopback Host names and browser Origins are \
accepted unless --allowed-host/--allowed-origin add more; with --auth-token-file or \
LOOM_MCP_AUTH_TOKEN every /mcp request needs `Authorization: Bearer <token>`; request bodies \
are capped by --max-body-bytes.\n\n\
Claude Desktop (claude_desktop_config.json):\n  \
{\"mcpServers\": {\"docman\": {\"command\": \"loom\", \"args\": [\"mcp\", \"--config\", \"/path/to/examples/docman/mcp.yaml\"]}}}";

/// Which transport to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// JSON-RPC over stdin/stdout.
    Stdio,
    /// Streamable HTTP at /mcp.
    #[value(alias = "streamable-http")]
    Http,
}

/// Arguments of `loom mcp`.
#[derive(Debug, Args)]
pub struct McpArgs {
    /// The gateway config.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,

    /// The transport to serve.
    #[arg(long, value_enum, default_value_t = Transport::Stdio)]
    pub transport: Transport,

    /// Address to listen on (http).
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub host: IpAddr,

    /// Port to listen on (http); 0 picks a free one.
    #[arg(long, value_name = "PORT", default_value_t = 8000)]
    pub port: u16,

    /// File with bearer tokens, one per line (http). Also LOOM_MCP_AUTH_TOKEN.
    #[arg(long, value_name = "FILE")]
    pub auth_token_file: Option<PathBuf>,

    /// Also accept this Host name (repeatable; '*' accepts any) (http).
    #[arg(long = "allowed-host", value_name = "HOST")]
    pub allowed_hosts: Vec<String>,

    /// Also accept this browser Origin, e.g. https://app.example:* (repeatable) (http).
    #[arg(long = "allowed-origin", value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,

    /// Largest request body in bytes (http).
    #[arg(long, value_name = "BYTES", default_value_t = loom_gateway::http::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    #[command(flatten)]
    pub nats: NatsArgs,
}

/// Runs `loom mcp`.
pub(crate) fn run(args: &McpArgs) -> anyhow::Result<ExitCode> {
    let config = load_gateway(&args.config)?;
    let tokens = auth_tokens(args)?;
    let mut nats = args.nats.clone();
    if nats.nats_url.is_none() {
        nats.nats_url = config.nats_url.clone();
    }
    let embedded = nats.nats_url.is_none();
    let backends = crate::runtime::tier_backends()?;
    tokio_runtime()?.block_on(async {
        let bus = nats
            .connect_or_embedded(&format!("loom-mcp-{}", config.name))
            .await?;
        let shutdown = shutdown_on_signals();
        let options = GatewayOptions::default()
            .embedded(embedded)
            .with_backends(backends)
            .with_nats_url(nats.nats_url.clone());
        let gateway = Gateway::start(config, bus.clone(), options, shutdown.clone()).await?;
        let served = match args.transport {
            Transport::Stdio => gateway
                .serve_stdio(shutdown.clone())
                .await
                .map_err(anyhow::Error::from),
            Transport::Http => {
                let http = HttpOptions::new(SocketAddr::new(args.host, args.port))
                    .with_auth_tokens(tokens)
                    .with_allowed_hosts(args.allowed_hosts.clone())
                    .with_allowed_origins(args.allowed_origins.clone())
                    .with_max_body_bytes(args.max_body_bytes);
                match HttpServer::bind(gateway.handler(), http, shutdown.clone()).await {
                    Ok(server) => server
                        .run(shutdown.clone())
                        .await
                        .map_err(anyhow::Error::from),
                    Err(e) => Err(e.into()),
                }
            }
        };
        shutdown.cancel();
        gateway.stop().await;
        close_bus(&*bus).await;
        served?;
        Ok(ExitCode::SUCCESS)
    })
}

fn auth_tokens(args: &McpArgs) -> anyhow::Result<Vec<SecretString>> {
    let mut tokens = Vec::new();
    if let Some(path) = &args.auth_token_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        tokens.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| SecretString::from(l.to_owned())),
        );
        if tokens.is_empty() {
            bail!("{} holds no token", path.display());
        }
    }
    if let Ok(t) = std::env::var("LOOM_MCP_AUTH_TOKEN") {
        if !t.trim().is_empty() {
            tokens.push(SecretString::from(t.trim().to_owned()));
        }
    }
    if !tokens.is_empty() && args.transport == Transport::Stdio {
        tracing::warn!(
            "Bearer tokens apply to HTTP only; stdio is reachable only by the process that started it."
        );
    }
    Ok(tokens)
}
