//! The pipeline orchestrator: runs each goal through a pipeline's stages, level by level.
//!
//! A [`PipelineOrchestrator`] is the [`Handler`] behind one pipeline config. For each
//! [`OrchestratorGoal`] it builds a context `{goal: {instruction, context}}`, runs the
//! config's levels in order (the stages of a level concurrently), sends every stage to
//! its worker as a [`TaskMessage`](loom_core::message::TaskMessage) on
//! `loom.tasks.incoming`, and answers with one final [`TaskResult`] on
//! `loom.results.{goal_id}` whose `task_id` is the goal id (mesh spec §9).
//!
//! Fixes over loom-ai 0.9.0 (mesh spec §19):
//!
//! * **B7** goals are addressed: the orchestrator consumes `loom.goals.{pipeline}` in
//!   queue group `pipeline-{pipeline}`. The shared `loom.goals.incoming` (queue group
//!   `pipelines`) is an opt-in compatibility subscription ([`PipelineOptions`]).
//! * **B6** single-quoted and plain YAML literals in `input_mapping` reach the payload.
//! * **B8** conditions create dependencies (the config loader orders the levels).
//! * **B12** an unparsable goal whose `goal_id` can be read is answered FAILED at once.
//! * **L1** the orchestrator subscribes to `loom.results.{goal_id}` *before* it publishes
//!   any stage task; one subscription per goal serves every stage, matched by `task_id`.
//! * **L4** the final result sums the stages' `token_usage`, and a FAILED result keeps
//!   the outputs and `_timeline` of the stages that completed.
//! * **L5** a failing stage cancels its siblings in the level: the orchestrator stops
//!   waiting for them and publishes a [`CancelRequest`](loom_core::message::CancelRequest)
//!   to `loom.control.cancel.{task_id}` for each of their tasks in flight.
//! * **L6** conditions compare numbers numerically (`x == 5` holds for the integer 5).
//!
//! Other rules worth knowing:
//!
//! * A stage whose condition is false (or whose condition path is missing) is skipped:
//!   absent from the output and the timeline, reported as `skipped` progress. A later
//!   stage that maps from a skipped stage fails with a mapping error naming it; to skip
//!   it instead, give it a condition such as `ocr.output.text != null`.
//! * Worker failures and timeouts are retried up to `max_retries` times, each with a
//!   fresh `task_id`; a timed-out attempt's task is cancelled. Mapping errors, stage
//!   contract violations and a worker's own `Input validation` rejection are never
//!   retried: the same payload would fail again.
//!
//! New in Rust: [`PipelineProgress`] messages on `loom.progress.{goal_id}` after every
//! stage, a goal can be cancelled with a `CancelRequest` on `loom.control.cancel.{goal_id}`,
//! and [`submit_goal`] is the client side (subscribe, publish, collect progress, wait).
//!
//! | module | what it holds |
//! |---|---|
//! | `context` | the goal context, path resolution, conditions, payload mapping |
//! | `run` | one goal's execution: levels, stages, retries, cancellation, the final result |
//! | `progress` | [`PipelineProgress`] and its subject |
//! | `client` | [`submit_goal`]: what `loom submit` and the gateway call |

mod client;
mod context;
mod progress;
mod run;

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use loom_bus::{Bus, BusExt, Message};
use loom_core::config::{PipelineConfig, load_pipeline};
use loom_core::message::{OrchestratorGoal, TaskResult};
use loom_core::subject;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

use crate::actor::{
    ActorError, ActorHandle, ActorSpec, DEFAULT_DRAIN_DEADLINE, Handler, spawn_actor,
};

pub use client::{SubmitError, submit_goal, submit_goal_to};
pub use progress::{PROGRESS_ALL, PipelineProgress, StageStatus, progress_subject};

/// The queue group of the compatibility subscription to `loom.goals.incoming`, shared by
/// every pipeline orchestrator as in loom-ai 0.9.0.
pub const COMPAT_QUEUE_GROUP: &str = "pipelines";

