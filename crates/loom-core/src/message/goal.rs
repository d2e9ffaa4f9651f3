//! [`OrchestratorGoal`]: a goal for a pipeline or LLM orchestrator.

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use super::enums::TaskPriority;
use super::time::timestamp_serde;
use super::{JsonObject, new_id, now};
use crate::subject::{self, SubjectError};

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
