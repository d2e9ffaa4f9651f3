//! Pipeline configs: named stages, each a task for a worker, wired by input mappings.
//!
//! The format is loom-ai 0.9.0's (mesh spec §9.1). Fixes over the original, all
//! checked here at load time so the orchestrator never meets a bad pipeline:
//! stage and worker names are subject-safe; references to unknown stages are errors
//! (with a suggestion); conditions create dependencies (B8); single-quoted literals
//! (`"'store'"`) and plain YAML values are literals the runtime honours (B6);
//! a dependency cycle is an error naming the cycle instead of a goal that never answers.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::error::{ConfigErrors, suggestion};
use super::mcp_servers::{McpServers, mcp_section};
use super::worker::schema_entry;
use super::yaml::{Decoder, Node, index, node_at_pointer, parse_document, read_source, scalar_str};
use crate::contract::Contract;
use crate::message::ModelTier;
use crate::name::{PipelineName, StageName, WorkerName};

/// Per-stage wait when neither the stage nor the pipeline says, in seconds.
pub const DEFAULT_PIPELINE_TIMEOUT_SECONDS: f64 = 300.0;

/// The fields of a finished stage that paths may read (`extract.output.text`).
pub const STAGE_FIELDS: [&str; 6] = [
    "output",
    "model_used",
    "processing_time_ms",
    "started_at",
    "ended_at",
    "wall_time_ms",
];

/// The `worker_type` of stages that call an MCP tool (`mcp_tool:`) instead of a worker.
pub const MCP_TOOL_WORKER: &str = "mcp_tool";

/// A validated pipeline.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PipelineConfig {
    /// The pipeline's name: goals for it go to `loom.goals.{name}`, and it is the
    /// `worker_type` of its final result.
    pub name: PipelineName,
    /// What the pipeline does.
    pub description: Option<String>,
    /// Default wait for one stage's result, in seconds.
    pub timeout_seconds: f64,
    /// Goals this pipeline runs at once.
    pub max_concurrent_goals: u32,
    /// The stages, in file order.
    pub stages: Vec<StageConfig>,
    /// MCP servers for `mcp_tool` stages when the pipeline runs without a gateway
    /// (`loom pipeline`); a gateway gives its own `tools.mcp_servers` instead.
    pub mcp_servers: Option<McpServers>,
    /// Stage indices grouped in levels: every stage's dependencies are in earlier levels.
    /// Stages inside a level are in alphabetical order, as in the original.
    pub levels: Vec<Vec<usize>>,
    /// The file this config was read from.
    pub source: PathBuf,
}

/// One stage of a pipeline.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StageConfig {
    /// The stage's name, used in paths by later stages.
    pub name: StageName,
    /// The worker that runs it. For an `mcp_tool` stage this is the reserved name
    /// [`MCP_TOOL_WORKER`], which no task is sent to: check `mcp_tool` first.
    pub worker_type: WorkerName,
    /// The MCP tool that runs it instead of a worker (`server.tool`, or a bare tool name),
    /// called through the orchestrator's MCP registry with the mapped payload as arguments.
    pub mcp_tool: Option<String>,
    /// The tier its task asks for (default `local`, as in the original).
    pub tier: ModelTier,
    /// Payload field → where its value comes from, in file order.
    pub input_mapping: Vec<(String, MappingValue)>,
    /// Run the stage only when this holds.
    pub condition: Option<Condition>,
    /// Explicit dependencies, replacing those inferred from the mapping.
    pub depends_on: Option<Vec<StageName>>,
    /// The stages that must finish first: `depends_on` (or the mapping's stage
    /// roots) plus the condition's stage root.
    pub dependencies: BTreeSet<StageName>,
    /// Wait for this stage's result, overriding the pipeline's.
    pub timeout_seconds: Option<f64>,
    /// Extra attempts after a failure or timeout.
    pub max_retries: u32,
    /// Contract for the stage payload.
    pub input_schema: Option<Contract>,
    /// Contract for the stage output.
    pub output_schema: Option<Contract>,
}

/// Where a payload field's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum MappingValue {
    /// A value read from the goal or an earlier stage.
    Path(ContextPath),
    /// A fixed value: a single-quoted string (`"'store'"`) or any non-string YAML value.
    Literal(Value),
}

/// A dotted path into the pipeline context: `goal.context.file_ref`, `extract.output.text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextPath {
    raw: String,
}

