//! LLM worker tests (mesh spec §6.3–§6.7, §18 items 44–49 and 55, §19 B3, B9, L11): an
//! LLM worker actor served by the HTTP LLM stand-in, on the in-process bus and on a real
//! nats-server.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use loom_bus::{BusExt, JsonMessages};
use loom_core::WorkerName;
use loom_core::config::{WorkerConfig, load_worker};
use loom_core::message::{JsonObject, ModelTier, TaskMessage, TaskResult, TaskStatus};
use loom_llm::backends::OpenAiSettings;
use loom_llm::tiers::settings_from_env;
use loom_llm::{
    BackendSettings, Jitter, Model, RetryPolicy, TierBackends, ToolError, ToolHost, ToolSpec,
};
use loom_mesh::llm_worker::LlmWorker;
use loom_mesh::worker::{ServeTiers, WorkerHandle, spawn_worker};
use loom_testkit::{LlmStandIn, RecordedRequest, Reply, TempWorkspace};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::common::{TestBus, within};
use crate::on_both_buses;

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

const WORKER: &str = "summarizer";

/// Model ids the backends are configured with (the stand-in echoes them back).
const OPENAI_MODEL: &str = "gpt-test";
const ANTHROPIC_MODEL: &str = "claude-test";

/// An LLM worker actor serving every tier, a results subscription, and the stand-in.
struct Harness {
    tb: TestBus,
    llm: LlmStandIn,
    results: JsonMessages<TaskResult>,
    shutdown: CancellationToken,
    worker: Option<WorkerHandle>,
}

impl Harness {
    /// Starts `processor` for `config` on `tb`, serving `loom.tasks.summarizer.{tier}` for
    /// every tier.
    async fn start(
        tb: TestBus,
        llm: LlmStandIn,
        config: WorkerConfig,
        processor: LlmWorker,
    ) -> Harness {
        let results = within(
            "results subscription",
            tb.bus.subscribe("loom.results.>", None),
        )
        .await
        .expect("subscribe to results")
        .json_messages::<TaskResult>();
        let shutdown = CancellationToken::new();
        let worker = within(
            "spawn llm worker",
            spawn_worker(
                tb.bus.clone(),
                config,
                Arc::new(processor),
                ServeTiers::Only(ModelTier::ALL.to_vec()),
                2,
                shutdown.clone(),
            ),
        )
        .await
        .expect("spawn llm worker");
        Harness {
            tb,
            llm,
            results,
            shutdown,
            worker: Some(worker),
        }
    }

    /// Publishes `task` on `loom.tasks.summarizer.{tier}` and waits for its result.
    async fn run(&mut self, tier: ModelTier, task: &TaskMessage) -> TaskResult {
        let subject = format!("loom.tasks.{WORKER}.{tier}");
        within("publish task", self.tb.bus.publish_json(&subject, task))
            .await
            .expect("publish task");
        within(&format!("result of {}", task.task_id), async {
            loop {
                let (_, result) = self.results.next().await.expect("results stream ended");
                if result.task_id == task.task_id {
                    return result;
                }
            }
        })
        .await
    }

    fn requests(&self) -> Vec<RecordedRequest> {
        self.llm.requests()
    }

    async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(worker) = self.worker.take() {
            within("worker shutdown", worker.join()).await;
        }
    }
}

fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn task(payload: Value) -> TaskMessage {
    TaskMessage::new(
        &WorkerName::try_from(WORKER).expect("worker name"),
        object(payload),
    )
}

fn load(ws: &TempWorkspace, yaml: &str) -> WorkerConfig {
    let path = ws.write("worker.yaml", yaml).expect("write worker yaml");
    load_worker(&path).unwrap_or_else(|e| panic!("invalid worker yaml: {e}"))
}

async fn stand_in() -> LlmStandIn {
    within("start LLM stand-in", LlmStandIn::start())
        .await
        .expect("start LLM stand-in")
}

/// Retries quickly, so a scripted 500 costs milliseconds.
fn tiny_retry() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(3)
        .with_base_delay(Duration::from_millis(1))
        .with_max_delay(Duration::from_millis(5))
        .with_jitter(Jitter::None)
}

