//! Third-party servers: server-everything over stdio and HTTP, mcp-server-git, and a
//! 2026-07-28 server on the official Python SDK.

use std::process::Command;
use std::sync::Arc;

use loom_mcp::{Progress, ProgressCallback, Registry, ServerSpec};
use serde_json::{Map, Value, json};

use crate::common::*;

fn args(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("object")
}

/// server-everything over streamable HTTP on a free port, and the spec `hosted` of it
/// (with a test header).
async fn hosted_everything() -> (Background, ServerSpec) {
    let port = free_port();
    let server = Background::everything_http(port);
    wait_for_port(port).await;
    let spec = ServerSpec::http(
        "hosted",
        format!("http://127.0.0.1:{port}/mcp"),
        [("X-Loom-Test", "1")],
        None,
    )
    .expect("spec");
    (server, spec)
}

#[tokio::test]
async fn everything_over_stdio_lists_and_calls_tools_in_the_legacy_era() {
    let registry =
        Registry::with_options([everything_spec("everything")], quick_options()).expect("registry");
    let tools = within("tools", registry.tools()).await;
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert!(
        names.contains(&"echo") && names.contains(&"get-sum"),
        "{names:?}"
    );
    assert!(tools.iter().all(|t| t.server == "everything"));
    let out = within(
        "echo",
        registry.call("echo", args(json!({"message": "hi loom"}))),
    )
    .await
    .expect("echo");
    assert!(out.text.contains("hi loom"), "{}", out.text);
    let client = registry.client("everything").expect("client");
    assert_eq!(
        client.protocol_version().await.as_deref(),
        Some("2025-11-25")
    );
    within("close", registry.close()).await;
}

#[tokio::test]
async fn everything_over_streamable_http() {
    let (_server, spec) = hosted_everything().await;
    let registry = Registry::with_options([spec], quick_options()).expect("registry");
    let tools = within("tools", registry.tools()).await;
    assert!(
        tools.iter().any(|t| t.name == "echo"),
        "{:?}",
        registry.unavailable()
    );
    let out = within(
        "sum",
        registry.call("hosted.get-sum", args(json!({"a": 2, "b": 3}))),
    )
    .await
    .expect("get-sum");
    assert!(out.text.contains('5'), "{}", out.text);
    within("close", registry.close()).await;
}

#[tokio::test]
async fn two_instances_of_one_server_run_as_two_processes_and_are_fully_qualified() {
    let registry = Registry::with_options(
        [everything_spec("a"), everything_spec("b")],
        quick_options(),
    )
    .expect("registry");
    let tools = within("tools", registry.tools()).await;
    assert!(!tools.is_empty());
    for tool in &tools {
        assert_eq!(
            tool.name,
            format!("{}.{}", tool.server, tool.tool),
            "no bare names left"
        );
    }
    let a = within(
        "a.echo",
        registry.call("a.echo", args(json!({"message": "from a"}))),
    )
    .await
    .expect("a");
    let b = within(
        "b__echo",
        registry.call("b__echo", args(json!({"message": "from b"}))),
    )
    .await
    .expect("b");
    assert!(a.text.contains("from a") && b.text.contains("from b"));
    let pid_a = registry.client("a").expect("a").pid().await.expect("pid");
    let pid_b = registry.client("b").expect("b").pid().await.expect("pid");
    assert_ne!(pid_a, pid_b);
    within("close", registry.close()).await;
    assert!(wait_gone(pid_a).await && wait_gone(pid_b).await);
}

