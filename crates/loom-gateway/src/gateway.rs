//! Putting a gateway together: the embedded mesh (when there is no NATS), the bridge,
//! the tool catalog, the workspace resources and their watcher.

use std::path::PathBuf;
use std::sync::Arc;

use loom_bus::Bus;
use loom_core::config::{AnyConfig, ConfigError, GatewayConfig};
use loom_llm::TierBackends;
use loom_mesh::mesh::{MeshError, MeshOptions, MeshPlan, PlanError, RunningMesh, start_mesh};
use rmcp::ServiceExt;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::bridge::{Bridge, BridgeError};
use crate::catalog::Catalog;
use crate::local_tools::LocalTools;
use crate::resources::{ResourceError, ResourceWatcher, WorkspaceResources};
use crate::server::McpHandler;
use crate::upstream::{UpstreamOptions, Upstreams};

/// Why a gateway could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The embedded mesh cannot be planned from the config.
    #[error("cannot plan the embedded mesh")]
    Plan(#[from] PlanError),
    /// A pipeline stage has no worker in the embedded mesh.
    #[error(
        "on the in-process bus nothing else can serve these stages; list their workers under tools.workers or pass --nats-url:\n{0}"
    )]
    MissingWorkers(String),
    /// Query tools need their query workers, which this build cannot run in process yet.
    #[error(
        "tools.queries needs query workers, which the embedded mesh cannot run yet; pass --nats-url to use query workers running elsewhere"
    )]
    QueriesNotEmbedded,
    /// A query entry's `backend_config` is invalid.
    #[error("invalid query backend settings:\n{0}")]
    QueryConfig(String),
    /// The embedded mesh did not start.
    #[error("cannot start the embedded mesh")]
    Mesh(#[from] MeshError),
    /// The bridge could not subscribe.
    #[error("cannot start the bus bridge")]
    Bridge(#[from] BridgeError),
    /// The workspace resources could not be opened or watched.
    #[error("cannot serve workspace resources")]
    Resources(#[from] ResourceError),
    /// The dead-letter store could not subscribe to `loom.tasks.dead_letter`.
    #[error("cannot subscribe to dead letters")]
    DeadLetters(#[source] loom_bus::SubscribeError),
    /// An upstream MCP server entry cannot become a client.
    #[error("cannot set up upstream MCP servers")]
    Upstreams(#[from] crate::upstream::UpstreamError),
    /// The stdio transport failed.
    #[error("the stdio transport failed: {0}")]
    Stdio(String),
}

/// Checks the `backend_config` of every query entry as its query worker will read it,
/// returning each problem at its line in the gateway config.
pub fn check_queries(config: &GatewayConfig) -> Vec<ConfigError> {
    let base_dir = config
        .source
        .parent()
        .unwrap_or_else(|| std::path::Path::new("."));
    let mut out = Vec::new();
    for (i, q) in config.queries.iter().enumerate() {
        let mut settings = q.backend_config.clone();
        // Keys the query worker reads itself (the DuckDB extension, the seed file).
        for key in loom_mesh::processors::query::WORKER_KEYS {
            settings.remove(key);
        }
        if let Err(problems) = loom_query::QueryConfig::from_backend_config(&settings, base_dir) {
            for p in problems {
                let key_path = format!("tools.queries[{i}].{}", p.key_path);
                out.push(ConfigError {
                    file: config.source.clone(),
                    location: loom_core::config::locate(&config.source, &key_path),
                    key_path,
                    message: p.message,
                });
            }
        }
    }
    out
}

/// How a gateway runs.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct GatewayOptions {
    /// Run the router, workers and pipelines of the config in this process (the bus is
    /// an in-process one). Otherwise they run elsewhere on the bus.
    pub embedded: bool,
    /// Model backends for embedded LLM workers (and the workshop's test bench).
    pub backends: TierBackends,
    /// Where the workshop database and session markers live; default `$LOOM_HOME`,
    /// else `~/.loom`.
    pub loom_home: Option<PathBuf>,
    /// How upstream MCP servers (`tools.mcp_servers`) are checked and called.
    pub upstreams: UpstreamOptions,
    /// The NATS URL the gateway's bus was connected to when it came from the command
    /// line rather than the config; the session tools' NATS check uses it when their
    /// own section names none.
    pub nats_url: Option<String>,
}

impl GatewayOptions {
    /// Runs the mesh in process.
    pub fn embedded(mut self, embedded: bool) -> Self {
        self.embedded = embedded;
        self
    }

    /// Sets the model backends of embedded LLM workers.
    pub fn with_backends(mut self, backends: TierBackends) -> Self {
        self.backends = backends;
        self
    }

    /// Sets how upstream MCP servers are checked and called.
    pub fn with_upstream_options(mut self, options: UpstreamOptions) -> Self {
        self.upstreams = options;
        self
    }

    /// Sets the NATS URL the bus was connected to (see [`GatewayOptions::nats_url`]).
    pub fn with_nats_url(mut self, url: Option<String>) -> Self {
        self.nats_url = url;
        self
    }

    /// Sets the Loom home folder (workshop database, session markers).
    pub fn with_loom_home(mut self, home: impl Into<PathBuf>) -> Self {
        self.loom_home = Some(home.into());
        self
    }
}

/// A started gateway, ready to serve over stdio or HTTP.
pub struct Gateway {
    handler: McpHandler,
    bridge: Bridge,
    mesh: Option<RunningMesh>,
    watcher: Option<ResourceWatcher>,
    notifier: Option<tokio::task::JoinHandle<()>>,
    dead_letters: Option<tokio::task::JoinHandle<()>>,
    upstreams: Option<(Upstreams, tokio::task::JoinHandle<()>)>,
    upstream_notifier: Option<tokio::task::JoinHandle<()>>,
}

impl Gateway {
    /// Starts everything `config` needs on `bus`. Cancelling `shutdown` stops the embedded
    /// mesh and the resource watcher; call [`Gateway::stop`] afterwards to wait for them.
    pub async fn start(
        config: GatewayConfig,
        bus: Arc<dyn Bus>,
        options: GatewayOptions,
        shutdown: CancellationToken,
    ) -> Result<Gateway, GatewayError> {
        let problems = check_queries(&config);
        if !problems.is_empty() {
            let lines: Vec<String> = problems.iter().map(|e| format!("  {e}")).collect();
            return Err(GatewayError::QueryConfig(lines.join("\n")));
        }
        // Upstreams before the mesh: its `mcp_tool` stages call them.
        let upstreams = match &config.mcp_servers {
            Some(section) => {
                let own = Catalog::from_config(&config)
                    .tools()
                    .iter()
                    .map(|t| t.name.clone())
                    .collect::<Vec<_>>();
                Some(Upstreams::new(section, own, options.upstreams.clone())?)
            }
            None => None,
        };
        let mesh = if options.embedded {
            let plan = MeshPlan::from_configs([AnyConfig::Gateway(Box::new(config.clone()))])?;
            let missing = plan.missing_workers();
            if !missing.is_empty() {
                let lines: Vec<String> = missing.iter().map(|m| format!("  {m}")).collect();
                return Err(GatewayError::MissingWorkers(lines.join("\n")));
            }
            let mut mesh_options = MeshOptions::default();
            if let (Some(u), Some(section)) = (&upstreams, &config.mcp_servers) {
                mesh_options = mesh_options.with_tools(Arc::new(u.tool_host(section)));
            }
            let mesh = start_mesh(
                bus.clone(),
                plan,
                options.backends.clone(),
                mesh_options,
                shutdown.clone(),
            )
            .await?;
            Some(mesh)
        } else {
            None
        };
        let bridge = Bridge::start(bus.clone()).await?;
        let catalog = Catalog::from_config(&config);
        let (resources, watcher) = match &config.resources {
            Some(section) => {
                let resources = WorkspaceResources::open(section)?;
                let watcher = resources.watch(Some(bus.clone()), shutdown.clone()).await?;
                (Some(resources), Some(watcher))
            }
            None => (None, None),
        };
        let (local, dead_letters) = local_tools(&config, &options, &bus, &shutdown).await?;
        let upstreams = match upstreams {
            Some(upstreams) => {
                let task = upstreams.start(shutdown.child_token()).await;
                Some((upstreams, task))
            }
            None => None,
        };
        info!(name = %config.name, tools = catalog.len(), resources = resources.is_some(), embedded = options.embedded, "Gateway ready.");
        let handler = McpHandler::with_local_tools(
            config.name.clone(),
            config.description.clone(),
            catalog,
            bridge.clone(),
            resources,
            local,
        );
        let handler = match &upstreams {
            Some((u, _)) => handler.with_upstreams(u.clone()),
            None => handler,
        };
        let notifier = handler.spawn_legacy_notifier();
        let upstream_notifier = handler.spawn_upstream_notifier();
        Ok(Gateway {
            handler,
            bridge,
            mesh,
            watcher,
            notifier,
            dead_letters,
            upstreams,
            upstream_notifier,
        })
    }

    /// The MCP handler, for a transport.
    pub fn handler(&self) -> McpHandler {
        self.handler.clone()
    }

    /// Serves MCP over stdin/stdout until the client closes stdin or `shutdown` fires.
    pub async fn serve_stdio(&self, shutdown: CancellationToken) -> Result<(), GatewayError> {
        let running = self
            .handler
            .clone()
            .serve_with_ct(rmcp::transport::stdio(), shutdown.child_token())
            .await
            .map_err(|e| GatewayError::Stdio(e.to_string()))?;
        if let Err(e) = running.waiting().await {
            warn!(error = %e, "The stdio session ended with an error.");
        }
        Ok(())
    }

    /// Waits for the embedded mesh and the watcher to stop (after `shutdown` fired) and
    /// ends the bridge.
    pub async fn stop(self) {
        if let Some(n) = self.notifier {
            n.abort();
        }
        if let Some(d) = self.dead_letters {
            d.abort();
        }
        if let Some(n) = self.upstream_notifier {
            n.abort();
        }
        if let Some((upstreams, task)) = self.upstreams {
            // The supervisor closes the registry when `shutdown` fires; close anyway.
            task.abort();
            upstreams.close().await;
        }
        drop(self.watcher);
        if let Some(mesh) = self.mesh {
            mesh.join().await;
        }
        self.bridge.close().await;
    }
}

/// The workshop and session tools of `config`, and the task storing dead letters when
/// the `deadletter` group is enabled. Nothing is opened yet: the workshop database is
/// opened on first use.
async fn local_tools(
    config: &GatewayConfig,
    options: &GatewayOptions,
    bus: &Arc<dyn Bus>,
    shutdown: &CancellationToken,
) -> Result<(LocalTools, Option<tokio::task::JoinHandle<()>>), GatewayError> {
    use loom_core::config::WorkshopGroup;
    use loom_workshop::sessions::{SessionOptions, Sessions};
    use loom_workshop::{Workshop, WorkshopOptions};

    if config.workshop.is_none() && config.session.is_none() {
        return Ok((LocalTools::default(), None));
    }
    let home = options
        .loom_home
        .clone()
        .or_else(|| loom_workshop::home::loom_home(|k| std::env::var(k).ok()))
        .unwrap_or_else(|| {
            warn!("Neither LOOM_HOME nor HOME is set; keeping workshop data in ./.loom.");
            PathBuf::from(".loom")
        });
    let mut local = LocalTools::default();
    let mut dead_letters = None;
    if let Some(section) = &config.workshop {
        let workshop = Workshop::new(
            WorkshopOptions::new(section.configs_dir.clone(), home.clone())
                .with_apps_dir(section.apps_dir.clone())
                .with_backends(options.backends.clone())
                .with_judge_tier(
                    section
                        .judge_tier
                        .unwrap_or(loom_core::message::ModelTier::Standard),
                ),
        );
        if section.enable.contains(&WorkshopGroup::Deadletter) {
            let task = workshop
                .dead_letters()
                .listen(bus.clone(), shutdown.child_token())
                .await
                .map_err(GatewayError::DeadLetters)?;
            dead_letters = Some(task);
        }
        local.workshop = Some(crate::workshop_tools::WorkshopTools::new(
            workshop,
            Some(bus.clone()),
        ));
    }
    if let Some(section) = &config.session {
        let base = config
            .source
            .parent()
            .map_or_else(|| PathBuf::from("."), std::path::Path::to_path_buf);
        let mut o = SessionOptions::new(
            section.framework_dir.clone().unwrap_or(base),
            loom_workshop::home::sessions_dir(&home),
        );
        o.workspace_dir = section.workspace_dir.clone();
        o.nats_url = section
            .nats_url
            .clone()
            .or_else(|| options.nats_url.clone())
            .or_else(|| config.nats_url.clone());
        o.ollama_url = section
            .ollama_url
            .clone()
            .or_else(|| std::env::var("OLLAMA_URL").ok().filter(|u| !u.is_empty()));
        o.upstream = section.upstream.clone();
        o.hook = section.hook.clone();
        if let Some(t) = section
            .hook_timeout_seconds
            .and_then(|s| std::time::Duration::try_from_secs_f64(s).ok())
        {
            o.hook_timeout = t;
        }
        o.commit_paths = section.commit_paths.clone();
        local.sessions = Some(crate::session_tools::SessionTools::new(Sessions::new(o)));
    }
    Ok((local, dead_letters))
}
