//! Tool discovery (gateway spec §3.2–§3.4, §12 items 19–42) with Loom's fixes: nested
//! goal-context schemas, required keys only for unconditional stages, types looked up by
//! the mapping's target field, routing margins, fixed query actions, and argument
//! validation with every violation reported.

use std::path::Path;
use std::time::Duration;

use loom_core::config::{GatewayConfig, QueryAction, load_gateway};
use loom_core::message::ModelTier;
use loom_gateway::catalog::{Catalog, Dispatch, GatewayTool, ToolHints};
use serde_json::{Map, Value, json};

/// Writes `files` into a fresh directory and loads `mcp.yaml` from it.
fn gateway(files: &[(&str, &str)]) -> GatewayConfig {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&path, text).expect("write config");
    }
    load_gateway(&dir.path().join("mcp.yaml")).unwrap_or_else(|e| panic!("config loads: {e}"))
}

fn docman() -> GatewayConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/docman/mcp.yaml");
    load_gateway(&path).unwrap_or_else(|e| panic!("docman loads: {e}"))
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

#[track_caller]
fn tool<'a>(catalog: &'a Catalog, name: &str) -> &'a GatewayTool {
    catalog
        .get(name)
        .unwrap_or_else(|| panic!("no tool '{name}'"))
}

fn schema(t: &GatewayTool) -> Value {
    Value::Object((*t.input_schema).clone())
}

const PROCESSOR: &str = "worker_kind: processor\nprocessing_backend: echo\n";

// -------------------------------------------------------------------------------------------
// Order and the example
// -------------------------------------------------------------------------------------------

#[test]
fn docman_tools_are_workers_then_pipelines_in_config_order() {
    let catalog = Catalog::from_config(&docman());
    let names: Vec<&str> = catalog.tools().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "text_stats",
            "keywords",
            "echo",
            "ingest_document",
            "docs_search",
            "docs_filter",
            "docs_stats",
            "docs_get"
        ]
    );
    assert_eq!(catalog.len(), 8);
    assert!(!catalog.is_empty());
    assert!(catalog.get("nope").is_none());
    // Building twice gives the same catalog (deterministic order and schemas).
    let again = Catalog::from_config(&docman());
    for (a, b) in catalog.tools().iter().zip(again.tools()) {
        assert_eq!(a.name, b.name);
        assert_eq!(a.input_schema, b.input_schema);
        assert_eq!(a.dispatch, b.dispatch);
    }
}

#[test]
fn docman_descriptions_come_from_entry_then_worker() {
    let catalog = Catalog::from_config(&docman());
    assert_eq!(
        tool(&catalog, "text_stats").description,
        "Word count, character count and the reversed text of a string."
    );
    assert_eq!(
        tool(&catalog, "echo").description,
        "Return the payload unchanged (handy to test the wiring)."
    );
    assert_eq!(
        tool(&catalog, "ingest_document").description,
        "Statistics and keywords of a text, then a short report."
    );
}

#[test]
fn empty_config_has_no_tools() {
    let catalog = Catalog::from_config(&gateway(&[("mcp.yaml", "name: empty\n")]));
    assert!(catalog.is_empty());
    assert_eq!(catalog.len(), 0);
}

// -------------------------------------------------------------------------------------------
// Worker tools
// -------------------------------------------------------------------------------------------

