//! Each HTTP backend against `loom_testkit::LlmStandIn`: request shapes, response mapping,
//! retries and the tool loop over real HTTP.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use loom_core::message::ModelTier;
use loom_llm::backends::{AnthropicSettings, OllamaSettings, OpenAiSettings};
use loom_llm::{
    ChatMessage, CompletionRequest, MAX_TOOL_ROUNDS, Model, ModelError, RetryPolicy, StopReason,
    TierBackends, ToolError, ToolHost, ToolSpec, Usage, run_tool_loop,
};
use loom_testkit::{LlmStandIn, Reply};
use secrecy::SecretString;
use serde_json::{Value, json};

/// Upper bound for any single await in these tests.
const WAIT: Duration = Duration::from_secs(30);

async fn within<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {WAIT:?}"))
}

async fn stand_in() -> LlmStandIn {
    within("starting the stand-in", LlmStandIn::start())
        .await
        .expect("the stand-in starts on a free port")
}

/// Retries quickly so tests do not wait on back-off (a Retry-After still sets a floor).
fn fast_retry() -> RetryPolicy {
    RetryPolicy::default()
        .with_base_delay(Duration::from_millis(10))
        .with_max_delay(Duration::from_millis(20))
}

fn openai(llm: &LlmStandIn) -> loom_llm::backends::OpenAiBackend {
    OpenAiSettings::new(llm.base_url(), "gpt-test")
        .with_timeout(Duration::from_secs(10))
        .with_retry(fast_retry())
        .build()
        .expect("openai backend builds")
}

fn anthropic(llm: &LlmStandIn) -> loom_llm::backends::AnthropicBackend {
    AnthropicSettings::new(SecretString::from("sk-ant-test"), "claude-test")
        .with_base_url(llm.base_url())
        .with_timeout(Duration::from_secs(10))
        .with_retry(fast_retry())
        .build()
        .expect("anthropic backend builds")
}

fn ollama(llm: &LlmStandIn) -> loom_llm::backends::OllamaBackend {
    OllamaSettings::new(llm.base_url(), "llama-test")
        .with_timeout(Duration::from_secs(10))
        .with_retry(fast_retry())
        .build()
        .expect("ollama backend builds")
}

fn lookup_tool() -> ToolSpec {
    ToolSpec::new(
        "lookup",
        "Looks a word up.",
        json!({"type": "object", "properties": {"word": {"type": "string"}}}),
    )
}

fn request_with_tools() -> CompletionRequest {
    CompletionRequest::new("You are terse.", "Define loom.")
        .with_max_tokens(256)
        .with_tools(vec![lookup_tool()])
}

/// A host with one tool, `lookup`, that records its calls.
#[derive(Default)]
struct Dictionary {
    calls: Mutex<Vec<Value>>,
}

#[async_trait]
impl ToolHost for Dictionary {
    async fn list_tools(&self) -> Result<Vec<ToolSpec>, ToolError> {
        Ok(vec![lookup_tool()])
    }

    async fn call_tool(&self, name: &str, arguments: Value) -> Result<String, ToolError> {
        if name != "lookup" {
            return Err(ToolError::NotFound { name: name.into() });
        }
        self.calls
            .lock()
            .expect("lock not poisoned")
            .push(arguments.clone());
        Ok(json!({"definition": "a machine for weaving"}).to_string())
    }
}

// ---------------------------------------------------------------------------------------
// OpenAI-compatible
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn openai_request_shape_and_response_mapping() {
    let llm = stand_in().await;
    llm.push(Reply::text("A loom weaves.").usage(7, 3));
    // A trailing /v1 (as LM Studio's default base has) is stripped.
    let model = OpenAiSettings::new(format!("{}/v1", llm.base_url()), "gpt-test")
        .with_retry(fast_retry())
        .build()
        .expect("builds");

    let completion = within("openai call", model.complete(&request_with_tools()))
        .await
        .expect("call succeeds");

    assert_eq!(completion.content.as_deref(), Some("A loom weaves."));
    assert_eq!(completion.model, "gpt-test");
    assert_eq!(completion.stop_reason, StopReason::EndTurn);
    assert_eq!(
        completion.usage,
        Usage {
            prompt_tokens: 7,
            completion_tokens: 3
        }
    );

    let requests = llm.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(
        sent.header("authorization"),
        None,
        "no key, no Authorization header"
    );
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(
        sent.body,
        json!({
            "model": "gpt-test",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Define loom."},
            ],
            "max_tokens": 256,
            "temperature": 0.0,
            "tools": [{"type": "function", "function": {
                "name": "lookup",
                "description": "Looks a word up.",
                "parameters": {"type": "object", "properties": {"word": {"type": "string"}}},
            }}],
        })
    );
}