/// An OpenAI-compatible backend at the stand-in.
fn openai(llm: &LlmStandIn) -> Arc<dyn Model> {
    Arc::new(
        OpenAiSettings::new(llm.base_url(), OPENAI_MODEL)
            .with_retry(tiny_retry())
            .build()
            .expect("openai backend"),
    )
}

/// An Anthropic backend at the stand-in, configured the way the CLI does (from the
/// environment), with a quick retry policy.
fn anthropic(llm: &LlmStandIn) -> Arc<dyn Model> {
    let env: HashMap<&str, String> = HashMap::from([
        ("ANTHROPIC_API_KEY", "test-key".to_owned()),
        ("ANTHROPIC_BASE_URL", llm.base_url()),
        ("LOOM_STANDARD_MODEL", ANTHROPIC_MODEL.to_owned()),
    ]);
    let settings = settings_from_env(|key| env.get(key).cloned()).expect("anthropic settings");
    let standard = settings
        .into_iter()
        .find_map(|(tier, s)| match (tier, s) {
            (ModelTier::Standard, BackendSettings::Anthropic(s)) => Some(s),
            _ => None,
        })
        .expect("standard tier is anthropic");
    BackendSettings::Anthropic(standard.with_retry(tiny_retry()))
        .build()
        .expect("anthropic backend")
}

fn local(model: Arc<dyn Model>) -> TierBackends {
    TierBackends::new().with(ModelTier::Local, model)
}

const BASIC: &str = "name: summarizer\nsystem_prompt: Summarise as JSON.\n";

fn assert_failed(result: &TaskResult, prefix: &str) {
    assert_eq!(result.status, TaskStatus::Failed, "{result:?}");
    let error = result.error.as_deref().unwrap_or_default();
    assert!(
        error.starts_with(prefix),
        "error {error:?} should start with {prefix:?}"
    );
}

fn output(result: &TaskResult) -> Value {
    assert_eq!(result.status, TaskStatus::Completed, "{result:?}");
    Value::Object(result.output.clone().expect("completed result has output"))
}

fn tokens(result: &TaskResult) -> (i64, i64) {
    (
        result.token_usage.prompt_tokens(),
        result.token_usage.completion_tokens(),
    )
}

/// A worker whose prompt has two knowledge sources and a folder silo.
fn knowledge_workspace() -> (TempWorkspace, String) {
    let ws = TempWorkspace::new().expect("workspace");
    ws.write("knowledge/glossary.md", "Loom: an actor mesh.")
        .expect("write");
    ws.write(
        "knowledge/examples.yaml",
        "- input: hi\n  output: '{\"summary\": \"hi\"}'\n",
    )
    .expect("write");
    ws.write("guides/intro.md", "# Intro\nBe brief.")
        .expect("write");
    ws.write("guides/rules/r1.txt", "Rule 1: JSON only.")
        .expect("write");
    ws.write("guides/draft.tmp.md", "not yet").expect("write");
    ws.write("guides/logo.png", "PNG").expect("write");
    ws.write("guides/.siloignore", "# work in progress\n*.tmp.md\n")
        .expect("write");
    let yaml = "name: summarizer\n\
                system_prompt: Summarise as JSON.\n\
                max_output_tokens: 321\n\
                knowledge_sources:\n  - {path: knowledge/glossary.md, inject_as: reference}\n  - {path: knowledge/examples.yaml, inject_as: few_shot}\n  - {path: knowledge/missing.md, inject_as: reference}\n\
                knowledge_silos:\n  - {name: guides, type: folder, path: guides}\n"
        .to_owned();
    (ws, yaml)
}

/// The system prompt [`knowledge_workspace`] yields: sources, then the silo, then the prompt.
const KNOWLEDGE_PROMPT: &str = "\n--- Reference: glossary.md ---\nLoom: an actor mesh.\n\
\n--- Few-Shot Examples ---\nExample 1:\nInput: hi\nOutput: {\"summary\": \"hi\"}\n\
\n--- Knowledge Silo: guides ---\n## intro.md\n# Intro\nBe brief.\n\n## rules/r1.txt\nRule 1: JSON only.\n\
\nSummarise as JSON.";

// ---------------------------------------------------------------------------------------------
// End to end
// ---------------------------------------------------------------------------------------------

