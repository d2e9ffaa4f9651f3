//! Worker configs: one YAML file per worker (`configs/workers/summarizer.yaml`).
//!
//! The keys are loom-ai 0.9.0's (mesh spec §6.1), so Python worker configs load as
//! they are. Differences: unknown keys are errors (a typo no longer passes silently),
//! names must be subject-safe, schemas are checked against JSON Schema Draft 2020-12,
//! and Python-only references (`input_schema_ref`) must be replaced by inline schemas.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::error::ConfigErrors;
use super::mcp_servers::{McpServers, mcp_section};
use super::schema::schema_at;
use super::yaml::{Decoder, MapReader, Node, index, parse_document, read_source};
use crate::contract::Contract;
use crate::message::ModelTier;
use crate::name::WorkerName;

/// `max_output_tokens` when the config does not say.
pub const DEFAULT_MAX_OUTPUT_TOKENS: u32 = 2000;

/// A validated worker config.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WorkerConfig {
    /// The worker type it serves; tasks arrive on `loom.tasks.{name}.{tier}`.
    pub name: WorkerName,
    /// What the worker does, for tool listings.
    pub description: Option<String>,
    /// LLM or processor, with what each needs.
    pub kind: WorkerKind,
    /// Contract for task payloads; `None` accepts any object.
    pub input_schema: Option<Contract>,
    /// Contract for outputs; `None` accepts any object.
    pub output_schema: Option<Contract>,
    /// Tier used when a task does not say (`default_model_tier`, legacy `default_tier`).
    pub default_model_tier: Option<ModelTier>,
    /// Most tokens the model may produce per call.
    pub max_output_tokens: u32,
    /// Most prompt tokens accepted per task.
    pub max_input_tokens: Option<u32>,
    /// Deadline for one task, in seconds.
    pub timeout_seconds: Option<f64>,
    /// Reference files prepended to the system prompt.
    pub knowledge_sources: Vec<KnowledgeSource>,
    /// Knowledge folders and tool providers.
    pub knowledge_silos: Vec<KnowledgeSilo>,
    /// Root for file refs in payloads (resolved against the config file's directory).
    pub workspace_dir: Option<PathBuf>,
    /// Payload fields holding workspace file refs to read as JSON.
    pub resolve_file_refs: Vec<String>,
    /// Database path for query-backend workers.
    pub db_path: Option<PathBuf>,
    /// MCP servers whose tools the LLM's tool-use loop may call (LLM workers only).
    pub mcp_servers: Option<McpServers>,
    /// The file this config was read from.
    pub source: PathBuf,
}

/// What kind of worker, with the settings only that kind has.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum WorkerKind {
    /// Calls an LLM with `system_prompt` (the default `worker_kind`).
    Llm {
        /// The instructions the model gets.
        system_prompt: String,
    },
    /// Runs a non-LLM backend.
    Processor {
        /// Which backend: a built-in name (`echo`, `text_stats`, `subprocess`, …).
        backend: String,
        /// The backend's settings.
        backend_config: Map<String, Value>,
    },
}

/// A file injected into the system prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct KnowledgeSource {
    /// The file, resolved against the config file's directory.
    pub path: PathBuf,
    /// How it is injected.
    pub inject_as: InjectAs,
}

/// How a knowledge source is injected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InjectAs {
    /// As a `--- Reference: <file> ---` section.
    Reference,
    /// As few-shot examples.
    FewShot,
}

/// A knowledge silo.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum KnowledgeSilo {
    /// A folder of text files injected into the prompt.
    Folder {
        /// The silo's name.
        name: String,
        /// The folder, resolved against the config file's directory.
        path: PathBuf,
        /// Whether the model may write back through `silo_updates`.
        writable: bool,
    },
    /// A tool the model may call.
    Tool {
        /// The silo's name.
        name: String,
        /// Which tool provider.
        provider: String,
        /// The provider's settings.
        config: Map<String, Value>,
    },
}

