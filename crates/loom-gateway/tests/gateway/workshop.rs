//! Workshop and session tools as MCP clients see them: a real rmcp client over
//! streamable HTTP, real files, SQLite, git repositories and a real nats-server.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use loom_bus::{Bus, MemoryBus, NatsBus, NatsOptions};
use loom_core::config::load_gateway;
use loom_core::subject::{TASKS_DEAD_LETTER, TASKS_INCOMING};
use loom_gateway::{Gateway, GatewayOptions, HttpOptions};
use loom_testkit::NatsServer;
use rmcp::model::CallToolResult;
use rmcp::service::{RoleClient, RunningService};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::common::{call_params, first_text, legacy_client, serve_http, within_for};

const WAIT: Duration = Duration::from_secs(30);

async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    within_for(WAIT, what, fut).await
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

const ECHO: &str = "name: echo\nworker_kind: processor\nprocessing_backend: echo\n";

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

/// A project with an echo worker, a pipeline and a framework git repository (with a
/// bare remote), served over HTTP by a gateway with every workshop and session tool.
async fn serve(bus: Arc<dyn Bus>) -> Served {
    serve_with(bus, GatewayOptions::default()).await
}

async fn serve_with(bus: Arc<dyn Bus>, options: GatewayOptions) -> Served {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    write(d, "project/configs/workers/echo.yaml", ECHO);
    write(
        d,
        "project/configs/pipelines/p.yaml",
        "name: p\npipeline_stages:\n- {name: a, worker_type: echo, input_mapping: {x: goal.context.x}}\n\
         - {name: b, worker_type: other, input_mapping: {x: a.output.x}}\n",
    );
    write(
        d,
        "project/mcp.yaml",
        "name: ws\ntools:\n  workshop:\n    configs_dir: configs\n    enable: [worker, test, eval, impact, deadletter]\n\
         \x20 session:\n    framework_dir: ../framework\n",
    );
    git(d, &["init", "-q", "--bare", "-b", "main", "remote.git"]);
    git(d, &["clone", "-q", "remote.git", "framework"]);
    let f = d.join("framework");
    git(&f, &["config", "user.email", "t@example.invalid"]);
    git(&f, &["config", "user.name", "Test"]);
    git(&f, &["checkout", "-q", "-B", "main"]);
    write(&f, "README.md", "x\n");
    git(&f, &["add", "-A"]);
    git(&f, &["commit", "-q", "-m", "initial"]);
    git(&f, &["push", "-q", "-u", "origin", "main"]);

    let config = load_gateway(&d.join("project/mcp.yaml")).expect("valid config");
    let shutdown = CancellationToken::new();
    let gateway = within(
        "gateway start",
        Gateway::start(
            config,
            bus,
            options.with_loom_home(d.join("home")),
            shutdown.clone(),
        ),
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

async fn client(url: &str) -> RunningService<RoleClient, ()> {
    legacy_client(WAIT, url, ()).await
}

async fn call(client: &RunningService<RoleClient, ()>, tool: &str, args: Value) -> CallToolResult {
    within(tool, client.call_tool(call_params(tool, args)))
        .await
        .expect("a tool result")
}

/// The result's JSON text, asserting whether it is an error.
fn body(result: &CallToolResult, is_error: bool) -> Map<String, Value> {
    let text = first_text(result);
    assert_eq!(result.is_error, Some(is_error), "{text}");
    serde_json::from_str(&text).expect("JSON text")
}

fn error_of(result: &CallToolResult) -> String {
    body(result, true)["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn workshop_and_session_tools_are_listed_with_the_spec_names_and_hints() {
    let served = serve(Arc::new(MemoryBus::new())).await;
    let client = client(&served.url).await;
    let tools = within("tools/list", client.list_all_tools())
        .await
        .expect("tools");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(
        names,
        [
            "workshop.worker.list",
            "workshop.worker.get",
            "workshop.worker.update",
            "workshop.worker.test",
            "workshop.eval.run",
            "workshop.eval.compare",
            "workshop.impact.analyze",
            "workshop.deadletter.list",
            "workshop.deadletter.replay",
            "session.start",
            "session.end",
            "session.status",
            "session.sync_check",
            "session.sync",
        ]
    );
    let tool = |n: &str| tools.iter().find(|t| t.name == n).expect("tool");
    let hints = |n: &str| tool(n).annotations.clone().expect("annotations");
    assert_eq!(hints("workshop.worker.list").read_only_hint, Some(true));
    assert_eq!(hints("workshop.worker.update").destructive_hint, Some(true));
    assert_eq!(
        hints("workshop.deadletter.replay").destructive_hint,
        Some(true)
    );
    assert_eq!(hints("session.end").destructive_hint, Some(true));
    let eval = hints("workshop.eval.run");
    assert_eq!(
        (eval.idempotent_hint, eval.open_world_hint),
        (Some(false), Some(false))
    );
    assert_eq!(hints("session.status").read_only_hint, Some(true));
    assert_eq!(hints("session.sync_check").read_only_hint, Some(false));
    let update = serde_json::to_value(&tool("workshop.worker.update").input_schema).expect("json");
    assert_eq!(update["required"], json!(["name", "config_yaml"]));
    let list = serde_json::to_value(&tool("workshop.worker.list").input_schema).expect("json");
    assert_eq!(list, json!({"type": "object", "properties": {}}));
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn workshop_tools_manage_test_and_evaluate_workers() {
    let served = serve(Arc::new(MemoryBus::new())).await;
    let client = client(&served.url).await;
    let configs = served.dir.path().join("project/configs/workers");

    let listed = body(
        &call(&client, "workshop.worker.list", json!({})).await,
        false,
    );
    assert_eq!(listed["count"], 1);
    assert_eq!(listed["workers"][0]["name"], "echo");

    let v2 = format!("{ECHO}description: Echoes.\n");
    let saved = body(
        &call(
            &client,
            "workshop.worker.update",
            json!({"name": "echo", "config_yaml": v2, "description": "describe"}),
        )
        .await,
        false,
    );
    assert_eq!(saved["success"], true);
    let got = body(
        &call(&client, "workshop.worker.get", json!({"name": "echo"})).await,
        false,
    );
    assert_eq!(got["yaml"], json!(v2));
    assert_eq!(got["config"]["description"], "Echoes.");
    assert_eq!(got["version_history"][0]["description"], "describe");

    // Bad input: clear errors, nothing written.
    let before = std::fs::read_to_string(configs.join("echo.yaml")).expect("read");
    let invalid = body(
        &call(
            &client,
            "workshop.worker.update",
            json!({"name": "echo", "config_yaml": "name: echo\nworker_kind: robot\n"}),
        )
        .await,
        false,
    );
    assert_eq!(invalid["success"], false);
    assert!(
        invalid["validation_errors"][0]
            .as_str()
            .unwrap_or_default()
            .contains("echo.yaml:2:14: worker_kind")
    );
    let e = error_of(
        &call(
            &client,
            "workshop.worker.update",
            json!({"name": "echo", "config_yaml": "a: [1"}),
        )
        .await,
    );
    assert!(e.starts_with("Invalid YAML"), "{e}");
    let e = error_of(
        &call(
            &client,
            "workshop.worker.update",
            json!({"name": "../../escape", "config_yaml": ECHO}),
        )
        .await,
    );
    assert!(e.starts_with("invalid worker name '../../escape'"), "{e}");
    let e = error_of(
        &call(
            &client,
            "workshop.worker.update",
            json!({"name": "echo", "config_yaml": ""}),
        )
        .await,
    );
    assert_eq!(e, "'name' and 'config_yaml' are required");
    let e = error_of(&call(&client, "workshop.worker.get", json!({})).await);
    assert!(e.contains("missing required field 'name'"), "{e}");
    let e = error_of(&call(&client, "workshop.worker.get", json!({"name": "ghost"})).await);
    assert_eq!(e, "Worker 'ghost' not found");
    assert_eq!(
        std::fs::read_to_string(configs.join("echo.yaml")).expect("read"),
        before
    );
    assert!(!served.dir.path().join("escape.yaml").exists());

    let tested = body(
        &call(
            &client,
            "workshop.worker.test",
            json!({"name": "echo", "payload": {"x": 1}}),
        )
        .await,
        false,
    );
    assert_eq!(tested["output"], json!({"x": 1}));
    assert_eq!(tested["success"], true);
    assert!(tested.contains_key("latency_ms") && tested.contains_key("token_usage"));

    let suite = json!([
        {"name": "same", "input": {"x": 1}, "expected_output": {"x": 1}},
        {"name": "diff", "input": {"x": 1}, "expected_output": {"y": 2}},
    ]);
    let run = body(
        &call(
            &client,
            "workshop.eval.run",
            json!({"name": "echo", "test_suite": suite}),
        )
        .await,
        false,
    );
    assert_eq!(run["cases"], 2);
    assert_eq!(run["avg_score"], 0.5);
    assert_eq!(run["scoring"], "field_match");
    let run_id = run["run_id"].as_str().expect("run id").to_owned();
    let e = error_of(
        &call(
            &client,
            "workshop.eval.run",
            json!({"name": "echo", "test_suite": suite, "scoring": "fuzzy"}),
        )
        .await,
    );
    assert!(e.starts_with("unknown scoring 'fuzzy'"), "{e}");
    let e = error_of(
        &call(
            &client,
            "workshop.eval.compare",
            json!({"name": "echo", "run_id": run_id}),
        )
        .await,
    );
    assert_eq!(e, "No baseline set for worker 'echo'");

    let impact = body(
        &call(&client, "workshop.impact.analyze", json!({"name": "echo"})).await,
        false,
    );
    assert_eq!(impact["risk"], "high");
    assert_eq!(impact["pipelines"][0]["downstream"], json!(["b"]));
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn dead_letters_on_nats_are_listed_and_replayed_through_mcp() {
    let server = NatsServer::start().expect("nats-server");
    let bus: Arc<dyn Bus> = Arc::new(
        NatsBus::connect(NatsOptions::new(&server.url()))
            .await
            .expect("connect"),
    );
    let served = serve(bus).await;
    let mesh: Arc<dyn Bus> = Arc::new(
        NatsBus::connect(NatsOptions::new(&server.url()))
            .await
            .expect("connect"),
    );
    let mut incoming = mesh
        .subscribe(TASKS_INCOMING, None)
        .await
        .expect("subscribe");
    mesh.flush().await.expect("flush");
    let envelope = json!({
        "reason": "rate_limited: tier 'local' has no available capacity",
        "original_task": {"task_id": "t-9", "worker_type": "echo", "payload": {"x": 1}, "model_tier": "local"},
        "task_id": "t-9",
        "worker_type": "echo",
    });
    mesh.publish(TASKS_DEAD_LETTER, envelope.to_string().into_bytes().into())
        .await
        .expect("publish");

    let client = client(&served.url).await;
    let listed = within("the dead letter", async {
        loop {
            let listed = body(
                &call(&client, "workshop.deadletter.list", json!({"limit": 10})).await,
                false,
            );
            if listed["total"] == 1 {
                return listed;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    })
    .await;
    let entry = &listed["entries"][0];
    assert_eq!(entry["task_id"], "t-9");
    assert!(
        entry["reason"]
            .as_str()
            .unwrap_or_default()
            .starts_with("rate_limited")
    );
    let id = entry["id"].as_str().expect("id").to_owned();

    let e = error_of(
        &call(
            &client,
            "workshop.deadletter.replay",
            json!({"entry_id": "../x"}),
        )
        .await,
    );
    assert!(e.starts_with("invalid entry_id"), "{e}");
    let replayed = body(
        &call(
            &client,
            "workshop.deadletter.replay",
            json!({"entry_id": id}),
        )
        .await,
        false,
    );
    assert_eq!(replayed["success"], true);
    let task: Value = within("the replayed task", incoming.next())
        .await
        .expect("a message")
        .json()
        .expect("json");
    assert_eq!(task["task_id"], replayed["task_id"]);
    assert_ne!(task["task_id"], "t-9");
    assert_eq!(task["payload"], json!({"x": 1}));
    let listed = body(
        &call(&client, "workshop.deadletter.list", json!({})).await,
        false,
    );
    assert_eq!(listed["total"], 0);
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn session_tools_start_check_and_end_over_mcp() {
    let served = serve(Arc::new(MemoryBus::new())).await;
    let client = client(&served.url).await;
    let started = body(
        &call(&client, "session.start", json!({"session_id": "mcp-1"})).await,
        false,
    );
    assert_eq!(started["status"], "active");
    assert!(served.dir.path().join("home/sessions/mcp-1.json").is_file());
    let e = error_of(&call(&client, "session.start", json!({"session_id": "../../x"})).await);
    assert!(e.starts_with("invalid session id"), "{e}");

    let status = body(&call(&client, "session.status", json!({})).await, false);
    assert_eq!(status["sessions"][0]["session_id"], "mcp-1");
    assert_eq!(status["framework"]["git_clean"], true);
    let check = body(&call(&client, "session.sync_check", json!({})).await, false);
    assert_eq!(check["status"], "current");
    let synced = body(&call(&client, "session.sync", json!({})).await, false);
    assert_eq!(synced["status"], "synced");

    write(&served.dir.path().join("framework"), "new.md", "n\n");
    let ended = body(
        &call(&client, "session.end", json!({"message": "wrap up"})).await,
        false,
    );
    assert_eq!(
        (
            ended["session_id"].as_str(),
            ended["committed"].as_bool(),
            ended["pushed"].as_bool()
        ),
        (Some("mcp-1"), Some(true), Some(true))
    );
    let e = error_of(&call(&client, "session.end", json!({"session_id": "mcp-1"})).await);
    assert_eq!(e, "session 'mcp-1' is not active");
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn the_session_nats_check_uses_the_gateway_nats_url_from_the_command_line() {
    // The config names no NATS URL anywhere: `loom mcp --nats-url` passes it in options.
    let server = NatsServer::start().expect("nats-server");
    let bus: Arc<dyn Bus> = Arc::new(
        NatsBus::connect(NatsOptions::new(&server.url()))
            .await
            .expect("connect"),
    );
    let served = serve_with(
        bus,
        GatewayOptions::default().with_nats_url(Some(server.url())),
    )
    .await;
    let on_nats = client(&served.url).await;
    let status = body(&call(&on_nats, "session.status", json!({})).await, false);
    assert_eq!(status["services"]["nats"]["ok"], true, "{status:?}");
    on_nats.cancel().await.expect("close");

    let served = serve(Arc::new(MemoryBus::new())).await;
    let client = client(&served.url).await;
    let status = body(&call(&client, "session.status", json!({})).await, false);
    assert_eq!(
        status["services"]["nats"],
        json!({"ok": null, "message": "not configured"})
    );
    client.cancel().await.expect("close");
}

#[test]
fn session_and_workshop_sections_read_the_hook_upstream_and_judge_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "mcp.yaml",
        "name: x\ntools:\n  workshop: {judge_tier: frontier}\n  session:\n    upstream: origin/dev\n\
         \x20   hook: [sh, -c, 'echo hi']\n    hook_timeout_seconds: 5\n    commit_paths: [data/]\n",
    );
    let config = load_gateway(&dir.path().join("mcp.yaml")).expect("valid");
    let session = config.session.expect("session");
    assert_eq!(session.upstream.as_deref(), Some("origin/dev"));
    assert_eq!(session.hook.as_deref().map(<[String]>::len), Some(3));
    assert_eq!(session.hook_timeout_seconds, Some(5.0));
    assert_eq!(session.commit_paths, Some(vec!["data/".to_owned()]));
    assert_eq!(
        config.workshop.and_then(|w| w.judge_tier),
        Some(loom_core::message::ModelTier::Frontier)
    );
    write(
        dir.path(),
        "bad.yaml",
        "name: x\ntools:\n  workshop: {judge_tier: fast}\n  session: {hook: [], hook_timeout_seconds: 0}\n",
    );
    let errors = load_gateway(&dir.path().join("bad.yaml"))
        .expect_err("invalid")
        .to_string();
    assert!(
        errors.contains("tools.workshop.judge_tier: unknown tier 'fast'"),
        "{errors}"
    );
    assert!(
        errors.contains("tools.session.hook: the hook needs a program"),
        "{errors}"
    );
    assert!(
        errors.contains("tools.session.hook_timeout_seconds"),
        "{errors}"
    );
}

#[test]
fn a_failed_session_start_repeats_its_steps_next_to_the_error() {
    use loom_gateway::local_tools::LocalToolError;
    use loom_gateway::server::{ToolFailure, to_tool_result};
    use loom_workshop::sessions::SessionError;

    let mut details = Map::new();
    details.insert("session_id".to_owned(), json!("s1"));
    details.insert("steps".to_owned(), json!([{"step": "nats", "ok": false}]));
    let failure = SessionError::Failed {
        message: "NATS is required but unreachable".to_owned(),
        details,
    };
    let result = to_tool_result(Err(ToolFailure::Local(LocalToolError::Session(failure))));
    let out = body(&result, true);
    assert_eq!(
        Value::Object(out),
        json!({"error": "NATS is required but unreachable", "session_id": "s1", "steps": [{"step": "nats", "ok": false}]})
    );
}