on_both_buses!(
    openai_shape_completes_with_knowledge_prompt_and_unescaped_payload,
    |tb: TestBus| async move {
        let llm = stand_in().await;
        llm.push(Reply::text("Here you go:\n```json\n{\"summary\": \"ok\"}\n```").usage(12, 7));
        let (ws, yaml) = knowledge_workspace();
        let config = load(&ws, &yaml);
        let worker = LlmWorker::new(config.clone(), local(openai(&llm))).expect("llm worker");
        let mut h = Harness::start(tb, llm, config, worker).await;

        let result = h.run(ModelTier::Local, &task(json!({"text": "سلام"}))).await;
        assert_eq!(output(&result), json!({"summary": "ok"}));
        assert_eq!(result.model_used.as_deref(), Some(OPENAI_MODEL));
        assert_eq!(tokens(&result), (12, 7));

        let requests = h.requests();
        assert_eq!(requests.len(), 1);
        let body = &requests[0].body;
        assert_eq!(requests[0].path, "/v1/chat/completions");
        assert_eq!(
            body["messages"][0],
            json!({"role": "system", "content": KNOWLEDGE_PROMPT})
        );
        assert_eq!(body["messages"][1]["role"], "user");
        // Pretty JSON with the Persian text as it is, not `\u0633…` escapes (§19 L11).
        assert_eq!(body["messages"][1]["content"], "{\n  \"text\": \"سلام\"\n}");
        assert_eq!(body["max_tokens"], 321);
        assert_eq!(body["temperature"], 0.0);
        assert!(body.get("tools").is_none(), "no tools on offer: {body}");
        h.stop().await;
    }
);

on_both_buses!(
    anthropic_shape_completes_with_knowledge_prompt,
    |tb: TestBus| async move {
        let llm = stand_in().await;
        llm.push(Reply::text("{\"summary\": \"انجام شد\"}").usage(30, 9));
        let (ws, yaml) = knowledge_workspace();
        let config = load(&ws, &yaml);
        let backends = TierBackends::new().with(ModelTier::Standard, anthropic(&llm));
        let worker = LlmWorker::new(config.clone(), backends).expect("llm worker");
        let mut h = Harness::start(tb, llm, config, worker).await;

        let result = h
            .run(ModelTier::Standard, &task(json!({"text": "سلام"})))
            .await;
        assert_eq!(output(&result), json!({"summary": "انجام شد"}));
        assert_eq!(result.model_used.as_deref(), Some(ANTHROPIC_MODEL));
        assert_eq!(tokens(&result), (30, 9));

        let requests = h.requests();
        assert_eq!(requests.len(), 1);
        let body = &requests[0].body;
        assert_eq!(requests[0].path, "/v1/messages");
        assert_eq!(body["system"], KNOWLEDGE_PROMPT);
        assert_eq!(
            body["messages"],
            json!([{"role": "user", "content": "{\n  \"text\": \"سلام\"\n}"}])
        );
        assert_eq!(body["max_tokens"], 321);
        assert_eq!(body["temperature"], 0.0);
        h.stop().await;
    }
);

on_both_buses!(
    missing_backend_for_subject_tier_fails,
    |tb: TestBus| async move {
        let llm = stand_in().await;
        let ws = TempWorkspace::new().expect("workspace");
        let config = load(&ws, BASIC);
        let worker = LlmWorker::new(config.clone(), local(openai(&llm))).expect("llm worker");
        let mut h = Harness::start(tb, llm, config, worker).await;

        let result = h
            .run(ModelTier::Frontier, &task(json!({"text": "x"})))
            .await;
        assert_failed(&result, "no backend for tier: frontier");
        assert!(h.requests().is_empty());
        h.stop().await;
    }
);

on_both_buses!(
    subject_tier_wins_over_message_model_tier,
    |tb: TestBus| async move {
        let llm = stand_in().await;
        llm.push(Reply::text("{\"tier\": \"local\"}"));
        let ws = TempWorkspace::new().expect("workspace");
        let config = load(&ws, BASIC);
        // Only `local` has a backend; the message still says `standard` (a router override
        // that changed only the subject, §19 B3).
        let worker = LlmWorker::new(config.clone(), local(openai(&llm))).expect("llm worker");
        let mut h = Harness::start(tb, llm, config, worker).await;

        let message = task(json!({"text": "x"})).with_model_tier(ModelTier::Standard);
        let result = h.run(ModelTier::Local, &message).await;
        assert_eq!(output(&result), json!({"tier": "local"}));
        assert_eq!(h.requests().len(), 1);
        h.stop().await;
    }
);