/// How to run a pipeline orchestrator, beyond its config.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PipelineOptions {
    /// Also consume the shared `loom.goals.incoming` (queue group `pipelines`), as the
    /// Python original does. Off by default: with several pipelines deployed, a goal sent
    /// there reaches a random one (mesh spec §19, B7).
    pub compat_incoming: bool,
    /// How long running goals may take to finish after shutdown is requested; after it
    /// they are cancelled and answered FAILED.
    pub drain_deadline: Duration,
    /// The MCP tools `mcp_tool` stages call.
    pub tools: Option<crate::mcp::SharedTools>,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            compat_incoming: false,
            drain_deadline: DEFAULT_DRAIN_DEADLINE,
            tools: None,
        }
    }
}

impl PipelineOptions {
    /// Enables or disables the `loom.goals.incoming` compatibility subscription.
    #[must_use]
    pub fn with_compat_incoming(mut self, enabled: bool) -> Self {
        self.compat_incoming = enabled;
        self
    }

    /// Sets the drain deadline.
    #[must_use]
    pub fn with_drain_deadline(mut self, deadline: Duration) -> Self {
        self.drain_deadline = deadline;
        self
    }

    /// Gives `mcp_tool` stages these tools.
    #[must_use]
    pub fn with_tools(mut self, tools: Arc<dyn loom_llm::ToolHost>) -> Self {
        self.tools = Some(crate::mcp::SharedTools(tools));
        self
    }
}

/// Starts the orchestrator for `config`: one actor on `loom.goals.{name}` (queue group
/// `pipeline-{name}`, listening for reloads) and, with
/// [`PipelineOptions::compat_incoming`], one on `loom.goals.incoming` (queue group
/// `pipelines`). Both share one handler, so `max_concurrent_goals` bounds their goals
/// together.
///
/// The subscriptions exist (and, on NATS, have reached the server) when this returns, so
/// no goal published afterwards is missed.
pub async fn spawn_pipeline(
    bus: Arc<dyn Bus>,
    config: PipelineConfig,
    options: PipelineOptions,
    shutdown: CancellationToken,
) -> Result<Vec<ActorHandle>, ActorError> {
    let uses_mcp = config.stages.iter().any(|s| s.mcp_tool.is_some());
    let own_tools = match (&options.tools, &config.mcp_servers) {
        (None, Some(section)) if uses_mcp => match crate::mcp::McpTools::from_section(section) {
            Ok(tools) => {
                let registry = tools.registry().clone();
                let stop = shutdown.clone();
                tokio::spawn(async move {
                    stop.cancelled().await;
                    registry.close().await;
                });
                Some(Arc::new(tools) as Arc<dyn loom_llm::ToolHost>)
            }
            Err(e) => {
                warn!(pipeline = %config.name, error = %e, "Cannot set up the pipeline's mcp_servers; its mcp_tool stages will fail.");
                None
            }
        },
        _ => None,
    };
    let mut orchestrator = PipelineOrchestrator::new(bus.clone(), config);
    if let Some(tools) = options.tools.as_ref().map(|t| t.0.clone()).or(own_tools) {
        orchestrator = orchestrator.with_tools(tools);
    }
    let orchestrator = Arc::new(orchestrator);
    let mut specs = vec![orchestrator.spec()];
    if options.compat_incoming {
        specs.push(orchestrator.compat_spec());
    }
    let mut handles = Vec::with_capacity(specs.len());
    for spec in specs {
        let spec = spec.drain_deadline(options.drain_deadline);
        let handler: Arc<dyn Handler> = orchestrator.clone();
        handles.push(spawn_actor(bus.clone(), spec, handler, shutdown.clone()).await?);
    }
    // On NATS a subscription is registered with the server asynchronously; a flush makes
    // sure goals published by other connections after we return are routed to us.
    if let Err(e) = bus.flush().await {
        warn!(error = %e, "Cannot flush the bus after subscribing; early goals may be missed.");
    }
    Ok(handles)
}

