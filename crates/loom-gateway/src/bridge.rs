//! Tool calls over the bus: tasks and goals out, results and progress back through one
//! multiplexed subscription per gateway, with timeouts and cancellation.
//!
//! # Correlation
//!
//! A bridge picks a random gateway id `gw-<12 hex>` and subscribes **once**, when it
//! starts and before anything is published, to
//!
//! * `loom.results.gw-<id>.*`: every call's results, and
//! * `loom.progress.gw-<id>.*`: every pipeline call's stage progress.
//!
//! Call number `n` then uses the id `gw-<id>.<n>`:
//!
//! | tool | published | correlation |
//! |---|---|---|
//! | worker | a `TaskMessage` on `loom.tasks.incoming` | `parent_task_id = gw-<id>.<n>`: the worker answers on `loom.results.gw-<id>.<n>`; the answer must carry the task's `task_id` |
//! | query | the same, for the query worker, tier `local` | the same |
//! | pipeline | an `OrchestratorGoal` (`instruction: "MCP tool call"`) on `loom.goals.{pipeline}` | `goal_id = gw-<id>.<n>`: the final result arrives on `loom.results.gw-<id>.<n>` with `task_id == goal_id` (stage results there carry other task ids and are ignored); progress on `loom.progress.gw-<id>.<n>` |
//!
//! A Python worker answers `loom.results.{parent_task_id}` literally, so it serves this
//! gateway unchanged. One task reads both subscriptions and hands each message to the
//! waiting call through a map of senders (a `std::sync::Mutex`, never held across an
//! `.await`); a call's entry is removed however the call ends.
//!
//! # Outcomes
//!
//! * A terminal result (`completed`, `failed`) ends the call. Non-terminal statuses
//!   (`pending`, `processing`, `retry`) are never taken as the answer (gateway spec
//!   §13.11). `failed` becomes [`CallError::Failed`] with the worker's error text.
//! * A message with the call's `task_id` that is not a valid `TaskResult` is
//!   [`CallError::Malformed`].
//! * When the client cancels, or the call's timeout passes, the bridge stops waiting and
//!   publishes a `CancelRequest` on `loom.control.cancel.{task_id or goal_id}` so the
//!   mesh stops the work too (§13.12), then returns [`CallError::Cancelled`] or
//!   [`CallError::TimedOut`].
//! * Each finished pipeline stage is reported as [`Progress`] `{progress: completed,
//!   total, message: stage}` (§13.4); progress never goes backwards.

use std::collections::HashMap;
use std::error::Error as StdError;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use loom_bus::{Bus, BusExt, BusState, Message, SubscribeError, Subscription};
use loom_core::message::{
    CancelRequest, ModelTier, OrchestratorGoal, TaskMessage, TaskResult, TaskStatus,
};
use loom_core::name::WorkerName;
use loom_core::subject;
use loom_mesh::pipeline::{PipelineProgress, StageStatus};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::catalog::{Dispatch, GatewayTool};

/// The goal instruction of every pipeline call, as in loom-ai 0.9.0.
pub const GOAL_INSTRUCTION: &str = "MCP tool call";

/// Progress messages buffered per pipeline call. A pipeline reports one per stage and
/// the caller drains them as they come, so this only fills if a pipeline has more stages
/// than this finishing faster than one callback each; further ones are dropped (progress
/// is advisory, and the next one supersedes them).
const PROGRESS_CAPACITY: usize = 64;

/// How long publishing a cancel request may take before the bridge gives up on it: the
/// call is already over for the client, so this must not hold its answer up for long.
const CANCEL_PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

/// How long [`Bridge::close`] waits for its subscription task to unsubscribe.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// The text of a `failed` result without an error, as in loom-ai 0.9.0.
const NO_ERROR_TEXT: &str = "Task failed with no error message";

/// Dispatches tool calls to the mesh and waits for their results. Cheap to clone
/// (shared); see the [module docs](self).
#[derive(Clone)]
pub struct Bridge {
    inner: Arc<Inner>,
}

