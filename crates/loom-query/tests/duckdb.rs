//! DuckDB backend tests (`--features duckdb`): every action on a small DuckDB file made
//! here, with and without the FTS extension.
//!
//! They need `libduckdb.so` on `LD_LIBRARY_PATH` and `LOOM_DUCKDB_FTS_EXTENSION` naming
//! `fts.duckdb_extension`: `eval "$(scripts/fetch-duckdb)"` sets both (scripts/test does).
//! A missing extension fails the tests that need it; it does not skip them.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use duckdb::Connection;
use loom_core::config::QueryAction;
use loom_query::duckdb::{DuckDbBackend, DuckDbOptions, FTS_EXTENSION_ENV};
use loom_query::{QueryBackend, QueryConfig, QueryError};
use loom_testkit::llm::{LlmStandIn, embedding};
use serde_json::{Map, Value, json};
use tempfile::TempDir;

/// Every await in these tests is bounded by this.
const TIMEOUT: Duration = Duration::from_secs(30);

async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(TIMEOUT, f)
        .await
        .expect("operation timed out")
}

/// The FTS extension file the fetch script provides.
fn fts_extension() -> PathBuf {
    let path = std::env::var_os(FTS_EXTENSION_ENV).unwrap_or_else(|| {
        panic!("{FTS_EXTENSION_ENV} is not set: run `eval \"$(scripts/fetch-duckdb)\"` first")
    });
    let path = PathBuf::from(path);
    assert!(path.is_file(), "{} does not exist", path.display());
    path
}

fn with_fts() -> DuckDbOptions {
    DuckDbOptions::new().with_fts_extension(fts_extension())
}

fn vector_literal(text: &str) -> String {
    let items: Vec<String> = embedding(text).iter().map(f64::to_string).collect();
    format!("[{}]", items.join(", "))
}

/// A database with the fixture table `documents`; `index` adds the FTS index over
/// title, full_text and summary.
struct Fixture {
    _dir: TempDir,
    db: PathBuf,
}

impl Fixture {
    fn new(index: bool) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("docs.duckdb");
        let conn = Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE documents (
                id VARCHAR PRIMARY KEY, title VARCHAR, full_text VARCHAR, summary VARCHAR,
                category VARCHAR, year INTEGER, score DOUBLE, reviewed BOOLEAN, flagged INTEGER,
                created TIMESTAMP, tags VARCHAR, embedding FLOAT[]
            );",
        )
        .unwrap();
        let rows = [
            format!(
                "('d1', 'Quick fox', 'the quick brown fox', 'a fox story', 'finance', 2021, 0.75, true, 1,
                  TIMESTAMP '2024-01-01 10:00:00', '[\"animals\", \"fox\"]', {})",
                vector_literal("alpha")
            ),
            format!(
                "('d2', 'Quick quick', 'the quick quick quick fox jumps', 'quick summary', 'finance', 2023, 0.5, false, 0,
                  TIMESTAMP '2024-03-05 08:30:15.25', 'not json', {})",
                vector_literal("beta")
            ),
            format!(
                "('d3', 'Lazy dog', 'the lazy dog sleeps', NULL, 'legal', 2019, 0.2, NULL, 0,
                  NULL, '[]', {})",
                vector_literal("gamma")
            ),
            "('d4', 'Budget 50% off', 'budget_review discount', 'budget', 'finance', 2023, 0.25, true, 1,
              NULL, NULL, [1.0, 2.0])"
                .to_owned(),
            "('d5', 'Empty', NULL, NULL, NULL, 2020, NULL, NULL, NULL, NULL, NULL, NULL)".to_owned(),
        ];
        conn.execute_batch(&format!(
            "INSERT INTO documents VALUES {};",
            rows.join(", ")
        ))
        .unwrap();
        if index {
            conn.execute_batch(&format!("LOAD '{}';", fts_extension().display()))
                .unwrap();
            conn.execute_batch(
                "PRAGMA create_fts_index('documents', 'id', 'title', 'full_text', 'summary');",
            )
            .unwrap();
        }
        drop(conn);
        Fixture { _dir: dir, db }
    }

    fn config(&self, extra: Value) -> QueryConfig {
        let mut map = json!({
            "db_path": self.db.to_str().unwrap(),
            "result_columns": ["id", "title", "category", "tags", "created"],
            "json_columns": ["tags"],
            "fts_fields": ["title", "full_text", "summary"],
            "filter_fields": {
                "category": "category = ?",
                "min_score": "score >= ?",
                "title_like": "title ILIKE ?",
                "reviewed": "reviewed = CAST(? AS BOOLEAN)",
                "has_flag": "flagged = ?",
                "no_summary": "summary IS NULL",
                "exact_year": {"column": "year", "op": "=", "type": "integer"},
            },
            "stats_groups": ["category", "year"],
            "stats_aggregates": ["COUNT(*) AS record_count", "AVG(score) AS avg_score", "MAX(created) AS latest"],
            "default_order_by": "year DESC, id",
        })
        .as_object()
        .unwrap()
        .clone();
        if let Value::Object(extra) = extra {
            map.extend(extra);
        }
        QueryConfig::from_backend_config(&map, "/".as_ref()).unwrap_or_else(|p| panic!("{p:?}"))
    }

    async fn open(&self, extra: Value, options: DuckDbOptions) -> DuckDbBackend {
        within(DuckDbBackend::open_with(self.config(extra), options))
            .await
            .unwrap()
    }
}

