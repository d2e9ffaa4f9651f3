//! A goal's context: what stages read through paths, conditions and input mappings.
//!
//! The context is the JSON object `{goal: {instruction, context}, <stage>: {output,
//! model_used, processing_time_ms, started_at, ended_at, wall_time_ms}, …}` (mesh spec
//! §9.2). Paths walk it key by key. Error texts keep loom-ai 0.9.0's wording
//! (`Path '<p>': key '<k>' not found in context`, `cannot traverse into <type> at '<k>'`)
//! and say more when the missing key is a stage that was skipped or has not run.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use loom_core::config::{CompareOp, Condition, ContextPath, MappingValue, PipelineConfig};
use loom_core::message::{JsonObject, OrchestratorGoal};
use serde_json::{Number, Value};

/// The values a goal's stages can read, and which stages were skipped.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    values: JsonObject,
    /// Skipped stage → its condition, as written.
    skipped: BTreeMap<String, String>,
    /// Every stage of the pipeline, to tell "not run yet" from "no such key".
    stages: BTreeSet<String>,
}

/// Why a path has no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathError {
    /// A key is absent.
    NotFound { path: String, key: String },
    /// A key was looked up inside a value that is not an object.
    Traverse {
        path: String,
        key: String,
        found: &'static str,
    },
    /// The path reads a stage that was skipped because its condition was false.
    Skipped {
        path: String,
        stage: String,
        condition: String,
    },
    /// The path reads a stage that has not finished before the reader runs.
    NotRun { path: String, stage: String },
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::NotFound { path, key } => {
                write!(f, "Path '{path}': key '{key}' not found in context")
            }
            PathError::Traverse { path, key, found } => {
                write!(f, "Path '{path}': cannot traverse into {found} at '{key}'")
            }
            PathError::Skipped {
                path,
                stage,
                condition,
            } => write!(
                f,
                "Path '{path}': stage '{stage}' was skipped (its condition '{condition}' was false), so it has no values"
            ),
            PathError::NotRun { path, stage } => write!(
                f,
                "Path '{path}': stage '{stage}' has not run before this stage; list it in depends_on"
            ),
        }
    }
}

impl Context {
    /// `{goal: {instruction, context}}` for a pipeline with `config`'s stages.
    pub(crate) fn new(goal: &OrchestratorGoal, config: &PipelineConfig) -> Context {
        let mut goal_value = JsonObject::new();
        goal_value.insert(
            "instruction".into(),
            Value::String(goal.instruction.clone()),
        );
        goal_value.insert("context".into(), Value::Object(goal.context.clone()));
        let mut values = JsonObject::new();
        values.insert("goal".into(), Value::Object(goal_value));
        Context {
            values,
            skipped: BTreeMap::new(),
            stages: config
                .stages
                .iter()
                .map(|s| s.name.as_str().to_owned())
                .collect(),
        }
    }

    /// Records a finished stage's values (`{output, model_used, …}`).
    pub(crate) fn record(&mut self, stage: &str, values: JsonObject) {
        self.values.insert(stage.to_owned(), Value::Object(values));
    }

    /// Records that `stage` was skipped because `condition` was false.
    pub(crate) fn skip(&mut self, stage: &str, condition: &Condition) {
        self.skipped
            .insert(stage.to_owned(), render_condition(condition));
    }

    /// Each finished stage's `output`, in the order the stages finished.
    pub(crate) fn outputs(&self) -> JsonObject {
        self.values
            .iter()
            .filter(|(k, _)| k.as_str() != "goal")
            .map(|(k, v)| (k.clone(), v.get("output").cloned().unwrap_or(Value::Null)))
            .collect()
    }

    /// The value at `path`.
    pub(crate) fn resolve(&self, path: &ContextPath) -> Result<&Value, PathError> {
        let mut segments = path.segments();
        let Some(root) = segments.next() else {
            return Err(PathError::NotFound {
                path: path.to_string(),
                key: String::new(),
            });
        };
        let mut current = match self.values.get(root) {
            Some(v) => v,
            None => return Err(self.missing_root(path, root)),
        };
        for key in segments {
            current = match current {
                Value::Object(map) => map.get(key).ok_or_else(|| PathError::NotFound {
                    path: path.to_string(),
                    key: key.to_owned(),
                })?,
                other => {
                    return Err(PathError::Traverse {
                        path: path.to_string(),
                        key: key.to_owned(),
                        found: python_type(other),
                    });
                }
            };
        }
        Ok(current)
    }

