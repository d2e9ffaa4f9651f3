//! The LLM worker: prompt, knowledge, file refs, tool loop, JSON output (mesh spec §6.3–§6.7).
//!
//! [`LlmWorker`] is the [`Processor`] of a `worker_kind: llm` config. Run it with
//! [`spawn_worker`](crate::worker::spawn_worker), which adds contracts, timeout, retries
//! and cancel around it. Per task it:
//!
//! 1. picks the model of the task's **subject tier** ([`TaskContext::tier`], §19 B3) from
//!    its [`TierBackends`]; none → FAILED `no backend for tier: <tier> (set …)`;
//! 2. reads, in **one `spawn_blocking`**, the `knowledge_sources`, the folder silos and the
//!    file refs, and builds the system prompt: **sources, then silos, then the worker's
//!    `system_prompt`** ([`build_system_prompt`]); file refs become `<field>_content`
//!    payload fields ([`resolve_file_refs`]);
//! 3. sends the payload as pretty JSON with non-ASCII text unescaped
//!    ([`user_message_for`], §19 L11), at temperature 0 with `max_output_tokens`, through
//!    [`run_tool_loop`] with the optional [`ToolHost`] (at most [`MAX_TOOL_ROUNDS`]
//!    continuation calls);
//! 4. fails with `LLM did not produce a text response after tool-use loop` when the last
//!    reply has no text, and extracts the output with [`extract_json_object`], which accepts
//!    only objects (§19 B9): `LLM returned non-JSON/YAML: …` or `LLM returned JSON that is
//!    not an object (…)` otherwise;
//! 5. pops `silo_updates` from the output **before** the output contract is checked and
//!    applies it to `read_write` folder silos ([`apply_silo_updates`]);
//! 6. answers with the output, `model_used` = the model named by the last reply, and the
//!    tokens summed over every call of the tool loop.
//!
//! Model errors that may pass ([`ModelError::is_retryable`]: 429, 5xx, transport, after the
//! backend's own [`RetryPolicy`](loom_llm::RetryPolicy)) are [`ProcessError::retryable`], so
//! the worker retries the task up to its `max_retries`; every other failure is fatal. When
//! [`TaskContext::cancel`] fires, the worker stops waiting for the model or the files at
//! once.
//!
//! Knowledge is re-read for every task (no cache, as in loom-ai 0.9.0), and each task uses
//! the config in [`TaskContext::config`] (the one in force after the last reload), so
//! [`Processor::on_reload`] has nothing to rebuild.
//!
//! Tool-type silos name Python `ToolProvider` classes, which cannot be loaded in Rust: the
//! worker logs that once per provider and goes on without them. Tools reach the model only
//! through the [`ToolHost`] given to [`LlmWorker::with_tool_host`] (MCP servers).

mod file_refs;
mod knowledge;
mod prompt;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use loom_core::config::{KnowledgeSilo, WorkerConfig, WorkerKind};
use loom_core::message::{TaskMessage, TokenUsage};
use loom_llm::{
    CompletionRequest, MAX_TOOL_ROUNDS, Model, ModelError, TierBackends, ToolHost, Usage,
    extract_json_object, run_tool_loop, user_message_for,
};
use serde_json::Value;
use tracing::{debug, warn};

pub use file_refs::{FileRefError, resolve_file_refs};
pub use knowledge::{
    SILO_EXTENSIONS, SILO_IGNORE_FILE, SiloUpdateOutcome, SiloUpdateStatus, apply_silo_updates,
    folder_silos_text, knowledge_sources_text,
};
pub use prompt::{PreparedTask, build_system_prompt, prepare_task};

use crate::worker::{ProcessError, ProcessOutput, Processor, TaskContext};

/// The output key holding write-backs to knowledge silos; never part of the result.
pub const SILO_UPDATES_KEY: &str = "silo_updates";

/// The error when the tool loop ends without text.
pub const NO_TEXT_RESPONSE: &str = "LLM did not produce a text response after tool-use loop";

