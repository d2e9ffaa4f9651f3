//! [`TaskWorker`]: the actor handler that runs one task through the whole lifecycle.

use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use loom_bus::{Bus, Message};
use loom_core::config::{WorkerConfig, load_worker};
use loom_core::contract::{Contract, Side};
use loom_core::message::{TaskMessage, TaskResult, TaskStatus};
use serde::Deserialize;
use serde_json::Value;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, debug, error, info, info_span, warn};

use super::cancel::{CancelRegistry, CancelSlot};
use super::{
    CANCEL_GRACE, MAX_RETRIES_CAP, ProcessError, ProcessOutput, Processor, RETRY_BACKOFF_BASE,
    RETRY_BACKOFF_CAP, TaskContext, normalise_token_usage, tier_from_subject,
};
use crate::actor::Handler;
use crate::reply::{RecoveredIds, answer_failed_raw, publish_result};

/// Runs tasks for one worker config with one [`Processor`]; an actor [`Handler`].
///
/// Cheap to share: [`spawn_worker`](super::spawn_worker) hands one `Arc<TaskWorker>`
/// to the actor of every tier it serves.
pub struct TaskWorker {
    bus: Arc<dyn Bus>,
    processor: Arc<dyn Processor>,
    config: RwLock<Arc<WorkerConfig>>,
    cancels: Arc<CancelRegistry>,
    backoff_base: Duration,
    backoff_cap: Duration,
}

impl std::fmt::Debug for TaskWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskWorker")
            .field("worker", &self.config().name)
            .finish_non_exhaustive()
    }
}

/// Longer timeouts are treated as none (and `Duration::from_secs_f64` cannot overflow).
const MAX_TIMEOUT_SECONDS: f64 = 1e9;

/// How running the processor ended.
enum Outcome {
    Done(Result<ProcessOutput, ProcessError>),
    TimedOut(f64),
    Cancelled(String),
    Panicked,
}

impl TaskWorker {
    /// A worker for `config` answering on `bus`, with its own (empty) cancel registry.
    pub fn new(bus: Arc<dyn Bus>, config: WorkerConfig, processor: Arc<dyn Processor>) -> Self {
        TaskWorker {
            bus,
            processor,
            config: RwLock::new(Arc::new(config)),
            cancels: Arc::new(CancelRegistry::new()),
            backoff_base: RETRY_BACKOFF_BASE,
            backoff_cap: RETRY_BACKOFF_CAP,
        }
    }

    /// Sets the retry backoff: `base` before the first retry, doubling, at most `cap`.
    #[must_use]
    pub fn with_retry_backoff(mut self, base: Duration, cap: Duration) -> Self {
        self.backoff_base = base;
        self.backoff_cap = cap.max(base);
        self
    }

