//! Resilient extraction of a JSON object from a model's free-text reply.

use saphyr::{LoadableYamlNode, Scalar, Yaml};
use serde_json::{Map, Value};

/// How many characters of the reply [`ExtractError::NotJsonOrYaml`] keeps.
const PREVIEW_CHARS: usize = 200;

/// Why no JSON object could be extracted from a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExtractError {
    /// The reply is valid JSON, but not an object (loom-ai 0.9 returned it anyway, B9).
    #[error("LLM returned JSON that is not an object ({kind})")]
    NotAnObject {
        /// What it is instead: `an array`, `a string`, `a number`, `a boolean` or `null`.
        kind: &'static str,
    },
    /// Nothing in the reply parses as a JSON object or a YAML mapping.
    #[error("LLM returned non-JSON/YAML: {preview}")]
    NotJsonOrYaml {
        /// The first 200 characters of the (trimmed) reply.
        preview: String,
    },
}

/// Extracts the JSON object a model was asked to produce from its reply `text`.
///
/// The attempts, on the trimmed text, in order (the first success wins):
///
/// 1. the whole text as JSON;
/// 2. the body of a fenced block as JSON: the whole text if it is one fenced block
///    (language tag `json`, `yaml`, `yml` or none; the closing fence may follow the body
///    without a newline), else the first fenced block anywhere;
/// 3. the span from the first `{` to the last `}` as JSON (so two separate objects in
///    prose fail);
/// 4. the fenced body as YAML, if it is a mapping;
/// 5. the whole text as YAML, if it is a mapping (recovers `key: value` output, single
///    quotes, unquoted keys, trailing commas).
///
/// Only objects are accepted: if step 1 or 2 finds valid JSON that is not an object,
/// the reply is rejected with [`ExtractError::NotAnObject`] at once.
///
/// ```
/// use loom_llm::extract_json_object;
///
/// let object = extract_json_object("Sure!\n```json\n{\"answer\": 42}\n```")?;
/// assert_eq!(object["answer"], 42);
/// let err = extract_json_object("[1, 2]").unwrap_err();
/// assert_eq!(err.to_string(), "LLM returned JSON that is not an object (an array)");
/// # Ok::<(), loom_llm::ExtractError>(())
/// ```
pub fn extract_json_object(text: &str) -> Result<Map<String, Value>, ExtractError> {
    let text = text.trim();

    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return into_object(value);
    }

    let fenced = fenced_body(text);
    if let Some(body) = fenced {
        if let Ok(value) = serde_json::from_str::<Value>(body) {
            return into_object(value);
        }
    }

    if let (Some(start), Some(end)) = (text.find('{'), text.rfind('}')) {
        if start < end {
            if let Ok(Value::Object(object)) = serde_json::from_str::<Value>(&text[start..=end]) {
                return Ok(object);
            }
        }
    }

    if let Some(object) = fenced.and_then(yaml_mapping) {
        return Ok(object);
    }
    if let Some(object) = yaml_mapping(text) {
        return Ok(object);
    }

    Err(ExtractError::NotJsonOrYaml {
        preview: preview_plain(text),
    })
}

/// The first 200 characters, as loom-ai kept them.
fn preview_plain(text: &str) -> String {
    text.chars().take(PREVIEW_CHARS).collect()
}

fn into_object(value: Value) -> Result<Map<String, Value>, ExtractError> {
    let kind = match value {
        Value::Object(object) => return Ok(object),
        Value::Array(_) => "an array",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "null",
    };
    Err(ExtractError::NotAnObject { kind })
}

/// The body of the fenced block: the whole text if it is one block, else the first one.
fn fenced_body(text: &str) -> Option<&str> {
    const FENCE: &str = "```";
    if let Some(body_start) = opener_end(text, 0) {
        if text.len() >= body_start + FENCE.len() && text.ends_with(FENCE) {
            return Some(text[body_start..text.len() - FENCE.len()].trim());
        }
    }
    let mut from = 0;
    while let Some(offset) = text[from..].find(FENCE) {
        let at = from + offset;
        if let Some(body_start) = opener_end(text, at) {
            let close = text[body_start..].find(FENCE)?;
            return Some(text[body_start..body_start + close].trim());
        }
        from = at + FENCE.len();
    }
    None
}

