//! File refs: payload fields naming JSON files in the worker's workspace (mesh spec §6.5).
//!
//! Blocking file I/O: call [`resolve_file_refs`] from `spawn_blocking`.

use std::path::Path;

use loom_core::message::JsonObject;
use loom_core::workspace::{Workspace, WorkspaceError};
use serde_json::Value;
use tracing::warn;

/// Why file-ref resolution failed the task.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileRefError {
    /// The field listed in `resolve_file_refs` does not hold a string.
    #[error("file ref field '{field}' must be a string naming a file in the workspace, not {kind}")]
    NotAString {
        /// The payload field.
        field: String,
        /// What it holds instead: `an array`, `an object`, `a number`, `a boolean`, `null`.
        kind: &'static str,
    },
    /// The ref names something that cannot be read as a file (a directory, a file
    /// without read permission…).
    #[error("file ref field '{field}': {error}")]
    Unreadable {
        /// The payload field.
        field: String,
        /// What the workspace reported.
        error: WorkspaceError,
    },
}

/// For each of `fields` present in `payload`, reads the file its value names in the
/// workspace at `workspace_dir` **as JSON** and sets `payload["<field>_content"]` to it.
///
/// Reads go through [`Workspace`], so absolute refs, `..` components and symlinks leading
/// outside the workspace are refused. As in loom-ai 0.9.0, a ref that escapes, a missing
/// file and invalid JSON are logged and skipped (the task goes on without the content),
/// and so is a workspace directory that does not exist. A non-string value
/// ([`FileRefError::NotAString`]) and a ref that exists but cannot be read as a file
/// ([`FileRefError::Unreadable`]: a directory, a permission error) fail the task.
pub fn resolve_file_refs(
    workspace_dir: &Path,
    fields: &[String],
    payload: &mut JsonObject,
) -> Result<(), FileRefError> {
    let present: Vec<&String> = fields.iter().filter(|f| payload.contains_key(*f)).collect();
    if present.is_empty() {
        return Ok(());
    }
    // Type errors come first: they are the caller's mistake whatever the workspace holds.
    let mut refs = Vec::with_capacity(present.len());
    for field in present {
        match payload.get(field) {
            Some(Value::String(file_ref)) => refs.push((field.clone(), file_ref.clone())),
            Some(other) => {
                return Err(FileRefError::NotAString {
                    field: field.clone(),
                    kind: kind_of(other),
                });
            }
            None => {}
        }
    }
    let ws = match Workspace::open(workspace_dir) {
        Ok(ws) => ws,
        Err(e) => {
            warn!(workspace = %workspace_dir.display(), error = %e, "Cannot open the workspace; skipping file refs.");
            return Ok(());
        }
    };
    for (field, file_ref) in refs {
        match ws.read_json(&file_ref) {
            Ok(content) => {
                payload.insert(format!("{field}_content"), content);
            }
            Err(
                e @ (WorkspaceError::EmptyRef
                | WorkspaceError::InvalidRef { .. }
                | WorkspaceError::Absolute { .. }
                | WorkspaceError::Escapes { .. }
                | WorkspaceError::NotFound { .. }
                | WorkspaceError::InvalidJson { .. }
                | WorkspaceError::NotUtf8 { .. }),
            ) => {
                warn!(field = %field, error = %e, "File ref not resolved; going on without its content.");
            }
            Err(error) => return Err(FileRefError::Unreadable { field, error }),
        }
    }
    Ok(())
}

/// `an array`, `an object`, … for error messages.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
