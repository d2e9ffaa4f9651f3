//! Loom's query backends: search, filter, stats, get and vector search over one table,
//! exposed by the gateway as one MCP tool per action.
//!
//! * [`config`]: `backend_config` parsed into a validated [`QueryConfig`] (every SQL
//!   fragment typed, every identifier checked), reporting all problems at once.
//! * [`backend`]: the [`QueryBackend`] trait and [`QueryError`].
//! * [`schema`]: tool descriptions and input schemas derived from the config alone.
//! * [`request`]: payload validation into a typed [`QueryRequest`].
//! * [`sqlite`]: the embedded default backend ([`SqliteBackend`]).
//! * `duckdb` (cargo feature `duckdb`): the DuckDB backend.
//! * [`ingest`](mod@ingest): JSONL/CSV into a SQLite table with an FTS5 index.
//! * [`embed`]: embeddings from a configured OpenAI-compatible or Ollama endpoint.
//!
//! ```no_run
//! use loom_core::config::QueryAction;
//! use loom_query::{QueryBackend, QueryConfig, SqliteBackend};
//! use serde_json::json;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let backend_config = json!({
//!     "db_path": "data/documents.db",
//!     "result_columns": ["id", "title", "category"],
//!     "filter_fields": {"category": "category = ?", "min_year": "year >= ?"},
//!     "stats_groups": ["category", "year"],
//! });
//! let config = QueryConfig::from_backend_config(backend_config.as_object().unwrap(), ".".as_ref())
//!     .map_err(|problems| format!("{problems:?}"))?;
//! // The gateway needs no database for the schema.
//! let schema = loom_query::input_schema(&config, QueryAction::Filter);
//! assert_eq!(schema["properties"]["min_year"]["type"], "number");
//! let backend = SqliteBackend::open(config).await?;
//! let args = json!({"category": "finance", "min_year": 2020, "limit": 5});
//! let output = backend.execute(QueryAction::Filter, args.as_object().unwrap()).await?;
//! println!("{} matching records", output["total"]);
//! # Ok(())
//! # }
//! ```

pub mod backend;
pub mod config;
#[cfg(feature = "duckdb")]
pub mod duckdb;
pub mod embed;
pub mod ingest;
pub mod request;
pub mod row;
pub mod schema;
pub mod sqlite;
pub mod vector;

pub use backend::{QueryBackend, QueryError, supported_actions};
pub use config::{ConfigProblem, QueryConfig};
pub use embed::{EmbedError, Embedder, EmbeddingConfig, EmbeddingProvider};
pub use ingest::{IngestError, IngestOptions, IngestReport, IngestSource, ingest};
pub use request::QueryRequest;
pub use schema::{description, input_schema};
pub use sqlite::SqliteBackend;