    fn missing_root(&self, path: &ContextPath, root: &str) -> PathError {
        if let Some(condition) = self.skipped.get(root) {
            PathError::Skipped {
                path: path.to_string(),
                stage: root.to_owned(),
                condition: condition.clone(),
            }
        } else if self.stages.contains(root) {
            PathError::NotRun {
                path: path.to_string(),
                stage: root.to_owned(),
            }
        } else {
            PathError::NotFound {
                path: path.to_string(),
                key: root.to_owned(),
            }
        }
    }

    /// Whether a stage with `condition` runs. A path that cannot be resolved (missing key,
    /// skipped stage) means "skip", as in the original.
    pub(crate) fn condition_holds(&self, condition: &Condition) -> bool {
        let Ok(left) = self.resolve(&condition.left) else {
            return false;
        };
        let equal = values_equal(left, &condition.right);
        match condition.op {
            CompareOp::Eq => equal,
            CompareOp::Ne => !equal,
        }
    }

    /// The payload built from `mapping`: literals as written, paths resolved. Stops at the
    /// first path that cannot be resolved.
    pub(crate) fn payload(
        &self,
        mapping: &[(String, MappingValue)],
    ) -> Result<JsonObject, PathError> {
        let mut payload = JsonObject::new();
        for (field, value) in mapping {
            let v = match value {
                MappingValue::Literal(v) => v.clone(),
                MappingValue::Path(p) => self.resolve(p)?.clone(),
            };
            payload.insert(field.clone(), v);
        }
        Ok(payload)
    }
}

/// Equality for conditions: numbers by value (`5 == 5.0`), a numeric string against a
/// number by value (goal context from `loom submit --context n=5` is text), everything
/// else by JSON equality (so `true` is not `1`, and `"true"` is not `true`).
fn values_equal(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Number(a), Value::Number(b)) => numbers_equal(a, b),
        (Value::String(s), Value::Number(b)) => s
            .trim()
            .parse::<Number>()
            .is_ok_and(|a| numbers_equal(&a, b)),
        _ => left == right,
    }
}

fn numbers_equal(a: &Number, b: &Number) -> bool {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return x == y;
    }
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= f64::EPSILON * x.abs().max(y.abs()),
        _ => false,
    }
}

