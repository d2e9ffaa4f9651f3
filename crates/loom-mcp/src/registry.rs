//! `Registry`: several MCP servers behind one [`ToolHost`] — lazy parallel connect,
//! isolated failures, deterministic names, cached tool lists refreshed on list-changed,
//! reconnect-and-retry once, federated resources and prompts, change events, cleanup.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::future::join_all;
use loom_llm::{RetryPolicy, ToolError, ToolHost, ToolSpec};
use rmcp::model::Tool;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::client::{Change, Client, ClientOptions, Connection, ProgressCallback};
use crate::error::McpError;
use crate::naming::{Item, Names, PrefixMode};
use crate::output;
use crate::retry::retry_rate_limited;
use crate::spec::ServerSpec;

/// Events buffered per [`Registry::watch`] subscriber; when full, further events of that
/// batch are dropped for it (with a warning), so a slow watcher never blocks a refresh.
pub const WATCH_BUFFER: usize = 64;

/// The first wait before an unavailable server is tried again; it doubles per failure.
const UNAVAILABLE_RETRY_BASE: Duration = Duration::from_secs(1);
/// The longest wait between tries of an unavailable server.
const UNAVAILABLE_RETRY_MAX: Duration = Duration::from_secs(60);

/// Settings of a [`Registry`]. Every value is valid, so the fields are public.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RegistryOptions {
    /// When names carry their server's prefix.
    pub prefix_mode: PrefixMode,
    /// Retries of rate-limited (HTTP 429) requests.
    pub retry: RetryPolicy,
    /// Timeouts of each server's client.
    pub client: ClientOptions,
}

/// A tool as the registry lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolInfo {
    /// The name to call it by: bare, or `server.tool` (see [`PrefixMode`]).
    pub name: String,
    /// The server that has it.
    pub server: String,
    /// The tool's own name on that server.
    pub tool: String,
    /// Its description, empty when it has none.
    pub description: String,
    /// The JSON Schema of its arguments (`{"type": "object"}` when it declares none).
    pub input_schema: Value,
    /// Whether it may be destructive: `destructiveHint` when given, else
    /// `readOnlyHint == false`, else (no annotations) not destructive.
    pub destructive: bool,
    /// The server's own definition, as listed (its name is the server's, not
    /// [`ToolInfo::name`]): title, output schema, annotations and all, for a gateway that
    /// re-exports the tool.
    pub definition: Tool,
}

/// A resource as the registry lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceInfo {
    /// The URI to read it by: bare, or `server:uri` when several servers list it.
    pub uri: String,
    /// The server that has it.
    pub server: String,
    /// Its name.
    pub name: String,
    /// Its description, empty when it has none.
    pub description: String,
    /// Its MIME type, if declared.
    pub mime_type: Option<String>,
}

/// A resource template as the registry lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceTemplateInfo {
    /// The server that has it.
    pub server: String,
    /// Its URI template prefixed with `server:`, so an expansion is read from that server
    /// by [`Registry::read_resource`].
    pub uri_template: String,
    /// The server's own definition (its `uriTemplate` unprefixed).
    pub definition: rmcp::model::ResourceTemplate,
}

/// A prompt as the registry lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptInfo {
    /// The name to get it by: bare, or `server.prompt` (see [`PrefixMode`]).
    pub name: String,
    /// The server that has it.
    pub server: String,
    /// Its description, empty when it has none.
    pub description: String,
    /// Its declared arguments, as JSON.
    pub arguments: Value,
}

/// The result of a tool call.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolOutput {
    /// The text for the model (see [`output::tool_result_text`]).
    pub text: String,
    /// `structuredContent`, when the tool returned it.
    pub structured: Option<Value>,
    /// Whether the tool reported an error (`isError`).
    pub is_error: bool,
}

/// What changed in the tool list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ToolEventKind {
    /// A tool appeared.
    Added,
    /// A tool's definition changed.
    Updated,
    /// A tool disappeared.
    Removed,
}