impl WorkerConfig {
    /// A processor worker built in code rather than read from a file, e.g. the query
    /// worker a gateway's `tools.queries` entry implies. `source` is the file the settings
    /// came from: relative paths in `backend_config` resolve against its directory.
    pub fn processor(
        name: WorkerName,
        backend: impl Into<String>,
        backend_config: Map<String, Value>,
        source: impl Into<PathBuf>,
    ) -> WorkerConfig {
        WorkerConfig {
            name,
            description: None,
            kind: WorkerKind::Processor {
                backend: backend.into(),
                backend_config,
            },
            input_schema: None,
            output_schema: None,
            default_model_tier: None,
            max_output_tokens: DEFAULT_MAX_OUTPUT_TOKENS,
            max_input_tokens: None,
            timeout_seconds: None,
            knowledge_sources: Vec::new(),
            knowledge_silos: Vec::new(),
            workspace_dir: None,
            resolve_file_refs: Vec::new(),
            db_path: None,
            mcp_servers: None,
            source: source.into(),
        }
    }
}

/// Loads and validates the worker config at `path`, reporting every error at once.
pub fn load_worker(path: &Path) -> Result<WorkerConfig, ConfigErrors> {
    let source = read_source(path)?;
    let root = parse_document(path, &source)?;
    let mut d = Decoder::new(path);
    let config = decode_worker(&mut d, &root);
    d.finish(config)
}

/// Validates worker YAML held in memory as if it were the file at `path` (which need not
/// exist): errors name `path`, and relative paths in the config resolve against its
/// directory. For tools that check a config before writing it.
pub fn parse_worker(path: &Path, source: &str) -> Result<WorkerConfig, ConfigErrors> {
    let root = parse_document(path, source)?;
    let mut d = Decoder::new(path);
    let config = decode_worker(&mut d, &root);
    d.finish(config)
}