/// If an opening fence starts at `at` (three backticks, an optional language tag, then
/// whitespace containing a newline), the offset where its body begins.
fn opener_end(text: &str, at: usize) -> Option<usize> {
    let rest = text[at..].strip_prefix("```")?;
    let tag_len = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '+'))
        .unwrap_or(rest.len());
    let after_tag = &rest[tag_len..];
    let ws_len = after_tag
        .find(|c: char| !c.is_whitespace())
        .unwrap_or(after_tag.len());
    let last_newline = after_tag[..ws_len].rfind('\n')?;
    Some(at + 3 + tag_len + last_newline + 1)
}

/// Parses `text` as a single YAML document and returns it if it is a mapping.
fn yaml_mapping(text: &str) -> Option<Map<String, Value>> {
    let docs = Yaml::load_from_str(text).ok()?;
    let [doc] = docs.as_slice() else {
        return None;
    };
    match yaml_to_json(doc)? {
        Value::Object(object) => Some(object),
        _ => None,
    }
}

/// A YAML node as JSON: scalars as their JSON values, mapping keys spelt as JSON would
/// spell the scalar, tags dropped; `None` for a collection used as a key, an alias or an
/// unparsable scalar. Also how the LLM worker reads few-shot example files.
pub fn yaml_to_json(node: &Yaml<'_>) -> Option<Value> {
    Some(match node {
        Yaml::Value(scalar) => scalar_to_json(scalar),
        Yaml::Representation(text, _, _) => Value::String(text.to_string()),
        Yaml::Sequence(items) => {
            Value::Array(items.iter().map(yaml_to_json).collect::<Option<_>>()?)
        }
        Yaml::Mapping(map) => {
            let mut object = Map::new();
            for (key, value) in map {
                object.insert(yaml_key(key)?, yaml_to_json(value)?);
            }
            Value::Object(object)
        }
        Yaml::Tagged(_, inner) => yaml_to_json(inner)?,
        // Aliases are not resolved by saphyr's loader; BadValue is an unparsable scalar.
        _ => return None,
    })
}

fn scalar_to_json(scalar: &Scalar<'_>) -> Value {
    match scalar {
        Scalar::Null => Value::Null,
        Scalar::Boolean(b) => Value::Bool(*b),
        Scalar::Integer(i) => Value::from(*i),
        Scalar::FloatingPoint(f) => Value::from(f.into_inner()),
        Scalar::String(s) => Value::String(s.to_string()),
    }
}