#[tokio::test]
async fn openai_sends_bearer_key_when_set() {
    let llm = stand_in().await;
    let model = OpenAiSettings::new(llm.base_url(), "gpt-test")
        .with_api_key(SecretString::from("sk-live-123"))
        .build()
        .expect("builds");
    within(
        "openai call",
        model.complete(&CompletionRequest::new("", "hi")),
    )
    .await
    .expect("call succeeds");
    let sent = &llm.requests()[0];
    assert_eq!(sent.header("authorization"), Some("Bearer sk-live-123"));
    assert_eq!(
        sent.body["messages"],
        json!([{"role": "user", "content": "hi"}]),
        "an empty system prompt is not sent"
    );
}

#[tokio::test]
async fn openai_tool_loop_over_http_carries_history() {
    let llm = stand_in().await;
    llm.push(Reply::tool_call("lookup", json!({"word": "loom"})).usage(20, 4));
    llm.push(Reply::text("{\"answer\": \"a machine for weaving\"}").usage(30, 6));
    let model = openai(&llm);
    let host = Dictionary::default();

    let outcome = within(
        "tool loop",
        run_tool_loop(
            &model,
            Some(&host),
            CompletionRequest::new("sys", "Define loom."),
            MAX_TOOL_ROUNDS,
        ),
    )
    .await
    .expect("loop succeeds");

    assert_eq!(outcome.rounds, 1);
    assert_eq!(
        outcome.usage,
        Usage {
            prompt_tokens: 50,
            completion_tokens: 10
        }
    );
    assert_eq!(
        outcome.completion.content.as_deref(),
        Some("{\"answer\": \"a machine for weaving\"}")
    );
    assert_eq!(
        *host.calls.lock().expect("lock"),
        vec![json!({"word": "loom"})]
    );
    assert_eq!(outcome.calls.len(), 1);
    assert!(!outcome.calls[0].is_error);

    let requests = llm.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].body["tools"][0]["function"]["name"], "lookup");
    let history = &requests[1].body["messages"];
    assert_eq!(
        history[2],
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_0_0", "type": "function", "function": {"name": "lookup", "arguments": "{\"word\":\"loom\"}"}}
        ]}),
        "arguments go back as a JSON string"
    );
    assert_eq!(
        history[3],
        json!({"role": "tool", "tool_call_id": "call_0_0", "content": "{\"definition\":\"a machine for weaving\"}"})
    );
}

// ---------------------------------------------------------------------------------------
// Anthropic
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn anthropic_headers_and_request_shape() {
    let llm = stand_in().await;
    llm.push(
        Reply::tool_call("lookup", json!({"word": "weft"}))
            .with_text("Checking.")
            .usage(11, 9),
    );
    let model = anthropic(&llm);

    let completion = within("anthropic call", model.complete(&request_with_tools()))
        .await
        .expect("call succeeds");

    assert_eq!(completion.content.as_deref(), Some("Checking."));
    assert_eq!(completion.model, "claude-test");
    assert_eq!(completion.stop_reason, StopReason::ToolUse);
    assert_eq!(completion.tool_calls.len(), 1);
    assert_eq!(completion.tool_calls[0].id, "toolu_0_0");
    assert_eq!(completion.tool_calls[0].name, "lookup");
    assert_eq!(completion.tool_calls[0].arguments, json!({"word": "weft"}));
    assert_eq!(
        completion.usage,
        Usage {
            prompt_tokens: 11,
            completion_tokens: 9
        }
    );

    let sent = &llm.requests()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(sent.header("content-type"), Some("application/json"));
    assert_eq!(sent.header("authorization"), None);
    assert_eq!(
        sent.body,
        json!({
            "model": "claude-test",
            "max_tokens": 256,
            "temperature": 0.0,
            "system": "You are terse.",
            "messages": [{"role": "user", "content": "Define loom."}],
            "tools": [{
                "name": "lookup",
                "description": "Looks a word up.",
                "input_schema": {"type": "object", "properties": {"word": {"type": "string"}}},
            }],
        })
    );
}

#[tokio::test]
async fn anthropic_tool_loop_sends_results_as_one_user_message() {
    let llm = stand_in().await;
    llm.push(
        Reply::tool_call("lookup", json!({"word": "warp"}))
            .and_tool_call("lookup", json!({"word": "weft"})),
    );
    llm.push(Reply::text("{\"done\": true}"));
    let model = anthropic(&llm);
    let host = Dictionary::default();

    let outcome = within(
        "tool loop",
        run_tool_loop(
            &model,
            Some(&host),
            CompletionRequest::new("sys", "Define both."),
            MAX_TOOL_ROUNDS,
        ),
    )
    .await
    .expect("loop succeeds");

    assert_eq!(outcome.rounds, 1);
    assert_eq!(outcome.calls.len(), 2);
    assert_eq!(
        outcome.usage.prompt_tokens, 20,
        "default stand-in usage summed over two calls"
    );
    let history = &llm.requests()[1].body["messages"];
    assert_eq!(
        history,
        &json!([
            {"role": "user", "content": "Define both."},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_0_0", "name": "lookup", "input": {"word": "warp"}},
                {"type": "tool_use", "id": "toolu_0_1", "name": "lookup", "input": {"word": "weft"}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_0_0", "content": "{\"definition\":\"a machine for weaving\"}"},
                {"type": "tool_result", "tool_use_id": "toolu_0_1", "content": "{\"definition\":\"a machine for weaving\"}"},
            ]},
        ])
    );
}

