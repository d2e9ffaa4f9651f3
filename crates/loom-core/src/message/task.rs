//! [`TaskMessage`]: a unit of work for one worker.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::enums::{ModelTier, TaskPriority};
use super::lax::{default_max_retries, lax_int, object_or_none};
use super::time::timestamp_serde;
use super::{JsonObject, new_id, now};
use crate::name::{NameError, WorkerName};
use crate::subject::{self, SubjectError};

/// A unit of work for one worker (orchestrator, gateway or router → worker).
///
/// `worker_type` stays a `String` so that a message naming an invalid worker can still be
/// parsed, then dead-lettered with a reason (and its caller answered) instead of being
/// dropped as unparsable. Use [`TaskMessage::worker_name`] to validate it.
///
/// ```
/// use loom_core::message::{ModelTier, TaskMessage};
/// use loom_core::WorkerName;
///
/// let worker = WorkerName::try_from("summarizer")?;
/// let mut payload = serde_json::Map::new();
/// payload.insert("text".into(), "hello".into());
/// let task = TaskMessage::new(&worker, payload)
///     .with_parent_task_id("mcp-0123456789ab")
///     .with_model_tier(ModelTier::Local);
/// assert_eq!(task.result_subject()?, "loom.results.mcp-0123456789ab");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TaskMessage {
    /// Identity of this unit of work; its result carries it back. Default: a new UUID4.
    #[serde(default = "new_id")]
    pub task_id: String,
    /// Correlation key: the result goes to `loom.results.{parent_task_id or "default"}`.
    #[serde(default)]
    pub parent_task_id: Option<String>,
    /// The worker config `name` this task is for (a subject token once validated).
    pub worker_type: String,
    /// The worker's input; must be a JSON object.
    pub payload: JsonObject,
    /// The tier requested by the producer (a router override rewrites it). Default `standard`.
    #[serde(default)]
    pub model_tier: ModelTier,
    /// Carried through; unused for scheduling. Default `normal`.
    #[serde(default)]
    pub priority: TaskPriority,
    /// Carried through; loom-ai 0.9.0 never retries at task level. Default 2.
    #[serde(default = "default_max_retries", deserialize_with = "lax_int")]
    pub max_retries: u32,
    /// Carried through; unused by loom-ai 0.9.0. Default 0.
    #[serde(default, deserialize_with = "lax_int")]
    pub retry_count: u32,
    /// When the task was created. Default: now (UTC, microsecond precision).
    #[serde(default = "now", with = "timestamp_serde")]
    pub created_at: DateTime<Utc>,
    /// Tracing correlation (the pipeline sets the goal id). Serialised as `null` when unset.
    #[serde(default)]
    pub request_id: Option<String>,
    /// Free-form hints (`stage_name`, `model_tier`, `scheduled_by`…). Default `{}`.
    #[serde(default)]
    pub metadata: JsonObject,
    /// W3C trace headers (`traceparent`, …) injected by the router and the pipeline.
    /// Travels as `_trace_context` and is omitted when absent. Python receivers ignore the
    /// key, so a value that is not an object is ignored too (read as `None`), never an error.
    #[serde(
        rename = "_trace_context",
        default,
        deserialize_with = "object_or_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub trace_context: Option<JsonObject>,
}

impl TaskMessage {
    /// A task for `worker_type` with a new UUID4 id, created now, and every other field at
    /// its wire default.
    pub fn new(worker_type: &WorkerName, payload: JsonObject) -> Self {
        TaskMessage {
            task_id: new_id(),
            parent_task_id: None,
            worker_type: worker_type.as_str().to_owned(),
            payload,
            model_tier: ModelTier::default(),
            priority: TaskPriority::default(),
            max_retries: default_max_retries(),
            retry_count: 0,
            created_at: now(),
            request_id: None,
            metadata: JsonObject::new(),
            trace_context: None,
        }
    }

    /// Replaces the generated task id.
    #[must_use]
    pub fn with_task_id(mut self, task_id: impl Into<String>) -> Self {
        self.task_id = task_id.into();
        self
    }

    /// Sets the correlation key that names the result subject.
    #[must_use]
    pub fn with_parent_task_id(mut self, parent_task_id: impl Into<String>) -> Self {
        self.parent_task_id = Some(parent_task_id.into());
        self
    }

    /// Sets the requested tier.
    #[must_use]
    pub fn with_model_tier(mut self, tier: ModelTier) -> Self {
        self.model_tier = tier;
        self
    }

    /// Sets the priority.
    #[must_use]
    pub fn with_priority(mut self, priority: TaskPriority) -> Self {
        self.priority = priority;
        self
    }

    /// Sets `max_retries`.
    #[must_use]
    pub fn with_max_retries(mut self, max_retries: u32) -> Self {
        self.max_retries = max_retries;
        self
    }

    /// Sets `retry_count`.
    #[must_use]
    pub fn with_retry_count(mut self, retry_count: u32) -> Self {
        self.retry_count = retry_count;
        self
    }

    /// Sets the creation time (truncated to microseconds, the wire precision).
    #[must_use]
    pub fn with_created_at(mut self, created_at: DateTime<Utc>) -> Self {
        self.created_at = created_at.trunc_subsecs(6);
        self
    }

    /// Sets the tracing correlation id.
    #[must_use]
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// Replaces the metadata object.
    #[must_use]
    pub fn with_metadata(mut self, metadata: JsonObject) -> Self {
        self.metadata = metadata;
        self
    }

    /// Adds (or replaces) one metadata entry.
    #[must_use]
    pub fn with_metadata_entry(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// Attaches W3C trace headers, sent as `_trace_context`.
    #[must_use]
    pub fn with_trace_context(mut self, trace_context: JsonObject) -> Self {
        self.trace_context = Some(trace_context);
        self
    }

    /// Validates `worker_type` as a [`WorkerName`] (`^[a-z][a-z0-9_]*$`).
    pub fn worker_name(&self) -> Result<WorkerName, NameError> {
        WorkerName::try_from(self.worker_type.as_str())
    }

    /// The subject this task's result goes to: `loom.results.{parent_task_id or "default"}`.
    ///
    /// Fails when `parent_task_id` cannot be placed in a subject (see [`subject::results`]).
    pub fn result_subject(&self) -> Result<String, SubjectError> {
        subject::results(self.parent_task_id.as_deref())
    }
}
