//! Gateway configs: the one YAML file that turns workers, pipelines and query backends
//! into MCP tools, and a workspace folder into MCP resources.
//!
//! The keys are loom-ai 0.9.0's (gateway spec §2.1) and every rule of its validator holds.
//! Beyond it: unknown keys, invalid tiers and duplicate tool names are errors; referenced
//! worker and pipeline configs are loaded and validated too (their errors point into their
//! own files); paths are relative to this file, not to the working directory.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde_json::{Map, Value};

use super::ConfigKind;
use super::error::{ConfigErrors, Location, suggestion};
use super::mcp_servers::{McpServers, mcp_section};
use super::pipeline::{PipelineConfig, load_pipeline};
use super::worker::{WorkerConfig, load_worker};
use super::yaml::{
    Decoder, MapReader, Node, index, location, node_at_pointer, parse_document, read_source,
};
use crate::message::ModelTier;
use crate::name::WorkerName;

/// Wait for a query tool's result when the entry does not say, in seconds.
pub const DEFAULT_QUERY_TIMEOUT_SECONDS: f64 = 30.0;

/// Longest MCP tool name (MCP 2025-11-25 recommends 1–128 characters).
pub const MAX_TOOL_NAME_LEN: usize = 128;

/// A validated gateway config.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// The MCP server's name.
    pub name: String,
    /// Shown to MCP clients as the server's instructions.
    pub description: Option<String>,
    /// NATS server to dispatch over; without it (and without `--nats-url`) the gateway
    /// runs the mesh in-process.
    pub nats_url: Option<String>,
    /// One tool per worker entry.
    pub workers: Vec<WorkerTool>,
    /// One tool per pipeline entry.
    pub pipelines: Vec<PipelineTool>,
    /// One tool per action of each query entry.
    pub queries: Vec<QueryTools>,
    /// Workshop tools, when the section is present (even empty).
    pub workshop: Option<WorkshopSection>,
    /// Session tools, when the section is present (even empty).
    pub session: Option<SessionSection>,
    /// Workspace files served as MCP resources.
    pub resources: Option<ResourcesSection>,
    /// Upstream MCP servers whose tools, resources and prompts the gateway re-exports
    /// (`tools.mcp_servers`, with `tools.mcp_prefix_mode`).
    pub mcp_servers: Option<McpServers>,
    /// The file this config was read from.
    pub source: PathBuf,
}

/// A worker exposed as a tool.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerTool {
    /// The tool's name (the entry's `name`, else the worker's).
    pub tool_name: String,
    /// The entry's description, overriding the worker's.
    pub description: Option<String>,
    /// The tier calls ask for, overriding the worker's default.
    pub tier: Option<ModelTier>,
    /// The worker config the entry points at, loaded and validated.
    pub worker: WorkerConfig,
}

/// A pipeline exposed as a tool.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PipelineTool {
    /// The tool's name.
    pub tool_name: String,
    /// The tool's description.
    pub description: Option<String>,
    /// The pipeline config the entry points at, loaded and validated.
    pub pipeline: PipelineConfig,
}

/// A query backend exposed as one tool per action (`{name_prefix}_{action}`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct QueryTools {
    /// Which backend.
    pub backend: QueryBackendKind,
    /// The actions to expose, in order.
    pub actions: Vec<QueryAction>,
    /// Prefix of the tool names.
    pub name_prefix: String,
    /// The backend's settings (table, columns, database path…).
    pub backend_config: Map<String, Value>,
    /// The query worker's type (default `{name_prefix}_query`).
    pub worker_type: WorkerName,
    /// Wait for a result, in seconds.
    pub timeout_seconds: f64,
}

impl QueryTools {
    /// The tool name of `action`.
    pub fn tool_name(&self, action: QueryAction) -> String {
        format!("{}_{}", self.name_prefix, action.as_str())
    }
}

