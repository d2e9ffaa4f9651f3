//! The Ollama native `/api/chat` backend.

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use super::{
    DEFAULT_REQUEST_TIMEOUT, HttpClient, chat_messages, count, function_calls, function_tools,
    trim_base,
};
use crate::model::{
    ChatMessage, Completion, CompletionRequest, Model, ModelError, StopReason, Usage,
};
use crate::retry::RetryPolicy;

/// Settings of an [`OllamaBackend`].
///
/// ```
/// use loom_llm::backends::OllamaSettings;
///
/// let backend = OllamaSettings::new("http://localhost:11434/", "llama3.2:3b").build()?;
/// assert_eq!(backend.url(), "http://localhost:11434/api/chat");
/// # Ok::<(), loom_llm::ModelError>(())
/// ```
#[derive(Debug, Clone)]
pub struct OllamaSettings {
    base_url: String,
    model: String,
    timeout: Duration,
    retry: RetryPolicy,
}

impl OllamaSettings {
    /// Settings for `model` served at `base_url`.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            model: model.into(),
            timeout: DEFAULT_REQUEST_TIMEOUT,
            retry: RetryPolicy::default(),
        }
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

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The model id.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Builds the backend.
    pub fn build(self) -> Result<OllamaBackend, ModelError> {
        Ok(OllamaBackend {
            http: HttpClient::new(self.timeout, self.retry)?,
            url: format!("{}/api/chat", trim_base(&self.base_url)),
            model: self.model,
        })
    }
}

/// A [`Model`] speaking Ollama's native chat API (non-streaming).
#[derive(Debug, Clone)]
pub struct OllamaBackend {
    http: HttpClient,
    url: String,
    model: String,
}

impl OllamaBackend {
    /// The endpoint called, `{base}/api/chat`.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn request_body(&self, request: &CompletionRequest) -> Value {
        let mut body = json!({
            "model": self.model,
            "messages": chat_messages(request, message_json),
            "stream": false,
            "options": {"temperature": request.temperature, "num_predict": request.max_tokens},
        });
        if !request.tools.is_empty() {
            body["tools"] = function_tools(&request.tools);
        }
        body
    }

    fn parse(&self, response: &Value) -> Result<Completion, ModelError> {
        let message = response
            .get("message")
            .ok_or_else(|| ModelError::decode(&self.url, "no message in the response"))?;
        let content = message
            .get("content")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let tool_calls = function_calls(&self.url, message, |_, i| format!("call_{i}"))?;
        let stop_reason = if !tool_calls.is_empty() {
            StopReason::ToolUse
        } else if response.get("done_reason").and_then(Value::as_str) == Some("length") {
            StopReason::MaxTokens
        } else {
            StopReason::EndTurn
        };
        Ok(Completion {
            content,
            model: self.model.clone(),
            usage: Usage {
                prompt_tokens: count(response, "prompt_eval_count"),
                completion_tokens: count(response, "eval_count"),
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
            let mut m =
                json!({"role": "assistant", "content": content.as_deref().unwrap_or_default()});
            if !tool_calls.is_empty() {
                let calls: Vec<Value> = tool_calls
                    .iter()
                    .map(|c| json!({"function": {"name": c.name, "arguments": c.arguments}}))
                    .collect();
                m["tool_calls"] = Value::Array(calls);
            }
            m
        }
        // Ollama matches results to calls by order; `tool_name` helps newer versions.
        ChatMessage::Tool { name, content, .. } => {
            json!({"role": "tool", "content": content, "tool_name": name})
        }
    }
}

#[async_trait]
impl Model for OllamaBackend {
    async fn complete(&self, request: &CompletionRequest) -> Result<Completion, ModelError> {
        let body = self.request_body(request);
        let response = self
            .http
            .post_json(&self.url, &HeaderMap::new(), &body)
            .await?;
        self.parse(&response)
    }

    fn name(&self) -> &str {
        &self.model
    }
}

/// The models an Ollama server offers (`GET {base_url}/api/tags`), for health checks:
/// the HTTP status and, when it is 200, the model names in the server's order.
///
/// Fails with [`ModelError::Transport`] when the server cannot be reached within `timeout`.
pub async fn ollama_models(
    base_url: &str,
    timeout: Duration,
) -> Result<(u16, Vec<String>), ModelError> {
    let url = format!("{}/api/tags", trim_base(base_url));
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| ModelError::config(format!("cannot build the HTTP client: {e}")))?;
    let response = client
        .get(&url)
        .send()
        .await
        .map_err(|e| ModelError::Transport {
            url: url.clone(),
            source: Box::new(e),
        })?;
    let status = response.status().as_u16();
    if status != 200 {
        return Ok((status, Vec::new()));
    }
    let body: Value = response
        .json()
        .await
        .map_err(|e| ModelError::decode(&url, e.to_string()))?;
    let names = body["models"]
        .as_array()
        .map(|models| {
            models
                .iter()
                .filter_map(|m| m["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok((status, names))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ToolCall, ToolSpec};

    fn backend() -> OllamaBackend {
        OllamaSettings::new("http://o:11434", "llama3.2:3b")
            .build()
            .expect("builds")
    }

    #[test]
    fn request_puts_system_first_and_maps_options() {
        let request = CompletionRequest {
            system: "sys".into(),
            messages: vec![
                ChatMessage::user("hi"),
                ChatMessage::Assistant {
                    content: None,
                    tool_calls: vec![ToolCall::new("call_0", "t", json!({"x": 1}))],
                },
                ChatMessage::Tool {
                    tool_call_id: "call_0".into(),
                    name: "t".into(),
                    content: "ok".into(),
                },
            ],
            max_tokens: 64,
            temperature: 0.25,
            tools: vec![ToolSpec::new("t", "T", json!({"type": "object"}))],
        };
        assert_eq!(
            backend().request_body(&request),
            json!({
                "model": "llama3.2:3b",
                "messages": [
                    {"role": "system", "content": "sys"},
                    {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "t", "arguments": {"x": 1}}}]},
                    {"role": "tool", "content": "ok", "tool_name": "t"},
                ],
                "stream": false,
                "options": {"temperature": 0.25, "num_predict": 64},
                "tools": [{"type": "function", "function": {"name": "t", "description": "T", "parameters": {"type": "object"}}}],
            })
        );
    }

    #[test]
    fn response_synthesises_ids_and_defaults_counts_to_zero() {
        let c = backend()
            .parse(&json!({
                "model": "ignored",
                "message": {"role": "assistant", "content": "", "tool_calls": [
                    {"function": {"name": "a", "arguments": {"q": 1}}},
                    {"function": {"name": "b", "arguments": {}}},
                ]},
            }))
            .expect("parses");
        assert_eq!(c.content, None);
        assert_eq!(c.model, "llama3.2:3b");
        assert_eq!(c.usage, Usage::default());
        assert_eq!(c.stop_reason, StopReason::ToolUse);
        let ids: Vec<_> = c.tool_calls.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["call_0", "call_1"]);
        assert_eq!(c.tool_calls[0].arguments, json!({"q": 1}));

        let c = backend()
            .parse(
                &json!({"message": {"content": "hello"}, "prompt_eval_count": 5, "eval_count": 2}),
            )
            .expect("parses");
        assert_eq!(c.content.as_deref(), Some("hello"));
        assert_eq!(c.stop_reason, StopReason::EndTurn);
        assert_eq!(c.usage.prompt_tokens, 5);
        assert_eq!(c.usage.completion_tokens, 2);
    }
}