impl ContextPath {
    /// The path as written.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The path's segments (`["extract", "output", "text"]`).
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.raw.split('.')
    }

    /// The stage this path reads from, or `None` for `goal.…`.
    pub fn stage(&self) -> Option<&str> {
        self.segments().next().filter(|root| *root != "goal")
    }
}

impl fmt::Display for ContextPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// A stage condition: `path op value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// What is compared.
    pub left: ContextPath,
    /// How.
    pub op: CompareOp,
    /// With what: `true`/`false`/`null` (`none`), a number, or a string (quotes optional).
    pub right: Value,
}

/// The comparison of a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

/// Loads and validates the pipeline config at `path`, reporting every error at once.
pub fn load_pipeline(path: &Path) -> Result<PipelineConfig, ConfigErrors> {
    let source = read_source(path)?;
    let root = parse_document(path, &source)?;
    let mut d = Decoder::new(path);
    let config = decode_pipeline(&mut d, &root);
    d.finish(config)
}

pub(crate) fn decode_pipeline(d: &mut Decoder, root: &Node<'_>) -> Option<PipelineConfig> {
    let mut m = d.map(root, "")?;
    let name = m.required(d, "name", Decoder::name::<PipelineName>);
    let description = m.optional(d, "description", Decoder::string);
    let timeout_seconds = m
        .optional(d, "timeout_seconds", Decoder::positive_number)
        .unwrap_or(DEFAULT_PIPELINE_TIMEOUT_SECONDS);
    let max_concurrent_goals = m
        .optional(d, "max_concurrent_goals", |d, n, p| d.u32_min(n, p, 1))
        .unwrap_or(1);
    let stages = m.required(d, "pipeline_stages", stages);
    let mcp_servers = mcp_section(d, &mut m);
    m.finish(d);
    let (stages, levels) = stages?;
    Some(PipelineConfig {
        name: name?,
        description,
        timeout_seconds,
        max_concurrent_goals,
        stages,
        levels,
        mcp_servers: mcp_servers?,
        source: d.file().to_owned(),
    })
}

/// Reads every stage, then checks what needs all of them: unique names, references
/// to existing stages, and an order without cycles.
fn stages(
    d: &mut Decoder,
    node: &Node<'_>,
    path: &str,
) -> Option<(Vec<StageConfig>, Vec<Vec<usize>>)> {
    let items = d.seq(node, path)?;
    if items.is_empty() {
        d.error(node, path, "a pipeline needs at least one stage");
        return None;
    }
    // Names as written, so that one broken stage does not hide the others' problems.
    let names: Vec<Option<&str>> = items.iter().map(|item| raw_name(item)).collect();
    let mut ok = true;
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, name) in names.iter().enumerate() {
        if let Some(name) = name {
            if let Some(first) = seen.insert(name, i) {
                d.error(
                    &items[i],
                    &index(path, i),
                    format!("duplicate stage name '{name}' (also pipeline_stages[{first}])"),
                );
                ok = false;
            }
        }
    }
    let mut declared: Vec<&str> = Vec::new();
    for name in names.iter().flatten() {
        if !declared.contains(name) {
            declared.push(name);
        }
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let p = index(path, i);
        match stage(d, item, &p) {
            Some(s) => {
                ok &= check_references(d, item, &p, &s, &declared);
                out.push(s);
            }
            None => ok = false,
        }
    }
    if !ok {
        return None;
    }
    match levels(&out) {
        Ok(levels) => Some((out, levels)),
        Err(cycle) => {
            d.error(
                node,
                path,
                format!(
                    "stages depend on each other in a cycle: {}",
                    cycle.join(" -> ")
                ),
            );
            None
        }
    }
}

fn raw_name<'n>(item: &'n Node<'_>) -> Option<&'n str> {
    match &item.data {
        saphyr::YamlData::Mapping(m) => m
            .iter()
            .find(|(k, _)| scalar_str(k) == Some("name"))
            .and_then(|(_, v)| scalar_str(v)),
        _ => None,
    }
}

