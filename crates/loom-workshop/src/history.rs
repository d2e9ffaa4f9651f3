//! The Workshop database (SQLite, default `~/.loom/workshop.db`) and the worker version
//! history kept in it.
//!
//! The database is opened on first use, not when a gateway starts (gateway spec §13.29),
//! in WAL mode with a busy timeout so a gateway and `loom workshop` can share it. Tables:
//!
//! | table | holds |
//! |---|---|
//! | `worker_versions` | every saved config: id, worker, hash (16 hex of SHA-256), YAML, time, description; unique per (worker, hash) |
//! | `eval_runs`, `eval_results`, `eval_baselines` | eval runs, their cases, the golden run per worker ([`crate::eval`]) |
//! | `dead_letters`, `dead_letter_replays` | dead-lettered tasks and the replay audit ([`crate::dead_letters`]) |

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{WorkshopError, blocking};

/// How long a writer waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS worker_versions (
    id TEXT PRIMARY KEY,
    worker_name TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    config_yaml TEXT NOT NULL,
    created_at TEXT NOT NULL,
    description TEXT,
    UNIQUE (worker_name, config_hash)
);
CREATE TABLE IF NOT EXISTS eval_runs (
    id TEXT PRIMARY KEY,
    worker_name TEXT NOT NULL,
    worker_version_id TEXT,
    tier TEXT NOT NULL,
    scoring TEXT NOT NULL,
    started_at TEXT NOT NULL,
    completed_at TEXT,
    status TEXT NOT NULL,
    total_cases INTEGER NOT NULL,
    passed_cases INTEGER NOT NULL DEFAULT 0,
    failed_cases INTEGER NOT NULL DEFAULT 0,
    avg_score REAL,
    avg_latency_ms REAL,
    avg_prompt_tokens REAL,
    avg_completion_tokens REAL
);
CREATE TABLE IF NOT EXISTS eval_results (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES eval_runs(id),
    case_name TEXT NOT NULL,
    input_payload TEXT NOT NULL,
    expected_output TEXT,
    actual_output TEXT,
    raw_response TEXT,
    validation_errors TEXT NOT NULL,
    score REAL,
    score_details TEXT NOT NULL,
    latency_ms INTEGER NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    model_used TEXT,
    passed INTEGER NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS eval_results_run ON eval_results(run_id);
CREATE TABLE IF NOT EXISTS eval_baselines (
    worker_name TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    promoted_at TEXT NOT NULL,
    description TEXT
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id TEXT PRIMARY KEY,
    received_at TEXT NOT NULL,
    reason TEXT NOT NULL,
    task_id TEXT,
    worker_type TEXT,
    original_task TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letter_replays (
    id TEXT PRIMARY KEY,
    entry_id TEXT NOT NULL,
    original_task_id TEXT,
    new_task_id TEXT NOT NULL,
    replayed_at TEXT NOT NULL
);
";

/// The Workshop database: a file opened on first use. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Db {
    path: PathBuf,
    conn: Arc<Mutex<Option<Connection>>>,
}

impl Db {
    /// The database at `path` (created with its folder on first use).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Db {
            path: path.into(),
            conn: Arc::new(Mutex::new(None)),
        }
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the connection, opening it first if needed. Blocking.
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<T>,
    ) -> Result<T, WorkshopError> {
        let mut guard = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.is_none() {
            *guard = Some(self.open()?);
        }
        let Some(conn) = guard.as_mut() else {
            return Err(WorkshopError::Internal("database not open".to_owned()));
        };
        f(conn).map_err(|e| self.error(e))
    }

    /// [`Db::with`] off the async runtime.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, WorkshopError>
    where
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let db = self.clone();
        blocking(move || db.with(f)).await
    }

    fn open(&self) -> Result<Connection, WorkshopError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| WorkshopError::io(dir, e))?;
        }
        let conn = Connection::open(&self.path).map_err(|e| self.error(e))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(|e| self.error(e))?;
        // WAL lets readers and one writer work at once; it fails harmlessly on file
        // systems that cannot do it.
        let _ = conn.pragma_update(None, "journal_mode", "WAL");
        conn.execute_batch(SCHEMA).map_err(|e| self.error(e))?;
        Ok(conn)
    }

    fn error(&self, e: rusqlite::Error) -> WorkshopError {
        WorkshopError::Database {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }
}

