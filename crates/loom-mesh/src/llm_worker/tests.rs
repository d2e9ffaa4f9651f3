//! Unit tests of the LLM worker: knowledge formats, silo write-back, file refs, and the
//! processor against a scripted model (mesh spec §6.3–§6.5, §18 items 44–49).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use loom_core::WorkerName;
use loom_core::config::{InjectAs, KnowledgeSilo, KnowledgeSource, WorkerConfig, load_worker};
use loom_core::message::{JsonObject, ModelTier, TaskMessage};
use loom_llm::testing::ScriptedModel;
use loom_llm::{Completion, CompletionRequest, Model, ModelError, TierBackends};
use loom_testkit::TempWorkspace;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::worker::TaskContext;

/// Every await in these tests is bounded.
async fn within<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .expect("test future timed out")
}

fn object(value: Value) -> JsonObject {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn ws() -> TempWorkspace {
    TempWorkspace::new().expect("temp workspace")
}

fn write(ws: &TempWorkspace, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    ws.write(rel, contents).expect("write test file")
}

fn source(path: PathBuf, inject_as: InjectAs) -> KnowledgeSource {
    KnowledgeSource { path, inject_as }
}

fn folder(name: &str, path: PathBuf, writable: bool) -> KnowledgeSilo {
    KnowledgeSilo::Folder {
        name: name.to_owned(),
        path,
        writable,
    }
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).expect("create symlink");
}

// ---------------------------------------------------------------------------------------------
// knowledge_sources
// ---------------------------------------------------------------------------------------------

#[test]
fn reference_and_few_shot_sections_keep_loom_ai_layout() {
    let ws = ws();
    let glossary = write(&ws, "glossary.md", "Loom: a mesh.");
    let examples = write(
        &ws,
        "examples.yaml",
        "- input: hello\n  output: '{\"greeting\": true}'\n- input: {text: bye}\n  output: 3\n- output: x\n",
    );
    let notes = write(&ws, "notes.txt", "Answer briefly.");
    let text = knowledge_sources_text(&[
        source(glossary, InjectAs::Reference),
        source(examples, InjectAs::FewShot),
        source(ws.join("missing.md"), InjectAs::Reference),
        source(notes, InjectAs::FewShot),
    ]);
    assert_eq!(
        text,
        "\n--- Reference: glossary.md ---\nLoom: a mesh.\n\
         \n--- Few-Shot Examples ---\nExample 1:\nInput: hello\nOutput: {\"greeting\": true}\n\
         \nExample 2:\nInput: {\"text\":\"bye\"}\nOutput: 3\n\
         \nExample 3:\nInput: \nOutput: x\n\
         \n--- Few-Shot Examples ---\nAnswer briefly."
    );
}

#[test]
fn few_shot_yaml_that_is_not_a_list_of_mappings_is_injected_as_text() {
    let ws = ws();
    let scalar_list = write(&ws, "a.yml", "- one\n- two\n");
    let mapping = write(&ws, "b.yaml", "input: x\n");
    let text = knowledge_sources_text(&[
        source(scalar_list, InjectAs::FewShot),
        source(mapping, InjectAs::FewShot),
    ]);
    assert_eq!(
        text,
        "\n--- Few-Shot Examples ---\n- one\n- two\n\n\n--- Few-Shot Examples ---\ninput: x\n"
    );
}

#[test]
fn unreadable_knowledge_sources_are_skipped() {
    let ws = ws();
    let binary = write(&ws, "blob.txt", [0xff, 0xfe, 0x00]);
    std::fs::create_dir_all(ws.join("dir.md")).expect("mkdir");
    let ok = write(&ws, "ok.md", "fine");
    let text = knowledge_sources_text(&[
        source(binary, InjectAs::Reference),
        source(ws.join("dir.md"), InjectAs::Reference),
        source(ok, InjectAs::Reference),
    ]);
    assert_eq!(text, "\n--- Reference: ok.md ---\nfine");
}