fn stage(d: &mut Decoder, node: &Node<'_>, path: &str) -> Option<StageConfig> {
    let mut m = d.map(node, path)?;
    let name = m.required(d, "name", Decoder::name::<StageName>);
    let mcp_node = m.get("mcp_tool");
    let mcp_tool = m.optional(d, "mcp_tool", Decoder::non_empty_string);
    let worker_type = match (m.get("worker_type"), mcp_node) {
        (Some(_), Some(node)) => {
            let p = m.child_path("mcp_tool");
            d.error(node, &p, "set either 'worker_type' or 'mcp_tool', not both");
            None
        }
        (None, Some(_)) => WorkerName::try_from(MCP_TOOL_WORKER.to_owned()).ok(),
        (Some(_), None) => m.optional(d, "worker_type", |d, n, p| {
            let worker = Decoder::name::<WorkerName>(d, n, p)?;
            if worker.as_str() == MCP_TOOL_WORKER {
                d.error(
                    n,
                    p,
                    format!(
                        "'{MCP_TOOL_WORKER}' is reserved for stages that call an MCP tool: \
                         write 'mcp_tool: server.tool' instead"
                    ),
                );
                return None;
            }
            Some(worker)
        }),
        (None, None) => {
            let p = m.path().to_owned();
            d.error(
                node,
                &p,
                "missing required key 'worker_type' (or 'mcp_tool' to call an MCP tool)",
            );
            None
        }
    };
    if mcp_node.is_some() && mcp_tool.is_none() {
        return None;
    }
    let tier = m
        .optional(d, "tier", Decoder::parsed::<ModelTier>)
        .unwrap_or(ModelTier::Local);
    let input_mapping = m
        .optional(d, "input_mapping", input_mapping)
        .unwrap_or_default();
    let condition = m.optional(d, "condition", condition);
    let depends_on = m.optional(d, "depends_on", |d, n, p| {
        let items = d.seq(n, p)?;
        let names: Vec<Option<StageName>> = items
            .iter()
            .enumerate()
            .map(|(i, n)| d.name::<StageName>(n, &index(p, i)))
            .collect();
        names.into_iter().collect::<Option<Vec<_>>>()
    });
    let timeout_seconds = m.optional(d, "timeout_seconds", Decoder::positive_number);
    let max_retries = m
        .optional(d, "max_retries", |d, n, p| d.u32_min(n, p, 0))
        .unwrap_or(0);
    let input_schema = schema_entry(d, &mut m, "input_schema", "input_schema_ref");
    let output_schema = schema_entry(d, &mut m, "output_schema", "output_schema_ref");
    m.finish(d);
    let (name, worker_type) = (name?, worker_type?);
    let mut dependencies: BTreeSet<StageName> = BTreeSet::new();
    let mut roots: Vec<&str> = match &depends_on {
        Some(list) => list.iter().map(StageName::as_str).collect(),
        None => input_mapping
            .iter()
            .filter_map(|(_, v)| match v {
                MappingValue::Path(p) => p.stage(),
                MappingValue::Literal(_) => None,
            })
            .collect(),
    };
    roots.extend(condition.as_ref().and_then(|c| c.left.stage()));
    for root in roots {
        // Invalid roots are reported by check_references_and_order with a position.
        if let Ok(n) = StageName::try_from(root) {
            dependencies.insert(n);
        }
    }
    Some(StageConfig {
        name,
        worker_type,
        mcp_tool,
        tier,
        input_mapping,
        condition,
        depends_on,
        dependencies,
        timeout_seconds,
        max_retries,
        input_schema: input_schema?,
        output_schema: output_schema?,
    })
}

fn input_mapping(
    d: &mut Decoder,
    node: &Node<'_>,
    path: &str,
) -> Option<Vec<(String, MappingValue)>> {
    let mut m = d.map(node, path)?;
    let mut out = Vec::new();
    let mut ok = true;
    for (field, _key, value) in m.remaining() {
        let p = format!("{path}.{field}");
        match mapping_value(d, value, &p) {
            Some(v) => out.push((field.to_owned(), v)),
            None => ok = false,
        }
    }
    m.finish(d);
    ok.then_some(out)
}

fn mapping_value(d: &mut Decoder, node: &Node<'_>, path: &str) -> Option<MappingValue> {
    let Some(s) = scalar_str(node) else {
        // Numbers, booleans, null, lists and mappings are literal values.
        return d.json(node, path).map(MappingValue::Literal);
    };
    if let Some(inner) = s
        .strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .filter(|_| s.len() >= 2)
    {
        return Some(MappingValue::Literal(Value::String(inner.to_owned())));
    }
    context_path(d, node, path, s).map(MappingValue::Path)
}

