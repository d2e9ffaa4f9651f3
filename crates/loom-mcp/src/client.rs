//! `Client`: one MCP server, one rmcp session at a time, with connect timeouts, per-call
//! timeouts (a timed-out call sends `notifications/cancelled`), liveness tracking, and
//! single-flight reconnects.

mod handler;
mod http;
mod progress;
mod stdio;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResponse, CallToolResult,
    CancelledNotification, CancelledNotificationParam, ClientNotification, ClientRequest,
    GetPromptRequestParams, GetPromptResult, Prompt, ProtocolVersion, ReadResourceRequestParams,
    ReadResourceResult, RequestId, Resource, ResourceTemplate, ServerNotification, ServerResult,
    SubscriptionFilter, Tool,
};
use rmcp::service::{
    ClientCacheConfig, ClientInitializeError, ClientLifecycleMode, ClientServiceExt, Peer,
    PeerRequestOptions, RoleClient, RunningService, ServiceError,
};
use rmcp::transport::async_rw::AsyncRwTransport;
use serde_json::{Map, Value};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

pub use handler::{Change, ChangeCallback, SAMPLING_MODEL};
pub use progress::{Progress, ProgressCallback};
pub use stdio::INHERITED_ENV;

use crate::error::McpError;
use crate::spec::{ServerSpec, Transport};
use handler::Handler;
use progress::{Routes, Tap};
use stdio::StdioChild;

/// Timeouts of a [`Client`]. Every value is valid, so the fields are public.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Bounds connecting: spawning or reaching the server and the handshake. A server
    /// that never answers `initialize` fails with [`McpError::Timeout`] after it.
    pub init_timeout: Duration,
    /// Bounds each request to a stdio server; an HTTP server's spec timeout is used for
    /// its requests when shorter. A timed-out `tools/call` is cancelled on the server.
    pub call_timeout: Duration,
    /// How long `close` waits at each step (after closing stdin, after SIGTERM).
    pub close_grace: Duration,
}

impl Default for ClientOptions {
    /// 30 s to connect, 120 s per request, 2 s close grace.
    fn default() -> Self {
        Self {
            init_timeout: Duration::from_secs(30),
            call_timeout: Duration::from_secs(120),
            close_grace: Duration::from_secs(2),
        }
    }
}