on_both_buses!(non_json_reply_fails, |tb: TestBus| async move {
    let llm = stand_in().await;
    llm.push(Reply::text("Sorry, I cannot summarise that.").usage(4, 3));
    let ws = TempWorkspace::new().expect("workspace");
    let config = load(&ws, BASIC);
    let worker = LlmWorker::new(config.clone(), local(openai(&llm))).expect("llm worker");
    let mut h = Harness::start(tb, llm, config, worker).await;

    let result = h.run(ModelTier::Local, &task(json!({"text": "x"}))).await;
    assert_failed(&result, "LLM returned non-JSON");
    assert_eq!(result.model_used.as_deref(), Some(OPENAI_MODEL));
    assert_eq!(tokens(&result), (4, 3));
    h.stop().await;
});

on_both_buses!(
    json_array_reply_fails_as_not_an_object,
    |tb: TestBus| async move {
        let llm = stand_in().await;
        llm.push(Reply::text("[{\"summary\": \"a\"}, {\"summary\": \"b\"}]"));
        let ws = TempWorkspace::new().expect("workspace");
        let config = load(&ws, BASIC);
        let worker = LlmWorker::new(config.clone(), local(openai(&llm))).expect("llm worker");
        let mut h = Harness::start(tb, llm, config, worker).await;

        let result = h.run(ModelTier::Local, &task(json!({"text": "x"}))).await;
        assert_failed(
            &result,
            "LLM returned JSON that is not an object (an array)",
        );
        h.stop().await;
    }
);

/// A tool host with one tool, `lookup`, answering `{"value": 42}` and recording calls.
#[derive(Default)]
struct LookupHost {
    calls: Mutex<Vec<Value>>,
}

#[async_trait]
impl ToolHost for LookupHost {
    async fn list_tools(&self) -> Result<Vec<ToolSpec>, ToolError> {
        Ok(vec![ToolSpec::new(
            "lookup",
            "Looks a key up.",
            json!({"type": "object", "properties": {"key": {"type": "string"}}}),
        )])
    }

    async fn call_tool(&self, name: &str, arguments: Value) -> Result<String, ToolError> {
        if name != "lookup" {
            return Err(ToolError::NotFound {
                name: name.to_owned(),
            });
        }
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(arguments);
        Ok(json!({"value": 42}).to_string())
    }
}

on_both_buses!(
    tool_call_round_then_final_json_answer,
    |tb: TestBus| async move {
        let llm = stand_in().await;
        llm.push(Reply::tool_call("lookup", json!({"key": "answer"})).usage(10, 2));
        llm.push(Reply::text("{\"answer\": 42}").usage(20, 5));
        let ws = TempWorkspace::new().expect("workspace");
        let yaml = format!(
            "{BASIC}knowledge_silos:\n  - {{name: calc, type: tool, provider: pkg.tools.Calc}}\n"
        );
        let config = load(&ws, &yaml);
        let host = Arc::new(LookupHost::default());
        let worker = LlmWorker::new(config.clone(), local(openai(&llm)))
            .expect("llm worker")
            .with_tool_host(host.clone());
        let mut h = Harness::start(tb, llm, config, worker).await;

        let result = h
            .run(ModelTier::Local, &task(json!({"question": "?"})))
            .await;
        assert_eq!(output(&result), json!({"answer": 42}));
        assert_eq!(
            tokens(&result),
            (30, 7),
            "tokens are summed over both calls"
        );
        assert_eq!(
            *host.calls.lock().unwrap_or_else(PoisonError::into_inner),
            vec![json!({"key": "answer"})]
        );

        let requests = h.requests();
        assert_eq!(requests.len(), 2);
        assert_eq!(requests[0].body["tools"][0]["function"]["name"], "lookup");
        let history = requests[1].body["messages"].as_array().expect("messages");
        let last = history.last().expect("tool result message");
        assert_eq!(last["role"], "tool");
        assert_eq!(last["content"], "{\"value\":42}");
        assert_eq!(history[2]["role"], "assistant");
        h.stop().await;
    }
);