    /// The config in force (it changes on reload).
    pub fn config(&self) -> Arc<WorkerConfig> {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The registry of running tasks, for a [`CancelListener`](super::CancelListener).
    pub fn cancel_registry(&self) -> Arc<CancelRegistry> {
        self.cancels.clone()
    }

    /// Handles one task body that arrived on `subject`.
    async fn run(&self, subject: &str, body: &[u8], shutdown: CancellationToken) {
        let config = self.config();
        // Fast path: a valid task parses straight into its struct, without building a
        // `Value` tree first. Anything else takes the path below, which gives the same
        // answers and log lines as always.
        let task = match serde_json::from_slice::<TaskMessage>(body) {
            Ok(task) => task,
            Err(_) => match self.parse_slow(&config, subject, body).await {
                Some(task) => task,
                None => return,
            },
        };
        self.run_task(subject, task, &config, shutdown).await;
    }

    /// Parses `body` through a `Value`, to recover the ids of an invalid task and answer
    /// it FAILED; `None` when the body is not a task (it has been answered or logged).
    async fn parse_slow(
        &self,
        config: &WorkerConfig,
        subject: &str,
        body: &[u8],
    ) -> Option<TaskMessage> {
        let raw: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                warn!(worker = %config.name, subject, error = %e, "Dropping a task body that is not JSON.");
                return None;
            }
        };
        match TaskMessage::deserialize(&raw) {
            Ok(task) => Some(task),
            Err(e) => {
                match RecoveredIds::from_raw(&raw) {
                    Some(ids) => {
                        warn!(worker = %config.name, task_id = %ids.task_id, error = %e, "Invalid task message; answering caller with FAILED.");
                        answer_failed_raw(&*self.bus, &ids, format!("invalid task message: {e}"))
                            .await;
                    }
                    None => {
                        warn!(worker = %config.name, subject, error = %e, "Dropping an invalid task message without a task_id.")
                    }
                }
                None
            }
        }
    }

    /// Runs a parsed task through the lifecycle and publishes its result.
    async fn run_task(
        &self,
        subject: &str,
        mut task: TaskMessage,
        config: &Arc<WorkerConfig>,
        shutdown: CancellationToken,
    ) {
        let started = Instant::now();
        if let Some(tier) = tier_from_subject(subject) {
            if tier != task.model_tier {
                debug!(task_id = %task.task_id, message_tier = %task.model_tier, subject_tier = %tier, "Using the subject's tier.");
            }
            task.model_tier = tier;
        }
        let span = info_span!("worker_task", worker = %config.name, task_id = %task.task_id);
        let result = self
            .lifecycle(&mut task, config, shutdown, started)
            .instrument(span.clone())
            .await;
        let _enter = span.enter();
        match result.status {
            TaskStatus::Completed => {
                debug!(ms = result.processing_time_ms, "Task completed.")
            }
            _ => warn!(
                error = result.error.as_deref().unwrap_or(""),
                "Task failed; answering caller with FAILED."
            ),
        }
        if let Err(e) = publish_result(&*self.bus, &result).await {
            warn!(error = %e, "Cannot publish the task result.");
        }
    }

    /// Steps 2–5 of the lifecycle; always produces the result to publish.
    async fn lifecycle(
        &self,
        task: &mut TaskMessage,
        config: &Arc<WorkerConfig>,
        shutdown: CancellationToken,
        started: Instant,
    ) -> TaskResult {
        let elapsed = || u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if let Some(errors) =
            violations(config.input_schema.as_ref(), &mut task.payload, Side::Input)
        {
            return failed(task, errors, None, Default::default(), elapsed());
        }
        let token = shutdown.child_token();
        let registration = self.cancels.register(&task.task_id, token.clone());
        let timeout = config
            .timeout_seconds
            .filter(|s| s.is_finite() && *s > 0.0 && *s < MAX_TIMEOUT_SECONDS);
        let outcome = self
            .attempts(task, config, &token, registration.slot(), timeout)
            .await;
        drop(registration);
        match outcome {
            Outcome::Done(Ok(out)) => {
                let usage = normalise_token_usage(&out.token_usage);
                let output = Value::Object(out.output);
                let output = match check(config.output_schema.as_ref(), &output, Side::Output) {
                    Some(errors) => return failed(task, errors, out.model_used, usage, elapsed()),
                    None => match output {
                        Value::Object(map) => map,
                        _ => Default::default(),
                    },
                };
                let mut result = TaskResult::completed(task, output)
                    .with_token_usage(usage)
                    .with_processing_time_ms(elapsed());
                result.model_used = out.model_used;
                result
            }
            Outcome::Done(Err(e)) => failed(
                task,
                e.message,
                e.model_used,
                normalise_token_usage(&e.token_usage),
                elapsed(),
            ),
            Outcome::TimedOut(after) => failed(
                task,
                format!("task timed out after {after}s"),
                None,
                Default::default(),
                elapsed(),
            ),
            Outcome::Cancelled(reason) => failed(
                task,
                if reason.is_empty() {
                    "task cancelled".to_owned()
                } else {
                    format!("task cancelled: {reason}")
                },
                None,
                Default::default(),
                elapsed(),
            ),
            Outcome::Panicked => failed(
                task,
                "internal error: processor panicked",
                None,
                Default::default(),
                elapsed(),
            ),
        }
    }

    /// Runs the processor, retrying retryable failures, under one deadline.
    async fn attempts(
        &self,
        task: &TaskMessage,
        config: &Arc<WorkerConfig>,
        token: &CancellationToken,
        slot: &CancelSlot,
        timeout: Option<f64>,
    ) -> Outcome {
        let deadline = timeout.map(|t| Instant::now() + Duration::from_secs_f64(t));
        let max_retries = task.max_retries.min(MAX_RETRIES_CAP);
        let cancelled = || {
            Outcome::Cancelled(
                slot.reason()
                    .unwrap_or_else(|| "worker shutting down".to_owned()),
            )
        };
        let mut attempt = 1;
        loop {
            let ctx = TaskContext::new(task.model_tier)
                .with_cancel(token.clone())
                .with_config(config.clone());
            let ctx = TaskContext { attempt, ..ctx };
            let mut fut = pin!(AssertUnwindSafe(self.processor.process(task, &ctx)).catch_unwind());
            let result = tokio::select! {
                r = &mut fut => r,
                () = sleep_until(deadline) => {
                    token.cancel();
                    let _ = tokio::time::timeout(CANCEL_GRACE, &mut fut).await;
                    return Outcome::TimedOut(timeout.unwrap_or_default());
                }
                () = token.cancelled() => {
                    let _ = tokio::time::timeout(CANCEL_GRACE, &mut fut).await;
                    return cancelled();
                }
            };
            let result = match result {
                Ok(r) => r,
                Err(panic) => {
                    error!(attempt, panic = panic_text(&*panic), "Processor panicked.");
                    return Outcome::Panicked;
                }
            };
            match result {
                Err(e) if e.retryable && attempt <= max_retries => {
                    let backoff = self.backoff(attempt);
                    info!(attempt, max_retries, backoff_ms = backoff.as_millis() as u64, error = %e, "Retryable failure; retrying.");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = sleep_until(deadline) => {
                            token.cancel();
                            return Outcome::TimedOut(timeout.unwrap_or_default());
                        }
                        () = token.cancelled() => return cancelled(),
                    }
                    attempt += 1;
                }
                Err(mut e) if e.retryable && attempt > 1 => {
                    e.message = format!("{} (after {attempt} attempts)", e.message);
                    return Outcome::Done(Err(e));
                }
                other => return Outcome::Done(other),
            }
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let factor = 1u32 << attempt.saturating_sub(1).min(16);
        self.backoff_base
            .saturating_mul(factor)
            .min(self.backoff_cap)
    }

    /// Re-reads the YAML; keeps the old config when the new one is invalid.
    async fn reload_config(&self) {
        let old = self.config();
        let source = old.source.clone();
        let loaded = tokio::task::spawn_blocking(move || load_worker(&source)).await;
        match loaded {
            Ok(Ok(new)) if new.name != old.name => {
                error!(worker = %old.name, new_name = %new.name, file = %old.source.display(), "Reloaded config names another worker; keeping the old config (restart to serve a new name).");
            }
            Ok(Ok(new)) => {
                *self.config.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(new);
                info!(worker = %old.name, file = %old.source.display(), "Worker config reloaded.");
            }
            Ok(Err(errors)) => {
                for e in errors.errors() {
                    error!(worker = %old.name, error = %e, "Invalid worker config.");
                }
                error!(worker = %old.name, file = %old.source.display(), "Worker config reload failed; keeping the old config.");
            }
            Err(e) => {
                error!(worker = %old.name, error = %e, "Worker config reload failed; keeping the old config.")
            }
        }
    }
}