#[test]
fn worker_tool_reads_name_schema_tier_and_timeout_from_the_worker() {
    let config = gateway(&[
        (
            "mcp.yaml",
            "name: g\ntools:\n  workers:\n    - config: workers/summarizer.yaml\n",
        ),
        (
            "workers/summarizer.yaml",
            "name: summarizer\nsystem_prompt: |\n\n  Summarize the text.  \n  Be brief.\ndefault_model_tier: standard\ntimeout_seconds: 10\ninput_schema:\n  type: object\n  required: [text]\n  properties:\n    text: {type: string}\n",
        ),
    ]);
    let catalog = Catalog::from_config(&config);
    let t = tool(&catalog, "summarizer");
    assert_eq!(t.description, "Summarize the text.");
    assert_eq!(
        schema(t),
        json!({"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}})
    );
    assert_eq!(
        t.dispatch,
        Dispatch::Worker {
            worker_type: "summarizer".try_into().expect("name"),
            tier: ModelTier::Standard,
            // The worker's own deadline plus the routing margin (fix §13.12).
            timeout: Duration::from_secs(15),
        }
    );
    assert_eq!(t.dispatch.timeout(), Duration::from_secs(15));
    assert_eq!(t.hints, ToolHints::default());
    assert!(t.hints.is_empty());
    assert!(t.output_schema.is_none());
}

#[test]
fn entry_name_description_and_tier_override_the_worker() {
    let config = gateway(&[
        (
            "mcp.yaml",
            "name: g\ntools:\n  workers:\n    - config: w.yaml\n      name: my_tool\n      description: Mine.\n      tier: frontier\n",
        ),
        (
            "w.yaml",
            "name: summarizer\ndescription: Theirs.\nsystem_prompt: Summarize.\ndefault_model_tier: standard\n",
        ),
    ]);
    let catalog = Catalog::from_config(&config);
    let t = tool(&catalog, "my_tool");
    assert_eq!(t.description, "Mine.");
    let Dispatch::Worker {
        worker_type, tier, ..
    } = &t.dispatch
    else {
        panic!("worker dispatch: {:?}", t.dispatch);
    };
    // The worker type stays the worker's own name.
    assert_eq!(worker_type.as_str(), "summarizer");
    assert_eq!(*tier, ModelTier::Frontier);
}

#[test]
fn worker_description_beats_the_prompt_line_and_blank_means_empty() {
    let config = gateway(&[
        (
            "mcp.yaml",
            "name: g\ntools:\n  workers:\n    - config: a.yaml\n    - config: b.yaml\n    - config: c.yaml\n      description: ''\n",
        ),
        (
            "a.yaml",
            "name: a\ndescription: From the worker.\nsystem_prompt: From the prompt.\n",
        ),
        ("b.yaml", &format!("name: b\n{PROCESSOR}")),
        (
            "c.yaml",
            "name: c\nsystem_prompt: \"\\n  \\n  Third line wins.\\n\"\n",
        ),
    ]);
    let catalog = Catalog::from_config(&config);
    assert_eq!(tool(&catalog, "a").description, "From the worker.");
    assert_eq!(tool(&catalog, "b").description, "");
    // An empty entry description is not "truthy": the prompt's first line is used.
    assert_eq!(tool(&catalog, "c").description, "Third line wins.");
}

#[test]
fn worker_defaults_are_object_schema_local_tier_and_sixty_seconds_plus_margin() {
    let config = gateway(&[
        (
            "mcp.yaml",
            "name: g\ntools:\n  workers:\n    - config: w.yaml\n",
        ),
        ("w.yaml", &format!("name: plain\n{PROCESSOR}")),
    ]);
    let catalog = Catalog::from_config(&config);
    let t = tool(&catalog, "plain");
    assert_eq!(schema(t), json!({"type": "object"}));
    assert_eq!(
        t.dispatch,
        Dispatch::Worker {
            worker_type: "plain".try_into().expect("name"),
            tier: ModelTier::Local,
            timeout: Duration::from_secs(65),
        }
    );
}

#[test]
fn schemas_without_type_are_wrapped_or_completed() {
    let config = gateway(&[
        (
            "mcp.yaml",
            "name: g\ntools:\n  workers:\n    - config: bare.yaml\n    - config: keywords.yaml\n",
        ),
        (
            "bare.yaml",
            &format!(
                "name: bare\n{PROCESSOR}input_schema:\n  text: {{type: string}}\n  n: {{type: integer}}\n"
            ),
        ),
        (
            "keywords.yaml",
            &format!(
                "name: kw\n{PROCESSOR}input_schema:\n  required: [text]\n  properties:\n    text: {{type: string}}\n"
            ),
        ),
    ]);
    let catalog = Catalog::from_config(&config);
    // A bare property map is wrapped, as loom-ai 0.9.0 did.
    assert_eq!(
        schema(tool(&catalog, "bare")),
        json!({"type": "object", "properties": {"text": {"type": "string"}, "n": {"type": "integer"}}})
    );
    // A schema using object keywords keeps them (its `required` is not lost).
    assert_eq!(
        schema(tool(&catalog, "kw")),
        json!({"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}})
    );
    // And both validate arguments.
    let err = tool(&catalog, "bare")
        .prepare(object(json!({"text": 1})))
        .expect_err("wrong type");
    assert_eq!(
        err.to_string(),
        "invalid arguments for tool 'bare': /text: expected string, got integer"
    );
}

#[test]
fn worker_output_schema_becomes_the_tool_output_schema() {
    let catalog = Catalog::from_config(&docman());
    let stats = tool(&catalog, "text_stats");
    let out = stats.output_schema.as_ref().expect("output schema");
    assert_eq!(out.get("type"), Some(&json!("object")));
    assert_eq!(
        out.get("required"),
        Some(&json!(["word_count", "char_count", "reversed"]))
    );
    assert!(tool(&catalog, "echo").output_schema.is_none());
    // A non-object output schema is not advertised (MCP requires type object).
    let config = gateway(&[
        (
            "mcp.yaml",
            "name: g\ntools:\n  workers:\n    - config: w.yaml\n",
        ),
        (
            "w.yaml",
            &format!(
                "name: w\n{PROCESSOR}output_schema:\n  properties:\n    a: {{type: string}}\n"
            ),
        ),
    ]);
    assert!(
        tool(&Catalog::from_config(&config), "w")
            .output_schema
            .is_none()
    );
}

// -------------------------------------------------------------------------------------------
// Pipeline tools
// -------------------------------------------------------------------------------------------

#[test]
fn docman_pipeline_schema_requires_only_unconditional_keys() {
    let catalog = Catalog::from_config(&docman());
    let t = tool(&catalog, "ingest_document");
    // `text` feeds text_stats.text and keywords.text (typed from text_stats's schema);
    // `title` feeds only the conditional `report` stage, whose worker (echo) declares
    // no such field, so it is optional and any JSON.
    assert_eq!(
        schema(t),
        json!({
            "type": "object",
            "required": ["text"],
            "properties": {
                "text": {"type": "string", "description": "The text to analyse."},
                "title": {},
            },
        })
    );
    assert_eq!(
        t.dispatch,
        Dispatch::Pipeline {
            pipeline: "ingest".try_into().expect("name"),
            stages: 3,
            // Two levels of at most 30 s each, plus the routing margin.
            timeout: Duration::from_secs(65),
        }
    );
    assert!(t.output_schema.is_none());
    assert!(t.hints.is_empty());
}

const W1: &str = "name: w1\nworker_kind: processor\nprocessing_backend: echo\ninput_schema:\n  type: object\n  properties:\n    file_ref: {type: string, description: The file.}\n    n: {type: integer}\n    deep: {type: string, minLength: 1}\n";
const W2: &str = "name: w2\nworker_kind: processor\nprocessing_backend: echo\ninput_schema:\n  type: object\n  properties:\n    language: {type: string, enum: [en, de]}\n";

fn nested_pipeline() -> GatewayConfig {
    gateway(&[
        (
            "mcp.yaml",
            "name: g\ntools:\n  workers:\n    - config: w1.yaml\n    - config: w2.yaml\n  pipelines:\n    - config: p.yaml\n      name: run_p\n",
        ),
        ("w1.yaml", W1),
        ("w2.yaml", W2),
        (
            "p.yaml",
            "name: p\ntimeout_seconds: 10\npipeline_stages:\n  - name: s1\n    worker_type: w1\n    max_retries: 1\n    input_mapping:\n      file_ref: goal.context.file_ref\n      n: goal.context.n\n      deep: goal.context.meta.author\n  - name: s2\n    worker_type: w2\n    condition: \"goal.context.mode == 'full'\"\n    input_mapping:\n      x: s1.output.text\n      language: goal.context.lang\n      again: goal.context.file_ref\n      year: goal.context.meta.year\n  - name: s3\n    worker_type: unknown_worker\n    timeout_seconds: 3\n    input_mapping:\n      y: s1.output.text\n      z: goal.context.extra\n",
        ),
    ])
}

#[test]
fn nested_context_paths_become_nested_object_properties() {
    let catalog = Catalog::from_config(&nested_pipeline());
    let t = tool(&catalog, "run_p");
    assert_eq!(
        schema(t),
        json!({
            "type": "object",
            "required": ["file_ref", "n", "meta", "extra"],
            "properties": {
                // Typed from the reading stage's worker, looked up by the TARGET field.
                "file_ref": {"type": "string", "description": "The file."},
                "n": {"type": "integer"},
                // goal.context.meta.author is read as meta → author (fix §13.8): the
                // property is an object, not a flat "meta.author".
                "meta": {
                    "type": "object",
                    "required": ["author"],
                    "properties": {
                        "author": {"type": "string", "minLength": 1},
                        // Read only by the conditional s2: optional.
                        "year": {},
                    },
                },
                // s2 is conditional: optional, typed from w2's `language` field.
                "lang": {"type": "string", "enum": ["en", "de"]},
                // Read only by s2's condition: optional, any JSON.
                "mode": {},
                // s3's worker is not a tool of this gateway: any JSON, still required.
                "extra": {},
            },
        })
    );
    // Properties keep first-appearance order (JSON object equality ignores order).
    let keys: Vec<&str> = t.input_schema["properties"]
        .as_object()
        .expect("properties")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["file_ref", "n", "meta", "lang", "mode", "extra"]);
    // Levels: [s1] then [s2, s3]; s1 may run twice (10 s each), then max(10, 3), + 5.
    assert_eq!(t.dispatch.timeout(), Duration::from_secs(35));
}

#[test]
fn pipeline_arguments_are_validated_against_the_nested_schema() {
    let catalog = Catalog::from_config(&nested_pipeline());
    let t = tool(&catalog, "run_p");
    let ok = object(json!({"file_ref": "a.pdf", "n": 2, "meta": {"author": "x"}, "extra": [1]}));
    assert_eq!(t.prepare(ok.clone()).expect("valid"), ok);
    let err = t
        .prepare(object(
            json!({"file_ref": 7, "n": "two", "meta": {}, "lang": "fr"}),
        ))
        .expect_err("invalid");
    let text = err.to_string();
    assert!(
        text.starts_with("invalid arguments for tool 'run_p': "),
        "{text}"
    );
    let pointers: Vec<&str> = err.problems().iter().map(|p| p.pointer.as_str()).collect();
    for expected in ["", "/file_ref", "/n", "/meta", "/lang"] {
        assert!(
            pointers.contains(&expected),
            "{expected:?} missing in {text}"
        );
    }
    assert!(text.contains("/: missing required field 'extra'"), "{text}");
    assert!(
        text.contains("/meta: missing required field 'author'"),
        "{text}"
    );
    assert!(
        text.contains("/file_ref: expected string, got integer"),
        "{text}"
    );
    assert_eq!(err.tool(), "run_p");
}

#[test]
fn pipeline_description_falls_back_to_pipeline_then_name() {
    let config = gateway(&[
        (
            "mcp.yaml",
            "name: g\ntools:\n  pipelines:\n    - config: a.yaml\n      name: tool_a\n    - config: b.yaml\n      name: tool_b\n    - config: b.yaml\n      name: tool_c\n      description: From the entry.\n",
        ),
        (
            "a.yaml",
            "name: pa\ndescription: From the pipeline.\npipeline_stages:\n  - name: s\n    worker_type: w\n    input_mapping:\n      v: \"'fixed'\"\n",
        ),
        (
            "b.yaml",
            "name: pb\npipeline_stages:\n  - name: s\n    worker_type: w\n    input_mapping:\n      whole: goal.context\n",
        ),
    ]);
    let catalog = Catalog::from_config(&config);
    let names: Vec<&str> = catalog.tools().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["tool_a", "tool_b", "tool_c"]);
    assert_eq!(tool(&catalog, "tool_a").description, "From the pipeline.");
    assert_eq!(tool(&catalog, "tool_b").description, "Pipeline: pb");
    assert_eq!(tool(&catalog, "tool_c").description, "From the entry.");
    // No goal.context.<key> reads (a literal, the bare goal.context): any object.
    assert_eq!(schema(tool(&catalog, "tool_a")), json!({"type": "object"}));
    assert_eq!(schema(tool(&catalog, "tool_b")), json!({"type": "object"}));
    // The default stage timeout is 300 s.
    assert_eq!(
        tool(&catalog, "tool_a").dispatch.timeout(),
        Duration::from_secs(305)
    );
}

// -------------------------------------------------------------------------------------------
// Query tools
// -------------------------------------------------------------------------------------------

fn queries() -> Catalog {
    Catalog::from_config(&gateway(&[(
        "mcp.yaml",
        r#"name: g
tools:
  queries:
    - backend: sqlite
      actions: [search, filter, stats, get, vector_search]
      name_prefix: docs
      backend_config:
        db_path: papers.db
        table_name: papers
        id_column: doc_id
        filter_fields:
          author: "author = ?"
          min_pages: "pages >= ?"
          is_draft: "draft = CAST(? AS BOOLEAN)"
          no_figures: "figures IS NULL"
        stats_groups: [year, author]
        embedding: {provider: ollama, url: "http://127.0.0.1:11434", model: nomic-embed-text}
    - backend: loom.contrib.duckdb.query_backend.DuckDBQueryBackend
      actions: [get, stats]
      name_prefix: notes
      worker_type: notes_worker
      timeout: 12
      backend_config: {db_path: notes.duckdb}
"#,
    )]))
}

#[test]
fn query_tools_are_named_prefix_action_in_configured_order() {
    let catalog = queries();
    let names: Vec<&str> = catalog.tools().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "docs_search",
            "docs_filter",
            "docs_stats",
            "docs_get",
            "docs_vector_search",
            "notes_get",
            "notes_stats",
        ]
    );
    assert_eq!(
        tool(&catalog, "docs_search").dispatch,
        Dispatch::Query {
            worker_type: "docs_query".try_into().expect("name"),
            action: QueryAction::Search,
            timeout: Duration::from_secs(30),
        }
    );
    assert_eq!(
        tool(&catalog, "notes_get").dispatch,
        Dispatch::Query {
            worker_type: "notes_worker".try_into().expect("name"),
            action: QueryAction::Get,
            timeout: Duration::from_secs(12),
        }
    );
    for t in catalog.tools() {
        assert_eq!(t.hints.read_only, Some(true), "{}", t.name);
        assert_eq!(t.hints.destructive, None);
    }
}

