//! The HTTP backends, one per API family, and the client plumbing they share.
//!
//! | backend | endpoint | serves |
//! |---|---|---|
//! | [`OpenAiBackend`] | `POST {base}/v1/chat/completions` | OpenAI, vLLM, LM Studio, llama.cpp, Ollama `/v1` |
//! | [`AnthropicBackend`] | `POST {base}/v1/messages` | Anthropic Messages API |
//! | [`OllamaBackend`] | `POST {base}/api/chat` | Ollama's native API |
//!
//! Each backend is built from a settings struct (`*Settings::new(..).with_*(..).build()`),
//! owns one `reqwest::Client` with a request timeout (default
//! [`DEFAULT_REQUEST_TIMEOUT`], 120 s), and wraps every call in its [`RetryPolicy`]
//! (default [`RetryPolicy::default`]). `Retry-After` on 429 and 503 (seconds or an HTTP
//! date) is parsed and honoured as a floor.
//!
//! The HTTP call itself (send, status check, `Retry-After`, JSON decode) is one shared
//! `HttpClient::post_json`; the OpenAI and Ollama backends also share the JSON of chat
//! messages, function tools and tool calls, which their APIs spell alike.

mod anthropic;
mod ollama;
mod openai;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::{Value, json};

pub use anthropic::{
    ANTHROPIC_DEFAULT_BASE_URL, ANTHROPIC_DEFAULT_VERSION, AnthropicBackend, AnthropicSettings,
};
pub use ollama::{OllamaBackend, OllamaSettings, ollama_models};
pub use openai::{OpenAiBackend, OpenAiSettings};

use crate::model::{ChatMessage, CompletionRequest, ModelError, ToolCall, ToolSpec};
use crate::retry::RetryPolicy;

/// Default timeout of one HTTP request to a model (the 0.9 value).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// How many characters of an error body are kept in [`ModelError::Http`].
const BODY_PREVIEW_CHARS: usize = 500;

/// An HTTP client with its retry policy; one per backend.
#[derive(Debug, Clone)]
struct HttpClient {
    client: reqwest::Client,
    retry: RetryPolicy,
}

impl HttpClient {
    fn new(timeout: Duration, retry: RetryPolicy) -> Result<Self, ModelError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| ModelError::config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self { client, retry })
    }

    /// POSTs `body` as JSON with `headers`, retrying per the policy; returns the JSON reply.
    async fn post_json(
        &self,
        url: &str,
        headers: &HeaderMap,
        body: &Value,
    ) -> Result<Value, ModelError> {
        self.retry.run(|| self.post_once(url, headers, body)).await
    }

    async fn post_once(
        &self,
        url: &str,
        headers: &HeaderMap,
        body: &Value,
    ) -> Result<Value, ModelError> {
        tracing::debug!(url, "Calling model.");
        let response = self
            .client
            .post(url)
            .headers(headers.clone())
            .json(body)
            .send()
            .await
            .map_err(|e| transport(url, e))?;
        let status = response.status();
        let retry_after = if status.as_u16() == 429 || status.as_u16() == 503 {
            parse_retry_after(response.headers(), SystemTime::now())
        } else {
            None
        };
        let text = response.text().await.map_err(|e| transport(url, e))?;
        if !status.is_success() {
            return Err(ModelError::Http {
                url: url.to_owned(),
                status: status.as_u16(),
                body_preview: preview(&text, BODY_PREVIEW_CHARS),
                retry_after,
            });
        }
        serde_json::from_str(&text).map_err(|e| {
            ModelError::decode(url, format!("invalid JSON ({e}): {}", preview(&text, 200)))
        })
    }
}

fn transport(url: &str, error: reqwest::Error) -> ModelError {
    // reqwest's error text may contain the URL but never headers, so keys stay out of logs.
    ModelError::Transport {
        url: url.to_owned(),
        source: Box::new(error),
    }
}

