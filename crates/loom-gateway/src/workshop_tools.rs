//! The `workshop.*` tools (gateway spec §3.5, §9.2): definitions and the calls into
//! `loom-workshop`.
//!
//! Names, schemas, descriptions, enable groups and error texts are the original's; the
//! hints add what the original left unsaid (`workshop.worker.update` overwrites a config,
//! so it is destructive like `workshop.deadletter.replay`). Differences in behaviour are
//! `loom-workshop`'s fixes: names are validated, app workers are found, `llm_judge` works,
//! comparisons analyse regressions, dead letters come from the live subject. Failures
//! are tool errors (`isError: true`), including "No baseline set for worker 'x'". A
//! `workshop.worker.test` whose *worker* failed is not: the run is the result, with
//! `success: false` and the worker's `error`, like the bench's other findings.

use std::sync::Arc;

use loom_bus::Bus;
use loom_core::config::{WorkshopGroup, WorkshopSection};
use loom_core::message::ModelTier;
use loom_workshop::Workshop;
use loom_workshop::dead_letters::DEFAULT_LIST_LIMIT;
use loom_workshop::eval::{Scoring, parse_suite};
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::catalog::{Dispatch, GatewayTool, ToolHints};
use crate::local_tools::{LocalToolError, object_schema, optional_str, required_str};

/// One workshop tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WorkshopAction {
    /// `workshop.worker.list`
    WorkerList,
    /// `workshop.worker.get`
    WorkerGet,
    /// `workshop.worker.update`
    WorkerUpdate,
    /// `workshop.worker.test`
    WorkerTest,
    /// `workshop.eval.run`
    EvalRun,
    /// `workshop.eval.compare`
    EvalCompare,
    /// `workshop.impact.analyze`
    ImpactAnalyze,
    /// `workshop.deadletter.list`
    DeadletterList,
    /// `workshop.deadletter.replay`
    DeadletterReplay,
}

impl WorkshopAction {
    /// The action as the original names it (`worker.list`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            WorkshopAction::WorkerList => "worker.list",
            WorkshopAction::WorkerGet => "worker.get",
            WorkshopAction::WorkerUpdate => "worker.update",
            WorkshopAction::WorkerTest => "worker.test",
            WorkshopAction::EvalRun => "eval.run",
            WorkshopAction::EvalCompare => "eval.compare",
            WorkshopAction::ImpactAnalyze => "impact.analyze",
            WorkshopAction::DeadletterList => "deadletter.list",
            WorkshopAction::DeadletterReplay => "deadletter.replay",
        }
    }

    /// The tool's name (`workshop.worker.list`, …).
    pub fn tool_name(self) -> String {
        format!("workshop.{}", self.as_str())
    }

    fn group(self) -> WorkshopGroup {
        match self {
            WorkshopAction::WorkerList
            | WorkshopAction::WorkerGet
            | WorkshopAction::WorkerUpdate => WorkshopGroup::Worker,
            WorkshopAction::WorkerTest => WorkshopGroup::Test,
            WorkshopAction::EvalRun | WorkshopAction::EvalCompare => WorkshopGroup::Eval,
            WorkshopAction::ImpactAnalyze => WorkshopGroup::Impact,
            WorkshopAction::DeadletterList | WorkshopAction::DeadletterReplay => {
                WorkshopGroup::Deadletter
            }
        }
    }

    /// Every action, in tool-list order.
    pub const ALL: [WorkshopAction; 9] = [
        WorkshopAction::WorkerList,
        WorkshopAction::WorkerGet,
        WorkshopAction::WorkerUpdate,
        WorkshopAction::WorkerTest,
        WorkshopAction::EvalRun,
        WorkshopAction::EvalCompare,
        WorkshopAction::ImpactAnalyze,
        WorkshopAction::DeadletterList,
        WorkshopAction::DeadletterReplay,
    ];
}

/// The workshop tools `section` enables, in the original's order.
pub fn workshop_tools(section: &WorkshopSection) -> Vec<GatewayTool> {
    WorkshopAction::ALL
        .into_iter()
        .filter(|a| section.enable.contains(&a.group()))
        .filter_map(definition)
        .collect()
}

