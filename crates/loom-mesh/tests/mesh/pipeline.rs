//! Pipeline orchestrator tests. Stage workers are fakes that consume `loom.tasks.incoming`
//! directly and pick their tasks by `worker_type`, so no router is involved.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use loom_bus::{Bus, BusExt};
use loom_core::PipelineName;
use loom_core::config::{PipelineConfig, load_pipeline};
use loom_core::message::{
    CancelRequest, ModelTier, OrchestratorGoal, TaskMessage, TaskResult, TaskStatus, TokenUsage,
};
use loom_core::subject;
use loom_mesh::pipeline::{
    PipelineOptions, PipelineProgress, StageStatus, SubmitError, spawn_pipeline, submit_goal,
    submit_goal_to,
};
use loom_mesh::reply::publish_result;
use loom_testkit::TempWorkspace;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::common::{TestBus, within};
use crate::on_both_buses;

/// How long `submit_goal` waits in these tests (below `within`'s bound, so a hang reports
/// the goal and its stage count).
const SUBMIT_WAIT: Duration = Duration::from_secs(8);

// ---------------------------------------------------------------------------------------------
// Fake stage workers
// ---------------------------------------------------------------------------------------------

/// What a fake worker does with a task.
enum Reply {
    /// COMPLETED with this output, 10 prompt and 5 completion tokens.
    Output(Value),
    /// Like `Output`, once this many tasks (of any worker) have been seen.
    OutputAfter(usize, Value),
    /// FAILED with this error, 1 prompt and 1 completion token.
    Fail(&'static str),
    /// Like `Fail`, once this many tasks (of any worker) have been seen.
    FailAfter(usize, &'static str),
    /// Never answers.
    Silent,
}

/// A fake worker: the task and how many tasks this worker saw before it.
type Behaviour = Arc<dyn Fn(&TaskMessage, usize) -> Reply + Send + Sync>;

fn behaviour(f: impl Fn(&TaskMessage, usize) -> Reply + Send + Sync + 'static) -> Behaviour {
    Arc::new(f)
}

/// Fake workers and what they saw.
#[derive(Clone, Default)]
struct Mesh {
    tasks: Arc<Mutex<Vec<TaskMessage>>>,
    cancels: Arc<Mutex<Vec<CancelRequest>>>,
}

impl Mesh {
    /// Starts `workers` on `bus`; they also record every cancel request.
    async fn start(bus: Arc<dyn Bus>, workers: Vec<(&str, Behaviour)>) -> Mesh {
        let mesh = Mesh::default();
        let workers: HashMap<String, Behaviour> = workers
            .into_iter()
            .map(|(n, b)| (n.to_owned(), b))
            .collect();
        let mut tasks = bus
            .subscribe(subject::TASKS_INCOMING, None)
            .await
            .expect("subscribe tasks")
            .json::<TaskMessage>();
        let mut cancels = bus
            .subscribe(subject::CONTROL_CANCEL_ALL, None)
            .await
            .expect("subscribe cancels")
            .json::<CancelRequest>();
        let m = mesh.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    Some(c) = cancels.next() => m.cancels.lock().expect("lock").push(c),
                    Some(task) = tasks.next() => {
                        let Some(behave) = workers.get(&task.worker_type) else { continue };
                        let seen = {
                            let mut all = m.tasks.lock().expect("lock");
                            let n = all.iter().filter(|t| t.worker_type == task.worker_type).count();
                            all.push(task.clone());
                            n
                        };
                        let reply = behave(&task, seen);
                        tokio::spawn(answer(bus.clone(), m.clone(), task, reply));
                    }
                    else => break,
                }
            }
        });
        mesh
    }

    fn tasks(&self) -> Vec<TaskMessage> {
        self.tasks.lock().expect("lock").clone()
    }

    fn tasks_for(&self, worker: &str) -> Vec<TaskMessage> {
        self.tasks()
            .into_iter()
            .filter(|t| t.worker_type == worker)
            .collect()
    }

    /// Waits until `n` tasks have been seen; false if that takes too long.
    async fn saw(&self, n: usize) -> bool {
        let all_seen = async {
            while self.tasks.lock().expect("lock").len() < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(SUBMIT_WAIT, all_seen).await.is_ok()
    }

    fn cancelled(&self, task_id: &str) -> bool {
        self.cancels
            .lock()
            .expect("lock")
            .iter()
            .any(|c| c.task_id == task_id)
    }
}