// ---------------------------------------------------------------------------------------------
// Folder silos
// ---------------------------------------------------------------------------------------------

#[test]
fn folder_silo_reads_text_files_recursively_sorted_by_component() {
    let ws = ws();
    write(&ws, "docs/b.md", "B");
    write(&ws, "docs/a.md", "A.md");
    write(&ws, "docs/a/z.txt", "A/Z");
    write(&ws, "docs/C.TOML", "upper");
    write(&ws, "docs/data.json", "{\"k\": 1}");
    write(&ws, "docs/table.csv", "a,b");
    write(&ws, "docs/conf.yml", "x: 1");
    write(&ws, "docs/image.png", "PNG");
    write(&ws, "docs/script.py", "print()");
    write(&ws, "docs/noext", "none");
    let text = folder_silos_text(&[folder("guides", ws.join("docs"), false)]);
    assert_eq!(
        text,
        "--- Knowledge Silo: guides ---\n\
         ## C.TOML\nupper\n\n\
         ## a/z.txt\nA/Z\n\n\
         ## a.md\nA.md\n\n\
         ## b.md\nB\n\n\
         ## conf.yml\nx: 1\n\n\
         ## data.json\n{\"k\": 1}\n\n\
         ## table.csv\na,b"
    );
}

#[test]
fn siloignore_globs_hide_files_and_the_ignore_file_itself() {
    let ws = ws();
    write(
        &ws,
        "silo/.siloignore",
        "# comment\n\n*.log.md\n  drafts/*  \nsecret.md\n",
    );
    write(&ws, "silo/keep.md", "kept");
    write(&ws, "silo/debug.log.md", "skipped");
    write(&ws, "silo/drafts/wip.md", "also skipped");
    write(&ws, "silo/drafts/deep/wip.md", "deep skipped");
    write(&ws, "silo/secret.md", "hidden");
    write(&ws, "silo/sub/secret.md", "not at the root, kept");
    let text = folder_silos_text(&[folder("s", ws.join("silo"), false)]);
    assert_eq!(
        text,
        "--- Knowledge Silo: s ---\n## keep.md\nkept\n\n## sub/secret.md\nnot at the root, kept"
    );
}

#[test]
fn silos_skip_missing_folders_empty_folders_tool_silos_and_non_utf8_files() {
    let ws = ws();
    write(&ws, "a/one.md", "one");
    write(&ws, "a/bad.md", [0xc3, 0x28]);
    std::fs::create_dir_all(ws.join("empty")).expect("mkdir");
    write(&ws, "b/two.txt", "two");
    let silos = [
        folder("a", ws.join("a"), false),
        folder("missing", ws.join("nope"), false),
        folder("empty", ws.join("empty"), false),
        KnowledgeSilo::Tool {
            name: "t".to_owned(),
            provider: "pkg.Tool".to_owned(),
            config: Default::default(),
        },
        folder("b", ws.join("b"), true),
    ];
    assert_eq!(
        folder_silos_text(&silos),
        "--- Knowledge Silo: a ---\n## one.md\none\n\n--- Knowledge Silo: b ---\n## two.txt\ntwo"
    );
}

#[cfg(unix)]
#[test]
fn silo_symlinks_are_read_only_inside_the_silo() {
    let outside = ws();
    write(&outside, "secret.md", "outside secret");
    write(&outside, "dir/leak.md", "outside dir");
    let ws = ws();
    write(&ws, "silo/real.md", "real");
    symlink(&ws.join("silo/real.md"), &ws.join("silo/alias.md"));
    symlink(&outside.join("secret.md"), &ws.join("silo/escape.md"));
    symlink(&outside.join("dir"), &ws.join("silo/linked"));
    let text = folder_silos_text(&[folder("s", ws.join("silo"), false)]);
    assert_eq!(
        text,
        "--- Knowledge Silo: s ---\n## alias.md\nreal\n\n## real.md\nreal"
    );
}

