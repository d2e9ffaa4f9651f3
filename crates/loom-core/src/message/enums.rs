//! The wire enums: [`ModelTier`], [`TaskPriority`], [`TaskStatus`], and their parse errors.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

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