/// The orchestrator of one pipeline: a [`Handler`] for goals.
///
/// Build it with [`PipelineOrchestrator::new`] and run it with [`spawn_pipeline`], or
/// with [`run_actor`](crate::actor::run_actor) on [`PipelineOrchestrator::spec`].
pub struct PipelineOrchestrator {
    bus: Arc<dyn Bus>,
    config: RwLock<Arc<PipelineConfig>>,
    /// Bounds the goals run at once across every subscription of this orchestrator.
    goals: Arc<Semaphore>,
    /// What `mcp_tool` stages call.
    tools: Option<Arc<dyn loom_llm::ToolHost>>,
}

impl std::fmt::Debug for PipelineOrchestrator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineOrchestrator")
            .field("pipeline", &self.config().name.as_str())
            .finish_non_exhaustive()
    }
}

impl PipelineOrchestrator {
    /// An orchestrator for `config`, publishing on `bus`.
    pub fn new(bus: Arc<dyn Bus>, config: PipelineConfig) -> Self {
        let permits = usize::try_from(config.max_concurrent_goals)
            .unwrap_or(usize::MAX)
            .max(1);
        PipelineOrchestrator {
            bus,
            config: RwLock::new(Arc::new(config)),
            goals: Arc::new(Semaphore::new(permits)),
            tools: None,
        }
    }

    /// Gives `mcp_tool` stages these tools; without them such a stage fails.
    #[must_use]
    pub fn with_tools(mut self, tools: Arc<dyn loom_llm::ToolHost>) -> Self {
        self.tools = Some(tools);
        self
    }

