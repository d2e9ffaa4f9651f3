//! One goal's run: levels in order, the stages of a level at once, retries,
//! cancellation, progress and the final result.
//!
//! One subscription to `loom.results.{goal_id}`, made before any task is published (L1),
//! serves every stage: a demultiplexer hands each result to the stage attempt waiting
//! for its `task_id` and drops the rest (late answers of timed-out attempts, duplicates,
//! the goal's own final result).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use loom_bus::{Bus, BusExt, Subscription};
use loom_core::config::{PipelineConfig, StageConfig};
use loom_core::contract::{Contract, Side, Violations};
use loom_core::message::{
    CancelRequest, JsonObject, OrchestratorGoal, TaskMessage, TaskResult, TaskStatus, TokenUsage,
    format_timestamp, now,
};
use loom_core::subject;
use loom_llm::{ToolError, ToolHost};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::context::{Context, PathError};
use super::progress::{PipelineProgress, StageStatus, progress_subject};

/// Runs `goal` through `config` and returns its final result (not yet published).
pub(crate) async fn run_goal(
    bus: &dyn Bus,
    config: &PipelineConfig,
    tools: Option<&dyn ToolHost>,
    goal: OrchestratorGoal,
    cancel: CancellationToken,
) -> TaskResult {
    let mut run = GoalRun::new(bus, config, &goal);
    run.tools = tools;
    info!(
        stages = config.stages.len(),
        levels = config.levels.len(),
        "Goal started."
    );
    // L1: subscribe before publishing any stage task.
    let results = match subject::results(Some(&goal.goal_id)) {
        Ok(s) => bus.subscribe(&s, None).await.map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let results = match results {
        Ok(sub) => sub,
        Err(e) => {
            return run.finish(Err(GoalError::Pipeline(format!(
                "cannot subscribe to the goal's results: {e}"
            ))));
        }
    };
    let mut goal_cancel = match subject::control_cancel(&goal.goal_id) {
        Ok(s) => match bus.subscribe(&s, None).await {
            Ok(sub) => Some(sub),
            Err(e) => {
                warn!(error = %e, "Cannot subscribe to the goal's cancel subject; it cannot be cancelled.");
                None
            }
        },
        // A goal id spanning several tokens cannot name a cancel subject.
        Err(_) => None,
    };
    let demux = run.demux(results);
    tokio::pin!(demux);
    let outcome = tokio::select! {
        biased;
        reason = next_cancel(&mut goal_cancel) => Err(GoalError::Cancelled(reason)),
        () = cancel.cancelled() => Err(GoalError::Cancelled(Some("orchestrator shutting down".to_owned()))),
        () = &mut demux => Err(GoalError::Pipeline("the goal's result subscription ended".to_owned())),
        outcome = run.levels() => outcome,
    };
    if let Err(e) = &outcome {
        if !matches!(e, GoalError::Stage(_)) {
            warn!(error = %e, "Goal stopped; cancelling its stage tasks in flight.");
            run.cancel_in_flight("pipeline cancelled").await;
        }
    }
    run.finish(outcome)
}

/// What a goal's stages have produced so far.
struct GoalState {
    context: Context,
    timeline: Vec<Value>,
    usage: TokenUsage,
    /// Stages finished in any way, for progress.
    finished: u32,
}

/// Waiting stage attempts: task id → (stage, where its result goes).
type Waiters = HashMap<String, (String, oneshot::Sender<TaskResult>)>;

struct GoalRun<'a> {
    bus: &'a dyn Bus,
    config: &'a PipelineConfig,
    /// What `mcp_tool` stages call.
    tools: Option<&'a dyn ToolHost>,
    goal_id: String,
    started: Instant,
    progress_subject: Option<String>,
    total: u32,
    state: Mutex<GoalState>,
    /// Entries are removed when their result arrives or their attempt times out; what is
    /// left after the level future is dropped is exactly the tasks still in flight.
    waiters: Mutex<Waiters>,
}

