//! Eval runs: a suite of cases through the test bench, scored, stored, and compared with
//! the worker's golden baseline (mesh spec §12.4, with fixes from gateway spec §13.27).
//!
//! * `llm_judge` works: the judge is the model of the configured judge tier; without one
//!   the run is refused before anything is stored.
//! * An unknown scoring name is an error, not `exact_match`.
//! * Comparison looks runs up by id (any age) and classifies every case as a
//!   regression, an improvement, unchanged, added or removed.
//! * A run that fails half-way is marked `failed`, never left `running`.
//!
//! Pass rule (as the original): a case passes when the bench run succeeded and, when
//! there is an output to score against an expected output (or the judge scores it), its
//! score is at least [`PASS_SCORE`]. A case with output but no expected output scores 1
//! when the run succeeded. No output scores 0.

pub mod scoring;

use std::sync::Arc;

use futures::StreamExt;
use loom_core::config::{WorkerConfig, WorkerKind};
use loom_core::message::{JsonObject, ModelTier};
use loom_llm::Model;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::{Value, json};

use crate::bench::{BenchRun, TestBench};
use crate::error::WorkshopError;
use crate::history::{Db, now, record_version};

pub use scoring::Scoring;

/// Lowest score that passes.
pub const PASS_SCORE: f64 = 0.5;

/// Cases run at once.
pub const EVAL_CONCURRENCY: usize = 3;

/// A score change smaller than this (either way) counts as unchanged when comparing.
pub const SCORE_TOLERANCE: f64 = 0.01;

/// One case of a suite.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalCase {
    /// The case's name (unique in its suite).
    pub name: String,
    /// The payload.
    pub input: JsonObject,
    /// What the worker should answer.
    pub expected_output: Option<Value>,
}

/// Reads a suite: a non-empty list of `{name, input, expected_output?}` with unique names.
pub fn parse_suite(value: &Value) -> Result<Vec<EvalCase>, WorkshopError> {
    let bad = |m: String| WorkshopError::InvalidSuite(m);
    let Value::Array(items) = value else {
        return Err(bad("expected a list of cases".to_owned()));
    };
    if items.is_empty() {
        return Err(bad("the suite has no cases".to_owned()));
    }
    let mut cases: Vec<EvalCase> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Object(case) = item else {
            return Err(bad(format!("case [{i}] is not an object")));
        };
        let name = match case.get("name") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            _ => return Err(bad(format!("case [{i}] needs a non-empty string 'name'"))),
        };
        if cases.iter().any(|c| c.name == name) {
            return Err(bad(format!("case name '{name}' appears twice")));
        }
        let input = match case.get("input") {
            Some(Value::Object(o)) => o.clone(),
            _ => return Err(bad(format!("case '{name}' needs an object 'input'"))),
        };
        let expected_output = case
            .get("expected_output")
            .filter(|v| !v.is_null())
            .cloned();
        cases.push(EvalCase {
            name,
            input,
            expected_output,
        });
    }
    Ok(cases)
}

/// What `run` returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct EvalSummary {
    /// The run's id.
    pub run_id: String,
    /// The worker.
    pub worker: String,
    /// How many cases ran.
    pub cases: usize,
    /// Mean score, 3 decimals (0.0 when nothing was scored).
    pub avg_score: f64,
    /// The scoring method.
    pub scoring: Scoring,
    /// The tier the worker ran on.
    pub tier: ModelTier,
    /// Cases that passed.
    pub passed: usize,
    /// Cases that did not.
    pub failed: usize,
}

/// One run as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct RunInfo {
    /// The run's id.
    pub id: String,
    /// The worker.
    pub worker_name: String,
    /// The config version it ran.
    pub worker_version_id: Option<String>,
    /// The tier.
    pub tier: String,
    /// The scoring method.
    pub scoring: String,
    /// `running`, `completed` or `failed`.
    pub status: String,
    /// When it started.
    pub started_at: String,
    /// When it ended.
    pub completed_at: Option<String>,
    /// Cases.
    pub total_cases: i64,
    /// Passed cases.
    pub passed_cases: i64,
    /// Failed cases.
    pub failed_cases: i64,
    /// Mean score.
    pub avg_score: Option<f64>,
    /// Mean latency.
    pub avg_latency_ms: Option<f64>,
}

