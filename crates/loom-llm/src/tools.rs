//! The `ToolHost` trait and the tool-use loop that lets a model call tools between turns.

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::model::{
    ChatMessage, Completion, CompletionRequest, Model, ModelError, ToolCall, ToolSpec, Usage,
};

/// The most continuation calls [`run_tool_loop`] makes after the first (loom-ai's `MAX_TOOL_ROUNDS`).
pub const MAX_TOOL_ROUNDS: usize = 10;

/// Something that offers tools to a model and runs them: in-process providers today,
/// MCP servers later.
#[async_trait]
pub trait ToolHost: Send + Sync {
    /// The tools on offer.
    async fn list_tools(&self) -> Result<Vec<ToolSpec>, ToolError>;

    /// Runs tool `name` with `arguments` and returns its result text (typically JSON).
    async fn call_tool(&self, name: &str, arguments: Value) -> Result<String, ToolError>;

    /// The servers behind this host that could not be reached at their last try, in the
    /// host's order (an MCP registry's unavailable servers). Hosts without servers keep
    /// the default: none.
    fn unavailable_servers(&self) -> Vec<String> {
        Vec::new()
    }
}

/// Why a tool could not be listed or run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// No tool has this name.
    #[error("unknown tool '{name}'")]
    NotFound {
        /// The name asked for.
        name: String,
    },
    /// The tool ran and failed; the message goes back to the model.
    #[error("{message}")]
    Failed {
        /// What went wrong, for the model.
        message: String,
    },
    /// The server hosting the tool cannot be reached.
    #[error("tool server '{server}' is unavailable: {message}")]
    Unavailable {
        /// The server's name.
        server: String,
        /// Why.
        message: String,
    },
}

/// One tool call made during [`run_tool_loop`].
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutedCall {
    /// The call id from the model.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments the model passed.
    pub arguments: Value,
    /// The text sent back to the model (an `{"error": …}` object when `is_error`).
    pub result: String,
    /// Whether the call failed (unknown tool or tool error).
    pub is_error: bool,
}

/// What [`run_tool_loop`] ended with.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolLoopOutcome {
    /// The last reply. After `max_rounds` it may still carry tool calls and no content.
    pub completion: Completion,
    /// Tokens summed over every call of the loop.
    pub usage: Usage,
    /// How many continuation calls were made (0 when the first reply called no tool).
    pub rounds: usize,
    /// Every tool call executed, in order.
    pub calls: Vec<ExecutedCall>,
}

/// Calls `model` and, while it asks for tools, runs them on `host` and calls it again
/// with the full history, at most `max_rounds` more times (normally [`MAX_TOOL_ROUNDS`]).
///
/// Tools are offered only when `host` lists some (they are added to `request.tools`).
/// An unknown tool answers the model `{"error":"Unknown tool: X"}`, a failing tool
/// `{"error":"<message>"}`; neither stops the loop. If listing the tools fails, the
/// loop runs without them and logs a warning. Model errors end the loop.
pub async fn run_tool_loop(
    model: &dyn Model,
    host: Option<&dyn ToolHost>,
    mut request: CompletionRequest,
    max_rounds: usize,
) -> Result<ToolLoopOutcome, ModelError> {
    if let Some(host) = host {
        match host.list_tools().await {
            Ok(tools) => {
                for tool in tools {
                    if !request.tools.iter().any(|t| t.name == tool.name) {
                        request.tools.push(tool);
                    }
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, "Cannot list tools; calling the model without them.");
            }
        }
    }

    let mut completion = model.complete(&request).await?;
    let mut usage = completion.usage;
    let mut rounds = 0;
    let mut calls = Vec::new();

    while !completion.tool_calls.is_empty() && rounds < max_rounds {
        let tool_calls = std::mem::take(&mut completion.tool_calls);
        request.messages.push(ChatMessage::Assistant {
            content: completion.content.take(),
            tool_calls: tool_calls.clone(),
        });
        for call in tool_calls {
            let executed = execute(host, &request.tools, call).await;
            request.messages.push(ChatMessage::Tool {
                tool_call_id: executed.id.clone(),
                name: executed.name.clone(),
                content: executed.result.clone(),
            });
            calls.push(executed);
        }
        completion = model.complete(&request).await?;
        usage += completion.usage;
        rounds += 1;
    }
    if !completion.tool_calls.is_empty() {
        tracing::warn!(
            model = model.name(),
            max_rounds,
            "Tool loop stopped after the maximum number of rounds; using the last reply."
        );
    }

    Ok(ToolLoopOutcome {
        completion,
        usage,
        rounds,
        calls,
    })
}

