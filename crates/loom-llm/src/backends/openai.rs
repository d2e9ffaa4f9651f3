//! The OpenAI-compatible chat-completions backend (OpenAI, vLLM, LM Studio, llama.cpp, Ollama `/v1`).

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value, json};

use super::{
    DEFAULT_REQUEST_TIMEOUT, HttpClient, chat_messages, count, function_calls, function_tools,
    trim_base,
};
use crate::model::{
    ChatMessage, Completion, CompletionRequest, Model, ModelError, StopReason, Usage,
};
use crate::retry::RetryPolicy;

/// Settings of an [`OpenAiBackend`].
///
/// ```
/// use loom_llm::backends::OpenAiSettings;
///
/// // LM Studio's default base; the trailing `/v1` is stripped before `/v1/chat/completions`.
/// let backend = OpenAiSettings::new("http://localhost:1234/v1", "qwen2.5-7b").build()?;
/// assert_eq!(backend.url(), "http://localhost:1234/v1/chat/completions");
/// # Ok::<(), loom_llm::ModelError>(())
/// ```
#[derive(Debug, Clone)]
pub struct OpenAiSettings {
    base_url: String,
    model: String,
    api_key: Option<SecretString>,
    timeout: Duration,
    retry: RetryPolicy,
}

impl OpenAiSettings {
    /// Settings for `model` at `base_url` (with or without a trailing `/v1`), no API key.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            timeout: DEFAULT_REQUEST_TIMEOUT,
            retry: RetryPolicy::default(),
        }
    }

    /// Sends `Authorization: Bearer <key>`; without a key no `Authorization` header is sent.
    pub fn with_api_key(mut self, api_key: SecretString) -> Self {
        self.api_key = Some(api_key);
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

    /// The base URL as given.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The model id.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Whether an API key is set.
    pub fn has_api_key(&self) -> bool {
        self.api_key.is_some()
    }

    /// Builds the backend.
    pub fn build(self) -> Result<OpenAiBackend, ModelError> {
        let base = trim_base(&self.base_url);
        let base = base.strip_suffix("/v1").unwrap_or(base);
        let url = format!("{}/v1/chat/completions", trim_base(base));
        let mut headers = HeaderMap::new();
        if let Some(key) = &self.api_key {
            let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose_secret()))
                .map_err(|_| {
                    ModelError::config(
                        "the OpenAI API key contains characters not allowed in an HTTP header",
                    )
                })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        Ok(OpenAiBackend {
            http: HttpClient::new(self.timeout, self.retry)?,
            url,
            model: self.model,
            headers,
        })
    }
}

/// A [`Model`] speaking the OpenAI chat-completions API.
#[derive(Debug, Clone)]
pub struct OpenAiBackend {
    http: HttpClient,
    url: String,
    model: String,
    headers: HeaderMap,
}

impl OpenAiBackend {
    /// The endpoint called, `{base}/v1/chat/completions`.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn request_body(&self, request: &CompletionRequest) -> Value {
        let mut body = json!({
            "model": self.model,
            "messages": chat_messages(request, message_json),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        });
        if !request.tools.is_empty() {
            body["tools"] = function_tools(&request.tools);
        }
        body
    }

    fn parse(&self, response: &Value) -> Result<Completion, ModelError> {
        let choice = response
            .get("choices")
            .and_then(|c| c.get(0))
            .ok_or_else(|| ModelError::decode(&self.url, "no choices[0] in the response"))?;
        let message = choice.get("message").ok_or_else(|| {
            ModelError::decode(&self.url, "no choices[0].message in the response")
        })?;
        let mut content = message
            .get("content")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        if content.is_none() {
            // Reasoning models on LM Studio and vLLM may put the whole answer here.
            if let Some(reasoning) = message
                .get("reasoning_content")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                tracing::debug!(model = %self.model, "Empty content; using reasoning_content.");
                content = Some(reasoning.to_owned());
            }
        }
        let tool_calls = function_calls(&self.url, message, |call, i| {
            call.get("id")
                .and_then(Value::as_str)
                .map_or_else(|| format!("call_{i}"), str::to_owned)
        })?;
        let stop_reason = match choice.get("finish_reason").and_then(Value::as_str) {
            Some("tool_calls") => StopReason::ToolUse,
            Some("length") => StopReason::MaxTokens,
            _ => StopReason::EndTurn,
        };
        let usage = response.get("usage").unwrap_or(&Value::Null);
        Ok(Completion {
            content,
            model: response
                .get("model")
                .and_then(Value::as_str)
                .filter(|m| !m.is_empty())
                .unwrap_or(&self.model)
                .to_owned(),
            usage: Usage {
                prompt_tokens: count(usage, "prompt_tokens"),
                completion_tokens: count(usage, "completion_tokens"),
            },
            tool_calls,
            stop_reason,
        })
    }
}

