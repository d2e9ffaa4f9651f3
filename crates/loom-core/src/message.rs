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

mod control;
mod enums;
mod goal;
mod lax;
mod python_json;
mod result;
mod task;
mod time;
mod token_usage;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Map, Value};

pub use control::{CancelRequest, DeadLetter};
pub use enums::{ModelTier, TaskPriority, TaskStatus, UnknownPriority, UnknownStatus, UnknownTier};
pub use goal::OrchestratorGoal;
pub use python_json::to_python_json;
pub use result::TaskResult;
pub use task::TaskMessage;
pub use time::{InvalidTimestamp, format_timestamp, parse_timestamp};
pub use token_usage::TokenUsage;

/// A JSON object, as carried in payloads, outputs, contexts and metadata.
pub type JsonObject = Map<String, Value>;

/// A new random id, as a lowercase hyphenated UUID4 (the default for task and goal ids).
pub fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The current time at wire precision (UTC, truncated to microseconds).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