#[tokio::test]
async fn anthropic_version_is_configurable() {
    let llm = stand_in().await;
    let model = AnthropicSettings::new(SecretString::from("k"), "claude-test")
        .with_base_url(llm.base_url())
        .with_version("2099-12-31")
        .build()
        .expect("builds");
    within(
        "anthropic call",
        model.complete(&CompletionRequest::new("", "hi")),
    )
    .await
    .expect("call succeeds");
    let sent = &llm.requests()[0];
    assert_eq!(sent.header("anthropic-version"), Some("2099-12-31"));
    assert!(
        sent.body.get("system").is_none(),
        "an empty system prompt is not sent"
    );
}

// ---------------------------------------------------------------------------------------
// Ollama
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn ollama_request_shape_and_response_mapping() {
    let llm = stand_in().await;
    llm.push(Reply::text("woven").usage(12, 2));
    let model = ollama(&llm);

    let completion = within("ollama call", model.complete(&request_with_tools()))
        .await
        .expect("call succeeds");

    assert_eq!(completion.content.as_deref(), Some("woven"));
    assert_eq!(completion.model, "llama-test", "the configured model");
    assert_eq!(completion.stop_reason, StopReason::EndTurn);
    assert_eq!(
        completion.usage,
        Usage {
            prompt_tokens: 12,
            completion_tokens: 2
        }
    );
    let sent = &llm.requests()[0];
    assert_eq!(sent.path, "/api/chat");
    assert_eq!(
        sent.body,
        json!({
            "model": "llama-test",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Define loom."},
            ],
            "stream": false,
            "options": {"temperature": 0.0, "num_predict": 256},
            "tools": [{"type": "function", "function": {
                "name": "lookup",
                "description": "Looks a word up.",
                "parameters": {"type": "object", "properties": {"word": {"type": "string"}}},
            }}],
        })
    );
}

