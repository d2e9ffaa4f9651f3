//! Scoring one eval case: `exact_match`, `field_match`, `llm_judge` (mesh spec §12.4).

use std::fmt;
use std::str::FromStr;

use loom_core::message::JsonObject;
use loom_llm::{CompletionRequest, Model, extract_json_object};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::WorkshopError;

/// How a case's output is compared with its expected output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scoring {
    /// Deep equality: 1.0 or 0.0.
    ExactMatch,
    /// The mean over expected keys: equal → 1, strings equal ignoring case and
    /// surrounding space → 1, lists → share of expected items present, else 0.
    FieldMatch,
    /// A model (the judge tier) scores the output from 0 to 1.
    LlmJudge,
}

impl Scoring {
    /// The name as configs and tools spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Scoring::ExactMatch => "exact_match",
            Scoring::FieldMatch => "field_match",
            Scoring::LlmJudge => "llm_judge",
        }
    }
}

impl fmt::Display for Scoring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scoring {
    type Err = WorkshopError;
    /// An unknown name is an error (the original scored it as `exact_match`).
    fn from_str(s: &str) -> Result<Self, WorkshopError> {
        match s {
            "exact_match" => Ok(Scoring::ExactMatch),
            "field_match" => Ok(Scoring::FieldMatch),
            "llm_judge" => Ok(Scoring::LlmJudge),
            other => Err(WorkshopError::UnknownScoring(other.to_owned())),
        }
    }
}

/// The judge's instructions.
pub const JUDGE_PROMPT: &str = "You are a strict evaluator of an AI worker's output. You get the \
worker's instructions, its input, the expected output and the actual output as JSON. Judge how \
well the actual output fulfils the instructions and matches the expected output in substance \
(wording may differ). Answer with one JSON object only: {\"score\": <number from 0 to 1>, \
\"reasoning\": \"<one or two sentences>\", \"criteria\": {\"<criterion>\": <number from 0 to 1>}}.";

/// Most tokens a judge may answer with.
pub const JUDGE_MAX_TOKENS: u32 = 500;

/// A case's score and how it was reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Score {
    /// From 0 to 1.
    pub score: f64,
    /// The method's details (`{method, match}`, `{method, fields}`, `{method, reasoning, …}`).
    pub details: JsonObject,
}

/// `exact_match`: 1.0 when `actual` equals `expected`.
pub fn exact_match(expected: &Value, actual: &Value) -> Score {
    let matched = expected == actual;
    Score {
        score: if matched { 1.0 } else { 0.0 },
        details: object(json!({"method": "exact_match", "match": matched})),
    }
}

/// `field_match`: the mean of the per-key scores of `expected`'s keys (1.0 when it has none).
pub fn field_match(expected: &Value, actual: &Value) -> Score {
    let empty = Map::new();
    let expected = expected.as_object().unwrap_or(&empty);
    let actual = actual.as_object().unwrap_or(&empty);
    let mut fields = Map::new();
    let mut sum = 0.0;
    for (key, want) in expected {
        let s = actual.get(key).map_or(0.0, |got| field_score(want, got));
        sum += s;
        fields.insert(key.clone(), json!(s));
    }
    let score = if expected.is_empty() {
        1.0
    } else {
        #[allow(clippy::cast_precision_loss)] // Key counts are small.
        let n = expected.len() as f64;
        sum / n
    };
    Score {
        score,
        details: object(json!({"method": "field_match", "fields": fields})),
    }
}

fn field_score(want: &Value, got: &Value) -> f64 {
    if want == got {
        return 1.0;
    }
    match (want, got) {
        (Value::String(a), Value::String(b)) => {
            f64::from(u8::from(a.trim().to_lowercase() == b.trim().to_lowercase()))
        }
        (Value::Array(want), Value::Array(got)) => {
            if want.is_empty() {
                return 1.0;
            }
            let got: Vec<String> = got.iter().map(item_text).collect();
            let hits = want.iter().filter(|w| got.contains(&item_text(w))).count();
            #[allow(clippy::cast_precision_loss)] // List lengths are small.
            let share = hits as f64 / want.len() as f64;
            share
        }
        _ => 0.0,
    }
}