#[test]
fn query_descriptions_name_the_table() {
    let catalog = queries();
    let d = |n: &str| tool(&catalog, n).description.clone();
    assert_eq!(d("docs_search"), "Full-text search across papers");
    assert_eq!(d("docs_filter"), "Filter papers by attributes");
    assert_eq!(d("docs_stats"), "Aggregate statistics for papers");
    assert_eq!(d("docs_get"), "Get a single record from papers by ID");
    assert_eq!(
        d("docs_vector_search"),
        "Semantic similarity search across papers"
    );
    assert_eq!(d("notes_get"), "Get a single record from documents by ID");
}

#[test]
fn query_schemas_are_the_ones_loom_query_validates_against() {
    let catalog = queries();
    let s = |n: &str| schema(tool(&catalog, n));
    let config = loom_query::QueryConfig::from_backend_config(
        &object(json!({
            "db_path": "papers.db", "table_name": "papers", "id_column": "doc_id",
            "filter_fields": {"author": "author = ?", "min_pages": "pages >= ?",
                              "is_draft": "draft = CAST(? AS BOOLEAN)", "no_figures": "figures IS NULL"},
            "stats_groups": ["year", "author"],
            "embedding": {"provider": "ollama", "url": "http://127.0.0.1:11434", "model": "nomic-embed-text"},
        })),
        Path::new("/"),
    )
    .expect("valid backend_config");
    for (name, action) in [
        ("docs_search", QueryAction::Search),
        ("docs_filter", QueryAction::Filter),
        ("docs_stats", QueryAction::Stats),
        ("docs_get", QueryAction::Get),
        ("docs_vector_search", QueryAction::VectorSearch),
    ] {
        assert_eq!(s(name), loom_query::input_schema(&config, action), "{name}");
    }
    // Spot checks of what clients rely on.
    assert_eq!(s("docs_search")["required"], json!(["query"]));
    assert_eq!(s("docs_get")["required"], json!(["doc_id"]));
    assert_eq!(
        s("docs_filter")["properties"]["min_pages"]["type"],
        json!("number")
    );
    assert_eq!(
        s("docs_filter")["properties"]["is_draft"]["type"],
        json!("boolean")
    );
    assert_eq!(
        s("docs_stats")["properties"]["group_by"]["enum"],
        json!(["author", "year"])
    );
    for t in catalog.tools() {
        assert_eq!(
            t.input_schema.get("additionalProperties"),
            Some(&json!(false)),
            "{}",
            t.name
        );
    }
}

