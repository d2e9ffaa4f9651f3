//! The Workshop's error type: one enum whose messages name the bad value.

use std::path::PathBuf;

/// Why a Workshop operation failed. Messages keep loom-ai 0.9.0's texts where it had
/// them (`Worker 'x' not found`, `Invalid YAML: …`, `No baseline set for worker 'x'`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkshopError {
    /// A required argument is missing or empty.
    #[error("{0}")]
    Required(String),
    /// A worker name that is not a valid worker name (and so never a file name).
    #[error("invalid worker name '{name}': {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// An id (run, dead letter) that is not one this store hands out.
    #[error("invalid {what} '{value}': expected a UUID")]
    InvalidId {
        /// What kind of id.
        what: &'static str,
        /// The id as given.
        value: String,
    },
    /// No worker config of this name in any config folder.
    #[error("Worker '{0}' not found")]
    NotFound(String),
    /// The YAML text does not parse.
    #[error("Invalid YAML: {0}")]
    InvalidYaml(String),
    /// The YAML is not a mapping.
    #[error("Config must be a YAML mapping")]
    NotMapping,
    /// An eval scoring method Loom does not know.
    #[error("unknown scoring '{0}' (valid: exact_match, field_match, llm_judge)")]
    UnknownScoring(String),
    /// `llm_judge` without a model for the judge tier.
    #[error("llm_judge needs a model for the judge tier: {0}")]
    NoJudge(String),
    /// The test suite is unusable.
    #[error("invalid test suite: {0}")]
    InvalidSuite(String),
    /// No such eval run.
    #[error("eval run '{0}' not found")]
    RunNotFound(String),
    /// An eval run of another worker.
    #[error("eval run '{run_id}' belongs to worker '{actual}', not '{expected}'")]
    RunOfOtherWorker {
        /// The run.
        run_id: String,
        /// The worker asked about.
        expected: String,
        /// The run's worker.
        actual: String,
    },
    /// The worker has no golden baseline yet.
    #[error("No baseline set for worker '{0}'")]
    NoBaseline(String),
    /// No such dead-letter entry.
    #[error("dead letter '{0}' not found")]
    DeadLetterNotFound(String),
    /// A dead letter whose task cannot be replayed.
    #[error("dead letter '{id}' cannot be replayed: {reason}")]
    NotReplayable {
        /// The entry.
        id: String,
        /// Why.
        reason: String,
    },
    /// Replay needs a bus.
    #[error("Dead-letter replay requires a connected message bus")]
    NoBus,
    /// Publishing on the bus failed.
    #[error("cannot publish to {subject}: {message}")]
    Publish {
        /// The subject.
        subject: String,
        /// The bus error.
        message: String,
    },
    /// The Workshop database failed.
    #[error("workshop database {}: {message}", path.display())]
    Database {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        message: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Blocking work panicked or was cancelled.
    #[error("internal error: {0}")]
    Internal(String),
}

impl WorkshopError {
    /// An I/O error on `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        WorkshopError::Io {
            path: path.into(),
            source,
        }
    }
}

/// Runs blocking work (files, SQLite) off the async runtime.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, WorkshopError>
where
    F: FnOnce() -> Result<T, WorkshopError> + Send + 'static,
    T: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        f()
    })
    .await
    .map_err(|e| WorkshopError::Internal(e.to_string()))?
}