/// One MCP server. Connects on [`Client::connect`] (the registry calls it lazily),
/// keeps one session, and reconnects only when asked ([`Client::reconnect`]), once per
/// failed connection however many callers ask.
///
/// A stdio server runs as a child in its own process group, with the allow-listed parent
/// environment ([`INHERITED_ENV`]) plus the spec's, in the spec's `cwd`; its stderr tail is
/// kept for [`McpError::Exited`]; it is SIGKILLed by the kernel if this process dies.
pub struct Client {
    spec: ServerSpec,
    options: ClientOptions,
    on_change: Option<ChangeCallback>,
    current: Mutex<Option<Arc<Connection>>>,
    generations: AtomicU64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("spec", &self.spec)
            .field("options", &self.options)
            .field("connections", &self.generations.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `spec`; nothing connects yet.
    pub fn new(spec: ServerSpec, options: ClientOptions) -> Self {
        Self {
            spec,
            options,
            on_change: None,
            current: Mutex::new(None),
            generations: AtomicU64::new(0),
        }
    }

    /// Calls `callback` when the server reports a changed tool, resource or prompt list
    /// (legacy notifications and 2026-07-28 subscriptions alike).
    pub fn with_change_callback(mut self, callback: ChangeCallback) -> Self {
        self.on_change = Some(callback);
        self
    }

    /// The server's spec.
    pub fn spec(&self) -> &ServerSpec {
        &self.spec
    }

    /// The server's name.
    pub fn name(&self) -> &str {
        self.spec.name()
    }

    /// How many connections were opened so far (1 after the first connect).
    pub fn connections_opened(&self) -> u64 {
        self.generations.load(Ordering::SeqCst)
    }

    /// The current connection, connecting first if there is none. A connection whose
    /// server died is returned as it is: its requests fail with the cause.
    pub(crate) async fn connection(&self) -> Result<Arc<Connection>, McpError> {
        let mut current = self.current.lock().await;
        if let Some(conn) = current.as_ref() {
            return Ok(conn.clone());
        }
        let conn = Arc::new(self.open().await?);
        *current = Some(conn.clone());
        Ok(conn)
    }

    /// Connects if not connected.
    pub async fn connect(&self) -> Result<(), McpError> {
        self.connection().await.map(|_| ())
    }

    /// Replaces connection `failed` (a [`Client::generation`]) with a new one. When it
    /// was already replaced (another caller reconnected first), the newer one is kept
    /// and returned: N callers that saw one failure cause one reconnect.
    pub(crate) async fn reconnect(&self, failed: u64) -> Result<Arc<Connection>, McpError> {
        let mut current = self.current.lock().await;
        if let Some(conn) = current.as_ref()
            && conn.generation != failed
        {
            return Ok(conn.clone());
        }
        if let Some(old) = current.take() {
            old.close(self.options.close_grace).await;
        }
        let conn = Arc::new(self.open().await?);
        *current = Some(conn.clone());
        Ok(conn)
    }

    /// The generation of the current connection, if connected.
    pub async fn generation(&self) -> Option<u64> {
        self.current.lock().await.as_ref().map(|c| c.generation)
    }

    /// The process id of the current stdio child, if any.
    pub async fn pid(&self) -> Option<u32> {
        self.current.lock().await.as_ref().and_then(|c| c.pid())
    }

    /// The protocol version negotiated on the current connection (`2026-07-28` or
    /// `2025-11-25`), if connected.
    pub async fn protocol_version(&self) -> Option<String> {
        let current = self.current.lock().await;
        let info = current.as_ref()?.peer.peer_info()?;
        serde_json::to_value(&info.protocol_version)
            .ok()?
            .as_str()
            .map(str::to_owned)
    }

    /// Whether the current connection is known to be broken (child exited, session ended).
    pub async fn is_dead(&self) -> bool {
        self.current
            .lock()
            .await
            .as_ref()
            .is_some_and(|c| c.is_dead())
    }

    /// Closes the connection: for a stdio server, closes its stdin, then SIGTERMs and
    /// finally SIGKILLs its process group, each after the close grace. Idempotent; a later
    /// operation connects again.
    pub async fn close(&self) {
        let old = self.current.lock().await.take();
        if let Some(old) = old {
            old.close(self.options.close_grace).await;
        }
    }

    /// The server's tools (all pages).
    pub async fn list_tools(&self) -> Result<Vec<Tool>, McpError> {
        self.connection().await?.list_tools().await
    }

    /// Calls tool `name` (unqualified) with `arguments`.
    pub async fn call_tool(
        &self,
        name: &str,
        arguments: Map<String, Value>,
    ) -> Result<CallToolResult, McpError> {
        self.connection()
            .await?
            .call_tool(name, &arguments, None)
            .await
    }

    /// [`Client::call_tool`] with a progress token: the server's progress reports for
    /// this call go to `progress`, in order, before the result is returned.
    pub async fn call_tool_with_progress(
        &self,
        name: &str,
        arguments: Map<String, Value>,
        progress: ProgressCallback,
    ) -> Result<CallToolResult, McpError> {
        self.connection()
            .await?
            .call_tool(name, &arguments, Some(&progress))
            .await
    }

    /// The server's resources (all pages; empty when it offers none).
    pub async fn list_resources(&self) -> Result<Vec<Resource>, McpError> {
        self.connection().await?.list_resources().await
    }

    /// Reads resource `uri`.
    pub async fn read_resource(&self, uri: &str) -> Result<ReadResourceResult, McpError> {
        self.connection().await?.read_resource(uri).await
    }

    /// The server's resource templates (all pages; empty when it offers no resources).
    pub async fn list_resource_templates(&self) -> Result<Vec<ResourceTemplate>, McpError> {
        self.connection().await?.list_resource_templates().await
    }

    /// The server's prompts (all pages; empty when it offers none).
    pub async fn list_prompts(&self) -> Result<Vec<Prompt>, McpError> {
        self.connection().await?.list_prompts().await
    }

    /// Gets prompt `name` with `arguments`.
    pub async fn get_prompt(
        &self,
        name: &str,
        arguments: Map<String, Value>,
    ) -> Result<GetPromptResult, McpError> {
        self.connection().await?.get_prompt(name, arguments).await
    }

    async fn open(&self) -> Result<Connection, McpError> {
        let generation = self.generations.fetch_add(1, Ordering::SeqCst) + 1;
        let server = self.spec.name().to_owned();
        let routes = Routes::default();
        let handler = Handler {
            server: server.clone(),
            on_change: self.on_change.clone(),
            sampling: self.spec.sampling_handler().cloned(),
        };
        let lifecycle = ClientLifecycleMode::Auto {
            preferred_versions: vec![ProtocolVersion::V_2026_07_28],
            legacy_version: Some(ProtocolVersion::V_2025_11_25),
        };
        let init = self.options.init_timeout;
        let timed_out = || McpError::Timeout {
            server: server.clone(),
            operation: "initialize".into(),
            after: init,
        };
        let (service, child, call_timeout, is_http) = match self.spec.transport() {
            Transport::Stdio {
                command,
                args,
                env,
                cwd,
            } => {
                let spawned = stdio::spawn(&server, command, args, env, cwd.as_ref())?;
                let child = spawned.child;
                let transport = Tap {
                    inner: AsyncRwTransport::<RoleClient, _, _>::new(spawned.stdout, spawned.stdin),
                    routes: routes.clone(),
                };
                let served = tokio::time::timeout(
                    init,
                    handler.clone().serve_with_lifecycle(transport, lifecycle),
                )
                .await;
                let service = match served {
                    Ok(Ok(service)) => service,
                    Ok(Err(error)) => {
                        // A server that dies at startup: report its exit and stderr.
                        if let Some(status) = child.wait_exit(Duration::from_secs(1)).await {
                            return Err(child.exited_error(status));
                        }
                        let error = init_error(&server, &error);
                        child.shutdown(self.options.close_grace).await;
                        return Err(error);
                    }
                    Err(_) => {
                        child.shutdown(self.options.close_grace).await;
                        return Err(timed_out());
                    }
                };
                (service, Some(child), self.options.call_timeout, false)
            }
            Transport::Http {
                url,
                headers,
                timeout,
            } => {
                let transport = Tap {
                    inner: http::transport(&server, url, headers, *timeout)?,
                    routes: routes.clone(),
                };
                let service = tokio::time::timeout(
                    init.min(*timeout),
                    handler.clone().serve_with_lifecycle(transport, lifecycle),
                )
                .await
                .map_err(|_| McpError::Timeout {
                    server: server.clone(),
                    operation: "initialize".into(),
                    after: init.min(*timeout),
                })?
                .map_err(|e| init_error(&server, &e))?;
                (service, None, self.options.call_timeout.min(*timeout), true)
            }
        };
        let peer = service.peer().clone();
        // The registry caches lists itself and must see failures, not stale copies.
        peer.set_response_cache_config(ClientCacheConfig::disabled())
            .await;
        let modern = peer
            .peer_info()
            .is_some_and(|info| info.protocol_version == ProtocolVersion::V_2026_07_28);
        tracing::info!(
            server = %server,
            generation,
            protocol = if modern { "2026-07-28" } else { "2025-11-25" },
            pid = child.as_ref().and_then(StdioChild::pid),
            "Connected to MCP server."
        );
        let listener = modern.then(|| spawn_listener(peer.clone(), handler.clone()));
        Ok(Connection {
            server,
            generation,
            peer,
            service: std::sync::Mutex::new(Some(service)),
            child,
            listener,
            call_timeout,
            is_http,
            routes,
        })
    }
}

/// Modern (2026-07-28) servers send list-changed notifications only to subscribers.
fn spawn_listener(peer: Peer<RoleClient>, handler: Handler) -> JoinHandle<()> {
    tokio::spawn(async move {
        let filter = SubscriptionFilter::builder()
            .tools_list_changed()
            .resources_list_changed()
            .prompts_list_changed()
            .build();
        let mut subscription = match peer.listen(filter).await {
            Ok(subscription) => subscription,
            Err(error) => {
                tracing::debug!(server = %handler.server, error = %error, "MCP server refused subscriptions/listen; no change notifications.");
                return;
            }
        };
        while let Ok(Some(notification)) = subscription.next().await {
            match notification {
                ServerNotification::ToolListChangedNotification(_) => {
                    handler.changed(Change::Tools)
                }
                ServerNotification::ResourceListChangedNotification(_) => {
                    handler.changed(Change::Resources)
                }
                ServerNotification::PromptListChangedNotification(_) => {
                    handler.changed(Change::Prompts)
                }
                _ => {}
            }
        }
    })
}

fn init_error(server: &str, error: &ClientInitializeError) -> McpError {
    if let Some((status, retry_after)) = init_http_status(error) {
        return http::status_error(server, "initialize", status, retry_after);
    }
    match error {
        ClientInitializeError::JsonRpcError(data) => McpError::Protocol {
            server: server.to_owned(),
            operation: "initialize".into(),
            code: data.code.0,
            message: data.message.to_string(),
        },
        // The legacy handshake's failure is the one that matters for a legacy server.
        ClientInitializeError::LegacyFallbackFailed { fallback, .. } => {
            init_error(server, fallback)
        }
        other => McpError::transport(server, format!("cannot connect: {}", chain(other))),
    }
}

fn init_http_status(error: &ClientInitializeError) -> Option<(u16, Option<Duration>)> {
    match error {
        ClientInitializeError::TransportError { error, .. } => {
            http::http_status(error.error.as_ref())
        }
        ClientInitializeError::LegacyFallbackFailed { discover, fallback } => {
            init_http_status(fallback).or_else(|| init_http_status(discover))
        }
        _ => None,
    }
}

/// An error and its sources, `a: b: c`.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let part = e.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = e.source();
    }
    text
}