/// Why an [`LlmWorker`] cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LlmWorkerError {
    /// The config is not an LLM worker's.
    #[error(
        "worker '{worker}' is not an llm worker; an llm worker has worker_kind: llm and a system_prompt"
    )]
    NotAnLlmWorker {
        /// The worker.
        worker: String,
    },
}

/// The [`Processor`] of an LLM worker. See the [module docs](self) for what a task does.
///
/// ```
/// use std::sync::Arc;
/// use loom_core::message::ModelTier;
/// use loom_llm::TierBackends;
/// use loom_llm::testing::ScriptedModel;
/// use loom_mesh::llm_worker::LlmWorker;
///
/// # fn demo(config: loom_core::config::WorkerConfig) -> Result<(), Box<dyn std::error::Error>> {
/// let backends = TierBackends::new().with(ModelTier::Local, Arc::new(ScriptedModel::new("tiny")));
/// let worker = LlmWorker::new(config, backends)?;
/// # Ok(())
/// # }
/// ```
pub struct LlmWorker {
    config: Arc<WorkerConfig>,
    backends: TierBackends,
    tools: Option<Arc<dyn ToolHost>>,
    /// Tool providers already reported as unloadable, so each is logged once.
    warned_providers: Mutex<HashSet<String>>,
}

impl fmt::Debug for LlmWorker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LlmWorker")
            .field("worker", &self.config.name)
            .field("backends", &self.backends)
            .field("tool_host", &self.tools.is_some())
            .finish_non_exhaustive()
    }
}

impl LlmWorker {
    /// A worker for `config` (which must be `worker_kind: llm`) calling the models of
    /// `backends`.
    pub fn new(
        config: impl Into<Arc<WorkerConfig>>,
        backends: TierBackends,
    ) -> Result<Self, LlmWorkerError> {
        let config = config.into();
        if !matches!(config.kind, WorkerKind::Llm { .. }) {
            return Err(LlmWorkerError::NotAnLlmWorker {
                worker: config.name.to_string(),
            });
        }
        let worker = LlmWorker {
            config,
            backends,
            tools: None,
            warned_providers: Mutex::new(HashSet::new()),
        };
        worker.warn_tool_silos(&worker.config);
        Ok(worker)
    }

    /// Offers the tools of `host` to the model (MCP servers, test hosts).
    #[must_use]
    pub fn with_tool_host(mut self, host: Arc<dyn ToolHost>) -> Self {
        self.tools = Some(host);
        self
    }

    /// The config given at construction.
    pub fn config(&self) -> &Arc<WorkerConfig> {
        &self.config
    }

    /// The config for this task: the worker's current one (after reloads) when it is still
    /// an LLM config, else the one given at construction.
    fn config_for(&self, ctx: &TaskContext) -> Arc<WorkerConfig> {
        match &ctx.config {
            Some(config) if matches!(config.kind, WorkerKind::Llm { .. }) => config.clone(),
            _ => self.config.clone(),
        }
    }

    /// Logs, once per provider, that a tool silo cannot be loaded.
    fn warn_tool_silos(&self, config: &WorkerConfig) {
        for silo in &config.knowledge_silos {
            let KnowledgeSilo::Tool { name, provider, .. } = silo else {
                continue;
            };
            let first = self
                .warned_providers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(provider.clone());
            if first {
                warn!(
                    worker = %config.name,
                    silo = %name,
                    provider = %provider,
                    "Tool silos name Python ToolProvider classes, which cannot be loaded in Rust; skipping it (serve the tool over MCP instead)."
                );
            }
        }
    }