struct Inner {
    bus: Arc<dyn Bus>,
    /// `gw-<12 hex>`.
    gateway_id: String,
    next_call: AtomicU64,
    calls: Arc<Calls>,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("gateway_id", &self.inner.gateway_id)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Bridge {
    /// Subscribes once to this gateway's result and progress subjects (before anything
    /// is published) and starts the task that hands their messages to waiting calls.
    pub async fn start(bus: Arc<dyn Bus>) -> Result<Bridge, BridgeError> {
        let simple = uuid::Uuid::new_v4().simple().to_string();
        let gateway_id = format!("gw-{}", simple.get(..12).unwrap_or(&simple));
        let results_subject = format!("loom.results.{gateway_id}.*");
        let progress_subject = format!("loom.progress.{gateway_id}.*");
        let results = bus
            .subscribe(&results_subject, None)
            .await
            .map_err(|source| BridgeError::Subscribe {
                subject: results_subject.clone(),
                source,
            })?;
        let progress = match bus.subscribe(&progress_subject, None).await {
            Ok(s) => s,
            Err(source) => {
                let _ = results.unsubscribe().await;
                return Err(BridgeError::Subscribe {
                    subject: progress_subject,
                    source,
                });
            }
        };
        // On NATS, make sure the server has both subscriptions before the first call.
        if let Err(e) = bus.flush().await {
            warn!(error = %e, "Cannot flush the bus after subscribing; the first results may be missed.");
        }
        let calls = Arc::new(Calls {
            state: Mutex::new(CallsState {
                open: true,
                pending: HashMap::new(),
            }),
            results_prefix: format!("loom.results.{gateway_id}."),
            progress_prefix: format!("loom.progress.{gateway_id}."),
        });
        let stop = CancellationToken::new();
        let task = tokio::spawn(demultiplex(results, progress, calls.clone(), stop.clone()));
        debug!(gateway_id = %gateway_id, "Bridge started.");
        Ok(Bridge {
            inner: Arc::new(Inner {
                bus,
                gateway_id,
                next_call: AtomicU64::new(1),
                calls,
                stop,
                task: Mutex::new(Some(task)),
            }),
        })
    }

    /// This gateway's id (`gw-<12 hex>`): call `n` uses `gw-<id>.<n>` as parent task id or
    /// goal id.
    pub fn gateway_id(&self) -> &str {
        &self.inner.gateway_id
    }

    /// The bus connection's state, for `/health`.
    pub fn state(&self) -> BusState {
        self.inner.bus.state()
    }

    /// Calls in flight (registered and not yet answered, cancelled or timed out).
    pub fn in_flight(&self) -> usize {
        self.inner.calls.lock().pending.len()
    }

    /// Stops the subscription task and unsubscribes. Calls still waiting fail with
    /// [`CallError::Bus`]; later calls fail at once. Does not close the bus.
    pub async fn close(&self) {
        self.inner.stop.cancel();
        let task = lock(&self.inner.task).take();
        if let Some(mut task) = task {
            if tokio::time::timeout(CLOSE_TIMEOUT, &mut task)
                .await
                .is_err()
            {
                warn!("Bridge subscription task did not stop in time; aborting it.");
                task.abort();
            }
        }
        self.inner.calls.shut();
    }

    /// Dispatches `payload` (from [`GatewayTool::prepare`]) for `tool` and waits for the
    /// terminal result.
    ///
    /// Ends with the result's output (`{}` when it has none), or with a [`CallError`]:
    /// the worker's failure, a timeout after the tool's dispatch timeout, a cancellation
    /// through `cancel`, a bus error or a malformed result. On timeout and cancellation
    /// a `CancelRequest` is published for the task or goal first. Pipeline stage
    /// completions are reported through `progress`, which must not block.
    pub async fn call(
        &self,
        tool: &GatewayTool,
        payload: Map<String, Value>,
        progress: &(dyn Fn(Progress) + Send + Sync),
        cancel: CancellationToken,
    ) -> Result<Map<String, Value>, CallError> {
        let call = self.inner.next_call.fetch_add(1, Ordering::Relaxed);
        let call_id = format!("{}.{call}", self.inner.gateway_id);
        match &tool.dispatch {
            Dispatch::Worker {
                worker_type,
                tier,
                timeout,
            } => {
                let task = self.task(worker_type, *tier, payload, &call_id);
                self.send_task(tool, call, task, *timeout, cancel).await
            }
            Dispatch::Query {
                worker_type,
                action,
                timeout,
            } => {
                let mut payload = payload;
                // `prepare` already put it first; this keeps a caller that skipped
                // `prepare` from choosing another action.
                payload.insert(
                    "action".to_owned(),
                    Value::String(action.as_str().to_owned()),
                );
                let task = self.task(worker_type, ModelTier::Local, payload, &call_id);
                self.send_task(tool, call, task, *timeout, cancel).await
            }
            Dispatch::Pipeline {
                pipeline,
                stages,
                timeout,
            } => {
                let goal = OrchestratorGoal::new(GOAL_INSTRUCTION)
                    .with_goal_id(call_id)
                    .with_context(payload);
                let exchange = Exchange {
                    tool,
                    call,
                    id: goal.goal_id.clone(),
                    subject: subject::goals(pipeline),
                    body: encode(tool, &goal)?,
                    target: Target::Pipeline {
                        name: pipeline.to_string(),
                        stages: *stages,
                    },
                    timeout: *timeout,
                };
                debug!(tool = %tool.name, goal_id = %goal.goal_id, pipeline = %pipeline, "Goal dispatched.");
                self.exchange(exchange, progress, cancel).await
            }
            Dispatch::Workshop { .. } | Dispatch::Session { .. } => Err(CallError::Bus {
                tool: tool.name.clone(),
                reason: "a workshop or session tool runs in the gateway, not in the mesh"
                    .to_owned(),
            }),
        }
    }

    fn task(
        &self,
        worker_type: &WorkerName,
        tier: ModelTier,
        payload: Map<String, Value>,
        call_id: &str,
    ) -> TaskMessage {
        TaskMessage::new(worker_type, payload)
            .with_parent_task_id(call_id)
            .with_model_tier(tier)
    }

    async fn send_task(
        &self,
        tool: &GatewayTool,
        call: u64,
        task: TaskMessage,
        timeout: Duration,
        cancel: CancellationToken,
    ) -> Result<Map<String, Value>, CallError> {
        let exchange = Exchange {
            tool,
            call,
            id: task.task_id.clone(),
            subject: subject::TASKS_INCOMING.to_owned(),
            body: encode(tool, &task)?,
            target: Target::Worker {
                name: task.worker_type.clone(),
            },
            timeout,
        };
        debug!(tool = %tool.name, task_id = %task.task_id, worker = %task.worker_type, "Task dispatched.");
        self.exchange(exchange, &|_| {}, cancel).await
    }

    /// Registers the call, publishes, and waits for its answer, the timeout or the
    /// cancellation, whichever comes first.
    async fn exchange(
        &self,
        x: Exchange<'_>,
        progress: &(dyn Fn(Progress) + Send + Sync),
        cancel: CancellationToken,
    ) -> Result<Map<String, Value>, CallError> {
        let (answer_tx, mut answer_rx) = oneshot::channel();
        // Only pipelines report progress.
        let (progress_tx, mut progress_rx) = match x.target {
            Target::Pipeline { .. } => {
                let (tx, rx) = mpsc::channel(PROGRESS_CAPACITY);
                (Some(tx), Some(rx))
            }
            Target::Worker { .. } => (None, None),
        };
        let registered = self.inner.calls.register(
            x.call,
            Pending {
                expect: x.id.clone(),
                answer: Some(answer_tx),
                progress: progress_tx,
            },
        );
        let Some(_registration) = registered else {
            return Err(CallError::Bus {
                tool: x.tool.name.clone(),
                reason: "the gateway's bridge is closed".to_owned(),
            });
        };
        let finished = AtomicU32::new(0);
        let report = |p: PipelineProgress| {
            // MCP progress must increase; stages finishing together may arrive out of order.
            if finished.fetch_max(p.completed, Ordering::Relaxed) >= p.completed {
                return;
            }
            let message = match p.status {
                StageStatus::Skipped => format!("{} (skipped)", p.stage),
                StageStatus::Failed => format!("{} (failed)", p.stage),
                _ => p.stage,
            };
            progress(Progress {
                progress: f64::from(p.completed),
                total: Some(f64::from(p.total)),
                message: Some(message),
            });
        };
        let work = async {
            self.inner
                .bus
                .publish(&x.subject, x.body.clone())
                .await
                .map_err(|e| CallError::Bus {
                    tool: x.tool.name.clone(),
                    reason: format!("cannot publish to '{}': {}", x.subject, chain(&e)),
                })?;
            loop {
                tokio::select! {
                    // Progress first: a stage's progress is published before the final result.
                    biased;
                    Some(p) = next_progress(&mut progress_rx) => report(p),
                    answer = &mut answer_rx => {
                        if let Some(rx) = &mut progress_rx {
                            while let Ok(p) = rx.try_recv() {
                                report(p);
                            }
                        }
                        return x.unwrap(answer);
                    }
                }
            }
        };
        tokio::select! {
            biased;
            () = cancel.cancelled() => {
                debug!(tool = %x.tool.name, id = %x.id, "Call cancelled by the client; cancelling it in the mesh.");
                self.publish_cancel(&x.id, "client cancelled").await;
                Err(CallError::Cancelled)
            }
            () = tokio::time::sleep(x.timeout) => {
                self.publish_cancel(&x.id, "timed out").await;
                let stages = match &x.target {
                    Target::Pipeline { stages, .. } => Some((finished.load(Ordering::Relaxed), *stages)),
                    Target::Worker { .. } => None,
                };
                Err(CallError::TimedOut {
                    tool: x.tool.name.clone(),
                    target: x.target.to_string(),
                    timeout: x.timeout,
                    stages,
                })
            }
            outcome = work => outcome,
        }
    }

    /// Tells the mesh to stop `id` (a task or goal). Best effort: failures are logged.
    async fn publish_cancel(&self, id: &str, reason: &str) {
        let request = CancelRequest::new(id).with_reason(reason);
        let subject = match request.subject() {
            Ok(s) => s,
            Err(e) => {
                warn!(id, error = %e, "Cannot name a cancel subject for this call; the mesh keeps running it.");
                return;
            }
        };
        let publish = self.inner.bus.publish_json(&subject, &request);
        match tokio::time::timeout(CANCEL_PUBLISH_TIMEOUT, publish).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(id, error = %chain(&e), "Cannot publish a cancel request."),
            Err(_) => warn!(id, "Publishing a cancel request timed out."),
        }
    }
}

