//! The `Model` trait every backend implements, and the request, reply and error types it speaks.

use std::error::Error as StdError;
use std::ops::{Add, AddAssign};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A chat model that answers one [`CompletionRequest`] at a time.
///
/// The trait is object-safe: workers hold an `Arc<dyn Model>` chosen by tier
/// (see [`TierBackends`](crate::TierBackends)). Implementations retry transient HTTP
/// failures themselves (see [`RetryPolicy`](crate::RetryPolicy)); an error returned
/// from `complete` is final.
#[async_trait]
pub trait Model: Send + Sync {
    /// Sends `request` and returns the model's reply.
    async fn complete(&self, request: &CompletionRequest) -> Result<Completion, ModelError>;

    /// The configured model id, e.g. `claude-sonnet-4-20250514` or `llama3.2:3b`.
    fn name(&self) -> &str;
}

/// Default `max_tokens` of a [`CompletionRequest`] (the worker default `max_output_tokens`).
pub const DEFAULT_MAX_TOKENS: u32 = 2000;

/// One call to a model: a system prompt, the conversation so far, and the tools on offer.
///
/// Every value is valid, so the fields are public; [`CompletionRequest::new`] fills in
/// the defaults (2000 tokens, temperature 0, no tools).
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionRequest {
    /// The system prompt; sent as the first message (OpenAI, Ollama) or as `system`
    /// (Anthropic). Empty means none.
    pub system: String,
    /// The conversation, oldest first; usually starts with one user message.
    pub messages: Vec<ChatMessage>,
    /// The most tokens the model may generate.
    pub max_tokens: u32,
    /// Sampling temperature.
    pub temperature: f32,
    /// Tools the model may call; omitted from the request when empty.
    pub tools: Vec<ToolSpec>,
}

impl CompletionRequest {
    /// A request with one user message, [`DEFAULT_MAX_TOKENS`], temperature 0 and no tools.
    pub fn new(system: impl Into<String>, user: impl Into<String>) -> Self {
        Self {
            system: system.into(),
            messages: vec![ChatMessage::user(user)],
            max_tokens: DEFAULT_MAX_TOKENS,
            temperature: 0.0,
            tools: Vec::new(),
        }
    }

    /// Sets `max_tokens`.
    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// Sets the temperature.
    pub fn with_temperature(mut self, temperature: f32) -> Self {
        self.temperature = temperature;
        self
    }

    /// Sets the tools on offer.
    pub fn with_tools(mut self, tools: Vec<ToolSpec>) -> Self {
        self.tools = tools;
        self
    }
}

/// One message of a conversation, in a backend-neutral form.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
#[non_exhaustive]
pub enum ChatMessage {
    /// Text from the user (for workers: the task payload as JSON).
    User {
        /// The text.
        content: String,
    },
    /// An earlier model reply, with the tool calls it made.
    Assistant {
        /// Its text, if any.
        content: Option<String>,
        /// The tools it asked to call, in order.
        tool_calls: Vec<ToolCall>,
    },
    /// The result of one tool call, answering [`ToolCall::id`].
    Tool {
        /// The id of the call this answers.
        tool_call_id: String,
        /// The tool's name.
        name: String,
        /// The result text (typically JSON).
        content: String,
    },
}

impl ChatMessage {
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::User {
            content: content.into(),
        }
    }

    /// An assistant message with text and no tool calls.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::Assistant {
            content: Some(content.into()),
            tool_calls: Vec::new(),
        }
    }

    /// A tool result answering `call`.
    pub fn tool_result(call: &ToolCall, content: impl Into<String>) -> Self {
        Self::Tool {
            tool_call_id: call.id.clone(),
            name: call.name.clone(),
            content: content.into(),
        }
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The tool's name, as the model must spell it.
    pub name: String,
    /// What the tool does, for the model.
    pub description: String,
    /// The JSON Schema of the tool's arguments.
    pub input_schema: Value,
}

impl ToolSpec {
    /// A tool spec.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        input_schema: Value,
    ) -> Self {
        Self {
            name: name.into(),
            description: description.into(),
            input_schema,
        }
    }
}

/// A tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call id, echoed in the tool result (synthesised as `call_<i>` for Ollama).
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments; `{"_raw": s}` when an OpenAI-compatible server sent invalid JSON `s`.
    pub arguments: Value,
}

impl ToolCall {
    /// A tool call.
    pub fn new(id: impl Into<String>, name: impl Into<String>, arguments: Value) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            arguments,
        }
    }
}

/// A model's reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The reply text; `None` when the model only called tools.
    pub content: Option<String>,
    /// The model that answered (from the response when the API reports it).
    pub model: String,
    /// Tokens used by this call.
    pub usage: Usage,
    /// Tools the model asked to call, in order.
    pub tool_calls: Vec<ToolCall>,
    /// Why the model stopped.
    pub stop_reason: StopReason,
}

