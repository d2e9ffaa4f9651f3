//! Streamable HTTP: the MCP endpoint (`/mcp`), `/health`, and the security defaults.
//!
//! Defaults: bind 127.0.0.1; `Host` must be a loopback name unless more are allowed
//! (DNS-rebinding guard); a browser `Origin` must be loopback unless more are allowed;
//! optional bearer tokens (never logged); request bodies capped. Both protocol eras are
//! served by rmcp's `StreamableHttpService`: 2025-11-25 clients in sessions, 2026-07-28
//! clients statelessly.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use futures::future::BoxFuture;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;
use tracing::{debug, info};

use crate::server::McpHandler;

/// Largest request body accepted, in bytes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Where the MCP endpoint is mounted.
pub const MCP_PATH: &str = "/mcp";

/// Host names accepted without configuration.
const LOOPBACK_HOSTS: [&str; 4] = ["localhost", "127.0.0.1", "::1", "[::1]"];

/// Browser origins accepted without configuration (any port).
const LOOPBACK_ORIGINS: [&str; 3] = ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"];

/// How the HTTP transport runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpOptions {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Extra `Host` names to accept besides loopback ones (needed when bound to a
    /// public address). `*` accepts any host.
    pub allowed_hosts: Vec<String>,
    /// Extra browser origins to accept besides loopback ones (`https://app.example:*`).
    pub allowed_origins: Vec<String>,
    /// Bearer tokens of which one must be presented; empty means no authentication.
    pub auth_tokens: Vec<SecretString>,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
}

