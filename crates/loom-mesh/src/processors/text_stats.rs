//! `text_stats`: reverse a text and count its words and characters.
//!
//! The Rust twin of the benchmark peer's `peer_backend.TextStatsBackend`, with the same
//! output and semantics: `text = str(payload.get("text", ""))`, then
//!
//! * `reversed`: the text reversed by characters (Unicode scalar values, as Python's
//!   `text[::-1]` reverses code points);
//! * `word_count`: `len(text.split())`, splitting on runs of Python whitespace;
//! * `char_count`: `len(text)`, in characters.
//!
//! A non-string `text` is rendered as Python's `str()` would (`5` → `"5"`,
//! `null` → `"None"`). `model_used` is `text_stats` unless `backend_config` sets it
//! (the Python peer reports `peer-textstats-v1`).

use async_trait::async_trait;
use loom_core::message::{JsonObject, TaskMessage};
use serde_json::Value;

use super::python;
use crate::worker::{ProcessError, ProcessOutput, Processor, TaskContext};

/// Reverses `payload.text` and counts its words and characters.
#[derive(Debug, Clone)]
pub struct TextStatsProcessor {
    model_used: String,
}

impl TextStatsProcessor {
    /// The label reported when `backend_config` sets no `model_used`.
    pub const MODEL_USED: &'static str = "text_stats";

    /// A processor reporting `model_used`.
    pub fn new(model_used: impl Into<String>) -> Self {
        TextStatsProcessor {
            model_used: model_used.into(),
        }
    }
}

impl Default for TextStatsProcessor {
    fn default() -> Self {
        TextStatsProcessor::new(Self::MODEL_USED)
    }
}

/// `{"reversed", "word_count", "char_count"}` for `text`.
pub fn text_stats(text: &str) -> JsonObject {
    let mut out = JsonObject::new();
    out.insert(
        "reversed".into(),
        Value::String(text.chars().rev().collect()),
    );
    out.insert("word_count".into(), python::word_count(text).into());
    out.insert("char_count".into(), text.chars().count().into());
    out
}

#[async_trait]
impl Processor for TextStatsProcessor {
    async fn process(
        &self,
        task: &TaskMessage,
        _ctx: &TaskContext,
    ) -> Result<ProcessOutput, ProcessError> {
        let text = task
            .payload
            .get("text")
            .map(python::python_str)
            .unwrap_or_default();
        Ok(ProcessOutput::new(text_stats(&text)).with_model_used(&self.model_used))
    }
}