#[test]
fn unreadable_siloignore_skips_the_whole_silo() {
    let ws = ws();
    write(&ws, "silo/.siloignore", [0xff, 0xff]);
    write(&ws, "silo/hidden.md", "would leak");
    assert_eq!(
        folder_silos_text(&[folder("s", ws.join("silo"), false)]),
        ""
    );
}

#[test]
fn system_prompt_is_sources_then_silos_then_worker_prompt() {
    let ws = ws();
    let reference = write(&ws, "ref.md", "R");
    write(&ws, "silo/f.md", "F");
    let sources = [source(reference, InjectAs::Reference)];
    let silos = [folder("s", ws.join("silo"), false)];
    assert_eq!(
        build_system_prompt("Do it.", &sources, &silos),
        "\n--- Reference: ref.md ---\nR\n\n--- Knowledge Silo: s ---\n## f.md\nF\n\nDo it."
    );
    assert_eq!(build_system_prompt("Do it.", &[], &silos[..0]), "Do it.");
    assert_eq!(
        build_system_prompt("Do it.", &sources, &[]),
        "\n--- Reference: ref.md ---\nR\n\nDo it."
    );
}

// ---------------------------------------------------------------------------------------------
// silo_updates
// ---------------------------------------------------------------------------------------------

fn statuses(outcomes: &[SiloUpdateOutcome]) -> Vec<&SiloUpdateStatus> {
    outcomes.iter().map(|o| &o.status).collect()
}

fn is_denied(status: &SiloUpdateStatus) -> bool {
    matches!(status, SiloUpdateStatus::Denied(_))
}

#[test]
fn silo_updates_add_modify_delete_in_writable_silos() {
    let ws = ws();
    write(&ws, "notes/existing.md", "old");
    write(&ws, "notes/delete_me.md", "bye");
    let silos = [folder("notes", ws.join("notes"), true)];
    let updates = [
        json!({"silo": "notes", "action": "add", "filename": "new.md", "content": "new"}),
        json!({"silo": "notes", "action": "add", "filename": "sub/deep/n.md", "content": "deep"}),
        json!({"silo": "notes", "action": "modify", "filename": "existing.md", "content": "updated"}),
        json!({"silo": "notes", "action": "modify", "filename": "nope.md", "content": "x"}),
        json!({"silo": "notes", "action": "delete", "filename": "delete_me.md"}),
        json!({"silo": "notes", "action": "delete", "filename": "never.md"}),
        json!({"silo": "notes", "action": "explode", "filename": "x.md", "content": "y"}),
        json!({"silo": "notes", "action": "add", "filename": "empty.md"}),
    ];
    let outcomes = apply_silo_updates(&updates, &silos);
    use SiloUpdateStatus::{Applied, Skipped};
    assert_eq!(
        statuses(&outcomes),
        [
            &Applied,
            &Applied,
            &Applied,
            &Skipped("file not found for modify".to_owned()),
            &Applied,
            &Skipped("file not found for delete".to_owned()),
            &Skipped("unknown action".to_owned()),
            &Applied,
        ]
    );
    let read = |rel: &str| std::fs::read_to_string(ws.join(rel)).expect("read back");
    assert_eq!(read("notes/new.md"), "new");
    assert_eq!(read("notes/sub/deep/n.md"), "deep");
    assert_eq!(read("notes/existing.md"), "updated");
    assert_eq!(read("notes/empty.md"), "");
    assert!(!ws.join("notes/nope.md").exists());
    assert!(!ws.join("notes/delete_me.md").exists());
}