/// One change of the tool list, from [`Registry::watch`].
#[derive(Debug, Clone, PartialEq)]
pub struct ToolEvent {
    /// What happened.
    pub kind: ToolEventKind,
    /// The tool's listed name.
    pub tool: String,
    /// Its server.
    pub server: String,
}

/// Change events of a registry; ends when the registry closes.
#[derive(Debug)]
pub struct Watch {
    rx: mpsc::Receiver<ToolEvent>,
}

impl Watch {
    /// The next event, or `None` once the registry is closed.
    pub async fn next(&mut self) -> Option<ToolEvent> {
        self.rx.recv().await
    }
}

/// Several MCP servers federated behind one [`ToolHost`].
///
/// Nothing connects when it is built: the first operation connects every server in
/// parallel; a server that fails is listed in [`Registry::unavailable`], its tools are
/// absent, and it is tried again in the background with back-off. Names follow
/// [`PrefixMode`] (bare when unique, `server.tool` when shared, by default); a call
/// accepts the listed name, `server.tool` and `server__tool`, and forwards the server's
/// own tool name. Tool lists are cached per server and refreshed when a server reports a
/// change, after a reconnect, and on [`Registry::refresh`].
///
/// A request that fails because the connection broke reconnects that server (once,
/// however many callers saw the failure) and is retried once; a server found dead before
/// a request is simply respawned. A call cut short by the server's death mid-call is not
/// retried (it may have run): the error carries the exit status and stderr tail, and the
/// next call respawns the server. HTTP 429 answers are retried per [`RetryPolicy`].
///
/// Cloning is cheap and shares the connections.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("servers", &self.inner.servers)
            .finish_non_exhaustive()
    }
}

struct Inner {
    servers: Vec<String>,
    clients: Vec<Arc<Client>>,
    options: RegistryOptions,
    state: Mutex<State>,
    /// Held while the first connect runs, so concurrent first operations connect once.
    start: tokio::sync::Mutex<()>,
    /// One refresh of a server at a time.
    refreshing: Vec<tokio::sync::Mutex<()>>,
    watchers: Mutex<Vec<mpsc::Sender<ToolEvent>>>,
}

#[derive(Default)]
struct State {
    started: bool,
    /// Per server: its tools from the last successful listing.
    tools: Vec<Option<Vec<Tool>>>,
    /// Per server: why it is unavailable, and when to try it again.
    unavailable: BTreeMap<usize, Unavailable>,
    /// Servers whose tool list changed since it was pulled.
    stale: HashSet<usize>,
    names: Names,
    flat: Vec<(usize, Tool)>,
    resource_owners: HashMap<String, Vec<usize>>,
    prompts: Option<(Names, Vec<rmcp::model::Prompt>)>,
}

#[derive(Debug, Clone)]
struct Unavailable {
    error: String,
    failures: u32,
    retry_at: Instant,
}

impl Registry {
    /// A registry of `specs` with default options. Duplicate names are rejected.
    pub fn new(specs: impl IntoIterator<Item = ServerSpec>) -> Result<Self, McpError> {
        Self::with_options(specs, RegistryOptions::default())
    }

    /// A registry of `specs` with `options`. Duplicate names are rejected.
    pub fn with_options(
        specs: impl IntoIterator<Item = ServerSpec>,
        options: RegistryOptions,
    ) -> Result<Self, McpError> {
        let specs: Vec<ServerSpec> = specs.into_iter().collect();
        let mut seen = HashSet::new();
        for spec in &specs {
            if !seen.insert(spec.name().to_owned()) {
                return Err(McpError::DuplicateServer {
                    server: spec.name().to_owned(),
                });
            }
        }
        let servers: Vec<String> = specs.iter().map(|s| s.name().to_owned()).collect();
        let inner = Arc::new_cyclic(|weak: &Weak<Inner>| {
            let clients = specs
                .into_iter()
                .enumerate()
                .map(|(index, spec)| {
                    let weak = weak.clone();
                    let callback = Arc::new(move |_: &str, change: Change| {
                        if let Some(inner) = weak.upgrade() {
                            inner.on_change(index, change);
                        }
                    });
                    Arc::new(
                        Client::new(spec, options.client.clone()).with_change_callback(callback),
                    )
                })
                .collect();
            Inner {
                refreshing: servers
                    .iter()
                    .map(|_| tokio::sync::Mutex::new(()))
                    .collect(),
                servers,
                clients,
                options,
                state: Mutex::new(State::default()),
                start: tokio::sync::Mutex::new(()),
                watchers: Mutex::new(Vec::new()),
            }
        });
        Ok(Self { inner })
    }

