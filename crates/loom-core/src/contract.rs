//! Input and output contracts: JSON Schema (Draft 2020-12) checks on payloads and outputs.
//!
//! loom-ai 0.9.0 checked only top-level `type: object`, top-level `required` and the
//! shallow `type` of present properties (mesh spec §7, §19 L7). Loom uses a real Draft
//! 2020-12 validator instead, so nested objects, `items`, `enum`, bounds and patterns are
//! now enforced, while keeping what clients rely on:
//!
//! * an empty or absent schema accepts anything;
//! * a boolean is never an integer or a number (`true` fails `integer`; `3` passes `number`);
//! * the original texts survive as substrings: `missing required field '<k>'` and
//!   `expected <type>`;
//! * every violation is reported, not just the first.
//!
//! Differences worth knowing: JSON `1.0` counts as an `integer` (JSON Schema's rule; the
//! original rejected it), `format` is an annotation only (not checked), and `$ref` resolves
//! only inside the schema itself: external references are a [`SchemaError`], never fetched.
//!
//! # Rendering
//!
//! A [`Violation`] has a JSON pointer into the checked value and a message. Rendered for a
//! [`Side`], the pointer follows the side name, and the root renders as the bare side:
//!
//! ```text
//! input: missing required field 'text'
//! input/text: expected string, got integer
//! output/items/2/kind: expected one of ["a","b"], got "c"
//! ```
//!
//! [`Violations::error_text`] renders the whole list for a FAILED result's `error`, in the
//! exact form the Python worker used: the prefix `Input validation: ` or
//! `Output validation: ` followed by a Python list literal, e.g.
//! `Input validation: ["input: missing required field 'text'"]`. Python clients that
//! match on that text keep working.
//!
//! ```
//! use loom_core::contract::{Contract, Side};
//! use serde_json::json;
//!
//! let contract = Contract::new(json!({
//!     "type": "object",
//!     "required": ["text"],
//!     "properties": {"text": {"type": "string"}, "n": {"type": "integer"}}
//! }))?;
//! let violations = contract.check(&json!({"n": true})).expect_err("two problems");
//! assert_eq!(
//!     violations.render(Side::Input),
//!     ["input: missing required field 'text'", "input/n: expected integer, got boolean"]
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::sync::Arc;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

/// At most this many violations are collected per check; a flag records that more exist.
/// A hostile value (a huge array of wrong items) must not produce a multi-megabyte error.
pub const MAX_VIOLATIONS: usize = 100;

/// A compiled JSON Schema contract. Cheap to clone (shared).
#[derive(Clone)]
pub struct Contract {
    inner: Arc<Inner>,
}

struct Inner {
    schema: Value,
    /// `None` when the schema accepts anything (`{}`, `true`, absent).
    validator: Option<Validator>,
}

impl Contract {
    /// Compiles `schema` after checking it against the Draft 2020-12 meta-schema.
    ///
    /// `{}`, `true` and `null` (an empty YAML key) accept anything, as in the original.
    /// Every meta-schema problem is reported with its JSON pointer inside the schema.
    /// `$ref`s are resolved only within the schema; an external one is a problem too.
    pub fn new(schema: Value) -> Result<Contract, SchemaError> {
        if accepts_anything(&schema) {
            return Ok(Contract::with(schema, None));
        }
        let validator = compile(&schema)?;
        Ok(Contract::with(schema, Some(validator)))
    }

    /// A contract for an optional schema: `None` accepts anything.
    pub fn from_optional(schema: Option<Value>) -> Result<Contract, SchemaError> {
        match schema {
            None => Ok(Contract::any()),
            Some(schema) => Contract::new(schema),
        }
    }

    /// The contract that accepts anything (the schema `{}`).
    pub fn any() -> Contract {
        Contract::with(Value::Object(serde_json::Map::new()), None)
    }

    fn with(schema: Value, validator: Option<Validator>) -> Contract {
        Contract {
            inner: Arc::new(Inner { schema, validator }),
        }
    }