#[test]
fn silo_updates_are_denied_outside_writable_silos() {
    let ws = ws();
    std::fs::create_dir_all(ws.join("notes")).expect("mkdir");
    std::fs::create_dir_all(ws.join("docs")).expect("mkdir");
    let silos = [
        folder("notes", ws.join("notes"), true),
        folder("docs", ws.join("docs"), false),
        KnowledgeSilo::Tool {
            name: "tool".to_owned(),
            provider: "x.Y".to_owned(),
            config: Default::default(),
        },
    ];
    let updates = [
        json!({"silo": "docs", "action": "add", "filename": "hack.md", "content": "no"}),
        json!({"silo": "tool", "action": "add", "filename": "hack.md", "content": "no"}),
        json!({"silo": "ghost", "action": "add", "filename": "hack.md", "content": "no"}),
        json!({"silo": "notes", "action": "add", "filename": "../escape.md", "content": "no"}),
        json!({"silo": "notes", "action": "add", "filename": "a/../../escape.md", "content": "no"}),
        json!({"silo": "notes", "action": "add", "filename": "/etc/escape.md", "content": "no"}),
        json!({"silo": "notes", "action": "add", "filename": "x..y.md", "content": "no"}),
        json!({"silo": "notes", "action": "add", "filename": "", "content": "no"}),
        json!({"silo": "notes", "action": "add", "filename": "obj.md", "content": {"a": 1}}),
        json!({"silo": "notes", "action": "delete", "filename": "../docs"}),
        json!("not an object"),
    ];
    let outcomes = apply_silo_updates(&updates, &silos);
    for outcome in &outcomes {
        assert!(is_denied(&outcome.status), "{outcome:?}");
    }
    assert!(!ws.join("docs/hack.md").exists());
    assert!(!ws.join("escape.md").exists());
    assert!(!ws.join("notes/obj.md").exists());
    assert!(ws.join("docs").is_dir());
}

#[cfg(unix)]
#[test]
fn silo_updates_refuse_symlink_escapes_and_delete_links_not_targets() {
    let outside = ws();
    write(&outside, "target.md", "outside");
    let ws = ws();
    write(&ws, "notes/real.md", "real");
    symlink(outside.path(), &ws.join("notes/out"));
    symlink(&outside.join("target.md"), &ws.join("notes/evil.md"));
    symlink(&ws.join("notes/real.md"), &ws.join("notes/alias.md"));
    let silos = [folder("notes", ws.join("notes"), true)];
    let updates = [
        json!({"silo": "notes", "action": "add", "filename": "out/new.md", "content": "no"}),
        json!({"silo": "notes", "action": "modify", "filename": "evil.md", "content": "no"}),
        json!({"silo": "notes", "action": "add", "filename": "evil.md", "content": "no"}),
        json!({"silo": "notes", "action": "delete", "filename": "out/target.md"}),
        json!({"silo": "notes", "action": "delete", "filename": "alias.md"}),
    ];
    let outcomes = apply_silo_updates(&updates, &silos);
    assert!(
        outcomes[..4].iter().all(|o| is_denied(&o.status)),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[4].status, SiloUpdateStatus::Applied);
    assert!(!outside.join("new.md").exists());
    assert_eq!(
        std::fs::read_to_string(outside.join("target.md")).expect("read"),
        "outside"
    );
    assert!(std::fs::symlink_metadata(ws.join("notes/alias.md")).is_err());
    assert_eq!(
        std::fs::read_to_string(ws.join("notes/real.md")).expect("read"),
        "real"
    );
}

// ---------------------------------------------------------------------------------------------
// File refs
// ---------------------------------------------------------------------------------------------

fn refs(fields: &[&str]) -> Vec<String> {
    fields.iter().map(|f| (*f).to_owned()).collect()
}

