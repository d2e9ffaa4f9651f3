//! A whole mesh in one process: router, workers and pipelines from a set of configs.
//!
//! `loom up` and the gateway's embedded mode build a [`MeshPlan`] from configs (gateway
//! configs contribute the workers and pipelines they reference), check that every
//! pipeline stage has a worker, and [`start_mesh`] runs it all on one bus.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use loom_bus::Bus;
use loom_core::config::{AnyConfig, PipelineConfig, RouterRules, WorkerConfig, WorkerKind};
use loom_core::name::{PipelineName, StageName, WorkerName};
use loom_llm::TierBackends;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::actor::{ActorError, ActorHandle, DEFAULT_DRAIN_DEADLINE};
use crate::llm_worker::{LlmWorker, LlmWorkerError};
use crate::pipeline::{PipelineOptions, spawn_pipeline};
use crate::processors::{BuildError, build_processor};
use crate::router::spawn_router;
use crate::worker::{Processor, ServeTiers, WorkerHandle, spawn_worker};

/// What one process runs.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct MeshPlan {
    /// The router's rules; `None` runs no router.
    pub router: Option<RouterRules>,
    /// The workers, by name.
    pub workers: BTreeMap<WorkerName, WorkerConfig>,
    /// The pipelines, by name.
    pub pipelines: BTreeMap<PipelineName, PipelineConfig>,
}

/// A plan that cannot run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// Two different files define the same worker.
    #[error("worker '{name}' is defined twice: {} and {}", first.display(), second.display())]
    DuplicateWorker {
        /// The worker.
        name: WorkerName,
        /// Its first file.
        first: std::path::PathBuf,
        /// Its second file.
        second: std::path::PathBuf,
    },
    /// Two different files define the same pipeline.
    #[error("pipeline '{name}' is defined twice: {} and {}", first.display(), second.display())]
    DuplicatePipeline {
        /// The pipeline.
        name: PipelineName,
        /// Its first file.
        first: std::path::PathBuf,
        /// Its second file.
        second: std::path::PathBuf,
    },
    /// Two router-rules files.
    #[error("more than one router-rules file: {} and {}", first.display(), second.display())]
    DuplicateRouterRules {
        /// The first file.
        first: std::path::PathBuf,
        /// The second file.
        second: std::path::PathBuf,
    },
}

/// A pipeline stage whose worker this plan does not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingWorker {
    /// The pipeline.
    pub pipeline: PipelineName,
    /// The stage.
    pub stage: StageName,
    /// The worker it needs.
    pub worker: WorkerName,
}

impl std::fmt::Display for MissingWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pipeline '{}' stage '{}' needs worker '{}'",
            self.pipeline, self.stage, self.worker
        )
    }
}

impl MeshPlan {
    /// Collects workers, pipelines and router rules from loaded configs. A gateway config
    /// contributes the workers and pipelines its tools reference, and one query worker per
    /// query entry. The same file reached twice counts once.
    pub fn from_configs(
        configs: impl IntoIterator<Item = AnyConfig>,
    ) -> Result<MeshPlan, PlanError> {
        let mut plan = MeshPlan::default();
        for config in configs {
            match config {
                AnyConfig::Worker(w) => plan.add_worker(*w)?,
                AnyConfig::Pipeline(p) => plan.add_pipeline(*p)?,
                AnyConfig::RouterRules(r) => {
                    let second = r.source.clone().unwrap_or_default();
                    if let Some(first) = plan.router.as_ref().and_then(|r| r.source.clone()) {
                        if first != second {
                            return Err(PlanError::DuplicateRouterRules { first, second });
                        }
                    }
                    plan.router = Some(*r);
                }
                AnyConfig::Gateway(g) => {
                    for tool in g.workers {
                        plan.add_worker(tool.worker)?;
                    }
                    for tool in g.pipelines {
                        plan.add_pipeline(tool.pipeline)?;
                    }
                    // Each query entry implies its query worker, `{name_prefix}_query` by default.
                    for q in g.queries {
                        plan.add_worker(WorkerConfig::processor(
                            q.worker_type,
                            q.backend.as_str(),
                            q.backend_config,
                            g.source.clone(),
                        ))?;
                    }
                }
                _ => {}
            }
        }
        Ok(plan)
    }

    /// Adds a worker (again, from the same file, is a no-op).
    pub fn add_worker(&mut self, w: WorkerConfig) -> Result<(), PlanError> {
        if let Some(first) = self.workers.get(&w.name) {
            if same_file(&first.source, &w.source) {
                return Ok(());
            }
            return Err(PlanError::DuplicateWorker {
                name: w.name,
                first: first.source.clone(),
                second: w.source,
            });
        }
        self.workers.insert(w.name.clone(), w);
        Ok(())
    }