macro_rules! string_enum {
    ($(#[$doc:meta])* $ty:ident, $what:literal { $($(#[$vdoc:meta])* $var:ident = $s:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $ty {
            $($(#[$vdoc])* $var),+
        }

        impl $ty {
            /// Every value, in order.
            pub const ALL: &'static [$ty] = &[$($ty::$var),+];

            /// The config spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($ty::$var => $s),+ }
            }
        }

        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok($ty::$var),)+
                    other => {
                        let valid = [$($s),+];
                        Err(format!("unknown {} '{other}'{} (valid: {})", $what, suggestion(other, valid), valid.join(", ")))
                    }
                }
            }
        }
    };
}

string_enum!(
    /// The database behind query tools.
    QueryBackendKind, "query backend" {
        /// SQLite (bundled): the embedded default.
        Sqlite = "sqlite",
        /// DuckDB (cargo feature `duckdb`).
        Duckdb = "duckdb",
    }
);

string_enum!(
    /// A query tool action.
    QueryAction, "query action" {
        /// Full-text search.
        Search = "search",
        /// Attribute filters.
        Filter = "filter",
        /// Grouped counts.
        Stats = "stats",
        /// One record by id.
        Get = "get",
        /// Embedding similarity search.
        VectorSearch = "vector_search",
    }
);

string_enum!(
    /// A group of workshop tools.
    WorkshopGroup, "workshop group" {
        /// `workshop.worker.list|get|update`.
        Worker = "worker",
        /// `workshop.worker.test`.
        Test = "test",
        /// `workshop.eval.run|compare`.
        Eval = "eval",
        /// `workshop.impact.analyze`.
        Impact = "impact",
        /// `workshop.deadletter.list|replay`.
        Deadletter = "deadletter",
    }
);

impl WorkshopGroup {
    /// Groups enabled when `enable` is absent (dead letters are opt-in, as in the original).
    pub const DEFAULT: [WorkshopGroup; 4] = [
        WorkshopGroup::Worker,
        WorkshopGroup::Test,
        WorkshopGroup::Eval,
        WorkshopGroup::Impact,
    ];

    /// The tools this group adds.
    pub fn tool_names(self) -> &'static [&'static str] {
        match self {
            WorkshopGroup::Worker => &[
                "workshop.worker.list",
                "workshop.worker.get",
                "workshop.worker.update",
            ],
            WorkshopGroup::Test => &["workshop.worker.test"],
            WorkshopGroup::Eval => &["workshop.eval.run", "workshop.eval.compare"],
            WorkshopGroup::Impact => &["workshop.impact.analyze"],
            WorkshopGroup::Deadletter => {
                &["workshop.deadletter.list", "workshop.deadletter.replay"]
            }
        }
    }
}

string_enum!(
    /// A session tool.
    SessionAction, "session action" {
        /// `session.start`.
        Start = "start",
        /// `session.end`.
        End = "end",
        /// `session.status`.
        Status = "status",
        /// `session.sync_check`.
        SyncCheck = "sync_check",
        /// `session.sync`.
        Sync = "sync",
    }
);

impl SessionAction {
    /// The tool name (`session.start`, …).
    pub fn tool_name(self) -> String {
        format!("session.{}", self.as_str())
    }
}

/// The `tools.workshop` section.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WorkshopSection {
    /// Where worker configs live (default `configs/` next to this file).
    pub configs_dir: PathBuf,
    /// Where apps live.
    pub apps_dir: Option<PathBuf>,
    /// Enabled tool groups.
    pub enable: BTreeSet<WorkshopGroup>,
    /// The tier whose model judges eval cases scored `llm_judge` (default `standard`).
    pub judge_tier: Option<ModelTier>,
}