fn message_json(message: &ChatMessage) -> Value {
    match message {
        ChatMessage::User { content } => json!({"role": "user", "content": content}),
        ChatMessage::Assistant {
            content,
            tool_calls,
        } => {
            let mut m = Map::new();
            m.insert("role".into(), "assistant".into());
            m.insert(
                "content".into(),
                content.clone().map_or(Value::Null, Value::String),
            );
            if !tool_calls.is_empty() {
                let calls: Vec<Value> = tool_calls
                    .iter()
                    .map(|c| {
                        json!({
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": c.arguments.to_string()},
                        })
                    })
                    .collect();
                m.insert("tool_calls".into(), Value::Array(calls));
            }
            Value::Object(m)
        }
        ChatMessage::Tool {
            tool_call_id,
            content,
            ..
        } => json!({"role": "tool", "tool_call_id": tool_call_id, "content": content}),
    }
}

#[async_trait]
impl Model for OpenAiBackend {
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
    use crate::model::{ToolCall, ToolSpec};

    fn backend() -> OpenAiBackend {
        OpenAiSettings::new("http://h:1/v1/", "m")
            .build()
            .expect("builds")
    }

    #[test]
    fn trailing_v1_is_stripped() {
        assert_eq!(backend().url(), "http://h:1/v1/chat/completions");
        let b = OpenAiSettings::new("http://h:1", "m")
            .build()
            .expect("builds");
        assert_eq!(b.url(), "http://h:1/v1/chat/completions");
    }

    #[test]
    fn no_key_means_no_authorization_header() {
        assert!(backend().headers.get(AUTHORIZATION).is_none());
        let b = OpenAiSettings::new("http://h", "m")
            .with_api_key(SecretString::from("sk-test"))
            .build()
            .expect("builds");
        let auth = b.headers.get(AUTHORIZATION).expect("auth header");
        assert!(auth.is_sensitive());
        assert_eq!(auth.to_str().ok(), Some("Bearer sk-test"));
        assert!(
            !format!("{b:?}").contains("sk-test"),
            "debug output must not show the key"
        );
    }

    #[test]
    fn request_shape() {
        let request = CompletionRequest {
            system: "sys".into(),
            messages: vec![
                ChatMessage::user("hi"),
                ChatMessage::Assistant {
                    content: None,
                    tool_calls: vec![ToolCall::new("c1", "t", json!({"x": 1}))],
                },
                ChatMessage::Tool {
                    tool_call_id: "c1".into(),
                    name: "t".into(),
                    content: "ok".into(),
                },
            ],
            max_tokens: 10,
            temperature: 0.5,
            tools: vec![ToolSpec::new("t", "does t", json!({"type": "object"}))],
        };
        let body = backend().request_body(&request);
        assert_eq!(
            body,
            json!({
                "model": "m",
                "messages": [
                    {"role": "system", "content": "sys"},
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "t", "arguments": "{\"x\":1}"}}
                    ]},
                    {"role": "tool", "tool_call_id": "c1", "content": "ok"},
                ],
                "max_tokens": 10,
                "temperature": 0.5,
                "tools": [{"type": "function", "function": {"name": "t", "description": "does t", "parameters": {"type": "object"}}}],
            })
        );
    }

    #[test]
    fn parses_tool_calls_and_maps_finish_reasons() {
        let b = backend();
        let c = b
            .parse(&json!({
                "choices": [{"message": {"content": null, "tool_calls": [
                    {"id": "a", "function": {"name": "f", "arguments": "{\"q\": 2}"}},
                    {"id": "b", "function": {"name": "g", "arguments": "oops"}},
                ]}, "finish_reason": "tool_calls"}]
            }))
            .expect("parses");
        assert_eq!(c.content, None);
        assert_eq!(c.model, "m", "falls back to the configured model");
        assert_eq!(c.usage, Usage::default(), "usage defaults to 0");
        assert_eq!(c.stop_reason, StopReason::ToolUse);
        assert_eq!(c.tool_calls[0], ToolCall::new("a", "f", json!({"q": 2})));
        assert_eq!(
            c.tool_calls[1],
            ToolCall::new("b", "g", json!({"_raw": "oops"}))
        );

        let finish = |reason: &str| {
            b.parse(&json!({"choices": [{"message": {"content": "x"}, "finish_reason": reason}]}))
                .expect("parses")
                .stop_reason
        };
        assert_eq!(finish("stop"), StopReason::EndTurn);
        assert_eq!(finish("length"), StopReason::MaxTokens);
        assert_eq!(finish("content_filter"), StopReason::EndTurn);
    }

    #[test]
    fn empty_content_falls_back_to_reasoning_content() {
        let c = backend()
            .parse(&json!({
                "model": "served",
                "choices": [{"message": {"content": "", "reasoning_content": "thought"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 4},
            }))
            .expect("parses");
        assert_eq!(c.content.as_deref(), Some("thought"));
        assert_eq!(c.model, "served");
        assert_eq!(c.usage.prompt_tokens, 3);
        assert_eq!(c.usage.completion_tokens, 4);
    }

    #[test]
    fn missing_choices_is_a_decode_error() {
        assert!(matches!(
            backend().parse(&json!({"error": "x"})),
            Err(ModelError::Decode { .. })
        ));
    }
}
