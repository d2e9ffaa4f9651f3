//! Sampling (issue 6): server-everything's `trigger-sampling-request` sends
//! `sampling/createMessage` to the client, which a spec's `SamplingHandler` answers.
//! Without a handler the client does not advertise sampling, so server-everything does not
//! offer the tool at all.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use loom_mcp::client::SAMPLING_MODEL;
use loom_mcp::{Registry, SamplingHandler};
use serde_json::{Map, Value, json};

use crate::common::*;

const TOOL: &str = "trigger-sampling-request";
const ANSWER: &str = "a fixed answer from loom's sampling handler";

/// Records every request and answers [`ANSWER`], or fails with `fail` when set.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<(Vec<Value>, Option<Value>)>>,
    fail: Option<&'static str>,
}

#[async_trait]
impl SamplingHandler for Recorder {
    async fn sample(
        &self,
        messages: Vec<Value>,
        model_preferences: Option<Value>,
    ) -> Result<String, String> {
        self.seen
            .lock()
            .expect("lock")
            .push((messages, model_preferences));
        match self.fail {
            Some(reason) => Err(reason.to_owned()),
            None => Ok(ANSWER.to_owned()),
        }
    }
}

fn prompt_args(prompt: &str) -> Map<String, Value> {
    json!({"prompt": prompt, "maxTokens": 50})
        .as_object()
        .cloned()
        .expect("object")
}

/// The handler gets the server's prompt and the tool result carries the handler's answer.
#[tokio::test]
async fn a_sampling_handler_answers_server_everythings_sampling_request() {
    let recorder = Arc::new(Recorder::default());
    let spec = everything_spec("everything").with_sampling_handler(recorder.clone());
    let registry = Registry::with_options([spec], quick_options()).expect("registry");
    let tools = within("tools", registry.tools()).await;
    assert!(
        tools.iter().any(|t| t.tool == TOOL),
        "advertising sampling makes server-everything offer {TOOL}: {:?} {:?}",
        tools.iter().map(|t| &t.name).collect::<Vec<_>>(),
        registry.unavailable()
    );
    let out = within(
        TOOL,
        registry.call(TOOL, prompt_args("what is the colour of loom?")),
    )
    .await
    .expect("call");
    assert!(!out.is_error, "{}", out.text);
    assert!(out.text.contains(ANSWER), "{}", out.text);
    assert!(out.text.contains(SAMPLING_MODEL), "{}", out.text);

    let seen = recorder.seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let (messages, _) = &seen[0];
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["role"], "user", "{messages:?}");
    let text = messages[0]["content"]["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("what is the colour of loom?"),
        "the server's prompt reaches the handler: {messages:?}"
    );
    within("close", registry.close()).await;
}

/// A handler's failure goes back to the server as a JSON-RPC error, which the tool
/// reports as its result (an error result, promptly, with the handler's reason).
#[tokio::test]
async fn a_failing_sampling_handler_is_reported_by_the_tool() {
    let recorder = Arc::new(Recorder {
        fail: Some("no model configured"),
        ..Recorder::default()
    });
    let spec = everything_spec("everything").with_sampling_handler(recorder.clone());
    let registry = Registry::with_options([spec], quick_options()).expect("registry");
    within("tools", registry.tools()).await;
    let result = within(TOOL, registry.call(TOOL, prompt_args("fail please"))).await;
    let text = match result {
        Ok(out) => {
            assert!(out.is_error, "{}", out.text);
            out.text
        }
        Err(e) => e.to_string(),
    };
    assert!(
        text.contains("sampling handler failed: no model configured"),
        "{text}"
    );
    assert_eq!(recorder.seen.lock().expect("lock").len(), 1);
    within("close", registry.close()).await;
}

/// Without a handler the client does not advertise sampling: server-everything does not
/// offer the tool, and calling it anyway is a prompt, clear error.
#[tokio::test]
async fn without_a_handler_sampling_is_not_advertised_and_the_tool_is_absent() {
    let registry =
        Registry::with_options([everything_spec("everything")], quick_options()).expect("registry");
    let tools = within("tools", registry.tools()).await;
    assert!(
        tools.iter().any(|t| t.tool == "echo"),
        "{:?}",
        registry.unavailable()
    );
    assert!(!tools.iter().any(|t| t.tool == TOOL));
    let err = within(TOOL, registry.call(TOOL, prompt_args("x")))
        .await
        .expect_err("no such tool");
    assert!(err.to_string().contains(TOOL), "{err}");
    within("close", registry.close()).await;
}

/// A server that sends `sampling/createMessage` anyway (the fixture's `sample` tool, which
/// ignores the client's capabilities) gets a JSON-RPC "method not found" error naming
/// sampling when the spec has no handler, and the call reports it rather than hanging;
/// with a handler the same server gets the handler's answer.
#[tokio::test]
async fn a_sampling_request_to_a_client_without_a_handler_is_refused_clearly() {
    let registry =
        Registry::with_options([fixture_spec("plain", &["--sampling"])], quick_options())
            .expect("registry");
    let out = within(
        "sample",
        registry.call(
            "sample",
            json!({"prompt": "hello?"})
                .as_object()
                .cloned()
                .expect("object"),
        ),
    )
    .await
    .expect("the tool answers");
    assert!(out.is_error, "{}", out.text);
    let error: Value = serde_json::from_str(&out.text).expect("the client's error as JSON");
    assert_eq!(error["code"], -32601, "{error}");
    assert_eq!(
        error["message"], "sampling is not supported by this client",
        "{error}"
    );
    within("close", registry.close()).await;

    let recorder = Arc::new(Recorder::default());
    let spec = fixture_spec("sampled", &["--sampling"]).with_sampling_handler(recorder.clone());
    let registry = Registry::with_options([spec], quick_options()).expect("registry");
    let out = within(
        "sample",
        registry.call(
            "sample",
            json!({"prompt": "hello?"})
                .as_object()
                .cloned()
                .expect("object"),
        ),
    )
    .await
    .expect("the tool answers");
    assert!(!out.is_error, "{}", out.text);
    let reply: Value = serde_json::from_str(&out.text).expect("the client's result as JSON");
    assert_eq!(reply["content"]["text"], ANSWER, "{reply}");
    assert_eq!(reply["model"], SAMPLING_MODEL, "{reply}");
    assert_eq!(reply["role"], "assistant", "{reply}");
    let seen = recorder.seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0[0]["content"]["text"], "hello?");
    within("close", registry.close()).await;
}