    /// The config in use (replaced by a successful reload).
    pub fn config(&self) -> Arc<PipelineConfig> {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The actor spec for addressed goals: `loom.goals.{name}`, queue group
    /// `pipeline-{name}`, `max_concurrent_goals` at once, listening for reloads.
    pub fn spec(&self) -> ActorSpec {
        let config = self.config();
        ActorSpec::new(
            format!("pipeline-{}", config.name),
            subject::goals(&config.name),
        )
        .queue_group(format!("pipeline-{}", config.name))
        .max_concurrent(goal_concurrency(&config))
        .listen_for_reload()
    }

    /// The actor spec for the loom-ai 0.9.0 subject: `loom.goals.incoming`, queue group
    /// `pipelines`. It does not listen for reloads (the addressed actor does).
    pub fn compat_spec(&self) -> ActorSpec {
        let config = self.config();
        ActorSpec::new(
            format!("pipeline-{}-compat", config.name),
            subject::GOALS_INCOMING,
        )
        .queue_group(COMPAT_QUEUE_GROUP)
        .max_concurrent(goal_concurrency(&config))
    }

    /// Runs `goal` to its end and returns the final result, without publishing it.
    /// `cancel` stops the goal (it then fails with `pipeline cancelled: …`).
    pub async fn run_goal(&self, goal: OrchestratorGoal, cancel: CancellationToken) -> TaskResult {
        let config = self.config();
        run::run_goal(&*self.bus, &config, self.tools.as_deref(), goal, cancel).await
    }

    async fn handle_goal(&self, message: &Message, cancel: CancellationToken) {
        let config = self.config();
        let goal = match parse_goal(&message.payload) {
            Ok(goal) => goal,
            Err(bad) => {
                self.answer_invalid(&config, bad).await;
                return;
            }
        };
        let span = info_span!(
            "pipeline_goal",
            pipeline = %config.name,
            goal_id = %goal.goal_id,
            request_id = goal.request_id.as_deref().unwrap_or(""),
        );
        async {
            let Ok(result_subject) = subject::results(Some(&goal.goal_id)) else {
                warn!("Goal id cannot be used in a subject; nobody could receive an answer. Dropping the goal.");
                return;
            };
            let _permit = tokio::select! {
                biased;
                () = cancel.cancelled() => None,
                permit = self.goals.clone().acquire_owned() => permit.ok(),
            };
            let result = run::run_goal(&*self.bus, &config, self.tools.as_deref(), goal, cancel).await;
            info!(status = %result.status, elapsed_ms = result.processing_time_ms, error = result.error.as_deref().unwrap_or(""), "Goal finished.");
            if let Err(e) = self.bus.publish_json(&result_subject, &result).await {
                error!(error = %e, "Cannot publish the goal's final result.");
            }
        }
        .instrument(span)
        .await;
    }

    /// B12: answers a goal that did not parse, when its id can be read.
    async fn answer_invalid(&self, config: &PipelineConfig, bad: InvalidGoal) {
        let Some(goal_id) = bad.goal_id else {
            warn!(pipeline = %config.name, error = %bad.error, "Dropping a goal that did not parse and has no goal_id.");
            return;
        };
        let Ok(result_subject) = subject::results(Some(&goal_id)) else {
            warn!(pipeline = %config.name, error = %bad.error, "Dropping a goal that did not parse; its goal_id cannot be used in a subject.");
            return;
        };
        warn!(pipeline = %config.name, goal_id = %goal_id, error = %bad.error, "Goal did not parse; answering FAILED.");
        let result = TaskResult::failed_for(
            goal_id,
            None,
            config.name.as_str(),
            format!("Invalid goal: {}", bad.error),
        );
        if let Err(e) = self.bus.publish_json(&result_subject, &result).await {
            error!(error = %e, "Cannot publish the FAILED answer to an invalid goal.");
        }
    }

    async fn reload(&self) {
        let current = self.config();
        let source = current.source.clone();
        let loaded = tokio::task::spawn_blocking(move || load_pipeline(&source)).await;
        let new = match loaded {
            Ok(Ok(new)) => new,
            Ok(Err(errors)) => {
                error!(pipeline = %current.name, file = %current.source.display(), errors = %errors, "Pipeline config is invalid; keeping the old one.");
                return;
            }
            Err(e) => {
                error!(pipeline = %current.name, error = %e, "Reading the pipeline config failed; keeping the old one.");
                return;
            }
        };
        if new.name != current.name {
            error!(pipeline = %current.name, new_name = %new.name, "A reload cannot rename a pipeline (its subject is fixed); keeping the old config. Restart to rename.");
            return;
        }
        if new.max_concurrent_goals != current.max_concurrent_goals {
            warn!(pipeline = %current.name, "max_concurrent_goals changed; it takes effect at the next restart.");
        }
        info!(pipeline = %new.name, stages = new.stages.len(), "Pipeline config reloaded.");
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(new);
    }
}

#[async_trait]
impl Handler for PipelineOrchestrator {
    async fn handle(&self, message: Message, cancel: CancellationToken) {
        self.handle_goal(&message, cancel).await;
    }

    async fn on_reload(&self) {
        self.reload().await;
    }
}

fn goal_concurrency(config: &PipelineConfig) -> usize {
    usize::try_from(config.max_concurrent_goals)
        .unwrap_or(usize::MAX)
        .max(1)
}

/// A goal body that is not an [`OrchestratorGoal`].
struct InvalidGoal {
    /// The `goal_id` it carried, if a string.
    goal_id: Option<String>,
    error: String,
}

fn parse_goal(payload: &[u8]) -> Result<OrchestratorGoal, InvalidGoal> {
    let raw: Value = serde_json::from_slice(payload).map_err(|e| InvalidGoal {
        goal_id: None,
        error: format!("not JSON: {e}"),
    })?;
    let goal_id = raw
        .get("goal_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    serde_json::from_value::<OrchestratorGoal>(raw).map_err(|e| InvalidGoal {
        goal_id,
        error: e.to_string(),
    })
}