/// A mapping key as a JSON object key; scalars are spelt as JSON would, collections fail.
fn yaml_key(key: &Yaml<'_>) -> Option<String> {
    match yaml_to_json(key)? {
        Value::String(s) => Some(s),
        Value::Array(_) | Value::Object(_) => None,
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[track_caller]
    fn ok(text: &str, expected: Value) {
        match extract_json_object(text) {
            Ok(object) => assert_eq!(Value::Object(object), expected, "input: {text:?}"),
            Err(e) => panic!("input {text:?} failed: {e}"),
        }
    }

    #[track_caller]
    fn rejected(text: &str) -> ExtractError {
        match extract_json_object(text) {
            Ok(object) => panic!("input {text:?} should fail, got {object:?}"),
            Err(e) => e,
        }
    }

    // §18 item 52.
    #[test]
    fn accepts_raw_json() {
        ok(
            r#"{"a": 1, "b": [true, null]}"#,
            json!({"a": 1, "b": [true, null]}),
        );
        ok("  \n{\"a\": 1}\n  ", json!({"a": 1}));
    }

    #[test]
    fn accepts_json_fence() {
        ok("```json\n{\"a\": 1}\n```", json!({"a": 1}));
    }

    #[test]
    fn accepts_fence_with_preamble_or_trailing_text() {
        ok("Here you go:\n```json\n{\"a\": 1}\n```", json!({"a": 1}));
        ok(
            "```json\n{\"a\": 1}\n```\nHope that helps!",
            json!({"a": 1}),
        );
        ok(
            "Sure:\n```json\n{\"a\": 1}\n```\nAnything else?",
            json!({"a": 1}),
        );
    }

    #[test]
    fn accepts_bare_fence() {
        ok("```\n{\"a\": 1}\n```", json!({"a": 1}));
    }

    #[test]
    fn accepts_fence_without_newline_before_closing_backticks() {
        ok("```json\n{\"a\": 1}```", json!({"a": 1}));
        ok("Result:\n```json\n{\"a\": 1}```", json!({"a": 1}));
    }

    #[test]
    fn accepts_single_object_embedded_in_prose() {
        ok(
            "The result is {\"a\": {\"b\": 2}} as requested.",
            json!({"a": {"b": 2}}),
        );
        ok("Result:\n{\n  \"x\": \"y\"\n}\nDone.", json!({"x": "y"}));
    }

    #[test]
    fn first_fenced_block_wins_when_there_are_several() {
        ok(
            "A:\n```json\n{\"a\": 1}\n```\nB:\n```json\n{\"b\": 2}\n```",
            json!({"a": 1}),
        );
    }

    #[test]
    fn non_ascii_survives() {
        ok("{\"text\": \"سلام دنیا\"}", json!({"text": "سلام دنیا"}));
    }

    // §18 item 53.
    #[test]
    fn accepts_fenced_yaml_mapping() {
        ok(
            "```yaml\nname: x\ncount: 3\n```",
            json!({"name": "x", "count": 3}),
        );
        ok("```yml\nok: true\n```", json!({"ok": true}));
    }

    #[test]
    fn accepts_plain_yaml_mapping() {
        ok(
            "name: report\nitems:\n  - a\n  - b\nscore: 0.5\nmissing: null",
            json!({"name": "report", "items": ["a", "b"], "score": 0.5, "missing": null}),
        );
    }

    #[test]
    fn yaml_recovers_single_quotes_unquoted_keys_and_trailing_commas() {
        ok("{'a': 'b'}", json!({"a": "b"}));
        ok("{a: 1, b: two}", json!({"a": 1, "b": "two"}));
        ok("{\"a\": 1, \"b\": 2,}", json!({"a": 1, "b": 2}));
    }

    #[test]
    fn yaml_non_string_keys_become_strings() {
        ok("1: one\ntrue: yes", json!({"1": "one", "true": "yes"}));
    }

    #[test]
    fn rejects_yaml_list() {
        assert!(matches!(
            rejected("- a\n- b"),
            ExtractError::NotJsonOrYaml { .. }
        ));
        assert!(matches!(
            rejected("```yaml\n- a\n- b\n```"),
            ExtractError::NotJsonOrYaml { .. }
        ));
    }

    #[test]
    fn rejects_yaml_scalar_prose() {
        let err = rejected("I cannot help with that");
        assert_eq!(
            err.to_string(),
            "LLM returned non-JSON/YAML: I cannot help with that"
        );
    }

    #[test]
    fn rejects_empty_and_whitespace_only() {
        assert_eq!(rejected("").to_string(), "LLM returned non-JSON/YAML: ");
        assert!(matches!(
            rejected("  \n\t "),
            ExtractError::NotJsonOrYaml { .. }
        ));
    }

    #[test]
    fn error_preview_is_the_first_200_characters() {
        let long = format!("- {}", "é".repeat(300));
        let ExtractError::NotJsonOrYaml { preview } = rejected(&long) else {
            panic!("expected NotJsonOrYaml");
        };
        assert_eq!(preview.chars().count(), 200);
        assert!(long.starts_with(&preview));
    }

    // §18 item 54.
    #[test]
    fn rejects_two_separate_objects_in_prose() {
        assert!(matches!(
            rejected("First {\"a\": 1} and then {\"b\": 2} too."),
            ExtractError::NotJsonOrYaml { .. }
        ));
    }

    // B9: only objects.
    #[test]
    fn b9_rejects_json_array() {
        let err = rejected("[{\"a\": 1}]");
        assert_eq!(err, ExtractError::NotAnObject { kind: "an array" });
        assert_eq!(
            err.to_string(),
            "LLM returned JSON that is not an object (an array)"
        );
    }

    #[test]
    fn b9_rejects_json_scalars() {
        assert_eq!(
            rejected("\"text\""),
            ExtractError::NotAnObject { kind: "a string" }
        );
        assert_eq!(
            rejected("42"),
            ExtractError::NotAnObject { kind: "a number" }
        );
        assert_eq!(
            rejected("true"),
            ExtractError::NotAnObject { kind: "a boolean" }
        );
        assert_eq!(rejected("null"), ExtractError::NotAnObject { kind: "null" });
    }

    #[test]
    fn b9_rejects_fenced_json_array() {
        assert_eq!(
            rejected("```json\n[1, 2]\n```"),
            ExtractError::NotAnObject { kind: "an array" }
        );
    }
}