    /// The server names, in registry order.
    pub fn server_names(&self) -> &[String] {
        &self.inner.servers
    }

    /// The client of server `name`.
    pub fn client(&self, name: &str) -> Option<&Arc<Client>> {
        let index = self.inner.index_of(name)?;
        self.inner.clients.get(index)
    }

    /// Servers that failed at their last try, in registry order, with the error.
    pub fn unavailable(&self) -> Vec<(String, String)> {
        let state = self.inner.lock();
        state
            .unavailable
            .iter()
            .map(|(i, u)| (self.inner.servers[*i].clone(), u.error.clone()))
            .collect()
    }

    /// Connects every server (in parallel) if that has not happened yet.
    pub async fn connect(&self) {
        self.inner.ensure_started().await;
    }

    /// Re-lists every server in parallel (connecting those that are not), so a server
    /// that was unavailable comes back and changed lists are seen.
    pub async fn refresh(&self) {
        let _start = self.inner.start.lock().await;
        self.inner.refresh_all().await;
        self.inner.lock().started = true;
    }

    /// The tools of every reachable server, in registry order, then each server's order.
    pub async fn tools(&self) -> Vec<ToolInfo> {
        self.inner.prepare().await;
        let state = self.inner.lock();
        state
            .names
            .listed()
            .map(|(i, display)| tool_info(&self.inner.servers, &state.flat[i], display))
            .collect()
    }

    /// Calls tool `name` (listed name, `server.tool` or `server__tool`) with `arguments`.
    pub async fn call(
        &self,
        name: &str,
        arguments: Map<String, Value>,
    ) -> Result<ToolOutput, McpError> {
        let result = self.call_result(name, arguments).await?;
        let content: Vec<Value> = result
            .content
            .iter()
            .filter_map(|c| serde_json::to_value(c).ok())
            .collect();
        Ok(ToolOutput {
            text: output::tool_result_text(result.structured_content.as_ref(), &content),
            structured: result.structured_content.clone(),
            is_error: result.is_error.unwrap_or(false),
        })
    }

    /// [`Registry::call`] returning the server's result as it is (every content block),
    /// for a gateway that re-exports the tool.
    pub async fn call_result(
        &self,
        name: &str,
        arguments: Map<String, Value>,
    ) -> Result<rmcp::model::CallToolResult, McpError> {
        self.call_result_inner(name, arguments, None).await
    }

    /// [`Registry::call_result`] with a progress token: the server's progress reports
    /// for this call go to `progress`, in the server's order, before the result returns.
    /// Dropping the future cancels the call on the server and stops the reports.
    pub async fn call_result_with_progress(
        &self,
        name: &str,
        arguments: Map<String, Value>,
        progress: ProgressCallback,
    ) -> Result<rmcp::model::CallToolResult, McpError> {
        self.call_result_inner(name, arguments, Some(progress))
            .await
    }

