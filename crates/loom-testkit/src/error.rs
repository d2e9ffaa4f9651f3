//! The one error type of the testkit.

use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

/// Why a test helper could not do its job.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestkitError {
    /// The `nats-server` binary is not installed.
    #[error(
        "nats-server not found on PATH or in /usr/sbin; install it with `apt-get install -y nats-server`"
    )]
    NatsServerNotFound,
    /// An I/O operation failed; `action` says which.
    #[error("{action}")]
    Io {
        /// What the helper was doing, e.g. "cannot spawn /usr/sbin/nats-server".
        action: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// `nats-server` did not log "Server is ready" in time.
    #[error("nats-server on port {port} not ready after {timeout:?}; last log lines:\n{log}")]
    NotReady {
        /// The port it was asked to listen on.
        port: u16,
        /// How long we waited.
        timeout: Duration,
        /// The last lines it logged.
        log: String,
    },
    /// `nats-server` exited before it was ready (for example because the port was taken).
    #[error(
        "nats-server on port {port} exited before it was ready ({status}); last log lines:\n{log}"
    )]
    Exited {
        /// The port it was asked to listen on.
        port: u16,
        /// Its exit status.
        status: ExitStatus,
        /// The last lines it logged.
        log: String,
    },
    /// A relative path given to [`TempWorkspace::write`](crate::TempWorkspace::write)
    /// would leave the workspace.
    #[error("path escapes the temporary workspace: {path}")]
    PathEscapes {
        /// The path as given.
        path: PathBuf,
    },
}

impl TestkitError {
    pub(crate) fn io(action: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            action: action.into(),
            source,
        }
    }
}
