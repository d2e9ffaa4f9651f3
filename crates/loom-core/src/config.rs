//! Configuration files: workers, pipelines, router rules and the gateway.
//!
//! Each kind has a `load_*` function that reads one YAML file and returns either the
//! validated config or **every** problem in it, each with file, line, column and key
//! path:
//!
//! ```text
//! configs/mcp.yaml:12:7: tools.workers[2].tier: unknown tier 'fast' (valid: local, standard, frontier)
//! ```
//!
//! Rules shared by all kinds:
//! - unknown keys are errors, with a "did you mean" when a known key is close;
//! - names that become NATS subject tokens must match `^[a-z][a-z0-9_]*$`;
//! - paths inside a config are relative to that config file's directory;
//! - a file is exactly one YAML document whose root is a mapping; duplicate keys are errors.
//!
//! `loom validate` and every command that starts a component call these same functions.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let file = dir.path().join("echo.yaml");
//! std::fs::write(&file, "name: echo\nworker_kind: processor\nprocessing_backend: echo\n")?;
//! let worker = loom_core::config::load_worker(&file)?;
//! assert_eq!(worker.name.as_str(), "echo");
//!
//! std::fs::write(&file, "name: Echo\nworker_kind: processor\nprocesing_backend: echo\n")?;
//! let errors = loom_core::config::load_worker(&file).unwrap_err();
//! assert_eq!(errors.len(), 3); // bad name, missing processing_backend, unknown key
//! # Ok(())
//! # }
//! ```

mod discover;
mod error;
mod gateway;
mod mcp_servers;
mod pipeline;
mod router;
mod schema;
mod user;
mod worker;
mod yaml;

use std::fmt;
use std::path::Path;
use std::str::FromStr;

pub use discover::{FoundConfig, find_config_files};
pub use error::{ConfigError, ConfigErrors, Location, suggestion};
pub use gateway::{
    DEFAULT_QUERY_TIMEOUT_SECONDS, GatewayConfig, MAX_TOOL_NAME_LEN, PipelineTool, QueryAction,
    QueryBackendKind, QueryTools, ResourcesSection, SessionAction, SessionSection, WorkerTool,
    WorkshopGroup, WorkshopSection, load_gateway,
};
pub use mcp_servers::{
    MAX_MCP_SERVER_NAME_LEN, McpPrefixMode, McpServerConfig, McpServers, McpTransportConfig,
    invalid_mcp_server_name, pattern_matches, valid_mcp_server_name,
};
pub use pipeline::{
    CompareOp, Condition, ContextPath, DEFAULT_PIPELINE_TIMEOUT_SECONDS, MCP_TOOL_WORKER,
    MappingValue, PipelineConfig, STAGE_FIELDS, StageConfig, load_pipeline,
};
pub use router::{DEFAULT_MAX_CONCURRENT, RateLimit, RouterRules, load_router_rules};
pub use user::{USER_CONFIG_KEYS, UserConfig, load_user_config, user_config_path};
pub use worker::{
    DEFAULT_MAX_OUTPUT_TOKENS, InjectAs, KnowledgeSilo, KnowledgeSource, WorkerConfig, WorkerKind,
    load_worker, parse_worker,
};

use yaml::{Decoder, Node, parse_document, read_source};

/// The kinds of config file Loom reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigKind {
    /// A worker (`system_prompt` or `processing_backend`).
    Worker,
    /// A pipeline (`pipeline_stages`).
    Pipeline,
    /// Router rules (`tier_overrides`, `rate_limits`).
    RouterRules,
    /// A gateway (`tools`, `resources`).
    Gateway,
}

impl ConfigKind {
    /// Every kind.
    pub const ALL: [ConfigKind; 4] = [
        ConfigKind::Worker,
        ConfigKind::Pipeline,
        ConfigKind::RouterRules,
        ConfigKind::Gateway,
    ];

    /// The kind's name as the CLI spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfigKind::Worker => "worker",
            ConfigKind::Pipeline => "pipeline",
            ConfigKind::RouterRules => "router-rules",
            ConfigKind::Gateway => "gateway",
        }
    }
}

impl fmt::Display for ConfigKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ConfigKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ConfigKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown config kind '{s}' (valid: worker, pipeline, router-rules, gateway)"
                )
            })
    }
}

/// A validated config of any kind.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AnyConfig {
    /// A worker.
    Worker(Box<WorkerConfig>),
    /// A pipeline.
    Pipeline(Box<PipelineConfig>),
    /// Router rules.
    RouterRules(Box<RouterRules>),
    /// A gateway.
    Gateway(Box<GatewayConfig>),
}