async fn run(
    backend: &DuckDbBackend,
    action: QueryAction,
    args: Value,
) -> Result<Map<String, Value>, QueryError> {
    let args = args.as_object().cloned().unwrap_or_default();
    within(backend.execute(action, &args)).await
}

fn ids(output: &Map<String, Value>) -> Vec<&str> {
    output["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn search_ranks_by_bm25_with_the_extension() {
    let fixture = Fixture::new(true);
    let backend = fixture.open(json!({}), with_fts()).await;
    assert!(
        within(tokio::task::spawn_blocking({
            let b = backend.clone();
            move || b.has_fts()
        }))
        .await
        .unwrap()
    );
    let out = run(
        &backend,
        QueryAction::Search,
        json!({"query": "quick", "limit": 10}),
    )
    .await
    .unwrap();
    // d2 says "quick" six times, d1 twice; nothing else matches.
    assert_eq!(ids(&out), ["d2", "d1"]);
    assert_eq!(out["total"], 2);
    let results = out["results"].as_array().unwrap();
    let scores: Vec<f64> = results
        .iter()
        .map(|r| r["score"].as_f64().unwrap())
        .collect();
    assert!(scores[0] > scores[1] && scores[1] > 0.0, "{scores:?}");
    // Result columns plus score, JSON columns parsed, timestamps as strings.
    assert_eq!(results[1]["tags"], json!(["animals", "fox"]));
    assert_eq!(results[1]["created"], "2024-01-01 10:00:00");
    assert_eq!(results[0]["tags"], "not json");
    assert_eq!(results[0]["created"], "2024-03-05 08:30:15.250000");
    let keys: Vec<&String> = results[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["id", "title", "category", "tags", "created", "score"]
    );

    // Stemming and case folding come from DuckDB's FTS; limit caps the results.
    let out = run(
        &backend,
        QueryAction::Search,
        json!({"query": "FOXES", "limit": 1}),
    )
    .await
    .unwrap();
    assert_eq!(out["total"], 1);
    assert_eq!(ids(&out).len(), 1);
    let none = run(&backend, QueryAction::Search, json!({"query": "zebra"}))
        .await
        .unwrap();
    assert_eq!(none["total"], 0);
}

#[tokio::test]
async fn search_falls_back_to_ilike_without_the_extension() {
    let fixture = Fixture::new(true);
    let backend = fixture.open(json!({}), DuckDbOptions::new()).await;
    assert!(!backend.has_fts());
    let out = run(&backend, QueryAction::Search, json!({"query": "QUICK"}))
        .await
        .unwrap();
    // Newest id first, score 0.
    assert_eq!(ids(&out), ["d2", "d1"]);
    assert!(
        out["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["score"] == 0.0)
    );
    // LIKE wildcards in the query are literal characters.
    let out = run(&backend, QueryAction::Search, json!({"query": "50%"}))
        .await
        .unwrap();
    assert_eq!(ids(&out), ["d4"]);
    let out = run(&backend, QueryAction::Search, json!({"query": "t_e"}))
        .await
        .unwrap();
    assert_eq!(out["total"], 0, "{out:?}");
    let out = run(&backend, QueryAction::Search, json!({"query": "get_re"}))
        .await
        .unwrap();
    assert_eq!(ids(&out), ["d4"]);

    // A missing extension file also falls back; so does a table without an index, or
    // an index that does not cover every fts_field.
    let missing = fixture
        .open(
            json!({}),
            DuckDbOptions::new().with_fts_extension("/nonexistent/fts.duckdb_extension"),
        )
        .await;
    let out = run(&missing, QueryAction::Search, json!({"query": "lazy"}))
        .await
        .unwrap();
    assert_eq!(ids(&out), ["d3"]);
    let unindexed = Fixture::new(false);
    let backend = unindexed.open(json!({}), with_fts()).await;
    assert!(!backend.has_fts());
    let out = run(&backend, QueryAction::Search, json!({"query": "fox"}))
        .await
        .unwrap();
    assert_eq!(ids(&out), ["d2", "d1"]);
    let partial = fixture
        .open(json!({"fts_fields": ["title", "category"]}), with_fts())
        .await;
    assert!(!partial.has_fts());
    let out = run(&partial, QueryAction::Search, json!({"query": "legal"}))
        .await
        .unwrap();
    assert_eq!(ids(&out), ["d3"]);
}

#[tokio::test]
async fn other_actions_work_without_the_extension() {
    // The original ran `LOAD fts` for every action; here only search wants it.
    let fixture = Fixture::new(true);
    let backend = fixture
        .open(
            json!({}),
            DuckDbOptions::new().with_fts_extension("/nonexistent/fts.duckdb_extension"),
        )
        .await;
    let out = run(&backend, QueryAction::Filter, json!({"category": "legal"}))
        .await
        .unwrap();
    assert_eq!(ids(&out), ["d3"]);
    let out = run(&backend, QueryAction::Stats, json!({})).await.unwrap();
    assert_eq!(out["total"], 5);
    let out = run(&backend, QueryAction::Get, json!({"id": "d1"}))
        .await
        .unwrap();
    assert_eq!(out["document"]["id"], "d1");
}

#[tokio::test]
async fn filter_binds_typed_values_and_counts_every_match() {
    let fixture = Fixture::new(false);
    let backend = fixture.open(json!({}), DuckDbOptions::new()).await;
    let out = run(
        &backend,
        QueryAction::Filter,
        json!({"category": "finance", "limit": 2}),
    )
    .await
    .unwrap();
    // ORDER BY year DESC, id; total counts all three finance rows.
    assert_eq!(ids(&out), ["d2", "d4"]);
    assert_eq!(out["total"], 3);
    let out = run(
        &backend,
        QueryAction::Filter,
        json!({"min_score": 0.5, "title_like": "%QUICK%"}),
    )
    .await
    .unwrap();
    assert_eq!(ids(&out), ["d2", "d1"]);
    let out = run(&backend, QueryAction::Filter, json!({"reviewed": true}))
        .await
        .unwrap();
    assert_eq!(ids(&out), ["d4", "d1"]);
    // A boolean against an integer column is bound as 1/0.
    let out = run(&backend, QueryAction::Filter, json!({"has_flag": false}))
        .await
        .unwrap();
    assert_eq!(ids(&out), ["d2", "d3"]);
    let out = run(&backend, QueryAction::Filter, json!({"no_summary": true}))
        .await
        .unwrap();
    assert_eq!(ids(&out), ["d5", "d3"]);
    let out = run(
        &backend,
        QueryAction::Filter,
        json!({"no_summary": false, "exact_year": 2023}),
    )
    .await
    .unwrap();
    assert_eq!(ids(&out), ["d2", "d4"]);
    // Null means "not applied"; no arguments list everything in order.
    let out = run(&backend, QueryAction::Filter, json!({"category": null}))
        .await
        .unwrap();
    assert_eq!(ids(&out), ["d2", "d4", "d1", "d5", "d3"]);
    assert_eq!(out["total"], 5);
    // Without default_order_by the table's natural (insertion) order is used.
    let natural = fixture
        .open(json!({"default_order_by": null}), DuckDbOptions::new())
        .await;
    let out = run(&natural, QueryAction::Filter, json!({})).await.unwrap();
    assert_eq!(ids(&out), ["d1", "d2", "d3", "d4", "d5"]);
    let rowid = fixture
        .open(
            json!({"default_order_by": "rowid DESC"}),
            DuckDbOptions::new(),
        )
        .await;
    let out = run(&rowid, QueryAction::Filter, json!({"limit": 2}))
        .await
        .unwrap();
    assert_eq!(ids(&out), ["d5", "d4"]);
}

#[tokio::test]
async fn stats_group_by_the_first_configured_group_by_default() {
    let fixture = Fixture::new(false);
    let backend = fixture.open(json!({}), DuckDbOptions::new()).await;
    for _ in 0..3 {
        let out = run(&backend, QueryAction::Stats, json!({})).await.unwrap();
        assert_eq!(
            out["results"],
            json!([
                {"category": "finance", "record_count": 3, "avg_score": 0.5, "latest": "2024-03-05 08:30:15.250000"},
                {"category": "legal", "record_count": 1, "avg_score": 0.2, "latest": null},
                {"category": null, "record_count": 1, "avg_score": null, "latest": null},
            ])
        );
        assert_eq!(out["total"], 5);
    }
    let out = run(&backend, QueryAction::Stats, json!({"group_by": "year"}))
        .await
        .unwrap();
    // Equal counts are ordered by the group value.
    let years: Vec<i64> = out["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["year"].as_i64().unwrap())
        .collect();
    assert_eq!(years, [2023, 2019, 2020, 2021]);
    let err = run(&backend, QueryAction::Stats, json!({"group_by": "title"}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, QueryError::InvalidArgument { ref field, .. } if field == "group_by"),
        "{err}"
    );
}

#[tokio::test]
async fn get_returns_the_document_with_its_full_text() {
    let fixture = Fixture::new(false);
    let backend = fixture.open(json!({}), DuckDbOptions::new()).await;
    let out = run(&backend, QueryAction::Get, json!({"id": "d1"}))
        .await
        .unwrap();
    assert_eq!(
        Value::Object(out),
        json!({"document": {
            "id": "d1", "title": "Quick fox", "category": "finance", "tags": ["animals", "fox"],
            "created": "2024-01-01 10:00:00", "full_text": "the quick brown fox",
        }})
    );
    // The legacy argument still works.
    let out = run(&backend, QueryAction::Get, json!({"document_id": "d3"}))
        .await
        .unwrap();
    assert_eq!(out["document"]["title"], "Lazy dog");
    let err = run(&backend, QueryAction::Get, json!({"id": "nope"}))
        .await
        .unwrap_err();
    assert!(
        matches!(err, QueryError::NotFound { ref id } if id == "nope"),
        "{err}"
    );
    assert_eq!(err.to_string(), "record not found: nope");
    let err = run(&backend, QueryAction::Get, json!({}))
        .await
        .unwrap_err();
    assert!(matches!(err, QueryError::InvalidArgument { .. }), "{err}");

    // Integer ids: integers and numeric strings match, other strings are simply absent.
    let numbered = fixture
        .open(json!({"id_column": "year", "result_columns": ["year", "id"], "full_text_column": null}), DuckDbOptions::new())
        .await;
    let out = run(&numbered, QueryAction::Get, json!({"year": 2019}))
        .await
        .unwrap();
    assert_eq!(out["document"], json!({"year": 2019, "id": "d3"}));
    let out = run(&numbered, QueryAction::Get, json!({"year": "2019"}))
        .await
        .unwrap();
    assert_eq!(out["document"]["id"], "d3");
    let err = run(&numbered, QueryAction::Get, json!({"year": "2019 OR 1=1"}))
        .await
        .unwrap_err();
    assert!(matches!(err, QueryError::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn injection_attempts_are_plain_values() {
    let fixture = Fixture::new(true);
    let backend = fixture.open(json!({}), with_fts()).await;
    let fallback = fixture.open(json!({}), DuckDbOptions::new()).await;
    for b in [&backend, &fallback] {
        for query in [
            "' OR 1=1 --",
            "quick'); DROP TABLE documents; --",
            "%' OR '%'='",
        ] {
            let out = run(b, QueryAction::Search, json!({"query": query}))
                .await
                .unwrap();
            assert!(
                ids(&out).iter().all(|id| ["d1", "d2"].contains(id)),
                "{query}: {out:?}"
            );
        }
    }
    let err = run(&backend, QueryAction::Get, json!({"id": "d1' OR '1'='1"}))
        .await
        .unwrap_err();
    assert!(matches!(err, QueryError::NotFound { .. }), "{err}");
    let out = run(
        &backend,
        QueryAction::Filter,
        json!({"category": "x' OR '1'='1"}),
    )
    .await
    .unwrap();
    assert_eq!(out["total"], 0);
    let err = run(
        &backend,
        QueryAction::Stats,
        json!({"group_by": "category; DROP TABLE documents"}),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, QueryError::InvalidArgument { .. }), "{err}");
    let err = run(
        &backend,
        QueryAction::Filter,
        json!({"category = 1 OR 1": "x"}),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, QueryError::InvalidArgument { .. }), "{err}");
    // Configuration cannot smuggle SQL in either.
    let bad = json!({
        "db_path": fixture.db.to_str().unwrap(),
        "table_name": "documents; DROP TABLE documents",
        "default_order_by": "(SELECT 1)",
        "filter_fields": {"x": "1=1 OR category = ?"},
    });
    let problems =
        QueryConfig::from_backend_config(bad.as_object().unwrap(), "/".as_ref()).unwrap_err();
    assert_eq!(problems.len(), 3, "{problems:?}");
    // The table is intact (and the backend never writes: it opens read-only).
    let out = run(&backend, QueryAction::Stats, json!({})).await.unwrap();
    assert_eq!(out["total"], 5);
}

#[tokio::test]
async fn limits_are_integers_from_1_to_100() {
    let fixture = Fixture::new(true);
    let backend = fixture.open(json!({}), with_fts()).await;
    for bad in [json!(0), json!(101), json!(-1), json!("5"), json!(2.5)] {
        let err = run(
            &backend,
            QueryAction::Search,
            json!({"query": "fox", "limit": bad}),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, QueryError::InvalidArgument { ref field, .. } if field == "limit"),
            "{bad}: {err}"
        );
        let err = run(&backend, QueryAction::Filter, json!({"limit": bad}))
            .await
            .unwrap_err();
        assert!(
            matches!(err, QueryError::InvalidArgument { .. }),
            "{bad}: {err}"
        );
    }
    let out = run(&backend, QueryAction::Filter, json!({"limit": 1}))
        .await
        .unwrap();
    assert_eq!(ids(&out).len(), 1);
    assert_eq!(out["total"], 5);
    let out = run(
        &backend,
        QueryAction::Search,
        json!({"query": "fox", "limit": 100}),
    )
    .await
    .unwrap();
    assert_eq!(out["total"], 2);
    // A blank query asks for nothing.
    let out = run(&backend, QueryAction::Search, json!({"query": "   "}))
        .await
        .unwrap();
    assert_eq!(Value::Object(out), json!({"results": [], "total": 0}));
}

#[tokio::test]
async fn vector_search_embeds_at_the_configured_endpoint_only() {
    let llm = within(LlmStandIn::start()).await.unwrap();
    let fixture = Fixture::new(false);
    let embedding_config =
        json!({"embedding": {"provider": "openai", "url": llm.base_url(), "model": "stand-in"}});
    let backend = fixture.open(embedding_config, DuckDbOptions::new()).await;
    assert!(backend.actions().contains(&QueryAction::VectorSearch));
    let out = run(
        &backend,
        QueryAction::VectorSearch,
        json!({"query": "beta"}),
    )
    .await
    .unwrap();
    let results = out["results"].as_array().unwrap();
    // d4's vector has another length and d5 has none: both skipped.
    assert_eq!(out["total"], 3);
    assert_eq!(results[0]["id"], "d2");
    let similarities: Vec<f64> = results
        .iter()
        .map(|r| r["similarity"].as_f64().unwrap())
        .collect();
    assert!((similarities[0] - 1.0).abs() < 1e-6, "{similarities:?}");
    assert!(
        similarities.windows(2).all(|w| w[0] >= w[1]),
        "{similarities:?}"
    );
    let out = run(
        &backend,
        QueryAction::VectorSearch,
        json!({"query": "alpha", "limit": 1}),
    )
    .await
    .unwrap();
    assert_eq!(ids(&out), ["d1"]);
    let requests = llm.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|r| r.path == "/v1/embeddings"));
    // The payload cannot choose the endpoint (the original's SSRF).
    let err = run(
        &backend,
        QueryAction::VectorSearch,
        json!({"query": "alpha", "embedding": {"ollama_url": "http://169.254.169.254"}}),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, QueryError::InvalidArgument { .. }), "{err}");
    // Without an embedding endpoint the action is not offered.
    let plain = fixture.open(json!({}), DuckDbOptions::new()).await;
    assert!(!plain.actions().contains(&QueryAction::VectorSearch));
    let err = run(&plain, QueryAction::VectorSearch, json!({"query": "alpha"}))
        .await
        .unwrap_err();
    assert!(matches!(err, QueryError::Unsupported { .. }), "{err}");
}

