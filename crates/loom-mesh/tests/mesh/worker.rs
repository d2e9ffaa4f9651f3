//! Worker lifecycle and built-in processor tests (mesh spec §18 items 39–43, 50–51,
//! §19 B3, B12, L3, L14). Bus tests run on the in-process bus and on a real nats-server.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use loom_bus::{Bus, BusExt, JsonMessages};
use loom_core::WorkerName;
use loom_core::config::{WorkerConfig, load_worker};
use loom_core::message::{
    CancelRequest, JsonObject, ModelTier, TaskMessage, TaskResult, TaskStatus, TokenUsage,
};
use loom_core::subject::CONTROL_RELOAD;
use loom_mesh::processors::{BuildError, build_processor};
use loom_mesh::worker::{
    ProcessError, ProcessOutput, Processor, ServeTiers, TaskContext, WorkerHandle, spawn_worker,
    worker_specs,
};
use loom_testkit::TempWorkspace;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::common::{TestBus, within};
use crate::on_both_buses;

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// A worker running on a test bus, and a subscription to every result.
struct Harness {
    tb: TestBus,
    ws: TempWorkspace,
    results: JsonMessages<TaskResult>,
    shutdown: CancellationToken,
    worker: Option<WorkerHandle>,
}

fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn load(ws: &TempWorkspace, yaml: &str) -> WorkerConfig {
    let path = ws.write("worker.yaml", yaml).expect("write worker yaml");
    load_worker(&path).unwrap_or_else(|e| panic!("invalid worker yaml: {e}"))
}

impl Harness {
    /// Starts the worker described by `yaml` with `processor`, or with the built-in
    /// processor the YAML names.
    async fn start(tb: TestBus, yaml: &str, processor: Option<Arc<dyn Processor>>) -> Harness {
        let ws = TempWorkspace::new().expect("workspace");
        Harness::start_in(tb, ws, yaml, processor).await
    }

    async fn start_in(
        tb: TestBus,
        ws: TempWorkspace,
        yaml: &str,
        processor: Option<Arc<dyn Processor>>,
    ) -> Harness {
        let config = load(&ws, yaml);
        let processor = match processor {
            Some(p) => p,
            None => build_processor(&config).unwrap_or_else(|e| panic!("build processor: {e}")),
        };
        let results = within(
            "results subscription",
            tb.bus.subscribe("loom.results.>", None),
        )
        .await
        .expect("subscribe to results")
        .json_messages::<TaskResult>();
        let shutdown = CancellationToken::new();
        let worker = within(
            "spawn worker",
            spawn_worker(
                tb.bus.clone(),
                config,
                processor,
                ServeTiers::All,
                4,
                shutdown.clone(),
            ),
        )
        .await
        .expect("spawn worker");
        Harness {
            tb,
            ws,
            results,
            shutdown,
            worker: Some(worker),
        }
    }

    fn bus(&self) -> &Arc<dyn Bus> {
        &self.tb.bus
    }

    async fn send(&self, subject: &str, task: &TaskMessage) {
        within("publish task", self.bus().publish_json(subject, task))
            .await
            .expect("publish task");
    }

    /// The next result for `task_id` and the subject it came on (other results skipped).
    async fn result_for(&mut self, task_id: &str) -> (String, TaskResult) {
        within(&format!("result of {task_id}"), async {
            loop {
                let (message, result) = self.results.next().await.expect("results stream ended");
                if result.task_id == task_id {
                    return (message.subject, result);
                }
            }
        })
        .await
    }

    async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(worker) = self.worker.take() {
            within("worker shutdown", worker.join()).await;
        }
    }
}

fn task(worker: &str, payload: Value) -> TaskMessage {
    TaskMessage::new(
        &WorkerName::try_from(worker).expect("worker name"),
        object(payload),
    )
}

fn usage_json(result: &TaskResult) -> String {
    serde_json::to_string(&result.token_usage).expect("token usage serialises")
}

/// What a [`Probe`] answers, given the task, its context and the call number (from 1).
type Behaviour =
    dyn Fn(&TaskMessage, &TaskContext, u32) -> Result<ProcessOutput, ProcessError> + Send + Sync;

/// A processor driven by a closure, counting its calls; `slow` tasks block until dropped.
struct Probe {
    calls: AtomicU32,
    started: Notify,
    reloads: AtomicU32,
    behave: Box<Behaviour>,
}

impl Probe {
    fn new(
        behave: impl Fn(&TaskMessage, &TaskContext, u32) -> Result<ProcessOutput, ProcessError>
        + Send
        + Sync
        + 'static,
    ) -> Arc<Probe> {
        Arc::new(Probe {
            calls: AtomicU32::new(0),
            started: Notify::new(),
            reloads: AtomicU32::new(0),
            behave: Box::new(behave),
        })
    }

