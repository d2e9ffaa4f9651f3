//! The [`QueryBackend`] trait every database implements, and [`QueryError`], whose
//! messages are written to be shown to an MCP client as tool errors.

use async_trait::async_trait;
use loom_core::config::QueryAction;
use serde_json::{Map, Value};

use crate::config::QueryConfig;
use crate::embed::EmbedError;

/// A query backend: the actions it serves, their input schemas, and execution.
///
/// Implementations validate the payload against the action's schema (see
/// [`QueryRequest::parse`](crate::request::QueryRequest::parse)), run only statements
/// built from their validated [`QueryConfig`], and return the action's output object
/// (`{results, total}` or `{document}`; the worker adapter wraps it as
/// `{output, model_used: kind()}`).
#[async_trait]
pub trait QueryBackend: Send + Sync {
    /// The backend's name, also the `model_used` of its results (`sqlite`, `duckdb`).
    fn kind(&self) -> &'static str;

    /// The actions this backend can serve with its configuration
    /// (see [`supported_actions`]).
    fn actions(&self) -> &[QueryAction];

    /// The JSON Schema of `action`'s arguments (see [`input_schema`](crate::schema::input_schema)).
    fn input_schema(&self, action: QueryAction) -> Value;

    /// Runs `action` with `payload` (the tool arguments; an `action` key naming the same
    /// action is allowed, as the gateway's bridge adds it).
    async fn execute(
        &self,
        action: QueryAction,
        payload: &Map<String, Value>,
    ) -> Result<Map<String, Value>, QueryError>;
}

/// The actions `config` supports, in canonical order: `search`, `filter` and `get`
/// always, `stats` when `stats_groups` is set, `vector_search` when `embedding` is set.
pub fn supported_actions(config: &QueryConfig) -> Vec<QueryAction> {
    QueryAction::ALL
        .iter()
        .copied()
        .filter(|a| unsupported_reason(config, *a).is_none())
        .collect()
}

/// Why `config` cannot serve `action`, if it cannot.
pub fn unsupported_reason(config: &QueryConfig, action: QueryAction) -> Option<&'static str> {
    match action {
        QueryAction::Stats if config.stats_groups.is_empty() => {
            Some("no stats_groups are configured in backend_config")
        }
        QueryAction::VectorSearch if config.embedding.is_none() => {
            Some("no embedding endpoint is configured in backend_config.embedding")
        }
        _ => None,
    }
}

/// Why a query failed. Display texts are lowercase and name the argument or value at
/// fault, so they can go to an MCP client unchanged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// An argument is missing, unknown, of the wrong type or out of range.
    #[error("invalid argument '{field}': {message}")]
    InvalidArgument {
        /// The argument (or comma-separated arguments).
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// `get` found no record with that id.
    #[error("record not found: {id}")]
    NotFound {
        /// The id asked for.
        id: String,
    },
    /// The action is not available with this configuration or backend.
    #[error("action '{action}' is not available: {reason}")]
    Unsupported {
        /// The action's name.
        action: String,
        /// Why.
        reason: String,
    },
    /// Embedding the query failed.
    #[error("embedding failed: {0}")]
    Embedding(#[from] EmbedError),
    /// The database failed (missing table or column, I/O, corruption…).
    #[error("database error while {operation}: {message}")]
    Database {
        /// What the backend was doing (`opening /data/docs.db`, `running search`).
        operation: String,
        /// The database's message.
        message: String,
    },
}

impl QueryError {
    /// An [`InvalidArgument`](QueryError::InvalidArgument) error.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        QueryError::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }

    /// An [`Unsupported`](QueryError::Unsupported) error.
    pub fn unsupported(action: QueryAction, reason: impl Into<String>) -> Self {
        QueryError::Unsupported {
            action: action.as_str().to_owned(),
            reason: reason.into(),
        }
    }

    /// A [`Database`](QueryError::Database) error.
    pub fn database(operation: impl Into<String>, message: impl std::fmt::Display) -> Self {
        QueryError::Database {
            operation: operation.into(),
            message: message.to_string(),
        }
    }

    /// Whether the caller's arguments were at fault (as opposed to the backend).
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            QueryError::InvalidArgument { .. } | QueryError::NotFound { .. }
        )
    }
}
