//! Upstream MCP servers re-exported next to the mesh's tools (`tools.mcp_servers`).
//!
//! One [`loom_mcp::Registry`] holds one long-lived session per upstream (no initialize
//! per call). Its tools are listed after the mesh's, named by the registry's
//! [`PrefixMode`]; a name a mesh tool already has is listed as `server.tool`; each
//! upstream's `allow`/`deny` lists filter what is listed and callable.
//!
//! Fail-open: an upstream that cannot be reached is left out and the gateway serves the
//! rest. A supervisor re-lists every upstream each [`UpstreamOptions::check_interval`]
//! (dropping a failed session so the next try starts afresh), and a watcher turns the
//! registry's tool events into [`UpstreamChange`]s, which `server` sends to clients as
//! `notifications/*/list_changed` (legacy peers and modern `subscriptions/listen` alike).
//!
//! A cancelled downstream call drops the upstream request, which sends
//! `notifications/cancelled` upstream (rmcp's cancel-on-drop). A call whose client gave
//! a progress token is sent upstream with one, and the upstream's progress reports are
//! relayed to the client's token, in order, before the result.

mod convert;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use loom_core::config::{McpServerConfig, McpServers};
use loom_mcp::{McpError, ProgressCallback, Registry, RegistryOptions};
use rmcp::model::{
    CallToolResult, GetPromptResult, Prompt, ReadResourceResult, Resource, ResourceTemplate, Tool,
};
use serde_json::{Map, Value};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Change events buffered per subscriber; a subscriber that lags is told everything
/// changed.
const CHANGE_BUFFER: usize = 16;

/// How the gateway watches its upstreams.
#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    /// How often every upstream is re-listed, so a dead one is noticed and a recovered
    /// one comes back (default 5 s).
    pub check_interval: Duration,
    /// The registry's settings (timeouts, retries); its prefix mode is the config's.
    pub registry: RegistryOptions,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        Self {
            check_interval: Duration::from_secs(5),
            registry: RegistryOptions::default(),
        }
    }
}

/// What changed upstream, for list-changed notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpstreamChange {
    /// The re-exported tool list.
    Tools,
    /// Which upstreams are reachable (so their resources and prompts changed too).
    Servers,
}

/// Why an upstream call failed; names the upstream and the tool.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The upstream failed or could not be reached.
    #[error("upstream MCP server '{server}', tool '{tool}': {source}")]
    Call {
        /// The upstream.
        server: String,
        /// The tool, as the upstream names it.
        tool: String,
        /// What went wrong.
        source: Box<McpError>,
    },
    /// An upstream entry cannot become a client.
    #[error("upstream MCP servers: {message}")]
    Setup {
        /// What is wrong.
        message: String,
    },
    /// An upstream prompt could not be fetched or read.
    #[error("upstream MCP prompt '{prompt}': {message}")]
    Prompt {
        /// The prompt as listed.
        prompt: String,
        /// What went wrong.
        message: String,
    },
    /// The client cancelled the call; the upstream was told.
    #[error("upstream MCP server '{server}', tool '{tool}': cancelled by the client")]
    Cancelled {
        /// The upstream.
        server: String,
        /// The tool.
        tool: String,
    },
}

/// The upstream MCP servers of one gateway. Cheap to clone.
#[derive(Clone)]
pub struct Upstreams {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Upstreams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstreams")
            .field("registry", &self.inner.registry)
            .finish_non_exhaustive()
    }
}

struct Inner {
    registry: Registry,
    configs: HashMap<String, McpServerConfig>,
    /// Names the mesh's tools already use.
    reserved: HashSet<String>,
    table: RwLock<Arc<Table>>,
    changes: broadcast::Sender<UpstreamChange>,
    options: UpstreamOptions,
    /// A check is running.
    checking: std::sync::atomic::AtomicBool,
}

/// The re-exported tools: definitions and where each listed name goes.
#[derive(Default, PartialEq)]
struct Table {
    tools: Vec<Tool>,
    /// Listed name → where it goes.
    routes: HashMap<String, Route>,
    /// Reachable upstreams.
    available: Vec<String>,
}

