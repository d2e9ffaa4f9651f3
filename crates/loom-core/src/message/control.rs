//! [`DeadLetter`] and [`CancelRequest`]: the router's dead-letter envelope and task cancellation.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::JsonObject;
use super::lax::string_field;
use super::result::TaskResult;
use crate::subject::{self, SubjectError};

/// The envelope the router publishes to `loom.tasks.dead_letter`.
///
/// It has exactly the keys `reason`, `original_task`, `task_id` and `worker_type`.
/// `original_task` is the raw incoming value, unmodified (it may be anything when the task
/// was malformed); `task_id` and `worker_type` are copied from it when they are strings.
///
/// Parsing follows the Python dead-letter consumer: a missing `reason` reads as `"unknown"`,
/// a missing `original_task` as the whole envelope, and non-string ids as null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "JsonObject")]
#[non_exhaustive]
pub struct DeadLetter {
    /// Why the task was not delivered, e.g. `rate_limited: tier 'local' has no available capacity`.
    pub reason: String,
    /// The raw incoming task.
    pub original_task: Value,
    /// The task's id, when the raw task had a string `task_id`.
    pub task_id: Option<String>,
    /// The task's worker type, when the raw task had a string `worker_type`.
    pub worker_type: Option<String>,
}

impl DeadLetter {
    /// An envelope for `original_task`, copying its `task_id` and `worker_type` when present.
    pub fn new(reason: impl Into<String>, original_task: Value) -> Self {
        let task_id = string_field(&original_task, "task_id");
        let worker_type = string_field(&original_task, "worker_type");
        DeadLetter {
            reason: reason.into(),
            original_task,
            task_id,
            worker_type,
        }
    }

    /// The `parent_task_id` of the original task, when it has a string one.
    pub fn parent_task_id(&self) -> Option<String> {
        string_field(&self.original_task, "parent_task_id")
    }

    /// A FAILED result that tells the task's caller at once instead of letting it time out
    /// (mesh spec §19, B12). `None` when the original task has no string `task_id`, since
    /// the caller could not match the result anyway.
    ///
    /// The error text is `Task dead-lettered: <reason>`.
    pub fn failed_result(&self) -> Option<TaskResult> {
        let task_id = self.task_id.clone()?;
        Some(TaskResult::failed_for(
            task_id,
            self.parent_task_id(),
            self.worker_type.clone().unwrap_or_default(),
            format!("Task dead-lettered: {}", self.reason),
        ))
    }
}

impl From<JsonObject> for DeadLetter {
    fn from(mut envelope: JsonObject) -> Self {
        let reason = match envelope.get("reason") {
            Some(Value::String(s)) => s.clone(),
            _ => "unknown".to_owned(),
        };
        let task_id = envelope
            .get("task_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let worker_type = envelope
            .get("worker_type")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let original_task = match envelope.remove("original_task") {
            Some(original) => original,
            None => Value::Object(envelope),
        };
        DeadLetter {
            reason,
            original_task,
            task_id,
            worker_type,
        }
    }
}

/// Asks whoever runs `task_id` to stop it (requester → worker, on `loom.control.cancel.{task_id}`).
///
/// New in the Rust build: loom-ai 0.9.0 has no cancellation, and its actors never subscribe
/// to this subject, so sending one to a Python worker is harmless and has no effect.
/// The worker that stops a task still answers with a FAILED result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CancelRequest {
    /// The task to cancel.
    pub task_id: String,
    /// Why, for logs and the FAILED result's text (e.g. `client cancelled`, `timed out`).
    #[serde(default)]
    pub reason: Option<String>,
}

impl CancelRequest {
    /// A cancel request for `task_id` with no reason.
    pub fn new(task_id: impl Into<String>) -> Self {
        CancelRequest {
            task_id: task_id.into(),
            reason: None,
        }
    }

    /// Sets the reason.
    #[must_use]
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// The subject to publish on: `loom.control.cancel.{task_id}`.
    pub fn subject(&self) -> Result<String, SubjectError> {
        subject::control_cancel(&self.task_id)
    }
}