impl<'a> GoalRun<'a> {
    fn new(bus: &'a dyn Bus, config: &'a PipelineConfig, goal: &OrchestratorGoal) -> Self {
        GoalRun {
            bus,
            config,
            tools: None,
            goal_id: goal.goal_id.clone(),
            started: Instant::now(),
            progress_subject: progress_subject(&goal.goal_id).ok(),
            total: u32::try_from(config.stages.len()).unwrap_or(u32::MAX),
            state: Mutex::new(GoalState {
                context: Context::new(goal, config),
                timeline: Vec::new(),
                usage: TokenUsage::new(),
                finished: 0,
            }),
            waiters: Mutex::new(HashMap::new()),
        }
    }

    fn state(&self) -> MutexGuard<'_, GoalState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn waiters(&self) -> MutexGuard<'_, Waiters> {
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs the levels in order. A failing stage stops the goal at once: its siblings
    /// still running are abandoned and their tasks cancelled (L5).
    async fn levels(&self) -> Result<(), GoalError> {
        for level in &self.config.levels {
            let mut running: FuturesUnordered<_> = level
                .iter()
                .filter_map(|&i| self.config.stages.get(i))
                .map(|stage| async move { (stage, self.run_stage(stage).await) })
                .collect();
            while let Some((stage, outcome)) = running.next().await {
                if let Err(err) = outcome {
                    drop(running);
                    warn!(stage = %stage.name, error = %err, "Stage failed; the goal fails.");
                    self.cancel_in_flight(&format!("stage '{}' failed", stage.name))
                        .await;
                    let finished = {
                        let mut st = self.state();
                        st.finished += 1;
                        st.finished
                    };
                    self.progress(stage, StageStatus::Failed, finished, Some(err.to_string()))
                        .await;
                    return Err(GoalError::Stage(err));
                }
            }
        }
        Ok(())
    }

    async fn run_stage(&self, stage: &StageConfig) -> Result<(), StageError> {
        let name = stage.name.as_str();
        let prepared = {
            let mut st = self.state();
            match &stage.condition {
                Some(c) if !st.context.condition_holds(c) => {
                    st.context.skip(name, c);
                    st.finished += 1;
                    Err(st.finished)
                }
                _ => Ok(st.context.payload(&stage.input_mapping)),
            }
        };
        let payload = match prepared {
            Err(finished) => {
                info!(stage = name, "Stage skipped: its condition is false.");
                self.progress(stage, StageStatus::Skipped, finished, None)
                    .await;
                return Ok(());
            }
            Ok(Err(error)) => {
                return Err(StageError::Mapping {
                    stage: name.to_owned(),
                    error,
                });
            }
            Ok(Ok(payload)) => payload,
        };
        let payload = check_contract(
            stage.input_schema.as_ref(),
            Value::Object(payload),
            Side::Input,
        )
        .map_err(|errors| StageError::Input {
            stage: name.to_owned(),
            errors,
        })?;
        let payload = match payload {
            Value::Object(map) => map,
            _ => JsonObject::new(),
        };
        let timeout_seconds = stage.timeout_seconds.unwrap_or(self.config.timeout_seconds);
        let wait = Duration::try_from_secs_f64(timeout_seconds).unwrap_or(Duration::MAX);
        let started_at = now();
        let clock = Instant::now();
        let mut last_error = None;
        for attempt in 0..=stage.max_retries {
            if let Some(e) = &last_error {
                info!(stage = name, attempt, error = %e, "Retrying stage.");
            }
            let task = TaskMessage::new(&stage.worker_type, payload.clone())
                .with_parent_task_id(self.goal_id.as_str())
                .with_request_id(self.goal_id.as_str())
                .with_model_tier(stage.tier)
                .with_retry_count(attempt)
                .with_metadata_entry("stage_name", name)
                .with_metadata_entry("model_tier", stage.tier.as_str());
            if let Some(tool) = &stage.mcp_tool {
                // The same mapping, contracts, retries and progress; an MCP call instead
                // of a task (dropped, and so cancelled upstream, if the goal stops).
                let result = self.call_mcp_tool(&task, tool, wait).await;
                let error = match result {
                    Ok(result) => match self.accept(stage, result, started_at, clock) {
                        Ok(finished) => {
                            self.progress(stage, StageStatus::Completed, finished, None)
                                .await;
                            return Ok(());
                        }
                        Err(e) => e,
                    },
                    Err(None) => StageError::TimedOut {
                        stage: name.to_owned(),
                        seconds: timeout_seconds,
                    },
                    Err(Some(error)) => StageError::Failed {
                        stage: name.to_owned(),
                        error,
                    },
                };
                if !error.retryable() {
                    return Err(error);
                }
                last_error = Some(error);
                continue;
            }
            let task_id = task.task_id.clone();
            let (tx, rx) = oneshot::channel();
            self.waiters()
                .insert(task_id.clone(), (name.to_owned(), tx));
            debug!(stage = name, task_id = %task_id, attempt, "Dispatching stage task.");
            if let Err(e) = self.bus.publish_json(subject::TASKS_INCOMING, &task).await {
                self.waiters().remove(&task_id);
                last_error = Some(StageError::Failed {
                    stage: name.to_owned(),
                    error: format!("cannot publish its task: {e}"),
                });
                continue;
            }
            let error = match tokio::time::timeout(wait, rx).await {
                Ok(Ok(result)) => match self.accept(stage, result, started_at, clock) {
                    Ok(finished) => {
                        self.progress(stage, StageStatus::Completed, finished, None)
                            .await;
                        return Ok(());
                    }
                    Err(e) => e,
                },
                // The demultiplexer is gone: the goal is ending anyway.
                Ok(Err(_)) => StageError::Failed {
                    stage: name.to_owned(),
                    error: "the goal's result subscription ended".to_owned(),
                },
                Err(_) => {
                    self.waiters().remove(&task_id);
                    self.cancel_task(&task_id, "stage timed out").await;
                    StageError::TimedOut {
                        stage: name.to_owned(),
                        seconds: timeout_seconds,
                    }
                }
            };
            if !error.retryable() {
                return Err(error);
            }
            last_error = Some(error);
        }
        Err(last_error.unwrap_or_else(|| StageError::Failed {
            stage: name.to_owned(),
            error: "no attempt was made".to_owned(),
        }))
    }

    /// Calls MCP tool `tool` with `task`'s payload within `wait`: a COMPLETED result whose
    /// output is the tool's JSON object (or `{"text": …}`), a FAILED one for a tool
    /// error, `Err(None)` on timeout, `Err(Some(why))` when the tool cannot be called.
    async fn call_mcp_tool(
        &self,
        task: &TaskMessage,
        tool: &str,
        wait: Duration,
    ) -> Result<TaskResult, Option<String>> {
        let Some(tools) = self.tools else {
            return Err(Some(format!(
                "mcp_tool '{tool}': no MCP servers (give the pipeline an mcp_servers section or run it in a gateway with tools.mcp_servers)"
            )));
        };
        let arguments = Value::Object(task.payload.clone());
        let clock = Instant::now();
        let outcome = tokio::time::timeout(wait, tools.call_tool(tool, arguments))
            .await
            .map_err(|_| None)?;
        let mut result = match outcome {
            Ok(text) => {
                let output = match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Object(map)) => map,
                    _ => {
                        let mut map = JsonObject::new();
                        map.insert("text".into(), Value::String(text));
                        map
                    }
                };
                TaskResult::completed(task, output)
            }
            Err(ToolError::Failed { message }) => {
                TaskResult::failed(task, format!("mcp_tool '{tool}': {message}"))
            }
            Err(e) => return Err(Some(format!("mcp_tool '{tool}': {e}"))),
        };
        result.model_used = Some(format!("mcp:{tool}"));
        result.processing_time_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
        Ok(result)
    }

    /// Takes a stage's worker result: on success checks the output contract and records
    /// the stage; returns how many stages have finished.
    fn accept(
        &self,
        stage: &StageConfig,
        result: TaskResult,
        started_at: chrono::DateTime<chrono::Utc>,
        clock: Instant,
    ) -> Result<u32, StageError> {
        let name = stage.name.as_str();
        // Tokens were spent whether or not the attempt succeeded (L4: the goal sums them).
        self.state().usage.add(&result.token_usage);
        if result.status != TaskStatus::Completed {
            let error = result.error.unwrap_or_else(|| {
                format!("the worker answered '{}' without an error", result.status)
            });
            return Err(StageError::Failed {
                stage: name.to_owned(),
                error,
            });
        }
        let output = result.output.map_or(Value::Null, Value::Object);
        let output = check_contract(stage.output_schema.as_ref(), output, Side::Output).map_err(
            |errors| StageError::Output {
                stage: name.to_owned(),
                errors,
            },
        )?;
        let ended_at = now();
        let wall_time_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (started, ended) = (format_timestamp(&started_at), format_timestamp(&ended_at));
        let mut record = JsonObject::new();
        record.insert("output".into(), output);
        record.insert(
            "model_used".into(),
            result.model_used.map_or(Value::Null, Value::String),
        );
        record.insert(
            "processing_time_ms".into(),
            Value::from(result.processing_time_ms),
        );
        record.insert("started_at".into(), Value::String(started.clone()));
        record.insert("ended_at".into(), Value::String(ended.clone()));
        record.insert("wall_time_ms".into(), Value::from(wall_time_ms));
        let mut st = self.state();
        st.context.record(name, record);
        st.timeline.push(json!({
            "stage": name,
            "started_at": started,
            "ended_at": ended,
            "wall_time_ms": wall_time_ms,
            "processing_time_ms": result.processing_time_ms,
        }));
        st.finished += 1;
        info!(stage = name, wall_time_ms, "Stage completed.");
        Ok(st.finished)
    }

    /// Hands each result on the goal's subject to the attempt waiting for its task id.
    /// Returns only when the subscription ends.
    async fn demux(&self, mut results: Subscription) {
        while let Some(message) = results.next().await {
            let result = match message.json::<TaskResult>() {
                Ok(r) => r,
                Err(e) => {
                    debug!(error = %e, "Skipping a malformed message on the goal's result subject.");
                    continue;
                }
            };
            let waiter = self.waiters().remove(&result.task_id);
            match waiter {
                Some((_, tx)) => {
                    // The attempt may have just given up; its result is then moot.
                    let _ = tx.send(result);
                }
                None => debug!(task_id = %result.task_id, "Ignoring a result no stage waits for."),
            }
        }
    }

    /// Publishes a cancel for every stage task still in flight and forgets them.
    async fn cancel_in_flight(&self, reason: &str) {
        let in_flight: Vec<(String, String)> = self
            .waiters()
            .drain()
            .map(|(task_id, (stage, _))| (task_id, stage))
            .collect();
        for (task_id, stage) in in_flight {
            info!(stage = %stage, task_id = %task_id, "Cancelling stage task.");
            self.cancel_task(&task_id, reason).await;
        }
    }

    async fn cancel_task(&self, task_id: &str, reason: &str) {
        let request = CancelRequest::new(task_id).with_reason(reason);
        match request.subject() {
            Ok(s) => {
                if let Err(e) = self.bus.publish_json(&s, &request).await {
                    warn!(task_id, error = %e, "Cannot publish a cancel request.");
                }
            }
            Err(e) => warn!(task_id, error = %e, "Cannot name a cancel subject for this task."),
        }
    }

    async fn progress(
        &self,
        stage: &StageConfig,
        status: StageStatus,
        finished: u32,
        error: Option<String>,
    ) {
        let Some(subject) = &self.progress_subject else {
            return;
        };
        let mut message = PipelineProgress::new(
            self.goal_id.as_str(),
            self.config.name.as_str(),
            stage.name.as_str(),
            status,
            finished,
            self.total,
        );
        message.error = error;
        if let Err(e) = self.bus.publish_json(subject, &message).await {
            debug!(error = %e, "Cannot publish progress.");
        }
    }

    /// The final result: COMPLETED, or FAILED with the error. Either way it carries the
    /// outputs and timeline of the stages that completed and their summed tokens (L4).
    fn finish(&self, outcome: Result<(), GoalError>) -> TaskResult {
        let st = self.state();
        let mut output = st.context.outputs();
        output.insert("_timeline".into(), Value::Array(st.timeline.clone()));
        let elapsed = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let status = if outcome.is_ok() {
            TaskStatus::Completed
        } else {
            TaskStatus::Failed
        };
        let result = TaskResult::new(self.goal_id.as_str(), self.config.name.as_str(), status)
            .with_output(output)
            .with_token_usage(st.usage.clone())
            .with_processing_time_ms(elapsed);
        match outcome {
            Ok(()) => result,
            Err(e) => result.with_error(e.to_string()),
        }
    }
}