/// Where a listed upstream tool goes.
#[derive(PartialEq)]
struct Route {
    /// The upstream.
    server: String,
    /// The server's own tool name.
    tool: String,
    /// The registry's qualified name (`server.tool`), built once.
    qualified: String,
    /// Its definition's place in [`Table::tools`].
    index: usize,
}

impl Upstreams {
    /// The upstreams of `section`, not connected yet; `reserved` are the names of the
    /// gateway's own tools, which upstream tools never shadow.
    pub fn new(
        section: &McpServers,
        reserved: impl IntoIterator<Item = String>,
        mut options: UpstreamOptions,
    ) -> Result<Self, UpstreamError> {
        let registry =
            loom_mesh::mcp::registry(section, options.registry.clone()).map_err(|e| {
                UpstreamError::Setup {
                    message: e.to_string(),
                }
            })?;
        options.registry.prefix_mode = loom_mesh::mcp::prefix_mode(section.prefix_mode);
        let (changes, _) = broadcast::channel(CHANGE_BUFFER);
        Ok(Self {
            inner: Arc::new(Inner {
                registry,
                configs: section
                    .servers
                    .iter()
                    .map(|c| (c.name.clone(), c.clone()))
                    .collect(),
                reserved: reserved.into_iter().collect(),
                table: RwLock::new(Arc::new(Table::default())),
                changes,
                options,
                checking: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    /// Connects every upstream in parallel (one that fails is left out and tried again),
    /// lists their tools, and starts the watcher and the supervisor, which stop when
    /// `shutdown` fires.
    pub async fn start(&self, shutdown: CancellationToken) -> tokio::task::JoinHandle<()> {
        let mut watch = self.inner.registry.watch();
        self.inner.registry.connect().await;
        self.inner.rebuild().await;
        for (server, error) in self.inner.registry.unavailable() {
            warn!(server = %server, error = %error, "Upstream MCP server is unavailable; serving without it.");
        }
        info!(
            upstreams = self.inner.configs.len(),
            tools = self.tools().len(),
            "Upstream MCP servers ready."
        );
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(inner.options.check_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    event = watch.next() => {
                        if event.is_none() {
                            break;
                        }
                        // Take the rest of a burst, then rebuild once.
                        while let Ok(Some(_)) =
                            tokio::time::timeout(Duration::from_millis(20), watch.next()).await
                        {}
                        inner.rebuild().await;
                    }
                    _ = tick.tick() => {
                        // In its own task, so a hung upstream (bounded by the call
                        // timeout) does not hold back change events of the others.
                        if !inner.checking.swap(true, std::sync::atomic::Ordering::AcqRel) {
                            let inner = inner.clone();
                            tokio::spawn(async move {
                                inner.check().await;
                                inner.checking.store(false, std::sync::atomic::Ordering::Release);
                            });
                        }
                    }
                }
            }
            inner.registry.close().await;
        })
    }

    /// The re-exported tool definitions, in registry order.
    pub fn tools(&self) -> Vec<Tool> {
        self.inner.table().tools.clone()
    }

    /// The definition of re-exported tool `name`.
    pub fn tool(&self, name: &str) -> Option<Tool> {
        let table = self.inner.table();
        let route = table.routes.get(name)?;
        table.tools.get(route.index).cloned()
    }

    /// Subscribes to upstream changes.
    pub fn changes(&self) -> broadcast::Receiver<UpstreamChange> {
        self.inner.changes.subscribe()
    }

    /// The registry behind the upstreams.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The upstreams as a [`ToolHost`](loom_llm::ToolHost) with the allow/deny lists
    /// applied, sharing these sessions: what the embedded mesh's `mcp_tool` stages call.
    pub fn tool_host(&self, section: &McpServers) -> loom_mesh::mcp::McpTools {
        loom_mesh::mcp::McpTools::new(self.inner.registry.clone(), section)
    }

    /// Calls re-exported tool `name`; `None` when no upstream tool is listed under it.
    /// The upstream's result is returned as it is (its own `isError` included). With
    /// `progress`, the upstream request carries a progress token and its reports go
    /// there, in order, before this returns.
    pub async fn call(
        &self,
        name: &str,
        arguments: Map<String, Value>,
        progress: Option<ProgressCallback>,
        ct: CancellationToken,
    ) -> Option<Result<CallToolResult, UpstreamError>> {
        let table = self.inner.table();
        let route = table.routes.get(name)?;
        let registry = &self.inner.registry;
        // rmcp's request future is several KiB: boxed, it is not copied each time the
        // futures around it move (measured: 5 copies of ~7 KiB per call unboxed).
        let call: std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send + '_>> =
            match progress {
                Some(progress) => Box::pin(registry.call_result_with_progress(
                    &route.qualified,
                    arguments,
                    progress,
                )),
                None => Box::pin(registry.call_result(&route.qualified, arguments)),
            };
        // Dropping `call` on cancel sends notifications/cancelled upstream.
        let outcome = tokio::select! {
            r = call => r.map_err(|source| UpstreamError::Call {
                server: route.server.clone(),
                tool: route.tool.clone(),
                source: Box::new(source),
            }),
            () = ct.cancelled() => Err(UpstreamError::Cancelled {
                server: route.server.clone(),
                tool: route.tool.clone(),
            }),
        };
        Some(outcome)
    }

    /// The resources of every reachable upstream.
    pub async fn resources(&self) -> Vec<Resource> {
        self.inner
            .registry
            .resources()
            .await
            .into_iter()
            .map(convert::resource)
            .collect()
    }

    /// The resource templates of every reachable upstream, each `uriTemplate` prefixed
    /// with `server:` so that an expansion reads from that upstream.
    pub async fn resource_templates(&self) -> Vec<ResourceTemplate> {
        self.inner
            .registry
            .resource_templates()
            .await
            .into_iter()
            .map(|info| {
                let mut template = info.definition;
                template.uri_template = info.uri_template;
                template
            })
            .collect()
    }

    /// Reads upstream resource `uri` (as listed by [`Upstreams::resources`]).
    pub async fn read_resource(&self, uri: &str) -> Result<ReadResourceResult, McpError> {
        self.inner.registry.read_resource_result(uri, None).await
    }

    /// The prompts of every reachable upstream, named like tools.
    pub async fn prompts(&self) -> Vec<Prompt> {
        self.inner
            .registry
            .prompts()
            .await
            .into_iter()
            .map(convert::prompt)
            .collect()
    }

    /// Gets upstream prompt `name` with `arguments`.
    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: Map<String, Value>,
    ) -> Result<GetPromptResult, UpstreamError> {
        let failed = |message: String| UpstreamError::Prompt {
            prompt: name.to_owned(),
            message,
        };
        let value = self
            .inner
            .registry
            .get_prompt(name, arguments)
            .await
            .map_err(|e| failed(e.to_string()))?;
        convert::prompt_result(value).map_err(failed)
    }

    /// Closes every upstream session (children stopped).
    pub async fn close(&self) {
        self.inner.registry.close().await;
    }
}

impl Inner {
    fn table(&self) -> Arc<Table> {
        self.table
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Re-lists every upstream; a failed one's session is dropped so the next try
    /// reconnects (a restarted HTTP server does not know the old session).
    async fn check(&self) {
        self.registry.refresh().await;
        for (server, error) in self.registry.unavailable() {
            debug!(server = %server, error = %error, "Upstream MCP server still unavailable.");
            if let Some(client) = self.registry.client(&server) {
                client.close().await;
            }
        }
        self.rebuild().await;
    }

    /// Rebuilds the tool table from the registry; tells subscribers what changed.
    async fn rebuild(&self) {
        let infos = self.registry.tools().await;
        let down: HashSet<String> = self
            .registry
            .unavailable()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        let available: Vec<String> = self
            .registry
            .server_names()
            .iter()
            .filter(|s| !down.contains(*s))
            .cloned()
            .collect();
        let mut table = Table {
            available,
            ..Table::default()
        };
        for info in infos {
            let exposed = self
                .configs
                .get(&info.server)
                .is_some_and(|c| c.exposes(&info.tool));
            if !exposed {
                continue;
            }
            let mut name = info.name.clone();
            if self.reserved.contains(&name) || table.routes.contains_key(&name) {
                name = format!("{}.{}", info.server, info.tool);
            }
            if self.reserved.contains(&name) || table.routes.contains_key(&name) {
                warn!(server = %info.server, tool = %info.tool, "Upstream tool name is taken by a gateway tool; leaving it out.");
                continue;
            }
            table.tools.push(convert::tool(&name, &info));
            let route = Route {
                server: info.server.clone(),
                tool: info.tool.clone(),
                qualified: format!("{}.{}", info.server, info.tool),
                index: table.tools.len() - 1,
            };
            table.routes.insert(name, route);
        }
        let (tools_changed, servers_changed) = {
            let mut current = self
                .table
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if **current == table {
                return;
            }
            let changed = (
                current.tools != table.tools,
                current.available != table.available,
            );
            *current = Arc::new(table);
            changed
        };
        if tools_changed {
            let _ = self.changes.send(UpstreamChange::Tools);
        }
        if servers_changed {
            let _ = self.changes.send(UpstreamChange::Servers);
        }
    }
}

/// `caps` plus what upstreams bring: tool, resource and prompt lists that change.
pub fn with_upstream_capabilities(
    mut caps: rmcp::model::ServerCapabilities,
) -> rmcp::model::ServerCapabilities {
    let mut tools = caps.tools.take().unwrap_or_default();
    tools.list_changed = Some(true);
    caps.tools = Some(tools);
    let mut resources = caps.resources.take().unwrap_or_default();
    resources.list_changed = Some(true);
    caps.resources = Some(resources);
    let mut prompts = caps.prompts.take().unwrap_or_default();
    prompts.list_changed = Some(true);
    caps.prompts = Some(prompts);
    caps
}

/// Reads upstream resource `uri` for a client of the given era (not found: -32002 for
/// legacy clients, -32602 for modern ones, with the URI in `data`).
pub async fn read_resource(
    upstreams: &Upstreams,
    uri: &str,
    modern: bool,
) -> Result<ReadResourceResult, rmcp::model::ErrorData> {
    use rmcp::model::ErrorData;
    match upstreams.read_resource(uri).await {
        Ok(result) => Ok(result),
        Err(e @ (McpError::UnknownResource { .. } | McpError::UnknownServer { .. })) => {
            let data = Some(serde_json::json!({ "uri": uri }));
            Err(if modern {
                ErrorData::invalid_params(e.to_string(), data)
            } else {
                ErrorData::resource_not_found(e.to_string(), data)
            })
        }
        Err(e @ McpError::AmbiguousResource { .. }) => {
            Err(ErrorData::invalid_params(e.to_string(), None))
        }
        Err(e) => Err(ErrorData::internal_error(e.to_string(), None)),
    }
}

/// Sends upstream changes to a modern client's subscription until it ends.
pub async fn listen(
    mut changes: broadcast::Receiver<UpstreamChange>,
    sink: rmcp::service::SubscriptionSink,
    ct: CancellationToken,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let change = tokio::select! {
            () = ct.cancelled() => return,
            c = changes.recv() => match c {
                Ok(c) => c,
                Err(RecvError::Lagged(_)) => UpstreamChange::Servers,
                Err(RecvError::Closed) => return,
            },
        };
        // The sink refuses categories the client did not ask for; that is fine.
        let _ = sink.notify_tool_list_changed().await;
        if change == UpstreamChange::Servers {
            let _ = sink.notify_prompt_list_changed().await;
            let _ = sink.notify_resource_list_changed().await;
        }
    }
}