#[test]
fn an_invalid_backend_config_gives_open_schemas() {
    let catalog = Catalog::from_config(&gateway(&[(
        "mcp.yaml",
        "name: g\ntools:\n  queries:\n    - {backend: sqlite, actions: [get], name_prefix: x, backend_config: {table_name: 'a b'}}\n",
    )]));
    let t = tool(&catalog, "x_get");
    assert_eq!(schema(t), json!({"type": "object"}));
    assert!(t.description.contains("invalid"), "{}", t.description);
}

#[test]
fn query_action_is_fixed_by_the_tool() {
    let catalog = queries();
    let search = tool(&catalog, "docs_search");
    let payload = search
        .prepare(object(json!({"query": "rust", "limit": 3})))
        .expect("valid");
    // The action comes first and cannot be chosen by the client (fix §13.10).
    assert_eq!(
        Value::Object(payload.clone()),
        json!({"action": "search", "query": "rust", "limit": 3})
    );
    assert_eq!(payload.keys().next().map(String::as_str), Some("action"));
    // Repeating the tool's own action is harmless.
    let same = search
        .prepare(object(json!({"action": "search", "query": "rust"})))
        .expect("same action");
    assert_eq!(
        Value::Object(same),
        json!({"action": "search", "query": "rust"})
    );
    // Another action is an error, reported with the other problems.
    let err = search
        .prepare(object(json!({"action": "get", "limit": "x"})))
        .expect_err("other action");
    let text = err.to_string();
    assert!(
        text.contains("/action: 'action' is fixed to 'search' by this tool"),
        "{text}"
    );
    assert!(text.contains("/: missing required field 'query'"), "{text}");
    assert!(
        text.contains("/limit: expected integer, got string"),
        "{text}"
    );
    // Undeclared arguments never reach the backend.
    let err = search
        .prepare(object(
            json!({"query": "q", "embedding": {"ollama_url": "http://evil"}}),
        ))
        .expect_err("extra argument");
    assert!(err.to_string().contains("embedding"), "{err}");
}

