//! Tool discovery: workers, pipelines and query backends of a gateway config as tool
//! definitions, each with the hidden data the bridge needs to dispatch a call.
//!
//! The catalog is protocol-neutral: a [`GatewayTool`] holds a name, a description, an
//! input schema (always an object schema), an optional output schema and
//! [`ToolHints`]; the MCP layer turns them into MCP tools. Discovery follows loom-ai
//! 0.9.0 (gateway spec §3.2–§3.4) with these fixes:
//!
//! | tool | what differs from the original |
//! |---|---|
//! | worker | timeout = worker `timeout_seconds` (else 60 s) **plus [`ROUTING_MARGIN`]**, so the gateway does not give up while the worker still may answer (§13.12); a worker `output_schema` of type object becomes the tool's output schema; a schema without `type` that already uses object keywords (`properties`, `required`, …) gets `type: object` instead of being wrapped |
//! | pipeline | goals go to `loom.goals.{pipeline}` (§13.7); `goal.context.a.b` becomes a nested object property `a` → `b` (§13.8), so arguments arrive as the orchestrator resolves them; a property's schema comes from the input schema of the stage that reads it, looked up by the mapping's *target* field; unknown types are `{}` (any JSON); `required` lists only keys read by stages without a condition (§13.9); keys read only by stage conditions are optional properties; the wait is the worst case of the stage timeouts plus [`ROUTING_MARGIN`] |
//! | query | the `action` is fixed by the tool: a client `action` that differs is an argument error (§13.10); schemas forbid undeclared arguments (`additionalProperties: false`); `stats` lists its allowed `group_by` values as an `enum`; query tools are marked read-only |
//!
//! Every tool validates its arguments ([`GatewayTool::prepare`]) against the schema it
//! advertises before anything is dispatched (§13.3), reporting every violation with
//! its JSON pointer.

mod pipeline;
mod query;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use loom_core::config::{GatewayConfig, QueryAction, WorkerConfig, WorkerKind, WorkerTool};
use loom_core::contract::{Contract, SchemaError, join_problems, write_problem};
use loom_core::message::ModelTier;
use loom_core::name::{PipelineName, WorkerName};
use serde_json::{Map, Value};
use tracing::warn;

/// How long a worker tool waits when its worker config sets no `timeout_seconds`.
pub const DEFAULT_WORKER_TIMEOUT: Duration = Duration::from_secs(60);

/// Added to the mesh's own deadlines (a worker's `timeout_seconds`, a pipeline's stage
/// timeouts) to get the gateway's wait: routing, queueing and the answer's trip back
/// take time, and the gateway should hear the mesh's own timeout verdict rather than
/// give up a moment before it arrives.
pub const ROUTING_MARGIN: Duration = Duration::from_secs(5);

/// The tools of one gateway, in a fixed order: workers, pipelines, then queries, each in
/// config order. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    inner: Arc<CatalogInner>,
}

#[derive(Debug, Default)]
struct CatalogInner {
    tools: Vec<Arc<GatewayTool>>,
    index: HashMap<String, usize>,
}

impl Catalog {
    /// Discovers every tool of `config`: workers, pipelines, then queries (config order),
    /// then the workshop and session tools the config enables.
    ///
    /// Tool names are unique (the config loader rejects duplicates); should one repeat
    /// anyway, the first definition is kept and the later one is skipped with a warning.
    pub fn from_config(config: &GatewayConfig) -> Catalog {
        let known: HashMap<&WorkerName, &WorkerConfig> = config
            .workers
            .iter()
            .map(|w| (&w.worker.name, &w.worker))
            .collect();
        let mut tools = Vec::new();
        tools.extend(config.workers.iter().map(worker_tool));
        tools.extend(
            config
                .pipelines
                .iter()
                .map(|p| pipeline::pipeline_tool(p, &known)),
        );
        let base_dir = config
            .source
            .parent()
            .unwrap_or_else(|| std::path::Path::new("."));
        for entry in &config.queries {
            tools.extend(query::query_tools(entry, base_dir));
        }
        if let Some(section) = &config.workshop {
            tools.extend(crate::workshop_tools::workshop_tools(section));
        }
        if let Some(section) = &config.session {
            tools.extend(crate::session_tools::session_tools(&section.enable));
        }
        Catalog::new(tools)
    }

    /// A catalog of `tools`, in the given order (a repeated name keeps the first).
    pub fn new(tools: impl IntoIterator<Item = GatewayTool>) -> Catalog {
        let mut inner = CatalogInner::default();
        for tool in tools {
            if inner.index.contains_key(&tool.name) {
                warn!(tool = %tool.name, "Tool name defined twice; keeping the first definition.");
                continue;
            }
            inner.index.insert(tool.name.clone(), inner.tools.len());
            inner.tools.push(Arc::new(tool));
        }
        Catalog {
            inner: Arc::new(inner),
        }
    }