/// Checks the shape of a path; whether its stage exists is checked later.
fn context_path(d: &mut Decoder, node: &Node<'_>, path: &str, s: &str) -> Option<ContextPath> {
    let segments: Vec<&str> = s.split('.').collect();
    if s.is_empty() || segments.iter().any(|seg| seg.is_empty()) {
        d.error(node, path, format!("invalid path '{s}': use dotted keys like goal.context.file_ref or extract.output.text (quote literals: \"'value'\")"));
        return None;
    }
    let problem = match segments.as_slice() {
        ["goal"] => {
            Some("a path must go into the goal: goal.instruction or goal.context[.key…]".to_owned())
        }
        ["goal", "instruction"] | ["goal", "context", ..] => None,
        ["goal", "instruction", ..] => {
            Some("goal.instruction is a string; nothing is inside it".to_owned())
        }
        ["goal", other, ..] => Some(format!(
            "the goal has no '{other}'{} (valid: instruction, context)",
            suggestion(other, ["instruction", "context"])
        )),
        [_stage] => Some(format!(
            "a stage path names a field: {s}.output[.key…] ({})",
            STAGE_FIELDS.join(", ")
        )),
        [_stage, field, ..] if !STAGE_FIELDS.contains(field) => Some(format!(
            "a stage has no field '{field}'{} (valid: {})",
            suggestion(field, STAGE_FIELDS),
            STAGE_FIELDS.join(", ")
        )),
        [_stage, field, _, ..] if *field != "output" => Some(format!(
            "'{field}' is a scalar; only output has keys inside"
        )),
        _ => None,
    };
    match problem {
        Some(p) => {
            d.error(node, path, format!("invalid path '{s}': {p}"));
            None
        }
        None => Some(ContextPath { raw: s.to_owned() }),
    }
}

fn condition(d: &mut Decoder, node: &Node<'_>, path: &str) -> Option<Condition> {
    let s = d.string(node, path)?;
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [left, op, right] = parts.as_slice() else {
        d.error(
            node,
            path,
            format!("invalid condition '{s}': expected 'path == value' or 'path != value'"),
        );
        return None;
    };
    let op = match *op {
        "==" => CompareOp::Eq,
        "!=" => CompareOp::Ne,
        other => {
            d.error(
                node,
                path,
                format!("invalid condition '{s}': unknown operator '{other}' (valid: ==, !=)"),
            );
            return None;
        }
    };
    let left = context_path(d, node, path, left)?;
    Some(Condition {
        left,
        op,
        right: condition_value(right),
    })
}

fn condition_value(s: &str) -> Value {
    match s.to_ascii_lowercase().as_str() {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        "null" | "none" => return Value::Null,
        _ => {}
    }
    if let Some(inner) = ['\'', '"']
        .iter()
        .find_map(|q| s.strip_prefix(*q).and_then(|r| r.strip_suffix(*q)))
    {
        return Value::String(inner.to_owned());
    }
    match serde_json::from_str::<serde_json::Number>(s) {
        Ok(n) => Value::Number(n),
        Err(_) => Value::String(s.to_owned()),
    }
}

/// Checks that every stage a path, condition or `depends_on` of `s` names exists and is
/// not `s` itself.
fn check_references(
    d: &mut Decoder,
    node: &Node<'_>,
    path: &str,
    s: &StageConfig,
    declared: &[&str],
) -> bool {
    // (stage named, key path, JSON pointer of the value inside the stage)
    let mut refs: Vec<(&str, String, String)> = Vec::new();
    for (field, v) in &s.input_mapping {
        if let MappingValue::Path(p) = v {
            let ptr = format!(
                "/input_mapping/{}",
                field.replace('~', "~0").replace('/', "~1")
            );
            refs.extend(
                p.stage()
                    .map(|st| (st, format!("{path}.input_mapping.{field}"), ptr)),
            );
        }
    }
    if let Some(c) = &s.condition {
        refs.extend(
            c.left
                .stage()
                .map(|st| (st, format!("{path}.condition"), "/condition".to_owned())),
        );
    }
    if let Some(list) = &s.depends_on {
        for (i, st) in list.iter().enumerate() {
            refs.push((
                st.as_str(),
                format!("{path}.depends_on[{i}]"),
                format!("/depends_on/{i}"),
            ));
        }
    }
    let mut ok = true;
    for (target, key, ptr) in refs {
        let problem = if target == s.name.as_str() {
            format!("stage '{target}' refers to itself")
        } else if !declared.contains(&target) {
            match suggestion(target, declared.iter().copied().chain(["goal"])) {
                h if h.is_empty() => {
                    format!("unknown stage '{target}' (stages: {})", declared.join(", "))
                }
                h => format!("unknown stage '{target}'{h}"),
            }
        } else {
            continue;
        };
        d.error(node_at_pointer(node, &ptr), &key, problem);
        ok = false;
    }
    ok
}