/// The next progress message of a call that can have some; never, for one that cannot.
async fn next_progress(
    rx: &mut Option<mpsc::Receiver<PipelineProgress>>,
) -> Option<PipelineProgress> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// One call on the wire.
struct Exchange<'a> {
    tool: &'a GatewayTool,
    call: u64,
    /// The task id or goal id the answer must carry.
    id: String,
    /// Where the task or goal is published.
    subject: String,
    body: Bytes,
    target: Target,
    timeout: Duration,
}

impl Exchange<'_> {
    fn unwrap(
        &self,
        answer: Result<Answer, oneshot::error::RecvError>,
    ) -> Result<Map<String, Value>, CallError> {
        match answer {
            Ok(Answer::Result(result)) if result.status == TaskStatus::Failed => {
                let message = result
                    .error
                    .filter(|e| !e.is_empty())
                    .unwrap_or_else(|| NO_ERROR_TEXT.to_owned());
                Err(CallError::Failed { message })
            }
            Ok(Answer::Result(result)) => Ok(result.output.unwrap_or_default()),
            Ok(Answer::Malformed(reason)) => Err(CallError::Malformed {
                tool: self.tool.name.clone(),
                id: self.id.clone(),
                reason,
            }),
            Err(_) => Err(CallError::Bus {
                tool: self.tool.name.clone(),
                reason: "the gateway's result subscription closed before the answer came"
                    .to_owned(),
            }),
        }
    }
}

