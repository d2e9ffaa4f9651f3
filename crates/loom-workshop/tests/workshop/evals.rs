//! The test bench and evals: LLM workers against the HTTP stand-in (OpenAI and Ollama
//! shapes), processors without a bus, scoring, baselines and comparisons.

use std::sync::Arc;

use loom_core::message::ModelTier;
use loom_llm::TierBackends;
use loom_llm::backends::{OllamaSettings, OpenAiSettings};
use loom_testkit::{LlmStandIn, Reply};
use loom_workshop::WorkshopError;
use loom_workshop::eval::{Change, Scoring, parse_suite};
use serde_json::json;

use crate::common::{echo_yaml, object, within, workshop, write};

const SUMMARIZER: &str = "name: summarizer\nsystem_prompt: Summarize the text as JSON.\n\
input_schema: {type: object, required: [text], properties: {text: {type: string}}}\n\
output_schema: {type: object, required: [summary], properties: {summary: {type: string}}}\n\
default_model_tier: standard\n";

async fn stand_in_backends(llm: &LlmStandIn) -> TierBackends {
    let openai = OpenAiSettings::new(format!("{}/v1", llm.base_url()), "gpt-stand-in")
        .build()
        .expect("openai backend");
    let ollama = OllamaSettings::new(llm.base_url(), "llama-stand-in")
        .build()
        .expect("ollama backend");
    TierBackends::new()
        .with(ModelTier::Standard, Arc::new(openai))
        .with(ModelTier::Local, Arc::new(ollama))
}

#[tokio::test]
async fn bench_runs_an_llm_worker_and_keeps_raw_reply_errors_tokens_and_latency() {
    let llm = within("stand-in", LlmStandIn::start())
        .await
        .expect("stand-in");
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "configs/workers/summarizer.yaml", SUMMARIZER);
    let w = workshop(dir.path(), stand_in_backends(&llm).await);

    llm.push(Reply::text("Here:\n```json\n{\"summary\": \"short\"}\n```").usage(12, 3));
    let run = within(
        "bench",
        w.test_worker("summarizer", object(json!({"text": "long text"})), None),
    )
    .await
    .expect("ran");
    assert!(run.success(), "{run:?}");
    assert_eq!(run.output, Some(object(json!({"summary": "short"}))));
    assert!(
        run.raw_response
            .as_deref()
            .is_some_and(|r| r.starts_with("Here:"))
    );
    assert_eq!(
        (
            run.token_usage.prompt_tokens,
            run.token_usage.completion_tokens
        ),
        (12, 3)
    );
    assert_eq!(run.tier, ModelTier::Standard);
    assert!(run.model_used.is_some());
    let requests = llm.requests();
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert!(
        requests[0]
            .body
            .to_string()
            .contains("Summarize the text as JSON.")
    );

    // Input violations are recorded and the model is still called (tier local: Ollama).
    llm.push(Reply::text("{\"wrong\": 1}"));
    let run = within(
        "bench",
        w.test_worker(
            "summarizer",
            object(json!({"txt": 1})),
            Some(ModelTier::Local),
        ),
    )
    .await
    .expect("ran");
    assert!(!run.success());
    assert_eq!(run.tier, ModelTier::Local);
    assert!(
        run.input_validation_errors[0].contains("text"),
        "{:?}",
        run.input_validation_errors
    );
    assert!(
        !run.validation_errors.is_empty(),
        "output breaks the schema"
    );
    assert_eq!(llm.requests()[1].path, "/api/chat");

    // A reply that is not JSON is an error, with the raw text kept.
    llm.push(Reply::text("I cannot do that."));
    let run = within(
        "bench",
        w.test_worker("summarizer", object(json!({"text": "x"})), None),
    )
    .await
    .expect("ran");
    assert_eq!(run.raw_response.as_deref(), Some("I cannot do that."));
    assert!(
        run.error.as_deref().is_some_and(|e| e.contains("non-JSON")),
        "{run:?}"
    );

    // No backend for the tier: the error says which tiers have one.
    let run = within(
        "bench",
        w.test_worker(
            "summarizer",
            object(json!({"text": "x"})),
            Some(ModelTier::Frontier),
        ),
    )
    .await
    .expect("ran");
    let error = run.error.unwrap_or_default();
    assert!(
        error.contains("frontier") && error.contains("[local, standard]"),
        "{error}"
    );
}

