//! Bad input: injection attempts in every argument, FTS syntax, unknown names, wrong
//! types, out-of-range limits and blank queries all end in no rows or a clear error,
//! and the table is intact afterwards.

use loom_core::config::QueryAction;
use loom_query::QueryError;
use serde_json::{Value, json};

use crate::common::{Fixture, ids, invalid, run};

const ATTACKS: [&str; 8] = [
    "' OR 1=1 --",
    "\"; DROP TABLE documents; --",
    "x'); DELETE FROM documents; --",
    "1; UPDATE documents SET title = 'pwned'",
    "NEAR(budget review, 2)",
    "budget*",
    "\"budget",
    "title: budget OR full_text : *",
];

fn ok_or_clear(
    action: QueryAction,
    args: &Value,
    result: &Result<serde_json::Map<String, Value>, QueryError>,
) {
    match result {
        Ok(_) | Err(QueryError::InvalidArgument { .. } | QueryError::NotFound { .. }) => {}
        Err(other) => panic!("{} {args}: unexpected error {other:?}", action.as_str()),
    }
}

#[tokio::test]
async fn injection_attempts_in_every_argument_leave_the_table_intact() {
    let (f, b) = Fixture::backend().await;
    for attack in ATTACKS {
        let cases = [
            (QueryAction::Search, json!({"query": attack})),
            (QueryAction::Filter, json!({"category": attack})),
            (QueryAction::Filter, json!({"title_like": attack})),
            (QueryAction::Filter, json!({"min_year": attack})),
            (QueryAction::Filter, json!({"has_attachment": attack})),
            (
                QueryAction::Filter,
                json!({"category": "finance", "limit": attack}),
            ),
            (QueryAction::Filter, json!({attack: "x"})),
            (QueryAction::Stats, json!({"group_by": attack})),
            (QueryAction::Get, json!({"id": attack})),
            (QueryAction::Get, json!({"document_id": attack})),
            (
                QueryAction::Search,
                json!({"query": "budget", "action": attack}),
            ),
        ];
        for (action, args) in cases {
            let result = run(&b, action, args.clone()).await;
            ok_or_clear(action, &args, &result);
            if let Ok(out) = &result
                && action == QueryAction::Filter
            {
                assert_eq!(out["total"], 0, "{args}: a string value matched rows");
            }
        }
    }
    assert_eq!(f.row_count(), 6);
    let out = run(&b, QueryAction::Get, json!({"id": "a1"}))
        .await
        .unwrap();
    assert_eq!(out["document"]["title"], "Budget review 2024");
    let out = run(&b, QueryAction::Search, json!({"query": "budget"}))
        .await
        .unwrap();
    assert_eq!(ids(&out), ["a1", "a2"]);
}

#[tokio::test]
async fn fts_syntax_in_queries_is_searched_as_words() {
    let (_f, b) = Fixture::backend().await;
    for (query, expected) in [
        ("NEAR(budget", vec!["a1", "a2"]),
        ("budget*", vec!["a1", "a2"]),
        ("\"budget", vec!["a1", "a2"]),
        ("summary:budget", vec!["a1", "a2"]),
        ("budget NOT", vec!["a1", "a2"]),
        ("-budget", vec!["a1", "a2"]),
        ("{summary}: budget", vec!["a1", "a2"]),
        ("*", vec![]),
        (":", vec![]),
        ("\"", vec![]),
        ("(", vec![]),
        ("^", vec![]),
    ] {
        let out = run(&b, QueryAction::Search, json!({"query": query})).await;
        let out = out.unwrap_or_else(|e| panic!("{query}: {e}"));
        assert_eq!(ids(&out), expected, "{query}");
    }
}

