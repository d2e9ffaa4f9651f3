//! The `session.*` tools (gateway spec §3.6, §8): definitions and the calls into
//! `loom-workshop`'s [`Sessions`].
//!
//! Names, schemas and enable lists are the original's. Hints: `status` is read-only;
//! `sync_check` runs `git fetch`, so it is not read-only (§13.23) but idempotent; `end`
//! commits and pushes, so it is destructive; `start` and `sync` only fast-forward.
//! Failures are tool errors; a failed `start` repeats `session_id` and `steps` next to
//! `error`, as the original's result did.

use loom_core::config::SessionAction;
use loom_workshop::sessions::Sessions;
use serde_json::{Map, Value, json};

use crate::catalog::{Dispatch, GatewayTool, ToolHints};
use crate::local_tools::{LocalToolError, object_schema, optional_str};

/// The session tools `enable` lists, in the original's order (start, end, status,
/// sync_check, sync).
pub fn session_tools(enable: &std::collections::BTreeSet<SessionAction>) -> Vec<GatewayTool> {
    SessionAction::ALL
        .iter()
        .copied()
        .filter(|a| enable.contains(a))
        .filter_map(definition)
        .collect()
}

fn definition(action: SessionAction) -> Option<GatewayTool> {
    let s = |d: &str| json!({"type": "string", "description": d});
    let (description, properties, hints) = match action {
        SessionAction::Start => (
            "Start an analytical session: pull the framework, run the configured hook, check services, register the session.",
            json!({"session_id": s("Session ID (auto-generated if omitted)")}),
            ToolHints {
                destructive: Some(false),
                ..ToolHints::default()
            },
        ),
        SessionAction::End => (
            "End a session: commit and push framework changes, unregister the session.",
            json!({
                "session_id": s("Session to end (most recent if omitted)"),
                "message": s("Commit message summary"),
            }),
            ToolHints {
                destructive: Some(true),
                ..ToolHints::default()
            },
        ),
        SessionAction::Status => (
            "Show active sessions, framework git state and service health.",
            json!({}),
            ToolHints {
                read_only: Some(true),
                ..ToolHints::default()
            },
        ),
        SessionAction::SyncCheck => (
            "Fetch and report how far the framework is ahead of or behind its upstream.",
            json!({}),
            ToolHints {
                read_only: Some(false),
                destructive: Some(false),
                idempotent: Some(true),
                ..ToolHints::default()
            },
        ),
        SessionAction::Sync => (
            "Pull the framework (fast-forward only) and run the configured hook.",
            json!({}),
            ToolHints {
                destructive: Some(false),
                ..ToolHints::default()
            },
        ),
    };
    GatewayTool::new(
        action.tool_name(),
        description,
        object_schema(properties, None),
        Dispatch::Session { action },
    )
    .ok()
    .map(|t| t.with_hints(hints))
}

/// The sessions behind the tools.
#[derive(Debug, Clone)]
pub struct SessionTools {
    sessions: Sessions,
}

impl SessionTools {
    /// Tools over `sessions`.
    pub fn new(sessions: Sessions) -> Self {
        SessionTools { sessions }
    }

    /// The sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Runs `action` with `args`.
    pub async fn call(
        &self,
        action: SessionAction,
        args: &Map<String, Value>,
    ) -> Result<Map<String, Value>, LocalToolError> {
        let s = &self.sessions;
        Ok(match action {
            SessionAction::Start => s.start(optional_str(args, "session_id")).await?,
            SessionAction::End => {
                s.end(
                    optional_str(args, "session_id"),
                    optional_str(args, "message"),
                )
                .await?
            }
            SessionAction::Status => s.status().await?,
            SessionAction::SyncCheck => s.sync_check().await?,
            SessionAction::Sync => s.sync().await?,
        })
    }
}
