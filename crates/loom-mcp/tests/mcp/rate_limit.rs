//! A local streamable-HTTP MCP server that answers 429 with Retry-After: the call is
//! retried per the RetryPolicy, waiting at least Retry-After; a 429 on initialize makes
//! the server unavailable with a rate-limit error.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use loom_mcp::{Registry, ServerSpec};
use serde_json::{Map, Value, json};

use crate::common::*;

#[derive(Default)]
struct Limits {
    /// How many tools/call requests are refused with 429 before one is served.
    refuse_calls: usize,
    /// Refuse initialize with 429.
    refuse_initialize: bool,
    calls: AtomicUsize,
    saw_header: AtomicUsize,
}

async fn mcp(State(limits): State<Arc<Limits>>, headers: HeaderMap, body: String) -> Response {
    let Ok(message) = serde_json::from_str::<Value>(&body) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    if headers.get("x-loom-test").is_some() {
        limits.saw_header.fetch_add(1, Ordering::SeqCst);
    }
    let id = message.get("id").cloned();
    let method = message
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let Some(id) = id else {
        return StatusCode::ACCEPTED.into_response();
    };
    let reply = |result: Value| {
        (
            [
                ("content-type", "application/json"),
                ("mcp-session-id", "s1"),
            ],
            json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string(),
        )
            .into_response()
    };
    let too_many = || {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            "slow down",
        )
            .into_response()
    };
    match method {
        "initialize" if limits.refuse_initialize => too_many(),
        "initialize" => reply(json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "limited", "version": "1"}
        })),
        "tools/list" => reply(json!({"tools": [
            {"name": "echo", "inputSchema": {"type": "object"}}
        ]})),
        "tools/call" => {
            let n = limits.calls.fetch_add(1, Ordering::SeqCst);
            if n < limits.refuse_calls {
                too_many()
            } else {
                reply(json!({"content": [{"type": "text", "text": "served"}]}))
            }
        }
        _ => (
            [("content-type", "application/json")],
            json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32601, "message": "method not found"}})
                .to_string(),
        )
            .into_response(),
    }
}

async fn serve(limits: Arc<Limits>) -> String {
    let app = axum::Router::new()
        .route(
            "/mcp",
            post(mcp)
                .get(|| async { StatusCode::METHOD_NOT_ALLOWED })
                .delete(|| async { StatusCode::OK }),
        )
        .with_state(limits);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/mcp")
}

#[tokio::test]
async fn a_429_is_retried_after_retry_after_and_then_served() {
    let limits = Arc::new(Limits {
        refuse_calls: 1,
        ..Limits::default()
    });
    let url = serve(limits.clone()).await;
    let spec = ServerSpec::http("limited", url, [("X-Loom-Test", "1")], None).expect("spec");
    let registry = Registry::with_options([spec], quick_options()).expect("registry");
    within("connect", registry.connect()).await;
    assert!(
        registry.unavailable().is_empty(),
        "{:?}",
        registry.unavailable()
    );
    let started = Instant::now();
    let out = within("call", registry.call("echo", Map::new()))
        .await
        .expect("served");
    assert_eq!(out.text, "served");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After is a floor"
    );
    assert_eq!(limits.calls.load(Ordering::SeqCst), 2);
    assert!(
        limits.saw_header.load(Ordering::SeqCst) >= 3,
        "headers on every request"
    );
    within("close", registry.close()).await;
}

#[tokio::test]
async fn a_429_on_initialize_makes_the_server_unavailable_with_a_rate_limit_error() {
    let limits = Arc::new(Limits {
        refuse_initialize: true,
        ..Limits::default()
    });
    let url = serve(limits).await;
    let spec = ServerSpec::http("limited", url, [] as [(&str, &str); 0], None).expect("spec");
    let registry = Registry::with_options([spec], quick_options()).expect("registry");
    within("connect", registry.connect()).await;
    let unavailable = registry.unavailable();
    assert_eq!(unavailable.len(), 1);
    assert!(unavailable[0].1.contains("HTTP 429"), "{unavailable:?}");
}