on_both_buses!(
    server_error_is_retried_by_backend_policy,
    |tb: TestBus| async move {
        let llm = stand_in().await;
        llm.push(Reply::status(500));
        llm.push(Reply::text("{\"summary\": \"second try\"}").usage(8, 2));
        let ws = TempWorkspace::new().expect("workspace");
        let config = load(&ws, BASIC);
        let worker = LlmWorker::new(config.clone(), local(openai(&llm))).expect("llm worker");
        let mut h = Harness::start(tb, llm, config, worker).await;

        let result = h.run(ModelTier::Local, &task(json!({"text": "x"}))).await;
        assert_eq!(output(&result), json!({"summary": "second try"}));
        assert_eq!(tokens(&result), (8, 2));
        assert_eq!(h.requests().len(), 2, "one 500, one success");
        h.stop().await;
    }
);

on_both_buses!(
    file_refs_injected_and_escaping_ref_skipped,
    |tb: TestBus| async move {
        let llm = stand_in().await;
        llm.push(Reply::text("{\"ok\": true}"));
        let ws = TempWorkspace::new().expect("workspace");
        ws.write("data/report.json", "{\"pages\": 3, \"title\": \"گزارش\"}")
            .expect("write");
        ws.write("secret.json", "{\"secret\": true}")
            .expect("write");
        let yaml =
            format!("{BASIC}workspace_dir: data\nresolve_file_refs: [report, other, absent]\n");
        let config = load(&ws, &yaml);
        let worker = LlmWorker::new(config.clone(), local(openai(&llm))).expect("llm worker");
        let mut h = Harness::start(tb, llm, config, worker).await;

        let payload = json!({"report": "report.json", "other": "../secret.json"});
        let result = h.run(ModelTier::Local, &task(payload)).await;
        assert_eq!(output(&result), json!({"ok": true}));

        let requests = h.requests();
        let user = requests[0].body["messages"][1]["content"]
            .as_str()
            .expect("user message")
            .to_owned();
        let sent: Value = serde_json::from_str(&user).expect("user message is JSON");
        assert_eq!(
            sent,
            json!({
                "report": "report.json",
                "other": "../secret.json",
                "report_content": {"pages": 3, "title": "گزارش"},
            })
        );
        assert!(
            user.contains("گزارش"),
            "file content is sent unescaped too: {user}"
        );
        h.stop().await;
    }
);

on_both_buses!(
    silo_updates_written_only_to_read_write_silos,
    |tb: TestBus| async move {
        let llm = stand_in().await;
        let reply = json!({
            "result": "learned",
            "silo_updates": [
                {"silo": "notes", "action": "add", "filename": "learned/pattern.md", "content": "Use JSON."},
                {"silo": "docs", "action": "add", "filename": "hack.md", "content": "read-only silo"},
                {"silo": "notes", "action": "add", "filename": "../x.md", "content": "escape"},
                {"silo": "notes", "action": "modify", "filename": "missing.md", "content": "nothing"},
            ],
        });
        llm.push(Reply::text(reply.to_string()));
        let ws = TempWorkspace::new().expect("workspace");
        ws.write("notes/seed.md", "seed").expect("write");
        ws.write("docs/readme.md", "docs").expect("write");
        let yaml = format!(
            "{BASIC}output_schema: {{type: object, required: [result], properties: {{result: {{type: string}}}}}}\n\
         knowledge_silos:\n  - {{name: notes, type: folder, path: notes, permissions: read_write}}\n  - {{name: docs, type: folder, path: docs}}\n"
        );
        let config = load(&ws, &yaml);
        let worker = LlmWorker::new(config.clone(), local(openai(&llm))).expect("llm worker");
        let mut h = Harness::start(tb, llm, config, worker).await;

        let result = h.run(ModelTier::Local, &task(json!({"text": "x"}))).await;
        assert_eq!(
            output(&result),
            json!({"result": "learned"}),
            "silo_updates is popped"
        );
        let read = |rel: &str| std::fs::read_to_string(ws.join(rel)).ok();
        assert_eq!(
            read("notes/learned/pattern.md").as_deref(),
            Some("Use JSON.")
        );
        assert_eq!(read("docs/hack.md"), None, "read silo refused");
        assert_eq!(read("x.md"), None, "`../x.md` refused");
        assert_eq!(
            read("notes/missing.md"),
            None,
            "modify of a missing file skipped"
        );
        assert_eq!(read("notes/seed.md").as_deref(), Some("seed"));
        h.stop().await;
    }
);