/// What a call waits for.
enum Target {
    Worker { name: String },
    Pipeline { name: String, stages: u32 },
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Worker { name } => write!(f, "worker '{name}'"),
            Target::Pipeline { name, .. } => write!(f, "pipeline '{name}'"),
        }
    }
}

fn encode<T: serde::Serialize>(tool: &GatewayTool, value: &T) -> Result<Bytes, CallError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| CallError::Bus {
            tool: tool.name.clone(),
            reason: format!("cannot encode the message: {e}"),
        })
}

/// `e` and its sources, joined by `: `.
fn chain(e: &dyn StdError) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Demultiplexing
// ---------------------------------------------------------------------------------------------

/// The calls waiting for an answer.
struct Calls {
    state: Mutex<CallsState>,
    /// `loom.results.gw-<id>.`
    results_prefix: String,
    /// `loom.progress.gw-<id>.`
    progress_prefix: String,
}

struct CallsState {
    /// False once the subscription task has ended: no call can be answered any more.
    open: bool,
    pending: HashMap<u64, Pending>,
}

/// One waiting call.
struct Pending {
    /// The `task_id` its answer carries (the task id, or the goal id).
    expect: String,
    answer: Option<oneshot::Sender<Answer>>,
    progress: Option<mpsc::Sender<PipelineProgress>>,
}

