//! The MCP face of the gateway: an rmcp `ServerHandler` over the catalog, the bridge and
//! the workspace resources.
//!
//! This is the only module (with the transports) that knows rmcp. Library errors become
//! MCP results in [`to_tool_result`]: an unknown tool is a protocol error (-32602), and
//! everything that happens inside a known tool — invalid arguments, a failed task, a
//! timeout — is a tool result with `isError: true` whose text is the original's
//! `{"error": "…"}` JSON, so models and old clients can read it.

use std::sync::{Arc, Mutex};

use loom_bus::BusState;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestMethod,
    CompleteRequestParams, CompleteResult, ContentBlock, ErrorCode, ErrorData,
    GetPromptRequestMethod, GetPromptRequestParams, GetPromptResponse, Implementation,
    ListPromptsRequestMethod, ListPromptsResult, ListResourceTemplatesRequestMethod,
    ListResourceTemplatesResult, ListResourcesRequestMethod, ListResourcesResult, ListToolsResult,
    PaginatedRequestParams, ProgressNotificationParam, ProgressToken, ProtocolVersion,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ResourceUpdatedNotificationParam, ServerCapabilities, ServerConfig,
    SubscribeRequestParams, SubscriptionFilter, Tool, ToolAnnotations, UnsubscribeRequestParams,
};
use rmcp::service::{NotificationContext, RequestContext, RoleServer, SubscriptionContext};
use rmcp::{Peer, ServerHandler};
use serde_json::{Map, Value, json};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tracing::{Instrument, debug, debug_span};

use crate::bridge::{Bridge, CallError, Progress};
use crate::catalog::{Catalog, Dispatch, GatewayTool};
use crate::local_tools::{LocalToolError, LocalTools};
use crate::resources::{ResourceBody, ResourceError, ResourceEvent, WorkspaceResources};
use crate::upstream::{UpstreamChange, UpstreamError, Upstreams};

/// Progress notifications buffered per call; a slower client loses intermediate ones,
/// never the result.
const PROGRESS_BUFFER: usize = 64;

/// Sends the progress reports put into the returned sender to the client as
/// `notifications/progress` with `token`; the task ends once the sender is dropped and
/// everything was sent (await it before answering, so progress comes first).
fn progress_forwarder(
    token: ProgressToken,
    peer: Peer<RoleServer>,
) -> (mpsc::Sender<Progress>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::channel::<Progress>(PROGRESS_BUFFER);
    let task = tokio::spawn(async move {
        while let Some(p) = rx.recv().await {
            let mut param = ProgressNotificationParam::new(token.clone(), p.progress);
            if let Some(total) = p.total {
                param = param.with_total(total);
            }
            if let Some(m) = p.message {
                param = param.with_message(m);
            }
            if peer.notify_progress(param).await.is_err() {
                break;
            }
        }
    });
    (tx, task)
}

/// The gateway's `ServerHandler`. Cheap to clone: the streamable HTTP transport builds
/// one per session (legacy clients) or per request (modern clients).
#[derive(Clone)]
pub struct McpHandler {
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    instructions: Option<String>,
    catalog: Catalog,
    tools: Vec<Tool>,
    bridge: Bridge,
    resources: Option<WorkspaceResources>,
    /// Workshop and session tools, run here rather than in the mesh.
    local: LocalTools,
    /// Upstream MCP servers re-exported next to the mesh's tools.
    upstreams: Option<Upstreams>,
    /// Legacy (2025-11-25) clients that may receive list-changed notifications, with the
    /// URIs each subscribed to. Modern clients use `subscriptions/listen` instead.
    legacy: Mutex<Vec<LegacyPeer>>,
}

struct LegacyPeer {
    peer: Peer<RoleServer>,
    subscribed: Vec<String>,
}