fn definition(action: WorkshopAction) -> Option<GatewayTool> {
    let s = |d: &str| json!({"type": "string", "description": d});
    let read_only = ToolHints {
        read_only: Some(true),
        ..ToolHints::default()
    };
    let (description, properties, required, hints) = match action {
        WorkshopAction::WorkerList => (
            "List all worker configs with name, tier, and app source.",
            json!({}),
            None,
            read_only,
        ),
        WorkshopAction::WorkerGet => (
            "Get a worker config by name, including full YAML and version history.",
            json!({"name": s("Worker config name")}),
            Some(json!(["name"])),
            read_only,
        ),
        WorkshopAction::WorkerUpdate => (
            "Create or update a worker config. Validates before saving.",
            json!({
                "name": s("Worker config name"),
                "config_yaml": s("Full worker config as YAML"),
                "description": s("Description of the change (stored in version history)"),
            }),
            Some(json!(["name", "config_yaml"])),
            ToolHints {
                read_only: Some(false),
                destructive: Some(true),
                ..ToolHints::default()
            },
        ),
        WorkshopAction::WorkerTest => (
            "Run a worker against a test payload. Returns structured output, validation results, token usage, and latency.",
            json!({
                "name": s("Worker config name"),
                "payload": {"type": "object", "description": "Input payload for the worker"},
                "tier": s("Model tier override (local, standard, frontier)"),
            }),
            Some(json!(["name", "payload"])),
            read_only,
        ),
        WorkshopAction::EvalRun => (
            "Run an eval suite against a worker. Returns run_id and summary scores.",
            json!({
                "name": s("Worker config name"),
                "test_suite": {
                    "type": "array",
                    "description": "Test cases to run",
                    "items": {
                        "type": "object",
                        "required": ["name", "input", "expected_output"],
                        "properties": {
                            "name": {"type": "string", "description": "Test case name"},
                            "input": {"type": "object", "description": "Input payload"},
                            "expected_output": {"type": "object", "description": "Expected output"},
                        },
                    },
                },
                "scoring": s("Scoring method: field_match (default), exact_match, llm_judge"),
                "tier": s("Model tier override (local, standard, frontier)"),
            }),
            Some(json!(["name", "test_suite"])),
            ToolHints {
                idempotent: Some(false),
                open_world: Some(false),
                ..ToolHints::default()
            },
        ),
        WorkshopAction::EvalCompare => (
            "Compare an eval run against the golden baseline for a worker. Returns per-case regression/improvement analysis.",
            json!({
                "name": s("Worker config name"),
                "run_id": s("Eval run ID to compare"),
            }),
            Some(json!(["name", "run_id"])),
            read_only,
        ),
        WorkshopAction::ImpactAnalyze => (
            "Analyze which pipelines and downstream stages are affected by changing a worker config. Returns risk assessment.",
            json!({"name": s("Worker config name")}),
            Some(json!(["name"])),
            read_only,
        ),
        WorkshopAction::DeadletterList => (
            "List dead-letter entries (failed/unroutable tasks) with reason and timestamps.",
            json!({
                "limit": {"type": "integer", "description": "Max entries to return (default 50)"},
                "offset": {"type": "integer", "description": "Offset for pagination"},
            }),
            None,
            read_only,
        ),
        WorkshopAction::DeadletterReplay => (
            "Re-publish a dead-letter task to the router for retry. This is a destructive operation \u{2014} the task will be re-dispatched.",
            json!({"entry_id": s("Dead-letter entry ID to replay")}),
            Some(json!(["entry_id"])),
            ToolHints {
                destructive: Some(true),
                ..ToolHints::default()
            },
        ),
    };
    let schema = object_schema(properties, required);
    GatewayTool::new(
        action.tool_name(),
        description,
        schema,
        Dispatch::Workshop { action },
    )
    .ok()
    .map(|t| t.with_hints(hints))
}

/// The workshop behind the tools, and the bus dead letters are replayed on.
#[derive(Clone)]
pub struct WorkshopTools {
    workshop: Workshop,
    bus: Option<Arc<dyn Bus>>,
}

impl std::fmt::Debug for WorkshopTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkshopTools")
            .field("workshop", &self.workshop)
            .field("bus", &self.bus.as_ref().map(|b| b.state()))
            .finish()
    }
}

impl WorkshopTools {
    /// Tools over `workshop`, replaying dead letters on `bus`.
    pub fn new(workshop: Workshop, bus: Option<Arc<dyn Bus>>) -> Self {
        WorkshopTools { workshop, bus }
    }

