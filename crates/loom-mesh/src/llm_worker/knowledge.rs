//! Knowledge injected into the system prompt, and `silo_updates` written back (mesh spec §6.4).
//!
//! Everything here does blocking file I/O: call it from `spawn_blocking` (the
//! [`LlmWorker`](super::LlmWorker) reads all of a task's knowledge in one such call).
//! Problems are logged and skipped, never returned: a missing reference file must not
//! stop the worker, as in loom-ai 0.9.0.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use loom_core::config::{InjectAs, KnowledgeSilo, KnowledgeSource};
use loom_core::glob::{DoubleStar, GlobList};
use loom_core::workspace::{Workspace, WorkspaceError};
use loom_llm::extract::yaml_to_json;
use saphyr::{LoadableYamlNode, Yaml};
use serde_json::Value;
use tracing::{debug, info, warn};

/// Extensions (lowercase, without the dot) of the files a folder silo injects.
pub const SILO_EXTENSIONS: [&str; 7] = ["md", "txt", "yaml", "yml", "json", "csv", "toml"];

/// The file in a silo folder that lists globs of paths to leave out.
pub const SILO_IGNORE_FILE: &str = ".siloignore";

// ---------------------------------------------------------------------------------------------
// knowledge_sources
// ---------------------------------------------------------------------------------------------

/// The text of `knowledge_sources`, in order, joined by newlines (empty when none could be
/// read):
///
/// * `reference`: `"\n--- Reference: <file name> ---\n<content>"`;
/// * `few_shot` of a `.yaml`/`.yml` file holding a list of mappings:
///   `"\n--- Few-Shot Examples ---"` then, per item *i* (from 1),
///   `"\n\nExample i:\nInput: <input>\nOutput: <output>"` (the first example has one
///   newline before it, exactly as loom-ai joined them). String values are written as
///   they are; numbers and booleans as JSON; lists and mappings as compact JSON (loom-ai
///   printed Python reprs); a missing or null value as nothing;
/// * any other `few_shot` file (or YAML that is not a list of mappings):
///   `"\n--- Few-Shot Examples ---\n<content>"`.
///
/// Missing, unreadable and non-UTF-8 files are logged and skipped (loom-ai failed the
/// task on the last two).
pub fn knowledge_sources_text(sources: &[KnowledgeSource]) -> String {
    let mut sections = Vec::with_capacity(sources.len());
    for source in sources {
        let path = &source.path;
        let content = match fs::read_to_string(path) {
            Ok(content) => content,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                warn!(path = %path.display(), "Knowledge source not found; skipping it.");
                continue;
            }
            Err(e) => {
                warn!(path = %path.display(), error = %e, "Cannot read knowledge source; skipping it.");
                continue;
            }
        };
        match source.inject_as {
            InjectAs::Reference => {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                sections.push(format!("\n--- Reference: {name} ---\n{content}"));
            }
            InjectAs::FewShot => sections.push(few_shot_text(path, &content)),
        }
    }
    sections.join("\n")
}

/// One `few_shot` section.
fn few_shot_text(path: &Path, content: &str) -> String {
    let is_yaml = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    if is_yaml {
        match few_shot_examples(content) {
            Some(examples) => return format!("\n--- Few-Shot Examples ---{examples}"),
            None => {
                debug!(path = %path.display(), "Few-shot YAML is not a list of mappings; injecting it as text.")
            }
        }
    }
    format!("\n--- Few-Shot Examples ---\n{content}")
}

/// `"\nExample 1:\nInput: …\nOutput: …\n\nExample 2:…"`, or `None` when `content` is not a
/// single YAML document holding a list of mappings.
fn few_shot_examples(content: &str) -> Option<String> {
    let docs = Yaml::load_from_str(content).ok()?;
    let [Yaml::Sequence(items)] = docs.as_slice() else {
        return None;
    };
    let mut lines = Vec::with_capacity(items.len() * 3);
    for (i, item) in items.iter().enumerate() {
        let Value::Object(item) = yaml_to_json(item)? else {
            return None;
        };
        lines.push(format!("\nExample {}:", i + 1));
        lines.push(format!("Input: {}", example_value(item.get("input"))));
        lines.push(format!("Output: {}", example_value(item.get("output"))));
    }
    Some(lines.join("\n"))
}

