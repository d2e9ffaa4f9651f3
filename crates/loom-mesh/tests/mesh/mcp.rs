//! MCP tools in the mesh, against a real MCP server (loom-mcp's Python fixture): an LLM
//! worker's `mcp_servers` feed its tool-use loop (allow/deny applied), and pipeline
//! stages call `mcp_tool`s with input mappings, conditions, timeouts and progress.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use loom_bus::{Bus, MemoryBus};
use loom_core::config::{AnyConfig, load_any};
use loom_core::message::{ModelTier, OrchestratorGoal, TaskMessage, TaskStatus};
use loom_core::name::{PipelineName, WorkerName};
use loom_llm::backends::OpenAiSettings;
use loom_llm::{Model, TierBackends};
use loom_mesh::mesh::{MeshOptions, MeshPlan, start_mesh};
use loom_mesh::pipeline::{StageStatus, submit_goal};
use loom_mesh::task_client::submit_task;
use loom_testkit::mcp_servers::{mcp_fixture, python};
use loom_testkit::{LlmStandIn, Reply, TempWorkspace};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::common::within;

fn fixture_section(indent: &str) -> String {
    format!(
        "{indent}mcp_servers:\n{indent}  fixture:\n{indent}    command: {}\n{indent}    args: [{}]\n{indent}    deny: [crash, env]\n",
        python(),
        mcp_fixture("fixture_server.py")
    )
}

fn config(ws: &TempWorkspace, file: &str, yaml: &str) -> AnyConfig {
    let path = ws.write(file, yaml).expect("write");
    load_any(&path, None).unwrap_or_else(|e| panic!("invalid {file}: {e}"))
}

async fn mesh(
    bus: Arc<dyn Bus>,
    configs: Vec<AnyConfig>,
    backends: TierBackends,
) -> CancellationToken {
    let shutdown = CancellationToken::new();
    let plan = MeshPlan::from_configs(configs).expect("plan");
    let running = within(
        "mesh start",
        start_mesh(
            bus,
            plan,
            backends,
            MeshOptions::default(),
            shutdown.clone(),
        ),
    )
    .await
    .expect("mesh starts");
    let stop = shutdown.clone();
    tokio::spawn(async move {
        stop.cancelled().await;
        running.join().await;
    });
    shutdown
}

#[tokio::test]
async fn an_llm_worker_calls_the_tools_of_its_mcp_servers() {
    let llm = within("stand-in", LlmStandIn::start())
        .await
        .expect("stand-in");
    llm.push(Reply::tool_call("echo", json!({"word": "loom"})));
    llm.push(Reply::text("{\"answer\": \"done\"}"));
    let model: Arc<dyn Model> = Arc::new(
        OpenAiSettings::new(llm.base_url(), "gpt-test")
            .build()
            .expect("backend"),
    );
    let ws = TempWorkspace::new().expect("workspace");
    let worker = config(
        &ws,
        "researcher.yaml",
        &format!(
            "name: researcher\nsystem_prompt: Use the tools, answer as JSON.\ndefault_model_tier: local\n{}",
            fixture_section("")
        ),
    );
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let shutdown = mesh(
        bus.clone(),
        vec![worker],
        TierBackends::new().with(ModelTier::Local, model),
    )
    .await;
    let task = TaskMessage::new(
        &WorkerName::try_from("researcher").expect("name"),
        json!({"question": "?"})
            .as_object()
            .cloned()
            .expect("object"),
    )
    .with_model_tier(ModelTier::Local);
    let result = within("task", submit_task(&*bus, &task, Duration::from_secs(9)))
        .await
        .expect("answered");
    assert_eq!(result.status, TaskStatus::Completed, "{result:?}");
    assert_eq!(
        result.output,
        json!({"answer": "done"}).as_object().cloned()
    );
    let requests = llm.requests();
    let offered: Vec<&str> = requests[0].body["tools"]
        .as_array()
        .expect("tools offered")
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert!(offered.contains(&"echo"), "{offered:?}");
    assert!(
        !offered.contains(&"crash") && !offered.contains(&"env"),
        "{offered:?}"
    );
    let history = requests[1].body["messages"].as_array().expect("messages");
    let last = history.last().expect("tool result");
    assert_eq!(last["role"], "tool");
    assert_eq!(last["content"], "{\"word\": \"loom\"}");
    shutdown.cancel();
}

#[tokio::test]
async fn pipeline_stages_call_mcp_tools_with_mappings_conditions_timeouts_and_progress() {
    let ws = TempWorkspace::new().expect("workspace");
    let stats = config(
        &ws,
        "text_stats.yaml",
        "name: text_stats\nworker_kind: processor\nprocessing_backend: text_stats\n",
    );
    let pipeline = config(
        &ws,
        "fed.yaml",
        &format!(
            "name: fed\ntimeout_seconds: 20\n{}pipeline_stages:\n\
             \x20 - {{name: shout, mcp_tool: fixture.echo, input_mapping: {{word: goal.context.text, mode: \"'loud'\"}}}}\n\
             \x20 - {{name: stats, worker_type: text_stats, input_mapping: {{text: shout.output.word}}}}\n\
             \x20 - {{name: boom, mcp_tool: crash, condition: \"stats.output.word_count == 0\"}}\n",
            fixture_section("")
        ),
    );
    let slow = config(
        &ws,
        "slow.yaml",
        &format!(
            "name: slowfed\n{}pipeline_stages:\n\
             \x20 - {{name: wait, mcp_tool: slow, timeout_seconds: 0.5, input_mapping: {{seconds: 5}}}}\n",
            fixture_section("")
        ),
    );
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    let shutdown = mesh(
        bus.clone(),
        vec![stats, pipeline, slow],
        TierBackends::new(),
    )
    .await;

    let progress = Arc::new(Mutex::new(Vec::new()));
    let seen = progress.clone();
    let goal = OrchestratorGoal::new("federate").with_context(
        json!({"text": "one two three"})
            .as_object()
            .cloned()
            .expect("object"),
    );
    let result = within(
        "goal",
        submit_goal(
            &*bus,
            &PipelineName::try_from("fed").expect("name"),
            goal,
            Duration::from_secs(30),
            move |p| seen.lock().expect("lock").push((p.stage.clone(), p.status)),
        ),
    )
    .await
    .expect("answered");
    assert_eq!(result.status, TaskStatus::Completed, "{result:?}");
    let output = Value::Object(result.output.clone().expect("output"));
    assert_eq!(
        output["shout"],
        json!({"mode": "loud", "word": "one two three"})
    );
    assert_eq!(output["stats"]["word_count"], 3);
    let progress = progress.lock().expect("lock").clone();
    assert_eq!(progress.len(), 3, "{progress:?}");
    assert!(progress.contains(&("shout".to_owned(), StageStatus::Completed)));
    assert!(progress.contains(&("boom".to_owned(), StageStatus::Skipped)));

    let goal = OrchestratorGoal::new("wait");
    let result = within(
        "slow goal",
        submit_goal(
            &*bus,
            &PipelineName::try_from("slowfed").expect("name"),
            goal,
            Duration::from_secs(30),
            |_| {},
        ),
    )
    .await
    .expect("answered");
    assert_eq!(result.status, TaskStatus::Failed, "{result:?}");
    let error = result.error.unwrap_or_default();
    assert!(error.contains("timed out"), "{error}");
    shutdown.cancel();
}