/// Waits for a cancel request for the goal; yields its reason. Never returns without a
/// subscription.
async fn next_cancel(subscription: &mut Option<Subscription>) -> Option<String> {
    if let Some(sub) = subscription {
        if let Some(message) = sub.next().await {
            return message.json::<CancelRequest>().ok().and_then(|c| c.reason);
        }
    }
    std::future::pending().await
}

/// Checks `value` against an optional contract; on violations returns them as a Python
/// list literal (`["input: missing required field 'text'"]`), as loom-ai 0.9.0 printed them.
fn check_contract(contract: Option<&Contract>, value: Value, side: Side) -> Result<Value, String> {
    match contract.map(|c| c.check(&value)) {
        Some(Err(violations)) => Err(violation_list(&violations, side)),
        _ => Ok(value),
    }
}

fn violation_list(violations: &Violations, side: Side) -> String {
    let text = violations.error_text(side);
    let prefix = format!("{}: ", side.error_prefix());
    match text.strip_prefix(&prefix) {
        Some(list) => list.to_owned(),
        None => text,
    }
}

/// Why a goal did not complete; its `Display` is the final result's `error`.
#[derive(Debug)]
enum GoalError {
    Stage(StageError),
    Cancelled(Option<String>),
    Pipeline(String),
}

impl std::fmt::Display for GoalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GoalError::Stage(e) => e.fmt(f),
            GoalError::Cancelled(None) => f.write_str("pipeline cancelled"),
            GoalError::Cancelled(Some(reason)) => write!(f, "pipeline cancelled: {reason}"),
            GoalError::Pipeline(e) => write!(f, "Pipeline error: {e}"),
        }
    }
}