/// How an example's input or output is written into the prompt.
fn example_value(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Folder silos
// ---------------------------------------------------------------------------------------------

/// The text of the folder silos, in order, joined by blank lines (empty when none has
/// content). Tool silos are ignored here.
///
/// Each silo with content is `"--- Knowledge Silo: <name> ---\n"` followed by its files,
/// joined by blank lines, each `"## <relative path>\n<content>"`. The files are those with
/// an extension in [`SILO_EXTENSIONS`] (any case), found recursively, sorted by path
/// (component by component, like Python's `sorted(Path.rglob("*"))`), with `/` as the
/// separator in relative paths. [`SILO_IGNORE_FILE`] itself and every relative path
/// matching one of its glob lines (`fnmatch` semantics; blank lines and lines starting
/// with `#` ignored) are left out.
///
/// * A missing folder is logged and skipped.
/// * Unreadable and non-UTF-8 files are logged and skipped.
/// * Symlinked directories are not entered (as Python's `rglob`); symlinked files are read
///   only when they resolve inside the silo folder (loom-ai read them wherever they led).
/// * An unreadable `.siloignore` skips the whole silo, so that files meant to be hidden
///   never reach the prompt (loom-ai failed the task).
pub fn folder_silos_text(silos: &[KnowledgeSilo]) -> String {
    let mut sections = Vec::new();
    for silo in silos {
        let KnowledgeSilo::Folder { name, path, .. } = silo else {
            continue;
        };
        if !path.is_dir() {
            warn!(silo = %name, path = %path.display(), "Knowledge silo folder not found; skipping it.");
            continue;
        }
        match folder_text(name, path) {
            Some(content) if !content.is_empty() => {
                sections.push(format!("--- Knowledge Silo: {name} ---\n{content}"));
            }
            _ => {}
        }
    }
    sections.join("\n\n")
}

/// The files of one silo folder, or `None` when its `.siloignore` cannot be read.
fn folder_text(silo: &str, folder: &Path) -> Option<String> {
    let ignore = match siloignore(folder) {
        Ok(globs) => globs,
        Err(e) => {
            warn!(silo, path = %folder.display(), error = %e, "Cannot read .siloignore; skipping the silo so that ignored files stay out of the prompt.");
            return None;
        }
    };
    let root = match fs::canonicalize(folder) {
        Ok(root) => root,
        Err(e) => {
            warn!(silo, path = %folder.display(), error = %e, "Cannot open knowledge silo folder; skipping it.");
            return None;
        }
    };
    let mut files = Vec::new();
    collect_files(silo, &root, &root, &mut files);
    files.sort();
    let mut parts = Vec::with_capacity(files.len());
    for relative in files {
        let Some(rel) = slash_path(&relative) else {
            warn!(silo, file = %relative.display(), "Skipping a silo file whose name is not UTF-8.");
            continue;
        };
        if ignore.is_match(&rel) {
            continue;
        }
        let full = root.join(&relative);
        match fs::read(&full).map(String::from_utf8) {
            Ok(Ok(text)) => parts.push(format!("## {rel}\n{text}")),
            Ok(Err(_)) => {
                warn!(silo, file = %rel, "Skipping a silo file that is not UTF-8.");
            }
            Err(e) => {
                warn!(silo, file = %rel, error = %e, "Cannot read silo file; skipping it.");
            }
        }
    }
    Some(parts.join("\n\n"))
}

/// The globs of `folder/.siloignore` (none when it does not exist), read as Python's
/// `fnmatch` does (`**` is `*`).
fn siloignore(folder: &Path) -> io::Result<GlobList> {
    let text = match fs::read(folder.join(SILO_IGNORE_FILE)) {
        Ok(bytes) => String::from_utf8(bytes)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, ".siloignore is not UTF-8"))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let lines = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'));
    Ok(GlobList::new(lines, DoubleStar::Star))
}