impl Completion {
    /// A text reply from `model` with no usage and no tool calls.
    pub fn text(model: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            content: Some(content.into()),
            model: model.into(),
            usage: Usage::default(),
            tool_calls: Vec::new(),
            stop_reason: StopReason::EndTurn,
        }
    }

    /// A reply from `model` that only calls tools.
    pub fn tool_calls(model: impl Into<String>, calls: Vec<ToolCall>) -> Self {
        Self {
            content: None,
            model: model.into(),
            usage: Usage::default(),
            tool_calls: calls,
            stop_reason: StopReason::ToolUse,
        }
    }

    /// Sets the usage.
    pub fn with_usage(mut self, prompt_tokens: u64, completion_tokens: u64) -> Self {
        self.usage = Usage {
            prompt_tokens,
            completion_tokens,
        };
        self
    }
}

/// Token counts of one call, or summed over several.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens of the prompt (input).
    pub prompt_tokens: u64,
    /// Tokens generated (output).
    pub completion_tokens: u64,
}

impl Add for Usage {
    type Output = Usage;
    fn add(self, other: Usage) -> Usage {
        Usage {
            prompt_tokens: self.prompt_tokens.saturating_add(other.prompt_tokens),
            completion_tokens: self
                .completion_tokens
                .saturating_add(other.completion_tokens),
        }
    }
}

impl AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        *self = *self + other;
    }
}

/// Why a model stopped generating.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopReason {
    /// It finished its answer.
    EndTurn,
    /// It wants tool results before going on.
    ToolUse,
    /// It hit `max_tokens`.
    MaxTokens,
    /// Another reason reported by the API, as spelt there (e.g. `stop_sequence`).
    Other(String),
}

/// A boxed error kept as the source of a [`ModelError`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a model call failed. Callers branch on the variant; [`ModelError::is_retryable`]
/// says whether trying again may help.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// The API answered with a non-success status.
    #[error("{url} answered HTTP {status}: {body_preview}")]
    Http {
        /// The URL called.
        url: String,
        /// The HTTP status code.
        status: u16,
        /// The first 500 characters of the response body.
        body_preview: String,
        /// The server's `Retry-After` (on 429 and 503), if it sent one.
        retry_after: Option<Duration>,
    },
    /// The request did not complete: connection refused, reset, or timed out.
    #[error("cannot reach {url}")]
    Transport {
        /// The URL called.
        url: String,
        /// The HTTP client's error.
        #[source]
        source: BoxError,
    },
    /// The response did not have the expected shape.
    #[error("unexpected response from {url}: {message}")]
    Decode {
        /// The URL called.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// The backend is misconfigured (bad URL, bad header value, bad environment).
    #[error("invalid model configuration: {message}")]
    Config {
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl ModelError {
    /// Whether trying again may succeed: HTTP 429 and 5xx, and transport failures.
    pub fn is_retryable(&self) -> bool {
        match self {
            ModelError::Http { status, .. } => *status == 429 || (500..=599).contains(status),
            ModelError::Transport { .. } => true,
            ModelError::Decode { .. } | ModelError::Config { .. } => false,
        }
    }

    /// The server's `Retry-After`, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ModelError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        ModelError::Config {
            message: message.into(),
        }
    }

    pub(crate) fn decode(url: &str, message: impl Into<String>) -> Self {
        ModelError::Decode {
            url: url.to_owned(),
            message: message.into(),
        }
    }
}

/// The user message for a task payload: pretty JSON (2-space indent) with non-ASCII
/// characters kept as they are, which costs far fewer tokens for Persian or Arabic
/// text than the `\uXXXX` escapes of loom-ai 0.9.
///
/// ```
/// let mut payload = serde_json::Map::new();
/// payload.insert("text".into(), "سلام".into());
/// assert_eq!(loom_llm::user_message_for(&payload), "{\n  \"text\": \"سلام\"\n}");
/// ```
pub fn user_message_for(payload: &Map<String, Value>) -> String {
    // Serialising a map of JSON values cannot fail: keys are strings and values are JSON.
    serde_json::to_string_pretty(payload).unwrap_or_else(|_| String::from("{}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_statuses_are_429_and_5xx() {
        let http = |status| ModelError::Http {
            url: "http://x".into(),
            status,
            body_preview: String::new(),
            retry_after: None,
        };
        assert!(http(429).is_retryable());
        assert!(http(500).is_retryable());
        assert!(http(503).is_retryable());
        assert!(!http(400).is_retryable());
        assert!(!http(401).is_retryable());
        assert!(!ModelError::config("x").is_retryable());
        assert!(!ModelError::decode("http://x", "y").is_retryable());
    }

    #[test]
    fn usage_adds_up() {
        let mut total = Usage::default();
        total += Usage {
            prompt_tokens: 3,
            completion_tokens: 4,
        };
        total += Usage {
            prompt_tokens: 1,
            completion_tokens: 2,
        };
        assert_eq!(
            total,
            Usage {
                prompt_tokens: 4,
                completion_tokens: 6
            }
        );
    }

    #[test]
    fn user_message_is_pretty_and_not_ascii_escaped() {
        let mut payload = Map::new();
        payload.insert("name".into(), Value::from("Zoë"));
        payload.insert("n".into(), Value::from(1));
        assert_eq!(
            user_message_for(&payload),
            "{\n  \"name\": \"Zoë\",\n  \"n\": 1\n}"
        );
    }
}