/// A list item compared as text (as the original's `str(item)`), strings unquoted.
fn item_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `llm_judge`: asks `judge` to score `actual`. A reply that is not the expected JSON
/// scores 0 with the error in the details; a failing model is an error.
pub async fn llm_judge(
    judge: &dyn Model,
    worker_prompt: &str,
    input: &JsonObject,
    expected: Option<&Value>,
    actual: &Value,
) -> Result<Score, String> {
    let user = json!({
        "worker_system_prompt": worker_prompt,
        "input": input,
        "expected_output": expected,
        "actual_output": actual,
    });
    let request = CompletionRequest::new(JUDGE_PROMPT, user.to_string())
        .with_max_tokens(JUDGE_MAX_TOKENS)
        .with_temperature(0.0);
    let reply = judge.complete(&request).await.map_err(|e| e.to_string())?;
    let mut details = object(json!({
        "method": "llm_judge",
        "model": reply.model,
        "judge_tokens": {
            "prompt_tokens": reply.usage.prompt_tokens,
            "completion_tokens": reply.usage.completion_tokens,
        },
    }));
    let parsed = reply
        .content
        .as_deref()
        .ok_or_else(|| "the judge sent no text".to_owned())
        .and_then(|t| extract_json_object(t).map_err(|e| e.to_string()))
        .and_then(|o| match o.get("score").and_then(Value::as_f64) {
            Some(s) if s.is_finite() => Ok((s.clamp(0.0, 1.0), o)),
            _ => Err("the judge's reply has no numeric 'score'".to_owned()),
        });
    match parsed {
        Ok((score, reply)) => {
            for key in ["reasoning", "criteria"] {
                if let Some(v) = reply.get(key) {
                    details.insert(key.to_owned(), v.clone());
                }
            }
            Ok(Score { score, details })
        }
        Err(e) => {
            details.insert("error".to_owned(), json!(e));
            Ok(Score {
                score: 0.0,
                details,
            })
        }
    }
}

fn object(v: Value) -> JsonObject {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_scoring_is_an_error() {
        assert!(matches!(
            "fuzzy".parse::<Scoring>(),
            Err(WorkshopError::UnknownScoring(s)) if s == "fuzzy"
        ));
        assert_eq!("llm_judge".parse::<Scoring>().ok(), Some(Scoring::LlmJudge));
    }

    #[test]
    fn field_match_scores_keys_strings_and_lists() {
        let s = field_match(
            &json!({"a": 1, "b": " Yes ", "c": ["x", "y"], "d": true}),
            &json!({"a": 1, "b": "yes", "c": ["y", "z"], "d": false}),
        );
        assert!((s.score - 0.625).abs() < 1e-9, "{}", s.score);
        assert_eq!(s.details["fields"]["c"], json!(0.5));
        assert!((field_match(&json!({}), &json!({"x": 1})).score - 1.0).abs() < 1e-9);
        assert!((field_match(&json!({"l": []}), &json!({"l": [1]})).score - 1.0).abs() < 1e-9);
    }

    #[test]
    fn exact_match_is_deep_equality() {
        assert!((exact_match(&json!({"a": [1]}), &json!({"a": [1]})).score - 1.0).abs() < 1e-9);
        assert!(
            exact_match(&json!({"a": [1]}), &json!({"a": [2]}))
                .score
                .abs()
                < 1e-9
        );
    }

    #[tokio::test]
    async fn llm_judge_clamps_and_survives_garbage() {
        let judge = loom_llm::testing::ScriptedModel::new("judge")
            .then_text("```json\n{\"score\": 1.7, \"reasoning\": \"fine\"}\n```")
            .then_text("no idea");
        let input = Map::new();
        let s = llm_judge(&judge, "p", &input, None, &json!({})).await;
        let s = s.expect("judged");
        assert!((s.score - 1.0).abs() < 1e-9);
        assert_eq!(s.details["reasoning"], json!("fine"));
        let s = llm_judge(&judge, "p", &input, None, &json!({}))
            .await
            .expect("judged");
        assert!(s.score.abs() < 1e-9);
        assert!(s.details.contains_key("error"));
    }
}