    /// Adds a pipeline (again, from the same file, is a no-op).
    pub fn add_pipeline(&mut self, p: PipelineConfig) -> Result<(), PlanError> {
        if let Some(first) = self.pipelines.get(&p.name) {
            if same_file(&first.source, &p.source) {
                return Ok(());
            }
            return Err(PlanError::DuplicatePipeline {
                name: p.name,
                first: first.source.clone(),
                second: p.source,
            });
        }
        self.pipelines.insert(p.name.clone(), p);
        Ok(())
    }

    /// Stages whose worker is not in this plan: on an in-process bus nothing else could
    /// serve them; on NATS they must run elsewhere.
    pub fn missing_workers(&self) -> Vec<MissingWorker> {
        let mut out = Vec::new();
        for p in self.pipelines.values() {
            // `mcp_tool` stages call an MCP server, not a worker.
            for s in p.stages.iter().filter(|s| s.mcp_tool.is_none()) {
                if !self.workers.contains_key(&s.worker_type) {
                    out.push(MissingWorker {
                        pipeline: p.name.clone(),
                        stage: s.name.clone(),
                        worker: s.worker_type.clone(),
                    });
                }
            }
        }
        out
    }

    /// Whether the plan runs nothing.
    pub fn is_empty(&self) -> bool {
        self.router.is_none() && self.workers.is_empty() && self.pipelines.is_empty()
    }
}

fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

/// How a mesh runs.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MeshOptions {
    /// Run the router even when the plan has no router rules (with empty rules).
    pub router: bool,
    /// Tasks each worker handles at once.
    pub worker_concurrency: usize,
    /// Also take goals from the shared `loom.goals.incoming` (loom-ai 0.9.0 clients).
    pub compat_goals: bool,
    /// How long in-flight work may run after shutdown is requested.
    pub drain_deadline: Duration,
    /// The MCP tools of `mcp_tool` stages (an embedding gateway's upstreams); a pipeline
    /// without them uses its own `mcp_servers` section.
    pub tools: Option<crate::mcp::SharedTools>,
}

impl Default for MeshOptions {
    fn default() -> Self {
        MeshOptions {
            router: true,
            worker_concurrency: DEFAULT_WORKER_CONCURRENCY,
            compat_goals: false,
            drain_deadline: DEFAULT_DRAIN_DEADLINE,
            tools: None,
        }
    }
}

impl MeshOptions {
    /// Runs (or not) a router when the plan has no router rules.
    pub fn with_router(mut self, router: bool) -> Self {
        self.router = router;
        self
    }

    /// Sets how many tasks each worker handles at once (at least 1).
    pub fn with_worker_concurrency(mut self, n: usize) -> Self {
        self.worker_concurrency = n.max(1);
        self
    }

    /// Also takes goals from `loom.goals.incoming`.
    pub fn with_compat_goals(mut self, compat: bool) -> Self {
        self.compat_goals = compat;
        self
    }

    /// Sets the drain deadline.
    pub fn with_drain_deadline(mut self, deadline: Duration) -> Self {
        self.drain_deadline = deadline;
        self
    }

    /// Gives `mcp_tool` stages these tools.
    pub fn with_tools(mut self, tools: Arc<dyn loom_llm::ToolHost>) -> Self {
        self.tools = Some(crate::mcp::SharedTools(tools));
        self
    }
}

/// Tasks a worker handles at once in an embedded mesh: enough to overlap I/O-bound LLM
/// calls and subprocesses without flooding a 2-core machine.
pub const DEFAULT_WORKER_CONCURRENCY: usize = 8;

/// Why a mesh could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeshError {
    /// A processor worker's backend could not be built.
    #[error("worker '{worker}' ({})", source_file.display())]
    Processor {
        /// The worker.
        worker: WorkerName,
        /// Its config file.
        source_file: std::path::PathBuf,
        /// Why.
        #[source]
        source: BuildError,
    },
    /// An LLM worker could not be built.
    #[error("worker '{worker}'")]
    Llm {
        /// The worker.
        worker: WorkerName,
        /// Why.
        #[source]
        source: LlmWorkerError,
    },
    /// An `mcp_servers` section cannot become MCP clients.
    #[error("{owner}: mcp_servers")]
    Mcp {
        /// The worker or pipeline.
        owner: String,
        /// Why.
        #[source]
        source: crate::mcp::McpSetupError,
    },
    /// An actor could not subscribe.
    #[error(transparent)]
    Actor(#[from] ActorError),
}

