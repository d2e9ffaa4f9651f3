//! Turning MCP results (tool results, resource contents, prompt messages) into the text
//! and JSON a model or a person reads.

use serde_json::{Value, json};

/// The text of a tool result: `structuredContent` as JSON when present, otherwise one
/// piece per content block joined by newlines — text as is, an embedded text resource's
/// text, `[resource_link: <uri>]`, and `[<type>: <mime>, <n> bytes]` for binary data.
pub fn tool_result_text(structured: Option<&Value>, content: &[Value]) -> String {
    if let Some(structured) = structured {
        return structured.to_string();
    }
    let pieces: Vec<String> = content.iter().filter_map(block_text).collect();
    if pieces.is_empty() && !content.is_empty() {
        return Value::Array(content.to_vec()).to_string();
    }
    pieces.join("\n")
}

fn block_text(block: &Value) -> Option<String> {
    let kind = block.get("type").and_then(Value::as_str)?;
    match kind {
        "text" => block.get("text").and_then(Value::as_str).map(str::to_owned),
        "image" | "audio" => Some(binary(kind, block.get("mimeType"), block.get("data"))),
        "resource" => {
            let resource = block.get("resource")?;
            match resource.get("text").and_then(Value::as_str) {
                Some(text) => Some(text.to_owned()),
                None => Some(binary(
                    "resource",
                    resource.get("mimeType"),
                    resource.get("blob"),
                )),
            }
        }
        "resource_link" => block
            .get("uri")
            .and_then(Value::as_str)
            .map(|uri| format!("[resource_link: {uri}]")),
        _ => None,
    }
}

fn binary(kind: &str, mime: Option<&Value>, data: Option<&Value>) -> String {
    let mime = mime.and_then(Value::as_str).unwrap_or("unknown media type");
    let size = data.and_then(Value::as_str).map_or(0, base64_len);
    format!("[{kind}: {mime}, {size} bytes]")
}

/// The decoded size of base64 text.
fn base64_len(data: &str) -> usize {
    data.trim_end_matches('=').len() * 3 / 4
}

/// A resource read: text verbatim, a blob as `{"mime", "size"}`; one item unwrapped,
/// several as a list.
pub fn resource_value(contents: &[Value]) -> Value {
    let mut items: Vec<Value> = contents
        .iter()
        .map(|c| match c.get("text").and_then(Value::as_str) {
            Some(text) => Value::String(text.to_owned()),
            None => json!({
                "mime": c.get("mimeType").cloned().unwrap_or(Value::Null),
                "size": c.get("blob").and_then(Value::as_str).map_or(0, base64_len),
            }),
        })
        .collect();
    if items.len() == 1 {
        items.remove(0)
    } else {
        Value::Array(items)
    }
}

/// A prompt as `{"description", "messages": [{"role", "content"}]}` with text content
/// flattened (binary content as a placeholder).
pub fn prompt_value(description: Option<&str>, messages: &[Value]) -> Value {
    let messages: Vec<Value> = messages
        .iter()
        .map(|m| {
            let content = m.get("content").cloned().unwrap_or(Value::Null);
            let content = block_text(&content).map_or(content, Value::String);
            json!({"role": m.get("role").cloned().unwrap_or(Value::Null), "content": content})
        })
        .collect();
    json!({"description": description, "messages": messages})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_content_wins_over_text() {
        let text = tool_result_text(
            Some(&json!({"sum": 3})),
            &[json!({"type": "text", "text": "3"})],
        );
        assert_eq!(text, "{\"sum\":3}");
    }

    #[test]
    fn mixed_blocks_become_one_line_each() {
        let content = [
            json!({"type": "text", "text": "text"}),
            json!({"type": "image", "mimeType": "image/png", "data": "aGVsbG8="}),
            json!({"type": "resource", "resource": {"uri": "x:b", "mimeType": "application/octet-stream", "blob": "YWJj"}}),
        ];
        assert_eq!(
            tool_result_text(None, &content),
            "text\n[image: image/png, 5 bytes]\n[resource: application/octet-stream, 3 bytes]"
        );
        assert_eq!(
            tool_result_text(
                None,
                &[json!({"type": "image", "mimeType": "image/png", "data": "aGVsbG8="})]
            ),
            "[image: image/png, 5 bytes]"
        );
    }

    #[test]
    fn embedded_text_links_and_unknown_blocks() {
        assert_eq!(
            tool_result_text(
                None,
                &[json!({"type": "resource", "resource": {"uri": "a", "text": "inner"}})]
            ),
            "inner"
        );
        assert_eq!(
            tool_result_text(
                None,
                &[json!({"type": "resource_link", "uri": "file:///x", "name": "x"})]
            ),
            "[resource_link: file:///x]"
        );
        assert_eq!(
            tool_result_text(None, &[json!({"type": "weird"})]),
            "[{\"type\":\"weird\"}]"
        );
        assert_eq!(tool_result_text(None, &[]), "");
    }

    #[test]
    fn resources_and_prompts_are_flattened() {
        assert_eq!(
            resource_value(&[json!({"uri": "a", "text": "hi"})]),
            json!("hi")
        );
        assert_eq!(
            resource_value(&[
                json!({"uri": "a", "text": "hi"}),
                json!({"uri": "b", "mimeType": "image/png", "blob": "YWJj"})
            ]),
            json!(["hi", {"mime": "image/png", "size": 3}])
        );
        assert_eq!(
            prompt_value(
                Some("d"),
                &[json!({"role": "user", "content": {"type": "text", "text": "hello"}})]
            ),
            json!({"description": "d", "messages": [{"role": "user", "content": "hello"}]})
        );
    }
}
