//! `Agent`: instructions, a model and optional tools; `run` loops model → tools → model
//! until the model answers without calling a tool, and reports what happened.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use serde_json::json;

use crate::model::{ChatMessage, CompletionRequest, Model, ModelError, ToolCall, ToolSpec, Usage};
use crate::tools::{ExecutedCall, ToolError, ToolHost};

/// The default cap on model calls per run.
pub const DEFAULT_MAX_TURNS: usize = 50;
/// The default wall-clock limit of one tool call.
pub const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(120);
/// The longest tool name OpenAI accepts (Anthropic allows 128).
pub const MAX_PROVIDER_TOOL_NAME: usize = 64;

/// The reason a run that hit [`Agent::max_turns`] reports.
pub const MAX_TURNS_REASON: &str = "max_turns_exceeded";

/// A model with instructions and tools.
///
/// ```
/// use std::sync::Arc;
/// use loom_llm::agent::Agent;
/// use loom_llm::testing::ScriptedModel;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), loom_llm::ModelError> {
/// let model = Arc::new(ScriptedModel::new("m").then_text("Hello!"));
/// let result = Agent::new("Be brief.", model).run("Hi").await?;
/// assert_eq!(result.output, "Hello!");
/// assert_eq!(result.turns, 1);
/// assert!(!result.interrupted);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Agent {
    instructions: String,
    model: Arc<dyn Model>,
    tools: Option<Arc<dyn ToolHost>>,
    max_turns: usize,
    tool_timeout: Duration,
    max_tokens: u32,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("model", &self.model.name())
            .field("tools", &self.tools.is_some())
            .field("max_turns", &self.max_turns)
            .field("tool_timeout", &self.tool_timeout)
            .finish_non_exhaustive()
    }
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    /// The model's last text (empty if it ended without text).
    pub output: String,
    /// How many times the model was called.
    pub turns: usize,
    /// Every tool call, in order, under the host's tool names.
    pub tool_calls: Vec<ExecutedCall>,
    /// Tokens summed over the run.
    pub usage: Usage,
    /// Whether the run was cut short or missed a tool server (see `interruption_reason`).
    pub interrupted: bool,
    /// `max_turns_exceeded`, or `mcp:<server>` when a tool server was unreachable for
    /// the whole run (the first such server in the host's order; the output is kept).
    pub interruption_reason: Option<String>,
    /// Every tool server unreachable for the whole run, in the host's order.
    pub unreachable_servers: Vec<String>,
}

impl Agent {
    /// An agent with `instructions` (the system prompt) answering with `model`.
    pub fn new(instructions: impl Into<String>, model: Arc<dyn Model>) -> Self {
        Self {
            instructions: instructions.into(),
            model,
            tools: None,
            max_turns: DEFAULT_MAX_TURNS,
            tool_timeout: DEFAULT_TOOL_TIMEOUT,
            max_tokens: crate::model::DEFAULT_MAX_TOKENS,
        }
    }

    /// Offers the tools of `host` (e.g. an MCP registry) to the model.
    pub fn tools(mut self, host: impl ToolHost + 'static) -> Self {
        self.tools = Some(Arc::new(host));
        self
    }

    /// Offers the tools of a shared `host`.
    pub fn tools_shared(mut self, host: Arc<dyn ToolHost>) -> Self {
        self.tools = Some(host);
        self
    }

    /// Caps the model calls of a run (at least 1).
    pub fn max_turns(mut self, max_turns: usize) -> Self {
        self.max_turns = max_turns.max(1);
        self
    }

    /// Bounds each tool call; a call over it answers the model with an error.
    pub fn tool_timeout(mut self, timeout: Duration) -> Self {
        self.tool_timeout = timeout;
        self
    }

