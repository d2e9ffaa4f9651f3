//! Wire messages exchanged over the bus, byte-compatible with loom-ai 0.9.0.
//!
//! The structs here serialise to exactly the JSON that the Python original's Pydantic
//! models produce with `model_dump(mode="json")`: the same keys in the same order, the
//! same enum strings, `null` for unset optional fields, and timestamps such as
//! `2026-03-25T10:00:00.123456Z`. [`to_python_json`] goes one step further and produces
//! the bytes of Python's `json.dumps` (`", "`/`": "` separators, non-ASCII escaped).
//!
//! Parsing is as lenient as Pydantic's default ("lax", extra keys ignored):
//!
//! * unknown keys are accepted and dropped (no wire struct denies unknown fields);
//! * missing optional keys take the documented defaults (new UUID4 ids, `now` timestamps);
//! * integer fields also accept whole floats (`2.0`) and numeric strings (`"2"`);
//! * timestamps accept any RFC 3339 form, a naive date-time (read as UTC, which is what the
//!   Python producers mean), a bare date, and Unix seconds or milliseconds;
//! * enum strings are case-sensitive: `"LOCAL"` is rejected, as in Pydantic.
//!
//! | type | travels on | from → to |
//! |---|---|---|
//! | [`TaskMessage`] | `loom.tasks.incoming`, `loom.tasks.{worker}.{tier}` | producers → router → worker |
//! | [`TaskResult`] | `loom.results.{parent_task_id or "default"}` | worker or orchestrator → requester |
//! | [`OrchestratorGoal`] | `loom.goals.incoming`, `loom.goals.{pipeline}` | client → orchestrator |
//! | [`DeadLetter`] | `loom.tasks.dead_letter` | router → dead-letter consumer |
//! | [`CancelRequest`] | `loom.control.cancel.{task_id}` | requester → worker (new in Rust) |

use std::fmt;
use std::io;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, SubsecRound, TimeZone, Timelike, Utc};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::name::{NameError, WorkerName};
use crate::subject::{self, SubjectError};

/// A JSON object, as carried in payloads, outputs, contexts and metadata.
pub type JsonObject = Map<String, Value>;

// ---------------------------------------------------------------------------------------------
// Enums
// ---------------------------------------------------------------------------------------------

/// The model tier a task asks for; it selects the worker subject and the LLM backend.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum ModelTier {
    /// A local model (Ollama, LM Studio, llama.cpp…).
    Local,
    /// The default hosted model.
    #[default]
    Standard,
    /// The most capable (and expensive) model.
    Frontier,
}

impl ModelTier {
    /// Every tier, in order.
    pub const ALL: [ModelTier; 3] = [ModelTier::Local, ModelTier::Standard, ModelTier::Frontier];

    /// The wire spelling: `local`, `standard` or `frontier`.
    pub fn as_str(self) -> &'static str {
        match self {
            ModelTier::Local => "local",
            ModelTier::Standard => "standard",
            ModelTier::Frontier => "frontier",
        }
    }
}

impl fmt::Display for ModelTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of `local`, `standard`, `frontier`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown tier '{0}' (valid: local, standard, frontier)")]
pub struct UnknownTier(pub String);

impl FromStr for ModelTier {
    type Err = UnknownTier;
    fn from_str(s: &str) -> Result<Self, UnknownTier> {
        match s {
            "local" => Ok(ModelTier::Local),
            "standard" => Ok(ModelTier::Standard),
            "frontier" => Ok(ModelTier::Frontier),
            other => Err(UnknownTier(other.to_owned())),
        }
    }
}

/// A task's priority. Carried through unchanged; nothing in 0.9.0 schedules by it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum TaskPriority {
    /// `low`.
    Low,
    /// `normal`, the default.
    #[default]
    Normal,
    /// `high`.
    High,
    /// `critical`.
    Critical,
}