impl AnyConfig {
    /// Which kind it is.
    pub fn kind(&self) -> ConfigKind {
        match self {
            AnyConfig::Worker(_) => ConfigKind::Worker,
            AnyConfig::Pipeline(_) => ConfigKind::Pipeline,
            AnyConfig::RouterRules(_) => ConfigKind::RouterRules,
            AnyConfig::Gateway(_) => ConfigKind::Gateway,
        }
    }
}

/// Loads the config at `path` as `kind`, or as the kind its keys show when `kind` is `None`.
///
/// Detection looks at top-level keys: `pipeline_stages` → pipeline; `tier_overrides` or
/// `rate_limits` → router rules; `tools` or `resources` → gateway; `system_prompt`,
/// `processing_backend` or `worker_kind` → worker. Anything else is an error asking for
/// an explicit kind, never a guess.
pub fn load_any(path: &Path, kind: Option<ConfigKind>) -> Result<AnyConfig, ConfigErrors> {
    let source = read_source(path)?;
    let root = parse_document(path, &source)?;
    let kind = match kind.or_else(|| kind_from_keys(&root)) {
        Some(k) => k,
        None => return Err(ConfigErrors::one(path, undetected_message(&root))),
    };
    let mut d = Decoder::new(path);
    let config = match kind {
        ConfigKind::Worker => {
            worker::decode_worker(&mut d, &root).map(|c| AnyConfig::Worker(Box::new(c)))
        }
        ConfigKind::Pipeline => {
            pipeline::decode_pipeline(&mut d, &root).map(|c| AnyConfig::Pipeline(Box::new(c)))
        }
        ConfigKind::RouterRules => {
            router::decode_router_rules(&mut d, &root).map(|c| AnyConfig::RouterRules(Box::new(c)))
        }
        ConfigKind::Gateway => {
            gateway::decode_gateway(&mut d, &root).map(|c| AnyConfig::Gateway(Box::new(c)))
        }
    };
    d.finish(config)
}

/// Where `key_path` (e.g. `backend_config.command[0]`) sits in the config file at
/// `file`: the position of that value, or of the deepest key on the way that exists.
/// For errors found after loading (by a component building itself from the config) that
/// should still point at a line. `None` when the file cannot be read or parsed.
pub fn locate(file: &Path, key_path: &str) -> Option<Location> {
    let source = read_source(file).ok()?;
    let root = parse_document(file, &source).ok()?;
    let mut pointer = String::new();
    for part in key_path.split('.').filter(|p| !p.is_empty()) {
        let (key, indices) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        pointer.push('/');
        pointer.push_str(&key.replace('~', "~0").replace('/', "~1"));
        for index in indices.split(['[', ']']).filter(|s| !s.is_empty()) {
            pointer.push('/');
            pointer.push_str(index);
        }
    }
    Some(yaml::location(yaml::node_at_pointer(&root, &pointer)))
}

/// Which kind of config the file at `path` is, by its top-level keys (see [`load_any`]).
///
/// `Ok(None)` means the file is YAML but its keys match no Loom config (a few-shot
/// example file, an eval suite, a Python orchestrator config): directory walks skip those.
pub fn detect_kind(path: &Path) -> Result<Option<ConfigKind>, ConfigErrors> {
    let source = read_source(path)?;
    let root = parse_document(path, &source)?;
    Ok(kind_from_keys(&root))
}

fn kind_from_keys(root: &Node<'_>) -> Option<ConfigKind> {
    let saphyr::YamlData::Mapping(map) = &root.data else {
        return None;
    };
    let has = |key: &str| map.keys().any(|k| yaml::scalar_str(k) == Some(key));
    if has("pipeline_stages") {
        Some(ConfigKind::Pipeline)
    } else if has("tier_overrides") || has("rate_limits") {
        Some(ConfigKind::RouterRules)
    } else if has("tools") || has("resources") {
        Some(ConfigKind::Gateway)
    } else if has("system_prompt") || has("processing_backend") || has("worker_kind") {
        Some(ConfigKind::Worker)
    } else {
        None
    }
}

fn undetected_message(root: &Node<'_>) -> String {
    let saphyr::YamlData::Mapping(map) = &root.data else {
        return format!(
            "expected a YAML mapping at the top, found {}",
            yaml::describe(root)
        );
    };
    if map
        .keys()
        .any(|k| yaml::scalar_str(k) == Some("available_workers"))
    {
        return "LLM orchestrator configs (available_workers) are not supported by Loom; use a pipeline".to_owned();
    }
    "cannot tell which kind of config this is: a worker has system_prompt or processing_backend, \
     a pipeline pipeline_stages, router rules tier_overrides or rate_limits, a gateway tools or resources \
     (or pass --kind)"
        .to_owned()
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