#[tokio::test]
async fn ollama_tool_loop_synthesises_ids_and_sends_object_arguments() {
    let llm = stand_in().await;
    llm.push(Reply::tool_call("lookup", json!({"word": "heddle"})));
    llm.push(Reply::text("{\"ok\": true}"));
    let model = ollama(&llm);
    let host = Dictionary::default();

    let outcome = within(
        "tool loop",
        run_tool_loop(
            &model,
            Some(&host),
            CompletionRequest::new("sys", "Define heddle."),
            MAX_TOOL_ROUNDS,
        ),
    )
    .await
    .expect("loop succeeds");

    assert_eq!(outcome.calls[0].id, "call_0");
    assert_eq!(
        outcome.completion.content.as_deref(),
        Some("{\"ok\": true}")
    );
    let history = &llm.requests()[1].body["messages"];
    assert_eq!(
        history[2],
        json!({"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "lookup", "arguments": {"word": "heddle"}}}]})
    );
    assert_eq!(history[3]["role"], "tool");
    assert_eq!(
        history[3]["content"],
        "{\"definition\":\"a machine for weaving\"}"
    );
}

// ---------------------------------------------------------------------------------------
// Retries and errors
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn rate_limit_with_retry_after_is_retried_after_the_floor() {
    let llm = stand_in().await;
    llm.push(Reply::status(429).retry_after(1));
    llm.push(Reply::text("finally"));
    let model = anthropic(&llm);

    let started = Instant::now();
    let completion = within(
        "retried call",
        model.complete(&CompletionRequest::new("", "hi")),
    )
    .await
    .expect("second attempt succeeds");
    let waited = started.elapsed();

    assert_eq!(completion.content.as_deref(), Some("finally"));
    assert_eq!(llm.requests().len(), 2);
    assert!(
        waited >= Duration::from_secs(1),
        "Retry-After: 1 is a floor, but the retry came after {waited:?}"
    );
}

#[tokio::test]
async fn server_errors_are_retried_up_to_max_attempts_then_fail() {
    let llm = stand_in().await;
    for _ in 0..3 {
        llm.push(Reply::status(500));
    }
    llm.push(Reply::text("never reached"));
    let model = openai(&llm);

    let err = within(
        "failing call",
        model.complete(&CompletionRequest::new("", "hi")),
    )
    .await
    .expect_err("three 500s exhaust the policy");

    match &err {
        ModelError::Http {
            status,
            body_preview,
            retry_after,
            ..
        } => {
            assert_eq!(*status, 500);
            assert!(
                body_preview.contains("stand-in scripted status 500"),
                "{body_preview}"
            );
            assert_eq!(*retry_after, None);
        }
        other => panic!("expected an Http error, got {other:?}"),
    }
    assert!(err.is_retryable());
    assert_eq!(llm.requests().len(), 3);
    assert_eq!(llm.remaining(), 1);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let llm = stand_in().await;
    llm.push(Reply::status(400));
    let model = ollama(&llm);
    let err = within(
        "failing call",
        model.complete(&CompletionRequest::new("", "hi")),
    )
    .await
    .expect_err("400 fails");
    assert!(matches!(err, ModelError::Http { status: 400, .. }));
    assert_eq!(llm.requests().len(), 1);
}

#[tokio::test]
async fn slow_server_is_a_transport_error() {
    let llm = stand_in().await;
    llm.push(Reply::text("late").delay(Duration::from_secs(3)));
    let model = OpenAiSettings::new(llm.base_url(), "gpt-test")
        .with_timeout(Duration::from_millis(200))
        .with_retry(RetryPolicy::none())
        .build()
        .expect("builds");
    let err = within(
        "timed-out call",
        model.complete(&CompletionRequest::new("", "hi")),
    )
    .await
    .expect_err("times out");
    assert!(matches!(err, ModelError::Transport { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert!(
        err.to_string()
            .starts_with("cannot reach http://127.0.0.1:"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------
// Tier table from the environment, end to end
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn tiers_from_env_reach_the_configured_backends() {
    let llm = stand_in().await;
    let env: HashMap<&str, String> = HashMap::from([
        ("OLLAMA_URL", llm.base_url()),
        ("ANTHROPIC_API_KEY", "sk-env".to_owned()),
        ("ANTHROPIC_BASE_URL", llm.base_url()),
        ("FRONTIER_MODEL", "claude-big".to_owned()),
    ]);
    let backends = TierBackends::from_env(|key| env.get(key).cloned()).expect("builds");

    for tier in ModelTier::ALL {
        let model = backends.get(tier).expect("every tier configured");
        within(
            "tier call",
            model.complete(&CompletionRequest::new("", format!("tier {tier}"))),
        )
        .await
        .expect("call succeeds");
    }
    let requests = llm.requests();
    let seen: Vec<(&str, &str)> = requests
        .iter()
        .map(|r| {
            (
                r.path.as_str(),
                r.body["model"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("/api/chat", "llama3.2:3b"),
            ("/v1/messages", "claude-sonnet-4-20250514"),
            ("/v1/messages", "claude-big"),
        ]
    );
    assert_eq!(requests[1].header("x-api-key"), Some("sk-env"));
}

#[tokio::test]
async fn empty_script_echoes_the_last_user_message() {
    let llm = stand_in().await;
    let model = anthropic(&llm);
    let request = CompletionRequest {
        messages: vec![
            ChatMessage::user("first"),
            ChatMessage::assistant("ok"),
            ChatMessage::user("ping"),
        ],
        ..CompletionRequest::new("", "")
    };
    let completion = within("echo call", model.complete(&request))
        .await
        .expect("call succeeds");
    assert_eq!(completion.content.as_deref(), Some("{\"echo\":\"ping\"}"));
}

#[tokio::test]
async fn stand_in_serves_deterministic_embeddings() {
    let llm = stand_in().await;
    let client = reqwest::Client::new();
    let ollama: Value = within("ollama embed", async {
        client
            .post(format!("{}/api/embed", llm.base_url()))
            .json(&json!({"model": "nomic-embed-text", "input": ["a", "b"]}))
            .send()
            .await?
            .json()
            .await
    })
    .await
    .expect("embed succeeds");
    let openai: Value = within("openai embeddings", async {
        client
            .post(format!("{}/v1/embeddings", llm.base_url()))
            .json(&json!({"model": "text-embedding-3-small", "input": "a"}))
            .send()
            .await?
            .json()
            .await
    })
    .await
    .expect("embeddings succeed");

    let first = &ollama["embeddings"][0];
    assert_eq!(ollama["embeddings"].as_array().map(Vec::len), Some(2));
    assert_ne!(ollama["embeddings"][0], ollama["embeddings"][1]);
    assert_eq!(
        &openai["data"][0]["embedding"], first,
        "same text, same vector"
    );
    assert_eq!(
        first.as_array().map(Vec::len),
        Some(loom_testkit::llm::EMBEDDING_DIMENSIONS)
    );
    assert_eq!(llm.requests().len(), 2);
}