async fn execute(
    host: Option<&dyn ToolHost>,
    offered: &[ToolSpec],
    call: ToolCall,
) -> ExecutedCall {
    let known = offered.iter().any(|t| t.name == call.name);
    let result = match host {
        Some(host) if known => host.call_tool(&call.name, call.arguments.clone()).await,
        _ => Err(ToolError::NotFound {
            name: call.name.clone(),
        }),
    };
    let (result, is_error) = match result {
        Ok(text) => (text, false),
        // The wire text loom-ai sent, which prompts and tests rely on.
        Err(ToolError::NotFound { name }) => (
            json!({"error": format!("Unknown tool: {name}")}).to_string(),
            true,
        ),
        Err(error) => {
            tracing::debug!(tool = %call.name, error = %error, "Tool call failed; returning the error to the model.");
            (json!({"error": error.to_string()}).to_string(), true)
        }
    };
    ExecutedCall {
        id: call.id,
        name: call.name,
        arguments: call.arguments,
        result,
        is_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ScriptedModel;

    /// Every await in these tests is bounded.
    async fn within<F: std::future::Future>(future: F) -> F::Output {
        tokio::time::timeout(std::time::Duration::from_secs(10), future)
            .await
            .expect("test future timed out")
    }

    /// Tools `echo` (returns its arguments) and `fail` (always fails).
    struct TestHost;

    #[async_trait]
    impl ToolHost for TestHost {
        async fn list_tools(&self) -> Result<Vec<ToolSpec>, ToolError> {
            Ok(vec![
                ToolSpec::new("echo", "Echoes", json!({"type": "object"})),
                ToolSpec::new("fail", "Fails", json!({"type": "object"})),
            ])
        }

        async fn call_tool(&self, name: &str, arguments: Value) -> Result<String, ToolError> {
            match name {
                "echo" => Ok(arguments.to_string()),
                "fail" => Err(ToolError::Failed {
                    message: "disk on fire".into(),
                }),
                other => Err(ToolError::NotFound { name: other.into() }),
            }
        }
    }

    fn request() -> CompletionRequest {
        CompletionRequest::new("sys", "go")
    }

    // §18 item 55.
    #[tokio::test]
    async fn tool_calls_trigger_execution_and_a_continuation_with_history() {
        let model = ScriptedModel::new("m")
            .then(
                Completion::tool_calls("m", vec![ToolCall::new("c1", "echo", json!({"x": 1}))])
                    .with_usage(10, 2),
            )
            .then(Completion::text("m", "{\"done\": true}").with_usage(20, 3));
        let out = within(run_tool_loop(
            &model,
            Some(&TestHost),
            request(),
            MAX_TOOL_ROUNDS,
        ))
        .await
        .expect("loop succeeds");
        assert_eq!(out.rounds, 1);
        assert_eq!(out.completion.content.as_deref(), Some("{\"done\": true}"));
        assert_eq!(
            out.usage,
            Usage {
                prompt_tokens: 30,
                completion_tokens: 5
            }
        );
        assert_eq!(out.calls.len(), 1);
        assert_eq!(out.calls[0].result, "{\"x\":1}");
        assert!(!out.calls[0].is_error);

        let sent = model.requests();
        assert_eq!(sent.len(), 2);
        let names: Vec<_> = sent[0].tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            ["echo", "fail"],
            "tools offered because the host lists some"
        );
        assert_eq!(
            sent[1].messages,
            vec![
                ChatMessage::user("go"),
                ChatMessage::Assistant {
                    content: None,
                    tool_calls: vec![ToolCall::new("c1", "echo", json!({"x": 1}))]
                },
                ChatMessage::Tool {
                    tool_call_id: "c1".into(),
                    name: "echo".into(),
                    content: "{\"x\":1}".into()
                },
            ]
        );
    }

    // §18 item 56.
    #[tokio::test]
    async fn unknown_tool_and_tool_error_are_returned_to_the_model() {
        let model = ScriptedModel::new("m")
            .then(Completion::tool_calls(
                "m",
                vec![
                    ToolCall::new("c1", "nope", json!({})),
                    ToolCall::new("c2", "fail", json!({})),
                ],
            ))
            .then(Completion::text("m", "ok"));
        let out = within(run_tool_loop(
            &model,
            Some(&TestHost),
            request(),
            MAX_TOOL_ROUNDS,
        ))
        .await
        .expect("loop succeeds");
        let results: Vec<_> = out
            .calls
            .iter()
            .map(|c| (c.result.as_str(), c.is_error))
            .collect();
        assert_eq!(
            results,
            [
                ("{\"error\":\"Unknown tool: nope\"}", true),
                ("{\"error\":\"disk on fire\"}", true)
            ]
        );
        let history = &model.requests()[1].messages;
        assert!(
            matches!(&history[2], ChatMessage::Tool { content, .. } if content == "{\"error\":\"Unknown tool: nope\"}")
        );
        assert!(
            matches!(&history[3], ChatMessage::Tool { content, .. } if content == "{\"error\":\"disk on fire\"}")
        );
    }

    // §18 item 57.
    #[tokio::test]
    async fn at_most_max_rounds_continuation_calls() {
        let mut model = ScriptedModel::new("m");
        for i in 0..20 {
            model = model.then(
                Completion::tool_calls(
                    "m",
                    vec![ToolCall::new(format!("c{i}"), "echo", json!({}))],
                )
                .with_usage(1, 1),
            );
        }
        let out = within(run_tool_loop(
            &model,
            Some(&TestHost),
            request(),
            MAX_TOOL_ROUNDS,
        ))
        .await
        .expect("loop ends");
        assert_eq!(MAX_TOOL_ROUNDS, 10);
        assert_eq!(out.rounds, 10);
        assert_eq!(
            model.requests().len(),
            11,
            "one first call plus 10 continuations"
        );
        assert_eq!(out.calls.len(), 10);
        assert!(out.completion.content.is_none());
        assert_eq!(out.completion.tool_calls.len(), 1, "last reply used as-is");
        assert_eq!(out.usage.prompt_tokens, 11);
    }

    #[tokio::test]
    async fn no_host_sends_no_tools_and_reports_unknown_tools() {
        let model = ScriptedModel::new("m")
            .then(Completion::tool_calls(
                "m",
                vec![ToolCall::new("c1", "echo", json!({}))],
            ))
            .then(Completion::text("m", "fine"));
        let out = within(run_tool_loop(&model, None, request(), MAX_TOOL_ROUNDS))
            .await
            .expect("loop succeeds");
        assert!(model.requests()[0].tools.is_empty());
        assert_eq!(out.calls[0].result, "{\"error\":\"Unknown tool: echo\"}");
    }

    #[tokio::test]
    async fn host_without_tools_sends_no_tools() {
        struct Empty;
        #[async_trait]
        impl ToolHost for Empty {
            async fn list_tools(&self) -> Result<Vec<ToolSpec>, ToolError> {
                Ok(Vec::new())
            }
            async fn call_tool(&self, name: &str, _: Value) -> Result<String, ToolError> {
                Err(ToolError::NotFound { name: name.into() })
            }
        }
        let model = ScriptedModel::new("m").then(Completion::text("m", "plain"));
        let out = within(run_tool_loop(
            &model,
            Some(&Empty),
            request(),
            MAX_TOOL_ROUNDS,
        ))
        .await
        .expect("loop succeeds");
        assert_eq!(out.rounds, 0);
        assert!(out.calls.is_empty());
        assert!(model.requests()[0].tools.is_empty());
    }

    #[tokio::test]
    async fn model_error_ends_the_loop() {
        let model = ScriptedModel::new("m")
            .then(Completion::tool_calls(
                "m",
                vec![ToolCall::new("c1", "echo", json!({}))],
            ))
            .then_error(ModelError::Http {
                url: "http://x".into(),
                status: 400,
                body_preview: "bad".into(),
                retry_after: None,
            });
        let err = within(run_tool_loop(
            &model,
            Some(&TestHost),
            request(),
            MAX_TOOL_ROUNDS,
        ))
        .await
        .expect_err("second call fails");
        assert!(matches!(err, ModelError::Http { status: 400, .. }));
    }

    #[test]
    fn tool_error_messages_name_the_value() {
        assert_eq!(
            ToolError::NotFound { name: "x".into() }.to_string(),
            "unknown tool 'x'"
        );
        let unavailable = ToolError::Unavailable {
            server: "git".into(),
            message: "refused".into(),
        };
        assert_eq!(
            unavailable.to_string(),
            "tool server 'git' is unavailable: refused"
        );
    }
}