    /// One task, without the cancel watch.
    async fn run(
        &self,
        task: &TaskMessage,
        ctx: &TaskContext,
    ) -> Result<ProcessOutput, ProcessError> {
        let config = self.config_for(ctx);
        let WorkerKind::Llm { system_prompt } = &config.kind else {
            // `config_for` only returns LLM configs.
            return Err(ProcessError::fatal(
                LlmWorkerError::NotAnLlmWorker {
                    worker: config.name.to_string(),
                }
                .to_string(),
            ));
        };
        let model = self
            .backends
            .get(ctx.tier)
            .map_err(|e| ProcessError::fatal(e.to_string()))?;
        self.warn_tool_silos(&config);

        let prepared = {
            let config = config.clone();
            let system_prompt = system_prompt.clone();
            let payload = task.payload.clone();
            let span = tracing::Span::current();
            tokio::task::spawn_blocking(move || {
                let _entered = span.enter();
                prepare_task(&config, &system_prompt, payload)
            })
            .await
            .map_err(|e| {
                ProcessError::fatal(format!("internal error: reading knowledge failed: {e}"))
            })?
            .map_err(|e| ProcessError::fatal(e.to_string()))?
        };

        let request = CompletionRequest::new(prepared.system, user_message_for(&prepared.payload))
            .with_max_tokens(config.max_output_tokens)
            .with_temperature(0.0);
        debug!(worker = %config.name, tier = %ctx.tier, model = model.name(), "Calling the model.");
        let outcome = run_tool_loop(&*model, self.tools.as_deref(), request, MAX_TOOL_ROUNDS)
            .await
            .map_err(|e| model_error(&*model, &e))?;
        let model_used = outcome.completion.model.clone();
        let usage = token_usage(outcome.usage);
        let failed = |message: String| {
            ProcessError::fatal(message)
                .with_model_used(model_used.clone())
                .with_token_usage(usage.clone())
        };
        let text = match outcome.completion.content.as_deref() {
            Some(text) if !text.is_empty() => text,
            _ => return Err(failed(NO_TEXT_RESPONSE.to_owned())),
        };
        let mut output = extract_json_object(text).map_err(|e| failed(e.to_string()))?;

        // `shift_remove` keeps the other keys in the model's order.
        if let Some(updates) = output.shift_remove(SILO_UPDATES_KEY) {
            self.write_back(&config, updates).await;
        }

        Ok(ProcessOutput::new(output)
            .with_model_used(model_used)
            .with_token_usage(usage))
    }

    /// Applies `silo_updates` in one `spawn_blocking`.
    async fn write_back(&self, config: &Arc<WorkerConfig>, updates: Value) {
        let updates = match updates {
            Value::Array(updates) if !updates.is_empty() => updates,
            Value::Array(_) | Value::Null => return,
            other => {
                warn!(worker = %config.name, kind = json_kind(&other), "Ignoring silo_updates that is not a list.");
                return;
            }
        };
        let silos = config.knowledge_silos.clone();
        let span = tracing::Span::current();
        let applied = tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            apply_silo_updates(&updates, &silos)
        })
        .await;
        if let Err(e) = applied {
            warn!(worker = %config.name, error = %e, "Applying silo_updates failed.");
        }
    }
}

#[async_trait]
impl Processor for LlmWorker {
    async fn process(
        &self,
        task: &TaskMessage,
        ctx: &TaskContext,
    ) -> Result<ProcessOutput, ProcessError> {
        tokio::select! {
            biased;
            () = ctx.cancel.cancelled() => Err(ProcessError::fatal("task cancelled")),
            result = self.run(task, ctx) => result,
        }
    }

    /// Nothing to do: knowledge is re-read for every task, and each task uses the config
    /// the worker re-read (from [`TaskContext::config`]).
    async fn on_reload(&self) {}
}

/// A model failure as a processor failure: retryable when the model says so.
fn model_error(model: &dyn Model, error: &ModelError) -> ProcessError {
    let message = error.to_string();
    let failure = if error.is_retryable() {
        ProcessError::retryable(message)
    } else {
        ProcessError::fatal(message)
    };
    failure.with_model_used(model.name())
}

/// Summed model usage as the result's token counts.
fn token_usage(usage: Usage) -> TokenUsage {
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    TokenUsage::from_counts(count(usage.prompt_tokens), count(usage.completion_tokens))
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}