#[test]
fn file_refs_inject_json_and_skip_what_loom_ai_skipped() {
    let root = ws();
    write(&root, "ws/doc.json", "{\"title\": \"سلام\"}");
    write(&root, "ws/bad.json", "not json");
    write(&root, "ws2/secret.json", "{\"secret\": true}");
    write(&root, "outside.json", "{\"outside\": true}");
    let mut payload = object(json!({
        "doc": "doc.json",
        "sibling": "../ws2/secret.json",
        "up": "../outside.json",
        "abs": root.join("outside.json").to_string_lossy(),
        "missing": "nope.json",
        "bad": "bad.json",
        "unlisted": "doc.json",
    }));
    resolve_file_refs(
        &root.join("ws"),
        &refs(&["doc", "sibling", "up", "abs", "missing", "bad", "absent"]),
        &mut payload,
    )
    .expect("resolution succeeds");
    assert_eq!(payload["doc_content"], json!({"title": "سلام"}));
    for key in [
        "sibling_content",
        "up_content",
        "abs_content",
        "missing_content",
        "bad_content",
        "absent_content",
        "unlisted_content",
    ] {
        assert!(!payload.contains_key(key), "{key} should not be set");
    }
}

#[test]
fn non_string_file_ref_fails_the_task() {
    let root = ws();
    let mut payload = object(json!({"doc": 42}));
    let err = resolve_file_refs(root.path(), &refs(&["doc"]), &mut payload)
        .expect_err("a number is not a ref");
    assert_eq!(
        err.to_string(),
        "file ref field 'doc' must be a string naming a file in the workspace, not a number"
    );
}

#[test]
fn directory_file_ref_fails_the_task() {
    let root = ws();
    std::fs::create_dir_all(root.join("folder")).expect("mkdir");
    let mut payload = object(json!({"doc": "folder"}));
    let err = resolve_file_refs(root.path(), &refs(&["doc"]), &mut payload)
        .expect_err("a directory is not a file");
    assert!(matches!(err, FileRefError::Unreadable { .. }), "{err}");
    assert!(
        err.to_string().starts_with("file ref field 'doc': "),
        "{err}"
    );
}

#[test]
fn missing_workspace_dir_skips_file_refs() {
    let root = ws();
    let mut payload = object(json!({"doc": "doc.json"}));
    resolve_file_refs(&root.join("nope"), &refs(&["doc"]), &mut payload).expect("skipped");
    assert!(!payload.contains_key("doc_content"));
}

// ---------------------------------------------------------------------------------------------
// The processor, with a scripted model
// ---------------------------------------------------------------------------------------------

fn config(ws: &TempWorkspace, yaml: &str) -> WorkerConfig {
    let path = write(ws, "worker.yaml", yaml);
    load_worker(&path).unwrap_or_else(|e| panic!("invalid worker yaml: {e}"))
}

const BASIC: &str = "name: summarizer\nsystem_prompt: Summarise.\nmax_output_tokens: 77\n";

fn task(payload: Value) -> TaskMessage {
    TaskMessage::new(
        &WorkerName::try_from("summarizer").expect("worker name"),
        object(payload),
    )
}

fn local(model: Arc<dyn Model>) -> TierBackends {
    TierBackends::new().with(ModelTier::Local, model)
}

#[tokio::test]
async fn process_sends_prompt_and_unescaped_payload_and_sums_tokens() {
    let ws = ws();
    let model = Arc::new(ScriptedModel::new("tiny").then(
        Completion::text("tiny-2024", "```json\n{\"summary\": \"ok\"}\n```").with_usage(11, 4),
    ));
    let worker = LlmWorker::new(config(&ws, BASIC), local(model.clone())).expect("llm worker");
    let out = within(worker.process(
        &task(json!({"text": "سلام"})),
        &TaskContext::new(ModelTier::Local),
    ))
    .await
    .expect("completed");
    assert_eq!(Value::Object(out.output), json!({"summary": "ok"}));
    assert_eq!(out.model_used.as_deref(), Some("tiny-2024"));
    assert_eq!(out.token_usage.prompt_tokens(), 11);
    assert_eq!(out.token_usage.completion_tokens(), 4);
    let requests = model.requests();
    assert_eq!(requests.len(), 1);
    let expected = CompletionRequest::new("Summarise.", "{\n  \"text\": \"سلام\"\n}")
        .with_max_tokens(77)
        .with_temperature(0.0);
    assert_eq!(requests[0], expected);
}