impl HttpOptions {
    /// Defaults on `addr`: loopback hosts and origins only, no tokens, 4 MiB bodies.
    pub fn new(addr: SocketAddr) -> Self {
        HttpOptions {
            addr,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
            auth_tokens: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// Requires one of `tokens` as `Authorization: Bearer <token>`.
    pub fn with_auth_tokens(mut self, tokens: Vec<SecretString>) -> Self {
        self.auth_tokens = tokens;
        self
    }

    /// Accepts these `Host` names too.
    pub fn with_allowed_hosts(mut self, hosts: Vec<String>) -> Self {
        self.allowed_hosts = hosts;
        self
    }

    /// Accepts these browser origins too.
    pub fn with_allowed_origins(mut self, origins: Vec<String>) -> Self {
        self.allowed_origins = origins;
        self
    }

    /// Caps request bodies.
    pub fn with_max_body_bytes(mut self, n: usize) -> Self {
        self.max_body_bytes = n;
        self
    }
}

/// Why the HTTP transport could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("the HTTP server failed")]
    Serve(#[source] std::io::Error),
}

/// A bound HTTP server, not yet serving: its address is known (port 0 picks one).
pub struct HttpServer {
    listener: tokio::net::TcpListener,
    router: Router,
    addr: SocketAddr,
}

impl HttpServer {
    /// Binds `options.addr` and builds the routes for `handler`.
    pub async fn bind(
        handler: McpHandler,
        options: HttpOptions,
        shutdown: CancellationToken,
    ) -> Result<Self, HttpError> {
        let listener = tokio::net::TcpListener::bind(options.addr)
            .await
            .map_err(|source| HttpError::Bind {
                addr: options.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| HttpError::Bind {
            addr: options.addr,
            source,
        })?;
        let router = router(handler, &options, shutdown);
        Ok(HttpServer {
            listener,
            router,
            addr,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` fires, then stops accepting and lets open requests end.
    ///
    /// Connections get `TCP_NODELAY`: responses are written in several small pieces (an
    /// SSE stream's headers, events and final chunk), and with Nagle's algorithm a piece
    /// waits for the client's delayed ACK of the previous one, about 40 ms on Linux, which
    /// is what a client that reuses its connection sees on every request.
    ///
    /// The accept loop runs in a task of its own, on a runtime worker, so that new
    /// connections do not have to wake the thread awaiting `run` (often the one in
    /// `Runtime::block_on`) first; it is stopped when `run` is dropped.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), HttpError> {
        info!(addr = %self.addr, path = MCP_PATH, "Serving MCP over streamable HTTP.");
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                debug!(error = %e, "Cannot set TCP_NODELAY on a connection.");
            }
        });
        let serve = axum::serve(listener, self.router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .into_future();
        match AbortOnDropHandle::new(tokio::spawn(serve)).await {
            Ok(served) => served.map_err(HttpError::Serve),
            Err(e) => Err(HttpError::Serve(std::io::Error::other(e))),
        }
    }
}

#[derive(Clone)]
struct AuthState {
    tokens: Arc<Vec<SecretString>>,
}

fn router(handler: McpHandler, options: &HttpOptions, shutdown: CancellationToken) -> Router {
    let mut hosts: Vec<String> = LOOPBACK_HOSTS.iter().map(|h| (*h).to_owned()).collect();
    hosts.extend(options.allowed_hosts.iter().cloned());
    let mut origins: Vec<String> = LOOPBACK_ORIGINS.iter().map(|o| (*o).to_owned()).collect();
    origins.extend(options.allowed_origins.iter().cloned());
    let mut config = StreamableHttpServerConfig::default()
        .with_allowed_origins(origins)
        .enforce_origin_validation()
        .with_max_request_body_bytes(options.max_body_bytes)
        .with_cancellation_token(shutdown.child_token());
    config = if options.allowed_hosts.iter().any(|h| h == "*") {
        config.disable_allowed_hosts()
    } else {
        config.with_allowed_hosts(hosts)
    };
    let factory_handler = handler.clone();
    let mcp = McpService(Arc::new(StreamableHttpService::new(
        move || Ok(factory_handler.clone()),
        Arc::new(LocalSessionManager::default()),
        config,
    )));
    let mut mcp_routes = Router::new().nest_service(MCP_PATH, mcp);
    // Without tokens the check lets everything through: leave it out of the request path.
    if !options.auth_tokens.is_empty() {
        let auth = AuthState {
            tokens: Arc::new(options.auth_tokens.clone()),
        };
        mcp_routes = mcp_routes.layer(middleware::from_fn_with_state(auth, require_token));
    }
    Router::new()
        .route("/health", axum::routing::get(health))
        .with_state(handler)
        .merge(mcp_routes)
}

/// rmcp's service behind an `Arc`. axum clones a route's service for every request, and
/// rmcp's `call` clones it once more; a clone of `StreamableHttpService` copies its whole
/// config (the host and origin lists, a cancellation token). This one clones an `Arc`.
#[derive(Clone)]
struct McpService(Arc<StreamableHttpService<McpHandler, LocalSessionManager>>);

impl tower::Service<Request> for McpService {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let service = self.0.clone();
        Box::pin(async move { Ok(service.handle(request).await.into_response()) })
    }
}

async fn health(State(handler): State<McpHandler>) -> Response {
    let bus = handler.bus_state();
    let ok = bus.is_connected();
    let body = json!({"status": if ok { "ok" } else { "degraded" }, "name": handler.name(), "bus": bus.to_string()});
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, axum::Json(body)).into_response()
}

async fn require_token(State(auth): State<AuthState>, request: Request, next: Next) -> Response {
    if auth.tokens.is_empty() {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let ok = presented.is_some_and(|p| {
        auth.tokens
            .iter()
            .any(|t| constant_time_eq(t.expose_secret().as_bytes(), p.as_bytes()))
    });
    if ok {
        return next.run(request).await;
    }
    let mut response = (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"error": "missing or invalid bearer token"})),
    )
        .into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}

/// Compares without stopping at the first difference, so response timing does not reveal
/// how much of a guessed token was right. (Written here: a dozen lines do not justify a
/// dependency.)
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for (i, x) in a.iter().enumerate() {
        diff |= usize::from(x ^ b.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_comparison_is_exact() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"secret", b""));
    }
}
