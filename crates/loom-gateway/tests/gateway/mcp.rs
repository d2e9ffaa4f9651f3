//! The gateway as MCP clients see it: real rmcp clients over streamable HTTP, in both
//! protocol eras, against the docman example running as an embedded mesh.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use loom_bus::{Bus, BusExt, MemoryBus};
use loom_core::config::load_gateway;
use loom_gateway::{Gateway, GatewayOptions, HttpOptions};
use rmcp::ClientHandler;
use rmcp::model::{
    CallToolRequestParams, ClientConfig, ProgressNotificationParam, ReadResourceRequestParams,
    ResourceContents, ResourceUpdatedNotificationParam, ServerNotification, SubscribeRequestParams,
    SubscriptionFilter,
};
use rmcp::service::{NotificationContext, RoleClient, RunningService};
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::common::{args, copy_dir, first_text, serve_http, within_for};

const WAIT: Duration = Duration::from_secs(15);

async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    within_for(WAIT, what, fut).await
}

/// Records the notifications a client receives.
#[derive(Clone, Default)]
struct Recorder {
    progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
    updated: Arc<Mutex<Vec<String>>>,
    list_changed: Arc<AtomicUsize>,
}

impl ClientHandler for Recorder {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().expect("lock").push(params);
    }

    async fn on_resource_updated(
        &self,
        params: ResourceUpdatedNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.updated.lock().expect("lock").push(params.uri);
    }

    async fn on_resource_list_changed(&self, _: NotificationContext<RoleClient>) {
        self.list_changed.fetch_add(1, Ordering::SeqCst);
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::default()
    }
}