/// Why a stage failed. The texts are loom-ai 0.9.0's (clients match on them).
#[derive(Debug)]
enum StageError {
    Failed { stage: String, error: String },
    TimedOut { stage: String, seconds: f64 },
    Mapping { stage: String, error: PathError },
    Input { stage: String, errors: String },
    Output { stage: String, errors: String },
}

impl StageError {
    /// Worker failures and timeouts are retried; mapping errors and contract violations
    /// are not, nor a worker's own input-contract rejection (the same payload would fail
    /// again).
    fn retryable(&self) -> bool {
        match self {
            StageError::Failed { error, .. } => !error.starts_with(Side::Input.error_prefix()),
            StageError::TimedOut { .. } => true,
            StageError::Mapping { .. } | StageError::Input { .. } | StageError::Output { .. } => {
                false
            }
        }
    }
}

impl std::fmt::Display for StageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StageError::Failed { stage, error } => write!(f, "Stage '{stage}' failed: {error}"),
            StageError::TimedOut { stage, seconds } => {
                write!(
                    f,
                    "Stage '{stage}' timed out after {}s",
                    format_seconds(*seconds)
                )
            }
            StageError::Mapping { stage, error } => {
                write!(f, "Stage '{stage}' mapping error: {error}")
            }
            StageError::Input { stage, errors } => {
                write!(f, "Stage '{stage}' input validation failed: {errors}")
            }
            StageError::Output { stage, errors } => {
                write!(f, "Stage '{stage}' output validation failed: {errors}")
            }
        }
    }
}

/// `60` for whole seconds, `0.5` otherwise.
pub(crate) fn format_seconds(seconds: f64) -> String {
    if seconds.fract() == 0.0 && seconds.abs() < 1e15 {
        format!("{seconds:.0}")
    } else {
        format!("{seconds}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_errors_read_like_the_original() {
        let timed_out = StageError::TimedOut {
            stage: "ocr".into(),
            seconds: 60.0,
        };
        assert_eq!(timed_out.to_string(), "Stage 'ocr' timed out after 60s");
        assert_eq!(format_seconds(0.25), "0.25");
        let failed = StageError::Failed {
            stage: "x".into(),
            error: "boom".into(),
        };
        assert_eq!(failed.to_string(), "Stage 'x' failed: boom");
        assert!(failed.retryable() && timed_out.retryable());
        let rejected = StageError::Failed {
            stage: "x".into(),
            error: "Input validation: ['input: …']".into(),
        };
        assert!(!rejected.retryable());
        assert_eq!(GoalError::Cancelled(None).to_string(), "pipeline cancelled");
    }
}
