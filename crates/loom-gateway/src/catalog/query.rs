//! Query tools: one tool per configured action of a query backend, named
//! `{name_prefix}_{action}`, with descriptions and schemas derived from `backend_config`
//! by `loom-query` (gateway spec §3.4, with typed filters and limits).

use std::path::Path;

use loom_core::config::QueryTools;
use loom_query::QueryConfig;
use serde_json::{Map, Value, json};

use super::{Dispatch, GatewayTool, ToolHints, compiled_tool, seconds};

/// The payload key that selects the backend handler.
pub(super) const ACTION_KEY: &str = "action";

/// The tools of one query entry, in the order of its `actions`. Names, descriptions and
/// input schemas come from `loom-query`, the code that will run the query, so what a
/// tool advertises is exactly what its worker accepts. An invalid `backend_config`
/// (which the gateway refuses to start with, and `loom validate` reports) yields open
/// schemas.
pub(super) fn query_tools(entry: &QueryTools, base_dir: &Path) -> Vec<GatewayTool> {
    let mut settings = entry.backend_config.clone();
    for key in loom_mesh::processors::query::WORKER_KEYS {
        settings.remove(key);
    }
    let config = QueryConfig::from_backend_config(&settings, base_dir).ok();
    entry
        .actions
        .iter()
        .map(|&action| {
            let dispatch = Dispatch::Query {
                worker_type: entry.worker_type.clone(),
                action,
                timeout: seconds(entry.timeout_seconds),
            };
            let (description, schema) = match &config {
                Some(c) => (
                    loom_query::description(c, action),
                    loom_query::input_schema(c, action),
                ),
                None => (
                    format!(
                        "Query action '{}' (its backend_config is invalid)",
                        action.as_str()
                    ),
                    json!({"type": "object"}),
                ),
            };
            let schema = match schema {
                Value::Object(m) => m,
                _ => Map::new(),
            };
            // Queries only read: clients may run them without asking.
            compiled_tool(&entry.tool_name(action), description, schema, dispatch).with_hints(
                ToolHints {
                    read_only: Some(true),
                    ..ToolHints::default()
                },
            )
        })
        .collect()
}
