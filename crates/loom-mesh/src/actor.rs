//! The actor runtime: consume one subject with bounded concurrency, shut down cleanly.
//!
//! Every mesh component (router, workers, pipeline orchestrators) is a [`Handler`] run
//! by [`run_actor`]. The runtime fixes the original's shutdown defect (mesh spec §4.3,
//! B4): when the shutdown token fires it stops consuming **at once**, even when idle,
//! lets in-flight messages finish within a deadline (naming how many are still running
//! every few seconds), then cancels the stragglers' tokens so they can answer FAILED.
//! Draining the bus is the job of whoever owns it, after every actor has returned.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::{FutureExt, StreamExt};
use loom_bus::{Bus, Message, SubscribeError};
use loom_core::subject::CONTROL_RELOAD;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, Span, debug, error, info, info_span, warn};

/// How long in-flight messages may take to finish after shutdown is requested.
pub const DEFAULT_DRAIN_DEADLINE: Duration = Duration::from_secs(30);

/// How often a draining actor logs what is still running.
const DRAIN_REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// What an actor does with each message.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Handles one message. It reports failures itself (for example by publishing a
    /// FAILED result); the runtime only logs panics.
    ///
    /// `cancel` fires when the actor's drain deadline passes during shutdown: the
    /// handler should stop and answer promptly.
    async fn handle(&self, message: Message, cancel: CancellationToken);

    /// Called for each `{"action": "reload"}` on `loom.control.reload`.
    async fn on_reload(&self) {}
}

/// Where and how an actor consumes.
#[derive(Debug, Clone)]
pub struct ActorSpec {
    /// The actor's name, for logs (`router`, `worker-summarizer-local`).
    pub name: String,
    /// The subject it consumes (wildcards allowed).
    pub subject: String,
    /// Its queue group, so replicas share the work instead of duplicating it.
    pub queue_group: Option<String>,
    /// Messages handled at once; 1 keeps arrival order.
    pub max_concurrent: usize,
    /// How long in-flight messages may run after shutdown is requested.
    pub drain_deadline: Duration,
    /// Whether to listen to `loom.control.reload`.
    pub listen_for_reload: bool,
}

impl ActorSpec {
    /// An actor on `subject`, one message at a time, no queue group.
    pub fn new(name: impl Into<String>, subject: impl Into<String>) -> Self {
        ActorSpec {
            name: name.into(),
            subject: subject.into(),
            queue_group: None,
            max_concurrent: 1,
            drain_deadline: DEFAULT_DRAIN_DEADLINE,
            listen_for_reload: false,
        }
    }

    /// Consumes in `group`.
    pub fn queue_group(mut self, group: impl Into<String>) -> Self {
        self.queue_group = Some(group.into());
        self
    }

    /// Handles up to `n` messages at once (at least 1).
    pub fn max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = n.max(1);
        self
    }

    /// Sets the drain deadline.
    pub fn drain_deadline(mut self, deadline: Duration) -> Self {
        self.drain_deadline = deadline;
        self
    }

    /// Calls [`Handler::on_reload`] on `loom.control.reload`.
    pub fn listen_for_reload(mut self) -> Self {
        self.listen_for_reload = true;
        self
    }
}

/// How an actor's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActorReport {
    /// Messages taken from the subscription.
    pub received: u64,
    /// Messages whose handler had not finished by the drain deadline.
    pub abandoned: usize,
}

/// Why an actor could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ActorError {
    /// Subscribing failed.
    #[error("actor '{actor}' cannot subscribe to '{subject}'")]
    Subscribe {
        /// The actor.
        actor: String,
        /// The subject.
        subject: String,
        /// Why.
        #[source]
        source: SubscribeError,
    },
}

/// A running actor, started with [`spawn_actor`].
#[derive(Debug)]
pub struct ActorHandle {
    name: String,
    join: tokio::task::JoinHandle<ActorReport>,
}

impl ActorHandle {
    /// The actor's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Waits for the actor to end (after its shutdown token fired, or its subscription closed).
    pub async fn join(self) -> ActorReport {
        match self.join.await {
            Ok(report) => report,
            Err(e) => {
                error!(actor = %self.name, error = %e, "Actor task ended abnormally.");
                ActorReport {
                    received: 0,
                    abandoned: 0,
                }
            }
        }
    }
}

/// Subscribes (so that nothing published after this returns is missed), then runs the
/// actor on a task of its own.
pub async fn spawn_actor(
    bus: Arc<dyn Bus>,
    spec: ActorSpec,
    handler: Arc<dyn Handler>,
    shutdown: CancellationToken,
) -> Result<ActorHandle, ActorError> {
    let subs = subscribe(&*bus, &spec).await?;
    let name = spec.name.clone();
    let span = info_span!("actor", actor = %spec.name);
    let join = tokio::spawn(consume(spec, handler, shutdown, subs, span));
    Ok(ActorHandle { name, join })
}

/// Runs an actor until `shutdown` fires or its subscription ends, then drains it.
pub async fn run_actor(
    bus: Arc<dyn Bus>,
    spec: ActorSpec,
    handler: Arc<dyn Handler>,
    shutdown: CancellationToken,
) -> Result<ActorReport, ActorError> {
    let subs = subscribe(&*bus, &spec).await?;
    let span = info_span!("actor", actor = %spec.name);
    Ok(consume(spec, handler, shutdown, subs, span).await)
}

struct Subscriptions {
    main: loom_bus::Subscription,
    reload: Option<loom_bus::Subscription>,
}

