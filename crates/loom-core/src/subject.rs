//! The `loom.*` NATS subjects, and the checks for ids placed into them.
//!
//! Names ([`WorkerName`], [`PipelineName`]) are validated when built, so subjects made
//! from them are always single, literal tokens. Task ids and correlation ids arrive from
//! the wire as free strings; a `*`, `>`, space or (for task ids) `.` in them would turn a
//! publish into a wildcard, a protocol error or a different subject, so the functions that
//! embed them check them first and return [`SubjectError`].
//!
//! | subject | carries |
//! |---|---|
//! | [`TASKS_INCOMING`] | tasks for the router |
//! | [`tasks`] `loom.tasks.{worker}.{tier}` | routed tasks for one worker pool |
//! | [`TASKS_DEAD_LETTER`] | dead-letter envelopes |
//! | [`results`] `loom.results.{parent or "default"}` | task and goal results |
//! | [`GOALS_INCOMING`] | goals for any orchestrator (loom-ai 0.9.0 compatibility) |
//! | [`goals`] `loom.goals.{pipeline}` | goals addressed to one pipeline (new in Rust) |
//! | [`CONTROL_RELOAD`] | `{"action": "reload"}` broadcasts |
//! | [`control_cancel`] `loom.control.cancel.{task_id}` | cancel requests (new in Rust) |
//! | [`RESOURCES_CHANGED`] | workspace resource change notices |

use crate::message::ModelTier;
use crate::name::{PipelineName, WorkerName};

/// Where producers send tasks; the router consumes it.
pub const TASKS_INCOMING: &str = "loom.tasks.incoming";

/// Where the router sends tasks it cannot deliver.
pub const TASKS_DEAD_LETTER: &str = "loom.tasks.dead_letter";

/// Results of tasks that have no `parent_task_id`.
pub const RESULTS_DEFAULT: &str = "loom.results.default";

/// Every result subject, for observers (`loom.results.>`).
pub const RESULTS_ALL: &str = "loom.results.>";

/// The shared goal subject of loom-ai 0.9.0, consumed by every pipeline and orchestrator.
///
/// Kept for compatibility: a goal sent here reaches a random pipeline (mesh spec §19, B7);
/// prefer [`goals`].
pub const GOALS_INCOMING: &str = "loom.goals.incoming";

/// Broadcast to every actor: `{"action": "reload"}` makes it re-read its config.
pub const CONTROL_RELOAD: &str = "loom.control.reload";

/// Every single-token cancel subject (`loom.control.cancel.*`), for workers that
/// subscribe once (their task ids are single tokens).
pub const CONTROL_CANCEL_ALL: &str = "loom.control.cancel.*";

/// Notices that workspace resources changed.
pub const RESOURCES_CHANGED: &str = "loom.resources.changed";

/// Longest id accepted into a subject. Ids are UUIDs (36 bytes) or short call ids in
/// practice; the cap keeps a hostile message from producing huge subjects.
pub const MAX_SUBJECT_ID_LEN: usize = 256;

/// The subject a worker pool listens on: `loom.tasks.{worker}.{tier}`.
pub fn tasks(worker: &WorkerName, tier: ModelTier) -> String {
    format!("loom.tasks.{worker}.{tier}")
}

/// The subject a result is published on: `loom.results.{parent_task_id}`, or
/// [`RESULTS_DEFAULT`] when there is no parent.
///
/// The parent id may contain dots (a gateway may multiplex with `gw-x.call-y`), but each
/// dot-separated token must pass [`validate_subject_id`].
pub fn results(parent_task_id: Option<&str>) -> Result<String, SubjectError> {
    match parent_task_id {
        None => Ok(RESULTS_DEFAULT.to_owned()),
        Some(parent) => {
            validate_subject_tokens(parent)?;
            Ok(format!("loom.results.{parent}"))
        }
    }
}

/// The subject for goals addressed to one pipeline: `loom.goals.{pipeline}`.
pub fn goals(pipeline: &PipelineName) -> String {
    format!("loom.goals.{pipeline}")
}

/// The subject a cancel request for `task_id` goes to: `loom.control.cancel.{task_id}`.
///
/// Like a result subject's parent id, `task_id` may span several tokens (a gateway's
/// goal id `gw-x.call-y`), each of which must pass [`validate_subject_id`]
/// ([`validate_subject_tokens`]). Workers subscribe to [`CONTROL_CANCEL_ALL`] and so see
/// single-token ids (task ids are UUIDs); a pipeline subscribes to its goal's exact
/// cancel subject, whatever its number of tokens.
pub fn control_cancel(task_id: &str) -> Result<String, SubjectError> {
    validate_subject_tokens(task_id)?;
    Ok(format!("loom.control.cancel.{task_id}"))
}

/// Checks that `id` can be placed into a subject as exactly one literal token: not empty,
/// at most [`MAX_SUBJECT_ID_LEN`] bytes, and free of whitespace, control characters,
/// the wildcards `*` and `>`, and `.`.
pub fn validate_subject_id(id: &str) -> Result<(), SubjectError> {
    check_common(id)?;
    if id.contains('.') {
        return Err(SubjectError::Dot { id: id.to_owned() });
    }
    Ok(())
}

/// Like [`validate_subject_id`], but allows `.` between non-empty tokens, so the id may
/// span several subject tokens (`gw-x.call-y`).
pub fn validate_subject_tokens(id: &str) -> Result<(), SubjectError> {
    check_common(id)?;
    if id.split('.').any(str::is_empty) {
        return Err(SubjectError::EmptyToken { id: id.to_owned() });
    }
    Ok(())
}

