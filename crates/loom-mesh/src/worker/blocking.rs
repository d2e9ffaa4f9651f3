//! Processors whose work blocks (files, SQLite, CPU): run off the async runtime.
//!
//! The Rust twin of loom-ai's `SyncProcessingBackend` (mesh spec §6.9, §18 item 51):
//! [`process_sync`](SyncProcessor::process_sync) runs on tokio's blocking pool, its
//! errors propagate as they are, a panic is re-raised so the worker answers
//! `internal error: processor panicked`, and [`BlockingProcessor::serialize_writes`]
//! makes calls run one at a time (within this process only, as in the original).
//!
//! Blocking code cannot be interrupted: after a timeout or cancel the worker answers at
//! once, but the call runs to its end on its thread. It can poll
//! [`TaskContext::cancel`](super::TaskContext::cancel) to stop early. With
//! `serialize_writes`, the next call waits until that abandoned call has finished.

use std::sync::Arc;

use async_trait::async_trait;
use loom_core::message::TaskMessage;
use tokio::sync::Mutex;

use super::{ProcessError, ProcessOutput, Processor, TaskContext};

/// A processor whose work is synchronous; wrap it in a [`BlockingProcessor`].
pub trait SyncProcessor: Send + Sync + 'static {
    /// Processes one task on a blocking thread.
    fn process_sync(
        &self,
        task: &TaskMessage,
        ctx: &TaskContext,
    ) -> Result<ProcessOutput, ProcessError>;
}

/// Runs a [`SyncProcessor`] on tokio's blocking pool.
pub struct BlockingProcessor<P> {
    inner: Arc<P>,
    serialize: Option<Arc<Mutex<()>>>,
}

impl<P> std::fmt::Debug for BlockingProcessor<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingProcessor")
            .field("serialize_writes", &self.serialize.is_some())
            .finish_non_exhaustive()
    }
}

impl<P: SyncProcessor> BlockingProcessor<P> {
    /// Wraps `inner`; calls may overlap.
    pub fn new(inner: P) -> Self {
        BlockingProcessor {
            inner: Arc::new(inner),
            serialize: None,
        }
    }

    /// Runs one call at a time (a single-writer database, say).
    #[must_use]
    pub fn serialize_writes(mut self) -> Self {
        self.serialize = Some(Arc::new(Mutex::new(())));
        self
    }
}

#[async_trait]
impl<P: SyncProcessor> Processor for BlockingProcessor<P> {
    async fn process(
        &self,
        task: &TaskMessage,
        ctx: &TaskContext,
    ) -> Result<ProcessOutput, ProcessError> {
        // The guard moves into the blocking call, so it is held until the call really
        // ends, even when the worker stopped waiting for it.
        let guard = match &self.serialize {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        };
        let inner = self.inner.clone();
        let task = task.clone();
        let ctx = ctx.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let result = inner.process_sync(&task, &ctx);
            drop(guard);
            result
        })
        .await;
        match joined {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(ProcessError::fatal(format!(
                "blocking processor did not finish: {e}"
            ))),
        }
    }
}