/// One case's stored result.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CaseResult {
    /// The case.
    pub case_name: String,
    /// Its score.
    pub score: Option<f64>,
    /// Whether it passed.
    pub passed: bool,
    /// The output.
    pub actual_output: Option<Value>,
    /// Why it failed, if it did.
    pub error: Option<String>,
}

/// How one case changed between the baseline and a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// It passed and now fails, or its score dropped.
    Regression,
    /// It failed and now passes, or its score rose.
    Improvement,
    /// Same verdict, score within [`SCORE_TOLERANCE`].
    Unchanged,
    /// Only in the run.
    Added,
    /// Only in the baseline.
    Removed,
}

/// One case of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CaseComparison {
    /// The case.
    pub case_name: String,
    /// Its result in the baseline run.
    pub baseline: Option<CaseResult>,
    /// Its result in the compared run.
    pub candidate: Option<CaseResult>,
    /// Candidate score minus baseline score, when both were scored.
    pub score_delta: Option<f64>,
    /// The verdict.
    pub change: Change,
}

/// Counts over a comparison.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ComparisonSummary {
    /// Cases that got worse.
    pub regressions: usize,
    /// Cases that got better.
    pub improvements: usize,
    /// Cases that stayed.
    pub unchanged: usize,
    /// New cases.
    pub added: usize,
    /// Cases no longer run.
    pub removed: usize,
    /// Candidate mean score minus baseline mean score.
    pub avg_score_delta: Option<f64>,
    /// `regressed`, `improved` or `unchanged`.
    pub verdict: &'static str,
}

/// A run compared with the worker's baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The worker.
    pub worker: String,
    /// The baseline run.
    pub baseline_run: RunInfo,
    /// The compared run.
    pub run: RunInfo,
    /// Every case of either run: baseline order, then new cases.
    pub cases: Vec<CaseComparison>,
    /// The counts.
    pub summary: ComparisonSummary,
}

/// Runs suites and keeps their results in the Workshop database.
#[derive(Debug, Clone)]
pub struct EvalRunner {
    bench: TestBench,
    db: Db,
    judge_tier: ModelTier,
}

impl EvalRunner {
    /// A runner using `bench`, storing in `db`, judging with the model of `judge_tier`.
    pub fn new(bench: TestBench, db: Db, judge_tier: ModelTier) -> Self {
        EvalRunner {
            bench,
            db,
            judge_tier,
        }
    }