/// A running mesh.
#[derive(Debug)]
pub struct RunningMesh {
    router: Option<ActorHandle>,
    workers: Vec<WorkerHandle>,
    pipelines: Vec<ActorHandle>,
}

impl RunningMesh {
    /// Waits for every actor to finish (after the shutdown token fired).
    pub async fn join(self) {
        if let Some(r) = self.router {
            r.join().await;
        }
        for w in self.workers {
            w.join().await;
        }
        for p in self.pipelines {
            p.join().await;
        }
    }

    /// How many actors run: router, workers and pipeline subscriptions.
    pub fn actor_count(&self) -> usize {
        usize::from(self.router.is_some()) + self.workers.len() + self.pipelines.len()
    }
}

/// Starts every component of `plan` on `bus`. Every subscription exists when this
/// returns, so tasks and goals published afterwards are served.
pub async fn start_mesh(
    bus: Arc<dyn Bus>,
    plan: MeshPlan,
    backends: TierBackends,
    options: MeshOptions,
    shutdown: CancellationToken,
) -> Result<RunningMesh, MeshError> {
    // Build every processor first, so a bad config starts nothing.
    let mut built: Vec<(WorkerConfig, Arc<dyn Processor>, ServeTiers)> = Vec::new();
    for (name, w) in plan.workers {
        let tiers = ServeTiers::default_for(&w);
        let processor: Arc<dyn Processor> = match &w.kind {
            WorkerKind::Llm { .. } => {
                for tier in backends_missing(&backends, &tiers) {
                    warn!(worker = %name, tier = %tier, "No model backend for this tier; its tasks will fail.");
                }
                let mut worker = LlmWorker::new(w.clone(), backends.clone()).map_err(|source| {
                    MeshError::Llm {
                        worker: name.clone(),
                        source,
                    }
                })?;
                if let Some(section) = &w.mcp_servers {
                    let tools = mcp_tools(section, &format!("worker '{name}'"), &shutdown)?;
                    worker = worker.with_tool_host(tools);
                }
                Arc::new(worker)
            }
            _ => build_processor(&w).map_err(|source| MeshError::Processor {
                worker: name.clone(),
                source_file: w.source.clone(),
                source,
            })?,
        };
        built.push((w, processor, tiers));
    }
    let mut running = RunningMesh {
        router: None,
        workers: Vec::new(),
        pipelines: Vec::new(),
    };
    if options.router || plan.router.is_some() {
        let rules = plan.router.unwrap_or_default();
        running.router = Some(spawn_router(bus.clone(), rules, shutdown.clone()).await?);
    }
    for (w, processor, tiers) in built {
        let handle = spawn_worker(
            bus.clone(),
            w,
            processor,
            tiers,
            options.worker_concurrency,
            shutdown.clone(),
        )
        .await?;
        running.workers.push(handle);
    }
    for p in plan.pipelines.into_values() {
        let mut opts = PipelineOptions::default()
            .with_compat_incoming(options.compat_goals)
            .with_drain_deadline(options.drain_deadline);
        // Without shared tools, a pipeline uses its own mcp_servers (spawn_pipeline).
        if let Some(shared) = &options.tools {
            opts = opts.with_tools(shared.0.clone());
        }
        running
            .pipelines
            .extend(spawn_pipeline(bus.clone(), p, opts, shutdown.clone()).await?);
    }
    // On NATS, make sure the server has every subscription before callers publish.
    if let Err(e) = bus.flush().await {
        warn!(error = %e, "Cannot flush the bus after subscribing.");
    }
    info!(actors = running.actor_count(), "Mesh started.");
    Ok(running)
}

/// The MCP tools of `section` for `owner`; their servers close when `shutdown` fires.
fn mcp_tools(
    section: &loom_core::config::McpServers,
    owner: &str,
    shutdown: &CancellationToken,
) -> Result<Arc<dyn loom_llm::ToolHost>, MeshError> {
    let tools = crate::mcp::McpTools::from_section(section).map_err(|source| MeshError::Mcp {
        owner: owner.to_owned(),
        source,
    })?;
    let registry = tools.registry().clone();
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        registry.close().await;
    });
    Ok(Arc::new(tools))
}

fn backends_missing(
    backends: &TierBackends,
    tiers: &ServeTiers,
) -> Vec<loom_core::message::ModelTier> {
    let wanted: Vec<_> = match tiers {
        ServeTiers::Only(list) if !list.is_empty() => list.clone(),
        _ => loom_core::message::ModelTier::ALL.to_vec(),
    };
    wanted
        .into_iter()
        .filter(|t| backends.get(*t).is_err())
        .collect()
}
