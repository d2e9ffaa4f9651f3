//! The query processor: a `sqlite` or `duckdb` query backend serving `{action, …}` tasks,
//! as the worker `{name_prefix}_query` behind a gateway's query tools.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use loom_core::config::QueryAction;
use loom_core::message::TaskMessage;
use loom_query::{QueryBackend, QueryConfig, SqliteBackend};
use serde_json::{Map, Value};
use tokio::sync::OnceCell;

use crate::worker::{ProcessError, ProcessOutput, Processor, TaskContext};

/// Which database a query processor uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryEngine {
    /// SQLite (bundled), the embedded default.
    Sqlite,
    /// DuckDB (cargo feature `duckdb`).
    Duckdb,
}

/// `backend_config` keys the query worker reads itself; the rest is the backend's
/// [`QueryConfig`].
pub const WORKER_KEYS: [&str; 2] = ["fts_extension", "seed"];

/// Serves query actions from a backend opened on first use, so that a worker can start
/// (and report its config problems) before its database is reachable.
///
/// With `seed: <file.jsonl|file.csv>` (relative to the config file) a missing SQLite
/// database is built from that file on first use: the example corpus ships as JSONL and
/// the gateway runs on a fresh checkout with no setup step.
pub struct QueryProcessor {
    engine: QueryEngine,
    config: QueryConfig,
    seed: Option<std::path::PathBuf>,
    #[cfg(feature = "duckdb")]
    duckdb: loom_query::duckdb::DuckDbOptions,
    backend: OnceCell<Arc<dyn QueryBackend>>,
}

impl std::fmt::Debug for QueryProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryProcessor")
            .field("engine", &self.engine)
            .field("db", &self.config.db_path)
            .finish_non_exhaustive()
    }
}

impl QueryProcessor {
    /// Validates `backend_config` (every problem, as `key.path: message` lines).
    pub fn from_config(
        engine: QueryEngine,
        backend_config: &Map<String, Value>,
        base_dir: &Path,
    ) -> Result<Self, Vec<String>> {
        let mut problems = Vec::new();
        let mut map = backend_config.clone();
        // The DuckDB extension path is an engine option, not a query setting.
        #[cfg(feature = "duckdb")]
        let duckdb = match loom_query::duckdb::DuckDbOptions::from_backend_config(&map, base_dir) {
            Ok(o) => Some(o),
            Err(p) => {
                problems.push(p.to_string());
                None
            }
        };
        let seed = match map.get("seed") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) if !p.trim().is_empty() => Some(base_dir.join(p.trim())),
            Some(_) => {
                problems.push(
                    "backend_config.seed: expected the path of a JSONL or CSV file".to_owned(),
                );
                None
            }
        };
        if let Some(path) = &seed {
            if loom_query::IngestSource::from_path(path.clone()).is_none() {
                problems.push(format!(
                    "backend_config.seed: '{}' is neither .jsonl nor .csv",
                    path.display()
                ));
            } else if engine == QueryEngine::Duckdb {
                problems.push("backend_config.seed: seeding is only for sqlite; load DuckDB files with DuckDB".to_owned());
            }
        }
        for key in WORKER_KEYS {
            map.remove(key);
        }
        if engine == QueryEngine::Duckdb && !cfg!(feature = "duckdb") {
            problems.push("processing_backend: this loom was built without DuckDB; rebuild with `--features duckdb` (see scripts/fetch-duckdb) or use backend sqlite".to_owned());
        }
        let config = match QueryConfig::from_backend_config(&map, base_dir) {
            Ok(c) => Some(c),
            Err(ps) => {
                problems.extend(ps.iter().map(ToString::to_string));
                None
            }
        };
        match (config, problems.is_empty()) {
            (Some(config), true) => Ok(QueryProcessor {
                engine,
                config,
                seed,
                #[cfg(feature = "duckdb")]
                duckdb: duckdb.unwrap_or_default(),
                backend: OnceCell::new(),
            }),
            _ => Err(problems),
        }
    }

    async fn backend(&self) -> Result<&Arc<dyn QueryBackend>, ProcessError> {
        self.backend
            .get_or_try_init(|| async {
                self.seed_if_missing().await?;
                let backend: Arc<dyn QueryBackend> = match self.engine {
                    QueryEngine::Sqlite => {
                        Arc::new(SqliteBackend::open(self.config.clone()).await?)
                    }
                    #[cfg(feature = "duckdb")]
                    QueryEngine::Duckdb => Arc::new(
                        loom_query::duckdb::DuckDbBackend::open_with(
                            self.config.clone(),
                            self.duckdb.clone(),
                        )
                        .await?,
                    ),
                    #[cfg(not(feature = "duckdb"))]
                    QueryEngine::Duckdb => {
                        return Err(loom_query::QueryError::database(
                            "opening DuckDB",
                            "built without the duckdb feature",
                        ));
                    }
                };
                Ok::<_, loom_query::QueryError>(backend)
            })
            .await
            .map_err(|e| ProcessError::fatal(e.to_string()))
    }
}

impl QueryProcessor {
    async fn seed_if_missing(&self) -> Result<(), loom_query::QueryError> {
        let Some(seed) = &self.seed else {
            return Ok(());
        };
        if self.config.db_path.exists() {
            return Ok(());
        }
        let Some(source) = loom_query::IngestSource::from_path(seed.clone()) else {
            return Ok(());
        };
        let options = loom_query::IngestOptions::from_config(&self.config);
        tracing::info!(db = %self.config.db_path.display(), seed = %seed.display(), "Building the query database from its seed file.");
        let report = loom_query::ingest(
            &self.config.db_path,
            &self.config.table_name.to_string(),
            source,
            options,
        )
        .await
        .map_err(|e| {
            loom_query::QueryError::database(
                format!("seeding {}", self.config.db_path.display()),
                e,
            )
        })?;
        tracing::info!(rows = report.rows, table = %report.table, "Query database built.");
        Ok(())
    }
}

#[async_trait]
impl Processor for QueryProcessor {
    async fn process(
        &self,
        task: &TaskMessage,
        _ctx: &TaskContext,
    ) -> Result<ProcessOutput, ProcessError> {
        let action = match task.payload.get("action") {
            Some(Value::String(a)) => a.parse::<QueryAction>().map_err(ProcessError::fatal)?,
            Some(_) => return Err(ProcessError::fatal("action: expected a string")),
            None => {
                return Err(ProcessError::fatal(
                    "action: missing (search, filter, stats, get or vector_search)",
                ));
            }
        };
        let backend = self.backend().await?;
        let output = backend
            .execute(action, &task.payload)
            .await
            .map_err(|e| ProcessError::fatal(e.to_string()))?;
        Ok(ProcessOutput::new(output).with_model_used(backend.kind()))
    }
}
