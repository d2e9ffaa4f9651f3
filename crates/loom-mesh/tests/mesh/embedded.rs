//! The example mesh (`examples/docman`) end to end: router, processor workers and a
//! pipeline from the shipped configs, on both buses.

use std::path::PathBuf;
use std::time::Duration;

use loom_bus::BusExt;
use loom_core::config::{find_config_files, load_any};
use loom_core::message::{OrchestratorGoal, TaskMessage, TaskResult, TaskStatus};
use loom_core::name::{PipelineName, WorkerName};
use loom_core::subject;
use loom_llm::TierBackends;
use loom_mesh::mesh::{MeshOptions, MeshPlan, start_mesh};
use loom_mesh::pipeline::submit_goal;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::common::within;
use crate::on_both_buses;

fn docman_plan() -> MeshPlan {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/docman");
    let found = find_config_files(&[dir]).expect("example configs");
    let configs = found
        .iter()
        .map(|f| load_any(&f.path, None).expect("valid example config"));
    MeshPlan::from_configs(configs).expect("plan")
}

#[test]
fn the_docman_plan_has_every_stage_worker() {
    let plan = docman_plan();
    assert!(
        plan.router.is_some(),
        "router_rules.yaml is part of the example"
    );
    // text_stats, keywords, echo, and docs_query implied by the query tools.
    assert_eq!(plan.workers.len(), 4);
    assert_eq!(plan.pipelines.len(), 1);
    assert_eq!(plan.missing_workers(), []);
}

on_both_buses!(
    docman_pipeline_and_worker_answer_through_the_router,
    |tb: crate::common::TestBus| async move {
        let tb = &tb;
        let shutdown = CancellationToken::new();
        let mesh = within(
            "mesh start",
            start_mesh(
                tb.bus.clone(),
                docman_plan(),
                TierBackends::new(),
                MeshOptions::default(),
                shutdown.clone(),
            ),
        )
        .await
        .expect("mesh starts");
        let client = tb.second_client().await;

        // A pipeline goal: text_stats, then the conditional echo report.
        let goal = OrchestratorGoal::new("count").with_context(
            json!({"text": "the quick brown fox", "title": "fox"})
                .as_object()
                .cloned()
                .expect("object"),
        );
        let mut progress = Vec::new();
        let pipeline = PipelineName::try_from("ingest").expect("name");
        let result = within(
            "pipeline result",
            submit_goal(&*client, &pipeline, goal, Duration::from_secs(10), |p| {
                progress.push(p)
            }),
        )
        .await
        .expect("submitted");
        assert_eq!(result.status, TaskStatus::Completed, "{:?}", result.error);
        let output = result.output.expect("output");
        assert_eq!(output["stats"]["word_count"], json!(4));
        assert_eq!(output["report"]["kind"], json!("word_report"));
        assert_eq!(output["report"]["words"], json!(4));
        assert_eq!(progress.len(), 3);
        assert_eq!(output["report"]["top_keywords"][0]["word"], json!("quick"));

        // A task through the router: a contract violation answers FAILED at once.
        let mut results = client
            .subscribe("loom.results.cli-1", None)
            .await
            .expect("subscribe")
            .json::<TaskResult>();
        client.flush().await.expect("flush");
        let worker = WorkerName::try_from("text_stats").expect("name");
        let bad = TaskMessage::new(
            &worker,
            json!({"txt": 1}).as_object().cloned().expect("object"),
        )
        .with_parent_task_id("cli-1");
        client
            .publish_json(subject::TASKS_INCOMING, &bad)
            .await
            .expect("publish");
        let answer = within("task result", futures::StreamExt::next(&mut results))
            .await
            .expect("a result");
        assert_eq!(answer.status, TaskStatus::Failed);
        assert!(
            answer
                .error
                .as_deref()
                .unwrap_or_default()
                .starts_with("Input validation:"),
            "{:?}",
            answer.error
        );

        shutdown.cancel();
        within("mesh stop", mesh.join()).await;
    }
);