/// What the subscription task hands to a call.
enum Answer {
    Result(Box<TaskResult>),
    Malformed(String),
}

/// Removes a call's entry when the call ends, however it ends.
struct Registration<'a> {
    calls: &'a Calls,
    call: u64,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.calls.lock().pending.remove(&self.call);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Calls {
    fn lock(&self) -> MutexGuard<'_, CallsState> {
        lock(&self.state)
    }

    /// Adds a waiting call; `None` when the subscription task has ended.
    fn register(&self, call: u64, pending: Pending) -> Option<Registration<'_>> {
        let mut state = self.lock();
        if !state.open {
            return None;
        }
        state.pending.insert(call, pending);
        Some(Registration { calls: self, call })
    }

    /// No more answers: every waiting call fails (its sender is dropped).
    fn shut(&self) {
        let mut state = self.lock();
        state.open = false;
        state.pending.clear();
    }

    fn on_result(&self, message: &Message) {
        let Some(call) = call_number(&message.subject, &self.results_prefix) else {
            debug!(subject = %message.subject, "Ignoring a result on a subject that names no call.");
            return;
        };
        // A well-formed result is parsed once, straight into its type; anything else takes
        // the slow path through a JSON value, which tells a malformed answer (one that names
        // the call's task id) from noise.
        let answer = match serde_json::from_slice::<TaskResult>(&message.payload) {
            Ok(result) => {
                if !self.expects(call, &result.task_id) {
                    // Another task of the call (a pipeline stage), or a late answer.
                    return;
                }
                if !result.is_terminal() {
                    debug!(task_id = %result.task_id, status = %result.status.as_str(), "Ignoring a non-terminal result.");
                    return;
                }
                Answer::Result(Box::new(result))
            }
            Err(_) => {
                let Ok(raw) = serde_json::from_slice::<Value>(&message.payload) else {
                    debug!(subject = %message.subject, "Ignoring a result that is not JSON.");
                    return;
                };
                let task_id = raw.get("task_id").and_then(Value::as_str);
                if !task_id.is_some_and(|id| self.expects(call, id)) {
                    return;
                }
                match serde_json::from_value::<TaskResult>(raw) {
                    Ok(result) if !result.is_terminal() => {
                        debug!(task_id = %result.task_id, status = %result.status.as_str(), "Ignoring a non-terminal result.");
                        return;
                    }
                    Ok(result) => Answer::Result(Box::new(result)),
                    Err(e) => Answer::Malformed(e.to_string()),
                }
            }
        };
        let mut state = self.lock();
        if let Some(sender) = state.pending.get_mut(&call).and_then(|p| p.answer.take()) {
            // The call may have just ended; then nobody needs the answer.
            let _ = sender.send(answer);
        }
    }

    /// Whether call `call` is waiting and its answer carries `task_id`.
    fn expects(&self, call: u64, task_id: &str) -> bool {
        self.lock()
            .pending
            .get(&call)
            .is_some_and(|p| p.expect == task_id)
    }

    fn on_progress(&self, message: &Message) {
        let Some(call) = call_number(&message.subject, &self.progress_prefix) else {
            return;
        };
        let Ok(progress) = message.json::<PipelineProgress>() else {
            debug!(subject = %message.subject, "Ignoring a malformed progress message.");
            return;
        };
        let state = self.lock();
        let Some(pending) = state.pending.get(&call) else {
            return;
        };
        if pending.expect != progress.goal_id {
            return;
        }
        if let Some(tx) = &pending.progress {
            if tx.try_send(progress).is_err() {
                debug!(call, "Progress buffer full; dropping a progress message.");
            }
        }
    }
}

/// `n` of a subject `<prefix><n>`.
fn call_number(subject: &str, prefix: &str) -> Option<u64> {
    subject.strip_prefix(prefix)?.parse().ok()
}