impl TaskPriority {
    /// Every priority, lowest first.
    pub const ALL: [TaskPriority; 4] = [
        TaskPriority::Low,
        TaskPriority::Normal,
        TaskPriority::High,
        TaskPriority::Critical,
    ];

    /// The wire spelling: `low`, `normal`, `high` or `critical`.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskPriority::Low => "low",
            TaskPriority::Normal => "normal",
            TaskPriority::High => "high",
            TaskPriority::Critical => "critical",
        }
    }
}

impl fmt::Display for TaskPriority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not one of `low`, `normal`, `high`, `critical`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown priority '{0}' (valid: low, normal, high, critical)")]
pub struct UnknownPriority(pub String);

impl FromStr for TaskPriority {
    type Err = UnknownPriority;
    fn from_str(s: &str) -> Result<Self, UnknownPriority> {
        TaskPriority::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownPriority(s.to_owned()))
    }
}

/// Where a task stands. Workers and orchestrators only ever emit `completed` or `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    /// `pending`: accepted, not started.
    Pending,
    /// `processing`: running.
    Processing,
    /// `completed`: finished with an output.
    Completed,
    /// `failed`: finished with an error.
    Failed,
    /// `retry`: defined on the wire but never produced by loom-ai 0.9.0.
    Retry,
}

impl TaskStatus {
    /// Every status, in wire-declaration order.
    pub const ALL: [TaskStatus; 5] = [
        TaskStatus::Pending,
        TaskStatus::Processing,
        TaskStatus::Completed,
        TaskStatus::Failed,
        TaskStatus::Retry,
    ];

    /// The wire spelling: `pending`, `processing`, `completed`, `failed` or `retry`.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::Processing => "processing",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
            TaskStatus::Retry => "retry",
        }
    }

    /// True for `completed` and `failed`: no further result will follow.
    pub fn is_terminal(self) -> bool {
        matches!(self, TaskStatus::Completed | TaskStatus::Failed)
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a task status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown status '{0}' (valid: pending, processing, completed, failed, retry)")]
pub struct UnknownStatus(pub String);

impl FromStr for TaskStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, UnknownStatus> {
        TaskStatus::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

// ---------------------------------------------------------------------------------------------
// TaskMessage
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// TaskResult
// ---------------------------------------------------------------------------------------------

/// Token counts by kind, in insertion order (`prompt_tokens`, then `completion_tokens`).
///
/// Travels as a JSON object of integers. Worker results always carry both standard keys
/// (zeros when unknown); final goal results carry `{}`. Order is kept so that Rust output
/// matches the Python original byte for byte.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenUsage {
    entries: Vec<(String, i64)>,
}

impl TokenUsage {
    /// Key of the prompt (input) token count.
    pub const PROMPT: &'static str = "prompt_tokens";
    /// Key of the completion (output) token count.
    pub const COMPLETION: &'static str = "completion_tokens";

    /// No counts: `{}`.
    pub fn new() -> Self {
        TokenUsage::default()
    }

    /// `{"prompt_tokens": prompt, "completion_tokens": completion}`, as workers send it.
    pub fn from_counts(prompt: i64, completion: i64) -> Self {
        TokenUsage {
            entries: vec![
                (Self::PROMPT.to_owned(), prompt),
                (Self::COMPLETION.to_owned(), completion),
            ],
        }
    }

    /// The count stored under `key`, if any.
    pub fn get(&self, key: &str) -> Option<i64> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// Sets `key` to `value`, keeping its position if present; returns the old value.
    pub fn insert(&mut self, key: impl Into<String>, value: i64) -> Option<i64> {
        let key = key.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => Some(std::mem::replace(v, value)),
            None => {
                self.entries.push((key, value));
                None
            }
        }
    }

    /// Adds every count of `other` to this one (missing keys count as 0).
    pub fn add(&mut self, other: &TokenUsage) {
        for (k, v) in &other.entries {
            let sum = self.get(k).unwrap_or(0).saturating_add(*v);
            self.insert(k.clone(), sum);
        }
    }

    /// `prompt_tokens`, or 0.
    pub fn prompt_tokens(&self) -> i64 {
        self.get(Self::PROMPT).unwrap_or(0)
    }

    /// `completion_tokens`, or 0.
    pub fn completion_tokens(&self) -> i64 {
        self.get(Self::COMPLETION).unwrap_or(0)
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, i64)> + '_ {
        self.entries.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True for `{}`.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<K: Into<String>> FromIterator<(K, i64)> for TokenUsage {
    fn from_iter<I: IntoIterator<Item = (K, i64)>>(iter: I) -> Self {
        let mut usage = TokenUsage::new();
        for (k, v) in iter {
            usage.insert(k, v);
        }
        usage
    }
}

impl Serialize for TokenUsage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.entries.len()))?;
        for (k, v) in &self.entries {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for TokenUsage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct UsageVisitor;
        impl<'de> Visitor<'de> for UsageVisitor {
            type Value = TokenUsage;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of integer token counts")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TokenUsage, A::Error> {
                let mut usage = TokenUsage::new();
                while let Some((k, LaxInt(v))) = map.next_entry::<String, LaxInt<i64>>()? {
                    usage.insert(k, v);
                }
                Ok(usage)
            }
        }
        deserializer.deserialize_map(UsageVisitor)
    }
}

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

