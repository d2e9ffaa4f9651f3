//! Cancel requests: which task ids run here, and the listener on `loom.control.cancel.*`.
//!
//! Each worker subscribes once to `loom.control.cancel.*` (no queue group: only the
//! replica running the task knows it) and keeps a map task id → cancel token. A cancel
//! that arrives before its task started (the task still queued behind `max_concurrent`)
//! is remembered for [`EARLY_CANCEL_TTL`] (at most [`EARLY_CANCEL_CAPACITY`] of them),
//! so the task is cancelled the moment it registers.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use loom_bus::Message;
use loom_core::message::CancelRequest;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::actor::Handler;

/// How long a cancel for a task not (yet) running here is remembered.
pub const EARLY_CANCEL_TTL: Duration = Duration::from_secs(60);

/// How many early cancels are remembered at most; the oldest are forgotten first.
pub const EARLY_CANCEL_CAPACITY: usize = 1024;

/// The tasks running on one worker, by id, and the cancels waiting for tasks.
#[derive(Debug, Default)]
pub struct CancelRegistry {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    running: HashMap<String, Vec<Arc<CancelSlot>>>,
    early: VecDeque<EarlyCancel>,
}

#[derive(Debug)]
struct EarlyCancel {
    task_id: String,
    reason: Option<String>,
    at: Instant,
}

/// One running task's cancel token and the reason it was cancelled with.
#[derive(Debug)]
pub(crate) struct CancelSlot {
    token: CancellationToken,
    reason: Mutex<Option<String>>,
}

impl CancelSlot {
    fn cancel(&self, reason: Option<String>) {
        let mut slot = lock(&self.reason);
        if slot.is_none() {
            *slot = Some(reason.unwrap_or_default());
        }
        drop(slot);
        self.token.cancel();
    }

    /// The reason given by a cancel request: `Some("")` for a request without a reason,
    /// `None` when no request cancelled the task.
    pub(crate) fn reason(&self) -> Option<String> {
        lock(&self.reason).clone()
    }
}

/// Keeps a task registered while alive; dropping it unregisters the task.
#[derive(Debug)]
pub(crate) struct Registration {
    registry: Arc<CancelRegistry>,
    task_id: String,
    slot: Arc<CancelSlot>,
}

impl Registration {
    /// The slot, to read the cancel reason.
    pub(crate) fn slot(&self) -> &CancelSlot {
        &self.slot
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut inner = self.registry.lock();
        if let Some(slots) = inner.running.get_mut(&self.task_id) {
            slots.retain(|s| !Arc::ptr_eq(s, &self.slot));
            if slots.is_empty() {
                inner.running.remove(&self.task_id);
            }
        }
    }
}

impl CancelRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        CancelRegistry::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// Registers `task_id` as running with `token`; an early cancel for it fires at once.
    pub(crate) fn register(
        self: &Arc<Self>,
        task_id: &str,
        token: CancellationToken,
    ) -> Registration {
        let slot = Arc::new(CancelSlot {
            token,
            reason: Mutex::new(None),
        });
        let mut inner = self.lock();
        inner.expire(Instant::now());
        let early = inner
            .early
            .iter()
            .position(|e| e.task_id == task_id)
            .and_then(|i| inner.early.remove(i));
        inner
            .running
            .entry(task_id.to_owned())
            .or_default()
            .push(slot.clone());
        drop(inner);
        if let Some(early) = early {
            debug!(task_id, "Task was cancelled before it started.");
            slot.cancel(early.reason);
        }
        Registration {
            registry: self.clone(),
            task_id: task_id.to_owned(),
            slot,
        }
    }

    /// Cancels `task_id` if it runs here, or remembers the cancel for a while. Returns
    /// whether a running task was cancelled.
    pub fn cancel(&self, task_id: &str, reason: Option<String>) -> bool {
        let mut inner = self.lock();
        if let Some(slots) = inner.running.get(task_id) {
            let slots = slots.clone();
            drop(inner);
            for slot in &slots {
                slot.cancel(reason.clone());
            }
            return true;
        }
        let now = Instant::now();
        inner.expire(now);
        if inner.early.len() >= EARLY_CANCEL_CAPACITY {
            inner.early.pop_front();
        }
        inner.early.push_back(EarlyCancel {
            task_id: task_id.to_owned(),
            reason,
            at: now,
        });
        false
    }

    /// How many tasks are registered as running.
    pub fn running(&self) -> usize {
        self.lock().running.values().map(Vec::len).sum()
    }
}

impl Inner {
    fn expire(&mut self, now: Instant) {
        while self
            .early
            .front()
            .is_some_and(|e| now.duration_since(e.at) > EARLY_CANCEL_TTL)
        {
            self.early.pop_front();
        }
    }
}

/// A poisoned lock only means another thread panicked while holding it; the map is
/// still consistent (every update is a single insert or remove), so keep going.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The actor handler on `loom.control.cancel.*` that feeds a [`CancelRegistry`].
///
/// The task id comes from the body's `task_id`, or from the subject's last token when
/// the body is not a `CancelRequest`.
#[derive(Debug, Clone)]
pub struct CancelListener {
    registry: Arc<CancelRegistry>,
}

impl CancelListener {
    /// A listener cancelling the tasks of `registry`.
    pub fn new(registry: Arc<CancelRegistry>) -> Self {
        CancelListener { registry }
    }
}

#[async_trait]
impl Handler for CancelListener {
    async fn handle(&self, message: Message, _cancel: CancellationToken) {
        let (task_id, reason) = match message.json::<CancelRequest>() {
            Ok(request) => (request.task_id, request.reason),
            Err(e) => match message.subject.rsplit('.').next() {
                Some(id) if !id.is_empty() && id != "*" => {
                    debug!(subject = %message.subject, error = %e, "Cancel request without a valid body; using the subject's task id.");
                    (id.to_owned(), None)
                }
                _ => {
                    warn!(subject = %message.subject, error = %e, "Ignoring a malformed cancel request.");
                    return;
                }
            },
        };
        if self.registry.cancel(&task_id, reason.clone()) {
            info!(task_id = %task_id, reason = reason.as_deref().unwrap_or(""), "Cancelling task.");
        }
    }
}
