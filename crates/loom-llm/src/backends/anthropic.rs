//! The Anthropic Messages API backend.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::{DEFAULT_REQUEST_TIMEOUT, HttpClient, count, trim_base};
use crate::model::{
    ChatMessage, Completion, CompletionRequest, Model, ModelError, StopReason, ToolCall, Usage,
};
use crate::retry::RetryPolicy;

/// The API's base URL.
pub const ANTHROPIC_DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

/// The documented `anthropic-version` (loom-ai 0.9 sent the undocumented `2024-10-22`).
pub const ANTHROPIC_DEFAULT_VERSION: &str = "2023-06-01";

/// Settings of an [`AnthropicBackend`].
///
/// ```
/// use loom_llm::backends::AnthropicSettings;
/// use secrecy::SecretString;
///
/// let backend = AnthropicSettings::new(SecretString::from("sk-ant-…"), "claude-sonnet-4-20250514").build()?;
/// assert_eq!(backend.url(), "https://api.anthropic.com/v1/messages");
/// # Ok::<(), loom_llm::ModelError>(())
/// ```
#[derive(Debug, Clone)]
pub struct AnthropicSettings {
    api_key: SecretString,
    model: String,
    base_url: String,
    version: String,
    timeout: Duration,
    retry: RetryPolicy,
}

impl AnthropicSettings {
    /// Settings for `model` with `api_key` at [`ANTHROPIC_DEFAULT_BASE_URL`], sending
    /// `anthropic-version:` [`ANTHROPIC_DEFAULT_VERSION`].
    pub fn new(api_key: SecretString, model: impl Into<String>) -> Self {
        Self {
            api_key,
            model: model.into(),
            base_url: ANTHROPIC_DEFAULT_BASE_URL.to_owned(),
            version: ANTHROPIC_DEFAULT_VERSION.to_owned(),
            timeout: DEFAULT_REQUEST_TIMEOUT,
            retry: RetryPolicy::default(),
        }
    }

    /// Sets the base URL (the endpoint is `{base}/v1/messages`).
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// Sets the `anthropic-version` header.
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// Sets the timeout of one HTTP request.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The model id.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The `anthropic-version` header value.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Builds the backend.
    pub fn build(self) -> Result<AnthropicBackend, ModelError> {
        let mut key = HeaderValue::from_str(self.api_key.expose_secret()).map_err(|_| {
            ModelError::config(
                "the Anthropic API key contains characters not allowed in an HTTP header",
            )
        })?;
        key.set_sensitive(true);
        let version = HeaderValue::from_str(&self.version).map_err(|_| {
            ModelError::config(format!("invalid anthropic-version '{}'", self.version))
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(HeaderName::from_static("x-api-key"), key);
        headers.insert(HeaderName::from_static("anthropic-version"), version);
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(AnthropicBackend {
            http: HttpClient::new(self.timeout, self.retry)?,
            url: format!("{}/v1/messages", trim_base(&self.base_url)),
            model: self.model,
            headers,
        })
    }
}

/// A [`Model`] speaking the Anthropic Messages API.
#[derive(Debug, Clone)]
pub struct AnthropicBackend {
    http: HttpClient,
    url: String,
    model: String,
    headers: HeaderMap,
}

impl AnthropicBackend {
    /// The endpoint called, `{base}/v1/messages`.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn request_body(&self, request: &CompletionRequest) -> Value {
        let mut body = json!({
            "model": self.model,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        });
        if !request.system.is_empty() {
            body["system"] = Value::from(request.system.as_str());
        }
        body["messages"] = Value::Array(convert_history(&request.messages));
        if !request.tools.is_empty() {
            let tools: Vec<Value> = request
                .tools
                .iter()
                .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.input_schema}))
                .collect();
            body["tools"] = Value::Array(tools);
        }
        body
    }

    fn parse(&self, response: &Value) -> Result<Completion, ModelError> {
        let blocks = response
            .get("content")
            .and_then(Value::as_array)
            .ok_or_else(|| ModelError::decode(&self.url, "no content array in the response"))?;
        // Text blocks are fragments of one answer (citations split a sentence into
        // several), so they are concatenated as they are.
        let mut text = String::new();
        let mut tool_calls = Vec::new();
        for (i, block) in blocks.iter().enumerate() {
            match block.get("type").and_then(Value::as_str) {
                Some("text") => text.push_str(
                    block
                        .get("text")
                        .and_then(Value::as_str)
                        .unwrap_or_default(),
                ),
                Some("tool_use") => {
                    let field = |name: &str| {
                        block
                            .get(name)
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                            .ok_or_else(|| {
                                ModelError::decode(
                                    &self.url,
                                    format!("content[{i}] (tool_use) has no {name}"),
                                )
                            })
                    };
                    let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                    tool_calls.push(ToolCall::new(field("id")?, field("name")?, input));
                }
                _ => {}
            }
        }
        let stop_reason = match response.get("stop_reason").and_then(Value::as_str) {
            Some("tool_use") => StopReason::ToolUse,
            Some("end_turn") | None => StopReason::EndTurn,
            Some("max_tokens") => StopReason::MaxTokens,
            Some(other) => StopReason::Other(other.to_owned()),
        };
        let usage = response.get("usage").unwrap_or(&Value::Null);
        Ok(Completion {
            content: (!text.is_empty()).then_some(text),
            model: response
                .get("model")
                .and_then(Value::as_str)
                .filter(|m| !m.is_empty())
                .unwrap_or(self.model.as_str())
                .to_owned(),
            usage: Usage {
                prompt_tokens: count(usage, "input_tokens"),
                completion_tokens: count(usage, "output_tokens"),
            },
            tool_calls,
            stop_reason,
        })
    }
}