// ---------------------------------------------------------------------------------------------
// OrchestratorGoal
// ---------------------------------------------------------------------------------------------

/// A goal for a pipeline or LLM orchestrator (client → orchestrator).
///
/// The final result comes back on `loom.results.{goal_id}` with `task_id == goal_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OrchestratorGoal {
    /// Identity of the goal. Default: a new UUID4.
    #[serde(default = "new_id")]
    pub goal_id: String,
    /// What to do, in words (`"MCP tool call"` from the gateway).
    pub instruction: String,
    /// Domain data (tool arguments, `file_ref`…). Default `{}`.
    #[serde(default)]
    pub context: JsonObject,
    /// Log correlation only. Serialised as `null` when unset.
    #[serde(default)]
    pub request_id: Option<String>,
    /// Carried through; unused. Default `normal`.
    #[serde(default)]
    pub priority: TaskPriority,
    /// When the goal was created. Default: now.
    #[serde(default = "now", with = "timestamp_serde")]
    pub created_at: DateTime<Utc>,
}

impl OrchestratorGoal {
    /// A goal with a new UUID4 id, empty context, created now.
    pub fn new(instruction: impl Into<String>) -> Self {
        OrchestratorGoal {
            goal_id: new_id(),
            instruction: instruction.into(),
            context: JsonObject::new(),
            request_id: None,
            priority: TaskPriority::default(),
            created_at: now(),
        }
    }

    /// Replaces the generated goal id.
    #[must_use]
    pub fn with_goal_id(mut self, goal_id: impl Into<String>) -> Self {
        self.goal_id = goal_id.into();
        self
    }

    /// Sets the context object.
    #[must_use]
    pub fn with_context(mut self, context: JsonObject) -> Self {
        self.context = context;
        self
    }

    /// Sets the request id.
    #[must_use]
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// Sets the priority.
    #[must_use]
    pub fn with_priority(mut self, priority: TaskPriority) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the creation time (truncated to microseconds).
    #[must_use]
    pub fn with_created_at(mut self, created_at: DateTime<Utc>) -> Self {
        self.created_at = created_at.trunc_subsecs(6);
        self
    }

    /// The subject the final result arrives on: `loom.results.{goal_id}`.
    pub fn result_subject(&self) -> Result<String, SubjectError> {
        subject::results(Some(&self.goal_id))
    }
}

// ---------------------------------------------------------------------------------------------
// DeadLetter and CancelRequest
// ---------------------------------------------------------------------------------------------

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

/// Reads any JSON value, keeping it only when it is an object.
fn object_or_none<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<JsonObject>, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::Object(map) => Some(map),
        _ => None,
    })
}

