//! Tool descriptions and per-action input schemas, derived from a [`QueryConfig`] alone
//! so the gateway can list query tools without opening a database.
//!
//! The shapes follow loom-ai 0.9.0's gateway (spec gateway §3.4) with these changes:
//! * every schema sets `additionalProperties: false` (the backend rejects unknown
//!   arguments too);
//! * `limit` carries `minimum: 1`, `maximum: 100` and its `default`;
//! * filter arguments take the type their field declares: range comparisons are
//!   `number` (the original's `integer` rejected `min_score: 0.5`), `has_*` names and
//!   `IS [NOT] NULL` predicates `boolean`, the rest `string`, unless the structured form
//!   or a `CAST(? AS type)` names the type; each has a description of its predicate;
//! * `group_by` lists the allowed groups in an `enum` and names the default (the first
//!   configured group, not a random one).

use loom_core::config::QueryAction;
use serde_json::{Map, Value, json};

use crate::config::{FilterOp, QueryConfig};
use crate::request::{DEFAULT_LIMIT, DEFAULT_VECTOR_LIMIT, MAX_LIMIT, MAX_QUERY_CHARS};

/// The tool description of `action` over `config`'s table.
pub fn description(config: &QueryConfig, action: QueryAction) -> String {
    let table = config.table_name.as_str();
    match action {
        QueryAction::Search => format!("Full-text search across {table}"),
        QueryAction::Filter => format!("Filter {table} by attributes"),
        QueryAction::Stats => format!("Aggregate statistics for {table}"),
        QueryAction::Get => format!("Get a single record from {table} by ID"),
        QueryAction::VectorSearch => format!("Semantic similarity search across {table}"),
    }
}

/// The JSON Schema (an object schema) of `action`'s arguments under `config`.
///
/// ```
/// use loom_core::config::QueryAction;
/// use loom_query::config::QueryConfig;
/// use serde_json::json;
///
/// let map = json!({"db_path": "d.db", "filter_fields": {"min_score": "score >= ?"}});
/// let config = QueryConfig::from_backend_config(map.as_object().unwrap(), ".".as_ref()).unwrap();
/// let schema = loom_query::input_schema(&config, QueryAction::Filter);
/// assert_eq!(schema["properties"]["min_score"]["type"], "number");
/// assert_eq!(schema["additionalProperties"], false);
/// ```
pub fn input_schema(config: &QueryConfig, action: QueryAction) -> Value {
    let limit = |default: u32| {
        json!({
            "type": "integer",
            "description": format!("Max results (default {default}, max {MAX_LIMIT})"),
            "minimum": 1,
            "maximum": MAX_LIMIT,
            "default": default,
        })
    };
    let query = |description: &str| json!({"type": "string", "description": description, "maxLength": MAX_QUERY_CHARS});
    match action {
        QueryAction::Search => json!({
            "type": "object",
            "required": ["query"],
            "properties": {
                "query": query("Search query text"),
                "limit": limit(DEFAULT_LIMIT),
            },
            "additionalProperties": false,
        }),
        QueryAction::VectorSearch => json!({
            "type": "object",
            "required": ["query"],
            "properties": {
                "query": query("Semantic search query"),
                "limit": limit(DEFAULT_VECTOR_LIMIT),
            },
            "additionalProperties": false,
        }),
        QueryAction::Filter => {
            let mut properties = Map::new();
            for field in &config.filter_fields {
                let what = match field.op {
                    FilterOp::IsNull => format!(
                        "true: only records whose {} is null; false: only those where it is set",
                        field.column
                    ),
                    FilterOp::IsNotNull => format!(
                        "true: only records whose {} is set; false: only those where it is null",
                        field.column
                    ),
                    op => format!(
                        "Only records where {} {} this value",
                        field.column,
                        op.as_str()
                    ),
                };
                properties.insert(
                    field.name.as_str().to_owned(),
                    json!({"type": field.value_type.as_str(), "description": what}),
                );
            }
            properties.insert("limit".to_owned(), limit(DEFAULT_LIMIT));
            json!({"type": "object", "properties": properties, "additionalProperties": false})
        }
        QueryAction::Stats => {
            let mut properties = Map::new();
            if let Some(first) = config.stats_groups.first() {
                let mut allowed: Vec<&str> =
                    config.stats_groups.iter().map(|g| g.as_str()).collect();
                allowed.sort_unstable();
                properties.insert(
                    "group_by".to_owned(),
                    json!({
                        "type": "string",
                        "description": format!("Column to group by. Allowed: {} (default {first})", allowed.join(", ")),
                        "enum": allowed,
                    }),
                );
            }
            json!({"type": "object", "properties": properties, "additionalProperties": false})
        }
        QueryAction::Get => {
            let id = config.id_column.as_str();
            let mut properties = Map::new();
            properties.insert(
                id.to_owned(),
                json!({"type": "string", "description": format!("Record ID ({id})")}),
            );
            // The legacy `document_id` stays accepted by the backend but is not advertised.
            json!({"type": "object", "required": [id], "properties": properties, "additionalProperties": false})
        }
    }
}