/// The first `max_chars` characters of `text`, with `…` when cut.
pub(crate) fn preview(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Trims trailing slashes from a base URL.
fn trim_base(base_url: &str) -> &str {
    base_url.trim_end_matches('/')
}

/// Parses `Retry-After` as delay-seconds or an IMF-fixdate HTTP date (relative to `now`).
fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    if let Ok(secs) = value.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT` (RFC 9110 §5.6.7).
fn parse_http_date(value: &str) -> Option<SystemTime> {
    let (_weekday, rest) = value.split_once(", ")?;
    let mut parts = rest.split(' ');
    let day: u64 = parts.next()?.parse().ok()?;
    let month = match parts.next()? {
        "Jan" => 1,
        "Feb" => 2,
        "Mar" => 3,
        "Apr" => 4,
        "May" => 5,
        "Jun" => 6,
        "Jul" => 7,
        "Aug" => 8,
        "Sep" => 9,
        "Oct" => 10,
        "Nov" => 11,
        "Dec" => 12,
        _ => return None,
    };
    let year: i64 = parts.next()?.parse().ok()?;
    let mut hms = parts.next()?.split(':');
    let hour: u64 = hms.next()?.parse().ok()?;
    let minute: u64 = hms.next()?.parse().ok()?;
    let second: u64 = hms.next()?.parse().ok()?;
    if parts.next()? != "GMT" || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60
    {
        return None;
    }
    let days = days_from_civil(year, month, i64::try_from(day).ok()?);
    let secs = u64::try_from(days).ok()? * 86_400 + hour * 3600 + minute * 60 + second;
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Decodes tool-call arguments sent as a JSON string; invalid JSON becomes `{"_raw": s}`.
fn decode_arguments(raw: &Value) -> Value {
    match raw {
        Value::String(s) => serde_json::from_str(s).unwrap_or_else(|_| {
            let mut wrapped = serde_json::Map::new();
            wrapped.insert("_raw".into(), Value::String(s.clone()));
            Value::Object(wrapped)
        }),
        Value::Null => Value::Object(serde_json::Map::new()),
        other => other.clone(),
    }
}

/// The token count at `value[key]`, 0 when absent or not a number.
fn count(value: &Value, key: &str) -> u64 {
    value.get(key).and_then(Value::as_u64).unwrap_or(0)
}

/// The chat messages of `request` as the OpenAI and Ollama chat APIs take them: the system
/// prompt (when not empty) as a `system` message, then each message as `message_json`
/// writes it.
fn chat_messages(request: &CompletionRequest, message_json: fn(&ChatMessage) -> Value) -> Value {
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if !request.system.is_empty() {
        messages.push(json!({"role": "system", "content": request.system}));
    }
    messages.extend(request.messages.iter().map(message_json));
    Value::Array(messages)
}

/// `tools` as OpenAI-style function tools (Ollama takes the same shape).
fn function_tools(tools: &[ToolSpec]) -> Value {
    tools
        .iter()
        .map(|t| {
            json!({
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.input_schema},
            })
        })
        .collect()
}

/// The `tool_calls` of an OpenAI-style reply `message` (Ollama's has the same shape): each
/// needs `function.name`, its `function.arguments` go through [`decode_arguments`], and
/// `id(call, i)` names the `i`th call. No `tool_calls` array means no calls.
fn function_calls(
    url: &str,
    message: &Value,
    id: impl Fn(&Value, usize) -> String,
) -> Result<Vec<ToolCall>, ModelError> {
    let Some(Value::Array(calls)) = message.get("tool_calls") else {
        return Ok(Vec::new());
    };
    calls
        .iter()
        .enumerate()
        .map(|(i, call)| {
            let function = call.get("function").unwrap_or(&Value::Null);
            let name = function
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    ModelError::decode(url, format!("tool_calls[{i}] has no function.name"))
                })?;
            let arguments = decode_arguments(function.get("arguments").unwrap_or(&Value::Null));
            Ok(ToolCall::new(id(call, i), name, arguments))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_str(value).expect("valid header"),
        );
        h
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(
            parse_retry_after(&headers("7"), SystemTime::now()),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after(&headers("1.5"), SystemTime::now()),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_retry_after(&headers("soon"), SystemTime::now()), None);
        assert_eq!(
            parse_retry_after(&HeaderMap::new(), SystemTime::now()),
            None
        );
    }

    #[test]
    fn retry_after_http_date() {
        // 1994-11-06 08:49:37 UTC is 784111777 s after the epoch.
        let date = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").expect("valid date");
        assert_eq!(date, UNIX_EPOCH + Duration::from_secs(784_111_777));
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770);
        assert_eq!(
            parse_retry_after(&headers("Sun, 06 Nov 1994 08:49:37 GMT"), now),
            Some(Duration::from_secs(7))
        );
        // A date in the past means "now".
        let later = UNIX_EPOCH + Duration::from_secs(784_111_800);
        assert_eq!(
            parse_retry_after(&headers("Sun, 06 Nov 1994 08:49:37 GMT"), later),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 CET"), None);
    }

    #[test]
    fn leap_day_dates_parse() {
        let date = parse_http_date("Thu, 29 Feb 2024 00:00:00 GMT").expect("valid date");
        assert_eq!(date, UNIX_EPOCH + Duration::from_secs(1_709_164_800));
    }

    #[test]
    fn string_arguments_are_decoded_and_invalid_ones_wrapped() {
        assert_eq!(
            decode_arguments(&Value::from(r#"{"a": 1}"#)),
            serde_json::json!({"a": 1})
        );
        assert_eq!(
            decode_arguments(&Value::from("{not json")),
            serde_json::json!({"_raw": "{not json"})
        );
        assert_eq!(
            decode_arguments(&serde_json::json!({"b": 2})),
            serde_json::json!({"b": 2})
        );
    }

    #[test]
    fn function_calls_need_a_name_and_take_ids_from_the_backend() {
        let message = serde_json::json!({"tool_calls": [
            {"id": "a", "function": {"name": "f", "arguments": "{\"q\": 1}"}},
            {"function": {"name": "g"}},
        ]});
        let id = |call: &Value, i: usize| {
            call.get("id")
                .and_then(Value::as_str)
                .map_or_else(|| format!("call_{i}"), str::to_owned)
        };
        assert_eq!(
            function_calls("http://h", &message, id).expect("decodes"),
            vec![
                ToolCall::new("a", "f", serde_json::json!({"q": 1})),
                ToolCall::new("call_1", "g", serde_json::json!({})),
            ]
        );
        assert_eq!(
            function_calls("http://h", &serde_json::json!({"content": "x"}), id).expect("none"),
            Vec::new()
        );
        let nameless =
            serde_json::json!({"tool_calls": [{"function": {"name": "f"}}, {"id": "b"}]});
        let error = function_calls("http://h", &nameless, id).expect_err("no name");
        assert!(
            error
                .to_string()
                .contains("tool_calls[1] has no function.name"),
            "{error}"
        );
    }

    #[test]
    fn preview_cuts_on_characters() {
        assert_eq!(preview("héllo", 2), "hé…");
        assert_eq!(preview("hi", 2), "hi");
    }
}