    fn echo() -> Arc<Probe> {
        Probe::new(|task, _, _| {
            Ok(ProcessOutput::new(task.payload.clone()).with_model_used("probe"))
        })
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Processor for Probe {
    async fn process(
        &self,
        task: &TaskMessage,
        ctx: &TaskContext,
    ) -> Result<ProcessOutput, ProcessError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if task.payload.get("panic") == Some(&Value::Bool(true)) {
            panic!("probe panics on purpose");
        }
        if task.payload.get("slow") == Some(&Value::Bool(true)) {
            self.started.notify_one();
            // Ignores its cancel token on purpose: the worker must stop it anyway.
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        (self.behave)(task, ctx, call)
    }

    async fn on_reload(&self) {
        self.reloads.fetch_add(1, Ordering::SeqCst);
    }
}

const PROBE_YAML: &str = "name: probe\nworker_kind: processor\nprocessing_backend: echo\n";

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    within(what, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// Writes a `/bin/sh` script into the workspace and returns its path. Scripts run as
/// `["/bin/sh", path]`, so no file is executed right after being written (ETXTBSY).
fn script(ws: &TempWorkspace, name: &str, body: &str) -> PathBuf {
    ws.write(name, format!("#!/bin/sh\n{body}\n"))
        .expect("write script")
}

fn process_gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

async fn read_pid(path: &Path) -> u32 {
    within("the child's pid file", async {
        loop {
            if let Ok(text) = std::fs::read_to_string(path) {
                if let Ok(pid) = text.trim().parse() {
                    return pid;
                }
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

// ---------------------------------------------------------------------------------------------
// Lifecycle (§18 39–43)
// ---------------------------------------------------------------------------------------------

on_both_buses!(
    valid_input_completes_on_parent_or_default_subject,
    |tb: TestBus| async move {
        let mut h = Harness::start(
            tb,
            "name: echo\nworker_kind: processor\nprocessing_backend: echo\n",
            None,
        )
        .await;
        let with_parent = task("echo", json!({"text": "hi", "n": 2})).with_parent_task_id("p-39");
        h.send("loom.tasks.echo.local", &with_parent).await;
        let (subject, result) = h.result_for(&with_parent.task_id).await;
        assert_eq!(subject, "loom.results.p-39");
        assert_eq!(result.status, TaskStatus::Completed);
        assert_eq!(result.parent_task_id.as_deref(), Some("p-39"));
        assert_eq!(result.worker_type, "echo");
        assert_eq!(result.output, Some(object(json!({"text": "hi", "n": 2}))));
        assert_eq!(result.model_used.as_deref(), Some("echo"));
        assert_eq!(result.error, None);
        assert_eq!(
            usage_json(&result),
            r#"{"prompt_tokens":0,"completion_tokens":0}"#
        );

        let orphan = task("echo", json!({"x": 1}));
        h.send("loom.tasks.echo.standard", &orphan).await;
        let (subject, result) = h.result_for(&orphan.task_id).await;
        assert_eq!(subject, "loom.results.default");
        assert_eq!(result.status, TaskStatus::Completed);
        h.stop().await;
    }
);

on_both_buses!(
    input_contract_failure_never_calls_the_processor,
    |tb: TestBus| async move {
        let probe = Probe::echo();
        let yaml = format!(
            "{PROBE_YAML}input_schema:\n  type: object\n  required: [text]\n  properties:\n    text: {{type: string}}\n"
        );
        let mut h = Harness::start(tb, &yaml, Some(probe.clone())).await;
        let bad = task("probe", json!({"n": 1})).with_parent_task_id("p-40");
        h.send("loom.tasks.probe.local", &bad).await;
        let (_, result) = h.result_for(&bad.task_id).await;
        assert_eq!(result.status, TaskStatus::Failed);
        let error = result.error.clone().unwrap_or_default();
        assert!(error.starts_with("Input validation: "), "{error}");
        assert!(error.contains("missing required field 'text'"), "{error}");
        assert_eq!(probe.calls(), 0);
        assert_eq!(
            usage_json(&result),
            r#"{"prompt_tokens":0,"completion_tokens":0}"#
        );

        let good = task("probe", json!({"text": "ok"}));
        h.send("loom.tasks.probe.local", &good).await;
        assert_eq!(
            h.result_for(&good.task_id).await.1.status,
            TaskStatus::Completed
        );
        assert_eq!(probe.calls(), 1);
        h.stop().await;
    }
);

on_both_buses!(
    output_contract_failure_keeps_model_and_tokens,
    |tb: TestBus| async move {
        let probe = Probe::new(|_, _, _| {
            Ok(ProcessOutput::new(object(json!({"x": 1})))
                .with_model_used("m-41")
                .with_token_usage(TokenUsage::from_counts(5, 7)))
        });
        let yaml = format!("{PROBE_YAML}output_schema:\n  type: object\n  required: [summary]\n");
        let mut h = Harness::start(tb, &yaml, Some(probe)).await;
        let t = task("probe", json!({}));
        h.send("loom.tasks.probe.local", &t).await;
        let (_, result) = h.result_for(&t.task_id).await;
        assert_eq!(result.status, TaskStatus::Failed);
        let error = result.error.clone().unwrap_or_default();
        assert!(error.starts_with("Output validation: "), "{error}");
        assert!(error.contains("summary"), "{error}");
        assert_eq!(result.model_used.as_deref(), Some("m-41"));
        assert_eq!(
            usage_json(&result),
            r#"{"prompt_tokens":5,"completion_tokens":7}"#
        );
        assert_eq!(result.output, None);
        h.stop().await;
    }
);

on_both_buses!(
    processing_error_text_is_the_result_error,
    |tb: TestBus| async move {
        let probe = Probe::new(|_, _, _| {
            Err(ProcessError::fatal("backend exploded: 42").with_model_used("m-42"))
        });
        let mut h = Harness::start(tb, PROBE_YAML, Some(probe.clone())).await;
        let t = task("probe", json!({})).with_max_retries(2);
        h.send("loom.tasks.probe.local", &t).await;
        let (_, result) = h.result_for(&t.task_id).await;
        assert_eq!(result.status, TaskStatus::Failed);
        assert_eq!(result.error.as_deref(), Some("backend exploded: 42"));
        assert_eq!(result.model_used.as_deref(), Some("m-42"));
        assert_eq!(
            usage_json(&result),
            r#"{"prompt_tokens":0,"completion_tokens":0}"#
        );
        assert_eq!(probe.calls(), 1, "a fatal failure is never retried");
        h.stop().await;
    }
);

on_both_buses!(token_usage_always_has_both_keys, |tb: TestBus| async move {
    let probe = Probe::new(|task, _, _| {
        let usage: TokenUsage = [("completion_tokens", 4), ("cache_read_tokens", 9)]
            .into_iter()
            .collect();
        if task.payload.contains_key("fail") {
            Err(ProcessError::fatal("no").with_token_usage(usage))
        } else {
            Ok(ProcessOutput::new(JsonObject::new()).with_token_usage(usage))
        }
    });
    let mut h = Harness::start(tb, PROBE_YAML, Some(probe)).await;
    let ok = task("probe", json!({}));
    let bad = task("probe", json!({"fail": true}));
    h.send("loom.tasks.probe.local", &ok).await;
    h.send("loom.tasks.probe.local", &bad).await;
    for id in [&ok.task_id, &bad.task_id] {
        let (_, result) = h.result_for(id).await;
        assert_eq!(
            usage_json(&result),
            r#"{"prompt_tokens":0,"completion_tokens":4}"#
        );
    }
    h.stop().await;
});

// ---------------------------------------------------------------------------------------------
// Timeout, retries, cancel, panic, malformed tasks, tiers, reload
// ---------------------------------------------------------------------------------------------

on_both_buses!(worker_timeout_fails_the_task, |tb: TestBus| async move {
    let probe = Probe::echo();
    let yaml = format!("{PROBE_YAML}timeout_seconds: 0.3\n");
    let mut h = Harness::start(tb, &yaml, Some(probe)).await;
    let t = task("probe", json!({"slow": true})).with_parent_task_id("p-timeout");
    let started = std::time::Instant::now();
    h.send("loom.tasks.probe.local", &t).await;
    let (subject, result) = h.result_for(&t.task_id).await;
    assert_eq!(subject, "loom.results.p-timeout");
    assert_eq!(result.status, TaskStatus::Failed);
    assert_eq!(result.error.as_deref(), Some("task timed out after 0.3s"));
    assert!(
        result.processing_time_ms >= 300,
        "{}",
        result.processing_time_ms
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    h.stop().await;
});

on_both_buses!(
    retryable_failures_are_retried_up_to_max_retries,
    |tb: TestBus| async move {
        let probe = Probe::new(|task, _, call| {
            let succeed_on = task
                .payload
                .get("succeed_on")
                .and_then(Value::as_u64)
                .unwrap_or(u64::MAX);
            if u64::from(call) >= succeed_on {
                Ok(ProcessOutput::new(object(json!({"call": call}))))
            } else {
                Err(ProcessError::retryable("backend busy"))
            }
        });
        let mut h = Harness::start(tb, PROBE_YAML, Some(probe.clone())).await;

        let exhausted = task("probe", json!({})).with_max_retries(2);
        h.send("loom.tasks.probe.local", &exhausted).await;
        let (_, result) = h.result_for(&exhausted.task_id).await;
        assert_eq!(result.status, TaskStatus::Failed);
        assert_eq!(
            result.error.as_deref(),
            Some("backend busy (after 3 attempts)")
        );
        assert_eq!(probe.calls(), 3);

        let recovers = task("probe", json!({"succeed_on": 5})).with_max_retries(2);
        h.send("loom.tasks.probe.local", &recovers).await;
        let (_, result) = h.result_for(&recovers.task_id).await;
        assert_eq!(result.status, TaskStatus::Completed, "{:?}", result.error);
        assert_eq!(result.output, Some(object(json!({"call": 5}))));
        assert_eq!(probe.calls(), 5);

        let no_retries = task("probe", json!({})).with_max_retries(0);
        h.send("loom.tasks.probe.local", &no_retries).await;
        let (_, result) = h.result_for(&no_retries.task_id).await;
        assert_eq!(result.error.as_deref(), Some("backend busy"));
        assert_eq!(probe.calls(), 6);
        h.stop().await;
    }
);

on_both_buses!(
    cancel_request_stops_a_task_in_flight,
    |tb: TestBus| async move {
        let probe = Probe::echo();
        let mut h = Harness::start(tb, PROBE_YAML, Some(probe.clone())).await;
        let t = task("probe", json!({"slow": true})).with_parent_task_id("p-cancel");
        h.send("loom.tasks.probe.local", &t).await;
        within("processor start", probe.started.notified()).await;
        let cancel = CancelRequest::new(&t.task_id).with_reason("client cancelled");
        let subject = cancel.subject().expect("cancel subject");
        within("publish cancel", h.bus().publish_json(&subject, &cancel))
            .await
            .expect("publish cancel");
        let (_, result) = h.result_for(&t.task_id).await;
        assert_eq!(result.status, TaskStatus::Failed);
        assert_eq!(
            result.error.as_deref(),
            Some("task cancelled: client cancelled")
        );

        // The worker still serves.
        let next = task("probe", json!({"after": "cancel"}));
        h.send("loom.tasks.probe.local", &next).await;
        assert_eq!(
            h.result_for(&next.task_id).await.1.status,
            TaskStatus::Completed
        );
        h.stop().await;
    }
);

on_both_buses!(
    cancel_kills_a_running_subprocess,
    |tb: TestBus| async move {
        let ws = TempWorkspace::new().expect("workspace");
        let pid_file = ws.join("child.pid");
        let path = script(
            &ws,
            "sleeper.sh",
            &format!("echo $$ > '{}'\nexec sleep 30", pid_file.display()),
        );
        let yaml = format!(
            "name: sleeper\nworker_kind: processor\nprocessing_backend: subprocess\nbackend_config:\n  command: [/bin/sh, '{}']\n",
            path.display()
        );
        let mut h = Harness::start_in(tb, ws, &yaml, None).await;
        let t = task("sleeper", json!({}));
        h.send("loom.tasks.sleeper.local", &t).await;
        let pid = read_pid(&pid_file).await;
        assert!(!process_gone(pid), "the child runs");
        let cancel = CancelRequest::new(&t.task_id);
        within(
            "publish cancel",
            h.bus()
                .publish_json(&cancel.subject().expect("subject"), &cancel),
        )
        .await
        .expect("publish cancel");
        let (_, result) = h.result_for(&t.task_id).await;
        assert_eq!(result.status, TaskStatus::Failed);
        assert_eq!(result.error.as_deref(), Some("task cancelled"));
        wait_for("the child to be killed and reaped", || process_gone(pid)).await;
        h.stop().await;
    }
);

on_both_buses!(
    panicking_processor_fails_the_task_and_the_worker_keeps_serving,
    |tb: TestBus| async move {
        let probe = Probe::echo();
        let mut h = Harness::start(tb, PROBE_YAML, Some(probe)).await;
        let boom = task("probe", json!({"panic": true}));
        h.send("loom.tasks.probe.local", &boom).await;
        let (_, result) = h.result_for(&boom.task_id).await;
        assert_eq!(result.status, TaskStatus::Failed);
        assert_eq!(
            result.error.as_deref(),
            Some("internal error: processor panicked")
        );
        let fine = task("probe", json!({"ok": true}));
        h.send("loom.tasks.probe.local", &fine).await;
        assert_eq!(
            h.result_for(&fine.task_id).await.1.status,
            TaskStatus::Completed
        );
        h.stop().await;
    }
);

on_both_buses!(
    malformed_task_with_an_id_is_answered_failed,
    |tb: TestBus| async move {
        let mut h = Harness::start(
            tb,
            "name: echo\nworker_kind: processor\nprocessing_backend: echo\n",
            None,
        )
        .await;
        let raw = json!({"task_id": "bad-1", "parent_task_id": "p-bad", "worker_type": "echo", "payload": "not an object"});
        within(
            "publish malformed",
            h.bus().publish_json("loom.tasks.echo.local", &raw),
        )
        .await
        .expect("publish");
        let (subject, result) = h.result_for("bad-1").await;
        assert_eq!(subject, "loom.results.p-bad");
        assert_eq!(result.status, TaskStatus::Failed);
        assert_eq!(result.worker_type, "echo");
        let error = result.error.unwrap_or_default();
        assert!(error.starts_with("invalid task message: "), "{error}");
        // Garbage without an id is dropped, and the worker goes on.
        within(
            "publish garbage",
            h.bus().publish("loom.tasks.echo.local", "not json".into()),
        )
        .await
        .expect("publish");
        let ok = task("echo", json!({}));
        h.send("loom.tasks.echo.local", &ok).await;
        assert_eq!(
            h.result_for(&ok.task_id).await.1.status,
            TaskStatus::Completed
        );
        h.stop().await;
    }
);

on_both_buses!(
    processor_serves_every_tier_and_trusts_the_subject_tier,
    |tb: TestBus| async move {
        let probe = Probe::new(|task, ctx, _| {
            Ok(ProcessOutput::new(object(
                json!({"ctx_tier": ctx.tier, "task_tier": task.model_tier}),
            )))
        });
        let mut h = Harness::start(tb, PROBE_YAML, Some(probe)).await;
        for (subject, tier) in [
            ("loom.tasks.probe.local", "local"),
            ("loom.tasks.probe.frontier", "frontier"),
        ] {
            // The message asks for `standard`; the subject (a router override) wins (B3).
            let t = task("probe", json!({})).with_model_tier(ModelTier::Standard);
            h.send(subject, &t).await;
            let (_, result) = h.result_for(&t.task_id).await;
            assert_eq!(result.status, TaskStatus::Completed, "{subject}");
            assert_eq!(
                result.output,
                Some(object(json!({"ctx_tier": tier, "task_tier": tier})))
            );
        }
        h.stop().await;
    }
);

on_both_buses!(
    reload_rereads_contracts_and_keeps_the_old_config_when_invalid,
    |tb: TestBus| async move {
        let probe = Probe::echo();
        let mut h = Harness::start(tb, PROBE_YAML, Some(probe.clone())).await;
        let first = task("probe", json!({}));
        h.send("loom.tasks.probe.local", &first).await;
        assert_eq!(
            h.result_for(&first.task_id).await.1.status,
            TaskStatus::Completed
        );

        h.ws.write(
            "worker.yaml",
            format!("{PROBE_YAML}input_schema:\n  type: object\n  required: [text]\n"),
        )
        .expect("rewrite yaml");
        within(
            "publish reload",
            h.bus()
                .publish_json(CONTROL_RELOAD, &json!({"action": "reload"})),
        )
        .await
        .expect("publish reload");
        wait_for("first reload", || probe.reloads.load(Ordering::SeqCst) == 1).await;
        let missing = task("probe", json!({}));
        h.send("loom.tasks.probe.local", &missing).await;
        let error = h
            .result_for(&missing.task_id)
            .await
            .1
            .error
            .unwrap_or_default();
        assert!(error.starts_with("Input validation: "), "{error}");

        h.ws.write("worker.yaml", "name: Probe\nworker_kind: processor\n")
            .expect("break yaml");
        within(
            "publish reload",
            h.bus()
                .publish_json(CONTROL_RELOAD, &json!({"action": "reload"})),
        )
        .await
        .expect("publish reload");
        wait_for("second reload", || {
            probe.reloads.load(Ordering::SeqCst) == 2
        })
        .await;
        let still_checked = task("probe", json!({}));
        h.send("loom.tasks.probe.local", &still_checked).await;
        let error = h
            .result_for(&still_checked.task_id)
            .await
            .1
            .error
            .unwrap_or_default();
        assert!(
            error.starts_with("Input validation: "),
            "old config kept: {error}"
        );
        h.stop().await;
    }
);

// ---------------------------------------------------------------------------------------------
// Built-in processors
// ---------------------------------------------------------------------------------------------

on_both_buses!(
    text_stats_matches_the_python_peer,
    |tb: TestBus| async move {
        let mut h = Harness::start(
            tb,
            "name: text_stats\nworker_kind: processor\nprocessing_backend: text_stats\n",
            None,
        )
        .await;
        let cases = [
            (
                json!({"text": "Hello wörld  👋\tok"}),
                r#"{"reversed":"ko\t👋  dlröw olleH","word_count":4,"char_count":17}"#,
            ),
            (
                json!({"text": "  "}),
                r#"{"reversed":"  ","word_count":0,"char_count":2}"#,
            ),
            (
                json!({}),
                r#"{"reversed":"","word_count":0,"char_count":0}"#,
            ),
            (
                json!({"text": 12345}),
                r#"{"reversed":"54321","word_count":1,"char_count":5}"#,
            ),
            (
                json!({"text": null}),
                r#"{"reversed":"enoN","word_count":1,"char_count":4}"#,
            ),
            (
                json!({"text": ["a", 1]}),
                r#"{"reversed":"]1 ,'a'[","word_count":2,"char_count":8}"#,
            ),
        ];
        for (payload, want) in cases {
            let t = task("text_stats", payload.clone());
            h.send("loom.tasks.text_stats.local", &t).await;
            let (_, result) = h.result_for(&t.task_id).await;
            assert_eq!(result.status, TaskStatus::Completed);
            assert_eq!(result.model_used.as_deref(), Some("text_stats"));
            let output =
                serde_json::to_string(&result.output.expect("output")).expect("serialises");
            assert_eq!(output, want, "{payload}");
        }
        h.stop().await;
    }
);

fn subprocess_yaml(name: &str, backend_config: &str) -> String {
    format!(
        "name: {name}\nworker_kind: processor\nprocessing_backend: subprocess\nbackend_config:\n{backend_config}"
    )
}

on_both_buses!(
    subprocess_json_stdio_round_trips_the_payload,
    |tb: TestBus| async move {
        let yaml = subprocess_yaml("tool", "  command: [cat]\n");
        let mut h = Harness::start(tb, &yaml, None).await;
        let t = task(
            "tool",
            json!({"text": "héllo", "n": [1, 2], "nested": {"a": null}}),
        );
        h.send("loom.tasks.tool.local", &t).await;
        let (_, result) = h.result_for(&t.task_id).await;
        assert_eq!(result.status, TaskStatus::Completed, "{:?}", result.error);
        assert_eq!(result.output.as_ref(), Some(&t.payload));
        assert_eq!(result.model_used.as_deref(), Some("cat"));
        h.stop().await;
    }
);

on_both_buses!(
    subprocess_json_stdio_extracts_a_key_into_a_target,
    |tb: TestBus| async move {
        let ws = TempWorkspace::new().expect("workspace");
        let path = script(
            &ws,
            "picker.sh",
            "cat > /dev/null\necho '{\"result\": {\"ok\": true}, \"other\": 1}'",
        );
        let yaml = subprocess_yaml(
            "picker",
            &format!(
                "  command: [/bin/sh, '{}']\n  model_used: picker-v1\n  output_mapping: {{extract_key: result, target: data}}\n",
                path.display()
            ),
        );
        let mut h = Harness::start_in(tb, ws, &yaml, None).await;
        let t = task("picker", json!({}));
        h.send("loom.tasks.picker.local", &t).await;
        let (_, result) = h.result_for(&t.task_id).await;
        assert_eq!(
            result.output,
            Some(object(json!({"data": {"ok": true}}))),
            "{:?}",
            result.error
        );
        assert_eq!(result.model_used.as_deref(), Some("picker-v1"));
        h.stop().await;
    }
);

on_both_buses!(
    subprocess_nonzero_exit_reports_code_and_stderr_tail,
    |tb: TestBus| async move {
        let ws = TempWorkspace::new().expect("workspace");
        let path = script(
            &ws,
            "fails.sh",
            "cat > /dev/null\ni=0\nwhile [ $i -lt 300 ]; do echo \"noise line $i\" >&2; i=$((i+1)); done\necho FINAL-LINE >&2\nexit 3",
        );
        let yaml = subprocess_yaml(
            "fails",
            &format!("  command: [/bin/sh, '{}']\n", path.display()),
        );
        let mut h = Harness::start_in(tb, ws, &yaml, None).await;
        let t = task("fails", json!({}));
        h.send("loom.tasks.fails.local", &t).await;
        let (_, result) = h.result_for(&t.task_id).await;
        assert_eq!(result.status, TaskStatus::Failed);
        let error = result.error.unwrap_or_default();
        assert!(
            error.starts_with("command '/bin/sh' exited with code 3: …"),
            "{error}"
        );
        assert!(error.ends_with("FINAL-LINE"), "the tail is kept: {error}");
        assert!(!error.contains("noise line 0\n"), "the head is dropped");
        assert!(error.len() < 2200, "about 2 KiB of stderr: {}", error.len());
        h.stop().await;
    }
);

on_both_buses!(
    subprocess_non_json_stdout_names_the_problem,
    |tb: TestBus| async move {
        let ws = TempWorkspace::new().expect("workspace");
        let path = script(&ws, "chatty.sh", "cat > /dev/null\necho 'hello, not json'");
        let yaml = subprocess_yaml(
            "chatty",
            &format!("  command: [/bin/sh, '{}']\n", path.display()),
        );
        let mut h = Harness::start_in(tb, ws, &yaml, None).await;
        let t = task("chatty", json!({}));
        h.send("loom.tasks.chatty.local", &t).await;
        let (_, result) = h.result_for(&t.task_id).await;
        assert_eq!(result.status, TaskStatus::Failed);
        let error = result.error.unwrap_or_default();
        assert!(error.contains("is not valid JSON"), "{error}");
        assert!(error.contains("hello, not json"), "{error}");
        h.stop().await;
    }
);

on_both_buses!(
    subprocess_timeout_kills_the_child_and_keeps_stderr,
    |tb: TestBus| async move {
        let ws = TempWorkspace::new().expect("workspace");
        let pid_file = ws.join("child.pid");
        let path = script(
            &ws,
            "hangs.sh",
            &format!(
                "echo $$ > '{}'\necho working >&2\nexec sleep 30",
                pid_file.display()
            ),
        );
        let yaml = subprocess_yaml(
            "hangs",
            &format!(
                "  command: [/bin/sh, '{}']\n  subprocess_timeout: 0.5\n",
                path.display()
            ),
        );
        let mut h = Harness::start_in(tb, ws, &yaml, None).await;
        let t = task("hangs", json!({}));
        h.send("loom.tasks.hangs.local", &t).await;
        let pid = read_pid(&pid_file).await;
        let (_, result) = h.result_for(&t.task_id).await;
        assert_eq!(result.status, TaskStatus::Failed);
        assert_eq!(
            result.error.as_deref(),
            Some("command '/bin/sh' timed out after 0.5s: working")
        );
        wait_for("the child to be killed and reaped", || process_gone(pid)).await;
        h.stop().await;
    }
);

on_both_buses!(
    subprocess_payload_arguments_are_never_options,
    |tb: TestBus| async move {
        // `cat -- --help` reads a file named "--help" instead of printing its help.
        let yaml = subprocess_yaml(
            "reader",
            "  command: [cat]\n  io_mode: args_stdout\n  input_mapping:\n    positional: [{field: file}]\n",
        );
        let mut h = Harness::start(tb, &yaml, None).await;
        let t = task("reader", json!({"file": "--help"}));
        h.send("loom.tasks.reader.local", &t).await;
        let (_, result) = h.result_for(&t.task_id).await;
        assert_eq!(result.status, TaskStatus::Failed);
        let error = result.error.unwrap_or_default();
        assert!(
            error.contains("--help: No such file or directory"),
            "{error}"
        );
        assert!(!error.to_lowercase().contains("usage"), "{error}");
        h.stop().await;
    }
);

on_both_buses!(
    subprocess_args_arrive_after_end_of_options,
    |tb: TestBus| async move {
        let ws = TempWorkspace::new().expect("workspace");
        let path = script(&ws, "args.sh", "for a in \"$@\"; do echo \"arg:$a\"; done");
        let yaml = subprocess_yaml(
            "args",
            &format!(
                "  command: [/bin/sh, '{}']\n  io_mode: args_stdout\n  input_mapping:\n    positional: [{{field: file}}]\n    flags: [{{flag: --count, field: n}}, {{flag: -v, field: verbose, is_boolean: true}}]\n  output_mapping: {{parse: lines, stdout_field: argv}}\n",
                path.display()
            ),
        );
        let mut h = Harness::start_in(tb, ws, &yaml, None).await;
        let t = task("args", json!({"file": "-rf", "n": 3, "verbose": false}));
        h.send("loom.tasks.args.local", &t).await;
        let (_, result) = h.result_for(&t.task_id).await;
        assert_eq!(
            result.output,
            Some(object(
                json!({"argv": ["arg:--count", "arg:3", "arg:--", "arg:-rf"]})
            )),
            "{:?}",
            result.error
        );
        h.stop().await;
    }
);

on_both_buses!(
    subprocess_environment_is_an_allow_list,
    |tb: TestBus| async move {
        let yaml = subprocess_yaml(
            "envy",
            "  command: [env]\n  io_mode: stdin_stdout\n  output_mapping: {parse: lines}\n  inherit_env: [CARGO_PKG_NAME]\n  env:\n    GREETING: 'hi-${payload.who}-${payload.n}'\n",
        );
        let mut h = Harness::start(tb, &yaml, None).await;
        let t = task("envy", json!({"who": "bob", "n": 3}));
        h.send("loom.tasks.envy.local", &t).await;
        let (_, result) = h.result_for(&t.task_id).await;
        let output = result
            .output
            .unwrap_or_else(|| panic!("failed: {:?}", result.error));
        let lines: Vec<String> = output["output"]
            .as_array()
            .expect("lines")
            .iter()
            .map(|l| l.as_str().unwrap_or_default().to_owned())
            .collect();
        let names: Vec<&str> = lines
            .iter()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k))
            .collect();
        for name in &names {
            assert!(
                ["PATH", "HOME", "LANG", "CARGO_PKG_NAME", "GREETING"].contains(name),
                "leaked {name}"
            );
        }
        assert!(lines.contains(&"GREETING=hi-bob-3".to_owned()), "{lines:?}");
        assert_eq!(
            names.contains(&"CARGO_PKG_NAME"),
            std::env::var_os("CARGO_PKG_NAME").is_some()
        );
        assert_eq!(names.contains(&"PATH"), std::env::var_os("PATH").is_some());
        h.stop().await;
    }
);

on_both_buses!(
    subprocess_file_file_writes_and_reads_files,
    |tb: TestBus| async move {
        let yaml = subprocess_yaml(
            "copier",
            "  command: [cp]\n  io_mode: file_file\n  input_mapping: {args_template: ['{input}', '{output}'], input_extension: .txt}\n  output_mapping: {read_mode: binary, output_field: data}\n",
        );
        let mut h = Harness::start(tb, &yaml, None).await;
        let t = task("copier", json!({"content": "foobar"}));
        h.send("loom.tasks.copier.local", &t).await;
        let (_, result) = h.result_for(&t.task_id).await;
        assert_eq!(
            result.output,
            Some(object(json!({"data": "Zm9vYmFy"}))),
            "{:?}",
            result.error
        );
        h.stop().await;
    }
);

// ---------------------------------------------------------------------------------------------
// Building processors and specs (no bus)
// ---------------------------------------------------------------------------------------------

fn build_error(yaml: &str) -> BuildError {
    let ws = TempWorkspace::new().expect("workspace");
    match build_processor(&load(&ws, yaml)) {
        Ok(_) => panic!("built a processor from:\n{yaml}"),
        Err(e) => e,
    }
}

#[test]
fn build_processor_explains_unknown_and_python_backends() {
    let e = build_error("name: x\nworker_kind: processor\nprocessing_backend: nope\n");
    assert_eq!(
        e.to_string(),
        "unknown processing_backend 'nope' (built-in: echo, text_stats, subprocess, sqlite, duckdb)"
    );
    let e = build_error(
        "name: x\nworker_kind: processor\nprocessing_backend: peer_backend.TextStatsBackend\n",
    );
    assert!(
        e.to_string()
            .contains("is a Python class path, which cannot be loaded in Rust"),
        "{e}"
    );
    let e = build_error("name: x\nsystem_prompt: hi\n");
    assert!(matches!(e, BuildError::NotAProcessor { .. }), "{e}");
    let e = build_error(&subprocess_yaml(
        "x",
        "  command: ['sh', '-c', 'rm -rf /; echo']\n",
    ));
    assert!(e.to_string().contains("shell metacharacter ';'"), "{e}");
    let e = build_error(
        "name: x\nworker_kind: processor\nprocessing_backend: echo\nbackend_config: {colour: red}\n",
    );
    assert!(
        e.to_string()
            .contains("unknown key 'colour' (valid: model_used)"),
        "{e}"
    );
}

#[test]
fn specs_use_the_cli_subjects_and_queue_groups() {
    let ws = TempWorkspace::new().expect("workspace");
    let processor = load(
        &ws,
        "name: echo\nworker_kind: processor\nprocessing_backend: echo\n",
    );
    let specs = worker_specs(&processor, &ServeTiers::default_for(&processor), 3);
    assert_eq!(specs.len(), 1);
    assert_eq!(specs[0].subject, "loom.tasks.echo.*");
    assert_eq!(specs[0].queue_group.as_deref(), Some("processors-echo"));
    assert_eq!(specs[0].max_concurrent, 3);
    assert!(specs[0].listen_for_reload);

    let llm = load(
        &ws,
        "name: summarizer\nsystem_prompt: hi\ndefault_model_tier: local\n",
    );
    assert_eq!(
        ServeTiers::default_for(&llm),
        ServeTiers::one(ModelTier::Local)
    );
    let specs = worker_specs(
        &llm,
        &ServeTiers::Only(vec![
            ModelTier::Local,
            ModelTier::Frontier,
            ModelTier::Local,
        ]),
        1,
    );
    let got: Vec<(&str, &str, Option<&str>, bool)> = specs
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                s.subject.as_str(),
                s.queue_group.as_deref(),
                s.listen_for_reload,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "worker-summarizer-local",
                "loom.tasks.summarizer.local",
                Some("workers-summarizer"),
                true
            ),
            (
                "worker-summarizer-frontier",
                "loom.tasks.summarizer.frontier",
                Some("workers-summarizer"),
                false
            ),
        ]
    );
}