#[tokio::test]
async fn process_uses_the_context_tier_and_names_a_missing_backend() {
    let ws = ws();
    let model = Arc::new(ScriptedModel::new("tiny").then_text("{\"a\": 1}"));
    let worker = LlmWorker::new(config(&ws, BASIC), local(model)).expect("llm worker");
    let err = within(worker.process(
        &task(json!({})).with_model_tier(ModelTier::Local),
        &TaskContext::new(ModelTier::Frontier),
    ))
    .await
    .expect_err("no frontier backend");
    assert!(
        err.message.starts_with("no backend for tier: frontier"),
        "{}",
        err.message
    );
    assert!(!err.retryable);
}

#[tokio::test]
async fn retryable_model_errors_are_retryable_failures() {
    let ws = ws();
    let http = |status: u16| ModelError::Http {
        url: "http://llm/v1/chat/completions".to_owned(),
        status,
        body_preview: "busy".to_owned(),
        retry_after: None,
    };
    let model = Arc::new(
        ScriptedModel::new("tiny")
            .then_error(http(503))
            .then_error(http(400)),
    );
    let worker = LlmWorker::new(config(&ws, BASIC), local(model)).expect("llm worker");
    let ctx = TaskContext::new(ModelTier::Local);
    let first = within(worker.process(&task(json!({})), &ctx))
        .await
        .expect_err("503");
    assert!(first.retryable);
    assert_eq!(first.model_used.as_deref(), Some("tiny"));
    assert!(first.message.contains("HTTP 503"), "{}", first.message);
    let second = within(worker.process(&task(json!({})), &ctx))
        .await
        .expect_err("400");
    assert!(!second.retryable);
}

#[tokio::test]
async fn empty_and_non_object_replies_fail_with_model_and_tokens() {
    let ws = ws();
    let model = Arc::new(
        ScriptedModel::new("tiny")
            .then(Completion::tool_calls("tiny", Vec::new()).with_usage(3, 2))
            .then(Completion::text("tiny", "[1, 2]").with_usage(1, 1))
            .then_text("no json here"),
    );
    let worker = LlmWorker::new(config(&ws, BASIC), local(model)).expect("llm worker");
    let ctx = TaskContext::new(ModelTier::Local);
    let empty = within(worker.process(&task(json!({})), &ctx))
        .await
        .expect_err("no text");
    assert_eq!(empty.message, NO_TEXT_RESPONSE);
    assert_eq!(empty.token_usage.prompt_tokens(), 3);
    assert_eq!(empty.model_used.as_deref(), Some("tiny"));
    let array = within(worker.process(&task(json!({})), &ctx))
        .await
        .expect_err("array");
    assert_eq!(
        array.message,
        "LLM returned JSON that is not an object (an array)"
    );
    let prose = within(worker.process(&task(json!({})), &ctx))
        .await
        .expect_err("prose");
    assert!(
        prose.message.starts_with("LLM returned non-JSON"),
        "{}",
        prose.message
    );
}

