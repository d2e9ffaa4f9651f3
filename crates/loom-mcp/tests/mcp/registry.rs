//! Registry behaviour on fixture servers: names, routing, isolation, list-changed and
//! watch, resources and prompts, tool errors, prefix modes.

use std::time::Duration;

use loom_llm::{ToolError, ToolHost};
use loom_mcp::{McpError, PrefixMode, Registry, RegistryOptions, ServerSpec, ToolEventKind};
use serde_json::{Map, Value, json};

use crate::common::*;

fn args(v: Value) -> Map<String, Value> {
    v.as_object().cloned().expect("object")
}

fn pair() -> Registry {
    Registry::with_options(
        [
            fixture_spec("a", &["--tools", "only_a,common"]),
            fixture_spec("b", &["--tools", "only_b,common"]),
        ],
        quick_options(),
    )
    .expect("registry")
}

#[tokio::test]
async fn shared_names_are_qualified_unique_ones_bare_and_both_forms_route() {
    let registry = pair();
    let tools = within("tools", registry.tools()).await;
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
    assert!(
        names.contains(&"only_a") && names.contains(&"only_b"),
        "{names:?}"
    );
    assert!(names.contains(&"a.common") && names.contains(&"b.common"));
    assert!(!names.contains(&"common"));
    // Registry order first, then each server's order: deterministic.
    let first_b = names
        .iter()
        .position(|n| n.starts_with("b.") || *n == "only_b");
    let last_a = names
        .iter()
        .rposition(|n| n.starts_with("a.") || *n == "only_a");
    assert!(last_a < first_b, "{names:?}");
    assert!(matches!(
        within("bare shared", registry.call("common", Map::new())).await,
        Err(McpError::UnknownTool { .. })
    ));
    for name in ["only_b", "b.only_b", "b__only_b"] {
        let out = within(name, registry.call(name, args(json!({"k": name}))))
            .await
            .expect("routes");
        assert_eq!(out.text, format!("{{\"k\": \"{name}\"}}"));
    }
    assert!(
        within("a__common", registry.call("a__common", Map::new()))
            .await
            .is_ok()
    );
    let echo = tools.iter().find(|t| t.name == "a.echo").expect("a.echo");
    assert!(!echo.destructive, "readOnlyHint true");
    let crash = tools.iter().find(|t| t.name == "a.crash").expect("a.crash");
    assert!(crash.destructive, "readOnlyHint false");
    within("close", registry.close()).await;
}

#[tokio::test]
async fn prefix_mode_always_qualifies_every_name() {
    let registry = Registry::with_options(
        [fixture_spec("solo", &[])],
        RegistryOptions {
            prefix_mode: PrefixMode::Always,
            ..quick_options()
        },
    )
    .expect("registry");
    let tools = within("tools", registry.tools()).await;
    assert!(tools.iter().all(|t| t.name.starts_with("solo.")));
    assert!(
        within("bare", registry.call("echo", Map::new()))
            .await
            .is_ok()
    );
    within("close", registry.close()).await;
}

#[test]
fn duplicate_server_names_are_rejected() {
    let err = Registry::new([fixture_spec("x", &[]), fixture_spec("x", &[])]).expect_err("dup");
    assert_eq!(err.to_string(), "duplicate MCP server name: x");
}

#[tokio::test]
async fn an_unreachable_server_is_isolated_and_named_unavailable() {
    let ghost =
        ServerSpec::stdio("ghost", "/nonexistent/server", ["x"], no_env(), None).expect("spec");
    let registry = Registry::with_options([ghost, fixture_spec("fx", &[])], quick_options())
        .expect("registry");
    let specs = within("list", ToolHost::list_tools(&registry))
        .await
        .expect("tools");
    assert!(
        specs.iter().any(|t| t.name == "echo"),
        "fx's tools are there"
    );
    assert_eq!(registry.unavailable_servers(), ["ghost"]);
    assert!(registry.unavailable()[0].1.contains("/nonexistent/server"));
    assert!(
        within("call", registry.call_tool("echo", json!({})))
            .await
            .is_ok()
    );
    within("close", registry.close()).await;
}

#[tokio::test]
async fn tool_errors_and_unknown_tools_map_to_tool_errors() {
    let registry =
        Registry::with_options([fixture_spec("fx", &[])], quick_options()).expect("registry");
    assert_eq!(
        within("fail", registry.call_tool("fail", json!({}))).await,
        Err(ToolError::Failed {
            message: "it failed".into()
        })
    );
    assert_eq!(
        within("nope", registry.call_tool("nope", json!({}))).await,
        Err(ToolError::NotFound {
            name: "nope".into()
        })
    );
    within("close", registry.close()).await;
}

#[tokio::test]
async fn list_changed_refreshes_only_that_server_and_watch_reports_it() {
    let registry = pair();
    let mut watch = registry.watch();
    within("connect", registry.connect()).await;
    let mut initial = 0;
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_millis(200), watch.next()).await
    {
        assert_eq!(event.kind, ToolEventKind::Added);
        initial += 1;
    }
    assert_eq!(initial, within("tools", registry.tools()).await.len());
    within(
        "add",
        registry.call("b.add_tool", args(json!({"name": "brand_new"}))),
    )
    .await
    .expect("add_tool");
    let event = within("added event", async {
        loop {
            let event = watch.next().await.expect("open");
            if event.tool == "brand_new" {
                return event;
            }
        }
    })
    .await;
    assert_eq!(
        (event.kind, event.server.as_str()),
        (ToolEventKind::Added, "b")
    );
    let tools = within("tools", registry.tools()).await;
    assert!(tools.iter().any(|t| t.name == "brand_new"));
    assert!(
        within("call new", registry.call("brand_new", Map::new()))
            .await
            .is_ok()
    );
    within("close", registry.close()).await;
    assert!(within("watch ends", watch.next()).await.is_none());
}

#[tokio::test]
async fn resources_and_prompts_are_federated_and_qualified_when_shared() {
    let registry = pair();
    let resources = within("resources", registry.resources()).await;
    let uris: Vec<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "a:fixture://readme",
            "a:shared://x",
            "b:fixture://readme",
            "b:shared://x"
        ]
    );
    let text = within("read", registry.read_resource("b:fixture://readme", None))
        .await
        .expect("read");
    assert_eq!(text, json!("contents of fixture://readme"));
    assert!(matches!(
        within(
            "ambiguous",
            registry.read_resource("fixture://readme", None)
        )
        .await,
        Err(McpError::AmbiguousResource { .. })
    ));
    assert!(matches!(
        within("unknown", registry.read_resource("nope://x", None)).await,
        Err(McpError::UnknownResource { .. })
    ));
    let explicit = within("explicit", registry.read_resource("tmpl://1", Some("a")))
        .await
        .expect("explicit server");
    assert_eq!(explicit, json!("contents of tmpl://1"));

    let prompts = within("prompts", registry.prompts()).await;
    let names: Vec<&str> = prompts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["a.greet", "b.greet"]);
    let prompt = within(
        "get",
        registry.get_prompt("b.greet", args(json!({"name": "Ann"}))),
    )
    .await
    .expect("prompt");
    assert_eq!(
        prompt,
        json!({"description": "Greets", "messages": [{"role": "user", "content": "Hello, Ann"}]})
    );
    assert!(matches!(
        within("bare", registry.get_prompt("greet", Map::new())).await,
        Err(McpError::UnknownPrompt { .. })
    ));
    within("close", registry.close()).await;
}