/// The `tools.session` section.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SessionSection {
    /// The framework repository.
    pub framework_dir: Option<PathBuf>,
    /// The session workspace.
    pub workspace_dir: Option<PathBuf>,
    /// An extra repository.
    pub baft_dir: Option<PathBuf>,
    /// NATS for the session checks.
    pub nats_url: Option<String>,
    /// Ollama for the session checks.
    pub ollama_url: Option<String>,
    /// The upstream `sync_check` compares with (`origin/main`); default: the current
    /// branch's upstream (`@{upstream}`).
    pub upstream: Option<String>,
    /// A command (program and arguments) run in the framework folder after `start` and
    /// `sync` pulled, e.g. a data import; replaces the original's DuckDB import.
    pub hook: Option<Vec<String>>,
    /// How long the hook may run, in seconds (default 120).
    pub hook_timeout_seconds: Option<f64>,
    /// What `end` commits (`git add -- <paths>`); default everything (`git add -A`).
    pub commit_paths: Option<Vec<String>>,
    /// Enabled session tools.
    pub enable: BTreeSet<SessionAction>,
}

/// The `resources` section.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ResourcesSection {
    /// The folder served as `workspace:///…`.
    pub workspace_dir: PathBuf,
    /// Glob patterns a file must match; `None` serves every file.
    pub patterns: Option<Vec<String>>,
}

/// Loads and validates the gateway config at `path` and every config it references,
/// reporting every error at once.
pub fn load_gateway(path: &Path) -> Result<GatewayConfig, ConfigErrors> {
    let source = read_source(path)?;
    let root = parse_document(path, &source)?;
    let mut d = Decoder::new(path);
    let config = decode_gateway(&mut d, &root);
    d.finish(config)
}

pub(crate) fn decode_gateway(d: &mut Decoder, root: &Node<'_>) -> Option<GatewayConfig> {
    let mut m = d.map(root, "")?;
    let name = m.required(d, "name", Decoder::non_empty_string);
    let description = m.optional(d, "description", Decoder::string);
    let nats_url = m.optional(d, "nats_url", nats_url);
    let mut names = ToolNames::default();
    let tools = match m.get("tools") {
        Some(n) => tools(d, n, "tools", &mut names),
        None => {
            if m.has("tools") {
                // `tools:` with nothing after it: the original rejects it too.
                let p = m.child_path("tools");
                d.error(
                    m.node(),
                    &p,
                    "'tools' must be a mapping (remove the key or add workers/pipelines/queries)",
                );
                None
            } else {
                Some(Tools::default())
            }
        }
    };
    let resources = m.optional(d, "resources", resources);
    m.finish(d);
    names.report(d);
    let tools = tools?;
    check_mcp_stages(d, root, &tools);
    Some(GatewayConfig {
        name: name?,
        description,
        nats_url,
        workers: tools.workers,
        pipelines: tools.pipelines,
        queries: tools.queries,
        workshop: tools.workshop,
        session: tools.session,
        mcp_servers: tools.mcp_servers,
        resources,
        source: d.file().to_owned(),
    })
}

/// Each `mcp_tool` stage of a pipeline this gateway serves needs MCP servers
/// (`tools.mcp_servers`, else the pipeline's own `mcp_servers`), and a `server.tool` name
/// needs that server (a bare name is checked when the tool is called).
fn check_mcp_stages(d: &mut Decoder, root: &Node<'_>, tools: &Tools) {
    for (i, entry) in tools.pipelines.iter().enumerate() {
        let path = format!("tools.pipelines[{i}]");
        let node = node_at_pointer(root, &format!("/tools/pipelines/{i}"));
        for stage in &entry.pipeline.stages {
            let Some(tool) = &stage.mcp_tool else {
                continue;
            };
            let what = format!(
                "pipeline '{}' stage '{}' calls MCP tool '{tool}'",
                entry.pipeline.name, stage.name
            );
            // The gateway's servers when it has some (an embedded mesh uses them), else
            // the pipeline's own (`loom pipeline` uses them).
            let Some(mcp) = tools
                .mcp_servers
                .as_ref()
                .or(entry.pipeline.mcp_servers.as_ref())
            else {
                d.error(
                    node,
                    &path,
                    format!(
                        "{what}, but neither tools.mcp_servers nor the pipeline's mcp_servers is set"
                    ),
                );
                continue;
            };
            let servers = mcp.servers.iter().map(|s| s.name.as_str());
            if let Some((server, _)) = tool.split_once('.')
                && !mcp.servers.iter().any(|s| s.name == server)
            {
                d.error(
                    node,
                    &path,
                    format!(
                        "{what}, but there is no MCP server '{server}'{}",
                        suggestion(server, servers)
                    ),
                );
            }
        }
    }
}