    /// Sets `max_tokens` of each model call.
    pub fn max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// Runs the agent on `input`.
    ///
    /// Each turn lists the host's tools (so tools that appear or vanish are seen), calls
    /// the model, and runs the tool calls it asks for in parallel. Tool names are sent to
    /// the model in a provider-safe form (`git.status` as `git__status`) and mapped back.
    /// A tool error, unknown tool or timeout goes back to the model as `{"error": …}`;
    /// the run goes on. Model errors end the run with the error.
    pub async fn run(&self, input: impl Into<String>) -> Result<RunResult, ModelError> {
        let mut request = CompletionRequest::new(self.instructions.clone(), input)
            .with_max_tokens(self.max_tokens);
        let mut usage = Usage::default();
        let mut tool_calls = Vec::new();
        let mut turns = 0;
        // Servers unreachable at every look during this run.
        let mut never_reached: Option<Vec<String>> = None;
        let mut output = String::new();
        let mut reason = None;
        loop {
            if turns == self.max_turns {
                reason = Some(MAX_TURNS_REASON.to_owned());
                break;
            }
            let names = self.offer_tools(&mut request, &mut never_reached).await;
            let mut completion = self.model.complete(&request).await?;
            turns += 1;
            usage += completion.usage;
            output = completion.content.clone().unwrap_or_default();
            if completion.tool_calls.is_empty() {
                break;
            }
            let calls = std::mem::take(&mut completion.tool_calls);
            request.messages.push(ChatMessage::Assistant {
                content: completion.content.take(),
                tool_calls: calls.clone(),
            });
            let executed = join_all(calls.into_iter().map(|call| self.execute(&names, call))).await;
            for (safe_name, call) in executed {
                request.messages.push(ChatMessage::Tool {
                    tool_call_id: call.id.clone(),
                    name: safe_name,
                    content: call.result.clone(),
                });
                tool_calls.push(call);
            }
        }
        let unreachable_servers = never_reached.unwrap_or_default();
        if reason.is_none()
            && let Some(first) = unreachable_servers.first()
        {
            reason = Some(format!("mcp:{first}"));
        }
        Ok(RunResult {
            output,
            turns,
            tool_calls,
            usage,
            interrupted: reason.is_some(),
            interruption_reason: reason,
            unreachable_servers,
        })
    }

    /// Lists the host's tools into `request` under provider-safe names, and narrows the
    /// servers not reached so far.
    async fn offer_tools(
        &self,
        request: &mut CompletionRequest,
        never_reached: &mut Option<Vec<String>>,
    ) -> ProviderNames {
        let Some(host) = &self.tools else {
            return ProviderNames::default();
        };
        let listed = match host.list_tools().await {
            Ok(tools) => tools,
            Err(error) => {
                tracing::warn!(error = %error, "Cannot list tools; calling the model without them.");
                Vec::new()
            }
        };
        let unavailable = host.unavailable_servers();
        *never_reached = Some(match never_reached.take() {
            None => unavailable,
            Some(before) => before
                .into_iter()
                .filter(|s| unavailable.contains(s))
                .collect(),
        });
        let names = ProviderNames::new(listed.iter().map(|t| t.name.as_str()));
        request.tools = listed
            .into_iter()
            .map(|t| ToolSpec {
                name: names.to_provider(&t.name).unwrap_or(&t.name).to_owned(),
                ..t
            })
            .collect();
        names
    }

    /// Runs one call; returns the name the model used and the call under the host's name.
    async fn execute(&self, names: &ProviderNames, call: ToolCall) -> (String, ExecutedCall) {
        let host_name = names.to_host(&call.name).map(str::to_owned);
        let result = match (&self.tools, &host_name) {
            (Some(host), Some(name)) => {
                match tokio::time::timeout(
                    self.tool_timeout,
                    host.call_tool(name, call.arguments.clone()),
                )
                .await
                {
                    Ok(result) => result,
                    Err(_) => Err(ToolError::Failed {
                        message: format!(
                            "tool timed out after {}s",
                            self.tool_timeout.as_secs_f64()
                        ),
                    }),
                }
            }
            _ => Err(ToolError::NotFound {
                name: call.name.clone(),
            }),
        };
        let (text, is_error) = match result {
            Ok(text) => (text, false),
            Err(ToolError::NotFound { name }) => (
                json!({"error": format!("Unknown tool: {name}")}).to_string(),
                true,
            ),
            Err(error) => (json!({"error": error.to_string()}).to_string(), true),
        };
        (
            call.name.clone(),
            ExecutedCall {
                id: call.id,
                name: host_name.unwrap_or(call.name),
                arguments: call.arguments,
                result: text,
                is_error,
            },
        )
    }
}

/// A one-to-one map between a host's tool names and names every provider accepts
/// (`^[A-Za-z0-9_-]{1,64}$`): `.` becomes `__`, other characters `_`; a name that is
/// still taken gets `_2`, `_3`… so two tools never share a provider name.
#[derive(Debug, Clone, Default)]
pub struct ProviderNames {
    to_provider: HashMap<String, String>,
    to_host: HashMap<String, String>,
}