/// Reads both subscriptions until stopped (or the result subscription ends) and hands
/// each message to its call. Progress is read first when both have messages: the
/// orchestrator publishes a stage's progress before the goal's final result.
async fn demultiplex(
    mut results: Subscription,
    mut progress: Subscription,
    calls: Arc<Calls>,
    stop: CancellationToken,
) {
    let mut progress_open = true;
    loop {
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            m = progress.next(), if progress_open => match m {
                Some(m) => calls.on_progress(&m),
                None => progress_open = false,
            },
            m = results.next() => match m {
                Some(m) => calls.on_result(&m),
                None => {
                    warn!("The gateway's result subscription ended; calls in flight fail.");
                    break;
                }
            },
        }
    }
    calls.shut();
    let _ = results.unsubscribe().await;
    let _ = progress.unsubscribe().await;
}

// ---------------------------------------------------------------------------------------------
// Public outcome types
// ---------------------------------------------------------------------------------------------

/// A progress report for a running call (a pipeline stage finished).
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Stages finished so far (completed, skipped or failed).
    pub progress: f64,
    /// Stages in the pipeline.
    pub total: Option<f64>,
    /// The stage that finished; `"<stage> (skipped)"` or `"<stage> (failed)"` when it
    /// did not complete.
    pub message: Option<String>,
}

/// Why the bridge could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// Subscribing to the gateway's result or progress subject failed.
    #[error("cannot subscribe to '{subject}'")]
    Subscribe {
        /// The subject.
        subject: String,
        /// Why.
        #[source]
        source: SubscribeError,
    },
}

/// Why a tool call produced no output. `Display` is the text the client sees.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The worker or pipeline answered FAILED; `message` is its error text.
    #[error("{message}")]
    Failed {
        /// The error text of the result (e.g. `Input validation: [...]`).
        message: String,
    },
    /// No answer within the tool's timeout; a cancel request was sent to the mesh.
    #[error(
        "tool '{tool}' timed out after {}s waiting for {target}{}",
        format_seconds(*timeout),
        stages.map(|(done, total)| format!(" ({done} of {total} stages finished)")).unwrap_or_default()
    )]
    TimedOut {
        /// The tool.
        tool: String,
        /// What it waited for: `worker 'x'` or `pipeline 'y'`.
        target: String,
        /// How long it waited.
        timeout: Duration,
        /// For pipelines: stages finished and stages in total.
        stages: Option<(u32, u32)>,
    },
    /// The client cancelled the call; a cancel request was sent to the mesh.
    #[error("the call was cancelled")]
    Cancelled,
    /// The bus failed: publishing failed, or the bridge is closed.
    #[error("tool '{tool}' cannot reach the mesh: {reason}")]
    Bus {
        /// The tool.
        tool: String,
        /// What failed.
        reason: String,
    },
    /// The answer (the message carrying the call's task id) is not a valid `TaskResult`.
    #[error("malformed result for '{id}' (tool '{tool}'): {reason}")]
    Malformed {
        /// The tool.
        tool: String,
        /// The task or goal id.
        id: String,
        /// Why it did not parse.
        reason: String,
    },
}

/// `60`, `0.25`, `1.5`: seconds without trailing zeros.
fn format_seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        return d.as_secs().to_string();
    }
    let s = format!("{:.3}", d.as_secs_f64());
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_print_without_trailing_zeros() {
        assert_eq!(format_seconds(Duration::from_secs(60)), "60");
        assert_eq!(format_seconds(Duration::from_millis(250)), "0.25");
        assert_eq!(format_seconds(Duration::from_millis(65_500)), "65.5");
    }

    #[test]
    fn timeout_text_names_tool_target_and_wait() {
        let e = CallError::TimedOut {
            tool: "x".into(),
            target: "worker 'y'".into(),
            timeout: Duration::from_secs(60),
            stages: None,
        };
        assert_eq!(
            e.to_string(),
            "tool 'x' timed out after 60s waiting for worker 'y'"
        );
        let e = CallError::TimedOut {
            tool: "p".into(),
            target: "pipeline 'ingest'".into(),
            timeout: Duration::from_secs(65),
            stages: Some((2, 3)),
        };
        assert_eq!(
            e.to_string(),
            "tool 'p' timed out after 65s waiting for pipeline 'ingest' (2 of 3 stages finished)"
        );
    }

    #[test]
    fn call_numbers_come_from_the_subject_suffix() {
        assert_eq!(
            call_number("loom.results.gw-a.17", "loom.results.gw-a."),
            Some(17)
        );
        assert_eq!(
            call_number("loom.results.gw-a.x", "loom.results.gw-a."),
            None
        );
        assert_eq!(
            call_number("loom.results.gw-b.1", "loom.results.gw-a."),
            None
        );
    }
}
