//! Progress messages: one per finished stage, on `loom.progress.{goal_id}`.
//!
//! New in the Rust build (loom-ai 0.9.0 only logged progress, mesh spec §9.5). The
//! pipeline orchestrator publishes a [`PipelineProgress`] each time a stage completes, is
//! skipped or fails; the gateway turns them into MCP progress notifications and
//! `loom submit` prints one line per stage. Python observers keep inferring progress from
//! the stage results on `loom.results.{goal_id}`, which still flow unchanged.
//!
//! ```json
//! {"goal_id": "9f1c…", "pipeline": "doc_pipeline", "stage": "extract",
//!  "status": "completed", "completed": 1, "total": 3}
//! ```
//!
//! These belong in `loom_core::{message, subject}` once the wire settles.

use loom_core::subject::{SubjectError, validate_subject_tokens};
use serde::{Deserialize, Serialize};

/// Every progress subject (`loom.progress.>`), for observers.
pub const PROGRESS_ALL: &str = "loom.progress.>";

/// The subject a goal's progress goes to: `loom.progress.{goal_id}`.
///
/// Like `loom.results.{goal_id}`, the id may span several tokens (`gw-x.call-y`) but each
/// must be a literal token.
pub fn progress_subject(goal_id: &str) -> Result<String, SubjectError> {
    validate_subject_tokens(goal_id)?;
    Ok(format!("loom.progress.{goal_id}"))
}

/// One stage of a goal has finished (orchestrator → observers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PipelineProgress {
    /// The goal.
    pub goal_id: String,
    /// The pipeline running it.
    pub pipeline: String,
    /// The stage that finished.
    pub stage: String,
    /// How it finished.
    pub status: StageStatus,
    /// Stages finished so far in any way (completed, skipped or failed), this one included.
    pub completed: u32,
    /// Stages in the pipeline.
    pub total: u32,
    /// Why the stage failed; absent unless `status` is `failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl PipelineProgress {
    /// A progress message for `stage` of `goal_id`.
    pub fn new(
        goal_id: impl Into<String>,
        pipeline: impl Into<String>,
        stage: impl Into<String>,
        status: StageStatus,
        completed: u32,
        total: u32,
    ) -> Self {
        PipelineProgress {
            goal_id: goal_id.into(),
            pipeline: pipeline.into(),
            stage: stage.into(),
            status,
            completed,
            total,
            error: None,
        }
    }

    /// Sets the failure text.
    #[must_use]
    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }
}

/// How a stage finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum StageStatus {
    /// Its worker answered and its output passed the stage contract.
    Completed,
    /// Its condition was false; it is absent from the output and the timeline.
    Skipped,
    /// It failed; the goal fails with it.
    Failed,
}

impl StageStatus {
    /// `completed`, `skipped` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            StageStatus::Completed => "completed",
            StageStatus::Skipped => "skipped",
            StageStatus::Failed => "failed",
        }
    }
}

impl std::fmt::Display for StageStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_travels_as_documented() {
        let p = PipelineProgress::new("g1", "docs", "extract", StageStatus::Completed, 1, 3);
        let json = serde_json::to_string(&p).expect("serialises");
        assert_eq!(
            json,
            r#"{"goal_id":"g1","pipeline":"docs","stage":"extract","status":"completed","completed":1,"total":3}"#
        );
        let failed = p.with_error("boom");
        let back: PipelineProgress =
            serde_json::from_str(&serde_json::to_string(&failed).expect("serialises"))
                .expect("parses");
        assert_eq!(back, failed);
        assert_eq!(progress_subject("g1"), Ok("loom.progress.g1".to_owned()));
        assert!(progress_subject("a b").is_err());
    }
}