/// The docman example copied to a temp dir (so tests can change its workspace), served
/// over HTTP by an embedded gateway.
struct Served {
    url: String,
    base: String,
    dir: tempfile::TempDir,
    bus: Arc<dyn Bus>,
    shutdown: CancellationToken,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn serve(options: impl FnOnce(HttpOptions) -> HttpOptions) -> Served {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/docman");
    copy_dir(&src, dir.path());
    let config = load_gateway(&dir.path().join("mcp.yaml")).expect("valid docman config");
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let shutdown = CancellationToken::new();
    let gateway = within(
        "gateway start",
        Gateway::start(
            config,
            bus.clone(),
            GatewayOptions::default().embedded(true),
            shutdown.clone(),
        ),
    )
    .await
    .expect("gateway starts");
    let http = options(HttpOptions::new("127.0.0.1:0".parse().expect("addr")));
    let addr = serve_http(gateway, http, &shutdown).await;
    Served {
        url: format!("http://{addr}/mcp"),
        base: format!("http://{addr}"),
        dir,
        bus,
        shutdown,
    }
}

async fn legacy_client(url: &str, recorder: Recorder) -> RunningService<RoleClient, Recorder> {
    crate::common::legacy_client(WAIT, url, recorder).await
}

async fn modern_client(url: &str, recorder: Recorder) -> RunningService<RoleClient, Recorder> {
    crate::common::modern_client(WAIT, url, recorder).await
}

#[tokio::test]
async fn both_eras_list_and_call_tools() {
    let served = serve(|o| o).await;
    for (era, client) in [
        (
            "2025-11-25",
            legacy_client(&served.url, Recorder::default()).await,
        ),
        (
            "2026-07-28",
            modern_client(&served.url, Recorder::default()).await,
        ),
    ] {
        let tools = within("tools/list", client.list_all_tools())
            .await
            .expect("tools");
        let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
        assert_eq!(
            names,
            [
                "text_stats",
                "keywords",
                "echo",
                "ingest_document",
                "docs_search",
                "docs_filter",
                "docs_stats",
                "docs_get"
            ],
            "{era}"
        );
        let stats = tools
            .iter()
            .find(|t| t.name == "text_stats")
            .expect("text_stats");
        assert!(
            stats.output_schema.is_some(),
            "{era}: worker output_schema becomes outputSchema"
        );

        let result = within(
            "tools/call",
            client.call_tool(
                CallToolRequestParams::new("text_stats")
                    .with_arguments(args(json!({"text": "hello mesh"}))),
            ),
        )
        .await
        .expect("call");
        assert_eq!(
            result.is_error,
            Some(false),
            "{era}: {}",
            first_text(&result)
        );
        assert_eq!(
            result.structured_content,
            Some(json!({"reversed": "hsem olleh", "word_count": 2, "char_count": 10}))
        );
        assert_eq!(
            serde_json::from_str::<Value>(&first_text(&result)).ok(),
            result.structured_content,
            "{era}"
        );
        client.cancel().await.expect("close");
    }
}

#[tokio::test]
async fn bad_arguments_are_tool_errors_and_unknown_tools_protocol_errors() {
    let served = serve(|o| o).await;
    let client = legacy_client(&served.url, Recorder::default()).await;
    let result = within(
        "tools/call",
        client.call_tool(
            CallToolRequestParams::new("text_stats").with_arguments(args(json!({"text": 3}))),
        ),
    )
    .await
    .expect("a tool result, not a protocol error");
    assert_eq!(result.is_error, Some(true));
    let body: Value = serde_json::from_str(&first_text(&result)).expect("the error text is JSON");
    let message = body["error"].as_str().expect("error string");
    assert!(
        message.contains("text_stats") && message.contains("/text"),
        "{message}"
    );

    let err = within(
        "unknown tool",
        client.call_tool(CallToolRequestParams::new("text_stat")),
    )
    .await;
    let err = err
        .expect_err("unknown tool is a protocol error")
        .to_string();
    assert!(
        err.contains("-32602") || err.contains("unknown tool 'text_stat'"),
        "{err}"
    );
    assert!(err.contains("did you mean 'text_stats'"), "{err}");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn pipeline_stages_become_progress_notifications() {
    let served = serve(|o| o).await;
    let recorder = Recorder::default();
    let client = legacy_client(&served.url, recorder.clone()).await;
    let result = within(
        "pipeline call",
        client.call_tool(
            CallToolRequestParams::new("ingest_document").with_arguments(args(
                json!({"text": "the fox and the dog and the fox", "title": "t"}),
            )),
        ),
    )
    .await
    .expect("call");
    assert_eq!(result.is_error, Some(false), "{}", first_text(&result));
    let out = result.structured_content.expect("structured");
    assert_eq!(
        out["report"]["top_keywords"][0],
        json!({"word": "fox", "count": 2})
    );
    let progress = recorder.progress.lock().expect("lock").clone();
    let seen: Vec<(f64, Option<f64>)> = progress.iter().map(|p| (p.progress, p.total)).collect();
    assert_eq!(seen, [(1.0, Some(3.0)), (2.0, Some(3.0)), (3.0, Some(3.0))]);
    assert_eq!(progress[2].message.as_deref(), Some("report"));
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn resources_are_live_for_legacy_subscribers() {
    let served = serve(|o| o).await;
    let recorder = Recorder::default();
    let client = legacy_client(&served.url, recorder.clone()).await;
    let resources = within("resources/list", client.list_all_resources())
        .await
        .expect("list");
    let uris: Vec<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
    assert!(
        uris.contains(&"workspace:///README.md") && uris.contains(&"workspace:///example.json"),
        "{uris:?}"
    );

    let read = within(
        "read",
        client.read_resource(ReadResourceRequestParams::new("workspace:///example.json")),
    )
    .await
    .expect("read");
    match &read.contents[0] {
        ResourceContents::TextResourceContents {
            text, mime_type, ..
        } => {
            assert_eq!(mime_type.as_deref(), Some("application/json"));
            assert!(text.contains("quick brown fox"));
        }
        other => panic!("expected text, got {other:?}"),
    }
    let escape = within(
        "read escape",
        client.read_resource(ReadResourceRequestParams::new("workspace:///../mcp.yaml")),
    )
    .await;
    assert!(escape.is_err(), "traversal must be refused");

    #[allow(deprecated)]
    within(
        "subscribe",
        client.subscribe(SubscribeRequestParams::new("workspace:///README.md")),
    )
    .await
    .expect("subscribe");
    let ws = served.dir.path().join("workspace");
    std::fs::write(ws.join("README.md"), "changed\n").expect("write");
    std::fs::write(ws.join("new.txt"), "new file\n").expect("write");
    within("notifications", async {
        loop {
            let updated = recorder
                .updated
                .lock()
                .expect("lock")
                .contains(&"workspace:///README.md".to_owned());
            if updated && recorder.list_changed.load(Ordering::SeqCst) > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    // A file created after start is listed and readable.
    let read = within(
        "read new",
        client.read_resource(ReadResourceRequestParams::new("workspace:///new.txt")),
    )
    .await;
    assert!(read.is_ok(), "{read:?}");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn modern_clients_get_resource_changes_through_listen() {
    let served = serve(|o| o).await;
    let client = modern_client(&served.url, Recorder::default()).await;
    let filter = SubscriptionFilter::builder()
        .resources_list_changed()
        .build();
    let mut sub = within("listen", client.listen(filter))
        .await
        .expect("listen");
    std::fs::write(served.dir.path().join("workspace/created.md"), "# new\n").expect("write");
    let note = within("list_changed", sub.next())
        .await
        .expect("subscription")
        .expect("a notification");
    assert!(
        matches!(note, ServerNotification::ResourceListChangedNotification(_)),
        "{note:?}"
    );
    // loom.resources.changed on the bus triggers the same.
    served
        .bus
        .publish_json("loom.resources.changed", &json!({}))
        .await
        .expect("publish");
    let note = within("bus-triggered list_changed", sub.next())
        .await
        .expect("subscription")
        .expect("a notification");
    assert!(
        matches!(note, ServerNotification::ResourceListChangedNotification(_)),
        "{note:?}"
    );
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn http_security_defaults() {
    let served = serve(|o| {
        o.with_auth_tokens(vec![SecretString::from("s3cret".to_owned())])
            .with_max_body_bytes(64 * 1024)
    })
    .await;
    let http = reqwest::Client::new();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let post = |body: String| {
        http.post(&served.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(body)
    };
    let r = within("no token", post(init.to_string()).send())
        .await
        .expect("response");
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    let r = within(
        "wrong token",
        post(init.to_string()).bearer_auth("nope").send(),
    )
    .await
    .expect("response");
    assert_eq!(r.status(), 401);
    let r = within("ok", post(init.to_string()).bearer_auth("s3cret").send())
        .await
        .expect("response");
    assert_eq!(r.status(), 200);
    let r = within(
        "bad origin",
        post(init.to_string())
            .bearer_auth("s3cret")
            .header("origin", "https://evil.example")
            .send(),
    )
    .await
    .expect("response");
    assert_eq!(r.status(), 403);
    let big = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"ping\",\"params\":{{\"x\":\"{}\"}}}}",
        "a".repeat(100 * 1024)
    );
    let r = within("oversized", post(big).bearer_auth("s3cret").send())
        .await
        .expect("response");
    assert_eq!(r.status(), 413);
    let health: Value = within("health", async {
        http.get(format!("{}/health", served.base))
            .send()
            .await?
            .json()
            .await
    })
    .await
    .expect("health json");
    assert_eq!(
        health,
        json!({"status": "ok", "name": "docman", "bus": "connected"})
    );
}

#[tokio::test]
async fn query_tools_search_the_seeded_corpus_and_refuse_injection() {
    let served = serve(|o| o).await;
    let client = modern_client(&served.url, Recorder::default()).await;
    let call = |name: &'static str, a: Value| {
        let client = &client;
        async move {
            within(
                name,
                client.call_tool(CallToolRequestParams::new(name).with_arguments(args(a))),
            )
            .await
            .expect("a tool result")
        }
    };
    // The database does not exist in the copy: the first call builds it from the seed file.
    let found = call(
        "docs_search",
        json!({"query": "firewall breach", "limit": 3}),
    )
    .await;
    assert_eq!(found.is_error, Some(false), "{}", first_text(&found));
    let results = found.structured_content.expect("structured")["results"]
        .as_array()
        .cloned()
        .expect("results");
    assert_eq!(results.len(), 3);
    assert!(
        results[0]["snippet"]
            .as_str()
            .unwrap_or_default()
            .contains("**"),
        "{:?}",
        results[0]
    );
    let id = results[0]["id"].as_str().expect("id").to_owned();
    let doc = call("docs_get", json!({"id": id})).await;
    assert_eq!(
        doc.structured_content.expect("structured")["document"]["id"],
        json!(id)
    );

    let filtered = call(
        "docs_filter",
        json!({"category": "security", "min_year": 2020, "limit": 5}),
    )
    .await;
    let out = filtered.structured_content.expect("structured");
    assert!(
        out["total"].as_u64().unwrap_or(0) > 0
            && out["results"].as_array().is_some_and(|r| r.len() == 5),
        "{out}"
    );
    // Injection attempts are values, never SQL: no rows, and the table is still there.
    let injected = call("docs_filter", json!({"category": "security' OR 1=1 --"})).await;
    assert_eq!(
        injected.structured_content.expect("structured")["total"],
        json!(0)
    );
    let stats = call("docs_stats", json!({"group_by": "category"})).await;
    assert_eq!(
        stats.structured_content.expect("structured")["total"],
        json!(3000)
    );
    // A client cannot switch a tool's action, nor pass undeclared arguments.
    let switched = call("docs_search", json!({"query": "x", "action": "stats"})).await;
    assert_eq!(switched.is_error, Some(true));
    let extra = call(
        "docs_search",
        json!({"query": "x", "embedding": {"ollama_url": "http://evil"}}),
    )
    .await;
    assert_eq!(extra.is_error, Some(true));
    client.cancel().await.expect("close");
}
