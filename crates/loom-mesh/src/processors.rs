//! Built-in non-LLM processors, selected by a worker config's `processing_backend`.
//!
//! | `processing_backend` | what it does | `model_used` |
//! |---|---|---|
//! | `echo` | the output is the payload | `echo` |
//! | `text_stats` | `{reversed, word_count, char_count}` of `payload.text`, as the benchmark peer | `text_stats` |
//! | `subprocess` | runs a program per task (see [`SubprocessProcessor`]) | `command[0]` |
//!
//! `echo` and `text_stats` accept one `backend_config` key, `model_used`, to change the
//! label. loom-ai 0.9.0 named Python classes here (`pkg.module.Class`); those cannot be
//! loaded in Rust, and [`build_processor`] says so instead of failing obscurely. Wrap
//! such code with the `subprocess` processor (`io_mode: json_stdio`).

mod echo;
mod python;
pub mod query;
mod subprocess;
mod text_stats;

use std::sync::Arc;

use loom_core::config::{WorkerConfig, WorkerKind};
use loom_core::message::JsonObject;
use serde_json::Value;

pub use echo::EchoProcessor;
pub use query::{QueryEngine, QueryProcessor};
pub use subprocess::{BASE_ENV, DEFAULT_SUBPROCESS_TIMEOUT_SECONDS, SubprocessProcessor};
pub use text_stats::{TextStatsProcessor, text_stats};

use crate::worker::Processor;

/// The `processing_backend` names [`build_processor`] knows.
pub const BUILTIN_PROCESSORS: [&str; 5] = ["echo", "text_stats", "subprocess", "sqlite", "duckdb"];

/// Why a worker config does not give a processor.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The config is for an LLM worker.
    #[error(
        "worker '{worker}' is an llm worker; only processors (worker_kind: processor) have a processing_backend"
    )]
    NotAProcessor {
        /// The worker.
        worker: String,
    },
    /// The backend is a Python class path.
    #[error(
        "processing_backend '{backend}' is a Python class path, which cannot be loaded in Rust; use a built-in processor ({}) or run the Python code with the subprocess processor (io_mode: json_stdio)",
        BUILTIN_PROCESSORS.join(", ")
    )]
    PythonClass {
        /// The configured backend.
        backend: String,
    },
    /// No built-in processor has this name.
    #[error("unknown processing_backend '{backend}' (built-in: {})", BUILTIN_PROCESSORS.join(", "))]
    Unknown {
        /// The configured backend.
        backend: String,
    },
    /// `backend_config` is invalid for the backend.
    #[error("invalid backend_config for processor '{backend}': {}", problems.join("; "))]
    Config {
        /// The backend.
        backend: String,
        /// Every problem found, each naming its key.
        problems: Vec<String>,
    },
}

/// Builds the built-in processor a processor worker config names.
///
/// Relative paths in `backend_config` (`working_dir`) are resolved against the config
/// file's directory.
pub fn build_processor(config: &WorkerConfig) -> Result<Arc<dyn Processor>, BuildError> {
    let WorkerKind::Processor {
        backend,
        backend_config,
    } = &config.kind
    else {
        return Err(BuildError::NotAProcessor {
            worker: config.name.to_string(),
        });
    };
    let config_error = |problems: Vec<String>| BuildError::Config {
        backend: backend.clone(),
        problems,
    };
    match backend.as_str() {
        "echo" => Ok(Arc::new(EchoProcessor::new(
            label_only(backend_config, EchoProcessor::MODEL_USED).map_err(config_error)?,
        ))),
        "text_stats" => Ok(Arc::new(TextStatsProcessor::new(
            label_only(backend_config, TextStatsProcessor::MODEL_USED).map_err(config_error)?,
        ))),
        "sqlite" => query(config, backend_config, query::QueryEngine::Sqlite).map_err(config_error),
        "duckdb" | LEGACY_DUCKDB_BACKEND => {
            query(config, backend_config, query::QueryEngine::Duckdb).map_err(config_error)
        }
        "subprocess" => {
            let base_dir = config.source.parent();
            Ok(Arc::new(
                SubprocessProcessor::from_config(backend_config, base_dir).map_err(config_error)?,
            ))
        }
        other if other.contains('.') => Err(BuildError::PythonClass {
            backend: other.to_owned(),
        }),
        other => Err(BuildError::Unknown {
            backend: other.to_owned(),
        }),
    }
}

/// The original's dotted class path of its DuckDB query backend, accepted so old configs load.
pub const LEGACY_DUCKDB_BACKEND: &str = "loom.contrib.duckdb.query_backend.DuckDBQueryBackend";

fn query(
    config: &WorkerConfig,
    backend_config: &JsonObject,
    engine: query::QueryEngine,
) -> Result<Arc<dyn Processor>, Vec<String>> {
    let base_dir = config
        .source
        .parent()
        .unwrap_or_else(|| std::path::Path::new("."));
    Ok(Arc::new(query::QueryProcessor::from_config(
        engine,
        backend_config,
        base_dir,
    )?))
}

/// Reads a `backend_config` whose only key is `model_used`.
fn label_only(backend_config: &JsonObject, default: &str) -> Result<String, Vec<String>> {
    let mut problems = Vec::new();
    let mut label = default.to_owned();
    for (key, value) in backend_config {
        match (key.as_str(), value) {
            ("model_used", Value::String(s)) => label = s.clone(),
            ("model_used", _) => {
                problems.push("backend_config.model_used: expected a string".to_owned())
            }
            (other, _) => problems.push(format!(
                "backend_config: unknown key '{other}' (valid: model_used)"
            )),
        }
    }
    if problems.is_empty() {
        Ok(label)
    } else {
        Err(problems)
    }
}
