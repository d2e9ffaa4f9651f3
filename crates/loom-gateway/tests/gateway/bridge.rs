//! The bridge on both buses: worker, query and pipeline calls through one multiplexed
//! subscription, against the real docman mesh where possible and a scripted peer where
//! a test needs an answer the mesh would not give (gateway spec §12 items 71–85, with
//! Loom's fixes for non-terminal statuses, timeouts, cancellation and progress).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use loom_bus::{Bus, BusExt, JsonSubscription, MemoryBus, NatsBus, NatsOptions};
use loom_core::config::{find_config_files, load_any, load_gateway, load_pipeline};
use loom_core::message::{
    CancelRequest, ModelTier, OrchestratorGoal, TaskMessage, TaskResult, TaskStatus,
};
use loom_core::subject;
use loom_gateway::bridge::{Bridge, CallError, Progress};
use loom_gateway::catalog::{Catalog, Dispatch, GatewayTool};
use loom_llm::TierBackends;
use loom_mesh::mesh::{MeshOptions, MeshPlan, RunningMesh, start_mesh};
use loom_mesh::pipeline::{PipelineProgress, StageStatus};
use loom_testkit::NatsServer;
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

// -------------------------------------------------------------------------------------------
// Harness
// -------------------------------------------------------------------------------------------

/// Every wait in these tests is bounded by this.
const WAIT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BusKind {
    Memory,
    Nats,
}

/// A bus and, for NATS, the server behind it (stopped when dropped).
struct TestBus {
    bus: Arc<dyn Bus>,
    /// The same bus as a `MemoryBus`, for its subscription count.
    memory: Option<MemoryBus>,
    server: Option<NatsServer>,
}

// A type with `Drop` is captured whole by `async move` blocks, so the nats-server lives
// as long as the test body.
impl Drop for TestBus {
    fn drop(&mut self) {}
}

impl TestBus {
    async fn new(kind: BusKind) -> TestBus {
        match kind {
            BusKind::Memory => {
                let memory = MemoryBus::new();
                TestBus {
                    bus: Arc::new(memory.clone()),
                    memory: Some(memory),
                    server: None,
                }
            }
            BusKind::Nats => {
                let server = NatsServer::start().expect("start nats-server");
                let bus = NatsBus::connect(NatsOptions::new(&server.url()))
                    .await
                    .expect("connect to nats-server");
                TestBus {
                    bus: Arc::new(bus),
                    memory: None,
                    server: Some(server),
                }
            }
        }
    }

    /// Another connection to the same bus (another process, on NATS).
    async fn second_client(&self) -> Arc<dyn Bus> {
        match &self.server {
            None => self.bus.clone(),
            Some(server) => Arc::new(
                NatsBus::connect(NatsOptions::new(&server.url()))
                    .await
                    .expect("connect to nats-server"),
            ),
        }
    }
}

/// Defines `mod $name { memory, nats }`: the async body runs once per bus kind.
macro_rules! on_both_buses {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test]
            async fn memory() {
                super::run(super::BusKind::Memory, $body).await;
            }

            #[tokio::test]
            async fn nats() {
                super::run(super::BusKind::Nats, $body).await;
            }
        }
    };
}

/// A whole test body may take at most this long, whatever it awaits.
const TEST_LIMIT: Duration = Duration::from_secs(90);

/// Runs `body` on a fresh bus of `kind`, bounded by [`TEST_LIMIT`].
async fn run<F, Fut>(kind: BusKind, body: F)
where
    F: FnOnce(TestBus) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let test = async {
        let tb = TestBus::new(kind).await;
        body(tb).await;
    };
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .unwrap_or_else(|_| panic!("test did not finish within {TEST_LIMIT:?}"));
}

/// Runs `fut`, failing the test with `what` if it takes longer than [`WAIT`].
async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn docman_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/docman")
}

