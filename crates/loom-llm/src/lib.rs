//! Loom's model layer: the [`Model`] trait and its HTTP backends (OpenAI-compatible,
//! Anthropic Messages, Ollama native), retries with back-off, the tier → backend table,
//! resilient JSON extraction and the tool-use loop.
//!
//! - [`Model`] answers a [`CompletionRequest`] with a [`Completion`]; the backends in
//!   [`backends`] implement it over HTTP and retry 429/5xx per their [`RetryPolicy`].
//! - [`TierBackends`] maps `local`/`standard`/`frontier` to a backend, from explicit
//!   settings or from environment variables ([`tiers::settings_from_env`]).
//! - [`run_tool_loop`] lets a model call the tools of a [`ToolHost`] between turns.
//! - [`extract_json_object`] recovers the JSON object a worker asked its model for.
//!
//! ```
//! use loom_llm::testing::ScriptedModel;
//! use loom_llm::{CompletionRequest, MAX_TOOL_ROUNDS, extract_json_object, run_tool_loop, user_message_for};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let model = ScriptedModel::new("demo").then_text("Here it is:\n```json\n{\"summary\": \"ok\"}\n```");
//!
//! let mut payload = serde_json::Map::new();
//! payload.insert("text".into(), "Loom weaves workers together.".into());
//! let request = CompletionRequest::new("Summarise the text as JSON.", user_message_for(&payload));
//!
//! let outcome = run_tool_loop(&model, None, request, MAX_TOOL_ROUNDS).await?;
//! let output = extract_json_object(outcome.completion.content.as_deref().unwrap_or_default())?;
//! assert_eq!(output["summary"], "ok");
//! # Ok(())
//! # }
//! ```

pub mod agent;
pub mod backends;
pub mod extract;
pub mod model;
pub mod retry;
pub mod testing;
pub mod tiers;
pub mod tools;

pub use agent::{Agent, RunResult};
pub use extract::{ExtractError, extract_json_object};
pub use model::{
    ChatMessage, Completion, CompletionRequest, Model, ModelError, StopReason, ToolCall, ToolSpec,
    Usage, user_message_for,
};
pub use retry::{Jitter, RetryPolicy};
pub use tiers::{BackendSettings, NoBackend, TierBackends};
pub use tools::{
    ExecutedCall, MAX_TOOL_ROUNDS, ToolError, ToolHost, ToolLoopOutcome, run_tool_loop,
};
