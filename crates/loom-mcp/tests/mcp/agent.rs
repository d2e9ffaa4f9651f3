//! loom-llm's Agent on a real registry: provider-safe names, tool results fed back, and
//! the `mcp:<name>` interruption for a server unreachable for the whole run.

use std::sync::Arc;

use loom_llm::agent::Agent;
use loom_llm::testing::ScriptedModel;
use loom_llm::{ChatMessage, Completion, ToolCall};
use loom_mcp::{Registry, ServerSpec};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn an_agent_calls_registry_tools_and_reports_a_server_unreachable_all_run() {
    let ghost =
        ServerSpec::stdio("ghost", "/nonexistent/server", ["x"], no_env(), None).expect("spec");
    let registry = Registry::with_options(
        [ghost, fixture_spec("a", &[]), fixture_spec("b", &[])],
        quick_options(),
    )
    .expect("registry");
    let model = Arc::new(
        ScriptedModel::new("scripted")
            .then(Completion::tool_calls(
                "scripted",
                vec![
                    ToolCall::new("c1", "a__echo", json!({"said": "hi"})),
                    ToolCall::new("c2", "b__fail", json!({})),
                ],
            ))
            .then(Completion::text("scripted", "done")),
    );
    let result = within(
        "run",
        Agent::new("Use the tools.", model.clone())
            .tools(registry.clone())
            .run("go"),
    )
    .await
    .expect("run");
    assert_eq!(result.output, "done");
    assert_eq!(result.turns, 2);
    assert!(result.interrupted);
    assert_eq!(result.interruption_reason.as_deref(), Some("mcp:ghost"));
    let calls: Vec<(&str, &str, bool)> = result
        .tool_calls
        .iter()
        .map(|c| (c.name.as_str(), c.result.as_str(), c.is_error))
        .collect();
    assert_eq!(
        calls,
        [
            ("a.echo", "{\"said\": \"hi\"}", false),
            ("b.fail", "{\"error\":\"it failed\"}", true)
        ]
    );
    let offered = &model.requests()[0].tools;
    assert!(offered.iter().any(|t| t.name == "a__echo"));
    assert!(offered.iter().all(|t| !t.name.contains('.')));
    assert!(matches!(
        &model.requests()[1].messages[2],
        ChatMessage::Tool { content, .. } if content == "{\"said\": \"hi\"}"
    ));
    within("close", registry.close()).await;
}
