//! The SQLite backend: every action's output shape and semantics.

use loom_core::config::QueryAction;
use loom_query::{QueryBackend, QueryError, SqliteBackend};
use serde_json::{Value, json};

use crate::common::{Fixture, ids, invalid, run, within};

#[tokio::test]
async fn search_ranks_by_bm25_and_returns_snippets() {
    let (_f, b) = Fixture::backend().await;
    assert!(b.has_fts());
    assert_eq!(b.kind(), "sqlite");
    let out = run(&b, QueryAction::Search, json!({"query": "budget"}))
        .await
        .unwrap();
    // a1 says "budget" five times in a short text, a2 once in a long one.
    assert_eq!(ids(&out), ["a1", "a2"]);
    assert_eq!(out["total"], 2);
    let results = out["results"].as_array().unwrap();
    let first = results[0].as_object().unwrap();
    let keys: Vec<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id", "title", "category", "year", "tags", "score", "snippet"
        ]
    );
    assert_eq!(
        first["tags"],
        json!(["budget", "review"]),
        "json_columns are parsed"
    );
    let s0 = first["score"].as_f64().unwrap();
    let s1 = results[1]["score"].as_f64().unwrap();
    assert!(s0 > s1 && s1 > 0.0, "scores {s0} > {s1} > 0");
    let snippet = first["snippet"].as_str().unwrap();
    assert!(
        snippet.contains("**budget**") || snippet.contains("**Budget**"),
        "{snippet}"
    );
}

#[tokio::test]
async fn search_matches_any_word_stemmed_and_respects_limit() {
    let (_f, b) = Fixture::backend().await;
    // Porter stemming: "outages" finds "outage"; OR semantics: either word matches.
    let out = run(
        &b,
        QueryAction::Search,
        json!({"query": "outages settlement"}),
    )
    .await
    .unwrap();
    let mut found = ids(&out);
    found.sort();
    assert_eq!(found, ["b2", "c1"]);
    let out = run(
        &b,
        QueryAction::Search,
        json!({"query": "budget", "limit": 1}),
    )
    .await
    .unwrap();
    assert_eq!(ids(&out), ["a1"]);
    let out = run(&b, QueryAction::Search, json!({"query": "zebra"}))
        .await
        .unwrap();
    assert_eq!(out["total"], 0);
}

#[tokio::test]
async fn search_falls_back_to_like_without_an_fts_index() {
    let f = Fixture::new();
    f.ingest(None, false).await;
    let b = within(SqliteBackend::open(f.config(json!({}))))
        .await
        .unwrap();
    assert!(!b.has_fts());
    let out = run(&b, QueryAction::Search, json!({"query": "Budget"}))
        .await
        .unwrap();
    // LIKE over fts_fields, newest id first, score 0.
    assert_eq!(ids(&out), ["a2", "a1"]);
    let first = out["results"][0].as_object().unwrap();
    assert_eq!(first["score"], 0.0);
    assert!(first["snippet"].as_str().unwrap().contains("**budget**"));
    // LIKE wildcards in the query are literal.
    let out = run(&b, QueryAction::Search, json!({"query": "%"}))
        .await
        .unwrap();
    assert_eq!(out["total"], 0);
    let out = run(&b, QueryAction::Search, json!({"query": "_"}))
        .await
        .unwrap();
    assert_eq!(out["total"], 0);
}

#[tokio::test]
async fn filter_applies_typed_conditions_and_counts_every_match() {
    let (_f, b) = Fixture::backend().await;
    // ORDER BY year DESC, id (default_order_by).
    let out = run(&b, QueryAction::Filter, json!({})).await.unwrap();
    assert_eq!(ids(&out), ["a1", "b2", "c2", "a2", "b1", "c1"]);
    assert_eq!(out["total"], 6);
    let out = run(&b, QueryAction::Filter, json!({"category": "finance"}))
        .await
        .unwrap();
    assert_eq!(ids(&out), ["a1", "a2"]);
    let out = run(
        &b,
        QueryAction::Filter,
        json!({"min_year": 2023, "limit": 2}),
    )
    .await
    .unwrap();
    assert_eq!(ids(&out), ["a1", "b2"]);
    assert_eq!(out["total"], 4, "total counts all matches, not the page");
    let out = run(
        &b,
        QueryAction::Filter,
        json!({"min_score": 0.7, "has_attachment": true}),
    )
    .await
    .unwrap();
    assert_eq!(ids(&out), ["a1", "b1"]);
    let out = run(
        &b,
        QueryAction::Filter,
        json!({"exact_year": 2024, "category": "legal"}),
    )
    .await
    .unwrap();
    assert_eq!(ids(&out), ["b2"]);
    let out = run(&b, QueryAction::Filter, json!({"title_like": "%review%"}))
        .await
        .unwrap();
    assert_eq!(ids(&out), ["a1", "b1"]);
    // Null means "not filtered".
    let out = run(&b, QueryAction::Filter, json!({"category": null}))
        .await
        .unwrap();
    assert_eq!(out["total"], 6);
    let keys: Vec<&str> = out["results"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["id", "title", "category", "year", "tags"]);
}

