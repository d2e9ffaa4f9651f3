//! Fixtures: a small document table ingested into a temporary SQLite database.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use loom_core::config::QueryAction;
use loom_query::{
    EmbeddingConfig, IngestOptions, IngestSource, QueryBackend, QueryConfig, QueryError,
    SqliteBackend, ingest,
};
use serde_json::{Map, Value, json};

/// Every await in these tests is bounded by this.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Awaits `f`, failing the test after [`TIMEOUT`].
pub async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(TIMEOUT, f)
        .await
        .expect("operation timed out")
}

/// The fixture documents.
pub fn documents() -> Vec<Value> {
    vec![
        json!({"id": "a1", "title": "Budget review 2024", "category": "finance", "year": 2024, "score": 0.9, "has_attachment": true,
               "tags": ["budget", "review"], "summary": "Quarterly budget review",
               "full_text": "The budget review covers the budget for 2024. Budget planning drives every budget decision."}),
        json!({"id": "a2", "title": "Invoice audit", "category": "finance", "year": 2023, "score": 0.5, "has_attachment": false,
               "tags": ["audit"], "summary": "Invoice audit findings",
               "full_text": "An audit of invoices, which mentions the budget once among many other invoice details and vendor names."}),
        json!({"id": "b1", "title": "Contract clause review", "category": "legal", "year": 2022, "score": 0.7, "has_attachment": true,
               "tags": ["contract"], "summary": "Liability clause",
               "full_text": "Liability clause in the contract."}),
        json!({"id": "b2", "title": "Settlement draft", "category": "legal", "year": 2024, "score": 0.2, "has_attachment": false,
               "tags": [], "summary": null,
               "full_text": "Settlement agreement draft."}),
        json!({"id": "c1", "title": "Database outage postmortem", "category": "engineering", "year": 2021, "score": 0.95, "has_attachment": false,
               "tags": ["outage"], "summary": "Outage of the primary database",
               "full_text": "The database outage lasted two hours; latency rose for every customer."}),
        json!({"id": "c2", "title": "Cache migration plan", "category": "engineering", "year": 2024, "score": 0.4, "has_attachment": true,
               "tags": ["cache"], "summary": "Moving the cache",
               "full_text": "Migrate the cache to the new cluster."}),
    ]
}

/// The text ingest embeds for a fixture document: `full_text`, then `summary`.
pub fn embedded_text(doc: &Value) -> String {
    let mut parts = vec![doc["full_text"].as_str().unwrap().to_owned()];
    if let Some(s) = doc["summary"].as_str() {
        parts.push(s.to_owned());
    }
    parts.join("\n\n")
}

/// The fixture's `backend_config`.
pub fn backend_config(db: &Path) -> Map<String, Value> {
    json!({
        "db_path": db.to_str().unwrap(),
        "result_columns": ["id", "title", "category", "year", "tags"],
        "json_columns": ["tags"],
        "filter_fields": {
            "category": "category = ?",
            "min_year": "year >= ?",
            "min_score": "score >= ?",
            "has_attachment": "has_attachment = ?",
            "title_like": "title LIKE ?",
            "has_summary": "summary IS NOT NULL",
            "exact_year": {"column": "year", "op": "=", "type": "integer"},
        },
        "stats_groups": ["category", "year"],
        "stats_aggregates": ["COUNT(*) AS record_count", "AVG(score) AS avg_score", "MAX(year) AS latest"],
        "default_order_by": "year DESC, id",
    })
    .as_object()
    .unwrap()
    .clone()
}

/// A temporary directory holding the fixture as JSONL and a database.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
    pub jsonl: PathBuf,
}

impl Fixture {
    /// Writes the JSONL (not yet ingested).
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("docs.db");
        let jsonl = dir.path().join("docs.jsonl");
        let text: String = documents().iter().map(|d| format!("{d}\n")).collect();
        std::fs::write(&jsonl, text).unwrap();
        Fixture { dir, db, jsonl }
    }

    /// Ingests with FTS over `full_text, summary`, optionally embedding.
    pub async fn ingest(&self, embed: Option<EmbeddingConfig>, fts: bool) {
        let mut options = IngestOptions::default();
        options.fts_fields = if fts || embed.is_some() {
            vec!["full_text".into(), "summary".into()]
        } else {
            Vec::new()
        };
        options.index_columns = vec!["category".into(), "year".into()];
        options.embed = embed;
        let report = within(ingest(
            &self.db,
            "documents",
            IngestSource::Jsonl(self.jsonl.clone()),
            options,
        ))
        .await
        .unwrap();
        assert_eq!(report.rows, 6);
    }

    /// The parsed fixture config, with `extra` keys merged in.
    pub fn config(&self, extra: Value) -> QueryConfig {
        let mut map = backend_config(&self.db);
        if let Value::Object(extra) = extra {
            map.extend(extra);
        }
        QueryConfig::from_backend_config(&map, self.dir.path()).unwrap()
    }

    /// An ingested fixture (FTS, no embeddings) and its open backend.
    pub async fn backend() -> (Fixture, SqliteBackend) {
        let f = Fixture::new();
        f.ingest(None, true).await;
        let backend = within(SqliteBackend::open(f.config(json!({}))))
            .await
            .unwrap();
        (f, backend)
    }

    /// The number of rows in `documents`, read on a fresh connection.
    pub fn row_count(&self) -> i64 {
        let conn = rusqlite::Connection::open(&self.db).unwrap();
        conn.query_row("SELECT COUNT(*) FROM documents", [], |r| r.get(0))
            .unwrap()
    }
}

/// Runs `action` with `args` (a JSON object).
pub async fn run(
    backend: &dyn QueryBackend,
    action: QueryAction,
    args: Value,
) -> Result<Map<String, Value>, QueryError> {
    let args = args.as_object().cloned().unwrap_or_default();
    within(backend.execute(action, &args)).await
}

/// The `id`s of `output.results`, in order.
pub fn ids(output: &Map<String, Value>) -> Vec<String> {
    output["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The message of an `InvalidArgument` error, failing on anything else.
pub fn invalid(result: Result<Map<String, Value>, QueryError>) -> (String, String) {
    match result {
        Err(QueryError::InvalidArgument { field, message }) => (field, message),
        other => panic!("expected an invalid-argument error, got {other:?}"),
    }
}