    /// Runs `cases` against `config` (whose text is `yaml`, recorded as a version).
    pub async fn run(
        &self,
        config: &WorkerConfig,
        yaml: &str,
        cases: Vec<EvalCase>,
        scoring: Scoring,
        tier: Option<ModelTier>,
    ) -> Result<EvalSummary, WorkshopError> {
        let judge: Option<Arc<dyn Model>> = match scoring {
            Scoring::LlmJudge => Some(
                self.bench
                    .backends()
                    .get(self.judge_tier)
                    .map_err(|e| WorkshopError::NoJudge(e.to_string()))?,
            ),
            _ => None,
        };
        let tier = tier
            .or(config.default_model_tier)
            .unwrap_or(ModelTier::Standard);
        let worker = config.name.to_string();
        let run_id = uuid::Uuid::new_v4().to_string();
        {
            let (worker, yaml, run_id) = (worker.clone(), yaml.to_owned(), run_id.clone());
            let total = i64::try_from(cases.len()).unwrap_or(i64::MAX);
            self.db
                .run(move |c| {
                    let version = record_version(c, &worker, &yaml, Some("eval run"))?;
                    c.execute(
                        "INSERT INTO eval_runs (id, worker_name, worker_version_id, tier, scoring, started_at, status, total_cases)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'running', ?7)",
                        params![run_id, worker, version.id, tier.to_string(), scoring.as_str(), now(), total],
                    )?;
                    Ok(())
                })
                .await?;
        }
        let prompt = match &config.kind {
            WorkerKind::Llm { system_prompt } => system_prompt.clone(),
            _ => String::new(),
        };
        let outcomes: Vec<(EvalCase, BenchRun, Option<f64>, JsonObject, bool)> =
            futures::stream::iter(cases)
                .map(|case| {
                    let judge = judge.clone();
                    let prompt = prompt.clone();
                    async move {
                        let run = self.bench.run(config, case.input.clone(), Some(tier)).await;
                        let (score, details, passed) =
                            score_case(&case, &run, scoring, judge.as_deref(), &prompt).await;
                        (case, run, score, details, passed)
                    }
                })
                .buffered(EVAL_CONCURRENCY)
                .collect()
                .await;
        let summary = summarize(&run_id, &worker, scoring, tier, &outcomes);
        let stored = {
            let run_id = run_id.clone();
            let rows: Vec<ResultRow> = outcomes.iter().map(ResultRow::from).collect();
            let avg = summary.avg_score;
            self.db
                .run(move |c| store_results(c, &run_id, &rows, avg))
                .await
        };
        if let Err(e) = stored {
            let id = run_id.clone();
            let _ = self
                .db
                .run(move |c| {
                    c.execute(
                        "UPDATE eval_runs SET status = 'failed', completed_at = ?2 WHERE id = ?1",
                        params![id, now()],
                    )
                })
                .await;
            return Err(e);
        }
        Ok(summary)
    }

    /// Compares run `run_id` of `worker` with the worker's baseline.
    pub async fn compare(&self, worker: &str, run_id: &str) -> Result<Comparison, WorkshopError> {
        check_uuid("run_id", run_id)?;
        let (worker, run_id) = (worker.to_owned(), run_id.to_owned());
        let db = self.db.clone();
        let loaded = db
            .run({
                let (worker, run_id) = (worker.clone(), run_id.clone());
                move |c| {
                    let baseline: Option<String> = c
                        .query_row(
                            "SELECT run_id FROM eval_baselines WHERE worker_name = ?1",
                            params![worker],
                            |r| r.get(0),
                        )
                        .optional()?;
                    let Some(baseline) = baseline else {
                        return Ok(None);
                    };
                    let base_run = run_info(c, &baseline)?;
                    let run = run_info(c, &run_id)?;
                    let base_cases = case_results(c, &baseline)?;
                    let cases = case_results(c, &run_id)?;
                    Ok(Some((base_run, run, base_cases, cases)))
                }
            })
            .await?;
        let Some((base_run, run, base_cases, cases)) = loaded else {
            return Err(WorkshopError::NoBaseline(worker));
        };
        let run = run.ok_or_else(|| WorkshopError::RunNotFound(run_id.clone()))?;
        if run.worker_name != worker {
            return Err(WorkshopError::RunOfOtherWorker {
                run_id,
                expected: worker,
                actual: run.worker_name,
            });
        }
        let base_run = base_run.ok_or_else(|| WorkshopError::NoBaseline(worker.clone()))?;
        Ok(compare_runs(worker, base_run, run, base_cases, cases))
    }

    /// Makes run `run_id` (completed, of `worker`) the worker's golden baseline.
    pub async fn set_baseline(
        &self,
        worker: &str,
        run_id: &str,
        description: Option<&str>,
    ) -> Result<RunInfo, WorkshopError> {
        check_uuid("run_id", run_id)?;
        let run = self.run_info(run_id).await?;
        if run.worker_name != worker {
            return Err(WorkshopError::RunOfOtherWorker {
                run_id: run_id.to_owned(),
                expected: worker.to_owned(),
                actual: run.worker_name,
            });
        }
        if run.status != "completed" {
            return Err(WorkshopError::Required(format!(
                "eval run '{run_id}' is {}; only a completed run can be the baseline",
                run.status
            )));
        }
        let (worker, run_id, description) = (
            worker.to_owned(),
            run_id.to_owned(),
            description.map(str::to_owned),
        );
        self.db
            .run(move |c| {
                c.execute(
                    "INSERT INTO eval_baselines (worker_name, run_id, promoted_at, description)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(worker_name) DO UPDATE SET run_id = excluded.run_id,
                        promoted_at = excluded.promoted_at, description = excluded.description",
                    params![worker, run_id, now(), description],
                )
            })
            .await?;
        Ok(run)
    }

