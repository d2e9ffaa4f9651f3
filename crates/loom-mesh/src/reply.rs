//! Answering callers: publishing `TaskResult`s to `loom.results.{parent_task_id}`.
//!
//! The original left callers waiting for their timeout whenever a task was malformed,
//! dead-lettered or failed before its worker could answer (mesh spec §19, B12). Every
//! component answers through these functions, which also recover the correlation ids
//! from a body that did not parse as a `TaskMessage`.

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use loom_bus::{Bus, PublishJsonError};
use loom_core::message::{TaskMessage, TaskResult};
use loom_core::subject;
use serde_json::Value;
use tracing::warn;

/// Why a result could not be published.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// The parent task id cannot be part of a subject (wildcards, spaces…).
    #[error("cannot answer task '{task_id}'")]
    Subject {
        /// The task.
        task_id: String,
        /// Why.
        #[source]
        source: subject::SubjectError,
    },
    /// The bus refused the message.
    #[error("cannot publish the result of task '{task_id}'")]
    Publish {
        /// The task.
        task_id: String,
        /// Why.
        #[source]
        source: PublishJsonError,
    },
}

/// Publishes `result` to `loom.results.{parent_task_id or "default"}`.
pub async fn publish_result(bus: &dyn Bus, result: &TaskResult) -> Result<(), ReplyError> {
    let subject = subject::results(result.parent_task_id.as_deref()).map_err(|source| {
        ReplyError::Subject {
            task_id: result.task_id.clone(),
            source,
        }
    })?;
    let publish_error = |source| ReplyError::Publish {
        task_id: result.task_id.clone(),
        source,
    };
    let body = encode_result(result).map_err(|source| {
        publish_error(PublishJsonError::Encode {
            subject: subject.clone(),
            source,
        })
    })?;
    bus.publish(&subject, Bytes::from(body))
        .await
        .map_err(|e| publish_error(PublishJsonError::Publish(e)))
}

/// The length of the last result encoded here: the next one's buffer starts at that
/// size, since a worker's results tend to be alike (encoding a 1 KiB output into
/// `serde_json::to_vec`'s 128-byte start grows the buffer four times).
static LAST_RESULT_LEN: AtomicUsize = AtomicUsize::new(256);

/// Largest starting buffer, so that one huge result does not make every later one
/// allocate as much.
const MAX_RESULT_BUFFER_HINT: usize = 64 * 1024;

/// `result` as JSON, exactly as `serde_json::to_vec` writes it.
fn encode_result(result: &TaskResult) -> Result<Vec<u8>, serde_json::Error> {
    let hint = LAST_RESULT_LEN
        .load(Ordering::Relaxed)
        .min(MAX_RESULT_BUFFER_HINT);
    // A little headroom for results a few bytes longer than the last.
    let mut body = Vec::with_capacity(hint + hint / 8);
    serde_json::to_writer(&mut body, result)?;
    LAST_RESULT_LEN.store(body.len(), Ordering::Relaxed);
    Ok(body)
}

/// Publishes a FAILED result for `task`, logging (not returning) a publish failure:
/// the caller has nothing better to do with it.
pub async fn answer_failed(bus: &dyn Bus, task: &TaskMessage, error: impl Into<String>) {
    let result = TaskResult::failed(task, error);
    if let Err(e) = publish_result(bus, &result).await {
        warn!(task_id = %task.task_id, error = %e, "Cannot publish FAILED result.");
    }
}

/// The ids a FAILED answer needs, read from a task body that may not be a valid
/// `TaskMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveredIds {
    /// The task's id.
    pub task_id: String,
    /// Where its result goes.
    pub parent_task_id: Option<String>,
    /// The worker type it named, or `""`.
    pub worker_type: String,
}

impl RecoveredIds {
    /// Reads `task_id`, `parent_task_id` and `worker_type` from `raw`; `None` without a
    /// usable `task_id` (nobody could match the answer).
    pub fn from_raw(raw: &Value) -> Option<Self> {
        let task_id = raw
            .get("task_id")?
            .as_str()
            .filter(|s| !s.is_empty())?
            .to_owned();
        let parent_task_id = raw
            .get("parent_task_id")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let worker_type = raw
            .get("worker_type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Some(RecoveredIds {
            task_id,
            parent_task_id,
            worker_type,
        })
    }
}

/// Publishes a FAILED result built from recovered ids, when a subject can be derived.
pub async fn answer_failed_raw(bus: &dyn Bus, ids: &RecoveredIds, error: impl Into<String>) {
    let result = TaskResult::failed_for(
        ids.task_id.clone(),
        ids.parent_task_id.clone(),
        ids.worker_type.clone(),
        error,
    );
    if let Err(e) = publish_result(bus, &result).await {
        warn!(task_id = %ids.task_id, error = %e, "Cannot publish FAILED result.");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_recovered_from_a_partial_task() {
        let raw = serde_json::json!({"task_id": "t1", "parent_task_id": "mcp-1", "payload": "not an object"});
        let ids = RecoveredIds::from_raw(&raw).expect("ids");
        assert_eq!(
            ids,
            RecoveredIds {
                task_id: "t1".into(),
                parent_task_id: Some("mcp-1".into()),
                worker_type: String::new()
            }
        );
        assert_eq!(
            RecoveredIds::from_raw(&serde_json::json!({"payload": {}})),
            None
        );
        assert_eq!(RecoveredIds::from_raw(&serde_json::json!([1])), None);
    }
}