pub(crate) fn decode_worker(d: &mut Decoder, root: &Node<'_>) -> Option<WorkerConfig> {
    let mut m = d.map(root, "")?;
    let name = m.required(d, "name", |d, n, p| {
        let name = Decoder::name::<WorkerName>(d, n, p)?;
        if name.as_str() == super::MCP_TOOL_WORKER {
            // Pipeline stages with `mcp_tool:` carry this worker_type; a worker by that
            // name would never receive a task.
            d.error(
                n,
                p,
                format!(
                    "'{}' is reserved for pipeline stages that call an MCP tool; choose another name",
                    super::MCP_TOOL_WORKER
                ),
            );
            return None;
        }
        Some(name)
    });
    let description = m.optional(d, "description", Decoder::string);
    let kind_name = m.optional(d, "worker_kind", |d, n, p| {
        let s = d.string(n, p)?;
        match s.as_str() {
            "llm" | "processor" => Some(s),
            other => {
                d.error(
                    n,
                    p,
                    format!("unknown worker_kind '{other}' (valid: llm, processor)"),
                );
                None
            }
        }
    });
    let prompt_node = m.get("system_prompt");
    let system_prompt =
        prompt_node.and_then(|n| d.non_empty_string(n, &m.child_path("system_prompt")));
    let backend_node = m.get("processing_backend");
    let backend =
        backend_node.and_then(|n| d.non_empty_string(n, &m.child_path("processing_backend")));
    let backend_config = m
        .optional(d, "backend_config", Decoder::json_object)
        .unwrap_or_default();
    let root_path = m.path().to_owned();
    let kind = match kind_name.as_deref() {
        Some("processor") => match backend {
            Some(backend) => Some(WorkerKind::Processor {
                backend,
                backend_config,
            }),
            None => {
                if backend_node.is_none() {
                    d.error(
                        root,
                        &root_path,
                        "missing required key 'processing_backend' (required when worker_kind is processor)",
                    );
                }
                None
            }
        },
        // An invalid worker_kind was already reported.
        None if m.get("worker_kind").is_some() => None,
        _ => match system_prompt {
            Some(system_prompt) => Some(WorkerKind::Llm { system_prompt }),
            None => {
                if prompt_node.is_none() {
                    d.error(
                        root,
                        &root_path,
                        "missing required key 'system_prompt' (required for llm workers; set worker_kind: processor for a non-LLM worker)",
                    );
                }
                None
            }
        },
    };
    let input_schema = schema_entry(d, &mut m, "input_schema", "input_schema_ref");
    let output_schema = schema_entry(d, &mut m, "output_schema", "output_schema_ref");
    let default_model_tier = match m.optional(d, "default_model_tier", Decoder::parsed::<ModelTier>)
    {
        Some(t) => Some(t),
        None => m.optional(d, "default_tier", Decoder::parsed::<ModelTier>),
    };
    let max_output_tokens = m
        .optional(d, "max_output_tokens", |d, n, p| d.u32_min(n, p, 1))
        .unwrap_or(DEFAULT_MAX_OUTPUT_TOKENS);
    let max_input_tokens = m.optional(d, "max_input_tokens", |d, n, p| d.u32_min(n, p, 1));
    let timeout_seconds = m.optional(d, "timeout_seconds", Decoder::positive_number);
    if let Some(n) = m.get("reset_after_task") {
        let p = m.child_path("reset_after_task");
        if d.bool(n, &p) == Some(false) {
            d.error(
                n,
                &p,
                "workers are stateless: reset_after_task must be true if present",
            );
        }
    }
    let knowledge_sources = m
        .optional(d, "knowledge_sources", knowledge_sources)
        .unwrap_or_default();
    let knowledge_silos = m
        .optional(d, "knowledge_silos", knowledge_silos)
        .unwrap_or_default();
    let workspace_dir = m.optional(d, "workspace_dir", Decoder::path);
    let refs_node = m.get("resolve_file_refs");
    let resolve_file_refs = refs_node
        .and_then(|n| d.string_list(n, &m.child_path("resolve_file_refs")))
        .unwrap_or_default();
    if let Some(n) = refs_node {
        if !resolve_file_refs.is_empty() && m.get("workspace_dir").is_none() {
            d.error(
                n,
                &m.child_path("resolve_file_refs"),
                "resolve_file_refs needs workspace_dir to be set",
            );
        }
    }
    let db_path = m.optional(d, "db_path", Decoder::path);
    let mcp_node = m.get("mcp_servers");
    let mcp_servers = mcp_section(d, &mut m);
    if let (Some(node), Some(WorkerKind::Processor { .. })) = (mcp_node, &kind) {
        d.error(
            node,
            &m.child_path("mcp_servers"),
            "mcp_servers needs an llm worker (processors do not call tools)",
        );
    }
    m.finish(d);
    Some(WorkerConfig {
        name: name?,
        description,
        kind: kind?,
        input_schema: input_schema?,
        output_schema: output_schema?,
        default_model_tier,
        max_output_tokens,
        max_input_tokens,
        timeout_seconds,
        knowledge_sources,
        knowledge_silos,
        workspace_dir,
        resolve_file_refs,
        db_path,
        mcp_servers: mcp_servers?,
        source: d.file().to_owned(),
    })
}

/// Reads an inline schema key, and its Python-only `*_ref` sibling.
///
/// Returns `Some(None)` when there is no schema, `None` when there was an error.
pub(crate) fn schema_entry(
    d: &mut Decoder,
    m: &mut MapReader<'_, '_>,
    key: &'static str,
    ref_key: &'static str,
) -> Option<Option<Contract>> {
    let inline = m.get(key);
    if let Some(r) = m.get(ref_key) {
        if inline.is_none() {
            let p = m.child_path(ref_key);
            d.error(
                r,
                &p,
                format!("{ref_key} names a Python model, which Loom cannot import; write the JSON Schema inline as {key}"),
            );
            return None;
        }
    }
    match inline {
        None => Some(None),
        Some(n) => schema_at(d, n, &m.child_path(key)).map(Some),
    }
}

