//! Helpers the gateway's HTTP tests share: serving a started gateway, rmcp clients of
//! both protocol eras, and reading tool results.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use loom_gateway::{Gateway, HttpOptions, HttpServer};
use rmcp::model::{CallToolRequestParams, CallToolResult, ProtocolVersion};
use rmcp::service::{ClientLifecycleMode, ClientServiceExt, RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::{ClientHandler, ServiceExt};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

/// `fut`, or a panic naming `what` after `limit`.
pub(crate) async fn within_for<T>(
    limit: Duration,
    what: &str,
    fut: impl std::future::Future<Output = T>,
) -> T {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Copies the tree `from` to `to`.
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Serves `gateway` over HTTP with `http` until `shutdown` is cancelled, then stops the
/// gateway; the bound address.
pub(crate) async fn serve_http(
    gateway: Gateway,
    http: HttpOptions,
    shutdown: &CancellationToken,
) -> SocketAddr {
    let server = HttpServer::bind(gateway.handler(), http, shutdown.clone())
        .await
        .expect("bind");
    let addr = server.local_addr();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = server.run(stop).await;
        gateway.stop().await;
    });
    addr
}

/// A client at `url` that makes the 2025-11-25 `initialize` handshake, within `limit`.
pub(crate) async fn legacy_client<H: ClientHandler>(
    limit: Duration,
    url: &str,
    handler: H,
) -> RunningService<RoleClient, H> {
    let transport = StreamableHttpClientTransport::from_uri(url.to_owned());
    within_for(limit, "initialize", handler.serve(transport))
        .await
        .expect("legacy client connects")
}

/// A client at `url` that discovers the 2026-07-28 protocol, within `limit`.
pub(crate) async fn modern_client<H: ClientHandler>(
    limit: Duration,
    url: &str,
    handler: H,
) -> RunningService<RoleClient, H> {
    let transport = StreamableHttpClientTransport::from_uri(url.to_owned());
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    within_for(
        limit,
        "discover",
        handler.serve_with_lifecycle(transport, lifecycle),
    )
    .await
    .expect("modern client connects")
}

/// `v`, a JSON object, as tool arguments.
pub(crate) fn args(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("object")
}

/// A `tools/call` of `name` with `arguments` (a JSON object).
pub(crate) fn call_params(name: &str, arguments: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(name.to_owned()).with_arguments(args(arguments))
}

/// The text of a result's first content item, or an empty string.
pub(crate) fn first_text(result: &CallToolResult) -> String {
    result
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
        .unwrap_or_default()
}

/// The texts of all of a result's text content items, one a line.
pub(crate) fn all_text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}