#[tokio::test]
async fn null_test_filters_take_a_flag() {
    let (_f, b) = Fixture::backend().await;
    let out = run(&b, QueryAction::Filter, json!({"has_summary": false}))
        .await
        .unwrap();
    assert_eq!(ids(&out), ["b2"]);
    let out = run(&b, QueryAction::Filter, json!({"has_summary": true}))
        .await
        .unwrap();
    assert_eq!(out["total"], 5);
}

#[tokio::test]
async fn stats_group_by_whitelisted_columns_with_a_deterministic_default() {
    let (_f, b) = Fixture::backend().await;
    // B14: no group_by means the first configured group, every time.
    for _ in 0..3 {
        let out = run(&b, QueryAction::Stats, json!({})).await.unwrap();
        let rows = out["results"].as_array().unwrap();
        assert_eq!(out["total"], 6);
        // Ordered by the first aggregate (record_count) descending, ties by group.
        let groups: Vec<&str> = rows
            .iter()
            .map(|r| r["category"].as_str().unwrap())
            .collect();
        assert_eq!(groups, ["engineering", "finance", "legal"]);
        let first = rows[0].as_object().unwrap();
        let keys: Vec<&str> = first.keys().map(String::as_str).collect();
        assert_eq!(keys, ["category", "record_count", "avg_score", "latest"]);
        assert_eq!(first["record_count"], 2);
        assert_eq!(first["latest"], 2024);
        assert!((first["avg_score"].as_f64().unwrap() - 0.675).abs() < 1e-9);
    }
    let out = run(&b, QueryAction::Stats, json!({"group_by": "year"}))
        .await
        .unwrap();
    let top = &out["results"][0];
    assert_eq!(
        (top["year"].clone(), top["record_count"].clone()),
        (json!(2024), json!(3))
    );
    assert!((top["avg_score"].as_f64().unwrap() - 0.5).abs() < 1e-9);
    let (field, message) = invalid(run(&b, QueryAction::Stats, json!({"group_by": "title"})).await);
    assert_eq!(field, "group_by");
    assert!(message.contains("allowed: category, year"), "{message}");
}

#[tokio::test]
async fn stats_without_groups_is_unsupported() {
    let f = Fixture::new();
    f.ingest(None, true).await;
    let b = within(SqliteBackend::open(f.config(json!({"stats_groups": []}))))
        .await
        .unwrap();
    assert!(!b.actions().contains(&QueryAction::Stats));
    let err = run(&b, QueryAction::Stats, json!({})).await.unwrap_err();
    assert!(matches!(err, QueryError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("stats_groups"), "{err}");
}

#[tokio::test]
async fn get_returns_the_document_with_full_text() {
    let (_f, b) = Fixture::backend().await;
    let out = run(&b, QueryAction::Get, json!({"id": "b1"}))
        .await
        .unwrap();
    let doc = out["document"].as_object().unwrap();
    let keys: Vec<&str> = doc.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["id", "title", "category", "year", "tags", "full_text"]
    );
    assert_eq!(doc["full_text"], "Liability clause in the contract.");
    assert_eq!(doc["tags"], json!(["contract"]));
    // The legacy argument still works.
    let out = run(&b, QueryAction::Get, json!({"document_id": "c2"}))
        .await
        .unwrap();
    assert_eq!(out["document"]["id"], "c2");
}

#[tokio::test]
async fn get_of_an_unknown_id_is_not_found() {
    let (_f, b) = Fixture::backend().await;
    let err = run(&b, QueryAction::Get, json!({"id": "zz"}))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, QueryError::NotFound { id } if id == "zz"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "record not found: zz");
    let (field, _) = invalid(run(&b, QueryAction::Get, json!({})).await);
    assert_eq!(field, "id");
}

#[tokio::test]
async fn open_reports_every_missing_column() {
    let f = Fixture::new();
    f.ingest(None, true).await;
    let config =
        f.config(json!({"result_columns": ["id", "nope"], "stats_groups": ["missing_group"]}));
    let err = within(SqliteBackend::open(config)).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("nope (backend_config.result_columns[1])"),
        "{text}"
    );
    assert!(
        text.contains("missing_group (backend_config.stats_groups[0])"),
        "{text}"
    );
    let missing_table = f.config(json!({"table_name": "other"}));
    let err = within(SqliteBackend::open(missing_table))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("no table or view named 'other'"),
        "{err}"
    );
}

#[tokio::test]
async fn backends_are_shareable_trait_objects() {
    let (_f, b) = Fixture::backend().await;
    let shared: std::sync::Arc<dyn QueryBackend> = std::sync::Arc::new(b);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let backend = std::sync::Arc::clone(&shared);
        tasks.push(tokio::spawn(async move {
            let args: Value = if i % 2 == 0 {
                json!({"query": "budget"})
            } else {
                json!({"category": "legal"})
            };
            let action = if i % 2 == 0 {
                QueryAction::Search
            } else {
                QueryAction::Filter
            };
            backend
                .execute(action, args.as_object().unwrap())
                .await
                .map(|o| o["total"].clone())
        }));
    }
    for t in tasks {
        assert_eq!(within(t).await.unwrap().unwrap(), 2);
    }
}