/// Adds to `out` the paths, relative to `root`, of the silo files under `dir`.
fn collect_files(silo: &str, root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            warn!(silo, dir = %dir.display(), error = %e, "Cannot list silo directory; skipping it.");
            return;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                warn!(silo, dir = %dir.display(), error = %e, "Cannot list silo directory entry; skipping it.");
                continue;
            }
        };
        let path = entry.path();
        let Ok(file_type) = entry.file_type() else {
            continue;
        };
        if file_type.is_dir() {
            collect_files(silo, root, &path, out);
            continue;
        }
        let wanted = entry.file_name() != SILO_IGNORE_FILE
            && path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| SILO_EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)));
        if !wanted {
            continue;
        }
        if file_type.is_symlink() {
            match fs::canonicalize(&path) {
                Ok(target) if target.starts_with(root) && target.is_file() => {}
                Ok(target) if !target.starts_with(root) => {
                    warn!(silo, file = %path.display(), "Skipping a silo symlink that leads outside the silo.");
                    continue;
                }
                _ => continue,
            }
        } else if !file_type.is_file() {
            continue;
        }
        if let Ok(relative) = path.strip_prefix(root) {
            out.push(relative.to_path_buf());
        }
    }
}

/// `relative` with `/` separators, or `None` when it is not UTF-8.
fn slash_path(relative: &Path) -> Option<String> {
    let parts: Option<Vec<&str>> = relative.iter().map(|part| part.to_str()).collect();
    Some(parts?.join("/"))
}

// ---------------------------------------------------------------------------------------------
// silo_updates
// ---------------------------------------------------------------------------------------------

/// What became of one entry of `silo_updates`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiloUpdateOutcome {
    /// The silo named by the entry (empty if it named none).
    pub silo: String,
    /// The file named by the entry (empty if it named none).
    pub filename: String,
    /// The action asked for (empty if none).
    pub action: String,
    /// Whether it was done.
    pub status: SiloUpdateStatus,
}

/// Whether a `silo_updates` entry was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiloUpdateStatus {
    /// The file was written or deleted.
    Applied,
    /// Nothing to do: `modify` or `delete` of a missing file, or an unknown action.
    Skipped(String),
    /// Refused: the silo is not a writable folder, or the filename leaves it.
    Denied(String),
}

/// Applies `updates` (the `silo_updates` a model returned: a list of
/// `{silo, action: add|modify|delete, filename, content}`) to the `read_write` folder
/// silos among `silos`, and reports what became of each entry. Nothing is returned to
/// the caller of the task: denials are logged.
///
/// Every path goes through a [`Workspace`] rooted at the silo folder, so a filename with a
/// `..` component, an absolute filename, or one that resolves through a symlink to
/// outside the folder is denied (loom-ai's check also refused any filename containing
/// `..`; so does this one).
///
/// * `add` writes the file, creating parent directories (atomically: temporary file,
///   then rename);
/// * `modify` writes it only if it already exists as a file;
/// * `delete` removes it if it exists (a symlink is removed, not its target);
/// * other actions are skipped.
///
/// `content` defaults to `""`; a non-string `content` is denied. Entries that are not
/// objects are denied.
pub fn apply_silo_updates(updates: &[Value], silos: &[KnowledgeSilo]) -> Vec<SiloUpdateOutcome> {
    updates
        .iter()
        .map(|update| {
            let outcome = apply_one(update, silos);
            match &outcome.status {
                SiloUpdateStatus::Applied => info!(
                    silo = %outcome.silo,
                    file = %outcome.filename,
                    action = %outcome.action,
                    "Applied a silo update."
                ),
                SiloUpdateStatus::Skipped(reason) => info!(
                    silo = %outcome.silo,
                    file = %outcome.filename,
                    action = %outcome.action,
                    reason = %reason,
                    "Skipped a silo update."
                ),
                SiloUpdateStatus::Denied(reason) => warn!(
                    silo = %outcome.silo,
                    file = %outcome.filename,
                    action = %outcome.action,
                    reason = %reason,
                    "Denied a silo update."
                ),
            }
            outcome
        })
        .collect()
}