    /// The schema as given.
    pub fn schema(&self) -> &Value {
        &self.inner.schema
    }

    /// True when the schema accepts any value (`{}`, `true` or absent).
    pub fn accepts_anything(&self) -> bool {
        self.inner.validator.is_none()
    }

    /// Checks `value`, collecting every violation (up to [`MAX_VIOLATIONS`]).
    pub fn check(&self, value: &Value) -> Result<(), Violations> {
        let Some(validator) = &self.inner.validator else {
            return Ok(());
        };
        let mut items = Vec::new();
        let mut truncated = false;
        for error in validator.iter_errors(value) {
            if items.len() == MAX_VIOLATIONS {
                truncated = true;
                break;
            }
            items.push(Violation::from_error(&error));
        }
        if items.is_empty() {
            Ok(())
        } else {
            Err(Violations { items, truncated })
        }
    }

    /// True when `value` satisfies the contract (faster than [`Contract::check`]).
    pub fn is_valid(&self, value: &Value) -> bool {
        self.inner
            .validator
            .as_ref()
            .is_none_or(|v| v.is_valid(value))
    }
}

impl Default for Contract {
    /// The contract that accepts anything, as an absent schema does.
    fn default() -> Self {
        Contract::any()
    }
}

impl fmt::Debug for Contract {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Contract")
            .field("schema", &self.inner.schema)
            .finish()
    }
}

/// Checks `schema` exactly as [`Contract::new`] does, without keeping the compiled form.
pub fn check_schema(schema: &Value) -> Result<(), SchemaError> {
    if accepts_anything(schema) {
        return Ok(());
    }
    compile(schema).map(drop)
}

