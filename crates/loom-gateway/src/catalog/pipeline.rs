//! Pipeline tools: the input schema is derived from the `goal.context.*` paths the
//! stages read, nested the way the orchestrator resolves them.

use std::collections::HashMap;
use std::time::Duration;

use loom_core::config::{MappingValue, PipelineConfig, PipelineTool, StageConfig, WorkerConfig};
use loom_core::contract::Contract;
use loom_core::name::WorkerName;
use serde_json::{Map, Value};

use super::{Dispatch, GatewayTool, ROUTING_MARGIN, compiled_tool, first_non_empty, seconds};

/// The root of goal-context paths: `goal.context.<key>…`.
const CONTEXT_ROOT: [&str; 2] = ["goal", "context"];

/// The tool of one pipeline entry.
pub(super) fn pipeline_tool(
    entry: &PipelineTool,
    known: &HashMap<&WorkerName, &WorkerConfig>,
) -> GatewayTool {
    let pipeline = &entry.pipeline;
    let description = first_non_empty([
        entry.description.as_deref(),
        pipeline.description.as_deref(),
    ])
    .map_or_else(|| format!("Pipeline: {}", pipeline.name), str::to_owned);
    let dispatch = Dispatch::Pipeline {
        pipeline: pipeline.name.clone(),
        stages: u32::try_from(pipeline.stages.len()).unwrap_or(u32::MAX),
        timeout: goal_timeout(pipeline),
    };
    compiled_tool(
        &entry.tool_name,
        description,
        context_schema(pipeline, known),
        dispatch,
    )
}

/// The longest a goal can take when every stage uses its whole timeout on every
/// attempt: per level, the slowest stage; levels run one after another. Plus
/// [`ROUTING_MARGIN`].
fn goal_timeout(pipeline: &PipelineConfig) -> Duration {
    let stage_worst = |s: &StageConfig| {
        let one = seconds(s.timeout_seconds.unwrap_or(pipeline.timeout_seconds));
        one.saturating_mul(s.max_retries.saturating_add(1))
    };
    let total = if pipeline.levels.is_empty() {
        seconds(pipeline.timeout_seconds)
    } else {
        pipeline
            .levels
            .iter()
            .map(|level| {
                level
                    .iter()
                    .filter_map(|&i| pipeline.stages.get(i))
                    .map(stage_worst)
                    .max()
                    .unwrap_or_default()
            })
            .fold(Duration::ZERO, Duration::saturating_add)
    };
    total.saturating_add(ROUTING_MARGIN)
}

/// One key of the goal context, with what the stages tell about it.
#[derive(Debug, Default)]
struct Node {
    /// The schema of the stage field it feeds, when some stage's schema declares it.
    schema: Option<Value>,
    /// Nested keys (`meta` → `author`), in first-appearance order.
    children: Vec<(String, Node)>,
    /// Read by a stage without a condition.
    required: bool,
}

impl Node {
    fn child(&mut self, key: &str) -> &mut Node {
        let i = match self.children.iter().position(|(k, _)| k == key) {
            Some(i) => i,
            None => {
                self.children.push((key.to_owned(), Node::default()));
                self.children.len() - 1
            }
        };
        &mut self.children[i].1
    }

    /// Records a read of `keys` (non-empty) with the schema of the field it feeds.
    fn add(&mut self, keys: &[&str], schema: Option<Value>, required: bool) {
        let mut node = self;
        for key in keys {
            node = node.child(key);
            node.required |= required;
        }
        if node.schema.is_none() {
            node.schema = schema;
        }
    }

    /// `required` and `properties` of an object schema for the children.
    fn object_parts(&self) -> (Vec<Value>, Map<String, Value>) {
        let required = self
            .children
            .iter()
            .filter(|(_, n)| n.required)
            .map(|(k, _)| Value::String(k.clone()))
            .collect();
        let properties = self
            .children
            .iter()
            .map(|(k, n)| (k.clone(), n.render()))
            .collect();
        (required, properties)
    }