    /// Every tool, in catalog order.
    pub fn tools(&self) -> &[Arc<GatewayTool>] {
        &self.inner.tools
    }

    /// The tool called `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<GatewayTool>> {
        self.inner
            .index
            .get(name)
            .and_then(|&i| self.inner.tools.get(i))
    }

    /// How many tools there are.
    pub fn len(&self) -> usize {
        self.inner.tools.len()
    }

    /// True when there are no tools.
    pub fn is_empty(&self) -> bool {
        self.inner.tools.is_empty()
    }
}

/// One tool: what clients see, and how a call to it is dispatched.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GatewayTool {
    /// The tool's name.
    pub name: String,
    /// What it does (may be empty).
    pub description: String,
    /// The advertised input schema; always an object schema (`"type": "object"`).
    pub input_schema: Arc<Map<String, Value>>,
    /// The advertised output schema: a worker's `output_schema` when it is an object schema.
    pub output_schema: Option<Arc<Map<String, Value>>>,
    /// Behaviour hints for clients (MCP annotations).
    pub hints: ToolHints,
    /// Where a call goes.
    pub dispatch: Dispatch,
    /// `input_schema`, compiled.
    contract: Contract,
}

impl GatewayTool {
    /// A tool with no output schema and no hints; `input_schema` is compiled for
    /// [`GatewayTool::prepare`] and must be a valid Draft 2020-12 schema.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        input_schema: Map<String, Value>,
        dispatch: Dispatch,
    ) -> Result<GatewayTool, SchemaError> {
        let contract = Contract::new(Value::Object(input_schema.clone()))?;
        Ok(GatewayTool {
            name: name.into(),
            description: description.into(),
            input_schema: Arc::new(input_schema),
            output_schema: None,
            hints: ToolHints::default(),
            dispatch,
            contract,
        })
    }

    /// Sets the output schema.
    #[must_use]
    pub fn with_output_schema(mut self, schema: Map<String, Value>) -> Self {
        self.output_schema = Some(Arc::new(schema));
        self
    }

    /// Sets the hints.
    #[must_use]
    pub fn with_hints(mut self, hints: ToolHints) -> Self {
        self.hints = hints;
        self
    }

    /// Validates `arguments` against the input schema, reporting every violation with its
    /// JSON pointer, and turns them into the task payload or goal context.
    ///
    /// * worker tools: the arguments are the payload, unchanged;
    /// * pipeline tools: the arguments are the goal context; nested context paths
    ///   (`goal.context.meta.author`) are nested objects in the schema, so arguments
    ///   already have the shape the orchestrator reads;
    /// * query tools: `action` is set to the tool's action and comes first. A client
    ///   `action` equal to it is accepted (and kept once); any other value is an error,
    ///   so a client can never reach an action the config did not expose.
    pub fn prepare(
        &self,
        arguments: Map<String, Value>,
    ) -> Result<Map<String, Value>, ArgumentError> {
        let mut problems = Vec::new();
        let mut arguments = arguments;
        if let Dispatch::Query { action, .. } = &self.dispatch {
            match arguments.remove(query::ACTION_KEY) {
                None => {}
                Some(Value::String(s)) if s == action.as_str() => {}
                Some(other) => problems.push(ArgumentProblem {
                    pointer: format!("/{}", query::ACTION_KEY),
                    message: format!(
                        "'action' is fixed to '{}' by this tool and cannot be set (got {other})",
                        action.as_str()
                    ),
                }),
            }
        }
        let value = Value::Object(arguments);
        let mut truncated = false;
        if let Err(violations) = self.contract.check(&value) {
            truncated = violations.is_truncated();
            problems.extend(violations.iter().map(|v| ArgumentProblem {
                pointer: v.pointer.clone(),
                message: v.message.clone(),
            }));
        }
        if !problems.is_empty() {
            return Err(ArgumentError {
                tool: self.name.clone(),
                problems,
                truncated,
            });
        }
        let Value::Object(arguments) = value else {
            return Ok(Map::new());
        };
        match &self.dispatch {
            Dispatch::Query { action, .. } => {
                let mut payload = Map::with_capacity(arguments.len() + 1);
                payload.insert(
                    query::ACTION_KEY.to_owned(),
                    Value::String(action.as_str().to_owned()),
                );
                payload.extend(arguments);
                Ok(payload)
            }
            Dispatch::Worker { .. }
            | Dispatch::Pipeline { .. }
            | Dispatch::Workshop { .. }
            | Dispatch::Session { .. } => Ok(arguments),
        }
    }
}

