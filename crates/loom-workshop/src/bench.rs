//! The test bench: one worker config against one payload, without a bus (mesh spec §12.3).
//!
//! An LLM worker runs as the mesh's LLM worker does — the system prompt with knowledge
//! sources and silos, file refs, the payload as pretty JSON, temperature 0,
//! `max_output_tokens`, JSON extraction, `silo_updates` removed (never written back) —
//! but the bench keeps what a worker throws away: the raw reply, every validation error,
//! the latency. A processor worker runs its built-in processor directly (the original
//! could not test processors at all).
//!
//! Input violations are recorded and the worker still runs, as in the original, so one
//! run shows both sides. The tier is the argument, else the worker's
//! `default_model_tier`, else `standard`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use loom_core::config::{WorkerConfig, WorkerKind};
use loom_core::contract::{Contract, Side};
use loom_core::message::{JsonObject, ModelTier, TaskMessage};
use loom_llm::{
    CompletionRequest, MAX_TOOL_ROUNDS, TierBackends, extract_json_object, run_tool_loop,
    user_message_for,
};
use loom_mesh::llm_worker::{SILO_UPDATES_KEY, prepare_task};
use loom_mesh::processors::build_processor;
use loom_mesh::worker::TaskContext;
use serde::Serialize;
use serde_json::Value;

/// How long a run may take when the worker config sets no `timeout_seconds`.
pub const DEFAULT_BENCH_TIMEOUT: Duration = Duration::from_secs(120);

/// Runs worker configs against payloads with the model backends it was given.
#[derive(Debug, Clone, Default)]
pub struct TestBench {
    backends: TierBackends,
}

/// Token counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tokens {
    /// Prompt (input) tokens.
    pub prompt_tokens: u64,
    /// Generated (output) tokens.
    pub completion_tokens: u64,
}

/// What one run produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct BenchRun {
    /// The output object, when one was produced (even when it breaks the output schema).
    pub output: Option<JsonObject>,
    /// The model's reply text (LLM workers).
    pub raw_response: Option<String>,
    /// Output schema violations.
    pub validation_errors: Vec<String>,
    /// Input schema violations (the worker ran anyway).
    pub input_validation_errors: Vec<String>,
    /// Tokens spent.
    pub token_usage: Tokens,
    /// Wall time of the run in milliseconds.
    pub latency_ms: u64,
    /// The model (or processor) that answered.
    pub model_used: Option<String>,
    /// The tier the run used.
    pub tier: ModelTier,
    /// Why the run failed, if it did.
    pub error: Option<String>,
}

impl BenchRun {
    /// True when the run produced an output and nothing was invalid or failed.
    pub fn success(&self) -> bool {
        self.error.is_none()
            && self.output.is_some()
            && self.validation_errors.is_empty()
            && self.input_validation_errors.is_empty()
    }

    fn failed(tier: ModelTier, error: String) -> Self {
        BenchRun {
            output: None,
            raw_response: None,
            validation_errors: Vec::new(),
            input_validation_errors: Vec::new(),
            token_usage: Tokens::default(),
            latency_ms: 0,
            model_used: None,
            tier,
            error: Some(error),
        }
    }
}

impl TestBench {
    /// A bench calling `backends`.
    pub fn new(backends: TierBackends) -> Self {
        TestBench { backends }
    }

    /// The model backends.
    pub fn backends(&self) -> &TierBackends {
        &self.backends
    }

    /// Runs `config` on `payload`; every failure is in [`BenchRun::error`].
    pub async fn run(
        &self,
        config: &WorkerConfig,
        payload: JsonObject,
        tier: Option<ModelTier>,
    ) -> BenchRun {
        let tier = tier
            .or(config.default_model_tier)
            .unwrap_or(ModelTier::Standard);
        let started = Instant::now();
        let timeout = config
            .timeout_seconds
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .unwrap_or(DEFAULT_BENCH_TIMEOUT);
        let input_validation_errors =
            violations(config.input_schema.as_ref(), &payload, Side::Input);
        let run = async {
            match &config.kind {
                WorkerKind::Llm { system_prompt } => {
                    self.run_llm(config, system_prompt, payload, tier).await
                }
                _ => run_processor(config, payload, tier).await,
            }
        };
        let mut result = match tokio::time::timeout(timeout, run).await {
            Ok(result) => result,
            Err(_) => BenchRun::failed(tier, format!("timed out after {}s", timeout.as_secs_f64())),
        };
        result.input_validation_errors = input_validation_errors;
        if let Some(output) = &result.output {
            result.validation_errors =
                violations(config.output_schema.as_ref(), output, Side::Output);
        }
        result.latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        result
    }