    /// This key's schema: the stage field's schema (or `{}`, any JSON) for a leaf, an
    /// object schema for a key with nested keys.
    fn render(&self) -> Value {
        if self.children.is_empty() {
            return self
                .schema
                .clone()
                .unwrap_or_else(|| Value::Object(Map::new()));
        }
        let base = match &self.schema {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        };
        let (mut required, mut properties) = self.object_parts();
        // Keep what the field's own schema declares, unless a path reads deeper into it.
        if let Some(Value::Object(own)) = base.get("properties") {
            let mut merged: Map<String, Value> = own.clone();
            merged.extend(std::mem::take(&mut properties));
            properties = merged;
        }
        if let Some(Value::Array(own)) = base.get("required") {
            for r in own {
                if !required.contains(r) {
                    required.push(r.clone());
                }
            }
        }
        let mut out = Map::new();
        out.insert("type".to_owned(), Value::String("object".to_owned()));
        for (k, v) in base {
            if !matches!(k.as_str(), "type" | "properties" | "required") {
                out.insert(k, v);
            }
        }
        if !required.is_empty() {
            out.insert("required".to_owned(), Value::Array(required));
        }
        out.insert("properties".to_owned(), Value::Object(properties));
        Value::Object(out)
    }
}

/// The goal-context schema of `pipeline`: every `goal.context.…` path that a stage maps
/// into its payload (or tests in its condition), nested by path segment, in
/// first-appearance order. Required are the keys read by the mappings of stages without
/// a condition; with no keys at all the schema is `{"type": "object"}`.
pub(super) fn context_schema(
    pipeline: &PipelineConfig,
    known: &HashMap<&WorkerName, &WorkerConfig>,
) -> Map<String, Value> {
    let mut root = Node::default();
    for stage in &pipeline.stages {
        let unconditional = stage.condition.is_none();
        for (target, value) in &stage.input_mapping {
            let MappingValue::Path(path) = value else {
                continue;
            };
            let segments: Vec<&str> = path.segments().collect();
            let Some(keys) = context_keys(&segments) else {
                continue;
            };
            root.add(keys, field_schema(stage, target, known), unconditional);
        }
        if let Some(condition) = &stage.condition {
            let segments: Vec<&str> = condition.left.segments().collect();
            if let Some(keys) = context_keys(&segments) {
                // A missing condition path skips the stage, so it is never required.
                root.add(keys, None, false);
            }
        }
    }
    let mut out = Map::new();
    out.insert("type".to_owned(), Value::String("object".to_owned()));
    if root.children.is_empty() {
        return out;
    }
    let (required, properties) = root.object_parts();
    if !required.is_empty() {
        out.insert("required".to_owned(), Value::Array(required));
    }
    out.insert("properties".to_owned(), Value::Object(properties));
    out
}

/// The keys after `goal.context`, when the path reads inside the goal context.
fn context_keys<'a, 'b>(segments: &'a [&'b str]) -> Option<&'a [&'b str]> {
    match segments {
        [a, b, rest @ ..] if [*a, *b] == CONTEXT_ROOT && !rest.is_empty() => Some(rest),
        _ => None,
    }
}

/// The schema of payload field `target` of `stage`: from the stage's own input schema,
/// else from its worker's (when the gateway config knows that worker).
fn field_schema(
    stage: &StageConfig,
    target: &str,
    known: &HashMap<&WorkerName, &WorkerConfig>,
) -> Option<Value> {
    let from_stage = stage
        .input_schema
        .as_ref()
        .and_then(|c| property(c, target));
    from_stage.or_else(|| {
        known
            .get(&stage.worker_type)
            .and_then(|w| w.input_schema.as_ref())
            .and_then(|c| property(c, target))
    })
}

/// `properties.<name>` of an object schema, or `<name>` of a bare property map (a
/// schema without `type` or `properties`, as loom-ai 0.9.0 read them).
fn property(contract: &Contract, name: &str) -> Option<Value> {
    let Value::Object(schema) = contract.schema() else {
        return None;
    };
    match schema.get("properties") {
        Some(Value::Object(props)) => props.get(name).cloned(),
        Some(_) => None,
        None if !schema.contains_key("type") => schema.get(name).cloned(),
        None => None,
    }
}
