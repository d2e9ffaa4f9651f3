//! `backend_config` validation.

use loom_query::config::{FilterOp, FilterType, QueryConfig};
use serde_json::{Value, json};

fn parse(v: Value) -> Result<QueryConfig, Vec<loom_query::ConfigProblem>> {
    QueryConfig::from_backend_config(v.as_object().unwrap(), "/base".as_ref())
}

#[test]
fn defaults_follow_the_original_backend() {
    let c = parse(json!({"db_path": "data/docs.db"})).unwrap();
    assert_eq!(c.db_path, std::path::Path::new("/base/data/docs.db"));
    assert_eq!(c.table_name.as_str(), "documents");
    assert_eq!(c.id_column.as_str(), "id");
    let names = |v: &[loom_query::config::Ident]| {
        v.iter().map(|i| i.as_str().to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(names(&c.result_columns), ["id"]);
    assert_eq!(
        c.full_text_column.as_ref().map(|i| i.as_str()),
        Some("full_text")
    );
    assert_eq!(names(&c.fts_fields), ["full_text", "summary"]);
    assert!(
        c.filter_fields.is_empty() && c.stats_groups.is_empty() && c.default_order_by.is_empty()
    );
    assert_eq!(c.stats_aggregates.len(), 1);
    assert_eq!(c.stats_aggregates[0].sql(), "COUNT(*) AS \"record_count\"");
    assert_eq!(c.embedding_column.as_str(), "embedding");
    assert!(c.embedding.is_none());
    // A comma string works for fts_fields, and null disables the full-text column.
    let c = parse(
        json!({"db_path": "/abs.db", "fts_fields": "title, summary", "full_text_column": null}),
    )
    .unwrap();
    assert_eq!(c.db_path, std::path::Path::new("/abs.db"));
    assert_eq!(names(&c.fts_fields), ["title", "summary"]);
    assert!(c.full_text_column.is_none());
}

#[test]
fn db_path_is_required() {
    let problems = parse(json!({})).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].key_path, "backend_config.db_path");
}

#[test]
fn every_bad_key_is_reported_at_once() {
    let problems = parse(json!({
        "db_path": "d.db",
        "table_name": "documents; DROP TABLE documents",
        "id_column": "id\"",
        "result_columns": ["id", "title) FROM x --", 5],
        "json_columns": "tags,",
        "fts_fields": ["full_text", "full_text"],
        "filter_fields": {
            "min_score": "score >= ? OR 1=1",
            "ok": "score <= ?",
            "bad name": "x = ?",
            "limit": "x = ?",
            "no_placeholder": "score >= 5",
            "structured": {"column": "year", "op": "BETWEEN"},
        },
        "stats_groups": ["category", "1=1"],
        "stats_aggregates": ["COUNT(*)", "SUM(score) AS total", "group_concat(title) AS t", "AVG(score) AS category"],
        "default_order_by": "year DESC; DROP TABLE documents",
        "embedding": {"provider": "bedrock", "url": "file:///etc/passwd", "model": "m", "extra": 1},
        "tabel_name": "x",
    }))
    .unwrap_err();
    let paths: Vec<&str> = problems.iter().map(|p| p.key_path.as_str()).collect();
    for expected in [
        "backend_config.table_name",
        "backend_config.id_column",
        "backend_config.result_columns[1]",
        "backend_config.result_columns[2]",
        "backend_config.fts_fields[1]",
        "backend_config.filter_fields.min_score",
        "backend_config.filter_fields.bad name",
        "backend_config.filter_fields.limit",
        "backend_config.filter_fields.no_placeholder",
        "backend_config.filter_fields.structured",
        "backend_config.stats_groups[1]",
        "backend_config.stats_aggregates[0]",
        "backend_config.stats_aggregates[2]",
        "backend_config.stats_aggregates[3]",
        "backend_config.default_order_by",
        "backend_config.embedding.provider",
        "backend_config.embedding.url",
        "backend_config.embedding.extra",
        "backend_config.tabel_name",
    ] {
        assert!(
            paths.contains(&expected),
            "no problem at {expected}; got {paths:#?}"
        );
    }
    assert!(!paths.contains(&"backend_config.filter_fields.ok"));
    let typo = problems
        .iter()
        .find(|p| p.key_path == "backend_config.tabel_name")
        .unwrap();
    assert!(
        typo.message.contains("did you mean 'table_name'"),
        "{}",
        typo.message
    );
    let predicate = problems
        .iter()
        .find(|p| p.key_path.ends_with("min_score"))
        .unwrap();
    assert!(
        predicate.to_string().contains("score >= ? OR 1=1"),
        "{predicate}"
    );
}

#[test]
fn filter_templates_become_typed_fields() {
    let c = parse(json!({
        "db_path": "d.db",
        "filter_fields": {
            "min_score": "score >= ?",
            "category": "category = ?",
            "has_attachment": "has_attachment = ?",
            "flagged": "flag = CAST(? AS BOOLEAN)",
            "has_summary": "summary IS NOT NULL",
            "title_like": "title ILIKE ?",
            "exact_year": {"column": "year", "type": "integer"},
        },
    }))
    .unwrap();
    let f = |n: &str| c.filter_field(n).unwrap().clone();
    assert_eq!(
        (f("min_score").op, f("min_score").value_type),
        (FilterOp::Ge, FilterType::Number)
    );
    assert_eq!(f("category").value_type, FilterType::String);
    assert_eq!(f("has_attachment").value_type, FilterType::Boolean);
    assert_eq!(f("flagged").value_type, FilterType::Boolean);
    assert_eq!(
        (f("has_summary").op, f("has_summary").value_type),
        (FilterOp::IsNotNull, FilterType::Boolean)
    );
    assert_eq!(f("title_like").op, FilterOp::ILike);
    assert_eq!(
        (
            f("exact_year").column.as_str(),
            f("exact_year").op,
            f("exact_year").value_type
        ),
        ("year", FilterOp::Eq, FilterType::Integer)
    );
    // Config order is kept.
    let names: Vec<&str> = c.filter_fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names[0], "min_score");
    assert_eq!(names[6], "exact_year");
}

#[test]
fn embedding_settings_come_from_config() {
    let c = parse(json!({
        "db_path": "d.db",
        "embedding": {"provider": "ollama", "url": "http://localhost:11434", "model": "nomic-embed-text", "batch_size": 16},
    }))
    .unwrap();
    let e = c.embedding.unwrap();
    assert_eq!(e.endpoint(), "http://localhost:11434/api/embed");
    assert_eq!(e.batch_size(), 16);
    let problems =
        parse(json!({"db_path": "d.db", "embedding": {"provider": "openai"}})).unwrap_err();
    let paths: Vec<&str> = problems.iter().map(|p| p.key_path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "backend_config.embedding.url",
            "backend_config.embedding.model"
        ]
    );
}
