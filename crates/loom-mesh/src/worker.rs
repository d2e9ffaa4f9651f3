//! The task lifecycle every worker shares: parse, contracts, timeout, retries, cancel, answer.
//!
//! A worker is a [`Processor`] (what it computes) run by a [`TaskWorker`] (how a task is
//! handled), which is an actor [`Handler`](crate::actor::Handler). Per message, the
//! worker (mesh spec §6.2, with the fixes of §19 B3, B12 and L3):
//!
//! 1. **parses** the `TaskMessage`; a malformed body whose `task_id` can be recovered is
//!    answered with FAILED `invalid task message: …` (the original answered nothing);
//! 2. takes the **tier from the subject** it arrived on (`loom.tasks.{name}.{tier}`), not
//!    from the message, and writes it into `task.model_tier` (B3);
//! 3. checks the **input contract**: FAILED `Input validation: [...]`, processor not called;
//! 4. runs the processor under the worker's **`timeout_seconds`** (one deadline for all
//!    attempts): FAILED `task timed out after Ns`;
//! 5. **retries** [`ProcessError::retryable`] failures up to the task's `max_retries`
//!    (at most [`MAX_RETRIES_CAP`]) with a doubling backoff from [`RETRY_BACKOFF_BASE`]
//!    capped at [`RETRY_BACKOFF_CAP`]; fatal failures are never retried;
//! 6. stops the task when a [`CancelRequest`](loom_core::message::CancelRequest) arrives on
//!    `loom.control.cancel.{task_id}`: FAILED `task cancelled: <reason>`;
//! 7. checks the **output contract**: FAILED `Output validation: [...]`, keeping
//!    `model_used` and the token counts;
//! 8. answers COMPLETED with the output, `model_used`, `token_usage` normalised to
//!    exactly `{prompt_tokens, completion_tokens}`, and `processing_time_ms`. FAILED
//!    results carry the elapsed time too (the original reported 0).
//!
//! A panicking processor yields FAILED `internal error: processor panicked`; the worker
//! keeps serving. When the timeout or a cancel fires, the processor's
//! [`TaskContext::cancel`] token is cancelled and it gets [`CANCEL_GRACE`] to clean up
//! (the subprocess processor kills its child) before its future is dropped.
//!
//! | subjects and groups (§15) | LLM worker | processor |
//! |---|---|---|
//! | tasks | `loom.tasks.{name}.{tier}` | `loom.tasks.{name}.*` (every tier) by default |
//! | queue group | `workers-{name}` | `processors-{name}` |
//! | actor name | `worker-{name}-{tier}` | `processor-{name}` (`-{tier}` when one tier) |
//! | cancel | `loom.control.cancel.*`, no group | same |
//!
//! [`spawn_worker`] starts all of it; [`worker_specs`] and [`TaskWorker`] are the parts
//! for callers that assemble actors themselves. [`BlockingProcessor`] runs a
//! [`SyncProcessor`] (blocking work) off the async runtime.

mod blocking;
mod cancel;
mod spawn;
mod task;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use loom_core::config::WorkerConfig;
use loom_core::message::{JsonObject, ModelTier, TaskMessage, TokenUsage};
use tokio_util::sync::CancellationToken;

pub use blocking::{BlockingProcessor, SyncProcessor};
pub use cancel::{CancelListener, CancelRegistry, EARLY_CANCEL_CAPACITY, EARLY_CANCEL_TTL};
pub use spawn::{ServeTiers, WorkerHandle, queue_group, spawn_worker, worker_specs};
pub use task::TaskWorker;

/// Most retries of a retryable failure, whatever the task's `max_retries` says.
pub const MAX_RETRIES_CAP: u32 = 10;

/// Backoff before the first retry; it doubles for each further retry.
pub const RETRY_BACKOFF_BASE: Duration = Duration::from_millis(50);

/// Longest backoff between two attempts.
pub const RETRY_BACKOFF_CAP: Duration = Duration::from_secs(1);

/// How long a processor may take to return after its cancel token fired (timeout or
/// cancel request) before its future is dropped.
pub const CANCEL_GRACE: Duration = Duration::from_secs(1);