/// The condition as written in the config: `extract.output.needs_ocr == true`.
pub(crate) fn render_condition(condition: &Condition) -> String {
    let op = match condition.op {
        CompareOp::Eq => "==",
        CompareOp::Ne => "!=",
    };
    let right = match &condition.right {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    format!("{} {op} {right}", condition.left)
}

/// The Python type name loom-ai 0.9.0 printed for a value (`str`, `int`, `list`…).
fn python_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use loom_core::config::load_pipeline;
    use serde_json::json;

    use super::*;

    /// A pipeline whose stage `s{i}` carries `conditions[i]` and whose stage `m` maps `mapping`.
    fn pipeline(conditions: &[&str], mapping: &str) -> PipelineConfig {
        let mut yaml = String::from(
            "name: p\npipeline_stages:\n  - {name: extract, worker_type: w}\n  - {name: ocr, worker_type: w, depends_on: [extract]}\n",
        );
        for (i, c) in conditions.iter().enumerate() {
            yaml.push_str(&format!(
                "  - {{name: s{i}, worker_type: w, condition: \"{c}\"}}\n"
            ));
        }
        if !mapping.is_empty() {
            yaml.push_str(&format!(
                "  - {{name: m, worker_type: w, input_mapping: {mapping}}}\n"
            ));
        }
        let dir = loom_testkit::TempWorkspace::new().expect("temp dir");
        let file = dir.join("p.yaml");
        std::fs::write(&file, yaml).expect("write");
        load(&file)
    }

    fn load(file: &Path) -> PipelineConfig {
        load_pipeline(file).unwrap_or_else(|e| panic!("invalid test pipeline: {e}"))
    }

    fn context(config: &PipelineConfig) -> Context {
        let mut goal = OrchestratorGoal::new("do it");
        goal.context = json!({"file_ref": "a.pdf", "n": "5", "nested": {"deep": [1, 2]}})
            .as_object()
            .cloned()
            .expect("object");
        let mut ctx = Context::new(&goal, config);
        let record = json!({
            "output": {"text": "hello", "needs_ocr": true, "count": 5, "ratio": 0.5, "none": null,
                       "items": ["a", "b"], "flag": false, "label": "invoice"},
            "model_used": "m", "processing_time_ms": 3,
        });
        ctx.record("extract", record.as_object().cloned().expect("object"));
        ctx
    }

    fn path(config: &PipelineConfig, stage: &str, field: &str) -> ContextPath {
        let s = config
            .stages
            .iter()
            .find(|s| s.name.as_str() == stage)
            .expect("stage");
        match s
            .input_mapping
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, v)| v)
        {
            Some(MappingValue::Path(p)) => p.clone(),
            other => panic!("not a path: {other:?}"),
        }
    }

    #[test]
    fn paths_walk_nested_keys_and_keep_lists_and_bools() {
        let config = pipeline(
            &[],
            "{a: extract.output.items, b: extract.output.needs_ocr, c: goal.context.nested, d: extract.output}",
        );
        let ctx = context(&config);
        assert_eq!(
            ctx.resolve(&path(&config, "m", "a")),
            Ok(&json!(["a", "b"]))
        );
        assert_eq!(ctx.resolve(&path(&config, "m", "b")), Ok(&json!(true)));
        assert_eq!(
            ctx.resolve(&path(&config, "m", "c")),
            Ok(&json!({"deep": [1, 2]}))
        );
        assert_eq!(
            ctx.resolve(&path(&config, "m", "d"))
                .map(|v| v["count"].clone()),
            Ok(json!(5))
        );
    }

    #[test]
    fn path_errors_name_the_key_and_the_type() {
        let config = pipeline(
            &[],
            "{a: extract.output.missing, b: extract.output.text.inner, c: goal.context.nested.deep.x}",
        );
        let ctx = context(&config);
        let err = |f| {
            ctx.resolve(&path(&config, "m", f))
                .expect_err("must fail")
                .to_string()
        };
        assert_eq!(
            err("a"),
            "Path 'extract.output.missing': key 'missing' not found in context"
        );
        assert_eq!(
            err("b"),
            "Path 'extract.output.text.inner': cannot traverse into str at 'inner'"
        );
        assert_eq!(
            err("c"),
            "Path 'goal.context.nested.deep.x': cannot traverse into list at 'x'"
        );
    }

    #[test]
    fn paths_into_skipped_or_unfinished_stages_say_so() {
        let config = pipeline(
            &["extract.output.needs_ocr == false"],
            "{a: ocr.output.text, b: s0.output}",
        );
        let mut ctx = context(&config);
        let err = |ctx: &Context, f| {
            ctx.resolve(&path(&config, "m", f))
                .expect_err("must fail")
                .to_string()
        };
        assert_eq!(
            err(&ctx, "a"),
            "Path 'ocr.output.text': stage 'ocr' has not run before this stage; list it in depends_on"
        );
        let cond = config.stages[2].condition.clone().expect("condition");
        ctx.skip("s0", &cond);
        assert_eq!(
            err(&ctx, "b"),
            "Path 's0.output': stage 's0' was skipped (its condition 'extract.output.needs_ocr == false' was false), so it has no values"
        );
    }

    #[test]
    fn conditions_compare_bools_null_strings_and_numbers() {
        let cases = [
            ("extract.output.needs_ocr == true", true),
            ("extract.output.needs_ocr == TRUE", true),
            ("extract.output.needs_ocr != true", false),
            ("extract.output.flag == false", true),
            ("extract.output.none == null", true),
            ("extract.output.none == None", true),
            ("extract.output.text != null", true),
            ("extract.output.label == invoice", true),
            ("extract.output.label == 'invoice'", true),
            ("extract.output.label != invoice", false),
            // L6: numbers compare numerically, not as strings.
            ("extract.output.count == 5", true),
            ("extract.output.count == 5.0", true),
            ("extract.output.count != 6", true),
            ("extract.output.ratio == 0.5", true),
            ("goal.context.n == 5", true),
            // A quoted number is a string; true is not 1.
            ("extract.output.count == '5'", false),
            ("extract.output.needs_ocr == 1", false),
            // A missing path skips the stage, whatever the operator.
            ("extract.output.absent == null", false),
            ("extract.output.absent != null", false),
            ("ocr.output.text != null", false),
        ];
        let conditions: Vec<&str> = cases.iter().map(|(c, _)| *c).collect();
        let config = pipeline(&conditions, "");
        let ctx = context(&config);
        for (i, (text, want)) in cases.iter().enumerate() {
            let c = config.stages[i + 2].condition.as_ref().expect("condition");
            assert_eq!(ctx.condition_holds(c), *want, "{text}");
        }
    }

    #[test]
    fn payload_mixes_literals_and_paths() {
        let config = pipeline(
            &[],
            "{text: extract.output.text, action: \"'store'\", limit: 5, tags: [x]}",
        );
        let ctx = context(&config);
        let stage = config
            .stages
            .iter()
            .find(|s| s.name.as_str() == "m")
            .expect("stage");
        let payload = ctx.payload(&stage.input_mapping).expect("payload");
        assert_eq!(
            Value::Object(payload),
            json!({"text": "hello", "action": "store", "limit": 5, "tags": ["x"]})
        );
        assert_eq!(Value::Object(ctx.outputs())["extract"]["count"], json!(5));
    }
}