#[tokio::test]
async fn eval_scores_stores_and_compares_against_the_baseline() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "configs/workers/stats.yaml",
        &echo_yaml("stats"),
    );
    write(
        dir.path(),
        "configs/workers/other.yaml",
        &echo_yaml("other"),
    );
    let w = workshop(dir.path(), TierBackends::new());
    let suite = parse_suite(&json!([
        {"name": "same", "input": {"text": "a b"}, "expected_output": {"text": "a b"}},
        {"name": "count", "input": {"text": "a b"}, "expected_output": {"word_count": 2}},
        {"name": "case", "input": {"text": " Hello "}, "expected_output": {"text": "hello"}},
    ]))
    .expect("suite");

    let err = w
        .compare("stats", "00000000-0000-4000-8000-000000000000")
        .await
        .expect_err("no baseline");
    assert_eq!(err.to_string(), "No baseline set for worker 'stats'");

    // Echo: `same` and `case` match (field_match ignores case and spaces), `count` does not.
    let first = within(
        "eval",
        w.run_eval("stats", suite.clone(), Scoring::FieldMatch, None),
    )
    .await
    .expect("eval");
    assert_eq!((first.cases, first.passed, first.failed), (3, 2, 1));
    assert!(
        (first.avg_score - 0.667).abs() < 1e-9,
        "{}",
        first.avg_score
    );
    let exact = within(
        "eval",
        w.run_eval("stats", suite.clone(), Scoring::ExactMatch, None),
    )
    .await
    .expect("eval");
    assert!(
        (exact.avg_score - 0.333).abs() < 1e-9,
        "{}",
        exact.avg_score
    );

    w.set_baseline("stats", &first.run_id, Some("golden"))
        .await
        .expect("baseline");
    // Switch the worker to text_stats: `same` and `case` regress, `count` improves.
    let v2 = "name: stats\nworker_kind: processor\nprocessing_backend: text_stats\n";
    assert!(
        w.update_worker("stats", v2, None)
            .await
            .expect("saved")
            .success
    );
    let second = within(
        "eval",
        w.run_eval("stats", suite, Scoring::FieldMatch, None),
    )
    .await
    .expect("eval");
    let cmp = w.compare("stats", &second.run_id).await.expect("compare");
    let changes: Vec<(&str, Change)> = cmp
        .cases
        .iter()
        .map(|c| (c.case_name.as_str(), c.change))
        .collect();
    assert_eq!(
        changes,
        [
            ("same", Change::Regression),
            ("count", Change::Improvement),
            ("case", Change::Regression)
        ]
    );
    assert_eq!((cmp.summary.regressions, cmp.summary.improvements), (2, 1));
    assert_eq!(cmp.summary.verdict, "regressed");
    assert_eq!(cmp.baseline_run.id, first.run_id);
    assert_eq!(cmp.run.status, "completed");
    // Both runs recorded their config version.
    assert_ne!(
        cmp.baseline_run.worker_version_id,
        cmp.run.worker_version_id
    );

    // Bad ids and runs of other workers are refused.
    assert!(matches!(
        w.compare("stats", "../x").await,
        Err(WorkshopError::InvalidId { .. })
    ));
    let other = within(
        "eval",
        w.run_eval(
            "other",
            parse_suite(&json!([{"name": "a", "input": {}}])).expect("suite"),
            Scoring::FieldMatch,
            None,
        ),
    )
    .await
    .expect("eval");
    assert!(matches!(
        w.compare("stats", &other.run_id).await,
        Err(WorkshopError::RunOfOtherWorker { .. })
    ));
    assert!(matches!(
        w.set_baseline("stats", &other.run_id, None).await,
        Err(WorkshopError::RunOfOtherWorker { .. })
    ));
    assert!(matches!(
        "fuzzy".parse::<Scoring>(),
        Err(WorkshopError::UnknownScoring(_))
    ));
}

#[tokio::test]
async fn llm_judge_uses_the_judge_tier_and_needs_one() {
    let llm = within("stand-in", LlmStandIn::start())
        .await
        .expect("stand-in");
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "configs/workers/echo.yaml", &echo_yaml("echo"));
    let suite =
        parse_suite(&json!([{"name": "a", "input": {"q": 1}, "expected_output": {"q": 1}}]))
            .expect("suite");

    let none = workshop(dir.path(), TierBackends::new());
    let err = none
        .run_eval("echo", suite.clone(), Scoring::LlmJudge, None)
        .await
        .expect_err("no judge");
    assert!(
        err.to_string()
            .starts_with("llm_judge needs a model for the judge tier"),
        "{err}"
    );
    assert!(
        none.evals().runs("echo").await.expect("runs").is_empty(),
        "nothing stored"
    );

    let w = workshop(dir.path(), stand_in_backends(&llm).await);
    llm.push(Reply::text(
        "{\"score\": 0.9, \"reasoning\": \"close enough\", \"criteria\": {\"accuracy\": 1}}",
    ));
    let summary = within("eval", w.run_eval("echo", suite, Scoring::LlmJudge, None))
        .await
        .expect("judged");
    assert!((summary.avg_score - 0.9).abs() < 1e-9, "{summary:?}");
    assert_eq!(summary.passed, 1);
    let judge = &llm.requests()[0];
    assert_eq!(
        judge.path, "/v1/chat/completions",
        "the standard tier judges"
    );
    assert!(judge.body.to_string().contains("actual_output"));
}