    async fn run_llm(
        &self,
        config: &WorkerConfig,
        system_prompt: &str,
        payload: JsonObject,
        tier: ModelTier,
    ) -> BenchRun {
        let model = match self.backends.get(tier) {
            Ok(m) => m,
            Err(e) => {
                let available: Vec<String> = self
                    .backends
                    .tiers()
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                return BenchRun::failed(
                    tier,
                    format!("{e}; tiers with a backend: [{}]", available.join(", ")),
                );
            }
        };
        let prepared = {
            let config = Arc::new(config.clone());
            let system_prompt = system_prompt.to_owned();
            tokio::task::spawn_blocking(move || prepare_task(&config, &system_prompt, payload))
                .await
        };
        let prepared = match prepared {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return BenchRun::failed(tier, e.to_string()),
            Err(e) => return BenchRun::failed(tier, format!("internal error: {e}")),
        };
        let request = CompletionRequest::new(prepared.system, user_message_for(&prepared.payload))
            .with_max_tokens(config.max_output_tokens)
            .with_temperature(0.0);
        let outcome = match run_tool_loop(&*model, None, request, MAX_TOOL_ROUNDS).await {
            Ok(o) => o,
            Err(e) => {
                let mut run = BenchRun::failed(tier, e.to_string());
                run.model_used = Some(model.name().to_owned());
                return run;
            }
        };
        let raw = outcome.completion.content.clone();
        let mut run = BenchRun::failed(tier, String::new());
        run.error = None;
        run.model_used = Some(outcome.completion.model.clone());
        run.token_usage = Tokens {
            prompt_tokens: outcome.usage.prompt_tokens,
            completion_tokens: outcome.usage.completion_tokens,
        };
        run.raw_response = raw.clone();
        match raw.as_deref() {
            Some(text) if !text.is_empty() => match extract_json_object(text) {
                Ok(mut output) => {
                    output.shift_remove(SILO_UPDATES_KEY);
                    run.output = Some(output);
                }
                Err(e) => run.error = Some(e.to_string()),
            },
            _ => run.error = Some(loom_mesh::llm_worker::NO_TEXT_RESPONSE.to_owned()),
        }
        run
    }
}

async fn run_processor(config: &WorkerConfig, payload: JsonObject, tier: ModelTier) -> BenchRun {
    let processor = match build_processor(config) {
        Ok(p) => p,
        Err(e) => return BenchRun::failed(tier, e.to_string()),
    };
    let task = TaskMessage::new(&config.name, payload).with_model_tier(tier);
    let ctx = TaskContext::new(tier).with_config(Arc::new(config.clone()));
    let cancel = ctx.cancel.clone();
    // Dropping the run (a timeout) must stop a subprocess too.
    let _guard = cancel.drop_guard();
    match processor.process(&task, &ctx).await {
        Ok(out) => {
            let mut run = BenchRun::failed(tier, String::new());
            run.error = None;
            run.model_used = out.model_used;
            run.token_usage = Tokens {
                prompt_tokens: u64::try_from(out.token_usage.prompt_tokens()).unwrap_or(0),
                completion_tokens: u64::try_from(out.token_usage.completion_tokens()).unwrap_or(0),
            };
            run.output = Some(out.output);
            run
        }
        Err(e) => {
            let mut run = BenchRun::failed(tier, e.message);
            run.model_used = e.model_used;
            run
        }
    }
}

/// The violations of `value` against `contract`, as the worker renders them.
fn violations(contract: Option<&Contract>, value: &JsonObject, side: Side) -> Vec<String> {
    let Some(contract) = contract else {
        return Vec::new();
    };
    match contract.check(&Value::Object(value.clone())) {
        Ok(()) => Vec::new(),
        Err(v) => v.render(side),
    }
}