#[tokio::test]
async fn open_reports_a_missing_table_or_columns() {
    let fixture = Fixture::new(false);
    let err = within(DuckDbBackend::open_with(
        fixture.config(json!({"table_name": "nothing"})),
        DuckDbOptions::new(),
    ))
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("no table or view named 'nothing'"),
        "{err}"
    );
    let err = within(DuckDbBackend::open_with(
        fixture.config(json!({"result_columns": ["id", "colour"], "stats_groups": ["shape"]})),
        DuckDbOptions::new(),
    ))
    .await
    .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("colour (backend_config.result_columns[1])"),
        "{message}"
    );
    assert!(
        message.contains("shape (backend_config.stats_groups[0])"),
        "{message}"
    );
    let err = within(DuckDbBackend::open_with(
        fixture.config(json!({"db_path": "/nonexistent/x.duckdb"})),
        DuckDbOptions::new(),
    ))
    .await
    .unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[tokio::test]
async fn views_and_writers_between_queries() {
    let fixture = Fixture::new(true);
    let backend = fixture.open(json!({}), with_fts()).await;
    run(&backend, QueryAction::Search, json!({"query": "fox"}))
        .await
        .unwrap();
    // Each operation closes its read-only connection, so a writer can open the file
    // between queries and its changes are seen by the next one.
    {
        let conn = Connection::open(&fixture.db).unwrap();
        conn.execute_batch(
            "INSERT INTO documents (id, title, category, year) VALUES ('d6', 'New', 'legal', 2025);
             CREATE VIEW recent AS SELECT * FROM documents WHERE year >= 2021;",
        )
        .unwrap();
    }
    let out = run(&backend, QueryAction::Filter, json!({"category": "legal"}))
        .await
        .unwrap();
    assert_eq!(ids(&out), ["d6", "d3"]);
    // A view: no rowid and no FTS index, so filter orders by id and search uses ILIKE.
    let view = fixture
        .open(
            json!({"table_name": "recent", "default_order_by": null}),
            with_fts(),
        )
        .await;
    assert!(!view.has_fts());
    let out = run(&view, QueryAction::Filter, json!({})).await.unwrap();
    assert_eq!(ids(&out), ["d1", "d2", "d4", "d6"]);
    let out = run(&view, QueryAction::Search, json!({"query": "quick"}))
        .await
        .unwrap();
    assert_eq!(ids(&out), ["d2", "d1"]);
}

#[test]
fn options_read_the_extension_from_the_environment() {
    // scripts/test sets the variable; the options pick it up.
    let options = DuckDbOptions::from_env();
    assert_eq!(
        options.fts_extension.as_deref(),
        Some(fts_extension().as_path())
    );
    assert_eq!(DuckDbOptions::new().fts_extension, None::<PathBuf>);
    // backend_config.fts_extension wins, relative to the config file's directory.
    let map = json!({"fts_extension": "ext/fts.duckdb_extension"});
    let options =
        DuckDbOptions::from_backend_config(map.as_object().unwrap(), "/etc/loom".as_ref()).unwrap();
    assert_eq!(
        options.fts_extension.as_deref(),
        Some(std::path::Path::new("/etc/loom/ext/fts.duckdb_extension"))
    );
    let options = DuckDbOptions::from_backend_config(&Map::new(), "/".as_ref()).unwrap();
    assert_eq!(options, DuckDbOptions::from_env());
    let problem = DuckDbOptions::from_backend_config(
        json!({"fts_extension": 3}).as_object().unwrap(),
        "/".as_ref(),
    )
    .unwrap_err();
    assert_eq!(problem.key_path, "backend_config.fts_extension");
}