impl McpHandler {
    /// A handler serving `catalog` through `bridge`, and `resources` when configured.
    pub fn new(
        name: impl Into<String>,
        instructions: Option<String>,
        catalog: Catalog,
        bridge: Bridge,
        resources: Option<WorkspaceResources>,
    ) -> Self {
        Self::with_local_tools(
            name,
            instructions,
            catalog,
            bridge,
            resources,
            LocalTools::default(),
        )
    }

    /// [`McpHandler::new`] with the workshop and session tools the catalog lists.
    pub fn with_local_tools(
        name: impl Into<String>,
        instructions: Option<String>,
        catalog: Catalog,
        bridge: Bridge,
        resources: Option<WorkspaceResources>,
        local: LocalTools,
    ) -> Self {
        let tools = catalog.tools().iter().map(|t| mcp_tool(t)).collect();
        McpHandler {
            shared: Arc::new(Shared {
                name: name.into(),
                instructions,
                catalog,
                tools,
                bridge,
                resources,
                local,
                upstreams: None,
                legacy: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Re-exports `upstreams`' tools, resources and prompts (call before serving).
    pub fn with_upstreams(mut self, upstreams: Upstreams) -> Self {
        match Arc::get_mut(&mut self.shared) {
            Some(shared) => shared.upstreams = Some(upstreams),
            None => tracing::warn!("with_upstreams on a shared handler; upstreams left out."),
        }
        self
    }

    /// The bus state behind the tools, for `/health`.
    pub fn bus_state(&self) -> BusState {
        self.shared.bridge.state()
    }

    /// The server's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Forwards workspace change events to legacy clients until the event stream ends.
    /// Modern clients get them through `listen`.
    pub fn spawn_legacy_notifier(&self) -> Option<tokio::task::JoinHandle<()>> {
        let resources = self.shared.resources.as_ref()?;
        let mut events = resources.events();
        let shared = self.shared.clone();
        Some(tokio::spawn(async move {
            loop {
                match events.recv().await {
                    Ok(event) => shared.notify_legacy(&event).await,
                    Err(RecvError::Lagged(n)) => {
                        // Events were lost: say everything may have changed.
                        debug!(
                            missed = n,
                            "Resource events lagged; telling clients everything changed."
                        );
                        shared.notify_legacy(&ResourceEvent::ListChanged).await;
                        for uri in shared.subscribed_uris() {
                            shared.notify_legacy(&ResourceEvent::Updated { uri }).await;
                        }
                    }
                    Err(RecvError::Closed) => break,
                }
            }
        }))
    }
}

impl McpHandler {
    /// Forwards upstream list changes to legacy clients (modern clients get them through
    /// `listen`); `None` without upstreams. Abort the task to stop it.
    pub fn spawn_upstream_notifier(&self) -> Option<tokio::task::JoinHandle<()>> {
        let mut changes = self.shared.upstreams.as_ref()?.changes();
        let shared = self.shared.clone();
        Some(tokio::spawn(async move {
            loop {
                let change = match changes.recv().await {
                    Ok(change) => change,
                    Err(RecvError::Lagged(_)) => UpstreamChange::Servers,
                    Err(RecvError::Closed) => break,
                };
                shared.notify_legacy_upstream(change).await;
            }
        }))
    }
}

impl Shared {
    async fn notify_legacy(&self, event: &ResourceEvent) {
        let targets: Vec<Peer<RoleServer>> = {
            let Ok(mut legacy) = self.legacy.lock() else {
                return;
            };
            legacy.retain(|p| !p.peer.is_transport_closed());
            legacy
                .iter()
                .filter(|p| match event {
                    ResourceEvent::ListChanged => true,
                    ResourceEvent::Updated { uri } => p.subscribed.iter().any(|s| s == uri),
                })
                .map(|p| p.peer.clone())
                .collect()
        };
        for peer in targets {
            let sent = match event {
                ResourceEvent::ListChanged => peer.notify_resource_list_changed().await,
                ResourceEvent::Updated { uri } => {
                    peer.notify_resource_updated(ResourceUpdatedNotificationParam::new(uri.clone()))
                        .await
                }
            };
            if let Err(e) = sent {
                debug!(error = %e, "Cannot notify a client; it probably left.");
            }
        }
    }

    /// Tells legacy peers that upstream lists changed.
    async fn notify_legacy_upstream(&self, change: UpstreamChange) {
        let peers: Vec<Peer<RoleServer>> = match self.legacy.lock() {
            Ok(mut legacy) => {
                legacy.retain(|p| !p.peer.is_transport_closed());
                legacy.iter().map(|p| p.peer.clone()).collect()
            }
            Err(_) => return,
        };
        for peer in peers {
            let _ = peer.notify_tool_list_changed().await;
            if change == UpstreamChange::Servers {
                let _ = peer.notify_prompt_list_changed().await;
                let _ = peer.notify_resource_list_changed().await;
            }
        }
    }

    fn subscribed_uris(&self) -> Vec<String> {
        let Ok(legacy) = self.legacy.lock() else {
            return Vec::new();
        };
        let mut uris: Vec<String> = legacy
            .iter()
            .flat_map(|p| p.subscribed.iter().cloned())
            .collect();
        uris.sort();
        uris.dedup();
        uris
    }

    fn remember_legacy_peer(&self, peer: &Peer<RoleServer>) {
        let Ok(mut legacy) = self.legacy.lock() else {
            return;
        };
        if !legacy.iter().any(|p| same_peer(&p.peer, peer)) {
            legacy.push(LegacyPeer {
                peer: peer.clone(),
                subscribed: Vec::new(),
            });
        }
    }
}

/// Whether two handles reach the same client session: clones of one peer share the
/// client info set at initialize, so its address identifies the session.
fn same_peer(a: &Peer<RoleServer>, b: &Peer<RoleServer>) -> bool {
    match (a.peer_info(), b.peer_info()) {
        (Some(x), Some(y)) => Arc::ptr_eq(&x, &y),
        _ => false,
    }
}

/// The MCP tool definition of a catalog tool.
fn mcp_tool(t: &GatewayTool) -> Tool {
    let mut tool = Tool::new(
        t.name.clone(),
        t.description.clone(),
        t.input_schema.clone(),
    );
    if let Some(schema) = &t.output_schema {
        tool = tool.with_raw_output_schema(schema.clone());
    }
    let h = t.hints;
    if h.read_only.is_some()
        || h.destructive.is_some()
        || h.idempotent.is_some()
        || h.open_world.is_some()
    {
        let mut a = ToolAnnotations::new();
        if let Some(v) = h.read_only {
            a = a.read_only(v);
        }
        if let Some(v) = h.destructive {
            a = a.destructive(v);
        }
        if let Some(v) = h.idempotent {
            a = a.idempotent(v);
        }
        if let Some(v) = h.open_world {
            a = a.open_world(v);
        }
        tool = tool.with_annotations(a);
    }
    tool
}

/// Turns the outcome of a tool call into its MCP result: the one place library errors
/// become MCP results.
pub fn to_tool_result(outcome: Result<Map<String, Value>, ToolFailure>) -> CallToolResult {
    match outcome {
        // `structured` puts the compact JSON in a text block too, for older clients.
        Ok(output) => CallToolResult::structured(Value::Object(output)),
        Err(failure) => {
            let mut body = Map::new();
            body.insert("error".to_owned(), Value::String(failure.to_string()));
            // A failed session start also says which session and which steps ran.
            if let ToolFailure::Local(e) = &failure {
                if let Some(details) = e.details() {
                    for (k, v) in details {
                        body.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
            let text = Value::Object(body).to_string();
            CallToolResult::error(vec![ContentBlock::text(text)])
        }
    }
}

/// Why a call to a known tool failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToolFailure {
    /// The arguments do not match the tool's input schema; nothing was dispatched.
    #[error(transparent)]
    Arguments(#[from] crate::catalog::ArgumentError),
    /// The mesh answered with a failure, or did not answer.
    #[error(transparent)]
    Call(#[from] CallError),
    /// A workshop or session tool failed.
    #[error(transparent)]
    Local(#[from] LocalToolError),
    /// An upstream MCP server failed the call or could not be reached.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
}

fn is_modern(version: Option<ProtocolVersion>) -> bool {
    version.is_some_and(|v| v >= ProtocolVersion::V_2026_07_28)
}

fn resource_error(e: ResourceError, modern: bool) -> ErrorData {
    match e {
        // 2026-07-28 moved resource-not-found to -32602; legacy clients expect -32002.
        ResourceError::NotFound { .. } if modern => ErrorData::invalid_params(e.to_string(), None),
        ResourceError::NotFound { .. } => ErrorData::resource_not_found(e.to_string(), None),
        ResourceError::InvalidUri { .. }
        | ResourceError::Escapes { .. }
        | ResourceError::TooLarge { .. } => ErrorData::invalid_params(e.to_string(), None),
        other => ErrorData::internal_error(other.to_string(), None),
    }
}

/// [`resource_error`] for a request naming `uri`: the error's `data` carries the URI as
/// asked (SHOULD) by SEP-2164, so a client can tell which of its reads failed.
fn resource_uri_error(e: ResourceError, modern: bool, uri: &str) -> ErrorData {
    let mut error = resource_error(e, modern);
    if error.code == ErrorCode::INVALID_PARAMS || error.code == ErrorCode::RESOURCE_NOT_FOUND {
        error.data = Some(json!({ "uri": uri }));
    }
    error
}

impl ServerHandler for McpHandler {
    fn get_info(&self) -> ServerConfig {
        let caps = if self.shared.resources.is_some() {
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_resources_list_changed()
                .enable_resources_subscribe()
                .build()
        } else {
            ServerCapabilities::builder().enable_tools().build()
        };
        let caps = match &self.shared.upstreams {
            Some(_) => crate::upstream::with_upstream_capabilities(caps),
            None => caps,
        };
        let mut info = ServerConfig::new(caps).with_server_info(Implementation::new(
            self.shared.name.clone(),
            env!("CARGO_PKG_VERSION"),
        ));
        if let Some(i) = &self.shared.instructions {
            info = info.with_instructions(i.clone());
        }
        info
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        // Only legacy clients initialize; remember them for list-changed notifications.
        if self.shared.resources.is_some() || self.shared.upstreams.is_some() {
            self.shared.remember_legacy_peer(&context.peer);
        }
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let mut tools = self.shared.tools.clone();
        if let Some(upstreams) = &self.shared.upstreams {
            tools.extend(upstreams.tools());
        }
        Ok(ListToolsResult::with_all_items(tools)
            .with_ttl_ms(0)
            .with_cache_scope(CacheScope::Private))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        let own = self.shared.tools.iter().find(|t| t.name == name).cloned();
        own.or_else(|| self.shared.upstreams.as_ref()?.tool(name))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // rmcp boxes this future and spawns it as a task, copying it each time; each
        // branch's state (an upstream request, a bus call) is several KiB, so each is
        // boxed and this future stays small.
        match self.shared.catalog.get(request.name.as_ref()).cloned() {
            Some(tool) => Box::pin(self.call_own_tool(tool, request, context)).await,
            None => Box::pin(self.call_upstream_tool(request, context)).await,
        }
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let upstream = match &self.shared.upstreams {
            Some(u) => u.resources().await,
            None => Vec::new(),
        };
        let Some(resources) = &self.shared.resources else {
            if self.shared.upstreams.is_some() {
                return Ok(ListResourcesResult::with_all_items(upstream)
                    .with_ttl_ms(0)
                    .with_cache_scope(CacheScope::Private));
            }
            // No resources capability declared: the method is not served (see list_prompts).
            return Err(ErrorData::method_not_found::<ListResourcesRequestMethod>());
        };
        let modern = is_modern(context.protocol_version());
        let entries = resources
            .list()
            .await
            .map_err(|e| resource_error(e, modern))?;
        let items: Vec<Resource> = entries
            .into_iter()
            .map(|e| {
                Resource::new(e.uri, e.name)
                    .with_description(e.description)
                    .with_mime_type(e.mime_type)
                    .with_size(e.size)
            })
            .chain(upstream)
            .collect();
        Ok(ListResourcesResult::with_all_items(items)
            .with_ttl_ms(0)
            .with_cache_scope(CacheScope::Private))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        if self.shared.resources.is_none() && self.shared.upstreams.is_none() {
            return Err(ErrorData::method_not_found::<
                ListResourceTemplatesRequestMethod,
            >());
        }
        // Workspace files are listed one by one; only upstreams have templates.
        let templates = match &self.shared.upstreams {
            Some(upstreams) => upstreams.resource_templates().await,
            None => Vec::new(),
        };
        Ok(ListResourceTemplatesResult::with_all_items(templates)
            .with_ttl_ms(0)
            .with_cache_scope(CacheScope::Private))
    }

    // rmcp answers prompts/list and completion/complete with empty results by default, but
    // `get_info` declares neither capability: a client (and the 2026-07-28 conformance
    // check "servers that support prompts MUST declare the prompts capability") must see
    // the method as not served, -32601, like any other undeclared capability.
    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let Some(upstreams) = &self.shared.upstreams else {
            return Err(ErrorData::method_not_found::<ListPromptsRequestMethod>());
        };
        Ok(ListPromptsResult::with_all_items(upstreams.prompts().await)
            .with_ttl_ms(0)
            .with_cache_scope(CacheScope::Private))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let Some(upstreams) = &self.shared.upstreams else {
            return Err(ErrorData::method_not_found::<GetPromptRequestMethod>());
        };
        let arguments = request.arguments.unwrap_or_default();
        upstreams
            .get_prompt(&request.name, arguments)
            .await
            .map(Into::into)
            .map_err(|e| ErrorData::invalid_params(e.to_string(), None))
    }

    async fn complete(
        &self,
        _request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        Err(ErrorData::method_not_found::<CompleteRequestMethod>())
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let modern = is_modern(context.protocol_version());
        let workspace = self
            .shared
            .resources
            .as_ref()
            .is_some_and(|_| request.uri.starts_with("workspace:"));
        if let (false, Some(upstreams)) = (workspace, &self.shared.upstreams) {
            return crate::upstream::read_resource(upstreams, &request.uri, modern)
                .await
                .map(Into::into);
        }
        let Some(resources) = &self.shared.resources else {
            return Err(resource_uri_error(
                ResourceError::NotFound {
                    uri: request.uri.clone(),
                },
                modern,
                &request.uri,
            ));
        };
        let content = resources
            .read(&request.uri)
            .await
            .map_err(|e| resource_uri_error(e, modern, &request.uri))?;
        let contents = match content.body {
            ResourceBody::Text(text) => ResourceContents::text(text, content.uri),
            ResourceBody::Blob(bytes) => ResourceContents::blob(base64_encode(&bytes), content.uri),
        }
        .with_mime_type(content.mime_type);
        Ok(ReadResourceResult::new(vec![contents])
            .with_ttl_ms(0)
            .with_cache_scope(CacheScope::Private)
            .into())
    }

    #[allow(deprecated)] // resources/subscribe is how legacy clients ask; modern ones use listen.
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let Some(resources) = &self.shared.resources else {
            return Err(ErrorData::invalid_params(
                "this gateway serves no resources",
                None,
            ));
        };
        // Subscribing to something that cannot be read would never notify: refuse it now.
        resources
            .read(&request.uri)
            .await
            .map_err(|e| resource_uri_error(e, false, &request.uri))?;
        // Events name files by their canonical URI; `sp ace.txt` must match `sp%20ace.txt`.
        let uri = resources
            .canonical_uri(&request.uri)
            .map_err(|e| resource_uri_error(e, false, &request.uri))?;
        self.shared.remember_legacy_peer(&context.peer);
        if let Ok(mut legacy) = self.shared.legacy.lock() {
            if let Some(p) = legacy
                .iter_mut()
                .find(|p| same_peer(&p.peer, &context.peer))
            {
                if !p.subscribed.contains(&uri) {
                    p.subscribed.push(uri);
                }
            }
        }
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let uri = match &self.shared.resources {
            Some(r) => r
                .canonical_uri(&request.uri)
                .unwrap_or_else(|_| request.uri.clone()),
            None => request.uri.clone(),
        };
        if let Ok(mut legacy) = self.shared.legacy.lock() {
            if let Some(p) = legacy
                .iter_mut()
                .find(|p| same_peer(&p.peer, &context.peer))
            {
                p.subscribed.retain(|u| u != &uri);
            }
        }
        Ok(())
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let mut accepted = SubscriptionFilter::new();
        if self.shared.upstreams.is_some() {
            accepted.tools_list_changed = requested.tools_list_changed;
            accepted.prompts_list_changed = requested.prompts_list_changed;
            accepted.resources_list_changed = requested.resources_list_changed;
        }
        let Some(resources) = self.shared.resources.as_ref() else {
            return self.shared.upstreams.is_some().then_some(accepted);
        };
        accepted.resources_list_changed = requested.resources_list_changed;
        // Accept the URIs we can serve, spelled as events will name them.
        accepted.resource_subscriptions = requested.resource_subscriptions.as_ref().map(|uris| {
            uris.iter()
                .filter_map(|u| resources.canonical_uri(u).ok())
                .collect()
        });
        Some(accepted)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let upstream = self.shared.upstreams.as_ref().map(|u| u.changes());
        let ct = context.request_context().ct.clone();
        let Some(resources) = &self.shared.resources else {
            if let Some(changes) = upstream {
                crate::upstream::listen(changes, context.sink().clone(), ct).await;
            } else {
                context.cancelled().await;
            }
            return Ok(());
        };
        if let Some(changes) = upstream {
            // Upstream changes go out beside the workspace's, on the same sink.
            let sink = context.sink().clone();
            tokio::spawn(crate::upstream::listen(changes, sink, ct));
        }
        let mut events = resources.events();
        let sink = context.sink().clone();
        loop {
            let event = tokio::select! {
                () = context.cancelled() => return Ok(()),
                e = events.recv() => match e {
                    Ok(e) => e,
                    Err(RecvError::Lagged(_)) => {
                        // Events were lost: everything this client watches may have changed.
                        if let Some(uris) = &context.accepted().resource_subscriptions {
                            for uri in uris {
                                let _ = sink.notify_resource_updated(uri.clone()).await;
                            }
                        }
                        ResourceEvent::ListChanged
                    }
                    Err(RecvError::Closed) => return Ok(()),
                },
            };
            let sent = match &event {
                ResourceEvent::ListChanged => sink.notify_resource_list_changed().await,
                ResourceEvent::Updated { uri } => sink.notify_resource_updated(uri.clone()).await,
            };
            // The sink refuses categories the client did not ask for; that is fine.
            if let Err(e) = sent {
                debug!(error = %e, "Notification not sent on a subscription.");
            }
        }
    }
}

impl McpHandler {
    /// `tools/call` of a tool in the gateway's catalog.
    async fn call_own_tool(
        &self,
        tool: Arc<GatewayTool>,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.as_ref();
        // Debug level: at the default level nothing is logged inside it, and an enabled
        // span costs every call an allocation and its formatted fields.
        let span = debug_span!("tool_call", tool = %name, request_id = ?context.id);
        let outcome = async {
            let payload = tool.prepare(request.arguments.unwrap_or_default())?;
            if self.shared.local.session_touch_due() {
                // Any tool call is use of the current session (a file write at most once
                // a minute; checked here so that other calls spawn nothing).
                let local = self.shared.local.clone();
                tokio::spawn(async move { local.touch_session().await });
            }
            if tool.dispatch.is_local() {
                let out = self
                    .shared
                    .local
                    .call(&tool.name, &tool.dispatch, payload, context.ct.clone())
                    .await?;
                return Ok(out);
            }
            // Only pipelines report progress; other tools need no forwarder task.
            let token = match tool.dispatch {
                Dispatch::Pipeline { .. } => context.meta.get_progress_token(),
                _ => None,
            };
            let (progress_tx, forwarder) = match token {
                Some(token) => {
                    let (tx, task) = progress_forwarder(token, context.peer.clone());
                    (Some(tx), Some(task))
                }
                None => (None, None),
            };
            let report = move |p: Progress| {
                if let Some(tx) = &progress_tx {
                    let _ = tx.try_send(p);
                }
            };
            let result = self
                .shared
                .bridge
                .call(&tool, payload, &report, context.ct.clone())
                .await;
            drop(report);
            // Progress must reach the client before the result does.
            if let Some(task) = forwarder {
                let _ = task.await;
            }
            Ok::<_, ToolFailure>(result?)
        }
        .instrument(span)
        .await;
        if let Err(e) = &outcome {
            debug!(tool = %name, error = %e, "Tool call failed.");
        }
        Ok(to_tool_result(outcome).into())
    }

    /// `tools/call` of a re-exported upstream tool, or the unknown-tool error.
    async fn call_upstream_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let name = request.name.as_ref();
        if let Some(upstreams) = &self.shared.upstreams {
            let arguments = request.arguments.unwrap_or_default();
            // The client's progress token gets the upstream's progress reports.
            let (progress, forwarder) = match context.meta.get_progress_token() {
                Some(token) => {
                    let (tx, task) = progress_forwarder(token, context.peer.clone());
                    let sink: loom_mcp::ProgressCallback =
                        Arc::new(move |p: loom_mcp::Progress| {
                            let _ = tx.try_send(Progress {
                                progress: p.progress,
                                total: p.total,
                                message: p.message,
                            });
                        });
                    (Some(sink), Some(task))
                }
                None => (None, None),
            };
            let outcome = upstreams
                .call(name, arguments, progress, context.ct.clone())
                .await;
            // Progress must reach the client before the result does.
            if let Some(task) = forwarder {
                let _ = task.await;
            }
            if let Some(outcome) = outcome {
                return Ok(match outcome {
                    Ok(result) => result.into(),
                    Err(e) => {
                        debug!(tool = %name, error = %e, "Upstream tool call failed.");
                        to_tool_result(Err(e.into())).into()
                    }
                });
            }
        }
        let upstream_tools = self.get_upstream_tools();
        let known: Vec<&str> = self
            .shared
            .tools
            .iter()
            .chain(upstream_tools.iter())
            .map(|t| t.name.as_ref())
            .collect();
        Err(ErrorData::invalid_params(
            format!(
                "unknown tool '{name}'{}",
                loom_core::config::suggestion(name, known.iter().copied())
            ),
            None,
        ))
    }

    fn get_upstream_tools(&self) -> Vec<Tool> {
        self.shared
            .upstreams
            .as_ref()
            .map(Upstreams::tools)
            .unwrap_or_default()
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_keep_the_original_error_json_and_set_is_error() {
        let ok = to_tool_result(Ok(json!({"summary": "ok", "b": [1, 2]})
            .as_object()
            .cloned()
            .unwrap_or_default()));
        assert_eq!(ok.is_error, Some(false));
        assert_eq!(
            ok.structured_content,
            Some(json!({"summary": "ok", "b": [1, 2]}))
        );
        let err = to_tool_result(Err(ToolFailure::Call(CallError::Failed {
            message: "Input validation: [...]".into(),
        })));
        assert_eq!(err.is_error, Some(true));
        let text = serde_json::to_value(&err.content[0]).unwrap_or_default();
        assert_eq!(
            text["text"],
            json!("{\"error\":\"Input validation: [...]\"}")
        );
    }
}
