//! From loom-mcp's registry types to rmcp's MCP types.

use loom_mcp::{PromptInfo, ResourceInfo, ToolInfo};
use rmcp::model::{GetPromptResult, Prompt, PromptArgument, PromptMessage, Resource, Role, Tool};
use serde_json::Value;

/// The MCP definition of an upstream tool listed as `name`: the upstream's own
/// (input and output schemas, title, annotations, icons, `_meta`), renamed. An input
/// schema that is not an object schema becomes `{"type": "object"}`.
pub(super) fn tool(name: &str, info: &ToolInfo) -> Tool {
    let mut tool = info.definition.clone();
    tool.name = name.to_owned().into();
    if let Value::Object(schema) = &info.input_schema {
        tool.input_schema = std::sync::Arc::new(schema.clone());
    }
    tool
}

/// The MCP form of an upstream resource.
pub(super) fn resource(info: ResourceInfo) -> Resource {
    let mut r = Resource::new(info.uri, info.name);
    if !info.description.is_empty() {
        r = r.with_description(info.description);
    }
    if let Some(m) = info.mime_type {
        r = r.with_mime_type(m);
    }
    r
}

/// The MCP form of an upstream prompt.
pub(super) fn prompt(info: PromptInfo) -> Prompt {
    let arguments: Option<Vec<PromptArgument>> = serde_json::from_value(info.arguments).ok();
    let description = (!info.description.is_empty()).then_some(info.description);
    Prompt::new(info.name, description, arguments)
}

/// A prompt from the registry's `{"description", "messages": [{"role", "content"}]}`.
pub(super) fn prompt_result(value: Value) -> Result<GetPromptResult, String> {
    let description = value
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let messages = value
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("the prompt has no messages")?
        .iter()
        .map(|m| {
            let role = match m.get("role").and_then(Value::as_str) {
                Some("assistant") => Role::Assistant,
                _ => Role::User,
            };
            let text = match m.get("content") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            PromptMessage::new_text(role, text)
        })
        .collect();
    let mut result = GetPromptResult::new(messages);
    if let Some(d) = description {
        result = result.with_description(d);
    }
    Ok(result)
}
