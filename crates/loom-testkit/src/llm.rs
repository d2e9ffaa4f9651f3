//! An LLM HTTP stand-in on a free loopback port, speaking the OpenAI, Anthropic and Ollama shapes.
//!
//! [`LlmStandIn`] answers scripted [`Reply`]s in order, each rendered in the shape of
//! the endpoint that was called, and records every request for assertions:
//!
//! | endpoint | shape |
//! |---|---|
//! | `POST /v1/chat/completions` | OpenAI chat completions (string tool arguments, `finish_reason`, `usage`) |
//! | `POST /v1/messages` | Anthropic Messages (`text`/`tool_use` blocks, `stop_reason`, `usage`) |
//! | `POST /api/chat` | Ollama native chat (object tool arguments, `prompt_eval_count`/`eval_count`) |
//! | `POST /v1/embeddings`, `POST /api/embed` | OpenAI and Ollama embeddings (not scripted) |
//! | `GET /api/tags` | Ollama's model list: one model, [`TAGS_MODEL`] (not recorded) |
//!
//! With an empty script, chat endpoints answer the text `{"echo": "<last user text>"}`.
//! Embeddings are deterministic [`EMBEDDING_DIMENSIONS`]-dimensional vectors derived
//! from the input text.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Length of the vectors served by the embedding endpoints.
pub const EMBEDDING_DIMENSIONS: usize = 8;

/// The one model `GET /api/tags` lists (Ollama's model list, for health checks).
pub const TAGS_MODEL: &str = "stand-in:latest";

/// Token usage reported for a reply unless [`Reply::usage`] sets another.
const DEFAULT_USAGE: (u64, u64) = (10, 5);