    /// One run.
    pub async fn run_info(&self, run_id: &str) -> Result<RunInfo, WorkshopError> {
        check_uuid("run_id", run_id)?;
        let id = run_id.to_owned();
        self.db
            .run(move |c| run_info(c, &id))
            .await?
            .ok_or_else(|| WorkshopError::RunNotFound(run_id.to_owned()))
    }

    /// The runs of `worker`, newest first.
    pub async fn runs(&self, worker: &str) -> Result<Vec<RunInfo>, WorkshopError> {
        let worker = worker.to_owned();
        self.db
            .run(move |c| {
                let mut stmt = c.prepare(&format!(
                    "{RUN_SELECT} WHERE worker_name = ?1 ORDER BY started_at DESC, rowid DESC"
                ))?;
                let rows = stmt.query_map(params![worker], run_row)?;
                rows.collect()
            })
            .await
    }
}

/// `value` must be a UUID (as every id this store hands out is).
pub(crate) fn check_uuid(what: &'static str, value: &str) -> Result<(), WorkshopError> {
    uuid::Uuid::parse_str(value)
        .map(|_| ())
        .map_err(|_| WorkshopError::InvalidId {
            what,
            value: value.chars().take(80).collect(),
        })
}

async fn score_case(
    case: &EvalCase,
    run: &BenchRun,
    scoring: Scoring,
    judge: Option<&dyn Model>,
    prompt: &str,
) -> (Option<f64>, JsonObject, bool) {
    let Some(output) = &run.output else {
        let mut d = JsonObject::new();
        d.insert("method".to_owned(), json!(scoring.as_str()));
        d.insert("error".to_owned(), json!("no output"));
        return (Some(0.0), d, false);
    };
    let actual = Value::Object(output.clone());
    let scored = match (scoring, &case.expected_output, judge) {
        (Scoring::LlmJudge, expected, Some(judge)) => {
            match scoring::llm_judge(judge, prompt, &case.input, expected.as_ref(), &actual).await {
                Ok(s) => Some(s),
                Err(e) => {
                    let mut d = JsonObject::new();
                    d.insert("method".to_owned(), json!("llm_judge"));
                    d.insert("error".to_owned(), json!(format!("judge failed: {e}")));
                    return (Some(0.0), d, false);
                }
            }
        }
        (Scoring::ExactMatch, Some(expected), _) => Some(scoring::exact_match(expected, &actual)),
        (_, Some(expected), _) => Some(scoring::field_match(expected, &actual)),
        (_, None, _) => None,
    };
    match scored {
        Some(s) => {
            let passed = run.success() && s.score >= PASS_SCORE;
            (Some(s.score), s.details, passed)
        }
        None => {
            let mut d = JsonObject::new();
            d.insert("method".to_owned(), json!(scoring.as_str()));
            d.insert("note".to_owned(), json!("no expected output"));
            let ok = run.success();
            (Some(if ok { 1.0 } else { 0.0 }), d, ok)
        }
    }
}

fn summarize(
    run_id: &str,
    worker: &str,
    scoring: Scoring,
    tier: ModelTier,
    outcomes: &[(EvalCase, BenchRun, Option<f64>, JsonObject, bool)],
) -> EvalSummary {
    let scores: Vec<f64> = outcomes.iter().filter_map(|o| o.2).collect();
    let avg = mean(&scores).unwrap_or(0.0);
    let passed = outcomes.iter().filter(|o| o.4).count();
    EvalSummary {
        run_id: run_id.to_owned(),
        worker: worker.to_owned(),
        cases: outcomes.len(),
        avg_score: (avg * 1000.0).round() / 1000.0,
        scoring,
        tier,
        passed,
        failed: outcomes.len() - passed,
    }
}