#[derive(Default)]
struct Tools {
    workers: Vec<WorkerTool>,
    pipelines: Vec<PipelineTool>,
    queries: Vec<QueryTools>,
    workshop: Option<WorkshopSection>,
    session: Option<SessionSection>,
    mcp_servers: Option<McpServers>,
}

/// Every tool name and where it came from, to report duplicates.
#[derive(Default)]
struct ToolNames {
    seen: BTreeMap<String, Vec<(String, Location)>>,
}

impl ToolNames {
    fn add(&mut self, name: String, path: String, node: &Node<'_>) {
        self.seen
            .entry(name)
            .or_default()
            .push((path, location(node)));
    }

    fn report(self, d: &mut Decoder) {
        for (name, places) in self.seen {
            if places.len() < 2 {
                continue;
            }
            let all: Vec<&str> = places.iter().map(|(p, _)| p.as_str()).collect();
            for (path, at) in &places[1..] {
                d.error_at(
                    *at,
                    path,
                    format!("duplicate tool name '{name}' (from {})", all.join(" and ")),
                );
            }
        }
    }
}

fn tools(d: &mut Decoder, node: &Node<'_>, path: &str, names: &mut ToolNames) -> Option<Tools> {
    let mut m = d.map(node, path)?;
    let workers = m.optional(d, "workers", |d, n, p| {
        list(d, n, p, |d, n, p| worker_tool(d, n, p, names))
    });
    let pipelines = m.optional(d, "pipelines", |d, n, p| {
        list(d, n, p, |d, n, p| pipeline_tool(d, n, p, names))
    });
    let queries = m.optional(d, "queries", |d, n, p| {
        list(d, n, p, |d, n, p| query_tools(d, n, p, names))
    });
    let workshop = section(d, &mut m, "workshop", |d, n, p| workshop(d, n, p, names));
    let session = section(d, &mut m, "session", |d, n, p| session(d, n, p, names));
    let mcp_servers = mcp_section(d, &mut m);
    m.finish(d);
    Some(Tools {
        mcp_servers: mcp_servers?,
        workers: workers.flatten().unwrap_or_default(),
        pipelines: pipelines.flatten().unwrap_or_default(),
        queries: queries.flatten().unwrap_or_default(),
        workshop: workshop?,
        session: session?,
    })
}

