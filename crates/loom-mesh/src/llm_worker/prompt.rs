//! The system prompt and the payload of one task, read in one blocking pass (mesh spec §6.3).

use loom_core::config::{KnowledgeSilo, KnowledgeSource, WorkerConfig};
use loom_core::message::JsonObject;

use super::file_refs::{FileRefError, resolve_file_refs};
use super::knowledge::{folder_silos_text, knowledge_sources_text};

/// The system prompt: the `knowledge_sources` text, then the folder-silo text, then the
/// worker's `system_prompt`, each part separated from the next by a blank line (`"\n\n"`)
/// and left out when empty. See [`knowledge_sources_text`] and [`folder_silos_text`] for
/// the formats.
///
/// Blocking: it reads every source and silo file.
pub fn build_system_prompt(
    system_prompt: &str,
    sources: &[KnowledgeSource],
    silos: &[KnowledgeSilo],
) -> String {
    let mut prompt = system_prompt.to_owned();
    let silo_text = folder_silos_text(silos);
    if !silo_text.is_empty() {
        prompt = format!("{silo_text}\n\n{prompt}");
    }
    let sources_text = knowledge_sources_text(sources);
    if !sources_text.is_empty() {
        prompt = format!("{sources_text}\n\n{prompt}");
    }
    prompt
}

/// What a task sends its model, once the files are read.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PreparedTask {
    /// The system prompt ([`build_system_prompt`]).
    pub system: String,
    /// The payload, with `<field>_content` added for each resolved file ref.
    pub payload: JsonObject,
}

/// Reads everything a task of `config` needs from disk: the system prompt (built around
/// `system_prompt`) and, when `workspace_dir` and `resolve_file_refs` are both set, the file
/// refs of `payload`.
///
/// Blocking: run it in one `spawn_blocking` per task.
pub fn prepare_task(
    config: &WorkerConfig,
    system_prompt: &str,
    mut payload: JsonObject,
) -> Result<PreparedTask, FileRefError> {
    let system = build_system_prompt(
        system_prompt,
        &config.knowledge_sources,
        &config.knowledge_silos,
    );
    if let Some(dir) = &config.workspace_dir {
        if !config.resolve_file_refs.is_empty() {
            resolve_file_refs(dir, &config.resolve_file_refs, &mut payload)?;
        }
    }
    Ok(PreparedTask { system, payload })
}