/// Hints about a tool's behaviour (MCP tool annotations); `None` means "not stated".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ToolHints {
    /// The tool does not change anything.
    pub read_only: Option<bool>,
    /// The tool may destroy or overwrite data.
    pub destructive: Option<bool>,
    /// Calling it again with the same arguments has no further effect.
    pub idempotent: Option<bool>,
    /// The tool reaches outside systems.
    pub open_world: Option<bool>,
}

impl ToolHints {
    /// True when no hint is set (no annotations should be advertised).
    pub fn is_empty(&self) -> bool {
        *self == ToolHints::default()
    }
}

/// Where a tool call goes on the bus.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Dispatch {
    /// A task for a worker, through the router (`loom.tasks.incoming`).
    Worker {
        /// The worker type.
        worker_type: WorkerName,
        /// The tier the task asks for.
        tier: ModelTier,
        /// How long the gateway waits for the result.
        timeout: Duration,
    },
    /// A goal for one pipeline (`loom.goals.{pipeline}`).
    Pipeline {
        /// The pipeline.
        pipeline: PipelineName,
        /// How many stages it has (the progress total).
        stages: u32,
        /// How long the gateway waits for the final result.
        timeout: Duration,
    },
    /// A task for a query worker, tier `local`, with a fixed `action` in its payload.
    Query {
        /// The query worker type (`{name_prefix}_query` unless configured).
        worker_type: WorkerName,
        /// The action, fixed by the tool.
        action: QueryAction,
        /// How long the gateway waits for the result.
        timeout: Duration,
    },
    /// A workshop tool, run by the gateway itself.
    Workshop {
        /// Which one.
        action: crate::workshop_tools::WorkshopAction,
    },
    /// A session tool, run by the gateway itself.
    Session {
        /// Which one.
        action: loom_core::config::SessionAction,
    },
}

/// How long a workshop or session call may take at most (an eval suite runs many cases).
pub const LOCAL_TOOL_TIMEOUT: Duration = Duration::from_secs(3600);

impl Dispatch {
    /// How long the gateway waits for the result.
    pub fn timeout(&self) -> Duration {
        match self {
            Dispatch::Worker { timeout, .. }
            | Dispatch::Pipeline { timeout, .. }
            | Dispatch::Query { timeout, .. } => *timeout,
            Dispatch::Workshop { .. } | Dispatch::Session { .. } => LOCAL_TOOL_TIMEOUT,
        }
    }

    /// True for tools the gateway runs itself (workshop, session) instead of the mesh.
    pub fn is_local(&self) -> bool {
        matches!(self, Dispatch::Workshop { .. } | Dispatch::Session { .. })
    }
}

/// Arguments that do not match a tool's input schema; nothing was dispatched.
///
/// Displays as `invalid arguments for tool 'x': /text: expected string, got integer;
/// /: missing required field 'y'` (a root problem has the pointer `/`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid arguments for tool '{tool}': {}{}", join_problems(.problems), if *.truncated { "; (more problems not shown)" } else { "" })]
pub struct ArgumentError {
    tool: String,
    problems: Vec<ArgumentProblem>,
    truncated: bool,
}

impl ArgumentError {
    /// The tool called.
    pub fn tool(&self) -> &str {
        &self.tool
    }

    /// Every problem found (at least one).
    pub fn problems(&self) -> &[ArgumentProblem] {
        &self.problems
    }

    /// True when there were more problems than are listed.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

/// One way the arguments break the input schema.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ArgumentProblem {
    /// JSON pointer into the arguments; `""` is the arguments object itself.
    pub pointer: String,
    /// What is wrong, e.g. `expected string, got integer`.
    pub message: String,
}

impl fmt::Display for ArgumentProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_problem(f, &self.pointer, "/", &self.message)
    }
}

// ---------------------------------------------------------------------------------------------
// Worker tools
// ---------------------------------------------------------------------------------------------

/// Keywords that mark a schema without `type` as an object schema rather than a bare
/// property map.
const OBJECT_KEYWORDS: [&str; 9] = [
    "properties",
    "required",
    "additionalProperties",
    "patternProperties",
    "propertyNames",
    "minProperties",
    "maxProperties",
    "dependentRequired",
    "unevaluatedProperties",
];