/// A running LLM stand-in; it stops accepting connections when dropped.
///
/// ```no_run
/// use loom_testkit::llm::{LlmStandIn, Reply};
///
/// # async fn demo() -> std::io::Result<()> {
/// let llm = LlmStandIn::start().await?;
/// llm.push(Reply::status(429).retry_after(1));
/// llm.push(Reply::tool_call("search", serde_json::json!({"q": "loom"})));
/// llm.push(Reply::text("{\"answer\": 42}"));
/// // Point a backend at llm.base_url(), call it, then:
/// for request in llm.requests() {
///     assert!(request.path.starts_with('/'));
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct LlmStandIn {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl LlmStandIn {
    /// Starts the server on `127.0.0.1` at a port chosen by the OS (read back from the
    /// bound listener, so it is ready when this returns).
    pub async fn start() -> io::Result<LlmStandIn> {
        let context = |what: &str, e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| context("cannot bind the LLM stand-in to 127.0.0.1:0", e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| context("cannot read the LLM stand-in's address", e))?;
        let shared = Arc::new(Shared::default());
        let (shutdown, stopped) = oneshot::channel::<()>();
        let app = router(Arc::clone(&shared));
        tokio::spawn(async move {
            // Serving ends only on shutdown or a listener failure; neither needs reporting
            // because the test sees failed requests.
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(LlmStandIn {
            addr,
            shared,
            shutdown: Some(shutdown),
        })
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Appends a reply to the script.
    pub fn push(&self, reply: Reply) {
        lock(&self.shared.replies).push_back(reply);
    }

    /// Every chat and embedding request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// How many scripted replies have not been used yet.
    pub fn remaining(&self) -> usize {
        lock(&self.shared.replies).len()
    }
}

impl Drop for LlmStandIn {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// One request received by the stand-in.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// The path, e.g. `/v1/messages`.
    pub path: String,
    /// Headers with lowercase names, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The JSON body (`null` if it was not JSON).
    pub body: Value,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A scripted answer, rendered in the shape of the endpoint that consumes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    kind: ReplyKind,
    delay: Duration,
    usage: (u64, u64),
}

#[derive(Debug, Clone, PartialEq)]
enum ReplyKind {
    Message {
        text: Option<String>,
        tool_calls: Vec<(String, Value)>,
    },
    Status {
        code: u16,
        retry_after: Option<u64>,
    },
}

impl Reply {
    /// A text answer.
    pub fn text(text: impl Into<String>) -> Self {
        Self::message(Some(text.into()), Vec::new())
    }

    /// An answer that calls tool `name` with `arguments`.
    pub fn tool_call(name: impl Into<String>, arguments: Value) -> Self {
        Self::message(None, vec![(name.into(), arguments)])
    }

    /// An error answer with HTTP `code` and an error body in the endpoint's shape.
    pub fn status(code: u16) -> Self {
        Self {
            kind: ReplyKind::Status {
                code,
                retry_after: None,
            },
            delay: Duration::ZERO,
            usage: DEFAULT_USAGE,
        }
    }

    /// Adds another tool call (on a text or tool-call reply).
    pub fn and_tool_call(mut self, name: impl Into<String>, arguments: Value) -> Self {
        if let ReplyKind::Message { tool_calls, .. } = &mut self.kind {
            tool_calls.push((name.into(), arguments));
        }
        self
    }

    /// Sets the text that accompanies tool calls.
    pub fn with_text(mut self, new_text: impl Into<String>) -> Self {
        if let ReplyKind::Message { text, .. } = &mut self.kind {
            *text = Some(new_text.into());
        }
        self
    }

    /// Sends `Retry-After: <secs>` with a [`status`](Self::status) reply.
    pub fn retry_after(mut self, secs: u64) -> Self {
        if let ReplyKind::Status { retry_after, .. } = &mut self.kind {
            *retry_after = Some(secs);
        }
        self
    }

    /// Waits `delay` before answering (to exercise client timeouts).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Sets the reported token usage (default 10 prompt, 5 completion).
    pub fn usage(mut self, prompt_tokens: u64, completion_tokens: u64) -> Self {
        self.usage = (prompt_tokens, completion_tokens);
        self
    }

    fn message(text: Option<String>, tool_calls: Vec<(String, Value)>) -> Self {
        Self {
            kind: ReplyKind::Message { text, tool_calls },
            delay: Duration::ZERO,
            usage: DEFAULT_USAGE,
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    replies: Mutex<VecDeque<Reply>>,
    requests: Mutex<Vec<RecordedRequest>>,
    /// Numbers responses and tool calls, so ids are unique and deterministic.
    counter: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Api {
    OpenAi,
    Anthropic,
    Ollama,
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/v1/chat/completions",
            post(|s: State<Arc<Shared>>, h: HeaderMap, b: Bytes| {
                chat(Api::OpenAi, "/v1/chat/completions", s, h, b)
            }),
        )
        .route(
            "/v1/messages",
            post(|s: State<Arc<Shared>>, h: HeaderMap, b: Bytes| {
                chat(Api::Anthropic, "/v1/messages", s, h, b)
            }),
        )
        .route(
            "/api/chat",
            post(|s: State<Arc<Shared>>, h: HeaderMap, b: Bytes| {
                chat(Api::Ollama, "/api/chat", s, h, b)
            }),
        )
        .route(
            "/v1/embeddings",
            post(|s: State<Arc<Shared>>, h: HeaderMap, b: Bytes| {
                embed(Api::OpenAi, "/v1/embeddings", s, h, b)
            }),
        )
        .route(
            "/api/tags",
            get(|| async { axum::Json(json!({"models": [{"name": TAGS_MODEL}]})) }),
        )
        .route(
            "/api/embed",
            post(|s: State<Arc<Shared>>, h: HeaderMap, b: Bytes| {
                embed(Api::Ollama, "/api/embed", s, h, b)
            }),
        )
        .with_state(shared)
}

fn record(shared: &Shared, path: &str, headers: &HeaderMap, body: &Bytes) -> Value {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let headers = headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    lock(&shared.requests).push(RecordedRequest {
        path: path.to_owned(),
        headers,
        body: body.clone(),
    });
    body
}

async fn chat(
    api: Api,
    path: &'static str,
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = record(&shared, path, &headers, &body);
    let reply = lock(&shared.replies).pop_front().unwrap_or_else(|| {
        let echo = json!({"echo": last_user_text(&request)}).to_string();
        Reply::text(echo)
    });
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let n = shared.counter.fetch_add(1, Ordering::SeqCst);
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("stand-in")
        .to_owned();
    match reply.kind {
        ReplyKind::Status { code, retry_after } => error_response(api, code, retry_after),
        ReplyKind::Message { text, tool_calls } => {
            let body = match api {
                Api::OpenAi => openai_body(n, &model, text, &tool_calls, reply.usage),
                Api::Anthropic => anthropic_body(n, &model, text, &tool_calls, reply.usage),
                Api::Ollama => ollama_body(&model, text, &tool_calls, reply.usage),
            };
            axum::Json(body).into_response()
        }
    }
}

fn openai_body(
    n: u64,
    model: &str,
    text: Option<String>,
    calls: &[(String, Value)],
    usage: (u64, u64),
) -> Value {
    let mut message = json!({"role": "assistant", "content": text});
    if !calls.is_empty() {
        let calls: Vec<Value> = calls
            .iter()
            .enumerate()
            .map(|(i, (name, args))| {
                json!({
                    "id": format!("call_{n}_{i}"),
                    "type": "function",
                    "function": {"name": name, "arguments": args.to_string()},
                })
            })
            .collect();
        message["tool_calls"] = Value::Array(calls);
    }
    json!({
        "id": format!("chatcmpl-{n}"),
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "finish_reason": if calls.is_empty() { "stop" } else { "tool_calls" },
        }],
        "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1, "total_tokens": usage.0 + usage.1},
    })
}

fn anthropic_body(
    n: u64,
    model: &str,
    text: Option<String>,
    calls: &[(String, Value)],
    usage: (u64, u64),
) -> Value {
    let mut content = Vec::new();
    if let Some(text) = text {
        content.push(json!({"type": "text", "text": text}));
    }
    for (i, (name, args)) in calls.iter().enumerate() {
        content.push(json!({"type": "tool_use", "id": format!("toolu_{n}_{i}"), "name": name, "input": args}));
    }
    json!({
        "id": format!("msg_{n}"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": if calls.is_empty() { "end_turn" } else { "tool_use" },
        "stop_sequence": null,
        "usage": {"input_tokens": usage.0, "output_tokens": usage.1},
    })
}

fn ollama_body(
    model: &str,
    text: Option<String>,
    calls: &[(String, Value)],
    usage: (u64, u64),
) -> Value {
    let mut message = json!({"role": "assistant", "content": text.unwrap_or_default()});
    if !calls.is_empty() {
        let calls: Vec<Value> = calls
            .iter()
            .map(|(name, args)| json!({"function": {"name": name, "arguments": args}}))
            .collect();
        message["tool_calls"] = Value::Array(calls);
    }
    json!({
        "model": model,
        "created_at": "1970-01-01T00:00:00Z",
        "message": message,
        "done": true,
        "done_reason": "stop",
        "prompt_eval_count": usage.0,
        "eval_count": usage.1,
    })
}

fn error_response(api: Api, code: u16, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let message = format!("stand-in scripted status {code}");
    let body = match api {
        Api::OpenAi => {
            json!({"error": {"message": message, "type": "stand_in_error", "code": null}})
        }
        Api::Anthropic => {
            let kind = match code {
                429 => "rate_limit_error",
                529 => "overloaded_error",
                500..=599 => "api_error",
                _ => "invalid_request_error",
            };
            json!({"type": "error", "error": {"type": kind, "message": message}})
        }
        Api::Ollama => json!({"error": message}),
    };
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// The text of the last user message (OpenAI/Ollama string content or Anthropic text blocks).
fn last_user_text(request: &Value) -> String {
    let Some(messages) = request.get("messages").and_then(Value::as_array) else {
        return String::new();
    };
    let Some(last) = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
    else {
        return String::new();
    };
    match last.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

async fn embed(
    api: Api,
    path: &'static str,
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = record(&shared, path, &headers, &body);
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("stand-in")
        .to_owned();
    let inputs: Vec<String> = match request.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
            .collect(),
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"error": "input must be a string or a list of strings"})),
            )
                .into_response();
        }
    };
    let vectors: Vec<Vec<f64>> = inputs.iter().map(|text| embedding(text)).collect();
    let body = match api {
        Api::Ollama => json!({"model": model, "embeddings": vectors}),
        Api::OpenAi | Api::Anthropic => {
            let tokens: usize = inputs.iter().map(|t| t.split_whitespace().count()).sum();
            let data: Vec<Value> = vectors
                .into_iter()
                .enumerate()
                .map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v}))
                .collect();
            json!({"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
        }
    };
    axum::Json(body).into_response()
}

/// A deterministic unit vector for `text` (FNV-1a per dimension), the same on every run.
pub fn embedding(text: &str) -> Vec<f64> {
    let raw: Vec<f64> = (0..EMBEDDING_DIMENSIONS)
        .map(|dim| {
            let mut hash: u64 =
                0xcbf2_9ce4_8422_2325 ^ (dim as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            for byte in text.bytes() {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
            // Map to [-1, 1].
            (hash % 2001) as f64 / 1000.0 - 1.0
        })
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm == 0.0 {
        raw
    } else {
        raw.into_iter().map(|x| x / norm).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = embedding("hello");
        assert_eq!(a, embedding("hello"));
        assert_ne!(a, embedding("hello!"));
        assert_eq!(a.len(), EMBEDDING_DIMENSIONS);
        let norm: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-9);
    }

    #[test]
    fn last_user_text_reads_strings_and_blocks() {
        let openai = json!({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]});
        assert_eq!(last_user_text(&openai), "hi");
        let anthropic = json!({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]});
        assert_eq!(last_user_text(&anthropic), "ab");
        assert_eq!(last_user_text(&json!({})), "");
    }
}