/// What a worker computes: the LLM call, a built-in processor, a subprocess.
///
/// Implementations report failures as [`ProcessError`]s; a panic is caught and answered
/// with FAILED. They should watch [`TaskContext::cancel`] and return promptly once it
/// fires (after a timeout or a cancel request), releasing what they hold.
#[async_trait]
pub trait Processor: Send + Sync + 'static {
    /// Processes one task. `task.payload` already satisfies the input contract, and
    /// `task.model_tier` is the tier of the subject the task arrived on.
    async fn process(
        &self,
        task: &TaskMessage,
        ctx: &TaskContext,
    ) -> Result<ProcessOutput, ProcessError>;

    /// Called on `{"action": "reload"}`, after the worker re-read its YAML.
    async fn on_reload(&self) {}
}

/// What a processor knows about the task it runs, besides the task itself.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TaskContext {
    /// The tier the task arrived on: the last token of its subject, which workers trust
    /// (§19 B3); the message's `model_tier` only when the subject names no tier.
    pub tier: ModelTier,
    /// Which attempt this is, from 1.
    pub attempt: u32,
    /// Fires when the task must stop: timeout, cancel request or worker shutdown.
    pub cancel: CancellationToken,
    /// The worker's config as of this task (reloads replace it); `None` when a
    /// processor runs outside a worker.
    pub config: Option<Arc<WorkerConfig>>,
}

impl TaskContext {
    /// A context for a first attempt on `tier`, with a fresh cancel token and no config.
    pub fn new(tier: ModelTier) -> Self {
        TaskContext {
            tier,
            attempt: 1,
            cancel: CancellationToken::new(),
            config: None,
        }
    }

    /// Uses `cancel` as the task's cancel token.
    #[must_use]
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// Attaches the worker config.
    #[must_use]
    pub fn with_config(mut self, config: Arc<WorkerConfig>) -> Self {
        self.config = Some(config);
        self
    }
}

/// A processor's successful result.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ProcessOutput {
    /// The output object, checked against the output contract.
    pub output: JsonObject,
    /// The model or processor label reported in the result.
    pub model_used: Option<String>,
    /// Token counts; the worker normalises them to `{prompt_tokens, completion_tokens}`.
    pub token_usage: TokenUsage,
}

impl ProcessOutput {
    /// An output with no model label and no token counts.
    pub fn new(output: JsonObject) -> Self {
        ProcessOutput {
            output,
            model_used: None,
            token_usage: TokenUsage::new(),
        }
    }

    /// Sets the model or processor label.
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
}

/// A processor's failure. Its message becomes the FAILED result's `error`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
#[non_exhaustive]
pub struct ProcessError {
    /// What went wrong, as the caller will read it.
    pub message: String,
    /// Whether trying again may succeed (a rate limit, a busy backend). Only retryable
    /// failures are retried, up to the task's `max_retries`.
    pub retryable: bool,
    /// The model used before the failure, if any.
    pub model_used: Option<String>,
    /// Tokens spent before the failure.
    pub token_usage: TokenUsage,
}

impl ProcessError {
    /// A failure that trying again will not fix.
    pub fn fatal(message: impl Into<String>) -> Self {
        ProcessError {
            message: message.into(),
            retryable: false,
            model_used: None,
            token_usage: TokenUsage::new(),
        }
    }

    /// A failure worth retrying.
    pub fn retryable(message: impl Into<String>) -> Self {
        ProcessError {
            retryable: true,
            ..ProcessError::fatal(message)
        }
    }

    /// Sets the model used.
    #[must_use]
    pub fn with_model_used(mut self, model_used: impl Into<String>) -> Self {
        self.model_used = Some(model_used.into());
        self
    }

    /// Sets the tokens spent.
    #[must_use]
    pub fn with_token_usage(mut self, token_usage: TokenUsage) -> Self {
        self.token_usage = token_usage;
        self
    }
}

/// Token counts as worker results carry them: exactly `prompt_tokens` and
/// `completion_tokens`, zeros when unknown (mesh spec §6.2).
pub fn normalise_token_usage(usage: &TokenUsage) -> TokenUsage {
    TokenUsage::from_counts(usage.prompt_tokens(), usage.completion_tokens())
}

/// The tier named by the last token of a task subject (`loom.tasks.echo.local` →
/// `local`), or `None` when it names none.
pub fn tier_from_subject(subject: &str) -> Option<ModelTier> {
    subject.rsplit('.').next().and_then(|t| t.parse().ok())
}

#[cfg(test)]
mod tests;