fn accepts_anything(schema: &Value) -> bool {
    match schema {
        Value::Null | Value::Bool(true) => true,
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

fn compile(schema: &Value) -> Result<Validator, SchemaError> {
    let meta = jsonschema::draft202012::meta::validator();
    let mut problems: Vec<SchemaProblem> = Vec::new();
    for error in meta.iter_errors(schema) {
        let problem = SchemaProblem {
            pointer: error.instance_path().as_str().to_owned(),
            message: meta_message(&error),
        };
        // The meta-schema reports some problems once per applicable subschema.
        if !problems.contains(&problem) {
            problems.push(problem);
        }
    }
    if !problems.is_empty() {
        return Err(SchemaError { problems });
    }
    jsonschema::draft202012::options()
        .offline()
        .build(schema)
        .map_err(|error| SchemaError {
            problems: vec![build_problem(schema, &error)],
        })
}

fn meta_message(error: &ValidationError<'_>) -> String {
    if matches!(error.kind(), ValidationErrorKind::AnyOf { .. })
        && error
            .schema_path()
            .as_str()
            .ends_with("/properties/type/anyOf")
    {
        return format!(
            "invalid type {}: use one of array, boolean, integer, null, number, object, string, or a list of them",
            error.instance()
        );
    }
    error.to_string()
}

/// A compile-time error (an unresolvable `$ref`, a bad regex) turned into a problem with
/// the best pointer we can find.
fn build_problem(schema: &Value, error: &ValidationError<'_>) -> SchemaProblem {
    let text = error.to_string();
    if !matches!(error.kind(), ValidationErrorKind::Referencing(_)) {
        return SchemaProblem {
            pointer: error.instance_path().as_str().to_owned(),
            message: text,
        };
    }
    let mut refs = Vec::new();
    collect_refs(schema, String::new(), &mut refs);
    let culprit = refs
        .iter()
        .find(|(_, r)| {
            text.contains(r.as_str())
                || r.strip_prefix('#')
                    .is_some_and(|frag| !frag.is_empty() && text.contains(frag))
        })
        .or_else(|| refs.iter().find(|(_, r)| !r.starts_with('#')));
    match culprit {
        Some((pointer, r)) if !r.starts_with('#') => SchemaProblem {
            pointer: pointer.clone(),
            message: format!(
                "external $ref '{r}' is not supported: schemas are never fetched from the network or disk; \
                 copy the referenced schema under $defs and refer to it as '#/$defs/<name>'"
            ),
        },
        Some((pointer, r)) => SchemaProblem {
            pointer: pointer.clone(),
            message: format!("$ref '{r}' does not resolve: {text}"),
        },
        None => SchemaProblem {
            pointer: error.instance_path().as_str().to_owned(),
            message: text,
        },
    }
}

/// Every `$ref`/`$dynamicRef` string in `value` with the pointer of the keyword itself.
/// Values under `const`, `default`, `enum` and `examples` are data, not schemas.
fn collect_refs(value: &Value, pointer: String, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let child_pointer = format!("{pointer}/{}", escape_pointer_token(key));
                match (key.as_str(), child) {
                    ("$ref" | "$dynamicRef", Value::String(r)) => {
                        out.push((child_pointer, r.clone()))
                    }
                    ("const" | "default" | "enum" | "examples", _) => {}
                    _ => collect_refs(child, child_pointer, out),
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                collect_refs(child, format!("{pointer}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn escape_pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// A schema that is not a valid Draft 2020-12 schema, with every problem found.
///
/// Displays as `invalid JSON Schema: /type: …; /properties/a/minLength: …`. Callers that
/// place problems in a file (the config loader) use [`SchemaError::problems`]; each
/// problem's message does not repeat the `invalid JSON Schema` prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid JSON Schema: {}", join_problems(.problems))]
pub struct SchemaError {
    problems: Vec<SchemaProblem>,
}

impl SchemaError {
    /// Each problem (at least one), with its pointer inside the schema.
    pub fn problems(&self) -> &[SchemaProblem] {
        &self.problems
    }

    /// The problems, owned.
    pub fn into_problems(self) -> Vec<SchemaProblem> {
        self.problems
    }
}

/// One problem in a schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaProblem {
    /// JSON pointer (RFC 6901) inside the schema, `""` for the schema itself,
    /// e.g. `/properties/text/type`.
    pub pointer: String,
    /// What is wrong, e.g. `invalid type "strng": use one of array, …`.
    pub message: String,
}

impl fmt::Display for SchemaProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_problem(f, &self.pointer, "(root)", &self.message)
    }
}

/// Writes one problem as `{pointer}: {message}`, with `root` standing for the empty
/// pointer (the checked value itself): `(root)` in [`Violation`] and [`SchemaProblem`],
/// `/` in the gateway's argument errors.
pub fn write_problem(
    f: &mut fmt::Formatter<'_>,
    pointer: &str,
    root: &str,
    message: &str,
) -> fmt::Result {
    let at = if pointer.is_empty() { root } else { pointer };
    write!(f, "{at}: {message}")
}

/// The problems displayed one after another, separated by `; `.
pub fn join_problems<T: fmt::Display>(problems: &[T]) -> String {
    problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Which side of a worker a checked value is on; it prefixes rendered violations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The task payload, checked against `input_schema`.
    Input,
    /// The worker output, checked against `output_schema`.
    Output,
}

impl Side {
    /// `input` or `output`.
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Input => "input",
            Side::Output => "output",
        }
    }

    /// The task-level error prefix: `Input validation` or `Output validation`.
    pub fn error_prefix(self) -> &'static str {
        match self {
            Side::Input => "Input validation",
            Side::Output => "Output validation",
        }
    }
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One way a value breaks its contract.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Violation {
    /// JSON pointer (RFC 6901) into the checked value; `""` is the value itself.
    pub pointer: String,
    /// The schema keyword that failed (`required`, `type`, `enum`…).
    pub keyword: String,
    /// What is wrong, e.g. `missing required field 'text'` or `expected string, got integer`.
    pub message: String,
}

impl Violation {
    fn from_error(error: &ValidationError<'_>) -> Violation {
        Violation {
            pointer: error.instance_path().as_str().to_owned(),
            keyword: error.kind().keyword().to_owned(),
            message: violation_message(error),
        }
    }

    /// `"{side}{pointer}: {message}"`, e.g. `input/text: expected string, got integer`;
    /// a root violation renders as `input: …`.
    pub fn render(&self, side: Side) -> String {
        format!("{side}{}: {}", self.pointer, self.message)
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_problem(f, &self.pointer, "(root)", &self.message)
    }
}

fn violation_message(error: &ValidationError<'_>) -> String {
    let instance: &Value = error.instance();
    match error.kind() {
        ValidationErrorKind::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => t.to_string(),
                TypeKind::Multiple(set) => set
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            format!("expected {expected}, got {}", json_type(instance))
        }
        ValidationErrorKind::Required { property } => match property {
            Value::String(name) => format!("missing required field '{name}'"),
            other => format!("missing required field '{other}'"),
        },
        ValidationErrorKind::Enum { options } => {
            format!("expected one of {options}, got {}", preview(instance))
        }
        ValidationErrorKind::Constant { expected_value } => {
            format!("expected {expected_value}, got {}", preview(instance))
        }
        ValidationErrorKind::AdditionalProperties { unexpected }
        | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
            let names = unexpected
                .iter()
                .map(|n| format!("'{n}'"))
                .collect::<Vec<_>>()
                .join(", ");
            let s = if unexpected.len() == 1 { "" } else { "s" };
            format!("unexpected field{s} {names}")
        }
        ValidationErrorKind::FalseSchema => "no value is allowed here".to_owned(),
        // The masked form says "value …" instead of echoing arbitrary instance data.
        _ => error.masked().to_string(),
    }
}

