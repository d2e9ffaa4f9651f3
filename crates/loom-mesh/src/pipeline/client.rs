//! The client side of a pipeline: submit a goal, follow its progress, wait for its result.

use std::time::Duration;

use futures::{FutureExt, StreamExt};
use loom_bus::{Bus, BusExt, PublishJsonError, SubscribeError};
use loom_core::PipelineName;
use loom_core::message::{OrchestratorGoal, TaskResult, TaskStatus};
use loom_core::subject::{self, SubjectError};
use serde_json::Value;

use super::progress::{PipelineProgress, progress_subject};
use super::run::format_seconds;

/// Why a goal got no final result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The goal id cannot be placed in a subject.
    #[error("goal id '{goal_id}' cannot be used in a subject")]
    InvalidGoalId {
        /// The goal.
        goal_id: String,
        /// Why.
        #[source]
        source: SubjectError,
    },
    /// Subscribing to the goal's result or progress subject failed.
    #[error("cannot subscribe to '{subject}'")]
    Subscribe {
        /// The subject.
        subject: String,
        /// Why.
        #[source]
        source: SubscribeError,
    },
    /// Publishing the goal failed.
    #[error("cannot publish goal '{goal_id}' to '{subject}'")]
    Publish {
        /// The goal.
        goal_id: String,
        /// The goal subject.
        subject: String,
        /// Why.
        #[source]
        source: PublishJsonError,
    },
    /// No final result arrived in time.
    #[error(
        "goal '{goal_id}' timed out after {}s ({stages_completed} stages completed)",
        format_seconds(timeout.as_secs_f64())
    )]
    TimedOut {
        /// The goal.
        goal_id: String,
        /// How long the caller waited.
        timeout: Duration,
        /// Stages reported finished before the timeout.
        stages_completed: u32,
    },
    /// The bus closed the result subscription before the final result arrived.
    #[error("the result subscription of goal '{goal_id}' closed before the pipeline answered")]
    Closed {
        /// The goal.
        goal_id: String,
    },
    /// The final result (the message whose `task_id` is the goal id) is not a `TaskResult`.
    #[error("malformed final result for goal '{goal_id}'")]
    MalformedResult {
        /// The goal.
        goal_id: String,
        /// Why it did not parse.
        #[source]
        source: serde_json::Error,
    },
}

/// Sends `goal` to pipeline `pipeline` (`loom.goals.{pipeline}`) and waits up to `timeout`
/// for its final result, calling `on_progress` for each stage that finishes.
///
/// Subscribes to `loom.results.{goal_id}` and `loom.progress.{goal_id}` before publishing,
/// so nothing is missed. Stage results on the result subject (`task_id` ≠ goal id) are not
/// returned; they count as finished stages when the pipeline sends no progress messages
/// (a Python orchestrator). A FAILED final result is `Ok`: check its `status`.
pub async fn submit_goal(
    bus: &dyn Bus,
    pipeline: &PipelineName,
    goal: OrchestratorGoal,
    timeout: Duration,
    on_progress: impl FnMut(PipelineProgress) + Send,
) -> Result<TaskResult, SubmitError> {
    submit_goal_to(bus, &subject::goals(pipeline), goal, timeout, on_progress).await
}

/// Like [`submit_goal`], publishing the goal to `goal_subject` instead; use
/// [`GOALS_INCOMING`](loom_core::subject::GOALS_INCOMING) to reach loom-ai 0.9.0
/// orchestrators (or Rust ones with the compatibility subscription).
pub async fn submit_goal_to(
    bus: &dyn Bus,
    goal_subject: &str,
    goal: OrchestratorGoal,
    timeout: Duration,
    mut on_progress: impl FnMut(PipelineProgress) + Send,
) -> Result<TaskResult, SubmitError> {
    let goal_id = goal.goal_id.clone();
    let invalid = |source| SubmitError::InvalidGoalId {
        goal_id: goal_id.clone(),
        source,
    };
    let results_subject = subject::results(Some(&goal_id)).map_err(invalid)?;
    let progress_subject = progress_subject(&goal_id).map_err(invalid)?;
    let subscribe_error = |subject: &str| {
        let subject = subject.to_owned();
        move |source| SubmitError::Subscribe { subject, source }
    };
    let mut results = bus
        .subscribe(&results_subject, None)
        .await
        .map_err(subscribe_error(&results_subject))?;
    let mut progress = bus
        .subscribe(&progress_subject, None)
        .await
        .map_err(subscribe_error(&progress_subject))?
        .json::<PipelineProgress>();
    bus.publish_json(goal_subject, &goal)
        .await
        .map_err(|source| SubmitError::Publish {
            goal_id: goal_id.clone(),
            subject: goal_subject.to_owned(),
            source,
        })?;
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let mut progress_open = true;
    let mut reported: Option<u32> = None;
    let mut stage_results = 0u32;
    loop {
        tokio::select! {
            // Progress first: the orchestrator publishes a stage's progress before the
            // final result, and both may be ready together.
            biased;
            p = progress.next(), if progress_open => match p {
                Some(p) => {
                    reported = Some(reported.unwrap_or(0).max(p.completed));
                    on_progress(p);
                }
                None => progress_open = false,
            },
            message = results.next() => {
                let Some(message) = message else {
                    return Err(SubmitError::Closed { goal_id });
                };
                let Ok(raw) = serde_json::from_slice::<Value>(&message.payload) else {
                    continue;
                };
                if raw.get("task_id").and_then(Value::as_str) != Some(goal_id.as_str()) {
                    if raw.get("status").and_then(Value::as_str) == Some(TaskStatus::Completed.as_str()) {
                        stage_results = stage_results.saturating_add(1);
                    }
                    continue;
                }
                let result = serde_json::from_value::<TaskResult>(raw)
                    .map_err(|source| SubmitError::MalformedResult { goal_id: goal_id.clone(), source })?;
                // Hand over progress that arrived with the result.
                while progress_open {
                    match progress.next().now_or_never() {
                        Some(Some(p)) => on_progress(p),
                        Some(None) => progress_open = false,
                        None => break,
                    }
                }
                return Ok(result);
            }
            () = &mut deadline => {
                return Err(SubmitError::TimedOut {
                    goal_id,
                    timeout,
                    stages_completed: reported.unwrap_or(stage_results),
                });
            }
        }
    }
}