    /// The workshop.
    pub fn workshop(&self) -> &Workshop {
        &self.workshop
    }

    /// Runs `action` with `args` (already checked against the tool's schema).
    pub async fn call(
        &self,
        action: WorkshopAction,
        args: &Map<String, Value>,
    ) -> Result<Map<String, Value>, LocalToolError> {
        let w = &self.workshop;
        match action {
            WorkshopAction::WorkerList => {
                let workers = w.list_workers().await?;
                let count = workers.len();
                to_object(&json!({"workers": workers, "count": count}))
            }
            WorkshopAction::WorkerGet => {
                let name = required_str(args, "name", "'name' is required")?;
                to_object(&w.get_worker(name).await?)
            }
            WorkshopAction::WorkerUpdate => {
                let missing = "'name' and 'config_yaml' are required";
                let name = required_str(args, "name", missing)?;
                let yaml = required_str(args, "config_yaml", missing)?;
                let description = optional_str(args, "description");
                to_object(&w.update_worker(name, yaml, description).await?)
            }
            WorkshopAction::WorkerTest => {
                let missing = "'name' and 'payload' are required";
                let name = required_str(args, "name", missing)?;
                let payload = match args.get("payload") {
                    Some(Value::Object(p)) => p.clone(),
                    _ => return Err(LocalToolError::Required(missing.to_owned())),
                };
                let tier = tier(args)?;
                let run = w.test_worker(name, payload, tier).await?;
                let success = run.success();
                let mut out = to_object(&run)?;
                out.insert("success".to_owned(), json!(success));
                Ok(out)
            }
            WorkshopAction::EvalRun => {
                let missing = "'name' and 'test_suite' are required";
                let name = required_str(args, "name", missing)?;
                let suite = match args.get("test_suite") {
                    Some(v @ Value::Array(items)) if !items.is_empty() => v,
                    _ => return Err(LocalToolError::Required(missing.to_owned())),
                };
                let cases = parse_suite(suite)?;
                let scoring = match optional_str(args, "scoring") {
                    Some(s) => s.parse::<Scoring>()?,
                    None => Scoring::FieldMatch,
                };
                let tier = tier(args)?;
                to_object(&w.run_eval(name, cases, scoring, tier).await?)
            }
            WorkshopAction::EvalCompare => {
                let missing = "'name' and 'run_id' are required";
                let name = required_str(args, "name", missing)?;
                let run_id = required_str(args, "run_id", missing)?;
                to_object(&w.compare(name, run_id).await?)
            }
            WorkshopAction::ImpactAnalyze => {
                let name = required_str(args, "name", "'name' is required")?;
                to_object(&w.impact(name).await?)
            }
            WorkshopAction::DeadletterList => {
                let limit = count(args, "limit")?.unwrap_or(DEFAULT_LIST_LIMIT);
                let offset = count(args, "offset")?.unwrap_or(0);
                to_object(&w.dead_letters().list(limit, offset).await?)
            }
            WorkshopAction::DeadletterReplay => {
                let id = required_str(args, "entry_id", "'entry_id' is required")?;
                let Some(bus) = &self.bus else {
                    return Err(loom_workshop::WorkshopError::NoBus.into());
                };
                to_object(&w.dead_letters().replay(id, bus.as_ref()).await?)
            }
        }
    }
}

fn tier(args: &Map<String, Value>) -> Result<Option<ModelTier>, LocalToolError> {
    match optional_str(args, "tier") {
        None => Ok(None),
        Some(t) => t
            .parse::<ModelTier>()
            .map(Some)
            .map_err(|_| LocalToolError::Invalid {
                key: "tier",
                message: format!("unknown tier '{t}' (valid: local, standard, frontier)"),
            }),
    }
}

fn count(args: &Map<String, Value>, key: &'static str) -> Result<Option<usize>, LocalToolError> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or(LocalToolError::Invalid {
                key,
                message: "expected a non-negative integer".to_owned(),
            }),
    }
}

fn to_object(value: &impl Serialize) -> Result<Map<String, Value>, LocalToolError> {
    match serde_json::to_value(value) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => {
            let mut m = Map::new();
            m.insert("result".to_owned(), other);
            Ok(m)
        }
        Err(e) => Err(LocalToolError::Internal(e.to_string())),
    }
}