#[tokio::test]
async fn unknown_arguments_are_named_with_the_allowed_ones() {
    let (_f, b) = Fixture::backend().await;
    let (field, message) =
        invalid(run(&b, QueryAction::Filter, json!({"categroy": "legal"})).await);
    assert_eq!(field, "categroy");
    assert!(message.contains("did you mean 'category'?"), "{message}");
    assert!(message.contains("allowed: category, min_year"), "{message}");
    let (field, _) = invalid(run(&b, QueryAction::Filter, json!({"a": 1, "b": 2})).await);
    assert_eq!(field, "a, b");
    let (field, message) = invalid(
        run(
            &b,
            QueryAction::Search,
            json!({"query": "x", "sql": "DROP"}),
        )
        .await,
    );
    assert_eq!(
        (field.as_str(), message.as_str()),
        ("sql", "unknown argument (allowed: query, limit)")
    );
    let (field, _) = invalid(
        run(
            &b,
            QueryAction::Stats,
            json!({"group_by": "category", "having": "1"}),
        )
        .await,
    );
    assert_eq!(field, "having");
    // `action` is accepted only when it names the tool's own action.
    assert!(
        run(
            &b,
            QueryAction::Search,
            json!({"query": "budget", "action": "search"})
        )
        .await
        .is_ok()
    );
    let (field, _) = invalid(
        run(
            &b,
            QueryAction::Search,
            json!({"query": "budget", "action": "get"}),
        )
        .await,
    );
    assert_eq!(field, "action");
}

#[tokio::test]
async fn wrong_types_are_rejected() {
    let (_f, b) = Fixture::backend().await;
    for (action, args, field, expected) in [
        (
            QueryAction::Search,
            json!({"query": 5}),
            "query",
            "expected a string, found an integer",
        ),
        (
            QueryAction::Search,
            json!({"query": ["budget"]}),
            "query",
            "expected a string, found a list",
        ),
        (
            QueryAction::Filter,
            json!({"min_year": "2020"}),
            "min_year",
            "expected a number, found a string",
        ),
        (
            QueryAction::Filter,
            json!({"exact_year": 2020.5}),
            "exact_year",
            "expected an integer, found a number",
        ),
        (
            QueryAction::Filter,
            json!({"has_attachment": 1}),
            "has_attachment",
            "expected a boolean, found an integer",
        ),
        (
            QueryAction::Filter,
            json!({"category": {"$ne": 1}}),
            "category",
            "expected a string, found an object",
        ),
        (
            QueryAction::Stats,
            json!({"group_by": 1}),
            "group_by",
            "expected a string, found an integer",
        ),
        (
            QueryAction::Get,
            json!({"id": true}),
            "id",
            "expected a string or an integer, found a boolean",
        ),
        (QueryAction::Get, json!({"id": ""}), "id", "the id is empty"),
    ] {
        let (f, message) = invalid(run(&b, action, args.clone()).await);
        assert_eq!(f, field, "{args}");
        assert_eq!(message, expected, "{args}");
    }
    let err = run(&b, QueryAction::Filter, json!({"min_year": "2020"}))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid argument 'min_year': expected a number, found a string"
    );
}

#[tokio::test]
async fn limits_outside_one_to_a_hundred_are_rejected() {
    let (_f, b) = Fixture::backend().await;
    for limit in [
        json!(0),
        json!(101),
        json!(-1),
        json!("5"),
        json!(2.5),
        json!(1e9),
    ] {
        let (field, message) = invalid(run(&b, QueryAction::Filter, json!({"limit": limit})).await);
        assert_eq!(field, "limit");
        assert!(message.contains("1 to 100"), "{limit}: {message}");
        let (field, _) = invalid(
            run(
                &b,
                QueryAction::Search,
                json!({"query": "budget", "limit": limit}),
            )
            .await,
        );
        assert_eq!(field, "limit");
    }
    for limit in [1, 100] {
        assert!(
            run(&b, QueryAction::Filter, json!({"limit": limit}))
                .await
                .is_ok()
        );
    }
    let out = run(&b, QueryAction::Filter, json!({"limit": null}))
        .await
        .unwrap();
    assert_eq!(out["total"], 6);
}

#[tokio::test]
async fn blank_queries_answer_no_results() {
    let (_f, b) = Fixture::backend().await;
    for query in ["", "   ", "\n\t"] {
        let out = run(&b, QueryAction::Search, json!({"query": query}))
            .await
            .unwrap();
        assert_eq!(Value::Object(out), json!({"results": [], "total": 0}));
    }
    let (field, _) = invalid(run(&b, QueryAction::Search, json!({})).await);
    assert_eq!(field, "query");
    let long = "a".repeat(1001);
    let (field, message) = invalid(run(&b, QueryAction::Search, json!({"query": long})).await);
    assert_eq!(field, "query");
    assert!(message.contains("maximum of 1000"), "{message}");
}