#[tokio::test]
async fn mcp_server_git_reports_a_repository_status() {
    let repo = tempfile::tempdir().expect("tempdir");
    let status = Command::new("git")
        .args(["init", "-q"])
        .current_dir(repo.path())
        .status()
        .expect("git init");
    assert!(status.success());
    std::fs::write(repo.path().join("new.txt"), "x").expect("write");
    let spec = ServerSpec::stdio(
        "git",
        mcp_server_git(),
        ["--repository".to_owned(), repo.path().display().to_string()],
        no_env(),
        None,
    )
    .expect("spec");
    let registry = Registry::with_options([spec], quick_options()).expect("registry");
    let tools = within("tools", registry.tools()).await;
    assert!(
        tools.iter().any(|t| t.name == "git_status"),
        "{:?}",
        registry.unavailable()
    );
    let out = within(
        "git_status",
        registry.call(
            "git.git_status",
            args(json!({"repo_path": repo.path().display().to_string()})),
        ),
    )
    .await
    .expect("git_status");
    assert!(out.text.contains("new.txt"), "{}", out.text);
    within("close", registry.close()).await;
}

#[tokio::test]
async fn a_modern_python_server_negotiates_2026_07_28() {
    let spec = ServerSpec::stdio(
        "modern",
        python(),
        [fixture("modern_server.py"), "stdio".into()],
        no_env(),
        None,
    )
    .expect("spec");
    let registry = Registry::with_options([spec], quick_options()).expect("registry");
    let tools = within("tools", registry.tools()).await;
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["status", "add"], "{:?}", registry.unavailable());
    let client = registry.client("modern").expect("client");
    assert_eq!(
        client.protocol_version().await.as_deref(),
        Some("2026-07-28")
    );
    let out = within("add", registry.call("add", args(json!({"a": 2, "b": 40}))))
        .await
        .expect("add");
    assert!(out.text.contains("42"), "{}", out.text);
    within("close", registry.close()).await;
}

/// `call_result_with_progress` relays server-everything's progress reports, in order and
/// all before the result, over stdio and HTTP; the tool list keeps each tool's own
/// definition (title, output schema, annotations).
#[tokio::test]
async fn progress_reports_arrive_in_order_before_the_result_and_definitions_are_kept() {
    let (_server, hosted) = hosted_everything().await;
    let registry = Registry::with_options([everything_spec("local"), hosted], quick_options())
        .expect("registry");
    let tools = within("tools", registry.tools()).await;
    assert!(
        registry.unavailable().is_empty(),
        "{:?}",
        registry.unavailable()
    );
    let structured = tools
        .iter()
        .find(|t| t.name == "local.get-structured-content")
        .expect("listed");
    let definition = &structured.definition;
    assert_eq!(definition.name, "get-structured-content");
    assert_eq!(
        definition.title.as_deref(),
        Some("Get Structured Content Tool")
    );
    assert!(definition.output_schema.is_some());
    let annotations = definition.annotations.as_ref().expect("annotations");
    assert_eq!(annotations.idempotent_hint, Some(true));
    assert!(!structured.destructive);

    for server in ["local", "hosted"] {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink: ProgressCallback = {
            let seen = seen.clone();
            Arc::new(move |p: Progress| seen.lock().expect("lock").push(p))
        };
        let result = within(
            "long-running operation",
            registry.call_result_with_progress(
                &format!("{server}.trigger-long-running-operation"),
                args(json!({"duration": 0.6, "steps": 3})),
                sink,
            ),
        )
        .await
        .expect("call");
        assert_ne!(result.is_error, Some(true), "{server}: {result:?}");
        // Delivered as the transport read them: all of them before the result.
        let seen: Vec<(f64, Option<f64>)> = seen
            .lock()
            .expect("lock")
            .iter()
            .map(|p| (p.progress, p.total))
            .collect();
        assert_eq!(
            seen,
            [(1.0, Some(3.0)), (2.0, Some(3.0)), (3.0, Some(3.0))],
            "{server}"
        );
        // Without a sink the server gets a token too (rmcp's), but nobody hears it.
        let plain = within(
            "plain call",
            registry.call_result(
                &format!("{server}.trigger-long-running-operation"),
                args(json!({"duration": 0.2, "steps": 2})),
            ),
        )
        .await
        .expect("call");
        assert_ne!(plain.is_error, Some(true), "{server}");
    }
    within("close", registry.close()).await;
}