// -------------------------------------------------------------------------------------------
// Argument validation
// -------------------------------------------------------------------------------------------

#[test]
fn prepare_passes_valid_worker_arguments_through_unchanged() {
    let catalog = Catalog::from_config(&docman());
    let args = object(json!({"text": "hello", "top": 2}));
    assert_eq!(
        tool(&catalog, "keywords")
            .prepare(args.clone())
            .expect("valid"),
        args
    );
    // echo accepts any object.
    let any = object(json!({"anything": [1, {"x": null}]}));
    assert_eq!(
        tool(&catalog, "echo").prepare(any.clone()).expect("valid"),
        any
    );
}

#[test]
fn prepare_reports_every_violation_with_its_pointer() {
    let catalog = Catalog::from_config(&docman());
    let err = tool(&catalog, "keywords")
        .prepare(object(json!({"top": 0})))
        .expect_err("two problems");
    assert_eq!(err.tool(), "keywords");
    assert_eq!(err.problems().len(), 2, "{err}");
    assert!(!err.is_truncated());
    let text = err.to_string();
    assert!(
        text.starts_with("invalid arguments for tool 'keywords': "),
        "{text}"
    );
    assert!(text.contains("/: missing required field 'text'"), "{text}");
    assert!(text.contains("/top: "), "{text}");
    let err = tool(&catalog, "text_stats")
        .prepare(object(json!({"text": 5})))
        .expect_err("wrong type");
    assert_eq!(
        err.to_string(),
        "invalid arguments for tool 'text_stats': /text: expected string, got integer"
    );
}

#[test]
fn hand_built_tools_validate_their_schema() {
    let dispatch = Dispatch::Worker {
        worker_type: "echo".try_into().expect("name"),
        tier: ModelTier::Local,
        timeout: Duration::from_secs(1),
    };
    let t = GatewayTool::new(
        "t",
        "d",
        object(json!({"type": "object", "required": ["a"]})),
        dispatch.clone(),
    )
    .expect("valid schema")
    .with_hints(ToolHints {
        read_only: Some(true),
        ..ToolHints::default()
    })
    .with_output_schema(object(json!({"type": "object"})));
    assert!(t.prepare(Map::new()).is_err());
    assert!(t.output_schema.is_some());
    assert!(
        GatewayTool::new("bad", "", object(json!({"type": "strng"})), dispatch).is_err(),
        "an invalid schema is rejected"
    );
    let catalog = Catalog::new([t.clone(), t]);
    assert_eq!(catalog.len(), 1, "a repeated name keeps the first tool");
}