/// Converts the history: assistant turns become content blocks, and tool results become
/// `tool_result` blocks of a user message (consecutive results share one message).
fn convert_history(messages: &[ChatMessage]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::with_capacity(messages.len());
    let mut open_results: Option<Vec<Value>> = None;
    for message in messages {
        if let ChatMessage::Tool {
            tool_call_id,
            content,
            ..
        } = message
        {
            open_results.get_or_insert_with(Vec::new).push(
                json!({"type": "tool_result", "tool_use_id": tool_call_id, "content": content}),
            );
            continue;
        }
        if let Some(results) = open_results.take() {
            out.push(json!({"role": "user", "content": results}));
        }
        match message {
            ChatMessage::User { content } => out.push(json!({"role": "user", "content": content})),
            ChatMessage::Assistant {
                content,
                tool_calls,
            } => {
                let mut blocks = Vec::with_capacity(tool_calls.len() + 1);
                if let Some(text) = content.as_deref().filter(|t| !t.is_empty()) {
                    blocks.push(json!({"type": "text", "text": text}));
                }
                for call in tool_calls {
                    blocks.push(json!({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}));
                }
                out.push(json!({"role": "assistant", "content": blocks}));
            }
            ChatMessage::Tool { .. } => {}
        }
    }
    if let Some(results) = open_results {
        out.push(json!({"role": "user", "content": results}));
    }
    out
}

#[async_trait]
impl Model for AnthropicBackend {
    async fn complete(&self, request: &CompletionRequest) -> Result<Completion, ModelError> {
        let body = self.request_body(request);
        let response = self.http.post_json(&self.url, &self.headers, &body).await?;
        self.parse(&response)
    }

    fn name(&self) -> &str {
        &self.model
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ToolSpec;

    fn backend() -> AnthropicBackend {
        AnthropicSettings::new(SecretString::from("sk-ant-secret"), "claude")
            .build()
            .expect("builds")
    }

    #[test]
    fn default_headers_fix_b10() {
        let b = backend();
        assert_eq!(b.url(), "https://api.anthropic.com/v1/messages");
        assert_eq!(
            b.headers
                .get("anthropic-version")
                .and_then(|v| v.to_str().ok()),
            Some("2023-06-01")
        );
        assert!(
            b.headers
                .get("x-api-key")
                .is_some_and(HeaderValue::is_sensitive)
        );
        assert!(!format!("{b:?}").contains("sk-ant-secret"));
        let b = AnthropicSettings::new(SecretString::from("k"), "c")
            .with_version("2099-01-01")
            .build()
            .expect("builds");
        assert_eq!(
            b.headers
                .get("anthropic-version")
                .and_then(|v| v.to_str().ok()),
            Some("2099-01-01")
        );
    }

    #[test]
    fn history_merges_consecutive_tool_results_into_one_user_message() {
        let request = CompletionRequest {
            system: "sys".into(),
            messages: vec![
                ChatMessage::user("hi"),
                ChatMessage::Assistant {
                    content: Some("let me look".into()),
                    tool_calls: vec![
                        ToolCall::new("t1", "a", json!({"x": 1})),
                        ToolCall::new("t2", "b", json!({})),
                    ],
                },
                ChatMessage::Tool {
                    tool_call_id: "t1".into(),
                    name: "a".into(),
                    content: "r1".into(),
                },
                ChatMessage::Tool {
                    tool_call_id: "t2".into(),
                    name: "b".into(),
                    content: "r2".into(),
                },
            ],
            max_tokens: 100,
            temperature: 0.0,
            tools: vec![ToolSpec::new("a", "A", json!({"type": "object"}))],
        };
        assert_eq!(
            backend().request_body(&request),
            json!({
                "model": "claude",
                "max_tokens": 100,
                "temperature": 0.0,
                "system": "sys",
                "messages": [
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": [
                        {"type": "text", "text": "let me look"},
                        {"type": "tool_use", "id": "t1", "name": "a", "input": {"x": 1}},
                        {"type": "tool_use", "id": "t2", "name": "b", "input": {}},
                    ]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "t1", "content": "r1"},
                        {"type": "tool_result", "tool_use_id": "t2", "content": "r2"},
                    ]},
                ],
                "tools": [{"name": "a", "description": "A", "input_schema": {"type": "object"}}],
            })
        );
    }

    #[test]
    fn text_blocks_are_joined_not_last_wins() {
        let c = backend()
            .parse(&json!({
                "model": "claude-x",
                "content": [
                    {"type": "text", "text": "The answer "},
                    {"type": "text", "text": "is 42."},
                    {"type": "tool_use", "id": "tu1", "name": "calc", "input": {"e": "6*7"}},
                ],
                "stop_reason": "tool_use",
                "usage": {"input_tokens": 11, "output_tokens": 7},
            }))
            .expect("parses");
        assert_eq!(c.content.as_deref(), Some("The answer is 42."));
        assert_eq!(c.model, "claude-x");
        assert_eq!(
            c.tool_calls,
            vec![ToolCall::new("tu1", "calc", json!({"e": "6*7"}))]
        );
        assert_eq!(c.stop_reason, StopReason::ToolUse);
        assert_eq!(
            c.usage,
            Usage {
                prompt_tokens: 11,
                completion_tokens: 7
            }
        );
    }

    #[test]
    fn stop_reasons_map() {
        let stop = |reason: &str| {
            backend()
                .parse(&json!({"content": [], "stop_reason": reason}))
                .expect("parses")
                .stop_reason
        };
        assert_eq!(stop("end_turn"), StopReason::EndTurn);
        assert_eq!(stop("max_tokens"), StopReason::MaxTokens);
        assert_eq!(
            stop("stop_sequence"),
            StopReason::Other("stop_sequence".into())
        );
    }
}
