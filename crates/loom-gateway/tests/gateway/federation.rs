//! Upstream MCP servers re-exported by the gateway (`tools.mcp_servers`), seen by real
//! rmcp clients of both protocol eras: server-everything, mcp-server-git and Python
//! fixture servers beside the docman mesh; allow/deny; one upstream session for every
//! call; list-changed relayed; cancellation relayed; an upstream killed and restarted
//! while clients stay connected.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use loom_bus::{Bus, MemoryBus};
use loom_core::config::load_gateway;
use loom_gateway::upstream::UpstreamOptions;
use loom_gateway::{Gateway, GatewayOptions, HttpOptions};
use loom_testkit::mcp_servers::{
    Background, everything_js, free_port, mcp_fixture, mcp_server_git, python, wait_for_port,
};
use rmcp::ClientHandler;
use rmcp::model::{
    ClientConfig, ClientRequest, GetPromptRequestParams, ProgressNotificationParam,
    ReadResourceRequestParams, ResourceContents, ServerNotification, ServerResult,
    SubscriptionFilter,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RoleClient, RunningService};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::common::{all_text, call_params, copy_dir, serve_http, within_for};

const WAIT: Duration = Duration::from_secs(60);

async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    within_for(WAIT, what, fut).await
}

/// Counts tool-list changes a legacy client is told about; records progress reports.
#[derive(Clone, Default)]
struct Recorder {
    tools_changed: Arc<AtomicUsize>,
    progress: Arc<std::sync::Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Recorder {
    async fn on_tool_list_changed(&self, _: NotificationContext<RoleClient>) {
        self.tools_changed.fetch_add(1, Ordering::SeqCst);
    }

    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().expect("lock").push(params);
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::default()
    }
}

struct Served {
    url: String,
    dir: tempfile::TempDir,
    shutdown: CancellationToken,
}

impl Drop for Served {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A git repository with one commit, for mcp-server-git.
fn git_repo(dir: &Path) -> PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).expect("mkdir");
    std::fs::write(repo.join("README.md"), "hello\n").expect("write");
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "README.md"],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "commit",
            "-qm",
            "first",
        ],
    ] {
        let status = std::process::Command::new("git")
            .args(args)
            .current_dir(&repo)
            .status()
            .expect("git");
        assert!(status.success(), "git {args:?}");
    }
    repo
}

/// The docman example with `upstreams` (YAML lines under `tools.mcp_servers`, indented
/// four spaces) served over HTTP by an embedded gateway.
async fn serve(upstreams: impl FnOnce(&Path) -> String, check: Duration) -> Served {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/docman");
    copy_dir(&src, dir.path());
    let yaml = std::fs::read_to_string(dir.path().join("mcp.yaml")).expect("read");
    let section = format!("tools:\n  mcp_servers:\n{}", upstreams(dir.path()));
    std::fs::write(
        dir.path().join("mcp.yaml"),
        yaml.replacen("tools:\n", &section, 1),
    )
    .expect("write");
    let config = dir.path().join("mcp.yaml");
    serve_file(dir, &config, check).await
}

/// The gateway config at `config` (inside `dir`) served over HTTP by an embedded gateway.
async fn serve_file(dir: tempfile::TempDir, config: &Path, check: Duration) -> Served {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = load_gateway(config).expect("valid config");
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let shutdown = CancellationToken::new();
    let options = GatewayOptions::default()
        .embedded(true)
        .with_upstream_options(UpstreamOptions {
            check_interval: check,
            ..UpstreamOptions::default()
        });
    let gateway = within(
        "gateway start",
        Gateway::start(config, bus, options, shutdown.clone()),
    )
    .await
    .expect("gateway starts");
    let http = HttpOptions::new("127.0.0.1:0".parse().expect("addr"));
    let addr = serve_http(gateway, http, &shutdown).await;
    Served {
        url: format!("http://{addr}/mcp"),
        dir,
        shutdown,
    }
}

async fn legacy_client(url: &str, recorder: Recorder) -> RunningService<RoleClient, Recorder> {
    crate::common::legacy_client(WAIT, url, recorder).await
}

async fn modern_client(url: &str) -> RunningService<RoleClient, Recorder> {
    modern_client_with(url, Recorder::default()).await
}