/// One saved version of a worker config.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct WorkerVersion {
    /// The version's id.
    pub id: String,
    /// The worker.
    pub worker_name: String,
    /// The first 16 hex digits of the SHA-256 of the YAML.
    pub config_hash: String,
    /// The YAML as saved.
    pub config_yaml: String,
    /// When it was first saved (RFC 3339, UTC).
    pub created_at: String,
    /// Why it was saved.
    pub description: Option<String>,
}

/// The version hash of a config text: 16 hex digits of its SHA-256.
pub fn config_hash(yaml: &str) -> String {
    let digest = Sha256::digest(yaml.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Now, as stored (RFC 3339 with microseconds, UTC), so text order is time order.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Records `yaml` as a version of `worker` (blocking). Saving a text already recorded
/// for the worker returns that version unchanged.
pub(crate) fn record_version(
    conn: &mut Connection,
    worker: &str,
    yaml: &str,
    description: Option<&str>,
) -> rusqlite::Result<WorkerVersion> {
    let hash = config_hash(yaml);
    let existing = conn
        .query_row(
            "SELECT id, worker_name, config_hash, config_yaml, created_at, description
             FROM worker_versions WHERE worker_name = ?1 AND config_hash = ?2",
            params![worker, hash],
            version_row,
        )
        .optional()?;
    if let Some(v) = existing {
        return Ok(v);
    }
    let version = WorkerVersion {
        id: uuid::Uuid::new_v4().to_string(),
        worker_name: worker.to_owned(),
        config_hash: hash,
        config_yaml: yaml.to_owned(),
        created_at: now(),
        description: description.map(str::to_owned),
    };
    conn.execute(
        "INSERT INTO worker_versions (id, worker_name, config_hash, config_yaml, created_at, description)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            version.id,
            version.worker_name,
            version.config_hash,
            version.config_yaml,
            version.created_at,
            version.description
        ],
    )?;
    Ok(version)
}

/// Every version of `worker`, newest first (blocking).
pub(crate) fn versions(
    conn: &mut Connection,
    worker: &str,
) -> rusqlite::Result<Vec<WorkerVersion>> {
    let mut stmt = conn.prepare(
        "SELECT id, worker_name, config_hash, config_yaml, created_at, description
         FROM worker_versions WHERE worker_name = ?1 ORDER BY created_at DESC, rowid DESC",
    )?;
    let rows = stmt.query_map(params![worker], version_row)?;
    rows.collect()
}

fn version_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<WorkerVersion> {
    Ok(WorkerVersion {
        id: row.get(0)?,
        worker_name: row.get(1)?,
        config_hash: row.get(2)?,
        config_yaml: row.get(3)?,
        created_at: row.get(4)?,
        description: row.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_newest_first_and_deduplicated_by_hash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::new(dir.path().join("nested/workshop.db"));
        let (a, b, again, list) = db
            .with(|c| {
                let a = record_version(c, "w", "name: w\n", Some("first"))?;
                let b = record_version(c, "w", "name: w\n# 2\n", None)?;
                let again = record_version(c, "w", "name: w\n", Some("ignored"))?;
                let list = versions(c, "w")?;
                Ok((a, b, again, list))
            })
            .expect("db works");
        assert_eq!(again, a);
        assert_eq!(a.config_hash.len(), 16);
        assert_eq!(
            list.iter().map(|v| &v.id).collect::<Vec<_>>(),
            [&b.id, &a.id]
        );
        assert_eq!(list[1].description.as_deref(), Some("first"));
    }
}