/// Kahn's algorithm; stages ready together form a level, sorted by name.
/// On a cycle, returns the stages of one cycle (first repeated at the end).
fn levels(stages: &[StageConfig]) -> Result<Vec<Vec<usize>>, Vec<String>> {
    let by_name: BTreeMap<&str, usize> = stages
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    let deps: Vec<Vec<usize>> = stages
        .iter()
        .map(|s| {
            s.dependencies
                .iter()
                .filter_map(|n| by_name.get(n.as_str()).copied())
                .collect()
        })
        .collect();
    let mut done = vec![false; stages.len()];
    let mut levels = Vec::new();
    while done.iter().any(|d| !d) {
        let mut ready: Vec<usize> = (0..stages.len())
            .filter(|&i| !done[i] && deps[i].iter().all(|&j| done[j]))
            .collect();
        if ready.is_empty() {
            return Err(find_cycle(stages, &deps, &done));
        }
        ready.sort_by_key(|&i| stages[i].name.as_str());
        for &i in &ready {
            done[i] = true;
        }
        levels.push(ready);
    }
    Ok(levels)
}

fn find_cycle(stages: &[StageConfig], deps: &[Vec<usize>], done: &[bool]) -> Vec<String> {
    // Every remaining stage has an unfinished dependency, so walking them must revisit one.
    let Some(start) = (0..stages.len()).find(|&i| !done[i]) else {
        return Vec::new();
    };
    let mut path = vec![start];
    let mut cur = start;
    loop {
        let Some(&next) = deps[cur].iter().find(|&&j| !done[j]) else {
            return Vec::new();
        };
        if let Some(pos) = path.iter().position(|&p| p == next) {
            let mut cycle: Vec<String> = path[pos..]
                .iter()
                .map(|&i| stages[i].name.to_string())
                .collect();
            cycle.push(stages[next].name.to_string());
            return cycle;
        }
        path.push(next);
        cur = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(src: &str) -> Result<PipelineConfig, ConfigErrors> {
        let file = Path::new("p.yaml");
        let root = parse_document(file, src)?;
        let mut d = Decoder::new(file);
        let c = decode_pipeline(&mut d, &root);
        d.finish(c)
    }

    fn messages(src: &str) -> Vec<String> {
        load(src)
            .expect_err("invalid")
            .errors()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    fn level_names(p: &PipelineConfig) -> Vec<Vec<&str>> {
        p.levels
            .iter()
            .map(|l| l.iter().map(|&i| p.stages[i].name.as_str()).collect())
            .collect()
    }

    const DOC: &str = concat!(
        "name: doc_pipeline\ntimeout_seconds: 120\npipeline_stages:\n",
        "  - name: extract\n    worker_type: doc_extractor\n    input_mapping: {file_ref: goal.context.file_ref}\n",
        "  - name: ocr\n    worker_type: ocr\n    input_mapping: {file_ref: goal.context.file_ref}\n",
        "    condition: \"extract.output.needs_ocr == true\"\n",
        "  - name: classify\n    worker_type: doc_classifier\n    tier: standard\n",
        "    input_mapping: {text: extract.output.text, action: \"'store'\", limit: 5}\n",
    );

    #[test]
    fn conditions_create_dependencies() {
        let p = load(DOC).expect("valid");
        // B8: ocr's condition reads extract, so ocr runs after it, not beside it.
        assert_eq!(level_names(&p), [vec!["extract"], vec!["classify", "ocr"]]);
        assert_eq!(p.stages[0].tier, ModelTier::Local);
        assert_eq!(p.stages[2].tier, ModelTier::Standard);
        let cond = p.stages[1].condition.as_ref().expect("condition");
        assert_eq!((cond.op, &cond.right), (CompareOp::Eq, &Value::Bool(true)));
    }

    #[test]
    fn quoted_and_plain_values_are_literals() {
        let p = load(DOC).expect("valid");
        let m = &p.stages[2].input_mapping;
        assert_eq!(
            m[1],
            (
                "action".to_owned(),
                MappingValue::Literal(Value::String("store".into()))
            )
        );
        assert_eq!(
            m[2],
            ("limit".to_owned(), MappingValue::Literal(Value::from(5)))
        );
    }

    #[test]
    fn diamond_gives_three_levels_and_cycles_are_named() {
        let p = load(
            "name: d\npipeline_stages:\n  - {name: a, worker_type: w, input_mapping: {x: goal.context.x}}\n\
             \x20 - {name: c, worker_type: w, input_mapping: {x: a.output}}\n  - {name: b, worker_type: w, input_mapping: {x: a.output}}\n\
             \x20 - {name: e, worker_type: w, input_mapping: {x: b.output, y: c.output.z}}\n",
        )
        .expect("valid");
        assert_eq!(level_names(&p), [vec!["a"], vec!["b", "c"], vec!["e"]]);
        let errs = messages(
            "name: d\npipeline_stages:\n  - {name: a, worker_type: w, input_mapping: {x: b.output}}\n\
             \x20 - {name: b, worker_type: w, depends_on: [a]}\n",
        );
        assert_eq!(
            errs,
            ["p.yaml:3:3: pipeline_stages: stages depend on each other in a cycle: a -> b -> a"]
        );
    }

    #[test]
    fn bad_references_are_reported_with_suggestions() {
        let errs = messages(
            "name: d\npipeline_stages:\n  - {name: extract, worker_type: w, input_mapping: {x: goal.contxt.a}}\n\
             \x20 - {name: b, worker_type: w, input_mapping: {x: extrct.output}, condition: 'extract.output.ok >= 3'}\n\
             \x20 - {name: extract, worker_type: W}\n  - {name: c, worker_type: w, depends_on: [b, extract, zzz]}\n",
        );
        let want = [
            "p.yaml:3:56: pipeline_stages[0].input_mapping.x: invalid path 'goal.contxt.a': the goal has no 'contxt'; did you mean 'context'? (valid: instruction, context)",
            "p.yaml:4:50: pipeline_stages[1].input_mapping.x: unknown stage 'extrct'; did you mean 'extract'?",
            "p.yaml:4:77: pipeline_stages[1].condition: invalid condition 'extract.output.ok >= 3': unknown operator '>=' (valid: ==, !=)",
            "p.yaml:5:5: pipeline_stages[2]: duplicate stage name 'extract' (also pipeline_stages[0])",
            "p.yaml:5:34: pipeline_stages[2].worker_type: name 'W' is not valid",
            "p.yaml:6:56: pipeline_stages[3].depends_on[2]: unknown stage 'zzz' (stages: extract, b, c)",
        ];
        assert_eq!(errs.len(), want.len(), "{errs:#?}");
        for (g, w) in errs.iter().zip(want) {
            assert!(g.starts_with(w), "\n got: {g}\nwant: {w}");
        }
    }

    #[test]
    fn self_and_unknown_stage_references_are_errors() {
        let errs = messages(
            "name: d\npipeline_stages:\n  - {name: a, worker_type: w, input_mapping: {x: a.output}}\n\
             \x20 - {name: b, worker_type: w, input_mapping: {x: extrct.output}}\n",
        );
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert!(
            errs[0].ends_with("pipeline_stages[0].input_mapping.x: stage 'a' refers to itself"),
            "{}",
            errs[0]
        );
        assert!(
            errs[1].contains("unknown stage 'extrct' (stages: a, b)"),
            "{}",
            errs[1]
        );
    }

    #[test]
    fn pipeline_numbers_are_checked() {
        let errs = messages(
            "name: d\ntimeout_seconds: -1\nmax_concurrent_goals: 0\npipeline_stages: []\n",
        );
        assert_eq!(errs.len(), 3, "{errs:#?}");
        assert!(errs[0].contains("timeout_seconds: must be a number greater than 0"));
        assert!(errs[1].contains("max_concurrent_goals: must be at least 1, found 0"));
        assert!(errs[2].contains("a pipeline needs at least one stage"));
    }
}