fn check_common(id: &str) -> Result<(), SubjectError> {
    if id.is_empty() {
        return Err(SubjectError::Empty);
    }
    if id.len() > MAX_SUBJECT_ID_LEN {
        return Err(SubjectError::TooLong {
            id: id.chars().take(40).collect::<String>() + "…",
            len: id.len(),
        });
    }
    if let Some(ch) = id
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || *c == '*' || *c == '>')
    {
        return Err(SubjectError::InvalidChar {
            id: id.to_owned(),
            ch,
        });
    }
    Ok(())
}

/// Why an id cannot be placed into a subject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SubjectError {
    /// The id is empty.
    #[error("subject id is empty")]
    Empty,
    /// The id is longer than [`MAX_SUBJECT_ID_LEN`].
    #[error("subject id '{id}' is {len} bytes long; the limit is {MAX_SUBJECT_ID_LEN}")]
    TooLong {
        /// The id, truncated for display.
        id: String,
        /// Its length in bytes.
        len: usize,
    },
    /// The id contains whitespace, a control character, `*` or `>`.
    #[error(
        "subject id '{id}' contains {ch:?}, which cannot appear in a NATS subject token (no whitespace, control characters, '*' or '>')"
    )]
    InvalidChar {
        /// The offending id.
        id: String,
        /// The first offending character.
        ch: char,
    },
    /// A single-token id contains `.`, which would split it into several tokens.
    #[error("subject id '{id}' contains '.', which would split it into several subject tokens")]
    Dot {
        /// The offending id.
        id: String,
    },
    /// A multi-token id has an empty token (leading, trailing or doubled `.`).
    #[error("subject id '{id}' has an empty token (leading, trailing or doubled '.')")]
    EmptyToken {
        /// The offending id.
        id: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(s: &str) -> WorkerName {
        WorkerName::try_from(s).expect("valid test name")
    }

    #[test]
    fn constants_match_loom_ai() {
        assert_eq!(TASKS_INCOMING, "loom.tasks.incoming");
        assert_eq!(TASKS_DEAD_LETTER, "loom.tasks.dead_letter");
        assert_eq!(RESULTS_DEFAULT, "loom.results.default");
        assert_eq!(GOALS_INCOMING, "loom.goals.incoming");
        assert_eq!(CONTROL_RELOAD, "loom.control.reload");
        assert_eq!(RESOURCES_CHANGED, "loom.resources.changed");
    }

    #[test]
    fn task_subject_names_worker_and_tier() {
        assert_eq!(
            tasks(&worker("summarizer"), ModelTier::Local),
            "loom.tasks.summarizer.local"
        );
        assert_eq!(
            tasks(&worker("doc_extractor"), ModelTier::Frontier),
            "loom.tasks.doc_extractor.frontier"
        );
    }

    #[test]
    fn result_subject_uses_parent_or_default() {
        assert_eq!(results(None), Ok("loom.results.default".to_owned()));
        assert_eq!(
            results(Some("mcp-0123456789ab")),
            Ok("loom.results.mcp-0123456789ab".to_owned())
        );
        assert_eq!(
            results(Some("gw-x.call-y")),
            Ok("loom.results.gw-x.call-y".to_owned())
        );
    }

    #[test]
    fn result_subject_rejects_ids_that_corrupt_routing() {
        for bad in ["", "a b", "a*", ">", "a.>", "a\tb", "a\nb"] {
            assert!(results(Some(bad)).is_err(), "{bad:?} accepted");
        }
        for bad in [".a", "a.", "a..b"] {
            assert!(
                matches!(results(Some(bad)), Err(SubjectError::EmptyToken { .. })),
                "{bad:?}"
            );
        }
        let long = "a".repeat(MAX_SUBJECT_ID_LEN + 1);
        assert!(matches!(
            results(Some(&long)),
            Err(SubjectError::TooLong { .. })
        ));
    }

    #[test]
    fn goal_subject_names_pipeline() {
        let p = PipelineName::try_from("ingest").expect("valid test name");
        assert_eq!(goals(&p), "loom.goals.ingest");
    }

    #[test]
    fn cancel_subject_accepts_literal_tokens_only() {
        assert_eq!(
            control_cancel("9f1c2a44-0000-4000-8000-000000000000"),
            Ok("loom.control.cancel.9f1c2a44-0000-4000-8000-000000000000".to_owned())
        );
        assert_eq!(
            control_cancel("gw-0123456789ab.7"),
            Ok("loom.control.cancel.gw-0123456789ab.7".to_owned())
        );
        for bad in [".a", "a.", "a..b"] {
            assert!(
                matches!(control_cancel(bad), Err(SubjectError::EmptyToken { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            control_cancel("a.>"),
            Err(SubjectError::InvalidChar { ch: '>', .. })
        ));
        assert_eq!(control_cancel(""), Err(SubjectError::Empty));
        assert!(matches!(
            control_cancel("a*"),
            Err(SubjectError::InvalidChar { ch: '*', .. })
        ));
    }

    #[test]
    fn subject_id_errors_name_the_id() {
        let err = validate_subject_id("bad id").expect_err("space must fail");
        assert!(err.to_string().contains("'bad id'"), "{err}");
        assert!(err.to_string().starts_with("subject id"), "{err}");
        assert_eq!(validate_subject_id("task-1_A"), Ok(()));
    }
}
