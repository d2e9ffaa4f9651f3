//! The task router: `loom.tasks.incoming` → `loom.tasks.{worker_type}.{tier}`, or a dead letter.
//!
//! Per message (mesh spec §5.2, with the Rust fixes):
//!
//! 1. **Parse** the body as a [`TaskMessage`]. Failure → dead letter
//!    `invalid_task_message: <error>`.
//! 2. **Check `worker_type`** as a [`WorkerName`] (`^[a-z][a-z0-9_]*$`), since it becomes a
//!    subject token (L8). Failure → dead letter `invalid_worker_type: <error>`.
//! 3. **Resolve the tier**: `tier_overrides[worker_type]`, else the message's `model_tier`.
//!    The forwarded message's `model_tier` is rewritten to the resolved tier, so the worker
//!    picks the backend the subject promises (B3). Overrides are typed [`ModelTier`]s, so
//!    loom-ai's `unknown_tier:` dead letter cannot happen: the config loader rejects them.
//! 4. **Rate-limit** the resolved tier ([`RateLimiter`], B11). Refused → dead letter
//!    `rate_limited: tier '<tier>' has no available capacity`.
//! 5. **Forward** the re-serialised message (unknown keys dropped, `_trace_context` kept)
//!    to `loom.tasks.{worker_type}.{tier}`.
//!
//! A dead letter is a [`DeadLetter`] envelope on `loom.tasks.dead_letter` whose
//! `original_task` is the raw incoming JSON, unmodified (the body as a JSON string when it
//! is not JSON). Unlike loom-ai 0.9.0, the caller is told at once: when the raw task has a
//! `task_id`, a FAILED [`TaskResult`](loom_core::message::TaskResult) with error
//! `Task dead-lettered: <reason>` goes to `loom.results.{parent_task_id or "default"}` (B12).
//!
//! The router runs as an actor in queue group [`ROUTER_QUEUE_GROUP`], so replicas share
//! the work instead of each dispatching every task (L2). Rate limits are per replica:
//! with N replicas a tier admits up to N times its configured rate.
//!
//! ```
//! use std::sync::Arc;
//!
//! use loom_bus::{Bus, MemoryBus};
//! use loom_core::config::RouterRules;
//! use loom_mesh::router::spawn_router;
//! use tokio_util::sync::CancellationToken;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
//! let shutdown = CancellationToken::new();
//! let router = spawn_router(bus, RouterRules::default(), shutdown.clone()).await?;
//! shutdown.cancel();
//! router.join().await;
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use loom_bus::{Bus, BusExt, Message};
use loom_core::config::RouterRules;
use loom_core::message::{DeadLetter, ModelTier, TaskMessage};
use loom_core::name::WorkerName;
use loom_core::subject::{self, TASKS_DEAD_LETTER, TASKS_INCOMING};
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::actor::{ActorError, ActorHandle, ActorSpec, Handler, spawn_actor};
use crate::rate_limit::{RateLimiter, estimate_tokens};
use crate::reply::{RecoveredIds, answer_failed, answer_failed_raw};

/// The router actor's name, in logs.
pub const ROUTER_ACTOR_NAME: &str = "router";

/// The queue group router replicas share on `loom.tasks.incoming`.
pub const ROUTER_QUEUE_GROUP: &str = "router";

/// Routes tasks from `loom.tasks.incoming` to worker pools; see the [module docs](self).
///
/// Run it with [`spawn_router`], or with [`spawn_actor`] and [`Router::actor_spec`].
pub struct Router {
    bus: Arc<dyn Bus>,
    tier_overrides: BTreeMap<WorkerName, ModelTier>,
    limiter: RateLimiter,
}

impl Router {
    /// A router that publishes on `bus` and applies `rules`. Its rate buckets start full.
    pub fn new(bus: Arc<dyn Bus>, rules: RouterRules) -> Self {
        let limiter = RateLimiter::new(&rules.rate_limits, Instant::now());
        Router {
            bus,
            tier_overrides: rules.tier_overrides,
            limiter,
        }
    }

    /// Where and how the router consumes: `loom.tasks.incoming` in queue group
    /// [`ROUTER_QUEUE_GROUP`], one message at a time so tasks leave in arrival order.
    pub fn actor_spec() -> ActorSpec {
        ActorSpec::new(ROUTER_ACTOR_NAME, TASKS_INCOMING).queue_group(ROUTER_QUEUE_GROUP)
    }

    /// Routes one raw task body: forwards it, or dead-letters it and answers its caller.
    pub async fn route(&self, body: &[u8]) {
        match self.decide(body, Instant::now()) {
            Decision::Forward { subject, task } => self.forward(&subject, &task, body.len()).await,
            Decision::DeadLetter { reason } => self.dead_letter(body, reason).await,
        }
    }

