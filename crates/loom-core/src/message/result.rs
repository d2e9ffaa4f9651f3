//! [`TaskResult`]: the outcome of a task or goal.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use super::enums::TaskStatus;
use super::lax::lax_int;
use super::task::TaskMessage;
use super::time::timestamp_serde;
use super::token_usage::TokenUsage;
use super::{JsonObject, now};
use crate::subject::{self, SubjectError};

/// The outcome of a task or goal (worker or orchestrator → requester).
///
/// For a final pipeline or orchestrator result, `task_id` is the goal id, `parent_task_id`
/// is null and `worker_type` is the pipeline name; the pipeline's `output` maps each stage
/// to its output, plus `_timeline`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskResult {
    /// The task's id (or the goal id for a final goal result).
    pub task_id: String,
    /// Copied from the task; null on final goal results.
    #[serde(default)]
    pub parent_task_id: Option<String>,
    /// The worker name (or the pipeline/orchestrator name for a final goal result).
    pub worker_type: String,
    /// `completed` or `failed` in practice.
    pub status: TaskStatus,
    /// The output on success.
    #[serde(default)]
    pub output: Option<JsonObject>,
    /// Human-readable failure text.
    #[serde(default)]
    pub error: Option<String>,
    /// The model or processor that produced the output (`llama3.2:3b`, `duckdb`…).
    #[serde(default)]
    pub model_used: Option<String>,
    /// Token counts. Default `{}`.
    #[serde(default)]
    pub token_usage: TokenUsage,
    /// Wall time in milliseconds (workers: on success only). Default 0.
    #[serde(default, deserialize_with = "lax_int")]
    pub processing_time_ms: u64,
    /// When the result was produced. Default: now.
    #[serde(default = "now", with = "timestamp_serde")]
    pub completed_at: DateTime<Utc>,
}

impl TaskResult {
    /// A result with the given identity and status, completed now, everything else empty.
    pub fn new(
        task_id: impl Into<String>,
        worker_type: impl Into<String>,
        status: TaskStatus,
    ) -> Self {
        TaskResult {
            task_id: task_id.into(),
            parent_task_id: None,
            worker_type: worker_type.into(),
            status,
            output: None,
            error: None,
            model_used: None,
            token_usage: TokenUsage::new(),
            processing_time_ms: 0,
            completed_at: now(),
        }
    }

    /// A COMPLETED result for `task`, carrying its id, parent id and worker type.
    pub fn completed(task: &TaskMessage, output: JsonObject) -> Self {
        let mut result = TaskResult::new(
            task.task_id.clone(),
            task.worker_type.clone(),
            TaskStatus::Completed,
        );
        result.parent_task_id = task.parent_task_id.clone();
        result.output = Some(output);
        result
    }

    /// A FAILED result for `task` with `error` as its text.
    pub fn failed(task: &TaskMessage, error: impl Into<String>) -> Self {
        Self::failed_for(
            task.task_id.clone(),
            task.parent_task_id.clone(),
            task.worker_type.clone(),
            error,
        )
    }

    /// A FAILED result built from raw ids, for when no valid [`TaskMessage`] exists (a
    /// malformed or dead-lettered task whose caller must still be answered).
    pub fn failed_for(
        task_id: impl Into<String>,
        parent_task_id: Option<String>,
        worker_type: impl Into<String>,
        error: impl Into<String>,
    ) -> Self {
        let mut result = TaskResult::new(task_id, worker_type, TaskStatus::Failed);
        result.parent_task_id = parent_task_id;
        result.error = Some(error.into());
        result
    }

    /// Sets the parent task id.
    #[must_use]
    pub fn with_parent_task_id(mut self, parent_task_id: impl Into<String>) -> Self {
        self.parent_task_id = Some(parent_task_id.into());
        self
    }

    /// Sets the output.
    #[must_use]
    pub fn with_output(mut self, output: JsonObject) -> Self {
        self.output = Some(output);
        self
    }

    /// Sets the error text.
    #[must_use]
    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }

    /// Sets the model (or processor label) used.
    #[must_use]
    pub fn with_model_used(mut self, model_used: impl Into<String>) -> Self {
        self.model_used = Some(model_used.into());
        self
    }

    /// Sets the token counts.
    #[must_use]
    pub fn with_token_usage(mut self, token_usage: TokenUsage) -> Self {
        self.token_usage = token_usage;
        self
    }

    /// Sets the processing time in milliseconds.
    #[must_use]
    pub fn with_processing_time_ms(mut self, processing_time_ms: u64) -> Self {
        self.processing_time_ms = processing_time_ms;
        self
    }

    /// Sets the completion time (truncated to microseconds).
    #[must_use]
    pub fn with_completed_at(mut self, completed_at: DateTime<Utc>) -> Self {
        self.completed_at = completed_at.trunc_subsecs(6);
        self
    }

    /// True when the status is terminal (`completed` or `failed`).
    pub fn is_terminal(&self) -> bool {
        self.status.is_terminal()
    }

    /// The subject this result is published on: `loom.results.{parent_task_id or "default"}`.
    pub fn subject(&self) -> Result<String, SubjectError> {
        subject::results(self.parent_task_id.as_deref())
    }
}