#[async_trait]
impl Handler for TaskWorker {
    async fn handle(&self, message: Message, cancel: CancellationToken) {
        self.run(&message.subject, &message.payload, cancel).await;
    }

    async fn on_reload(&self) {
        self.reload_config().await;
        self.processor.on_reload().await;
    }
}

/// The `Input validation: …`/`Output validation: …` text when `payload` breaks the contract.
///
/// The payload is moved into a `Value` for the check and back, not copied.
fn violations(
    contract: Option<&Contract>,
    payload: &mut serde_json::Map<String, Value>,
    side: Side,
) -> Option<String> {
    let contract = contract.filter(|c| !c.accepts_anything())?;
    let value = Value::Object(std::mem::take(payload));
    let errors = check(Some(contract), &value, side);
    if let Value::Object(map) = value {
        *payload = map;
    }
    errors
}

fn check(contract: Option<&Contract>, value: &Value, side: Side) -> Option<String> {
    contract?.check(value).err().map(|v| v.error_text(side))
}

fn failed(
    task: &TaskMessage,
    error: impl Into<String>,
    model_used: Option<String>,
    usage: loom_core::message::TokenUsage,
    elapsed_ms: u64,
) -> TaskResult {
    let mut result = TaskResult::failed(task, error)
        .with_token_usage(normalise_token_usage(&usage))
        .with_processing_time_ms(elapsed_ms);
    result.model_used = model_used;
    result
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-string panic)")
}