fn string_field(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

// ---------------------------------------------------------------------------------------------
// Defaults
// ---------------------------------------------------------------------------------------------

/// A new random id, as a lowercase hyphenated UUID4 (the default for task and goal ids).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The current time at wire precision (UTC, truncated to microseconds).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

fn default_max_retries() -> u32 {
    2
}

// ---------------------------------------------------------------------------------------------
// Timestamps
// ---------------------------------------------------------------------------------------------

/// A string or number that is not a date-time the wire accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid datetime '{0}': expected ISO-8601 such as 2026-03-25T10:00:00Z")]
pub struct InvalidTimestamp(pub String);

/// Formats `t` as Pydantic v2 does for a UTC datetime: ISO-8601 with a `Z` suffix and six
/// fractional digits only when the sub-second part is non-zero
/// (`2026-03-25T10:00:00.123456Z`, `2026-03-25T10:00:00Z`). Sub-microsecond digits are
/// truncated.
pub fn format_timestamp(t: &DateTime<Utc>) -> String {
    let mut buf = [0u8; TIMESTAMP_MAX_LEN];
    match timestamp_ascii(t, &mut buf) {
        Some(text) => text.to_owned(),
        None => format_timestamp_chrono(t),
    }
}

/// The longest timestamp [`timestamp_ascii`] writes: `2026-03-25T10:00:00.123456Z`.
const TIMESTAMP_MAX_LEN: usize = 27;

/// [`format_timestamp`] through chrono's formatter: years outside 0–9999 and leap seconds.
fn format_timestamp_chrono(t: &DateTime<Utc>) -> String {
    let micros = t.timestamp_subsec_micros();
    if micros == 0 {
        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
    } else {
        format!("{}.{micros:06}Z", t.format("%Y-%m-%dT%H:%M:%S"))
    }
}

/// [`format_timestamp`]'s text written into `buf` without chrono's format-string parser
/// (timestamps are formatted for every message on the hot path). `None` for what only
/// chrono formats: a year outside 0–9999 (chrono adds a sign) or a leap second.
fn timestamp_ascii<'a>(t: &DateTime<Utc>, buf: &'a mut [u8; TIMESTAMP_MAX_LEN]) -> Option<&'a str> {
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let nanos = t.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let mut put = |at: usize, value: u32, digits: usize| {
        let mut v = value;
        for i in (0..digits).rev() {
            buf[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, year, 4);
    put(5, t.month(), 2);
    put(8, t.day(), 2);
    put(11, t.hour(), 2);
    put(14, t.minute(), 2);
    put(17, t.second(), 2);
    let micros = nanos / 1_000;
    let len = if micros == 0 {
        20
    } else {
        put(20, micros, 6);
        27
    };
    for (at, sep) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')] {
        buf[at] = sep;
    }
    if micros != 0 {
        buf[19] = b'.';
    }
    buf[len - 1] = b'Z';
    std::str::from_utf8(&buf[..len]).ok()
}

/// Parses a wire timestamp: any RFC 3339 / ISO-8601 date-time with `Z` or an offset
/// (converted to UTC), a naive date-time (`2026-03-25T10:00:00`, `2026-03-25 10:00`), read
/// as UTC, or a bare date (midnight UTC). The result is truncated to microseconds.
pub fn parse_timestamp(s: &str) -> Result<DateTime<Utc>, InvalidTimestamp> {
    parse_timestamp_inner(s.trim())
        .map(|t| t.trunc_subsecs(6))
        .ok_or_else(|| InvalidTimestamp(s.to_owned()))
}