impl ProviderNames {
    /// The map for `names` (in order; earlier names keep the plain form on a clash).
    pub fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let mut map = Self::default();
        let mut taken = BTreeSet::new();
        for name in names {
            if map.to_provider.contains_key(name) {
                continue;
            }
            let base = provider_safe(name);
            let mut candidate = base.clone();
            let mut n = 2;
            while taken.contains(&candidate) {
                let suffix = format!("_{n}");
                let keep = MAX_PROVIDER_TOOL_NAME.saturating_sub(suffix.len());
                candidate = format!("{}{suffix}", &base[..base.len().min(keep)]);
                n += 1;
            }
            taken.insert(candidate.clone());
            map.to_host.insert(candidate.clone(), name.to_owned());
            map.to_provider.insert(name.to_owned(), candidate);
        }
        map
    }

    /// The provider name of host tool `name`.
    pub fn to_provider(&self, name: &str) -> Option<&str> {
        self.to_provider.get(name).map(String::as_str)
    }

    /// The host name of provider tool `name`.
    pub fn to_host(&self, name: &str) -> Option<&str> {
        self.to_host.get(name).map(String::as_str)
    }
}

/// `name` with `.` as `__`, other characters outside `[A-Za-z0-9_-]` as `_`, cut to
/// [`MAX_PROVIDER_TOOL_NAME`] bytes; `_` if nothing is left.
fn provider_safe(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '.' => out.push_str("__"),
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' => out.push(c),
            _ => out.push('_'),
        }
    }
    out.truncate(MAX_PROVIDER_TOOL_NAME);
    if out.is_empty() {
        out.push('_');
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use serde_json::Value;

    use super::*;
    use crate::model::Completion;
    use crate::testing::ScriptedModel;

    async fn within<F: std::future::Future>(future: F) -> F::Output {
        tokio::time::timeout(Duration::from_secs(10), future)
            .await
            .expect("test future timed out")
    }

    /// Tools `git.status` (ok), `fs.read` (fails), `slow` (never answers); servers
    /// reported unavailable per `list_tools` call from `unavailable`.
    struct Host {
        unavailable: Mutex<Vec<Vec<String>>>,
        calls: Mutex<Vec<String>>,
    }

    impl Host {
        fn new(unavailable: &[&[&str]]) -> Self {
            Self {
                unavailable: Mutex::new(
                    unavailable
                        .iter()
                        .map(|l| l.iter().map(|s| s.to_string()).collect())
                        .collect(),
                ),
                calls: Mutex::new(Vec::new()),
            }
        }
    }

    #[async_trait]
    impl ToolHost for Host {
        async fn list_tools(&self) -> Result<Vec<ToolSpec>, ToolError> {
            Ok(["git.status", "fs.read", "slow"]
                .iter()
                .map(|n| ToolSpec::new(*n, "", json!({"type": "object"})))
                .collect())
        }

        async fn call_tool(&self, name: &str, arguments: Value) -> Result<String, ToolError> {
            self.calls.lock().expect("lock").push(name.to_owned());
            match name {
                "git.status" => Ok(format!("clean {arguments}")),
                "fs.read" => Err(ToolError::Unavailable {
                    server: "fs".into(),
                    message: "gone".into(),
                }),
                _ => std::future::pending().await,
            }
        }

        fn unavailable_servers(&self) -> Vec<String> {
            let mut lists = self.unavailable.lock().expect("lock");
            if lists.len() > 1 {
                lists.remove(0)
            } else {
                lists.first().cloned().unwrap_or_default()
            }
        }
    }

    fn call(id: &str, name: &str) -> ToolCall {
        ToolCall::new(id, name, json!({}))
    }

    #[tokio::test]
    async fn tools_are_offered_under_provider_safe_names_and_mapped_back() {
        let model = Arc::new(
            ScriptedModel::new("m")
                .then(Completion::tool_calls("m", vec![call("c1", "git__status")]).with_usage(3, 1))
                .then(Completion::text("m", "all clean").with_usage(5, 2)),
        );
        let host = Arc::new(Host::new(&[&[]]));
        let result = within(
            Agent::new("sys", model.clone())
                .tools_shared(host.clone())
                .run("status?"),
        )
        .await
        .expect("runs");
        assert_eq!(result.output, "all clean");
        assert_eq!(result.turns, 2);
        assert_eq!(
            result.usage,
            Usage {
                prompt_tokens: 8,
                completion_tokens: 3
            }
        );
        assert!(!result.interrupted && result.interruption_reason.is_none());
        assert_eq!(result.tool_calls.len(), 1);
        assert_eq!(result.tool_calls[0].name, "git.status");
        assert_eq!(result.tool_calls[0].result, "clean {}");
        assert_eq!(*host.calls.lock().expect("lock"), ["git.status"]);
        let offered: Vec<String> = model.requests()[0]
            .tools
            .iter()
            .map(|t| t.name.clone())
            .collect();
        assert_eq!(offered, ["git__status", "fs__read", "slow"]);
        assert!(matches!(
            &model.requests()[1].messages[2],
            ChatMessage::Tool { name, content, .. } if name == "git__status" && content == "clean {}"
        ));
    }

    #[tokio::test]
    async fn tool_errors_unknown_tools_and_timeouts_go_back_to_the_model() {
        let model = Arc::new(
            ScriptedModel::new("m")
                .then(Completion::tool_calls(
                    "m",
                    vec![
                        call("c1", "fs__read"),
                        call("c2", "nope"),
                        call("c3", "slow"),
                    ],
                ))
                .then(Completion::text("m", "sorry")),
        );
        let result = within(
            Agent::new("sys", model.clone())
                .tools(Host::new(&[&[]]))
                .tool_timeout(Duration::from_millis(50))
                .run("go"),
        )
        .await
        .expect("runs");
        let results: Vec<(&str, bool)> = result
            .tool_calls
            .iter()
            .map(|c| (c.result.as_str(), c.is_error))
            .collect();
        assert_eq!(
            results,
            [
                (
                    "{\"error\":\"tool server 'fs' is unavailable: gone\"}",
                    true
                ),
                ("{\"error\":\"Unknown tool: nope\"}", true),
                ("{\"error\":\"tool timed out after 0.05s\"}", true),
            ]
        );
        assert_eq!(result.output, "sorry");
    }

    #[tokio::test]
    async fn a_server_unreachable_for_the_whole_run_interrupts_it_with_its_name() {
        let model = Arc::new(
            ScriptedModel::new("m")
                .then(Completion::tool_calls("m", vec![call("c1", "git__status")]))
                .then(Completion::text("m", "done")),
        );
        let result = within(
            Agent::new("sys", model)
                .tools(Host::new(&[&["fs", "web"], &["fs", "web"]]))
                .run("go"),
        )
        .await
        .expect("runs");
        assert_eq!(result.output, "done", "the output is kept");
        assert!(result.interrupted);
        assert_eq!(result.interruption_reason.as_deref(), Some("mcp:fs"));
        assert_eq!(result.unreachable_servers, ["fs", "web"]);
    }

    #[tokio::test]
    async fn a_server_reached_at_any_point_does_not_count() {
        let model = Arc::new(
            ScriptedModel::new("m")
                .then(Completion::tool_calls("m", vec![call("c1", "git__status")]))
                .then(Completion::text("m", "done")),
        );
        let result = within(
            Agent::new("sys", model)
                .tools(Host::new(&[&["fs", "web"], &["web"]]))
                .run("go"),
        )
        .await
        .expect("runs");
        assert_eq!(result.interruption_reason.as_deref(), Some("mcp:web"));
        assert_eq!(result.unreachable_servers, ["web"]);
    }

    #[tokio::test]
    async fn max_turns_interrupts_the_run() {
        let mut model = ScriptedModel::new("m");
        for i in 0..5 {
            model = model.then(Completion::tool_calls(
                "m",
                vec![call(&format!("c{i}"), "git__status")],
            ));
        }
        let result = within(
            Agent::new("sys", Arc::new(model))
                .tools(Host::new(&[&["fs"]]))
                .max_turns(3)
                .run("go"),
        )
        .await
        .expect("runs");
        assert_eq!(result.turns, 3);
        assert_eq!(
            result.interruption_reason.as_deref(),
            Some(MAX_TURNS_REASON),
            "an earlier reason wins over mcp:"
        );
    }

    #[test]
    fn provider_names_are_safe_and_one_to_one() {
        let long = "x".repeat(80);
        let names = ProviderNames::new(["git.status", "git__status", "a b", "a_b", "", &long]);
        assert_eq!(names.to_provider("git.status"), Some("git__status"));
        assert_eq!(names.to_provider("git__status"), Some("git__status_2"));
        assert_eq!(names.to_provider("a b"), Some("a_b"));
        assert_eq!(names.to_provider("a_b"), Some("a_b_2"));
        assert_eq!(names.to_provider(""), Some("_"));
        assert_eq!(names.to_provider(&long).map(str::len), Some(64));
        for name in ["git.status", "git__status", "a b", "a_b", "", long.as_str()] {
            let safe = names.to_provider(name).expect("mapped");
            assert!(
                safe.len() <= 64
                    && safe
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            );
            assert_eq!(names.to_host(safe), Some(name));
        }
    }
}