fn knowledge_sources(d: &mut Decoder, node: &Node<'_>, path: &str) -> Option<Vec<KnowledgeSource>> {
    let items = d.seq(node, path)?;
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = index(path, i);
        let Some(mut m) = d.map(item, &p) else {
            continue;
        };
        let path = m.required(d, "path", Decoder::path);
        let inject_as = m.required(d, "inject_as", |d, n, p| match d.string(n, p)?.as_str() {
            "reference" => Some(InjectAs::Reference),
            "few_shot" => Some(InjectAs::FewShot),
            other => {
                d.error(
                    n,
                    p,
                    format!("unknown inject_as '{other}' (valid: reference, few_shot)"),
                );
                None
            }
        });
        m.finish(d);
        if let (Some(path), Some(inject_as)) = (path, inject_as) {
            out.push(KnowledgeSource { path, inject_as });
        }
    }
    Some(out)
}

fn knowledge_silos(d: &mut Decoder, node: &Node<'_>, path: &str) -> Option<Vec<KnowledgeSilo>> {
    let items = d.seq(node, path)?;
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = index(path, i);
        let Some(mut m) = d.map(item, &p) else {
            continue;
        };
        let name = m.required(d, "name", Decoder::non_empty_string);
        let kind = m.required(d, "type", Decoder::string);
        let silo = match kind.as_deref() {
            Some("folder") => {
                let path = m.required(d, "path", Decoder::path);
                let writable = m
                    .optional(d, "permissions", |d, n, p| match d.string(n, p)?.as_str() {
                        "read" => Some(false),
                        "read_write" => Some(true),
                        other => {
                            d.error(
                                n,
                                p,
                                format!("unknown permissions '{other}' (valid: read, read_write)"),
                            );
                            None
                        }
                    })
                    .unwrap_or(false);
                match (name, path) {
                    (Some(name), Some(path)) => Some(KnowledgeSilo::Folder {
                        name,
                        path,
                        writable,
                    }),
                    _ => None,
                }
            }
            Some("tool") => {
                let provider = m.required(d, "provider", Decoder::non_empty_string);
                let config = m
                    .optional(d, "config", Decoder::json_object)
                    .unwrap_or_default();
                match (name, provider) {
                    (Some(name), Some(provider)) => Some(KnowledgeSilo::Tool {
                        name,
                        provider,
                        config,
                    }),
                    _ => None,
                }
            }
            Some(other) => {
                if let Some(n) = m.get("type") {
                    let p = m.child_path("type");
                    d.error(
                        n,
                        &p,
                        format!("unknown silo type '{other}' (valid: folder, tool)"),
                    );
                }
                None
            }
            None => None,
        };
        // Keys of the other silo type are unknown here, which finish() reports.
        m.finish(d);
        out.extend(silo);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(src: &str) -> Result<WorkerConfig, ConfigErrors> {
        let file = Path::new("configs/workers/w.yaml");
        let root = parse_document(file, src)?;
        let mut d = Decoder::new(file);
        let c = decode_worker(&mut d, &root);
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

    #[test]
    fn loads_the_spec_summarizer() {
        let c = load(
            "name: summarizer\ndescription: Compresses text.\nsystem_prompt: |\n  Summarize.\n\
             input_schema:  {type: object, required: [text], properties: {text: {type: string}}}\n\
             output_schema: {type: object, required: [summary], properties: {summary: {type: string}}}\n\
             default_model_tier: local\nmax_input_tokens: 8000\nmax_output_tokens: 1000\n\
             reset_after_task: true\ntimeout_seconds: 30\n",
        )
        .expect("valid");
        assert_eq!(c.name.as_str(), "summarizer");
        assert!(
            matches!(c.kind, WorkerKind::Llm { ref system_prompt } if system_prompt == "Summarize.\n")
        );
        assert_eq!(c.default_model_tier, Some(ModelTier::Local));
        assert_eq!(c.max_output_tokens, 1000);
        assert_eq!(c.timeout_seconds, Some(30.0));
        assert!(c.input_schema.is_some());
    }

    #[test]
    fn processor_needs_a_backend_and_llm_a_prompt() {
        assert_eq!(
            messages("name: p\nworker_kind: processor\n"),
            [
                "configs/workers/w.yaml:1:1: missing required key 'processing_backend' (required when worker_kind is processor)"
            ]
        );
        assert!(messages("name: p\n")[0].contains("missing required key 'system_prompt'"));
        let c = load(
            "name: p\nworker_kind: processor\nprocessing_backend: echo\nbackend_config: {x: 1}\n",
        )
        .expect("valid");
        assert!(matches!(c.kind, WorkerKind::Processor { ref backend, .. } if backend == "echo"));
    }

    #[test]
    fn reports_every_error_with_its_line() {
        let errs = messages(
            "name: Bad.Name\nsystem_prompt: hi\nworker_kind: robot\ndefault_model_tier: fast\n\
             max_output_tokens: true\ntimeout_seconds: 0\nsytem_prompt: typo\n",
        );
        assert_eq!(errs.len(), 6, "{errs:#?}");
        assert!(
            errs[0].starts_with("configs/workers/w.yaml:1:7: name: name 'Bad.Name' is not valid"),
            "{}",
            errs[0]
        );
        assert!(
            errs[1].contains(":3:14: worker_kind: unknown worker_kind 'robot'"),
            "{}",
            errs[1]
        );
        assert!(
            errs[2].contains(":4:21: default_model_tier: unknown tier 'fast'"),
            "{}",
            errs[2]
        );
        assert!(
            errs[3].contains(":5:20: max_output_tokens: expected an integer, found a boolean"),
            "{}",
            errs[3]
        );
        assert!(
            errs[4].contains(":6:18: timeout_seconds: must be a number greater than 0"),
            "{}",
            errs[4]
        );
        assert!(
            errs[5].contains(
                ":7:1: sytem_prompt: unknown key 'sytem_prompt'; did you mean 'system_prompt'?"
            ),
            "{}",
            errs[5]
        );
    }

    #[test]
    fn relative_paths_resolve_against_the_config_file() {
        let c = load(
            "name: w\nsystem_prompt: p\nworkspace_dir: ../ws\nresolve_file_refs: [file_ref]\n\
             knowledge_sources: [{path: k.md, inject_as: reference}]\n",
        )
        .expect("valid");
        assert_eq!(
            c.workspace_dir.as_deref(),
            Some(Path::new("configs/workers/../ws"))
        );
        assert_eq!(
            c.knowledge_sources[0].path,
            Path::new("configs/workers/k.md")
        );
    }

    #[test]
    fn python_schema_refs_need_an_inline_schema() {
        let errs = messages("name: w\nsystem_prompt: p\ninput_schema_ref: pkg.Model\n");
        assert!(
            errs[0].contains("input_schema_ref names a Python model"),
            "{errs:?}"
        );
        load("name: w\nsystem_prompt: p\ninput_schema_ref: pkg.Model\ninput_schema: {type: object}\n")
            .expect("inline schema wins");
    }

    #[test]
    fn invalid_schema_points_inside_the_schema() {
        let errs = messages(
            "name: w\nsystem_prompt: p\ninput_schema:\n  type: object\n  properties:\n    text: {type: strng}\n",
        );
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].starts_with("configs/workers/w.yaml:6:"),
            "{}",
            errs[0]
        );
        assert!(errs[0].contains("input_schema"), "{}", errs[0]);
    }

    #[test]
    fn silos_are_checked_by_type() {
        let errs = messages(
            "name: w\nsystem_prompt: p\nknowledge_silos:\n  - {name: a, type: folder, path: k, permissions: rw}\n\
             \x20 - {name: b, type: tool}\n  - {name: c, type: cloud}\n",
        );
        assert_eq!(errs.len(), 3, "{errs:#?}");
        assert!(errs[0].contains("unknown permissions 'rw'"));
        assert!(errs[1].contains("missing required key 'provider'"));
        assert!(errs[2].contains("unknown silo type 'cloud'"));
    }
}