/// A list whose items are all read (so every error is reported); `None` if any failed.
fn list<T>(
    d: &mut Decoder,
    node: &Node<'_>,
    path: &str,
    mut read: impl FnMut(&mut Decoder, &Node<'_>, &str) -> Option<T>,
) -> Option<Option<Vec<T>>> {
    let items = d.seq(node, path)?;
    let out: Vec<Option<T>> = items
        .iter()
        .enumerate()
        .map(|(i, n)| read(d, n, &index(path, i)))
        .collect();
    Some(out.into_iter().collect())
}

/// A section whose presence (even `{}`) enables it; `null` means absent.
/// Returns `Some(None)` when absent, `None` on error.
fn section<'n, 's, T>(
    d: &mut Decoder,
    m: &mut MapReader<'n, 's>,
    key: &'static str,
    read: impl FnOnce(&mut Decoder, &'n Node<'s>, &str) -> Option<T>,
) -> Option<Option<T>> {
    match m.get(key) {
        None => Some(None),
        Some(n) => read(d, n, &m.child_path(key)).map(Some),
    }
}

fn worker_tool(
    d: &mut Decoder,
    node: &Node<'_>,
    path: &str,
    names: &mut ToolNames,
) -> Option<WorkerTool> {
    let mut m = d.map(node, path)?;
    let config = m.required(d, "config", |d, n, p| {
        referenced(d, n, p, ConfigKind::Worker, load_worker)
    });
    let name_node = m.get("name");
    let tool_name = m.optional(d, "name", tool_name);
    let description = m.optional(d, "description", Decoder::string);
    let tier = m.optional(d, "tier", Decoder::parsed::<ModelTier>);
    let bad_tier = m.get("tier").is_some() && tier.is_none();
    m.finish(d);
    let worker = config?;
    let tool_name = match (tool_name, name_node) {
        (Some(t), _) => t,
        (None, Some(_)) => return None,
        (None, None) => worker.name.to_string(),
    };
    names.add(
        tool_name.clone(),
        path.to_owned(),
        name_node.unwrap_or(node),
    );
    if bad_tier {
        return None;
    }
    Some(WorkerTool {
        tool_name,
        description,
        tier,
        worker,
    })
}

fn pipeline_tool(
    d: &mut Decoder,
    node: &Node<'_>,
    path: &str,
    names: &mut ToolNames,
) -> Option<PipelineTool> {
    let mut m = d.map(node, path)?;
    let config = m.required(d, "config", |d, n, p| {
        referenced(d, n, p, ConfigKind::Pipeline, load_pipeline)
    });
    let name_node = m.get("name");
    let tool_name = m.required(d, "name", tool_name);
    let description = m.optional(d, "description", Decoder::string);
    m.finish(d);
    let tool_name = tool_name?;
    names.add(
        tool_name.clone(),
        path.to_owned(),
        name_node.unwrap_or(node),
    );
    Some(PipelineTool {
        tool_name,
        description,
        pipeline: config?,
    })
}

fn query_tools(
    d: &mut Decoder,
    node: &Node<'_>,
    path: &str,
    names: &mut ToolNames,
) -> Option<QueryTools> {
    let mut m = d.map(node, path)?;
    let backend = m.required(d, "backend", |d, n, p| {
        let s = d.string(n, p)?;
        if s == "loom.contrib.duckdb.query_backend.DuckDBQueryBackend" || s.ends_with(".DuckDBQueryBackend") {
            // The original's dotted class path, so old configs load.
            return Some(QueryBackendKind::Duckdb);
        }
        if s.contains('.') {
            d.error(n, p, format!("'{s}' is a Python class, which Loom cannot import; use backend: sqlite or backend: duckdb"));
            return None;
        }
        match s.parse() {
            Ok(b) => Some(b),
            Err(e) => {
                d.error(n, p, e);
                None
            }
        }
    });
    let actions = m.required(d, "actions", |d, n, p| {
        let items = d.seq(n, p)?;
        if items.is_empty() {
            d.error(
                n,
                p,
                "list at least one action (search, filter, stats, get, vector_search)",
            );
            return None;
        }
        let mut out: Vec<QueryAction> = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let ip = index(p, i);
            match d.string(item, &ip).map(|s| s.parse::<QueryAction>()) {
                Some(Ok(a)) if out.contains(&a) => {
                    d.error(
                        item,
                        &ip,
                        format!("action '{}' is listed twice", a.as_str()),
                    );
                    ok = false;
                }
                Some(Ok(a)) => out.push(a),
                Some(Err(e)) => {
                    d.error(item, &ip, e);
                    ok = false;
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    });
    let prefix_node = m.get("name_prefix");
    let name_prefix = m.required(d, "name_prefix", tool_name);
    let backend_config = m
        .optional(d, "backend_config", Decoder::json_object)
        .unwrap_or_default();
    let worker_type = m.optional(d, "worker_type", Decoder::name::<WorkerName>);
    let bad_worker_type = m.get("worker_type").is_some() && worker_type.is_none();
    let timeout = match m.optional(d, "timeout", Decoder::positive_number) {
        Some(t) => Some(t),
        None => m.optional(d, "timeout_seconds", Decoder::positive_number),
    };
    m.finish(d);
    let name_prefix = name_prefix?;
    let worker_type = match worker_type {
        Some(w) => w,
        None if bad_worker_type => return None,
        None => match WorkerName::try_from(format!("{name_prefix}_query")) {
            Ok(w) => w,
            Err(e) => {
                if let Some(n) = prefix_node {
                    d.error(n, &format!("{path}.name_prefix"), format!("the default worker_type '{name_prefix}_query' is not a valid worker name ({e}); set worker_type"));
                }
                return None;
            }
        },
    };
    let tools = QueryTools {
        backend: backend?,
        actions: actions?,
        name_prefix,
        backend_config,
        worker_type,
        timeout_seconds: timeout.unwrap_or(DEFAULT_QUERY_TIMEOUT_SECONDS),
    };
    for &a in &tools.actions {
        names.add(
            tools.tool_name(a),
            path.to_owned(),
            prefix_node.unwrap_or(node),
        );
    }
    Some(tools)
}

fn workshop(
    d: &mut Decoder,
    node: &Node<'_>,
    path: &str,
    names: &mut ToolNames,
) -> Option<WorkshopSection> {
    let mut m = d.map(node, path)?;
    let configs_dir = m
        .optional(d, "configs_dir", Decoder::path)
        .unwrap_or_else(|| d.resolve("configs"));
    let apps_dir = m.optional(d, "apps_dir", Decoder::path);
    let judge_tier = m.optional(d, "judge_tier", Decoder::parsed::<ModelTier>);
    let enable = match m.get("enable") {
        Some(n) => enable_set::<WorkshopGroup>(d, n, &m.child_path("enable")),
        None => Some(WorkshopGroup::DEFAULT.into_iter().collect()),
    };
    m.finish(d);
    let enable = enable?;
    for g in &enable {
        for t in g.tool_names() {
            names.add((*t).to_owned(), format!("{path} ({})", g.as_str()), node);
        }
    }
    Some(WorkshopSection {
        configs_dir,
        apps_dir,
        enable,
        judge_tier,
    })
}

fn session(
    d: &mut Decoder,
    node: &Node<'_>,
    path: &str,
    names: &mut ToolNames,
) -> Option<SessionSection> {
    let mut m = d.map(node, path)?;
    let framework_dir = m.optional(d, "framework_dir", Decoder::path);
    let workspace_dir = m.optional(d, "workspace_dir", Decoder::path);
    let baft_dir = m.optional(d, "baft_dir", Decoder::path);
    let nats_url = m.optional(d, "nats_url", nats_url);
    let ollama_url = m.optional(d, "ollama_url", http_url);
    let upstream = m.optional(d, "upstream", Decoder::non_empty_string);
    let hook = m.optional(d, "hook", |d, n, p| {
        let argv = d.string_list(n, p)?;
        if argv.first().is_none_or(|c| c.trim().is_empty()) {
            d.error(n, p, "the hook needs a program: [program, arg, …]");
            return None;
        }
        Some(argv)
    });
    let hook_timeout_seconds = m.optional(d, "hook_timeout_seconds", Decoder::positive_number);
    let commit_paths = m.optional(d, "commit_paths", Decoder::string_list);
    let enable = match m.get("enable") {
        Some(n) => enable_set::<SessionAction>(d, n, &m.child_path("enable")),
        None => Some(SessionAction::ALL.iter().copied().collect()),
    };
    m.finish(d);
    let enable = enable?;
    for a in &enable {
        names.add(a.tool_name(), path.to_owned(), node);
    }
    Some(SessionSection {
        framework_dir,
        workspace_dir,
        baft_dir,
        nats_url,
        ollama_url,
        upstream,
        hook,
        hook_timeout_seconds,
        commit_paths,
        enable,
    })
}

fn enable_set<T>(d: &mut Decoder, node: &Node<'_>, path: &str) -> Option<BTreeSet<T>>
where
    T: FromStr<Err = String> + Ord,
{
    let items = d.seq(node, path)?;
    let mut out = BTreeSet::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let ip = index(path, i);
        match d.string(item, &ip).map(|s| s.parse::<T>()) {
            Some(Ok(v)) => {
                out.insert(v);
            }
            Some(Err(e)) => {
                d.error(item, &ip, e);
                ok = false;
            }
            None => ok = false,
        }
    }
    ok.then_some(out)
}

fn resources(d: &mut Decoder, node: &Node<'_>, path: &str) -> Option<ResourcesSection> {
    let mut m = d.map(node, path)?;
    let workspace_dir = m.required(d, "workspace_dir", Decoder::path);
    let patterns_node = m.get("patterns");
    let patterns = m.optional(d, "patterns", Decoder::string_list);
    m.finish(d);
    if patterns_node.is_some() && patterns.is_none() {
        return None;
    }
    Some(ResourcesSection {
        workspace_dir: workspace_dir?,
        patterns,
    })
}

/// An MCP tool name: 1–128 of `A-Z a-z 0-9 _ - .`.
fn tool_name(d: &mut Decoder, node: &Node<'_>, path: &str) -> Option<String> {
    let s = d.string(node, path)?;
    let ok = !s.is_empty()
        && s.len() <= MAX_TOOL_NAME_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Some(s)
    } else {
        d.error(node, path, format!("tool name '{s}' is not valid: use 1 to {MAX_TOOL_NAME_LEN} letters, digits, '_', '-' or '.'"));
        None
    }
}

fn nats_url(d: &mut Decoder, node: &Node<'_>, path: &str) -> Option<String> {
    let s = d.non_empty_string(node, path)?;
    for url in s.split(',') {
        let url = url.trim();
        let scheme_ok = match url.split_once("://") {
            Some((scheme, rest)) => {
                matches!(scheme, "nats" | "tls" | "ws" | "wss") && !rest.is_empty()
            }
            None => !url.is_empty(),
        };
        if !scheme_ok {
            d.error(
                node,
                path,
                format!("'{url}' is not a NATS server URL (e.g. nats://127.0.0.1:4222)"),
            );
            return None;
        }
    }
    Some(s)
}

fn http_url(d: &mut Decoder, node: &Node<'_>, path: &str) -> Option<String> {
    let s = d.non_empty_string(node, path)?;
    if s.starts_with("http://") || s.starts_with("https://") {
        Some(s)
    } else {
        d.error(
            node,
            path,
            format!("'{s}' is not an http:// or https:// URL"),
        );
        None
    }
}

/// Loads a config that an entry points at; its errors are reported in its own file,
/// plus one error here saying which entry led to it.
fn referenced<T>(
    d: &mut Decoder,
    node: &Node<'_>,
    path: &str,
    expected: ConfigKind,
    load: impl FnOnce(&Path) -> Result<T, ConfigErrors>,
) -> Option<T> {
    let file = d.path(node, path)?;
    if let Ok(Some(kind)) = super::detect_kind(&file) {
        if kind != expected {
            d.error(
                node,
                path,
                format!(
                    "{} is a {kind} config, not a {expected} config",
                    file.display()
                ),
            );
            return None;
        }
    }
    match load(&file) {
        Ok(c) => Some(c),
        Err(errors) => {
            let whole_file = errors.len() == 1 && errors.errors()[0].location.is_none();
            if whole_file {
                // Missing or unreadable: one error, here, where the user wrote the path.
                let why = &errors.errors()[0].message;
                d.error(
                    node,
                    path,
                    format!(
                        "{}: {why} (paths are relative to this config file)",
                        file.display()
                    ),
                );
            } else {
                let n = errors.len();
                d.error(
                    node,
                    path,
                    format!(
                        "{} has {n} error{} (listed with that file)",
                        file.display(),
                        if n == 1 { "" } else { "s" }
                    ),
                );
                d.extend(errors);
            }
            None
        }
    }
}