    /// Everything but the I/O: what to do with `body` at `now`.
    fn decide(&self, body: &[u8], now: Instant) -> Decision {
        let mut task = match serde_json::from_slice::<TaskMessage>(body) {
            Ok(task) => task,
            Err(e) => {
                return Decision::DeadLetter {
                    reason: format!("invalid_task_message: {e}"),
                };
            }
        };
        // Validate the name in place, without copying it: it goes back into the task below.
        let worker = match WorkerName::try_from(std::mem::take(&mut task.worker_type)) {
            Ok(worker) => worker,
            Err(e) => {
                return Decision::DeadLetter {
                    reason: format!("invalid_worker_type: {e}"),
                };
            }
        };
        let requested = task.model_tier;
        let tier = self
            .tier_overrides
            .get(&worker)
            .copied()
            .unwrap_or(requested);
        if let Err(refused) = self
            .limiter
            .try_acquire(tier, now, || estimate_tokens(&task.payload))
        {
            return Decision::DeadLetter {
                reason: format!("rate_limited: {refused}"),
            };
        }
        let subject = subject::tasks(&worker, tier);
        debug!(
            task_id = %task.task_id,
            worker_type = %worker,
            requested_tier = %requested,
            tier = %tier,
            subject = %subject,
            "Task routed."
        );
        task.worker_type = worker.into();
        task.model_tier = tier;
        Decision::Forward { subject, task }
    }

    /// Publishes `task` re-encoded; `size_hint` (the incoming body's length) sizes the
    /// buffer so that encoding a large payload does not grow it step by step.
    async fn forward(&self, subject: &str, task: &TaskMessage, size_hint: usize) {
        let mut body = Vec::with_capacity(size_hint.saturating_add(64));
        let body = match serde_json::to_writer(&mut body, task) {
            Ok(()) => body,
            Err(e) => {
                warn!(task_id = %task.task_id, error = %e, "Cannot encode task; answering caller with FAILED.");
                answer_failed(
                    &*self.bus,
                    task,
                    format!("router cannot encode the task: {e}"),
                )
                .await;
                return;
            }
        };
        if let Err(e) = self.bus.publish(subject, Bytes::from(body)).await {
            warn!(task_id = %task.task_id, subject = %subject, error = %e, "Cannot forward task; answering caller with FAILED.");
            answer_failed(
                &*self.bus,
                task,
                format!("router cannot forward the task: {e}"),
            )
            .await;
        }
    }

    async fn dead_letter(&self, body: &[u8], reason: String) {
        let original = serde_json::from_slice::<Value>(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
        let letter = DeadLetter::new(reason, original);
        warn!(
            task_id = %letter.task_id.as_deref().unwrap_or("-"),
            worker_type = %letter.worker_type.as_deref().unwrap_or("-"),
            reason = %letter.reason,
            "Task dead-lettered; answering caller with FAILED."
        );
        if let Err(e) = self.bus.publish_json(TASKS_DEAD_LETTER, &letter).await {
            warn!(task_id = %letter.task_id.as_deref().unwrap_or("-"), error = %e, "Cannot publish dead letter.");
        }
        match RecoveredIds::from_raw(&letter.original_task) {
            Some(ids) => {
                answer_failed_raw(
                    &*self.bus,
                    &ids,
                    format!("Task dead-lettered: {}", letter.reason),
                )
                .await;
            }
            None => debug!("Dead-lettered task has no task_id; nobody to answer."),
        }
    }
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("bus_state", &self.bus.state())
            .field("tier_overrides", &self.tier_overrides)
            .field("limiter", &self.limiter)
            .finish()
    }
}

#[async_trait]
impl Handler for Router {
    async fn handle(&self, message: Message, _cancel: CancellationToken) {
        // Routing never waits on anything but a publish, so there is nothing to cancel.
        self.route(&message.payload).await;
    }
}

/// Starts a [`Router`] for `rules` on `bus` as an actor ([`Router::actor_spec`]). It is
/// subscribed when this returns, and stops when `shutdown` fires.
pub async fn spawn_router(
    bus: Arc<dyn Bus>,
    rules: RouterRules,
    shutdown: CancellationToken,
) -> Result<ActorHandle, ActorError> {
    let router = Arc::new(Router::new(bus.clone(), rules));
    spawn_actor(bus, Router::actor_spec(), router, shutdown).await
}

/// What the router does with one message.
///
/// Short-lived and moved once, so the large variant stays unboxed: boxing would cost an
/// allocation per routed task.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Decision {
    /// Publish `task` (already rewritten) to `subject`.
    Forward { subject: String, task: TaskMessage },
    /// Dead-letter the raw body with `reason`, and answer the caller.
    DeadLetter { reason: String },
}

#[cfg(test)]
mod tests;