/// The JSON type name of `value`, telling integers from other numbers.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A short rendering of `value` for messages: scalars as JSON (strings cut at 40
/// characters), containers by type only.
fn preview(value: &Value) -> String {
    match value {
        Value::String(s) if s.chars().count() > 40 => {
            let cut: String = s.chars().take(40).collect();
            format!("{}…", Value::String(cut))
        }
        Value::Array(_) | Value::Object(_) => json_type(value).to_owned(),
        _ => value.to_string(),
    }
}

/// Every violation found in one check (at most [`MAX_VIOLATIONS`]), in validator order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violations {
    items: Vec<Violation>,
    truncated: bool,
}

impl Violations {
    /// The violations.
    pub fn as_slice(&self) -> &[Violation] {
        &self.items
    }

    /// Iterates over the violations.
    pub fn iter(&self) -> std::slice::Iter<'_, Violation> {
        self.items.iter()
    }

    /// How many violations were collected.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Always false: a `Violations` holds at least one violation.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// True when the check stopped at [`MAX_VIOLATIONS`] and more exist.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// The violations, owned.
    pub fn into_vec(self) -> Vec<Violation> {
        self.items
    }

    /// One line per violation, e.g. `input: missing required field 'text'`.
    pub fn render(&self, side: Side) -> Vec<String> {
        self.items.iter().map(|v| v.render(side)).collect()
    }

    /// The text for a FAILED result's `error`, byte-identical to the Python worker's form:
    /// `Input validation: ["input: missing required field 'text'"]` (the prefix, then the
    /// rendered lines as a Python list literal). When truncated, a last element reads
    /// `... more violations omitted`.
    pub fn error_text(&self, side: Side) -> String {
        let mut lines = self.render(side);
        if self.truncated {
            lines.push("... more violations omitted".to_owned());
        }
        let items: Vec<String> = lines.iter().map(|l| crate::python::repr_str(l)).collect();
        format!("{}: [{}]", side.error_prefix(), items.join(", "))
    }
}

impl<'a> IntoIterator for &'a Violations {
    type Item = &'a Violation;
    type IntoIter = std::slice::Iter<'a, Violation>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&join_problems(&self.items))?;
        if self.truncated {
            f.write_str("; … more violations omitted")?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_is_shareable_across_threads() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<Contract>();
    }
}
