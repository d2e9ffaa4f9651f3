//! Sending one task through the router and waiting for its result, as `loom submit
//! --worker` does: subscribe to the result subject first, then publish.

use std::time::Duration;

use futures::StreamExt;
use loom_bus::{Bus, BusExt, PublishJsonError, SubscribeError};
use loom_core::message::{TaskMessage, TaskResult};
use loom_core::subject::{self, SubjectError};

/// Why no result came back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaskSubmitError {
    /// The task's ids cannot form a result subject.
    #[error("task '{task_id}' cannot be answered")]
    InvalidId {
        /// The task.
        task_id: String,
        /// Why.
        #[source]
        source: SubjectError,
    },
    /// Subscribing to the result subject failed.
    #[error("cannot subscribe to '{subject}'")]
    Subscribe {
        /// The subject.
        subject: String,
        /// Why.
        #[source]
        source: SubscribeError,
    },
    /// Publishing the task failed.
    #[error("cannot publish task '{task_id}'")]
    Publish {
        /// The task.
        task_id: String,
        /// Why.
        #[source]
        source: PublishJsonError,
    },
    /// No result within the timeout.
    #[error("no result for task '{task_id}' within {:.1}s (is a router and a '{worker_type}' worker running?)", timeout.as_secs_f64())]
    TimedOut {
        /// The task.
        task_id: String,
        /// Its worker type.
        worker_type: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// The bus closed the subscription.
    #[error("the result subscription of task '{task_id}' closed before an answer came")]
    Closed {
        /// The task.
        task_id: String,
    },
}

/// Publishes `task` to `loom.tasks.incoming` and waits for the terminal result whose
/// `task_id` matches on `loom.results.{parent_task_id}`. Non-terminal statuses are
/// skipped, never taken as the answer.
pub async fn submit_task(
    bus: &dyn Bus,
    task: &TaskMessage,
    timeout: Duration,
) -> Result<TaskResult, TaskSubmitError> {
    let subject = task
        .result_subject()
        .map_err(|source| TaskSubmitError::InvalidId {
            task_id: task.task_id.clone(),
            source,
        })?;
    let mut results = bus
        .subscribe(&subject, None)
        .await
        .map_err(|source| TaskSubmitError::Subscribe {
            subject: subject.clone(),
            source,
        })?
        .json::<TaskResult>();
    bus.publish_json(subject::TASKS_INCOMING, task)
        .await
        .map_err(|source| TaskSubmitError::Publish {
            task_id: task.task_id.clone(),
            source,
        })?;
    let wait = async {
        while let Some(result) = results.next().await {
            if result.task_id == task.task_id && result.is_terminal() {
                return Ok(result);
            }
        }
        Err(TaskSubmitError::Closed {
            task_id: task.task_id.clone(),
        })
    };
    match tokio::time::timeout(timeout, wait).await {
        Ok(outcome) => outcome,
        Err(_) => Err(TaskSubmitError::TimedOut {
            task_id: task.task_id.clone(),
            worker_type: task.worker_type.clone(),
            timeout,
        }),
    }
}