/// The docman example's tools.
fn docman_catalog() -> Catalog {
    let config = load_gateway(&docman_dir().join("mcp.yaml")).expect("docman gateway config");
    Catalog::from_config(&config)
}

/// The docman mesh (router, text_stats, keywords, echo, pipeline `ingest`) on `bus`.
async fn docman_mesh(bus: Arc<dyn Bus>, shutdown: &CancellationToken) -> RunningMesh {
    let found = find_config_files(&[docman_dir()]).expect("example configs");
    let configs = found
        .iter()
        .map(|f| load_any(&f.path, None).expect("valid example config"));
    let plan = MeshPlan::from_configs(configs).expect("plan");
    let mesh = within(
        "mesh start",
        start_mesh(
            bus.clone(),
            plan,
            TierBackends::new(),
            MeshOptions::default(),
            shutdown.clone(),
        ),
    )
    .await
    .expect("mesh starts");
    // The bridge publishes from another connection: make sure the server has every
    // subscription of the mesh first.
    barrier(&bus).await;
    mesh
}

async fn bridge(bus: Arc<dyn Bus>) -> Bridge {
    within("bridge start", Bridge::start(bus))
        .await
        .expect("bridge starts")
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn no_progress(_: Progress) {}

/// A worker tool for worker `worker` with a short timeout, for scripted peers.
fn worker_tool(worker: &str, timeout: Duration) -> GatewayTool {
    GatewayTool::new(
        worker,
        "",
        object(json!({"type": "object"})),
        Dispatch::Worker {
            worker_type: worker.try_into().expect("name"),
            tier: ModelTier::Standard,
            timeout,
        },
    )
    .expect("tool")
}

/// Subscribes `client` to `subject`, and returns once the server has the subscription.
///
/// On NATS, `flush` only writes the SUB to the socket; another connection's publish may
/// still be processed first. A request to a subject nobody serves is a round trip: when
/// its "no responders" answer arrives, the server has processed the SUB before it.
async fn watch<T: serde::de::DeserializeOwned>(
    client: &Arc<dyn Bus>,
    subject: &str,
) -> JsonSubscription<T> {
    let sub = client
        .subscribe(subject, None)
        .await
        .expect("subscribe")
        .json::<T>();
    barrier(client).await;
    sub
}

/// Returns once the server has processed everything `client` sent before (see [`watch`]).
async fn barrier(client: &Arc<dyn Bus>) {
    let answer = client
        .request("loom_test.barrier", Bytes::new(), WAIT)
        .await;
    assert!(answer.is_err(), "nobody serves the barrier subject");
}

async fn next<T>(what: &str, sub: &mut JsonSubscription<T>) -> T
where
    T: serde::de::DeserializeOwned + Unpin,
{
    within(what, sub.next()).await.expect("subscription open")
}

async fn answer(client: &Arc<dyn Bus>, task: &TaskMessage, body: &Value) {
    let subject = task.result_subject().expect("result subject");
    client.publish_json(&subject, body).await.expect("publish");
}

// -------------------------------------------------------------------------------------------
// Against the docman mesh
// -------------------------------------------------------------------------------------------

on_both_buses!(worker_call_returns_the_output, |tb: TestBus| async move {
    let shutdown = CancellationToken::new();
    let mesh = docman_mesh(tb.bus.clone(), &shutdown).await;
    let bridge = bridge(tb.second_client().await).await;
    let catalog = docman_catalog();
    let stats = catalog.get("text_stats").expect("tool");
    let payload = stats
        .prepare(object(json!({"text": "hello brave new world"})))
        .expect("valid");
    let output = within(
        "call",
        bridge.call(stats, payload, &no_progress, CancellationToken::new()),
    )
    .await
    .expect("completed");
    assert_eq!(output["word_count"], json!(4));
    assert_eq!(output["reversed"], json!("dlrow wen evarb olleh"));
    assert_eq!(bridge.in_flight(), 0);

    // The subprocess worker (python3) through the same bridge.
    let keywords = catalog.get("keywords").expect("tool");
    let payload = keywords
        .prepare(object(json!({"text": "fox fox dog", "top": 1})))
        .expect("valid");
    let output = within(
        "keywords call",
        bridge.call(keywords, payload, &no_progress, CancellationToken::new()),
    )
    .await
    .expect("completed");
    assert_eq!(output["keywords"], json!([{"word": "fox", "count": 2}]));

    bridge.close().await;
    shutdown.cancel();
    within("mesh stop", mesh.join()).await;
});

on_both_buses!(
    failed_result_carries_the_worker_error_text,
    |tb: TestBus| async move {
        let shutdown = CancellationToken::new();
        let mesh = docman_mesh(tb.bus.clone(), &shutdown).await;
        let bridge = bridge(tb.second_client().await).await;
        let catalog = docman_catalog();
        let stats = catalog.get("text_stats").expect("tool");
        // Skip `prepare` so the worker's own contract check answers FAILED.
        let err = within(
            "call",
            bridge.call(
                stats,
                object(json!({"txt": 1})),
                &no_progress,
                CancellationToken::new(),
            ),
        )
        .await
        .expect_err("failed");
        let CallError::Failed { message } = &err else {
            panic!("expected Failed, got {err:?}");
        };
        assert!(
            message.starts_with("Input validation: [\"input: missing required field 'text'\""),
            "{message}"
        );
        // The client sees exactly the worker's text.
        assert_eq!(err.to_string(), *message);
        assert_eq!(bridge.in_flight(), 0);
        bridge.close().await;
        shutdown.cancel();
        within("mesh stop", mesh.join()).await;
    }
);

on_both_buses!(
    fifty_concurrent_calls_are_correlated_over_one_subscription,
    |tb: TestBus| async move {
        let shutdown = CancellationToken::new();
        let mesh = docman_mesh(tb.bus.clone(), &shutdown).await;
        let bridge = bridge(tb.second_client().await).await;
        let subscriptions = tb.memory.as_ref().map(MemoryBus::subscription_count);
        let catalog = docman_catalog();
        let echo = catalog.get("echo").expect("tool").clone();
        let calls = (0..50).map(|i| {
            let (bridge, echo) = (bridge.clone(), echo.clone());
            async move {
                let payload = echo
                    .prepare(object(json!({"i": i, "tag": format!("call-{i}")})))
                    .expect("valid");
                let out = bridge
                    .call(&echo, payload, &no_progress, CancellationToken::new())
                    .await;
                (i, out)
            }
        });
        let results = within("50 calls", futures::future::join_all(calls)).await;
        for (i, out) in results {
            let out = out.unwrap_or_else(|e| panic!("call {i}: {e}"));
            assert_eq!(
                Value::Object(out),
                json!({"i": i, "tag": format!("call-{i}")})
            );
        }
        assert_eq!(bridge.in_flight(), 0);
        if let (Some(memory), Some(before)) = (&tb.memory, subscriptions) {
            // No subscription per call: the count is what it was before the calls.
            assert_eq!(memory.subscription_count(), before);
        }
        bridge.close().await;
        shutdown.cancel();
        within("mesh stop", mesh.join()).await;
    }
);

on_both_buses!(
    pipeline_call_returns_the_final_output_and_reports_each_stage,
    |tb: TestBus| async move {
        let shutdown = CancellationToken::new();
        let mesh = docman_mesh(tb.bus.clone(), &shutdown).await;
        let bridge = bridge(tb.second_client().await).await;
        let catalog = docman_catalog();
        let ingest = catalog.get("ingest_document").expect("tool");
        let payload = ingest
            .prepare(object(
                json!({"text": "the quick brown fox jumps over the lazy fox", "title": "fox"}),
            ))
            .expect("valid");
        let seen: Mutex<Vec<Progress>> = Mutex::new(Vec::new());
        let report = |p: Progress| seen.lock().expect("lock").push(p);
        let output = within(
            "pipeline call",
            bridge.call(ingest, payload, &report, CancellationToken::new()),
        )
        .await
        .expect("completed");
        assert_eq!(output["stats"]["word_count"], json!(9));
        assert_eq!(output["keywords"]["keywords"][0]["word"], json!("fox"));
        assert_eq!(output["report"]["kind"], json!("word_report"));
        assert_eq!(output["report"]["title"], json!("fox"));
        let seen = seen.into_inner().expect("lock");
        let counts: Vec<(f64, Option<f64>)> = seen.iter().map(|p| (p.progress, p.total)).collect();
        assert_eq!(
            counts,
            [(1.0, Some(3.0)), (2.0, Some(3.0)), (3.0, Some(3.0))],
            "{seen:?}"
        );
        let mut first_two: Vec<&str> = seen[..2]
            .iter()
            .filter_map(|p| p.message.as_deref())
            .collect();
        first_two.sort_unstable();
        assert_eq!(first_two, ["keywords", "stats"]);
        assert_eq!(seen[2].message.as_deref(), Some("report"));
        assert_eq!(bridge.in_flight(), 0);
        bridge.close().await;
        shutdown.cancel();
        within("mesh stop", mesh.join()).await;
    }
);

on_both_buses!(
    pipeline_cancel_reaches_the_orchestrator_through_the_dotted_goal_id,
    |tb: TestBus| async move {
        // A pipeline whose stage worker never answers (no router, no worker).
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("slow.yaml");
        std::fs::write(
            &file,
            "name: slow\ntimeout_seconds: 60\npipeline_stages:\n  - name: wait\n    worker_type: absent\n    input_mapping:\n      x: goal.context.x\n",
        )
        .expect("write");
        let mut plan = MeshPlan::default();
        plan.add_pipeline(load_pipeline(&file).expect("pipeline"))
            .expect("plan");
        let shutdown = CancellationToken::new();
        let mesh = within(
            "mesh start",
            start_mesh(
                tb.bus.clone(),
                plan,
                TierBackends::new(),
                MeshOptions::default().with_router(false),
                shutdown.clone(),
            ),
        )
        .await
        .expect("mesh starts");
        barrier(&tb.bus).await;
        let client = tb.second_client().await;
        let bridge = bridge(client.clone()).await;
        let mut stage_tasks = watch::<TaskMessage>(&client, subject::TASKS_INCOMING).await;
        let mut results = watch::<Value>(&client, subject::RESULTS_ALL).await;
        let tool = GatewayTool::new(
            "slow_tool",
            "",
            object(json!({"type": "object"})),
            Dispatch::Pipeline {
                pipeline: "slow".try_into().expect("name"),
                stages: 1,
                timeout: Duration::from_secs(60),
            },
        )
        .expect("tool");
        let cancel = CancellationToken::new();
        let call = bridge.call(&tool, object(json!({"x": 1})), &no_progress, cancel.clone());
        let cancelled_at = Mutex::new(None);
        let canceller = async {
            let task = next("stage task", &mut stage_tasks).await;
            assert!(
                task.parent_task_id
                    .as_deref()
                    .is_some_and(|p| p.starts_with(&format!("{}.", bridge.gateway_id())))
            );
            *cancelled_at.lock().expect("lock") = Some(Instant::now());
            cancel.cancel();
            task
        };
        let (outcome, task) =
            within("call and cancel", futures::future::join(call, canceller)).await;
        assert_eq!(outcome, Err(CallError::Cancelled));
        let at = cancelled_at.lock().expect("lock").expect("cancelled");
        assert!(
            at.elapsed() < Duration::from_secs(5),
            "cancel was not prompt"
        );
        // The orchestrator got the cancel on loom.control.cancel.gw-<id>.<n> and ends
        // the goal FAILED (its final result carries task_id == goal_id).
        let goal_id = task.parent_task_id.clone().expect("goal id");
        let final_result = within("final result", async {
            loop {
                let Some(v) = results.next().await else {
                    panic!("result subscription closed");
                };
                if v["task_id"] == json!(goal_id) {
                    return v;
                }
            }
        })
        .await;
        assert_eq!(final_result["status"], json!("failed"), "{final_result}");
        assert_eq!(bridge.in_flight(), 0);
        bridge.close().await;
        shutdown.cancel();
        within("mesh stop", mesh.join()).await;
    }
);

// -------------------------------------------------------------------------------------------
// Against a scripted peer
// -------------------------------------------------------------------------------------------

on_both_buses!(
    timeout_names_tool_and_worker_and_cancels_the_task,
    |tb: TestBus| async move {
        let peer = tb.second_client().await;
        let mut tasks = watch::<TaskMessage>(&peer, subject::TASKS_INCOMING).await;
        let mut cancels = watch::<CancelRequest>(&peer, "loom.control.cancel.>").await;
        let bridge = bridge(tb.bus.clone()).await;
        let tool = worker_tool("summarizer", Duration::from_millis(300));
        let started = Instant::now();
        let err = within(
            "call",
            bridge.call(&tool, Map::new(), &no_progress, CancellationToken::new()),
        )
        .await
        .expect_err("no worker answers");
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert!(matches!(err, CallError::TimedOut { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "tool 'summarizer' timed out after 0.3s waiting for worker 'summarizer'"
        );
        let task = next("task", &mut tasks).await;
        let cancel = next("cancel request", &mut cancels).await;
        assert_eq!(cancel.task_id, task.task_id);
        assert_eq!(cancel.reason.as_deref(), Some("timed out"));
        assert_eq!(bridge.in_flight(), 0);
        // A late answer is dropped quietly; the bridge keeps serving.
        answer(&peer, &task, &json!({"task_id": task.task_id, "worker_type": "summarizer", "status": "completed", "output": {}})).await;
        bridge.close().await;
    }
);

on_both_buses!(
    client_cancel_stops_waiting_and_tells_the_mesh,
    |tb: TestBus| async move {
        let peer = tb.second_client().await;
        let mut tasks = watch::<TaskMessage>(&peer, subject::TASKS_INCOMING).await;
        let mut cancels = watch::<CancelRequest>(&peer, "loom.control.cancel.*").await;
        let bridge = bridge(tb.bus.clone()).await;
        let tool = worker_tool("summarizer", Duration::from_secs(60));
        let cancel = CancellationToken::new();
        let call = bridge.call(&tool, Map::new(), &no_progress, cancel.clone());
        let cancelled_at = Mutex::new(None);
        let canceller = async {
            let task = next("task", &mut tasks).await;
            *cancelled_at.lock().expect("lock") = Some(Instant::now());
            cancel.cancel();
            task
        };
        let (outcome, task) =
            within("call and cancel", futures::future::join(call, canceller)).await;
        assert_eq!(outcome, Err(CallError::Cancelled));
        let at = cancelled_at.lock().expect("lock").expect("cancelled");
        assert!(
            at.elapsed() < Duration::from_secs(3),
            "cancel was not prompt"
        );
        let request = next("cancel request", &mut cancels).await;
        assert_eq!(request.task_id, task.task_id);
        assert_eq!(request.reason.as_deref(), Some("client cancelled"));
        assert_eq!(bridge.in_flight(), 0);
        bridge.close().await;
    }
);

on_both_buses!(
    non_terminal_statuses_and_other_tasks_are_not_the_answer,
    |tb: TestBus| async move {
        let peer = tb.second_client().await;
        let mut tasks = watch::<TaskMessage>(&peer, subject::TASKS_INCOMING).await;
        let bridge = bridge(tb.bus.clone()).await;
        let tool = worker_tool("summarizer", Duration::from_secs(15));
        let call = bridge.call(
            &tool,
            object(json!({"text": "t"})),
            &no_progress,
            CancellationToken::new(),
        );
        let script = async {
            let task = next("task", &mut tasks).await;
            assert_eq!(task.model_tier, ModelTier::Standard);
            assert_eq!(task.payload, object(json!({"text": "t"})));
            let parent = task.parent_task_id.clone().expect("parent");
            assert!(
                parent.starts_with(&format!("{}.", bridge.gateway_id())),
                "{parent}"
            );
            let base = json!({"task_id": task.task_id, "worker_type": "summarizer"});
            let with = |extra: Value| {
                let mut v = base.clone();
                v.as_object_mut().expect("object").extend(object(extra));
                v
            };
            // Another task's result, garbage, a result without task_id, then progress
            // statuses: none of them ends the call.
            answer(&peer, &task, &json!({"task_id": "other", "worker_type": "x", "status": "completed", "output": {"wrong": true}})).await;
            let subject = task.result_subject().expect("subject");
            peer.publish(&subject, "not json".into())
                .await
                .expect("publish");
            answer(&peer, &task, &json!({"status": "completed"})).await;
            answer(
                &peer,
                &task,
                &with(json!({"status": "processing", "output": {"partial": true}})),
            )
            .await;
            answer(&peer, &task, &with(json!({"status": "pending"}))).await;
            answer(&peer, &task, &with(json!({"status": "retry"}))).await;
            answer(
                &peer,
                &task,
                &with(json!({"status": "completed", "output": {"done": true}})),
            )
            .await;
        };
        let (outcome, ()) = within("call", futures::future::join(call, script)).await;
        assert_eq!(outcome.map(Value::Object), Ok(json!({"done": true})));
        bridge.close().await;
    }
);

on_both_buses!(
    malformed_matching_result_is_reported_and_null_output_is_empty,
    |tb: TestBus| async move {
        let peer = tb.second_client().await;
        let mut tasks = watch::<TaskMessage>(&peer, subject::TASKS_INCOMING).await;
        let bridge = bridge(tb.bus.clone()).await;
        let tool = worker_tool("summarizer", Duration::from_secs(15));

        let call = bridge.call(&tool, Map::new(), &no_progress, CancellationToken::new());
        let script = async {
            let task = next("task", &mut tasks).await;
            // Right task id, but no worker_type and an unknown status.
            answer(
                &peer,
                &task,
                &json!({"task_id": task.task_id, "status": "exploded"}),
            )
            .await;
            task
        };
        let (outcome, task) = within("call", futures::future::join(call, script)).await;
        let err = outcome.expect_err("malformed");
        let CallError::Malformed { id, .. } = &err else {
            panic!("expected Malformed, got {err:?}");
        };
        assert_eq!(*id, task.task_id);
        assert!(
            err.to_string().starts_with("malformed result for '"),
            "{err}"
        );

        // A completed result with null output is `{}`; a FAILED one without text says so.
        for (status, extra, expect) in [
            ("completed", json!({"output": null}), Ok(Map::new())),
            (
                "failed",
                json!({"error": ""}),
                Err(CallError::Failed {
                    message: "Task failed with no error message".to_owned(),
                }),
            ),
        ] {
            let call = bridge.call(&tool, Map::new(), &no_progress, CancellationToken::new());
            let script = async {
                let task = next("task", &mut tasks).await;
                let mut body =
                    json!({"task_id": task.task_id, "worker_type": "summarizer", "status": status});
                body.as_object_mut()
                    .expect("object")
                    .extend(object(extra.clone()));
                answer(&peer, &task, &body).await;
            };
            let (outcome, ()) = within("call", futures::future::join(call, script)).await;
            assert_eq!(outcome, expect);
        }
        assert_eq!(bridge.in_flight(), 0);
        bridge.close().await;
    }
);

on_both_buses!(
    query_task_carries_the_fixed_action_and_tier_local,
    |tb: TestBus| async move {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("mcp.yaml");
        std::fs::write(
            &path,
            "name: g\ntools:\n  queries:\n    - backend: sqlite\n      actions: [search]\n      name_prefix: docs\n",
        )
        .expect("write");
        let catalog = Catalog::from_config(&load_gateway(&path).expect("config"));
        let search = catalog.get("docs_search").expect("tool");
        let peer = tb.second_client().await;
        let mut tasks = watch::<TaskMessage>(&peer, subject::TASKS_INCOMING).await;
        let bridge = bridge(tb.bus.clone()).await;
        let payload = search
            .prepare(object(json!({"query": "rust", "limit": 2})))
            .expect("valid");
        // Even a payload that skipped `prepare` gets the tool's action.
        let mut forged = payload.clone();
        forged.insert("action".into(), json!("get"));
        let call = bridge.call(search, forged, &no_progress, CancellationToken::new());
        let script = async {
            let task = next("task", &mut tasks).await;
            assert_eq!(task.worker_type, "docs_query");
            assert_eq!(task.model_tier, ModelTier::Local);
            assert_eq!(
                Value::Object(task.payload.clone()),
                json!({"action": "search", "query": "rust", "limit": 2})
            );
            let result = TaskResult::completed(&task, object(json!({"rows": [], "count": 0})));
            answer(&peer, &task, &serde_json::to_value(&result).expect("json")).await;
        };
        let (outcome, ()) = within("call", futures::future::join(call, script)).await;
        assert_eq!(
            outcome.map(Value::Object),
            Ok(json!({"rows": [], "count": 0}))
        );
        bridge.close().await;
    }
);

on_both_buses!(
    pipeline_goal_is_addressed_and_progress_never_goes_back,
    |tb: TestBus| async move {
        let peer = tb.second_client().await;
        let mut goals = watch::<OrchestratorGoal>(&peer, "loom.goals.p").await;
        let bridge = bridge(tb.bus.clone()).await;
        let tool = GatewayTool::new(
            "run_p",
            "",
            object(json!({"type": "object"})),
            Dispatch::Pipeline {
                pipeline: "p".try_into().expect("name"),
                stages: 3,
                timeout: Duration::from_secs(15),
            },
        )
        .expect("tool");
        let seen: Mutex<Vec<Progress>> = Mutex::new(Vec::new());
        let report = |p: Progress| seen.lock().expect("lock").push(p);
        let context = object(json!({"meta": {"author": "ann"}}));
        let call = bridge.call(&tool, context.clone(), &report, CancellationToken::new());
        let script = async {
            let goal = next("goal", &mut goals).await;
            assert_eq!(goal.instruction, "MCP tool call");
            assert_eq!(goal.context, context);
            assert!(
                goal.goal_id
                    .starts_with(&format!("{}.", bridge.gateway_id()))
            );
            let progress_subject = format!("loom.progress.{}", goal.goal_id);
            let results_subject = goal.result_subject().expect("subject");
            let progress = |stage: &str, status, done| {
                PipelineProgress::new(goal.goal_id.clone(), "p", stage, status, done, 3)
            };
            // A stage result on the goal's subject is not the answer.
            let stage = json!({"task_id": "stage-task", "parent_task_id": goal.goal_id, "worker_type": "w", "status": "completed", "output": {}});
            peer.publish_json(&results_subject, &stage)
                .await
                .expect("publish");
            for p in [
                progress("a", StageStatus::Completed, 1),
                progress("b", StageStatus::Completed, 2),
                // Out of order: never reported (MCP progress must increase).
                progress("a", StageStatus::Completed, 1),
                progress("c", StageStatus::Skipped, 3),
            ] {
                peer.publish_json(&progress_subject, &p)
                    .await
                    .expect("publish");
            }
            let last = json!({"task_id": goal.goal_id, "worker_type": "p", "status": "completed", "output": {"a": {"ok": true}}});
            peer.publish_json(&results_subject, &last)
                .await
                .expect("publish");
        };
        let (outcome, ()) = within("call", futures::future::join(call, script)).await;
        assert_eq!(outcome.map(Value::Object), Ok(json!({"a": {"ok": true}})));
        let seen = seen.into_inner().expect("lock");
        assert_eq!(
            seen,
            [
                Progress {
                    progress: 1.0,
                    total: Some(3.0),
                    message: Some("a".into())
                },
                Progress {
                    progress: 2.0,
                    total: Some(3.0),
                    message: Some("b".into())
                },
                Progress {
                    progress: 3.0,
                    total: Some(3.0),
                    message: Some("c (skipped)".into())
                },
            ]
        );
        bridge.close().await;
    }
);

on_both_buses!(
    pipeline_timeout_says_how_many_stages_finished,
    |tb: TestBus| async move {
        let peer = tb.second_client().await;
        let mut goals = watch::<OrchestratorGoal>(&peer, "loom.goals.p").await;
        let mut cancels = watch::<CancelRequest>(&peer, "loom.control.cancel.>").await;
        let bridge = bridge(tb.bus.clone()).await;
        let tool = GatewayTool::new(
            "run_p",
            "",
            object(json!({"type": "object"})),
            Dispatch::Pipeline {
                pipeline: "p".try_into().expect("name"),
                stages: 3,
                timeout: Duration::from_millis(1500),
            },
        )
        .expect("tool");
        let call = bridge.call(&tool, Map::new(), &no_progress, CancellationToken::new());
        let script = async {
            let goal = next("goal", &mut goals).await;
            let p =
                PipelineProgress::new(goal.goal_id.clone(), "p", "a", StageStatus::Completed, 1, 3);
            peer.publish_json(&format!("loom.progress.{}", goal.goal_id), &p)
                .await
                .expect("publish");
            goal
        };
        let (outcome, goal) = within("call", futures::future::join(call, script)).await;
        let err = outcome.expect_err("timed out");
        assert_eq!(
            err.to_string(),
            "tool 'run_p' timed out after 1.5s waiting for pipeline 'p' (1 of 3 stages finished)"
        );
        let cancel = next("cancel request", &mut cancels).await;
        assert_eq!(cancel.task_id, goal.goal_id);
        bridge.close().await;
    }
);

on_both_buses!(
    closed_bridge_fails_calls_at_once,
    |tb: TestBus| async move {
        let peer = tb.second_client().await;
        let mut tasks = watch::<TaskMessage>(&peer, subject::TASKS_INCOMING).await;
        let bridge = bridge(tb.bus.clone()).await;
        assert!(bridge.state().is_connected());
        let tool = worker_tool("summarizer", Duration::from_secs(30));
        // A call in flight when the bridge closes fails instead of waiting 30 s.
        let call = bridge.call(&tool, Map::new(), &no_progress, CancellationToken::new());
        let closer = async {
            next("task", &mut tasks).await;
            bridge.close().await;
        };
        let (outcome, ()) = within("call", futures::future::join(call, closer)).await;
        assert!(matches!(outcome, Err(CallError::Bus { .. })), "{outcome:?}");
        let started = Instant::now();
        let later = within(
            "call after close",
            bridge.call(&tool, Map::new(), &no_progress, CancellationToken::new()),
        )
        .await;
        assert!(matches!(later, Err(CallError::Bus { .. })), "{later:?}");
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(bridge.in_flight(), 0);
        if let Some(memory) = &tb.memory {
            // Closing removed the bridge's two subscriptions: only the peer's remain.
            assert_eq!(memory.subscription_count(), 1);
        }
    }
);

#[test]
fn the_status_set_is_what_the_tests_assume() {
    assert!(!TaskStatus::Processing.is_terminal());
    assert!(TaskStatus::Completed.is_terminal());
}
