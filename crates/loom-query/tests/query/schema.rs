//! Input schemas and supported actions derived from the config alone.

use loom_core::config::QueryAction;
use loom_query::{QueryConfig, description, input_schema, supported_actions};
use serde_json::json;

use crate::common::backend_config;

fn config() -> QueryConfig {
    QueryConfig::from_backend_config(&backend_config("/x/d.db".as_ref()), "/".as_ref()).unwrap()
}

#[test]
fn search_and_vector_schemas_require_a_query() {
    let c = config();
    let s = input_schema(&c, QueryAction::Search);
    assert_eq!(s["required"], json!(["query"]));
    assert_eq!(s["properties"]["query"]["type"], "string");
    assert_eq!(s["properties"]["limit"]["maximum"], 100);
    assert_eq!(s["properties"]["limit"]["default"], 20);
    assert_eq!(s["additionalProperties"], false);
    let v = input_schema(&c, QueryAction::VectorSearch);
    assert_eq!(v["required"], json!(["query"]));
    assert_eq!(
        v["properties"]["query"]["description"],
        "Semantic search query"
    );
    assert_eq!(v["properties"]["limit"]["default"], 5);
}

#[test]
fn filter_schema_types_follow_the_fields() {
    let s = input_schema(&config(), QueryAction::Filter);
    assert!(s.get("required").is_none());
    let t = |k: &str| s["properties"][k]["type"].as_str().unwrap().to_owned();
    assert_eq!(t("category"), "string");
    assert_eq!(t("min_year"), "number");
    assert_eq!(t("min_score"), "number");
    assert_eq!(t("has_attachment"), "boolean");
    assert_eq!(t("has_summary"), "boolean");
    assert_eq!(t("exact_year"), "integer");
    assert_eq!(t("limit"), "integer");
    let keys: Vec<&String> = s["properties"].as_object().unwrap().keys().collect();
    assert_eq!(keys.first().map(|k| k.as_str()), Some("category"));
    assert_eq!(keys.last().map(|k| k.as_str()), Some("limit"));
}

#[test]
fn stats_schema_lists_groups_and_names_the_default() {
    let s = input_schema(&config(), QueryAction::Stats);
    assert_eq!(
        s["properties"]["group_by"]["enum"],
        json!(["category", "year"])
    );
    assert_eq!(
        s["properties"]["group_by"]["description"],
        "Column to group by. Allowed: category, year (default category)"
    );
}

#[test]
fn get_schema_requires_the_id_column() {
    let mut map = backend_config("/x/d.db".as_ref());
    map.insert("id_column".into(), json!("doc_id"));
    map.insert("result_columns".into(), json!(["doc_id"]));
    let c = QueryConfig::from_backend_config(&map, "/".as_ref()).unwrap();
    let s = input_schema(&c, QueryAction::Get);
    assert_eq!(s["required"], json!(["doc_id"]));
    assert_eq!(
        s["properties"]["doc_id"]["description"],
        "Record ID (doc_id)"
    );
    assert_eq!(
        description(&c, QueryAction::Get),
        "Get a single record from documents by ID"
    );
}

#[test]
fn supported_actions_follow_the_config() {
    let c = config();
    assert_eq!(
        supported_actions(&c),
        [
            QueryAction::Search,
            QueryAction::Filter,
            QueryAction::Stats,
            QueryAction::Get
        ]
    );
    let bare = QueryConfig::from_backend_config(
        json!({"db_path": "d"}).as_object().unwrap(),
        "/".as_ref(),
    )
    .unwrap();
    assert_eq!(
        supported_actions(&bare),
        [QueryAction::Search, QueryAction::Filter, QueryAction::Get]
    );
    let with_embedding = QueryConfig::from_backend_config(
        json!({"db_path": "d", "embedding": {"provider": "openai", "url": "http://127.0.0.1:9", "model": "m"}})
            .as_object()
            .unwrap(),
        "/".as_ref(),
    )
    .unwrap();
    assert!(supported_actions(&with_embedding).contains(&QueryAction::VectorSearch));
}