#[allow(clippy::cast_precision_loss)] // Case counts are small.
fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

struct ResultRow {
    case_name: String,
    input: String,
    expected: Option<String>,
    actual: Option<String>,
    raw: Option<String>,
    validation_errors: String,
    score: Option<f64>,
    details: String,
    latency_ms: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
    model_used: Option<String>,
    passed: bool,
    error: Option<String>,
}

impl From<&(EvalCase, BenchRun, Option<f64>, JsonObject, bool)> for ResultRow {
    fn from(
        (case, run, score, details, passed): &(EvalCase, BenchRun, Option<f64>, JsonObject, bool),
    ) -> Self {
        let mut errors = run.input_validation_errors.clone();
        errors.extend(run.validation_errors.iter().cloned());
        let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        ResultRow {
            case_name: case.name.clone(),
            input: Value::Object(case.input.clone()).to_string(),
            expected: case.expected_output.as_ref().map(Value::to_string),
            actual: run
                .output
                .as_ref()
                .map(|o| Value::Object(o.clone()).to_string()),
            raw: run.raw_response.clone(),
            validation_errors: json!(errors).to_string(),
            score: *score,
            details: Value::Object(details.clone()).to_string(),
            latency_ms: int(run.latency_ms),
            prompt_tokens: int(run.token_usage.prompt_tokens),
            completion_tokens: int(run.token_usage.completion_tokens),
            model_used: run.model_used.clone(),
            passed: *passed,
            error: run.error.clone(),
        }
    }
}

fn store_results(
    c: &mut Connection,
    run_id: &str,
    rows: &[ResultRow],
    avg_score: f64,
) -> rusqlite::Result<()> {
    let tx = c.transaction()?;
    for r in rows {
        tx.execute(
            "INSERT INTO eval_results (id, run_id, case_name, input_payload, expected_output, actual_output,
                raw_response, validation_errors, score, score_details, latency_ms, prompt_tokens,
                completion_tokens, model_used, passed, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            params![
                uuid::Uuid::new_v4().to_string(),
                run_id,
                r.case_name,
                r.input,
                r.expected,
                r.actual,
                r.raw,
                r.validation_errors,
                r.score,
                r.details,
                r.latency_ms,
                r.prompt_tokens,
                r.completion_tokens,
                r.model_used,
                r.passed,
                r.error
            ],
        )?;
    }
    #[allow(clippy::cast_precision_loss)] // Sums of small numbers.
    let avg = |f: fn(&ResultRow) -> i64| {
        let v: Vec<f64> = rows.iter().map(|r| f(r) as f64).collect();
        mean(&v)
    };
    let passed = rows.iter().filter(|r| r.passed).count();
    tx.execute(
        "UPDATE eval_runs SET status = 'completed', completed_at = ?2, passed_cases = ?3, failed_cases = ?4,
            avg_score = ?5, avg_latency_ms = ?6, avg_prompt_tokens = ?7, avg_completion_tokens = ?8
         WHERE id = ?1",
        params![
            run_id,
            now(),
            i64::try_from(passed).unwrap_or(i64::MAX),
            i64::try_from(rows.len() - passed).unwrap_or(i64::MAX),
            avg_score,
            avg(|r| r.latency_ms),
            avg(|r| r.prompt_tokens),
            avg(|r| r.completion_tokens)
        ],
    )?;
    tx.commit()
}

const RUN_SELECT: &str = "SELECT id, worker_name, worker_version_id, tier, scoring, status, started_at,
    completed_at, total_cases, passed_cases, failed_cases, avg_score, avg_latency_ms FROM eval_runs";

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunInfo> {
    Ok(RunInfo {
        id: r.get(0)?,
        worker_name: r.get(1)?,
        worker_version_id: r.get(2)?,
        tier: r.get(3)?,
        scoring: r.get(4)?,
        status: r.get(5)?,
        started_at: r.get(6)?,
        completed_at: r.get(7)?,
        total_cases: r.get(8)?,
        passed_cases: r.get(9)?,
        failed_cases: r.get(10)?,
        avg_score: r.get(11)?,
        avg_latency_ms: r.get(12)?,
    })
}