/// A request's name for errors (`tools/call 'echo'`), formatted only when one is made.
#[derive(Debug, Clone, Copy)]
struct Operation<'a> {
    method: &'static str,
    target: Option<&'a str>,
}

impl<'a> Operation<'a> {
    fn new(method: &'static str) -> Self {
        Self {
            method,
            target: None,
        }
    }

    fn on(method: &'static str, target: &'a str) -> Self {
        Self {
            method,
            target: Some(target),
        }
    }
}

impl std::fmt::Display for Operation<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.target {
            Some(target) => write!(f, "{} '{target}'", self.method),
            None => f.write_str(self.method),
        }
    }
}

/// One live session with a server.
pub(crate) struct Connection {
    server: String,
    pub(crate) generation: u64,
    peer: Peer<RoleClient>,
    service: std::sync::Mutex<Option<RunningService<RoleClient, Handler>>>,
    child: Option<StdioChild>,
    listener: Option<JoinHandle<()>>,
    call_timeout: Duration,
    is_http: bool,
    /// Where the progress reports of calls in flight go.
    routes: Routes,
}

impl Connection {
    fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(StdioChild::pid)
    }

    /// Whether the session is known to be over: the child exited (peeked at with a
    /// syscall, so a zombie the waiter task has not reaped yet counts) or rmcp's loop ended.
    pub(crate) fn is_dead(&self) -> bool {
        self.peer.is_transport_closed() || self.child.as_ref().is_some_and(StdioChild::has_exited)
    }

    /// [`Connection::is_dead`] from what is already known, without a syscall: the check
    /// before each request. The registry peeks with [`Connection::is_dead`] right before
    /// (to respawn a dead child), and a child that died unnoticed fails the request's
    /// write or read anyway, which reports its exit the same way.
    fn is_known_dead(&self) -> bool {
        self.peer.is_transport_closed()
            || self
                .child
                .as_ref()
                .is_some_and(|c| c.exit_status().is_some())
    }

    /// Why this connection is dead, as an error (the exit status for a stdio child).
    pub(crate) async fn death(&self) -> McpError {
        if let Some(child) = &self.child
            && let Some(status) = child.wait_exit(Duration::from_millis(500)).await
        {
            return child.exited_error(status);
        }
        McpError::transport(&self.server, "connection closed")
    }

    async fn map_error(&self, operation: &str, error: ServiceError) -> McpError {
        match error {
            ServiceError::McpError(data) => McpError::Protocol {
                server: self.server.clone(),
                operation: operation.to_owned(),
                code: data.code.0,
                message: data.message.to_string(),
            },
            ServiceError::Timeout { timeout } => McpError::Timeout {
                server: self.server.clone(),
                operation: operation.to_owned(),
                after: timeout,
            },
            ServiceError::TransportSend(error) if self.is_http => {
                match http::http_status(error.error.as_ref()) {
                    Some((status, retry_after)) => {
                        http::status_error(&self.server, operation, status, retry_after)
                    }
                    None => McpError::transport(&self.server, chain(&error)),
                }
            }
            ServiceError::TransportSend(_) | ServiceError::TransportClosed => self.death().await,
            other => McpError::transport(&self.server, other.to_string()),
        }
    }

    /// Runs one request under the call timeout, mapping its errors.
    async fn request<T, F>(&self, operation: Operation<'_>, fut: F) -> Result<T, McpError>
    where
        F: std::future::Future<Output = Result<T, ServiceError>>,
    {
        if self.is_known_dead() {
            return Err(self.death().await);
        }
        match tokio::time::timeout(self.call_timeout, fut).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(self.map_error(&operation.to_string(), error).await),
            // Dropping the request future sends notifications/cancelled (rmcp's
            // cancel-on-drop guard), so the server can stop working on it.
            Err(_) => Err(McpError::Timeout {
                server: self.server.clone(),
                operation: operation.to_string(),
                after: self.call_timeout,
            }),
        }
    }

    fn capabilities(&self) -> Option<rmcp::model::ServerCapabilities> {
        self.peer.peer_info().map(|i| i.capabilities.clone())
    }

    pub(crate) async fn list_tools(&self) -> Result<Vec<Tool>, McpError> {
        self.request(Operation::new("tools/list"), self.peer.list_all_tools())
            .await
    }

    /// Calls tool `name`; with `progress`, the request carries a progress token whose
    /// reports go there.
    pub(crate) async fn call_tool(
        &self,
        name: &str,
        arguments: &Map<String, Value>,
        progress: Option<&ProgressCallback>,
    ) -> Result<CallToolResult, McpError> {
        let operation = Operation::on("tools/call", name);
        let params = CallToolRequestParams::new(name.to_owned()).with_arguments(arguments.clone());
        let response = match progress {
            None => {
                self.request(operation, self.peer.call_tool_once(params))
                    .await?
            }
            Some(progress) => {
                self.request(operation, self.call_with_progress(params, progress.clone()))
                    .await?
            }
        };
        match response {
            CallToolResponse::Complete(result) => Ok(result),
            _ => Err(McpError::Protocol {
                server: self.server.clone(),
                operation: operation.to_string(),
                code: -32603,
                message:
                    "the server asked for input or started a task, which Loom does not support yet"
                        .into(),
            }),
        }
    }

    /// `tools/call` with rmcp's progress token routed to `progress` while the response is
    /// awaited. Dropped before the response, it sends `notifications/cancelled`.
    async fn call_with_progress(
        &self,
        params: CallToolRequestParams,
        progress: ProgressCallback,
    ) -> Result<CallToolResponse, ServiceError> {
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
        let handle = self
            .peer
            .send_request_with_option(request, PeerRequestOptions::no_options())
            .await?;
        let _route = self
            .routes
            .register(handle.progress_token.clone(), progress);
        let mut abandoned = Abandoned {
            peer: self.peer.clone(),
            id: Some(handle.id.clone()),
        };
        let result = handle.await_response().await;
        abandoned.id = None;
        match result? {
            ServerResult::CallToolResult(result) => Ok(CallToolResponse::Complete(result)),
            ServerResult::InputRequiredResult(result) => {
                Ok(CallToolResponse::InputRequired(result))
            }
            ServerResult::CreateTaskResult(result) => Ok(CallToolResponse::Task(result)),
            _ => Err(ServiceError::UnexpectedResponse),
        }
    }

    pub(crate) async fn list_resources(&self) -> Result<Vec<Resource>, McpError> {
        if self.capabilities().is_some_and(|c| c.resources.is_none()) {
            return Ok(Vec::new());
        }
        self.request(
            Operation::new("resources/list"),
            self.peer.list_all_resources(),
        )
        .await
    }

    pub(crate) async fn list_resource_templates(&self) -> Result<Vec<ResourceTemplate>, McpError> {
        if self.capabilities().is_some_and(|c| c.resources.is_none()) {
            return Ok(Vec::new());
        }
        self.request(
            Operation::new("resources/templates/list"),
            self.peer.list_all_resource_templates(),
        )
        .await
    }

    pub(crate) async fn read_resource(&self, uri: &str) -> Result<ReadResourceResult, McpError> {
        self.request(
            Operation::on("resources/read", uri),
            self.peer
                .read_resource(ReadResourceRequestParams::new(uri.to_owned())),
        )
        .await
    }

    pub(crate) async fn list_prompts(&self) -> Result<Vec<Prompt>, McpError> {
        if self.capabilities().is_some_and(|c| c.prompts.is_none()) {
            return Ok(Vec::new());
        }
        self.request(Operation::new("prompts/list"), self.peer.list_all_prompts())
            .await
    }

    pub(crate) async fn get_prompt(
        &self,
        name: &str,
        arguments: Map<String, Value>,
    ) -> Result<GetPromptResult, McpError> {
        let operation = Operation::on("prompts/get", name);
        let mut params = GetPromptRequestParams::new(name.to_owned());
        if !arguments.is_empty() {
            params = params.with_arguments(arguments);
        }
        match self
            .request(operation, self.peer.get_prompt_once(params))
            .await?
        {
            rmcp::model::GetPromptResponse::Complete(result) => Ok(result),
            _ => Err(McpError::Protocol {
                server: self.server.clone(),
                operation: operation.to_string(),
                code: -32603,
                message: "the server asked for input, which Loom does not support yet".into(),
            }),
        }
    }

    /// Ends the session (closing a child's stdin), then the child as [`Client::close`] says.
    async fn close(&self, grace: Duration) {
        if let Some(listener) = &self.listener {
            listener.abort();
        }
        let service = self
            .service
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(mut service) = service {
            // Cancelling ends rmcp's loop, which drops the transport: stdin closes, an
            // HTTP session gets its DELETE.
            let _ = service.close_with_timeout(grace).await;
        }
        if let Some(child) = &self.child {
            child.shutdown(grace).await;
        }
        tracing::debug!(server = %self.server, generation = self.generation, "Closed MCP connection.");
    }
}

/// Armed while a response is awaited: dropped armed (a timeout, a cancelled caller), it
/// tells the server the request is abandoned, as rmcp's own requests do.
struct Abandoned {
    peer: Peer<RoleClient>,
    id: Option<RequestId>,
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let peer = self.peer.clone();
        runtime.spawn(async move {
            let notification = CancelledNotification::new(CancelledNotificationParam::new(
                Some(id),
                Some("request abandoned by the caller".to_owned()),
            ));
            let _ = peer
                .send_notification(ClientNotification::CancelledNotification(notification))
                .await;
        });
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(listener) = &self.listener {
            listener.abort();
        }
    }
}