fn worker_tool(entry: &WorkerTool) -> GatewayTool {
    let worker = &entry.worker;
    let description =
        first_non_empty([entry.description.as_deref(), worker.description.as_deref()])
            .map(str::to_owned)
            .or_else(|| match &worker.kind {
                WorkerKind::Llm { system_prompt } => first_line(system_prompt).map(str::to_owned),
                _ => None,
            })
            .unwrap_or_default();
    let input = worker_input_schema(&entry.tool_name, worker);
    let timeout = worker
        .timeout_seconds
        .map_or(DEFAULT_WORKER_TIMEOUT, seconds)
        .saturating_add(ROUTING_MARGIN);
    let dispatch = Dispatch::Worker {
        worker_type: worker.name.clone(),
        tier: entry
            .tier
            .or(worker.default_model_tier)
            .unwrap_or(ModelTier::Local),
        timeout,
    };
    let mut tool = compiled_tool(&entry.tool_name, description, input, dispatch);
    if let Some(Value::Object(schema)) = worker.output_schema.as_ref().map(Contract::schema) {
        if schema.get("type").and_then(Value::as_str) == Some("object") {
            tool.output_schema = Some(Arc::new(schema.clone()));
        }
    }
    tool
}

/// A worker's input schema as an object schema (gateway spec §3.2, with one fix).
fn worker_input_schema(tool: &str, worker: &WorkerConfig) -> Map<String, Value> {
    let schema = match worker.input_schema.as_ref().map(Contract::schema) {
        Some(Value::Object(schema)) => schema,
        _ => return object_schema(),
    };
    match schema.get("type") {
        Some(Value::String(t)) if t == "object" => schema.clone(),
        None if OBJECT_KEYWORDS.iter().any(|k| schema.contains_key(*k)) => {
            let mut out = Map::with_capacity(schema.len() + 1);
            out.insert("type".to_owned(), Value::String("object".to_owned()));
            out.extend(schema.iter().map(|(k, v)| (k.clone(), v.clone())));
            out
        }
        // A bare property map, as loom-ai 0.9.0 read it.
        None => {
            let mut out = object_schema();
            out.insert("properties".to_owned(), Value::Object(schema.clone()));
            out
        }
        Some(other) => {
            warn!(tool, worker = %worker.name, r#type = %other, "Worker input_schema is not an object schema; advertising {{\"type\": \"object\"}}.");
            object_schema()
        }
    }
}

/// A tool whose schema compiles; a schema that does not (a bare property map whose
/// values are not schemas) is replaced by `{"type": "object"}` with a warning.
fn compiled_tool(
    name: &str,
    description: String,
    input: Map<String, Value>,
    dispatch: Dispatch,
) -> GatewayTool {
    match GatewayTool::new(name, description.clone(), input, dispatch.clone()) {
        Ok(tool) => tool,
        Err(error) => {
            warn!(tool = name, error = %error, "Tool input schema does not compile; advertising {{\"type\": \"object\"}}.");
            GatewayTool {
                name: name.to_owned(),
                description,
                input_schema: Arc::new(object_schema()),
                output_schema: None,
                hints: ToolHints::default(),
                dispatch,
                contract: Contract::any(),
            }
        }
    }
}

/// `{"type": "object"}`.
fn object_schema() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".to_owned(), Value::String("object".to_owned()));
    m
}

/// The first value that is present and not empty (Python truthiness for strings).
fn first_non_empty<'a>(values: impl IntoIterator<Item = Option<&'a str>>) -> Option<&'a str> {
    values.into_iter().flatten().find(|s| !s.is_empty())
}

/// The first line of `text` that is not blank, without surrounding whitespace.
pub(crate) fn first_line(text: &str) -> Option<&str> {
    text.lines().map(str::trim).find(|l| !l.is_empty())
}

/// Seconds from a config as a duration (configs only hold positive finite numbers; a
/// value too large to represent waits "forever").
fn seconds(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_skips_blank_lines_and_trims() {
        assert_eq!(first_line(""), None);
        assert_eq!(first_line("  \n\t\n"), None);
        assert_eq!(
            first_line("\n\n  Summarize text.  \nMore."),
            Some("Summarize text.")
        );
        assert_eq!(first_line("One"), Some("One"));
    }

    #[test]
    fn argument_error_names_tool_and_every_pointer() {
        let err = ArgumentError {
            tool: "x".into(),
            problems: vec![
                ArgumentProblem {
                    pointer: "/text".into(),
                    message: "expected string, got integer".into(),
                },
                ArgumentProblem {
                    pointer: String::new(),
                    message: "missing required field 'y'".into(),
                },
            ],
            truncated: false,
        };
        assert_eq!(
            err.to_string(),
            "invalid arguments for tool 'x': /text: expected string, got integer; /: missing required field 'y'"
        );
    }
}