#[tokio::test]
async fn silo_updates_never_reach_the_output() {
    let ws = ws();
    std::fs::create_dir_all(ws.join("notes")).expect("mkdir");
    let yaml = format!(
        "{BASIC}knowledge_silos:\n  - {{name: notes, type: folder, path: notes, permissions: read_write}}\n  - {{name: calc, type: tool, provider: pkg.Calc}}\n"
    );
    let model = Arc::new(
        ScriptedModel::new("tiny")
            .then_text(
                r#"{"ok": true, "silo_updates": [{"silo": "notes", "action": "add", "filename": "n.md", "content": "learned"}]}"#,
            )
            .then_text(r#"{"ok": 2, "silo_updates": "oops", "z": 1, "a": 2}"#),
    );
    let worker = LlmWorker::new(config(&ws, &yaml), local(model)).expect("llm worker");
    let ctx = TaskContext::new(ModelTier::Local);
    let out = within(worker.process(&task(json!({})), &ctx))
        .await
        .expect("completed");
    assert_eq!(Value::Object(out.output), json!({"ok": true}));
    assert_eq!(
        std::fs::read_to_string(ws.join("notes/n.md")).expect("written"),
        "learned"
    );
    let out = within(worker.process(&task(json!({})), &ctx))
        .await
        .expect("completed");
    // The other keys keep the model's order.
    assert_eq!(
        serde_json::to_string(&out.output).expect("serialise"),
        r#"{"ok":2,"z":1,"a":2}"#
    );
}

#[tokio::test]
async fn non_string_file_ref_fails_before_the_model_is_called() {
    let ws = ws();
    let yaml = format!("{BASIC}workspace_dir: .\nresolve_file_refs: [doc]\n");
    let model = Arc::new(ScriptedModel::new("tiny").then_text("{}"));
    let worker = LlmWorker::new(config(&ws, &yaml), local(model.clone())).expect("llm worker");
    let err = within(worker.process(
        &task(json!({"doc": ["a"]})),
        &TaskContext::new(ModelTier::Local),
    ))
    .await
    .expect_err("array ref");
    assert!(err.message.contains("must be a string"), "{}", err.message);
    assert!(model.requests().is_empty());
}

#[tokio::test]
async fn processor_config_is_rejected() {
    let ws = ws();
    let config = config(
        &ws,
        "name: echoer\nworker_kind: processor\nprocessing_backend: echo\n",
    );
    let err = LlmWorker::new(config, TierBackends::new()).expect_err("not an llm worker");
    assert_eq!(
        err.to_string(),
        "worker 'echoer' is not an llm worker; an llm worker has worker_kind: llm and a system_prompt"
    );
}

/// A model that never answers.
struct Hanging;

#[async_trait]
impl Model for Hanging {
    async fn complete(&self, _request: &CompletionRequest) -> Result<Completion, ModelError> {
        std::future::pending().await
    }

    fn name(&self) -> &str {
        "hanging"
    }
}

#[tokio::test]
async fn cancel_stops_waiting_for_the_model_at_once() {
    let ws = ws();
    let worker = LlmWorker::new(config(&ws, BASIC), local(Arc::new(Hanging))).expect("llm worker");
    let cancel = CancellationToken::new();
    let ctx = TaskContext::new(ModelTier::Local).with_cancel(cancel.clone());
    let trigger = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        cancel.cancel();
    });
    let err = within(worker.process(&task(json!({})), &ctx))
        .await
        .expect_err("cancelled");
    assert_eq!(err.message, "task cancelled");
    within(trigger).await.expect("trigger task");
}

#[tokio::test]
async fn reloaded_config_in_the_context_is_used() {
    let ws = ws();
    let model = Arc::new(ScriptedModel::new("tiny").then_text("{}").then_text("{}"));
    let worker = LlmWorker::new(config(&ws, BASIC), local(model.clone())).expect("llm worker");
    let reloaded = Arc::new(config(
        &ws,
        "name: summarizer\nsystem_prompt: Summarise in French.\n",
    ));
    within(worker.process(&task(json!({})), &TaskContext::new(ModelTier::Local)))
        .await
        .expect("first");
    within(worker.process(
        &task(json!({})),
        &TaskContext::new(ModelTier::Local).with_config(reloaded),
    ))
    .await
    .expect("second");
    let requests = model.requests();
    assert_eq!(requests[0].system, "Summarise.");
    assert_eq!(requests[1].system, "Summarise in French.");
    assert_eq!(requests[1].max_tokens, 2000);
}