async fn subscribe(bus: &dyn Bus, spec: &ActorSpec) -> Result<Subscriptions, ActorError> {
    let err = |subject: &str, source| ActorError::Subscribe {
        actor: spec.name.clone(),
        subject: subject.to_owned(),
        source,
    };
    let main = bus
        .subscribe(&spec.subject, spec.queue_group.as_deref())
        .await
        .map_err(|e| err(&spec.subject, e))?;
    let reload = if spec.listen_for_reload {
        Some(
            bus.subscribe(CONTROL_RELOAD, None)
                .await
                .map_err(|e| err(CONTROL_RELOAD, e))?,
        )
    } else {
        None
    };
    Ok(Subscriptions { main, reload })
}

/// The actor's loop. Its own log lines are in `span`; handlers run outside it, whether
/// spawned (`max_concurrent` > 1) or, one at a time, polled right here.
async fn consume(
    spec: ActorSpec,
    handler: Arc<dyn Handler>,
    shutdown: CancellationToken,
    subs: Subscriptions,
    span: Span,
) -> ActorReport {
    let Subscriptions {
        mut main,
        mut reload,
    } = subs;
    span.in_scope(|| {
        info!(subject = %spec.subject, queue_group = ?spec.queue_group, max_concurrent = spec.max_concurrent, "Actor started.");
    });
    let permits = Arc::new(Semaphore::new(spec.max_concurrent));
    let tracker = TaskTracker::new();
    // Cancelled when the drain deadline passes, so stragglers can answer and stop.
    let abandon = CancellationToken::new();
    let mut received = 0u64;
    loop {
        // Take a permit first: with max_concurrent = 1 the next message is not even
        // read before the previous one is done, which keeps arrival order.
        let permit = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let message = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            Some(reload_msg) = next_reload(&mut reload) => {
                drop(permit);
                if is_reload(&reload_msg) {
                    span.in_scope(|| info!("Reloading."));
                    handler.on_reload().instrument(span.clone()).await;
                }
                continue;
            }
            m = main.next() => match m {
                Some(m) => m,
                None => {
                    span.in_scope(|| warn!(subject = %spec.subject, "Subscription ended; actor stops."));
                    break;
                }
            },
        };
        received += 1;
        let handler = handler.clone();
        let cancel = abandon.child_token();
        let job = async move {
            let subject = message.subject.clone();
            let outcome = AssertUnwindSafe(handler.handle(message, cancel))
                .catch_unwind()
                .await;
            if outcome.is_err() {
                error!(subject = %subject, "Message handler panicked; the message is lost.");
            }
            drop(permit);
        };
        if spec.max_concurrent > 1 {
            tracker.spawn(job);
            continue;
        }
        // One at a time: the loop would only wait for this message's permit, so run the
        // handler here instead of on a task of its own (saves a spawn and a wake-up per
        // message). On shutdown it moves to the tracker and drains like a spawned one.
        let mut job = Box::pin(job);
        let stopping = tokio::select! {
            biased;
            () = &mut job => false,
            () = shutdown.cancelled() => true,
        };
        if stopping {
            tracker.spawn(job);
            break;
        }
    }
    // Stop consuming at once: later messages go to other members of the queue group.
    drop(main);
    drop(reload);
    tracker.close();
    let abandoned = drain(&spec, &tracker, &abandon)
        .instrument(span.clone())
        .await;
    span.in_scope(|| info!(received, abandoned, "Actor stopped."));
    ActorReport {
        received,
        abandoned,
    }
}

async fn next_reload(reload: &mut Option<loom_bus::Subscription>) -> Option<Message> {
    match reload {
        Some(sub) => sub.next().await,
        None => std::future::pending().await,
    }
}

fn is_reload(message: &Message) -> bool {
    serde_json::from_slice::<serde_json::Value>(&message.payload)
        .ok()
        .and_then(|v| {
            v.get("action")
                .and_then(|a| a.as_str())
                .map(|a| a == "reload")
        })
        .unwrap_or(false)
}

/// Waits for in-flight handlers up to the deadline, then cancels them and waits a
/// moment more for their answers. Returns how many were still running at the deadline.
async fn drain(spec: &ActorSpec, tracker: &TaskTracker, abandon: &CancellationToken) -> usize {
    if tracker.is_empty() {
        return 0;
    }
    info!(
        in_flight = tracker.len(),
        deadline_secs = spec.drain_deadline.as_secs_f64(),
        "Draining in-flight messages."
    );
    let deadline = tokio::time::Instant::now() + spec.drain_deadline;
    loop {
        let next_report = (tokio::time::Instant::now() + DRAIN_REPORT_INTERVAL).min(deadline);
        tokio::select! {
            () = tracker.wait() => return 0,
            () = tokio::time::sleep_until(next_report) => {
                if tokio::time::Instant::now() >= deadline {
                    break;
                }
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                info!(in_flight = tracker.len(), left_secs = left.as_secs(), "Still draining.");
            }
        }
    }
    let abandoned = tracker.len();
    warn!(
        abandoned,
        "Drain deadline passed; cancelling in-flight messages."
    );
    abandon.cancel();
    // Cancelled handlers publish their FAILED answers; give them a moment to do so.
    if tokio::time::timeout(Duration::from_secs(2), tracker.wait())
        .await
        .is_err()
    {
        debug!(
            still_running = tracker.len(),
            "Some handlers ignored cancellation."
        );
    }
    abandoned
}

#[cfg(test)]
#[path = "actor_tests.rs"]
mod tests;