fn run_info(c: &Connection, id: &str) -> rusqlite::Result<Option<RunInfo>> {
    c.query_row(&format!("{RUN_SELECT} WHERE id = ?1"), params![id], run_row)
        .optional()
}

fn case_results(c: &Connection, run_id: &str) -> rusqlite::Result<Vec<CaseResult>> {
    let mut stmt = c.prepare(
        "SELECT case_name, score, passed, actual_output, error FROM eval_results
         WHERE run_id = ?1 ORDER BY rowid",
    )?;
    let rows = stmt.query_map(params![run_id], |r| {
        let actual: Option<String> = r.get(3)?;
        Ok(CaseResult {
            case_name: r.get(0)?,
            score: r.get(1)?,
            passed: r.get(2)?,
            actual_output: actual.and_then(|a| serde_json::from_str(&a).ok()),
            error: r.get(4)?,
        })
    })?;
    rows.collect()
}

fn compare_runs(
    worker: String,
    baseline_run: RunInfo,
    run: RunInfo,
    base: Vec<CaseResult>,
    cand: Vec<CaseResult>,
) -> Comparison {
    let mut names: Vec<String> = base.iter().map(|c| c.case_name.clone()).collect();
    for c in &cand {
        if !names.contains(&c.case_name) {
            names.push(c.case_name.clone());
        }
    }
    let mut summary = ComparisonSummary::default();
    let mut cases = Vec::with_capacity(names.len());
    for name in names {
        let b = base.iter().find(|c| c.case_name == name).cloned();
        let n = cand.iter().find(|c| c.case_name == name).cloned();
        let delta = match (&b, &n) {
            (Some(b), Some(n)) => b.score.zip(n.score).map(|(x, y)| y - x),
            _ => None,
        };
        let change = match (&b, &n) {
            (None, _) => Change::Added,
            (_, None) => Change::Removed,
            (Some(b), Some(n)) if b.passed && !n.passed => Change::Regression,
            (Some(b), Some(n)) if !b.passed && n.passed => Change::Improvement,
            _ => match delta {
                Some(d) if d < -SCORE_TOLERANCE => Change::Regression,
                Some(d) if d > SCORE_TOLERANCE => Change::Improvement,
                _ => Change::Unchanged,
            },
        };
        match change {
            Change::Regression => summary.regressions += 1,
            Change::Improvement => summary.improvements += 1,
            Change::Unchanged => summary.unchanged += 1,
            Change::Added => summary.added += 1,
            Change::Removed => summary.removed += 1,
        }
        cases.push(CaseComparison {
            case_name: name,
            baseline: b,
            candidate: n,
            score_delta: delta.map(|d| (d * 1000.0).round() / 1000.0),
            change,
        });
    }
    summary.avg_score_delta = baseline_run
        .avg_score
        .zip(run.avg_score)
        .map(|(a, b)| ((b - a) * 1000.0).round() / 1000.0);
    summary.verdict = if summary.regressions > 0 {
        "regressed"
    } else if summary.improvements > 0 {
        "improved"
    } else {
        "unchanged"
    };
    Comparison {
        worker,
        baseline_run,
        run,
        cases,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_need_named_cases_with_object_inputs() {
        let ok =
            parse_suite(&json!([{"name": "a", "input": {"x": 1}, "expected_output": {"y": 2}}]))
                .expect("valid");
        assert_eq!(ok[0].expected_output, Some(json!({"y": 2})));
        for bad in [
            json!([]),
            json!({}),
            json!([{"input": {}}]),
            json!([{"name": "a", "input": 3}]),
            json!([{"name": "a", "input": {}}, {"name": "a", "input": {}}]),
        ] {
            assert!(
                matches!(parse_suite(&bad), Err(WorkshopError::InvalidSuite(_))),
                "{bad}"
            );
        }
    }
}