async fn modern_client_with(url: &str, recorder: Recorder) -> RunningService<RoleClient, Recorder> {
    crate::common::modern_client(WAIT, url, recorder).await
}

async fn tool_names(client: &RunningService<RoleClient, Recorder>) -> Vec<String> {
    within("tools/list", client.list_all_tools())
        .await
        .expect("tools")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect()
}

/// Messages the fixture server logged with `method`.
fn logged(log: &Path, method: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|m| m["method"] == method)
        .count()
}

fn fixture_entry(log: &Path) -> String {
    format!(
        "    fixture:\n      command: {}\n      args: [{}, --log, {}]\n      deny: [crash, env]\n",
        python(),
        mcp_fixture("fixture_server.py"),
        log.display()
    )
}

#[tokio::test]
async fn upstream_tools_resources_and_prompts_sit_beside_the_mesh_in_both_eras() {
    let served = serve(
        |dir| {
            let repo = git_repo(dir);
            format!(
                "    everything:\n      command: node\n      args: [{}, stdio]\n      deny: [get-env]\n\
                 \x20   git:\n      command: {}\n      args: [--repository, {}]\n      allow: ['git_status', 'git_log']\n{}",
                everything_js(),
                mcp_server_git(),
                repo.display(),
                fixture_entry(&dir.join("fixture.log")),
            )
        },
        Duration::from_secs(30),
    )
    .await;
    let log = served.dir.path().join("fixture.log");
    let repo = served.dir.path().join("repo");
    for (era, client) in [
        (
            "2025-11-25",
            legacy_client(&served.url, Recorder::default()).await,
        ),
        ("2026-07-28", modern_client(&served.url).await),
    ] {
        let names = tool_names(&client).await;
        // The mesh's tools first, unchanged; upstream names never shadow them.
        assert_eq!(
            names[..8],
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
        for want in [
            "everything.echo",
            "fixture.echo",
            "get-sum",
            "git_status",
            "git_log",
            "slow",
        ] {
            assert!(
                names.iter().any(|n| n == want),
                "{era}: {want} in {names:?}"
            );
        }
        for denied in ["get-env", "everything.get-env", "crash", "env", "git_diff"] {
            assert!(!names.iter().any(|n| n == denied), "{era}: {denied} listed");
        }
        assert_eq!(names.iter().filter(|n| *n == "echo").count(), 1, "{era}");

        let echoed = within(
            "everything.echo",
            client.call_tool(call_params(
                "everything.echo",
                json!({"message": "hi loom"}),
            )),
        )
        .await
        .expect("call");
        assert_ne!(echoed.is_error, Some(true), "{era}");
        assert!(all_text(&echoed).contains("hi loom"), "{era}: {echoed:?}");
        let mesh_echo = within(
            "mesh echo",
            client.call_tool(call_params("echo", json!({"text": "mesh"}))),
        )
        .await
        .expect("call");
        assert_eq!(
            mesh_echo.structured_content,
            Some(json!({"text": "mesh"})),
            "{era}: the bare name is the mesh's worker"
        );
        let status = within(
            "git_status",
            client.call_tool(call_params(
                "git_status",
                json!({"repo_path": repo.display().to_string()}),
            )),
        )
        .await
        .expect("call");
        assert!(all_text(&status).contains("main"), "{era}: {status:?}");
        let failed = within("fail", client.call_tool(call_params("fail", json!({}))))
            .await
            .expect("call");
        assert_eq!(
            failed.is_error,
            Some(true),
            "{era}: the upstream's isError kept"
        );
        let denied = within("crash", client.call_tool(call_params("crash", json!({})))).await;
        let denied = denied.expect_err("a denied tool is unknown");
        assert!(
            denied.to_string().contains("unknown tool 'crash'"),
            "{era}: {denied}"
        );

        let resources = within("resources/list", client.list_all_resources())
            .await
            .expect("resources");
        let uris: Vec<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
        assert!(uris.contains(&"fixture://readme"), "{era}: {uris:?}");
        assert!(
            uris.iter().any(|u| u.starts_with("workspace:///")),
            "{era}: {uris:?}"
        );
        let read = within(
            "resources/read",
            client.read_resource(ReadResourceRequestParams::new("fixture://readme")),
        )
        .await
        .expect("read");
        assert!(
            matches!(&read.contents[0], ResourceContents::TextResourceContents { text, .. } if !text.is_empty()),
            "{era}: {read:?}"
        );
        let prompts = within("prompts/list", client.list_all_prompts())
            .await
            .expect("prompts");
        assert!(prompts.iter().any(|p| p.name == "greet"), "{era}");
        let greeting = within(
            "prompts/get",
            client.get_prompt(
                GetPromptRequestParams::new("greet")
                    .with_arguments(json!({"name": "loom"}).as_object().cloned().expect("obj")),
            ),
        )
        .await
        .expect("prompt");
        assert!(
            format!("{greeting:?}").contains("loom"),
            "{era}: {greeting:?}"
        );
        client.cancel().await.expect("close");
    }
    // Both clients, every call: one upstream session.
    assert_eq!(
        logged(&log, "initialize"),
        1,
        "the fixture was initialized once"
    );
}

/// An upstream's progress reports reach the calling client's own progress token, in
/// order, for both eras; upstream tool definitions keep their title, output schema and
/// annotations; upstream resource templates are listed and their expansions read.
#[tokio::test]
async fn upstream_progress_and_tool_definitions_pass_through_in_both_eras() {
    let served = serve(
        |_| {
            format!(
                "    everything:\n      command: node\n      args: [{}, stdio]\n",
                everything_js()
            )
        },
        Duration::from_secs(30),
    )
    .await;
    for era in ["2025-11-25", "2026-07-28"] {
        let recorder = Recorder::default();
        let client = match era {
            "2025-11-25" => legacy_client(&served.url, recorder.clone()).await,
            _ => modern_client_with(&served.url, recorder.clone()).await,
        };
        let tools = within("tools/list", client.list_all_tools())
            .await
            .expect("tools");
        let structured = tools
            .iter()
            .find(|t| t.name == "get-structured-content")
            .expect("get-structured-content listed");
        assert_eq!(
            structured.title.as_deref(),
            Some("Get Structured Content Tool"),
            "{era}"
        );
        let output = structured
            .output_schema
            .as_ref()
            .expect("outputSchema kept");
        for field in ["temperature", "conditions", "humidity"] {
            assert!(
                output["properties"].get(field).is_some(),
                "{era}: {field} in {output:?}"
            );
        }
        let annotations = structured.annotations.as_ref().expect("annotations kept");
        assert_eq!(annotations.read_only_hint, Some(true), "{era}");
        assert_eq!(annotations.destructive_hint, Some(false), "{era}");
        assert_eq!(annotations.idempotent_hint, Some(true), "{era}");
        assert_eq!(annotations.open_world_hint, Some(false), "{era}");
        assert!(
            structured.input_schema.get("properties").is_some(),
            "{era}: {:?}",
            structured.input_schema
        );
        let weather = within(
            "get-structured-content",
            client.call_tool(call_params(
                "get-structured-content",
                json!({"location": "Chicago"}),
            )),
        )
        .await
        .expect("call");
        assert!(weather.structured_content.is_some(), "{era}: {weather:?}");

        // Upstream resource templates are re-exported as `server:template`; an expansion
        // reads from that upstream.
        let templates = within(
            "resources/templates/list",
            client.list_all_resource_templates(),
        )
        .await
        .expect("templates");
        let text = templates
            .iter()
            .find(|t| t.uri_template == "everything:demo://resource/dynamic/text/{resourceId}")
            .unwrap_or_else(|| panic!("{era}: text template in {templates:?}"));
        assert!(text.description.is_some(), "{era}: {text:?}");
        let read = within(
            "read an expansion",
            client.read_resource(ReadResourceRequestParams::new(
                "everything:demo://resource/dynamic/text/7",
            )),
        )
        .await
        .expect("read");
        let body = serde_json::to_string(&read.contents).expect("json");
        assert!(
            body.contains("demo://resource/dynamic/text/7"),
            "{era}: {body}"
        );

        // rmcp gives every request a progress token; the gateway relays the upstream's
        // reports to it.
        let handle = within(
            "long-running call",
            client.peer().send_request_with_option(
                ClientRequest::CallToolRequest(rmcp::model::CallToolRequest::new(call_params(
                    "trigger-long-running-operation",
                    json!({"duration": 0.6, "steps": 3}),
                ))),
                PeerRequestOptions::no_options(),
            ),
        )
        .await
        .expect("sent");
        let token = handle.progress_token.clone();
        let result = within("long-running result", handle.await_response())
            .await
            .expect("result");
        let ServerResult::CallToolResult(result) = result else {
            panic!("{era}: not a tool result: {result:?}");
        };
        assert!(all_text(&result).contains("Steps: 3"), "{era}: {result:?}");
        // Notifications are handled in tasks of their own on the client side; wait for
        // the last one.
        within("three progress reports", async {
            while recorder.progress.lock().expect("lock").len() < 3 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        let reports = recorder.progress.lock().expect("lock").clone();
        let seen: Vec<(f64, Option<f64>)> = reports.iter().map(|p| (p.progress, p.total)).collect();
        assert_eq!(
            seen,
            [(1.0, Some(3.0)), (2.0, Some(3.0)), (3.0, Some(3.0))],
            "{era}"
        );
        assert!(
            reports.iter().all(|p| p.progress_token == token),
            "{era}: {reports:?} for {token:?}"
        );
        client.cancel().await.expect("close");
    }
}

#[tokio::test]
async fn upstream_list_changes_and_cancellations_are_relayed() {
    let served = serve(
        |dir| fixture_entry(&dir.join("fixture.log")),
        Duration::from_secs(30),
    )
    .await;
    let log = served.dir.path().join("fixture.log");
    let recorder = Recorder::default();
    let legacy = legacy_client(&served.url, recorder.clone()).await;
    let modern = modern_client(&served.url).await;
    let mut sub = within(
        "listen",
        modern.listen(SubscriptionFilter::builder().tools_list_changed().build()),
    )
    .await
    .expect("listen");
    within(
        "add_tool",
        legacy.call_tool(call_params("add_tool", json!({"name": "fresh"}))),
    )
    .await
    .expect("call");
    let note = within("modern list_changed", sub.next())
        .await
        .expect("subscription")
        .expect("a notification");
    assert!(
        matches!(note, ServerNotification::ToolListChangedNotification(_)),
        "{note:?}"
    );
    within("legacy list_changed", async {
        while recorder.tools_changed.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(tool_names(&modern).await.iter().any(|n| n == "fresh"));

    // A cancelled call is cancelled upstream too.
    let handle = within(
        "slow call",
        legacy.peer().send_cancellable_request(
            ClientRequest::CallToolRequest(rmcp::model::CallToolRequest::new(call_params(
                "slow",
                json!({"seconds": 30}),
            ))),
            PeerRequestOptions::no_options(),
        ),
    )
    .await
    .expect("sent");
    within("the slow call upstream", async {
        while logged(&log, "tools/call") < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    handle.cancel(None).await.expect("cancel");
    within("notifications/cancelled upstream", async {
        while logged(&log, "notifications/cancelled") == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    legacy.cancel().await.expect("close");
    modern.cancel().await.expect("close");
}

#[tokio::test]
async fn a_dead_modern_upstream_is_left_out_and_comes_back_with_list_changed() {
    dead_upstream_comes_back(Background::modern_http, "add").await;
}

/// server-everything keeps 2025-11-25 sessions: after its restart the gateway's old
/// session is unknown to it, so the gateway must open a new one.
#[tokio::test]
async fn a_dead_session_upstream_is_left_out_and_comes_back_with_list_changed() {
    dead_upstream_comes_back(Background::everything_http, "get-sum").await;
}

/// An upstream started by `start` on a port, killed and restarted while a client of each
/// era stays connected; `tool` adds `a` and `b`.
async fn dead_upstream_comes_back(start: fn(u16) -> Background, tool: &str) {
    let port = free_port();
    let dead_port = free_port();
    let mut upstream = start(port);
    assert!(wait_for_port(port, WAIT).await, "the upstream listens");
    let served = serve(
        |_| {
            format!(
                "    upstream: {{url: 'http://127.0.0.1:{port}/mcp'}}\n    never: {{url: 'http://127.0.0.1:{dead_port}/mcp'}}\n"
            )
        },
        Duration::from_millis(300),
    )
    .await;
    let recorder = Recorder::default();
    let legacy = legacy_client(&served.url, recorder.clone()).await;
    let modern = modern_client(&served.url).await;
    let mut sub = within(
        "listen",
        modern.listen(SubscriptionFilter::builder().tools_list_changed().build()),
    )
    .await
    .expect("listen");
    // Fail-open at start: `never` is down, `upstream` serves.
    let names = tool_names(&legacy).await;
    assert!(names.iter().any(|n| n == tool), "{names:?}");
    let sum = within(
        "add",
        legacy.call_tool(call_params(tool, json!({"a": 2, "b": 3}))),
    )
    .await
    .expect("call");
    assert!(all_text(&sum).contains('5'), "{sum:?}");

    upstream.kill();
    within("tools removed", async {
        while tool_names(&legacy).await.iter().any(|n| n == tool) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let note = within("modern list_changed (removed)", sub.next())
        .await
        .expect("subscription")
        .expect("notification");
    assert!(matches!(
        note,
        ServerNotification::ToolListChangedNotification(_)
    ));
    let seen = recorder.tools_changed.load(Ordering::SeqCst);
    assert!(seen >= 1, "the legacy client heard of the removal");
    // The mesh still serves while the upstream is down.
    let mesh = within(
        "mesh echo",
        legacy.call_tool(call_params("echo", json!({"x": 1}))),
    )
    .await
    .expect("call");
    assert_eq!(mesh.is_error, Some(false));

    let _upstream = start(port);
    assert!(wait_for_port(port, WAIT).await, "the upstream is back");
    within("tools back", async {
        while !tool_names(&modern).await.iter().any(|n| n == tool) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let note = within("modern list_changed (back)", sub.next())
        .await
        .expect("subscription")
        .expect("notification");
    assert!(matches!(
        note,
        ServerNotification::ToolListChangedNotification(_)
    ));
    within("legacy list_changed (back)", async {
        while recorder.tools_changed.load(Ordering::SeqCst) <= seen {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let sum = within(
        "add again",
        modern.call_tool(call_params(tool, json!({"a": 4, "b": 5}))),
    )
    .await
    .expect("call");
    assert!(all_text(&sum).contains('9'), "{sum:?}");
    legacy.cancel().await.expect("close");
    modern.cancel().await.expect("close");
}

#[tokio::test]
async fn the_federation_example_runs_a_pipeline_whose_stage_is_an_upstream_tool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    copy_dir(&examples.join("docman"), &dir.path().join("docman"));
    copy_dir(&examples.join("federation"), &dir.path().join("federation"));
    let repo = git_repo(dir.path());
    // The example starts its servers with npx and uvx; here, the installed copies.
    let config = dir.path().join("federation/mcp.yaml");
    let yaml = std::fs::read_to_string(&config).expect("read");
    let everything = format!("command: node\n      args: [{}, stdio]", everything_js());
    let git = format!(
        "command: {}\n      args: [--repository, {}]",
        mcp_server_git(),
        repo.display()
    );
    let replaced = yaml
        .replace(
            "command: npx\n      args: [\"-y\", \"@modelcontextprotocol/server-everything@2026.8.31\", \"stdio\"]",
            &everything,
        )
        .replace(
            "command: uvx\n      args: [\"mcp-server-git\", \"--repository\", \"../..\"]",
            &git,
        );
    assert!(
        !replaced.contains("npx") && !replaced.contains("uvx"),
        "the example's server commands changed; update this test"
    );
    std::fs::write(&config, replaced).expect("write");
    let served = serve_file(dir, &config, Duration::from_secs(30)).await;
    let client = modern_client(&served.url).await;
    let names = tool_names(&client).await;
    for want in [
        "repo_report",
        "ingest_document",
        "everything.echo",
        "echo",
        "git_status",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in {names:?}");
    }
    assert!(
        !names.iter().any(|n| n == "git_commit"),
        "not allowed: {names:?}"
    );
    let report = within(
        "repo_report",
        client.call_tool(call_params(
            "repo_report",
            json!({"repo_path": repo.display().to_string()}),
        )),
    )
    .await
    .expect("call");
    assert_eq!(report.is_error, Some(false), "{}", all_text(&report));
    let out = report.structured_content.expect("structured");
    assert!(
        out["status"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("main")),
        "{out}"
    );
    assert!(
        out["stats"]["word_count"].as_u64().is_some_and(|n| n > 0),
        "{out}"
    );
    client.cancel().await.expect("close");
}
