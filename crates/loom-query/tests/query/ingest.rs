//! `ingest`: JSONL and CSV into a table with an FTS index; errors name the bad line.

use loom_core::config::QueryAction;
use loom_query::{IngestError, IngestOptions, IngestSource, QueryConfig, SqliteBackend, ingest};
use serde_json::json;

use crate::common::{Fixture, ids, run, within};

fn options(fts: &[&str]) -> IngestOptions {
    let mut o = IngestOptions::default();
    o.fts_fields = fts.iter().map(|s| (*s).to_owned()).collect();
    o
}

#[tokio::test]
async fn jsonl_ingest_infers_types_and_builds_fts() {
    let f = Fixture::new();
    let report = within(ingest(
        &f.db,
        "documents",
        IngestSource::Jsonl(f.jsonl.clone()),
        options(&["full_text", "summary"]),
    ))
    .await
    .unwrap();
    assert_eq!(report.rows, 6);
    assert_eq!(report.table, "documents");
    assert!(report.fts);
    let types: Vec<(&str, &str)> = report
        .columns
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        types,
        [
            ("id", "TEXT"),
            ("title", "TEXT"),
            ("category", "TEXT"),
            ("year", "INTEGER"),
            ("score", "REAL"),
            ("has_attachment", "INTEGER"),
            ("tags", "TEXT"),
            ("summary", "TEXT"),
            ("full_text", "TEXT"),
        ]
    );
    // Without replace, a second ingest refuses; with it, the table is rebuilt.
    let again = within(ingest(
        &f.db,
        "documents",
        IngestSource::Jsonl(f.jsonl.clone()),
        options(&[]),
    ))
    .await;
    assert!(
        matches!(again, Err(IngestError::TableExists { .. })),
        "{again:?}"
    );
    assert!(again.unwrap_err().to_string().contains("pass replace"));
    let mut replace = options(&[]);
    replace.replace = true;
    let report = within(ingest(
        &f.db,
        "documents",
        IngestSource::Jsonl(f.jsonl.clone()),
        replace,
    ))
    .await
    .unwrap();
    assert!(!report.fts);
    assert_eq!(f.row_count(), 6);
}

#[tokio::test]
async fn csv_ingest_handles_quotes_and_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("docs.csv");
    std::fs::write(
        &csv,
        "id,title,year,score,full_text\r\n1,\"Budget, revised\",2024,0.5,\"The \"\"budget\"\" text\nover two lines\"\r\n2,Other,2023,,plain text\r\n",
    )
    .unwrap();
    let db = dir.path().join("csv.db");
    let source = IngestSource::from_path(&csv).unwrap();
    let report = within(ingest(&db, "docs", source, options(&["full_text"])))
        .await
        .unwrap();
    assert_eq!(report.rows, 2);
    let types: Vec<&str> = report.columns.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(types, ["INTEGER", "TEXT", "INTEGER", "REAL", "TEXT"]);
    let config = QueryConfig::from_backend_config(
        json!({"db_path": "csv.db", "table_name": "docs", "result_columns": ["id", "title", "score"], "fts_fields": ["full_text"]})
            .as_object()
            .unwrap(),
        dir.path(),
    )
    .unwrap();
    let b = within(SqliteBackend::open(config)).await.unwrap();
    let out = run(&b, QueryAction::Search, json!({"query": "budget"}))
        .await
        .unwrap();
    assert_eq!(out["results"][0]["title"], "Budget, revised");
    assert_eq!(out["results"][0]["id"], 1);
    let out = run(&b, QueryAction::Get, json!({"id": "2"})).await.unwrap();
    assert_eq!(
        out["document"],
        json!({"id": 2, "title": "Other", "score": null, "full_text": "plain text"})
    );
}

async fn ingest_error(name: &str, text: &str, id_column: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    let mut o = options(&[]);
    o.id_column = id_column.to_owned();
    let err = within(ingest(
        &dir.path().join("x.db"),
        "t",
        IngestSource::from_path(&path).unwrap(),
        o,
    ))
    .await
    .unwrap_err();
    let text = err.to_string();
    // Nothing was written.
    if dir.path().join("x.db").exists() {
        let conn = rusqlite::Connection::open(dir.path().join("x.db")).unwrap();
        let tables: i64 = conn
            .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
            .unwrap();
        assert_eq!(tables, 0, "{text}");
    }
    text.replace(&format!("{}", path.display()), name)
}

#[tokio::test]
async fn bad_records_are_named_by_line() {
    let jsonl = "{\"id\": 1}\n\n{\"id\": 2\n";
    assert!(
        ingest_error("a.jsonl", jsonl, "id")
            .await
            .starts_with("a.jsonl:3: not valid JSON")
    );
    let jsonl = "{\"id\": 1}\n[1, 2]\n";
    assert_eq!(
        ingest_error("a.jsonl", jsonl, "id").await,
        "a.jsonl:2: expected a JSON object, found a list"
    );
    let jsonl = "{\"id\": 1}\n{\"id\": 1}\n";
    assert_eq!(
        ingest_error("a.jsonl", jsonl, "id").await,
        "a.jsonl:2: duplicate id 1"
    );
    let jsonl = "{\"id\": 1}\n{\"title\": \"no id\"}\n";
    assert_eq!(
        ingest_error("a.jsonl", jsonl, "id").await,
        "a.jsonl:2: the record has no 'id'"
    );
    let jsonl = "{\"id\": 1, \"bad key\": 2}\n";
    assert!(
        ingest_error("a.jsonl", jsonl, "id")
            .await
            .starts_with("a.jsonl:1: key 'bad key' is not a valid identifier")
    );
    let csv = "id,title\n1,a\n2,b,c\n";
    assert_eq!(
        ingest_error("a.csv", csv, "id").await,
        "a.csv:3: 3 fields, but the header has 2 columns"
    );
    let csv = "id,title\n1,\"open\n";
    assert_eq!(
        ingest_error("a.csv", csv, "id").await,
        "a.csv:2: a quoted field is never closed"
    );
    let csv = "title\nx\n";
    assert!(
        ingest_error("a.csv", csv, "id")
            .await
            .starts_with("a.csv: the records have no 'id'")
    );
}

#[tokio::test]
async fn fts_fields_must_be_columns() {
    let f = Fixture::new();
    let err = within(ingest(
        &f.db,
        "documents",
        IngestSource::Jsonl(f.jsonl.clone()),
        options(&["body"]),
    ))
    .await
    .unwrap_err();
    assert!(
        err.to_string().contains("no column body in the data"),
        "{err}"
    );
    let err = within(ingest(
        &f.db,
        "bad name",
        IngestSource::Jsonl(f.jsonl.clone()),
        options(&[]),
    ))
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            IngestError::Option {
                option: "table",
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test]
async fn options_from_config_index_filter_columns() {
    let f = Fixture::new();
    let config = f.config(json!({}));
    let o = IngestOptions::from_config(&config);
    assert_eq!(o.fts_fields, ["full_text", "summary"]);
    assert_eq!(
        o.index_columns,
        [
            "category",
            "year",
            "score",
            "has_attachment",
            "title",
            "summary"
        ]
    );
    within(ingest(
        &f.db,
        "documents",
        IngestSource::Jsonl(f.jsonl.clone()),
        o,
    ))
    .await
    .unwrap();
    let b = within(SqliteBackend::open(config)).await.unwrap();
    let out = run(&b, QueryAction::Filter, json!({"category": "legal"}))
        .await
        .unwrap();
    assert_eq!(ids(&out), ["b2", "b1"]);
}