fn parse_timestamp_inner(s: &str) -> Option<DateTime<Utc>> {
    // Accept a space between date and time, as Python's `fromisoformat` and Pydantic do.
    let normalised;
    let s = if s.len() > 10 && s.as_bytes().get(10) == Some(&b' ') {
        normalised = format!("{}T{}", &s[..10], &s[11..]);
        normalised.as_str()
    } else {
        s
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Some(naive) = s.strip_suffix(['Z', 'z']) {
        return parse_naive(naive).map(|n| Utc.from_utc_datetime(&n));
    }
    const ZONED: [&str; 4] = [
        "%Y-%m-%dT%H:%M:%S%.f%:z",
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M%:z",
        "%Y-%m-%dT%H:%M%z",
    ];
    for fmt in ZONED {
        if let Ok(t) = DateTime::parse_from_str(s, fmt) {
            return Some(t.with_timezone(&Utc));
        }
    }
    parse_naive(s).map(|n| Utc.from_utc_datetime(&n))
}

fn parse_naive(s: &str) -> Option<NaiveDateTime> {
    const NAIVE: [&str; 2] = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"];
    NAIVE
        .iter()
        .find_map(|fmt| NaiveDateTime::parse_from_str(s, fmt).ok())
        .or_else(|| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
}

/// Unix time as Pydantic reads it: seconds, or milliseconds when the magnitude exceeds 2e10.
/// Rounded to the nearest microsecond.
fn from_unix_number(n: f64) -> Option<DateTime<Utc>> {
    let micros = if n.abs() > 2e10 { n * 1e3 } else { n * 1e6 }.round();
    // ±9.2e18 µs is far beyond chrono's range; the bound keeps the cast exact.
    if !micros.is_finite() || micros.abs() >= 9.0e18 {
        return None;
    }
    #[allow(clippy::cast_possible_truncation)]
    let micros = micros as i64;
    Utc.timestamp_micros(micros).single()
}

/// `#[serde(with = "timestamp_serde")]` for `DateTime<Utc>` fields in the wire format.
mod timestamp_serde {
    use super::*;

    pub(super) fn serialize<S: Serializer>(
        t: &DateTime<Utc>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; TIMESTAMP_MAX_LEN];
        match timestamp_ascii(t, &mut buf) {
            Some(text) => serializer.serialize_str(text),
            None => serializer.serialize_str(&format_timestamp_chrono(t)),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<DateTime<Utc>, D::Error> {
        deserializer.deserialize_any(TimestampVisitor)
    }

    struct TimestampVisitor;

    impl Visitor<'_> for TimestampVisitor {
        type Value = DateTime<Utc>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an ISO-8601 datetime string or a Unix timestamp")
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<DateTime<Utc>, E> {
            parse_timestamp(s).map_err(E::custom)
        }

        fn visit_i64<E: de::Error>(self, n: i64) -> Result<DateTime<Utc>, E> {
            #[allow(clippy::cast_precision_loss)]
            from_unix_number(n as f64).ok_or_else(|| E::custom(InvalidTimestamp(n.to_string())))
        }

        fn visit_u64<E: de::Error>(self, n: u64) -> Result<DateTime<Utc>, E> {
            #[allow(clippy::cast_precision_loss)]
            from_unix_number(n as f64).ok_or_else(|| E::custom(InvalidTimestamp(n.to_string())))
        }

        fn visit_f64<E: de::Error>(self, n: f64) -> Result<DateTime<Utc>, E> {
            from_unix_number(n).ok_or_else(|| E::custom(InvalidTimestamp(n.to_string())))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Lax integers
// ---------------------------------------------------------------------------------------------

/// An integer read as Pydantic's lax mode does: a JSON integer, a float with no fractional
/// part, or a string holding an integer.
struct LaxInt<T>(T);

impl<'de, T> Deserialize<'de> for LaxInt<T>
where
    T: TryFrom<i64> + TryFrom<u64>,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(LaxIntVisitor(std::marker::PhantomData))
            .map(LaxInt)
    }
}

struct LaxIntVisitor<T>(std::marker::PhantomData<T>);

impl<T> LaxIntVisitor<T>
where
    T: TryFrom<i64> + TryFrom<u64>,
{
    fn out_of_range<E: de::Error>(shown: &dyn fmt::Display) -> E {
        E::custom(format_args!("integer {shown} is out of range"))
    }
}

impl<T> Visitor<'_> for LaxIntVisitor<T>
where
    T: TryFrom<i64> + TryFrom<u64>,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer")
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<T, E> {
        T::try_from(n).map_err(|_| Self::out_of_range(&n))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<T, E> {
        T::try_from(n).map_err(|_| Self::out_of_range(&n))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<T, E> {
        // Exactly representable whole numbers only; 2^63 is the first value `as i64` saturates on.
        if n.fract() == 0.0 && n.abs() < 9.223_372_036_854_776e18 {
            #[allow(clippy::cast_possible_truncation)]
            let i = n as i64;
            self.visit_i64(i)
        } else {
            Err(E::invalid_type(de::Unexpected::Float(n), &"an integer"))
        }
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        let t = s.trim();
        if let Ok(i) = t.parse::<i64>() {
            self.visit_i64(i)
        } else if let Ok(u) = t.parse::<u64>() {
            self.visit_u64(u)
        } else {
            Err(E::invalid_value(de::Unexpected::Str(s), &"an integer"))
        }
    }
}

fn lax_int<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<i64> + TryFrom<u64>,
{
    LaxInt::<T>::deserialize(deserializer).map(|LaxInt(v)| v)
}

// ---------------------------------------------------------------------------------------------
// Python-compatible encoding
// ---------------------------------------------------------------------------------------------

/// Serialises `value` to the exact bytes Python's `json.dumps` produces for the same data:
/// `", "` and `": "` separators, every non-ASCII or non-printable character escaped as
/// `\uXXXX` (surrogate pairs above U+FFFF), and floats in Python's `repr` form (`1e-05`,
/// `1e+16`, `100.0`).
///
/// Any JSON parser reads `serde_json::to_vec` output just as well; use this where bytes
/// are compared (golden tests, signatures, logs diffed against the Python original).
/// Non-finite floats become `null`, where Python would write the non-JSON `NaN`.
pub fn to_python_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(256);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    value.serialize(&mut serializer)?;
    Ok(out)
}

struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> io::Result<()> {
        if first { Ok(()) } else { w.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + io::Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f32) -> io::Result<()> {
        w.write_all(python_float_repr(f64::from(value)).as_bytes())
    }

    fn write_f64<W: ?Sized + io::Write>(&mut self, w: &mut W, value: f64) -> io::Result<()> {
        w.write_all(python_float_repr(value).as_bytes())
    }

    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if (' '..='~').contains(&c) {
                continue;
            }
            w.write_all(&fragment.as_bytes()[start..i])?;
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                write!(w, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }
}

/// Python's `repr(float)`: shortest round-trip digits, scientific notation when the decimal
/// exponent is below -4 or at least 16 (with a signed, two-digit-minimum exponent), and a
/// trailing `.0` on whole numbers.
fn python_float_repr(v: f64) -> String {
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // `{:e}` gives the shortest round-trip digits, e.g. "-1.2345e16" or "1e-5".
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if !(-4..16).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let exp_sign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{exp_sign}{:02}", exp.abs());
    }
    // `exp` is in -4..16 here, so the conversions cannot fail.
    let point = usize::try_from(exp + 1).unwrap_or(0);
    if exp < 0 {
        let zeros = "0".repeat(usize::try_from(-exp - 1).unwrap_or(0));
        format!("{sign}0.{zeros}{digits}")
    } else if digits.len() <= point {
        format!("{sign}{digits}{}.0", "0".repeat(point - digits.len()))
    } else {
        format!("{sign}{}.{}", &digits[..point], &digits[point..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_float_repr_matches_python() {
        let cases = [
            (1e-05, "1e-05"),
            (1e16, "1e+16"),
            (1.5e300, "1.5e+300"),
            (0.1, "0.1"),
            (123.0, "123.0"),
            (12_345_678_901_234_567.0, "1.2345678901234568e+16"),
            (1e15, "1000000000000000.0"),
            (0.0001, "0.0001"),
            (-2.5, "-2.5"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1.0, "1.0"),
            (123.456, "123.456"),
        ];
        for (v, want) in cases {
            assert_eq!(python_float_repr(v), want, "{v}");
        }
    }

    #[test]
    fn timestamps_format_like_pydantic() {
        let t = parse_timestamp("2026-03-25T10:00:00.123456789Z").expect("valid");
        assert_eq!(format_timestamp(&t), "2026-03-25T10:00:00.123456Z");
        let t = parse_timestamp("2026-03-25T10:00:00Z").expect("valid");
        assert_eq!(format_timestamp(&t), "2026-03-25T10:00:00Z");
        let t = parse_timestamp("2026-03-25T10:00:00.5+02:00").expect("valid");
        assert_eq!(format_timestamp(&t), "2026-03-25T08:00:00.500000Z");
    }

    #[test]
    fn fast_timestamp_format_matches_chrono() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut cases = vec![
            Utc.timestamp_micros(0).single().expect("epoch"),
            parse_timestamp("0000-01-01T00:00:00Z").expect("year 0"),
            parse_timestamp("9999-12-31T23:59:59.999999Z").expect("year 9999"),
            parse_timestamp("2024-02-29T12:34:56.000001Z").expect("leap day"),
        ];
        for _ in 0..20_000 {
            // Years about 0–9999, every other one with a whole second.
            let secs = (next() % 315_000_000_000) as i64 - 62_000_000_000;
            let micros = if next() % 2 == 0 {
                0
            } else {
                next() % 1_000_000
            };
            let t = Utc
                .timestamp_micros(secs * 1_000_000 + micros as i64)
                .single();
            cases.extend(t);
        }
        for t in cases {
            assert_eq!(format_timestamp(&t), format_timestamp_chrono(&t), "{t:?}");
        }
        // Outside the fast path: chrono's signed years and leap seconds.
        for year in [-1, 10_000] {
            let far = Utc
                .with_ymd_and_hms(year, 1, 1, 0, 0, 0)
                .single()
                .expect("valid date");
            assert_eq!(format_timestamp(&far), format_timestamp_chrono(&far));
        }
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_micro_opt(23, 59, 59, 1_500_000))
            .map(|n| Utc.from_utc_datetime(&n))
            .expect("leap second");
        assert_eq!(format_timestamp(&leap), format_timestamp_chrono(&leap));
    }

    #[test]
    fn timestamps_accept_python_forms() {
        for (input, want) in [
            ("2026-03-25T10:00:00", "2026-03-25T10:00:00Z"),
            ("2026-03-25 10:00", "2026-03-25T10:00:00Z"),
            ("2026-03-25", "2026-03-25T00:00:00Z"),
            ("2026-03-25T10:00:00.000001", "2026-03-25T10:00:00.000001Z"),
            ("2026-03-25T10:00:00+0000", "2026-03-25T10:00:00Z"),
            ("2026-03-25T10:00:00.25z", "2026-03-25T10:00:00.250000Z"),
        ] {
            let t = parse_timestamp(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(format_timestamp(&t), want, "{input}");
        }
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-03-25T25:00:00",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn unix_numbers_read_as_seconds_or_milliseconds() {
        let s = from_unix_number(1_700_000_000.0).expect("valid");
        assert_eq!(format_timestamp(&s), "2023-11-14T22:13:20Z");
        let ms = from_unix_number(1_700_000_000_123.0).expect("valid");
        assert_eq!(format_timestamp(&ms), "2023-11-14T22:13:20.123000Z");
    }

    #[test]
    fn token_usage_keeps_order_and_sums() {
        let mut usage = TokenUsage::from_counts(10, 5);
        usage.add(&TokenUsage::from_counts(1, 2));
        assert_eq!(usage.prompt_tokens(), 11);
        assert_eq!(usage.completion_tokens(), 7);
        let json = serde_json::to_string(&usage).expect("serialises");
        assert_eq!(json, r#"{"prompt_tokens":11,"completion_tokens":7}"#);
    }
}