async fn answer(bus: Arc<dyn Bus>, mesh: Mesh, task: TaskMessage, reply: Reply) {
    let completed = |output: Value| {
        TaskResult::completed(&task, output.as_object().cloned().unwrap_or_default())
            .with_model_used("fake-model")
            .with_token_usage(TokenUsage::from_counts(10, 5))
            .with_processing_time_ms(7)
    };
    let failed =
        |error| TaskResult::failed(&task, error).with_token_usage(TokenUsage::from_counts(1, 1));
    let result = match reply {
        Reply::Output(output) => completed(output),
        Reply::OutputAfter(n, output) if mesh.saw(n).await => completed(output),
        Reply::Fail(error) => failed(error),
        Reply::FailAfter(n, error) if mesh.saw(n).await => failed(error),
        Reply::OutputAfter(..) | Reply::FailAfter(..) | Reply::Silent => return,
    };
    publish_result(&*bus, &result)
        .await
        .expect("publish stage result");
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn load(ws: &TempWorkspace, file: &str, yaml: &str) -> PipelineConfig {
    let path = ws.write(file, yaml).expect("write pipeline");
    load_pipeline(&path).unwrap_or_else(|e| panic!("invalid test pipeline: {e}"))
}

async fn start(tb: &TestBus, config: PipelineConfig, compat: bool) -> CancellationToken {
    let shutdown = CancellationToken::new();
    let options = PipelineOptions::default().with_compat_incoming(compat);
    spawn_pipeline(tb.bus.clone(), config, options, shutdown.clone())
        .await
        .expect("spawn pipeline");
    shutdown
}

fn goal(context: Value) -> OrchestratorGoal {
    OrchestratorGoal::new("test goal")
        .with_context(context.as_object().cloned().expect("object context"))
}

fn name(s: &str) -> PipelineName {
    PipelineName::try_from(s).expect("valid pipeline name")
}

/// Submits a goal to `pipeline` and returns its final result and progress messages.
async fn submit(
    bus: &dyn Bus,
    pipeline: &str,
    goal: OrchestratorGoal,
) -> (TaskResult, Vec<PipelineProgress>) {
    let mut progress = Vec::new();
    let result = within(
        "the goal's final result",
        submit_goal(bus, &name(pipeline), goal, SUBMIT_WAIT, |p| {
            progress.push(p)
        }),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    (result, progress)
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    within(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

fn output(result: &TaskResult) -> Value {
    Value::Object(result.output.clone().unwrap_or_default())
}

fn timeline_stages(result: &TaskResult) -> Vec<String> {
    output(result)["_timeline"]
        .as_array()
        .map(|t| {
            t.iter()
                .map(|e| e["stage"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn stage_keys(result: &TaskResult) -> Vec<String> {
    let mut keys: Vec<String> = result
        .output
        .iter()
        .flat_map(|o| o.keys().cloned())
        .collect();
    keys.sort();
    keys
}

/// extract → {classify, ocr}; ocr runs only for scans (B8: its condition orders it after extract).
const DOCS: &str = r#"
name: docs
timeout_seconds: 5
pipeline_stages:
  - name: extract
    worker_type: extractor
    input_mapping: {file_ref: goal.context.file_ref}
  - name: ocr
    worker_type: ocr
    input_mapping: {file_ref: goal.context.file_ref}
    condition: "extract.output.needs_ocr == true"
  - name: classify
    worker_type: classifier
    tier: standard
    input_mapping: {text: extract.output.text, action: "'store'", limit: 5}
"#;

/// The DOCS workers. With `wait_for_siblings`, classify and ocr answer only once all three
/// tasks are out, which proves the level's stages were dispatched together.
fn docs_workers(wait_for_siblings: bool) -> Vec<(&'static str, Behaviour)> {
    let after = move |output: Value| {
        if wait_for_siblings {
            Reply::OutputAfter(3, output)
        } else {
            Reply::Output(output)
        }
    };
    vec![
        (
            "extractor",
            behaviour(|t, _| {
                let scan = t.payload.get("file_ref") == Some(&json!("scan.png"));
                Reply::Output(json!({"text": "hello", "needs_ocr": scan}))
            }),
        ),
        (
            "ocr",
            behaviour(move |_, _| after(json!({"text": "ocr text"}))),
        ),
        (
            "classifier",
            behaviour(move |t, _| after(json!({"label": "invoice", "got": t.payload}))),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

on_both_buses!(
    three_stages_run_in_levels_with_a_true_condition,
    |tb: TestBus| async move {
        let ws = TempWorkspace::new().expect("workspace");
        let mesh = Mesh::start(tb.bus.clone(), docs_workers(true)).await;
        let _shutdown = start(&tb, load(&ws, "docs.yaml", DOCS), false).await;

        let g = goal(json!({"file_ref": "scan.png"}));
        let goal_id = g.goal_id.clone();
        let (result, progress) = submit(&*tb.bus, "docs", g).await;

        // 71: the final result names the goal and the pipeline.
        assert_eq!(result.status, TaskStatus::Completed, "{:?}", result.error);
        assert_eq!(
            (result.task_id.as_str(), result.parent_task_id.as_deref()),
            (goal_id.as_str(), None)
        );
        assert_eq!(result.worker_type, "docs");
        assert_eq!(
            stage_keys(&result),
            ["_timeline", "classify", "extract", "ocr"]
        );
        let out = output(&result);
        assert_eq!(out["ocr"], json!({"text": "ocr text"}));
        // B6: quoted and plain literals reach the payload next to mapped paths.
        assert_eq!(
            out["classify"]["got"],
            json!({"text": "hello", "action": "store", "limit": 5})
        );
        let timeline = timeline_stages(&result);
        assert_eq!(timeline.len(), 3);
        assert_eq!(timeline[0], "extract");
        for entry in out["_timeline"].as_array().expect("timeline") {
            for key in [
                "started_at",
                "ended_at",
                "wall_time_ms",
                "processing_time_ms",
            ] {
                assert!(entry.get(key).is_some(), "{key} missing in {entry}");
            }
            assert_eq!(entry["processing_time_ms"], json!(7));
        }
        // L4: token usage is summed over the stages.
        assert_eq!(
            (
                result.token_usage.prompt_tokens(),
                result.token_usage.completion_tokens()
            ),
            (30, 15)
        );

        // 70, 74: stage tasks carry the goal as parent and request id, the stage name and tier.
        let tasks = mesh.tasks();
        assert_eq!(tasks.len(), 3);
        for t in &tasks {
            assert_eq!(t.parent_task_id.as_deref(), Some(goal_id.as_str()));
            assert_eq!(t.request_id.as_deref(), Some(goal_id.as_str()));
            assert_eq!(t.metadata["model_tier"], json!(t.model_tier.as_str()));
        }
        assert_eq!(tasks[0].worker_type, "extractor");
        assert_eq!(tasks[0].metadata["stage_name"], json!("extract"));
        assert_eq!(tasks[0].model_tier, ModelTier::Local);
        assert_eq!(
            mesh.tasks_for("classifier")[0].model_tier,
            ModelTier::Standard
        );
        // B8: ocr waited for extract, so its condition saw extract's output.
        assert_eq!(
            mesh.tasks_for("ocr")[0].metadata["stage_name"],
            json!("ocr")
        );

        // Progress: one message per stage, counting up to the total.
        assert_eq!(progress.len(), 3, "{progress:?}");
        assert!(
            progress
                .iter()
                .all(|p| p.total == 3 && p.goal_id == goal_id && p.pipeline == "docs")
        );
        assert!(progress.iter().all(|p| p.status == StageStatus::Completed));
        assert_eq!(
            progress.iter().map(|p| p.completed).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(progress[0].stage, "extract");
    }
);

on_both_buses!(
    a_false_condition_skips_the_stage,
    |tb: TestBus| async move {
        let ws = TempWorkspace::new().expect("workspace");
        let mesh = Mesh::start(tb.bus.clone(), docs_workers(false)).await;
        let _shutdown = start(&tb, load(&ws, "docs.yaml", DOCS), false).await;

        let (result, progress) =
            submit(&*tb.bus, "docs", goal(json!({"file_ref": "doc.pdf"}))).await;

        assert_eq!(result.status, TaskStatus::Completed, "{:?}", result.error);
        // 72: a skipped stage is absent from the output and the timeline.
        assert_eq!(stage_keys(&result), ["_timeline", "classify", "extract"]);
        assert_eq!(timeline_stages(&result), ["extract", "classify"]);
        assert!(mesh.tasks_for("ocr").is_empty());
        assert_eq!(
            (
                result.token_usage.prompt_tokens(),
                result.token_usage.completion_tokens()
            ),
            (20, 10)
        );
        // The skip is reported as progress too, so the count still reaches the total.
        assert_eq!(progress.len(), 3, "{progress:?}");
        let ocr = progress
            .iter()
            .find(|p| p.stage == "ocr")
            .expect("ocr progress");
        assert_eq!(ocr.status, StageStatus::Skipped);
        assert_eq!(progress.iter().map(|p| p.completed).max(), Some(3));
    }
);

on_both_buses!(
    a_failing_stage_cancels_its_sibling_and_keeps_partial_output,
    |tb: TestBus| async move {
        let ws = TempWorkspace::new().expect("workspace");
        let yaml = r#"
name: fragile
timeout_seconds: 30
pipeline_stages:
  - {name: extract, worker_type: extractor}
  - {name: breaks, worker_type: breaker, depends_on: [extract]}
  - {name: slow, worker_type: sleeper, depends_on: [extract]}
"#;
        let workers = vec![
            (
                "extractor",
                behaviour(|_, _| Reply::Output(json!({"text": "hello"}))),
            ),
            // Fails only once the sibling's task is out, so there is something to cancel.
            (
                "breaker",
                behaviour(|_, _| Reply::FailAfter(3, "disk on fire")),
            ),
            ("sleeper", behaviour(|_, _| Reply::Silent)),
        ];
        let mesh = Mesh::start(tb.bus.clone(), workers).await;
        let _shutdown = start(&tb, load(&ws, "p.yaml", yaml), false).await;

        let started = Instant::now();
        let (result, progress) = submit(&*tb.bus, "fragile", goal(json!({}))).await;

        // L5: the goal fails at once instead of waiting 30 s for the silent sibling.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        assert_eq!(result.status, TaskStatus::Failed);
        assert_eq!(
            result.error.as_deref(),
            Some("Stage 'breaks' failed: disk on fire")
        );
        // L4: the outputs and timeline of completed stages survive the failure.
        assert_eq!(stage_keys(&result), ["_timeline", "extract"]);
        assert_eq!(timeline_stages(&result), ["extract"]);
        assert_eq!(
            (
                result.token_usage.prompt_tokens(),
                result.token_usage.completion_tokens()
            ),
            (11, 6)
        );
        // The sibling's task is told to stop.
        let slow_task = mesh
            .tasks_for("sleeper")
            .first()
            .cloned()
            .expect("sleeper got its task");
        eventually("a cancel for the sibling's task", || {
            mesh.cancelled(&slow_task.task_id)
        })
        .await;
        let failed = progress
            .iter()
            .find(|p| p.stage == "breaks")
            .expect("failure progress");
        assert_eq!(failed.status, StageStatus::Failed);
        assert_eq!(
            failed.error.as_deref(),
            Some("Stage 'breaks' failed: disk on fire")
        );
    }
);

on_both_buses!(
    a_stage_timeout_overrides_the_pipeline_default,
    |tb: TestBus| async move {
        let ws = TempWorkspace::new().expect("workspace");
        let yaml = r#"
name: patient
timeout_seconds: 30
pipeline_stages:
  - {name: slow, worker_type: sleeper, timeout_seconds: 0.3}
"#;
        let mesh = Mesh::start(
            tb.bus.clone(),
            vec![("sleeper", behaviour(|_, _| Reply::Silent))],
        )
        .await;
        let _shutdown = start(&tb, load(&ws, "p.yaml", yaml), false).await;

        let started = Instant::now();
        let (result, _) = submit(&*tb.bus, "patient", goal(json!({}))).await;

        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        assert_eq!(result.status, TaskStatus::Failed);
        assert_eq!(
            result.error.as_deref(),
            Some("Stage 'slow' timed out after 0.3s")
        );
        let task = mesh.tasks_for("sleeper").first().cloned().expect("task");
        eventually("a cancel for the timed-out task", || {
            mesh.cancelled(&task.task_id)
        })
        .await;
    }
);

on_both_buses!(
    a_client_timeout_names_the_goal_and_finished_stages,
    |tb: TestBus| async move {
        let ws = TempWorkspace::new().expect("workspace");
        let yaml = r#"
name: slowpoke
timeout_seconds: 30
pipeline_stages:
  - {name: quick, worker_type: quick}
  - {name: slow, worker_type: sleeper, depends_on: [quick]}
"#;
        let workers = vec![
            ("quick", behaviour(|_, _| Reply::Output(json!({})))),
            ("sleeper", behaviour(|_, _| Reply::Silent)),
        ];
        let _mesh = Mesh::start(tb.bus.clone(), workers).await;
        let _shutdown = start(&tb, load(&ws, "p.yaml", yaml), false).await;

        let g = goal(json!({})).with_goal_id("goal-slow-1");
        let wait = Duration::from_millis(500);
        let err = within(
            "the client timeout",
            submit_goal(&*tb.bus, &name("slowpoke"), g, wait, |_| {}),
        )
        .await
        .expect_err("must time out");
        assert!(
            matches!(
                err,
                SubmitError::TimedOut {
                    stages_completed: 1,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "goal 'goal-slow-1' timed out after 0.5s (1 stages completed)"
        );
    }
);

on_both_buses!(
    retries_use_a_fresh_task_id_for_failures_and_timeouts,
    |tb: TestBus| async move {
        let ws = TempWorkspace::new().expect("workspace");
        let yaml = r#"
name: stubborn
pipeline_stages:
  - {name: flaky, worker_type: flaky, max_retries: 2, timeout_seconds: 0.4}
"#;
        let flaky = behaviour(|_, seen| match seen {
            0 => Reply::Fail("transient"),
            1 => Reply::Silent,
            _ => Reply::Output(json!({"ok": true})),
        });
        let mesh = Mesh::start(tb.bus.clone(), vec![("flaky", flaky)]).await;
        let _shutdown = start(&tb, load(&ws, "p.yaml", yaml), false).await;

        let (result, _) = submit(&*tb.bus, "stubborn", goal(json!({}))).await;

        assert_eq!(result.status, TaskStatus::Completed, "{:?}", result.error);
        assert_eq!(output(&result)["flaky"], json!({"ok": true}));
        let tasks = mesh.tasks_for("flaky");
        assert_eq!(tasks.len(), 3);
        let mut ids: Vec<&str> = tasks.iter().map(|t| t.task_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 3, "task ids are not fresh: {ids:?}");
        assert_eq!(
            tasks.iter().map(|t| t.retry_count).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        // Tokens of the failed attempt count too.
        assert_eq!(result.token_usage.prompt_tokens(), 11);
    }
);

on_both_buses!(
    contract_violations_are_never_retried,
    |tb: TestBus| async move {
        let ws = TempWorkspace::new().expect("workspace");
        let strict_in = r#"
name: strict_in
pipeline_stages:
  - name: check
    worker_type: lenient
    max_retries: 2
    input_mapping: {text: goal.context.n}
    input_schema: {type: object, required: [text], properties: {text: {type: string}}}
"#;
        let strict_out = r#"
name: strict_out
pipeline_stages:
  - name: check
    worker_type: sloppy
    max_retries: 2
    output_schema: {type: object, required: [label]}
"#;
        let workers = vec![
            ("lenient", behaviour(|_, _| Reply::Output(json!({})))),
            (
                "sloppy",
                behaviour(|_, _| Reply::Output(json!({"other": 1}))),
            ),
        ];
        let mesh = Mesh::start(tb.bus.clone(), workers).await;
        let _a = start(&tb, load(&ws, "in.yaml", strict_in), false).await;
        let _b = start(&tb, load(&ws, "out.yaml", strict_out), false).await;

        let (result, _) = submit(&*tb.bus, "strict_in", goal(json!({"n": 5}))).await;
        assert_eq!(result.status, TaskStatus::Failed);
        assert_eq!(
            result.error.as_deref(),
            Some(
                "Stage 'check' input validation failed: ['input/text: expected string, got integer']"
            )
        );
        assert!(
            mesh.tasks_for("lenient").is_empty(),
            "an invalid payload was sent"
        );

        let (result, _) = submit(&*tb.bus, "strict_out", goal(json!({}))).await;
        assert_eq!(result.status, TaskStatus::Failed);
        assert_eq!(
            result.error.as_deref(),
            Some(
                "Stage 'check' output validation failed: [\"output: missing required field 'label'\"]"
            )
        );
        assert_eq!(
            mesh.tasks_for("sloppy").len(),
            1,
            "an output contract violation was retried"
        );
    }
);

on_both_buses!(
    mapping_from_a_skipped_stage_fails_naming_it,
    |tb: TestBus| async move {
        let ws = TempWorkspace::new().expect("workspace");
        let yaml = r#"
name: gaps
pipeline_stages:
  - {name: extract, worker_type: extractor}
  - {name: ocr, worker_type: ocr, condition: "extract.output.needs_ocr == true"}
  - {name: summary, worker_type: summarizer, max_retries: 2, input_mapping: {text: ocr.output.text}}
"#;
        let workers = vec![
            (
                "extractor",
                behaviour(|_, _| Reply::Output(json!({"needs_ocr": false}))),
            ),
            ("ocr", behaviour(|_, _| Reply::Output(json!({"text": "x"})))),
            ("summarizer", behaviour(|_, _| Reply::Output(json!({})))),
        ];
        let mesh = Mesh::start(tb.bus.clone(), workers).await;
        let _shutdown = start(&tb, load(&ws, "p.yaml", yaml), false).await;

        let (result, _) = submit(&*tb.bus, "gaps", goal(json!({}))).await;

        assert_eq!(result.status, TaskStatus::Failed);
        assert_eq!(
            result.error.as_deref(),
            Some(
                "Stage 'summary' mapping error: Path 'ocr.output.text': stage 'ocr' was skipped \
             (its condition 'extract.output.needs_ocr == true' was false), so it has no values"
            )
        );
        assert!(mesh.tasks_for("summarizer").is_empty());
        assert!(mesh.tasks_for("ocr").is_empty());
        assert_eq!(stage_keys(&result), ["_timeline", "extract"]);
    }
);

on_both_buses!(
    goals_reach_only_the_pipeline_they_name,
    |tb: TestBus| async move {
        let ws = TempWorkspace::new().expect("workspace");
        let alpha = "name: alpha\npipeline_stages:\n  - {name: a, worker_type: wa}\n";
        let beta = "name: beta\npipeline_stages:\n  - {name: b, worker_type: wb}\n";
        let workers = vec![
            ("wa", behaviour(|_, _| Reply::Output(json!({})))),
            ("wb", behaviour(|_, _| Reply::Output(json!({})))),
        ];
        let mesh = Mesh::start(tb.bus.clone(), workers).await;
        let _a = start(&tb, load(&ws, "alpha.yaml", alpha), false).await;
        let _b = start(&tb, load(&ws, "beta.yaml", beta), false).await;
        // Goals come from another connection, as from `loom submit`.
        let client = tb.second_client().await;

        for _ in 0..4 {
            let (result, _) = submit(&*client, "alpha", goal(json!({}))).await;
            assert_eq!(
                (result.status, result.worker_type.as_str()),
                (TaskStatus::Completed, "alpha")
            );
        }
        assert_eq!(mesh.tasks_for("wa").len(), 4);
        assert!(
            mesh.tasks_for("wb").is_empty(),
            "pipeline beta took alpha's goals"
        );
        let (result, _) = submit(&*client, "beta", goal(json!({}))).await;
        assert_eq!(result.worker_type, "beta");
    }
);

on_both_buses!(
    the_compat_subscription_takes_goals_incoming_only_when_enabled,
    |tb: TestBus| async move {
        let ws = TempWorkspace::new().expect("workspace");
        let legacy = "name: legacy\npipeline_stages:\n  - {name: a, worker_type: wa}\n";
        let modern = "name: modern\npipeline_stages:\n  - {name: b, worker_type: wb}\n";
        let workers = vec![
            ("wa", behaviour(|_, _| Reply::Output(json!({})))),
            ("wb", behaviour(|_, _| Reply::Output(json!({})))),
        ];
        let mesh = Mesh::start(tb.bus.clone(), workers).await;
        let _a = start(&tb, load(&ws, "legacy.yaml", legacy), true).await;
        let _b = start(&tb, load(&ws, "modern.yaml", modern), false).await;

        for _ in 0..3 {
            let g = goal(json!({}));
            let result = within(
                "a compat goal's result",
                submit_goal_to(&*tb.bus, subject::GOALS_INCOMING, g, SUBMIT_WAIT, |_| {}),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                (result.status, result.worker_type.as_str()),
                (TaskStatus::Completed, "legacy")
            );
        }
        assert!(
            mesh.tasks_for("wb").is_empty(),
            "a pipeline without compat took a goal from loom.goals.incoming"
        );

        // Nobody listens on an unknown pipeline's subject: the client says so after its timeout.
        let g = goal(json!({})).with_goal_id("goal-nobody");
        let err = within(
            "the client timeout",
            submit_goal(
                &*tb.bus,
                &name("nobody"),
                g,
                Duration::from_millis(300),
                |_| {},
            ),
        )
        .await
        .expect_err("nobody answers");
        assert_eq!(
            err.to_string(),
            "goal 'goal-nobody' timed out after 0.3s (0 stages completed)"
        );
    }
);

on_both_buses!(
    an_unparsable_goal_with_a_goal_id_is_answered_failed,
    |tb: TestBus| async move {
        let ws = TempWorkspace::new().expect("workspace");
        let yaml = "name: docs\npipeline_stages:\n  - {name: a, worker_type: wa}\n";
        let _mesh = Mesh::start(
            tb.bus.clone(),
            vec![("wa", behaviour(|_, _| Reply::Output(json!({}))))],
        )
        .await;
        let _shutdown = start(&tb, load(&ws, "p.yaml", yaml), false).await;
        let mut results = tb
            .bus
            .subscribe("loom.results.bad-goal-1", None)
            .await
            .expect("subscribe")
            .json::<TaskResult>();

        let goals = subject::goals(&name("docs"));
        tb.bus
            .publish(&goals, "not json at all".into())
            .await
            .expect("publish");
        tb.bus
            .publish_json(
                &goals,
                &json!({"goal_id": "bad-goal-1", "context": "not an object"}),
            )
            .await
            .expect("publish");

        let result = within("the FAILED answer", results.next())
            .await
            .expect("a result");
        assert_eq!(result.status, TaskStatus::Failed);
        assert_eq!(
            (result.task_id.as_str(), result.worker_type.as_str()),
            ("bad-goal-1", "docs")
        );
        assert!(
            result
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with("Invalid goal: ")),
            "{:?}",
            result.error
        );
        // The orchestrator is still alive.
        let (result, _) = submit(&*tb.bus, "docs", goal(json!({}))).await;
        assert_eq!(result.status, TaskStatus::Completed);
    }
);

on_both_buses!(
    a_cancelled_goal_fails_and_cancels_its_stage_tasks,
    |tb: TestBus| async move {
        let ws = TempWorkspace::new().expect("workspace");
        let yaml = r#"
name: long
timeout_seconds: 30
pipeline_stages:
  - {name: extract, worker_type: extractor}
  - {name: slow, worker_type: sleeper, depends_on: [extract]}
"#;
        let workers = vec![
            (
                "extractor",
                behaviour(|_, _| Reply::Output(json!({"text": "hi"}))),
            ),
            ("sleeper", behaviour(|_, _| Reply::Silent)),
        ];
        let mesh = Mesh::start(tb.bus.clone(), workers).await;
        let _shutdown = start(&tb, load(&ws, "p.yaml", yaml), false).await;

        let g = goal(json!({}));
        let goal_id = g.goal_id.clone();
        let bus = tb.bus.clone();
        let submitted = tokio::spawn(async move { submit(&*bus, "long", g).await });
        eventually("the slow stage's task", || {
            !mesh.tasks_for("sleeper").is_empty()
        })
        .await;
        let cancel = CancelRequest::new(goal_id.as_str()).with_reason("user asked");
        tb.bus
            .publish_json(&cancel.subject().expect("subject"), &cancel)
            .await
            .expect("publish cancel");

        let (result, _) = within("the cancelled result", submitted)
            .await
            .expect("submit task");
        assert_eq!(result.status, TaskStatus::Failed);
        assert_eq!(
            result.error.as_deref(),
            Some("pipeline cancelled: user asked")
        );
        assert_eq!(stage_keys(&result), ["_timeline", "extract"]);
        let slow = mesh.tasks_for("sleeper")[0].task_id.clone();
        eventually("a cancel for the stage task", || mesh.cancelled(&slow)).await;
    }
);

on_both_buses!(concurrent_goals_stay_separate, |tb: TestBus| async move {
    let ws = TempWorkspace::new().expect("workspace");
    let yaml = r#"
name: echo
max_concurrent_goals: 2
pipeline_stages:
  - {name: echo, worker_type: echo, input_mapping: {x: goal.context.x}}
"#;
    // Each answer waits until both goals' tasks are out: both goals run at once.
    let echo = behaviour(|t, _| Reply::OutputAfter(2, json!({"got": t.payload})));
    let _mesh = Mesh::start(tb.bus.clone(), vec![("echo", echo)]).await;
    let _shutdown = start(&tb, load(&ws, "p.yaml", yaml), false).await;

    let (g1, g2) = (goal(json!({"x": 1})), goal(json!({"x": 2})));
    let (id1, id2) = (g1.goal_id.clone(), g2.goal_id.clone());
    let ((r1, p1), (r2, p2)) =
        tokio::join!(submit(&*tb.bus, "echo", g1), submit(&*tb.bus, "echo", g2));

    assert_eq!(
        (r1.task_id.as_str(), r2.task_id.as_str()),
        (id1.as_str(), id2.as_str())
    );
    assert_eq!(output(&r1)["echo"]["got"], json!({"x": 1}));
    assert_eq!(output(&r2)["echo"]["got"], json!({"x": 2}));
    assert!(
        p1.iter().all(|p| p.goal_id == id1) && p1.len() == 1,
        "{p1:?}"
    );
    assert!(
        p2.iter().all(|p| p.goal_id == id2) && p2.len() == 1,
        "{p2:?}"
    );
});

on_both_buses!(
    reload_rereads_the_yaml_and_keeps_the_old_config_when_invalid,
    |tb: TestBus| async move {
        let ws = TempWorkspace::new().expect("workspace");
        let v1 = "name: morph\npipeline_stages:\n  - {name: first, worker_type: wa}\n";
        let v2 = "name: morph\npipeline_stages:\n  - {name: second, worker_type: wb}\n";
        let workers = vec![
            ("wa", behaviour(|_, _| Reply::Output(json!({})))),
            ("wb", behaviour(|_, _| Reply::Output(json!({})))),
        ];
        let _mesh = Mesh::start(tb.bus.clone(), workers).await;
        let _shutdown = start(&tb, load(&ws, "p.yaml", v1), false).await;
        let (result, _) = submit(&*tb.bus, "morph", goal(json!({}))).await;
        assert_eq!(stage_keys(&result), ["_timeline", "first"]);

        ws.write("p.yaml", v2).expect("rewrite");
        tb.bus
            .publish_json(subject::CONTROL_RELOAD, &json!({"action": "reload"}))
            .await
            .expect("reload");
        within("the reloaded config", async {
            loop {
                let (result, _) = submit(&*tb.bus, "morph", goal(json!({}))).await;
                if stage_keys(&result) == ["_timeline", "second"] {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;

        ws.write("p.yaml", "name: morph\npipeline_stages: []\n")
            .expect("break the file");
        tb.bus
            .publish_json(subject::CONTROL_RELOAD, &json!({"action": "reload"}))
            .await
            .expect("reload");
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (result, _) = submit(&*tb.bus, "morph", goal(json!({}))).await;
        assert_eq!(result.status, TaskStatus::Completed);
        assert_eq!(stage_keys(&result), ["_timeline", "second"]);
    }
);

#[test]
fn default_options_keep_the_compat_subscription_off() {
    assert!(!PipelineOptions::default().compat_incoming);
}
