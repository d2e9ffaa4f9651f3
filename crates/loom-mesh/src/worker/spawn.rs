//! Subjects, queue groups and actor specs of a worker, and [`spawn_worker`] to run it.

use std::sync::Arc;

use loom_bus::Bus;
use loom_core::config::{WorkerConfig, WorkerKind};
use loom_core::message::ModelTier;
use loom_core::subject::{self, CONTROL_CANCEL_ALL};
use tokio_util::sync::CancellationToken;
use tracing::error;

use super::Processor;
use super::cancel::CancelListener;
use super::task::TaskWorker;
use crate::actor::{ActorError, ActorReport, ActorSpec, spawn_actor};

/// Cancel requests handled at once by one worker's cancel listener.
const CANCEL_LISTENER_CONCURRENCY: usize = 4;

/// Which tiers a worker serves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ServeTiers {
    /// Every tier, with one subscription to `loom.tasks.{name}.*`: right for processors,
    /// which do not care about tiers.
    #[default]
    All,
    /// These tiers, one subscription each to `loom.tasks.{name}.{tier}`. An empty list
    /// serves every tier.
    Only(Vec<ModelTier>),
}

impl ServeTiers {
    /// Just `tier`.
    pub fn one(tier: ModelTier) -> Self {
        ServeTiers::Only(vec![tier])
    }

    /// The default for `config`: every tier for a processor; for an LLM worker its
    /// `default_model_tier`, or `standard` (the CLI's `--tier` default).
    pub fn default_for(config: &WorkerConfig) -> Self {
        match config.kind {
            WorkerKind::Processor { .. } => ServeTiers::All,
            _ => ServeTiers::one(config.default_model_tier.unwrap_or_default()),
        }
    }

    /// The tiers, deduplicated in order, or `None` for every tier.
    fn tiers(&self) -> Option<Vec<ModelTier>> {
        match self {
            ServeTiers::All => None,
            ServeTiers::Only(tiers) => {
                let mut out: Vec<ModelTier> = Vec::new();
                for t in tiers {
                    if !out.contains(t) {
                        out.push(*t);
                    }
                }
                (!out.is_empty()).then_some(out)
            }
        }
    }
}

/// The queue group replicas of `config` share: `workers-{name}` for an LLM worker,
/// `processors-{name}` for a processor (mesh spec §15).
pub fn queue_group(config: &WorkerConfig) -> String {
    format!("{}s-{}", kind_prefix(config), config.name)
}

fn kind_prefix(config: &WorkerConfig) -> &'static str {
    match config.kind {
        WorkerKind::Processor { .. } => "processor",
        _ => "worker",
    }
}

/// One actor spec per subscription for `config` serving `tiers`, each in the worker's
/// queue group with `max_concurrent` tasks at once. Only the first listens for reload,
/// so a shared [`TaskWorker`] reloads once per broadcast.
pub fn worker_specs(
    config: &WorkerConfig,
    tiers: &ServeTiers,
    max_concurrent: usize,
) -> Vec<ActorSpec> {
    let prefix = kind_prefix(config);
    let group = queue_group(config);
    let specs = match tiers.tiers() {
        None => vec![ActorSpec::new(
            format!("{prefix}-{}", config.name),
            format!("loom.tasks.{}.*", config.name),
        )],
        Some(tiers) => tiers
            .into_iter()
            .map(|tier| {
                ActorSpec::new(
                    format!("{prefix}-{}-{tier}", config.name),
                    subject::tasks(&config.name, tier),
                )
            })
            .collect(),
    };
    specs
        .into_iter()
        .enumerate()
        .map(|(i, spec)| {
            let spec = spec
                .queue_group(group.clone())
                .max_concurrent(max_concurrent);
            if i == 0 {
                spec.listen_for_reload()
            } else {
                spec
            }
        })
        .collect()
}

/// A running worker: its task actors and its cancel listener.
#[derive(Debug)]
pub struct WorkerHandle {
    name: String,
    actors: Vec<String>,
    join: tokio::task::JoinHandle<ActorReport>,
}

impl WorkerHandle {
    /// The worker's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The names of its task actors (one per subscription).
    pub fn actors(&self) -> &[String] {
        &self.actors
    }

    /// Waits until every task actor has drained after `shutdown` fired, and the cancel
    /// listener (which keeps running while tasks drain) has stopped. The report sums the
    /// task actors'.
    pub async fn join(self) -> ActorReport {
        match self.join.await {
            Ok(report) => report,
            Err(e) => {
                error!(worker = %self.name, error = %e, "Worker supervisor ended abnormally.");
                ActorReport {
                    received: 0,
                    abandoned: 0,
                }
            }
        }
    }
}

/// Starts a worker for `config` with `processor` on `bus`: one actor per subscription of
/// [`worker_specs`], sharing one [`TaskWorker`], plus a [`CancelListener`] on
/// `loom.control.cancel.*`. Everything is subscribed when this returns.
///
/// When `shutdown` fires, the task actors stop consuming and drain; the cancel listener
/// stops only after them, so in-flight tasks can still be cancelled while draining.
pub async fn spawn_worker(
    bus: Arc<dyn Bus>,
    config: WorkerConfig,
    processor: Arc<dyn Processor>,
    tiers: ServeTiers,
    max_concurrent: usize,
    shutdown: CancellationToken,
) -> Result<WorkerHandle, ActorError> {
    let name = config.name.to_string();
    let specs = worker_specs(&config, &tiers, max_concurrent);
    let worker = Arc::new(TaskWorker::new(bus.clone(), config, processor));
    let listener_stop = CancellationToken::new();
    let listener = spawn_actor(
        bus.clone(),
        ActorSpec::new(format!("{name}-cancel"), CONTROL_CANCEL_ALL)
            .max_concurrent(CANCEL_LISTENER_CONCURRENCY),
        Arc::new(CancelListener::new(worker.cancel_registry())),
        listener_stop.clone(),
    )
    .await?;
    // A child token, so that a failed start can stop what it started without
    // touching the caller's token.
    let actors_stop = shutdown.child_token();
    let mut actors = Vec::with_capacity(specs.len());
    for spec in specs {
        match spawn_actor(bus.clone(), spec, worker.clone(), actors_stop.clone()).await {
            Ok(handle) => actors.push(handle),
            Err(e) => {
                actors_stop.cancel();
                for handle in actors {
                    handle.join().await;
                }
                listener_stop.cancel();
                listener.join().await;
                return Err(e);
            }
        }
    }
    let names = actors.iter().map(|a| a.name().to_owned()).collect();
    let join = tokio::spawn(async move {
        let mut total = ActorReport {
            received: 0,
            abandoned: 0,
        };
        for handle in actors {
            let report = handle.join().await;
            total.received += report.received;
            total.abandoned += report.abandoned;
        }
        listener_stop.cancel();
        listener.join().await;
        total
    });
    Ok(WorkerHandle {
        name,
        actors: names,
        join,
    })
}