    async fn call_result_inner(
        &self,
        name: &str,
        arguments: Map<String, Value>,
        progress: Option<ProgressCallback>,
    ) -> Result<rmcp::model::CallToolResult, McpError> {
        self.inner.prepare().await;
        let (index, tool) = {
            let state = self.inner.lock();
            let Some(found) = state.names.resolve(&self.inner.servers, name) else {
                return Err(McpError::UnknownTool {
                    tool: name.to_owned(),
                });
            };
            let (server, tool) = &state.flat[found];
            (*server, tool.name.to_string())
        };
        let inner = &self.inner;
        // Every attempt borrows the arguments; the request clones them once.
        let (arguments, tool, progress) = (&arguments, tool.as_str(), progress.as_ref());
        let result = retry_rate_limited(&inner.options.retry, || async move {
            inner
                .with_reconnect(index, move |conn| async move {
                    conn.call_tool(tool, arguments, progress).await
                })
                .await
        })
        .await?;
        Ok(result)
    }

    /// The resources of every reachable server (pulled afresh), `server:uri` for a URI
    /// that several servers list.
    pub async fn resources(&self) -> Vec<ResourceInfo> {
        self.inner.prepare().await;
        let pulls = join_all(self.inner.reachable().into_iter().map(|i| async move {
            let listed = self
                .inner
                .with_reconnect(i, |conn| async move { conn.list_resources().await })
                .await;
            (i, listed)
        }))
        .await;
        let mut all = Vec::new();
        for (i, listed) in pulls {
            match listed {
                Ok(resources) => all.extend(resources.into_iter().map(|r| (i, r))),
                Err(error) => {
                    tracing::warn!(server = %self.inner.servers[i], error = %error, "Cannot list resources.")
                }
            }
        }
        let mut owners: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, r) in &all {
            let list = owners.entry(r.uri.clone()).or_default();
            if !list.contains(i) {
                list.push(*i);
            }
        }
        let infos = all
            .iter()
            .map(|(i, r)| {
                let server = self.inner.servers[*i].clone();
                let shared = owners.get(&r.uri).is_some_and(|o| o.len() > 1);
                ResourceInfo {
                    uri: if shared {
                        format!("{server}:{}", r.uri)
                    } else {
                        r.uri.clone()
                    },
                    server,
                    name: r.name.clone(),
                    description: r.description.clone().unwrap_or_default(),
                    mime_type: r.mime_type.clone(),
                }
            })
            .collect();
        self.inner.lock().resource_owners = owners;
        infos
    }

    /// The resource templates of every reachable server (pulled afresh), in registry
    /// order.
    pub async fn resource_templates(&self) -> Vec<ResourceTemplateInfo> {
        self.inner.prepare().await;
        let pulls = join_all(self.inner.reachable().into_iter().map(|i| async move {
            let listed = self
                .inner
                .with_reconnect(
                    i,
                    |conn| async move { conn.list_resource_templates().await },
                )
                .await;
            (i, listed)
        }))
        .await;
        let mut all = Vec::new();
        for (i, listed) in pulls {
            let server = &self.inner.servers[i];
            match listed {
                Ok(templates) => all.extend(templates.into_iter().map(|t| ResourceTemplateInfo {
                    server: server.clone(),
                    uri_template: format!("{server}:{}", t.uri_template),
                    definition: t,
                })),
                Err(error) => {
                    tracing::warn!(server = %server, error = %error, "Cannot list resource templates.")
                }
            }
        }
        all
    }

    /// Reads resource `uri`: a URI one server listed, `server:uri`, or any URI of an
    /// explicit `server` (e.g. a template expansion). Text comes back as a string, a blob
    /// as `{"mime", "size"}`, several contents as a list.
    pub async fn read_resource(&self, uri: &str, server: Option<&str>) -> Result<Value, McpError> {
        let contents = self.read_resource_result(uri, server).await?;
        let contents: Vec<Value> = contents
            .contents
            .iter()
            .filter_map(|c| serde_json::to_value(c).ok())
            .collect();
        Ok(output::resource_value(&contents))
    }

    /// [`Registry::read_resource`] returning the server's result as it is (blobs kept),
    /// for a gateway that re-exports the resource.
    pub async fn read_resource_result(
        &self,
        uri: &str,
        server: Option<&str>,
    ) -> Result<rmcp::model::ReadResourceResult, McpError> {
        self.inner.prepare().await;
        let (index, uri) = match server {
            Some(server) => {
                let index = self
                    .inner
                    .index_of(server)
                    .ok_or_else(|| McpError::UnknownServer {
                        server: server.to_owned(),
                    })?;
                let bare = uri
                    .strip_prefix(server)
                    .and_then(|rest| rest.strip_prefix(':'))
                    .unwrap_or(uri);
                (index, bare.to_owned())
            }
            None => {
                if self.inner.lock().resource_owners.is_empty() {
                    let _ = self.resources().await;
                }
                self.inner.route_resource(uri)?
            }
        };
        let contents = self
            .inner
            .with_reconnect(index, |conn| {
                let uri = uri.clone();
                async move { conn.read_resource(&uri).await }
            })
            .await?;
        Ok(contents)
    }

    /// The prompts of every reachable server (pulled afresh), named like tools.
    pub async fn prompts(&self) -> Vec<PromptInfo> {
        self.inner.prepare().await;
        let (names, prompts) = self.inner.pull_prompts().await;
        let infos = names
            .listed()
            .map(|(i, display)| PromptInfo {
                name: display.to_owned(),
                server: self.inner.servers[names.items[i].server].clone(),
                description: prompts[i].description.clone().unwrap_or_default(),
                arguments: serde_json::to_value(&prompts[i].arguments).unwrap_or(Value::Null),
            })
            .collect();
        self.inner.lock().prompts = Some((names, prompts));
        infos
    }

    /// Gets prompt `name` with `arguments`, as `{"description", "messages": [{"role",
    /// "content"}]}`.
    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: Map<String, Value>,
    ) -> Result<Value, McpError> {
        self.inner.prepare().await;
        if self.inner.lock().prompts.is_none() {
            let _ = self.prompts().await;
        }
        let (index, prompt) = {
            let state = self.inner.lock();
            let unknown = || McpError::UnknownPrompt {
                prompt: name.to_owned(),
            };
            let (names, _) = state.prompts.as_ref().ok_or_else(unknown)?;
            let found = names
                .resolve(&self.inner.servers, name)
                .ok_or_else(unknown)?;
            let item = &names.items[found];
            (item.server, item.name.clone())
        };
        let result = self
            .inner
            .with_reconnect(index, |conn| {
                let prompt = prompt.clone();
                let arguments = arguments.clone();
                async move { conn.get_prompt(&prompt, arguments).await }
            })
            .await?;
        let messages: Vec<Value> = result
            .messages
            .iter()
            .filter_map(|m| serde_json::to_value(m).ok())
            .collect();
        Ok(output::prompt_value(
            result.description.as_deref(),
            &messages,
        ))
    }

    /// Subscribes to tool-list changes from now on (events are buffered from this call,
    /// not from the first `next`). A subscriber made before the first connect sees an
    /// `Added` event for every initial tool.
    pub fn watch(&self) -> Watch {
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        self.inner
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(tx);
        Watch { rx }
    }

    /// Closes every server in parallel (each stdio child: stdin closed, SIGTERM to its
    /// group, SIGKILL, each after the close grace), ends every [`Watch`], and forgets all
    /// state. The registry can be used again: it reconnects lazily.
    pub async fn close(&self) {
        let _start = self.inner.start.lock().await;
        join_all(self.inner.clients.iter().map(|c| c.close())).await;
        *self.inner.lock() = State::default();
        self.inner
            .watchers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

fn tool_info(servers: &[String], (server, tool): &(usize, Tool), display: &str) -> ToolInfo {
    let schema = Value::Object((*tool.input_schema).clone());
    let schema = match &schema {
        Value::Object(map) if map.is_empty() => json!({"type": "object"}),
        _ => schema,
    };
    let annotations = tool
        .annotations
        .as_ref()
        .and_then(|a| serde_json::to_value(a).ok());
    let hint = |key: &str| {
        annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .and_then(Value::as_bool)
    };
    let destructive = match (hint("destructiveHint"), hint("readOnlyHint")) {
        (Some(destructive), _) => destructive,
        (None, Some(read_only)) => !read_only,
        (None, None) => false,
    };
    ToolInfo {
        name: display.to_owned(),
        server: servers[*server].clone(),
        tool: tool.name.to_string(),
        description: tool.description.as_deref().unwrap_or_default().to_owned(),
        input_schema: schema,
        destructive,
        definition: tool.clone(),
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.servers.iter().position(|s| s == name)
    }

    /// Servers with a successful tool listing.
    fn reachable(&self) -> Vec<usize> {
        let state = self.lock();
        (0..self.servers.len())
            .filter(|i| !state.unavailable.contains_key(i))
            .collect()
    }

    fn on_change(self: Arc<Self>, index: usize, change: Change) {
        match change {
            Change::Tools => {
                self.lock().stale.insert(index);
                // Refresh now, so watchers see the change without another operation.
                if let Ok(handle) = tokio::runtime::Handle::try_current() {
                    handle.spawn(async move {
                        let started = self.lock().started;
                        if started {
                            let _ = self.refresh_server(index).await;
                        }
                    });
                }
            }
            Change::Prompts => self.lock().prompts = None,
            Change::Resources => self.lock().resource_owners.clear(),
        }
    }

    async fn ensure_started(&self) {
        if self.lock().started {
            return;
        }
        let _start = self.start.lock().await;
        if self.lock().started {
            return;
        }
        self.refresh_all().await;
        self.lock().started = true;
    }

    /// Before an operation: connect on first use, re-list stale servers, and start
    /// background tries of unavailable servers that are due.
    async fn prepare(self: &Arc<Self>) {
        self.ensure_started().await;
        let (stale, due): (Vec<usize>, Vec<usize>) = {
            let mut state = self.lock();
            let now = Instant::now();
            let due = state
                .unavailable
                .iter()
                .filter(|(_, u)| u.retry_at <= now)
                .map(|(i, _)| *i)
                .collect();
            (state.stale.drain().collect(), due)
        };
        join_all(stale.into_iter().map(|i| async move {
            let _ = self.refresh_server(i).await;
        }))
        .await;
        for index in due {
            // Push the next try out now, so one slow try is not started twice.
            if let Some(u) = self.lock().unavailable.get_mut(&index) {
                u.retry_at = Instant::now() + backoff(u.failures);
            }
            let inner = self.clone();
            tokio::spawn(async move {
                let _ = inner.refresh_server(index).await;
            });
        }
    }

    /// Re-lists every server in parallel, then rebuilds the index once (so watchers see
    /// no transient names while the first servers answer).
    async fn refresh_all(&self) {
        join_all((0..self.servers.len()).map(|i| async move {
            let _ = self.pull_tools(i).await;
        }))
        .await;
        self.rebuild();
    }

    /// Connects server `index` if needed (replacing a dead connection) and re-lists its
    /// tools; on failure it becomes unavailable and its tools leave the index.
    async fn refresh_server(&self, index: usize) -> Result<(), McpError> {
        let outcome = self.pull_tools(index).await;
        self.rebuild();
        outcome
    }

    /// [`Inner::refresh_server`] without the rebuild.
    async fn pull_tools(&self, index: usize) -> Result<(), McpError> {
        let _one = self.refreshing[index].lock().await;
        let client = &self.clients[index];
        let listed = async {
            let mut conn = client.connection().await?;
            if conn.is_dead() {
                let cause = conn.death().await;
                tracing::warn!(server = %self.servers[index], cause = %cause, "MCP server connection is dead; reconnecting.");
                conn = client.reconnect(conn.generation).await?;
            }
            conn.list_tools().await
        }
        .await;
        {
            let mut state = self.lock();
            if state.tools.len() != self.servers.len() {
                state.tools = vec![None; self.servers.len()];
            }
            state.stale.remove(&index);
            match listed {
                Ok(tools) => {
                    state.tools[index] = Some(tools);
                    state.unavailable.remove(&index);
                    Ok(())
                }
                Err(error) => {
                    tracing::warn!(server = %self.servers[index], error = %error, "MCP server is unavailable; its tools are left out.");
                    state.tools[index] = None;
                    let failures = state
                        .unavailable
                        .get(&index)
                        .map_or(1, |u| u.failures.saturating_add(1));
                    state.unavailable.insert(
                        index,
                        Unavailable {
                            error: error.to_string(),
                            failures,
                            retry_at: Instant::now() + backoff(failures),
                        },
                    );
                    Err(error)
                }
            }
        }
    }

    /// Rebuilds the name index from the per-server cache and tells the watchers.
    fn rebuild(&self) {
        let events = {
            let mut state = self.lock();
            let old: HashMap<String, (usize, Tool)> = state
                .names
                .listed()
                .map(|(i, d)| (d.to_owned(), state.flat[i].clone()))
                .collect();
            let flat: Vec<(usize, Tool)> = state
                .tools
                .iter()
                .enumerate()
                .filter_map(|(i, tools)| tools.as_ref().map(|t| (i, t)))
                .flat_map(|(i, tools)| tools.iter().map(move |t| (i, t.clone())))
                .collect();
            let items = flat
                .iter()
                .map(|(server, tool)| Item {
                    server: *server,
                    name: tool.name.to_string(),
                })
                .collect();
            state.names = Names::build(&self.servers, items, self.options.prefix_mode);
            state.flat = flat;
            let mut events = Vec::new();
            let mut current = HashSet::new();
            for (i, display) in state.names.listed() {
                current.insert(display.to_owned());
                let (server, tool) = &state.flat[i];
                let kind = match old.get(display) {
                    None => Some(ToolEventKind::Added),
                    Some((old_server, old_tool)) if old_server != server || old_tool != tool => {
                        Some(ToolEventKind::Updated)
                    }
                    Some(_) => None,
                };
                if let Some(kind) = kind {
                    events.push(ToolEvent {
                        kind,
                        tool: display.to_owned(),
                        server: self.servers[*server].clone(),
                    });
                }
            }
            let mut removed: Vec<_> = old
                .iter()
                .filter(|(d, _)| !current.contains(*d))
                .map(|(d, (server, _))| ToolEvent {
                    kind: ToolEventKind::Removed,
                    tool: d.clone(),
                    server: self.servers[*server].clone(),
                })
                .collect();
            removed.sort_by(|a, b| (&a.server, &a.tool).cmp(&(&b.server, &b.tool)));
            events.extend(removed);
            events
        };
        if events.is_empty() {
            return;
        }
        let mut watchers = self.watchers.lock().unwrap_or_else(PoisonError::into_inner);
        watchers.retain(|tx| !tx.is_closed());
        for tx in watchers.iter() {
            for event in &events {
                if tx.try_send(event.clone()).is_err() {
                    tracing::warn!(
                        buffer = WATCH_BUFFER,
                        "A registry watcher is full; dropping tool events for it."
                    );
                    break;
                }
            }
        }
    }

    /// Runs `op` on server `index`'s connection. A connection found dead before the
    /// request is replaced first; a broken connection (not a server death mid-request)
    /// is replaced and `op` retried once. If reconnecting fails, the first error is
    /// returned; if the retry fails, its error.
    async fn with_reconnect<T, F, Fut>(&self, index: usize, op: F) -> Result<T, McpError>
    where
        F: Fn(Arc<Connection>) -> Fut,
        Fut: std::future::Future<Output = Result<T, McpError>>,
    {
        let client = &self.clients[index];
        let mut conn = client.connection().await?;
        if conn.is_dead() {
            let cause = conn.death().await;
            tracing::warn!(server = %self.servers[index], cause = %cause, "MCP server died since the last request; restarting it.");
            conn = client.reconnect(conn.generation).await?;
            self.relist_after_reconnect(index).await;
        }
        match op(conn.clone()).await {
            Err(error) if error.is_transport() && !matches!(error, McpError::Exited { .. }) => {
                tracing::warn!(server = %self.servers[index], error = %error, "MCP connection failed; reconnecting and retrying once.");
                let Ok(fresh) = client.reconnect(conn.generation).await else {
                    return Err(error);
                };
                self.relist_after_reconnect(index).await;
                op(fresh).await
            }
            other => other,
        }
    }

    async fn relist_after_reconnect(&self, index: usize) {
        // A restarted server may have different tools; siblings keep their lists.
        if let Err(error) = self.refresh_server(index).await {
            tracing::debug!(server = %self.servers[index], error = %error, "Cannot re-list tools after reconnecting.");
        }
    }

    fn route_resource(&self, uri: &str) -> Result<(usize, String), McpError> {
        let owners = self.lock().resource_owners.get(uri).cloned();
        match owners.as_deref() {
            Some([only]) => return Ok((*only, uri.to_owned())),
            Some(many) if many.len() > 1 => {
                return Err(McpError::AmbiguousResource {
                    uri: uri.to_owned(),
                    servers: many.iter().map(|i| self.servers[*i].clone()).collect(),
                });
            }
            _ => {}
        }
        // Only a URI no server listed is read as `server:uri`, so a server named after a
        // URI scheme ("file") does not capture that scheme's URIs.
        if let Some((head, rest)) = uri.split_once(':')
            && let Some(index) = self.index_of(head)
        {
            return Ok((index, rest.to_owned()));
        }
        Err(McpError::UnknownResource {
            uri: uri.to_owned(),
        })
    }

    async fn pull_prompts(&self) -> (Names, Vec<rmcp::model::Prompt>) {
        let pulls = join_all(self.reachable().into_iter().map(|i| async move {
            let listed = self
                .with_reconnect(i, |conn| async move { conn.list_prompts().await })
                .await;
            (i, listed)
        }))
        .await;
        let mut items = Vec::new();
        let mut prompts = Vec::new();
        for (i, listed) in pulls {
            match listed {
                Ok(list) => {
                    for prompt in list {
                        items.push(Item {
                            server: i,
                            name: prompt.name.clone(),
                        });
                        prompts.push(prompt);
                    }
                }
                Err(error) => {
                    tracing::warn!(server = %self.servers[i], error = %error, "Cannot list prompts.")
                }
            }
        }
        (
            Names::build(&self.servers, items, self.options.prefix_mode),
            prompts,
        )
    }
}

fn backoff(failures: u32) -> Duration {
    let factor = 2u32.saturating_pow(failures.saturating_sub(1).min(16));
    UNAVAILABLE_RETRY_BASE
        .saturating_mul(factor)
        .min(UNAVAILABLE_RETRY_MAX)
}

#[async_trait]
impl ToolHost for Registry {
    async fn list_tools(&self) -> Result<Vec<ToolSpec>, ToolError> {
        Ok(self
            .tools()
            .await
            .into_iter()
            .map(|t| ToolSpec::new(t.name, t.description, t.input_schema))
            .collect())
    }

    async fn call_tool(&self, name: &str, arguments: Value) -> Result<String, ToolError> {
        let arguments = match arguments {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => {
                return Err(ToolError::Failed {
                    message: format!("tool '{name}': arguments must be a JSON object, got {other}"),
                });
            }
        };
        match self.call(name, arguments).await {
            Ok(out) if out.is_error => Err(ToolError::Failed { message: out.text }),
            Ok(out) => Ok(out.text),
            Err(McpError::UnknownTool { tool }) => Err(ToolError::NotFound { name: tool }),
            Err(error @ (McpError::Transport { .. } | McpError::Exited { .. })) => {
                Err(ToolError::Unavailable {
                    server: error.server().unwrap_or_default().to_owned(),
                    message: format!("tool '{name}': {error}"),
                })
            }
            Err(error) => Err(ToolError::Failed {
                message: format!("tool '{name}': {error}"),
            }),
        }
    }

    fn unavailable_servers(&self) -> Vec<String> {
        self.unavailable().into_iter().map(|(s, _)| s).collect()
    }
}
