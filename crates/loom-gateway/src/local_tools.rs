//! Tools the gateway runs itself rather than dispatching to the mesh: the workshop and
//! session tools. [`LocalTools`] routes a call by its [`Dispatch`]; [`LocalToolError`]
//! carries the original's error texts (`'name' is required`, `Workshop tools are not
//! configured`, …) and, for session failures, the context (`session_id`, `steps`) that
//! the error result repeats next to `error`.

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::catalog::Dispatch;
use crate::session_tools::SessionTools;
use crate::workshop_tools::WorkshopTools;

/// The workshop and session tools of one gateway.
#[derive(Debug, Clone, Default)]
pub struct LocalTools {
    /// The workshop tools, when the config has a `workshop` section.
    pub workshop: Option<WorkshopTools>,
    /// The session tools, when the config has a `session` section.
    pub sessions: Option<SessionTools>,
}

/// Why a workshop or session tool failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalToolError {
    /// A workshop tool was called on a gateway without workshop tools.
    #[error("Workshop tools are not configured")]
    WorkshopNotConfigured,
    /// A session tool was called on a gateway without session tools.
    #[error("Session tools are not configured")]
    SessionNotConfigured,
    /// The tool is not a workshop or session tool.
    #[error("tool '{0}' is not a workshop or session tool")]
    NotLocal(String),
    /// A required argument is missing or empty.
    #[error("{0}")]
    Required(String),
    /// An argument has a value the tool cannot use.
    #[error("invalid argument '{key}': {message}")]
    Invalid {
        /// The argument.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The workshop refused or failed.
    #[error(transparent)]
    Workshop(#[from] loom_workshop::WorkshopError),
    /// The session action failed.
    #[error(transparent)]
    Session(#[from] loom_workshop::sessions::SessionError),
    /// The client cancelled the call.
    #[error("the call was cancelled")]
    Cancelled,
    /// The result could not be encoded.
    #[error("internal error: {0}")]
    Internal(String),
}

impl LocalToolError {
    /// Context to show next to the error text (session `session_id` and `steps`).
    pub fn details(&self) -> Option<&Map<String, Value>> {
        match self {
            LocalToolError::Session(e) => e.details(),
            _ => None,
        }
    }
}

impl LocalTools {
    /// Runs the call of a workshop or session tool until it ends or `cancel` fires
    /// (which drops it: child processes are killed, blocking file and database work
    /// finishes on its own).
    pub async fn call(
        &self,
        tool: &str,
        dispatch: &Dispatch,
        args: Map<String, Value>,
        cancel: CancellationToken,
    ) -> Result<Map<String, Value>, LocalToolError> {
        let work = async {
            match dispatch {
                Dispatch::Workshop { action } => match &self.workshop {
                    Some(w) => w.call(*action, &args).await,
                    None => Err(LocalToolError::WorkshopNotConfigured),
                },
                Dispatch::Session { action } => match &self.sessions {
                    Some(s) => s.call(*action, &args).await,
                    None => Err(LocalToolError::SessionNotConfigured),
                },
                _ => Err(LocalToolError::NotLocal(tool.to_owned())),
            }
        };
        tokio::select! {
            biased;
            () = cancel.cancelled() => Err(LocalToolError::Cancelled),
            result = work => result,
        }
    }

    /// Whether [`LocalTools::touch_session`] is due (cheap, no I/O): false without
    /// session tools or within the refresh interval.
    pub fn session_touch_due(&self) -> bool {
        self.sessions
            .as_ref()
            .is_some_and(|s| s.sessions().touch_due())
    }

    /// Refreshes the active session's `last_active` (throttled), when there are session
    /// tools: any tool call counts as using the session.
    pub async fn touch_session(&self) {
        if let Some(s) = &self.sessions {
            s.sessions().touch_current().await;
        }
    }
}

/// `{"type": "object", "properties": …}` plus `required` when given.
pub(crate) fn object_schema(properties: Value, required: Option<Value>) -> Map<String, Value> {
    let mut schema = Map::new();
    schema.insert("type".to_owned(), Value::String("object".to_owned()));
    schema.insert("properties".to_owned(), properties);
    if let Some(r) = required {
        schema.insert("required".to_owned(), r);
    }
    schema
}

/// The non-empty string argument `key`, else [`LocalToolError::Required`] with `missing`.
pub(crate) fn required_str<'a>(
    args: &'a Map<String, Value>,
    key: &str,
    missing: &str,
) -> Result<&'a str, LocalToolError> {
    optional_str(args, key).ok_or_else(|| LocalToolError::Required(missing.to_owned()))
}

/// The string argument `key` when present and not empty.
pub(crate) fn optional_str<'a>(args: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    args.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
}