fn apply_one(update: &Value, silos: &[KnowledgeSilo]) -> SiloUpdateOutcome {
    let field = |key: &str| {
        update
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let mut outcome = SiloUpdateOutcome {
        silo: field("silo"),
        filename: field("filename"),
        action: field("action"),
        status: SiloUpdateStatus::Applied,
    };
    outcome.status = status_of(update, &outcome, silos);
    outcome
}

fn status_of(
    update: &Value,
    entry: &SiloUpdateOutcome,
    silos: &[KnowledgeSilo],
) -> SiloUpdateStatus {
    use SiloUpdateStatus::{Applied, Denied, Skipped};
    if !update.is_object() {
        return Denied("entry is not an object".to_owned());
    }
    let folder = silos.iter().find_map(|silo| match silo {
        KnowledgeSilo::Folder {
            name,
            path,
            writable: true,
        } if *name == entry.silo => Some(path),
        _ => None,
    });
    let Some(folder) = folder else {
        return Denied("not a writable folder silo".to_owned());
    };
    let filename = entry.filename.as_str();
    if filename.is_empty() || filename.contains("..") || filename.starts_with('/') {
        return Denied("path traversal".to_owned());
    }
    let content = match update.get("content") {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Denied("content is not a string".to_owned()),
    };
    let ws = match Workspace::open(folder) {
        Ok(ws) => ws,
        Err(e) => return Denied(e.to_string()),
    };
    let denied = |e: WorkspaceError| Denied(e.to_string());
    match entry.action.as_str() {
        "add" => match ws.write_text(filename, content) {
            Ok(_) => Applied,
            Err(e) => denied(e),
        },
        "modify" => match ws.resolve(filename) {
            Ok(path) if path.as_path().is_file() => match ws.write_text(filename, content) {
                Ok(_) => Applied,
                Err(e) => denied(e),
            },
            Ok(_) => Denied("not a file".to_owned()),
            Err(WorkspaceError::NotFound { .. }) => Skipped("file not found for modify".to_owned()),
            Err(e) => denied(e),
        },
        "delete" => delete(&ws, filename),
        _ => Skipped("unknown action".to_owned()),
    }
}

/// Removes `filename` from the silo if it exists; a symlink is removed itself.
fn delete(ws: &Workspace, filename: &str) -> SiloUpdateStatus {
    use SiloUpdateStatus::{Applied, Denied, Skipped};
    // Refuses `..`, absolute names, directories, and anything resolving outside.
    if let Err(e) = ws.resolve_for_write(filename) {
        return Denied(e.to_string());
    }
    let link = ws.root().join(filename);
    if fs::symlink_metadata(&link).is_err() {
        return Skipped("file not found for delete".to_owned());
    }
    // The entry itself must sit in a directory inside the silo too.
    let parent_inside = link
        .parent()
        .and_then(|parent| fs::canonicalize(parent).ok())
        .is_some_and(|parent| parent.starts_with(ws.root()));
    if !parent_inside {
        return Denied(format!("path escapes the silo: '{filename}'"));
    }
    match fs::remove_file(&link) {
        Ok(()) => Applied,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Skipped("file not found for delete".to_owned())
        }
        Err(e) => Denied(format!("cannot delete '{filename}': {e}")),
    }
}
