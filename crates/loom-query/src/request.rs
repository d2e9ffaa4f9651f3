//! Payload validation: tool arguments checked against the action's schema and turned
//! into a typed [`QueryRequest`] that backends run with bound parameters only.
//!
//! Rules shared by every backend:
//! * unknown arguments are rejected, naming them and the allowed ones; an `action`
//!   argument is allowed only if it names the action being run (the gateway's bridge
//!   adds it);
//! * `limit` is an integer in `1..=100` (default 20, `vector_search` 5); `null` means
//!   the default;
//! * `query` is a string of at most [`MAX_QUERY_CHARS`] characters; a blank query asks
//!   for nothing, so [`QueryRequest::parse`] returns `None` and the answer is
//!   `{results: [], total: 0}`;
//! * filter arguments have the type their [`FilterField`](crate::config::FilterField)
//!   declares; `null` means the filter is not applied;
//! * `group_by` must be one of `stats_groups` (default: the first);
//! * `get` takes the id column's argument, or the legacy `document_id`, as a string or
//!   an integer.

use loom_core::config::{QueryAction, suggestion};
use serde_json::{Map, Value};

use crate::backend::{QueryError, unsupported_reason};
use crate::config::{FilterOp, FilterType, Ident, QueryConfig};

/// `limit` of search and filter when the payload does not say.
pub const DEFAULT_LIMIT: u32 = 20;
/// `limit` of vector_search when the payload does not say.
pub const DEFAULT_VECTOR_LIMIT: u32 = 5;
/// Largest `limit` accepted.
pub const MAX_LIMIT: u32 = 100;
/// Longest `query` accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 1000;
/// Longest string filter value or id accepted, in characters.
pub const MAX_VALUE_CHARS: usize = 10_000;
/// The legacy `get` argument, accepted when the id column's argument is absent.
pub const LEGACY_ID_ARGUMENT: &str = "document_id";

/// A validated request for one action.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum QueryRequest {
    /// Full-text search for `query` (non-blank, trimmed).
    Search {
        /// The user's text; backends must not pass it through as query syntax.
        query: String,
        /// Maximum results.
        limit: u32,
    },
    /// Rows matching every condition (all of them when there are none).
    Filter {
        /// Conditions joined with AND, in config order.
        conditions: Vec<Condition>,
        /// Maximum results.
        limit: u32,
    },
    /// Aggregates grouped by one whitelisted column.
    Stats {
        /// The group column (one of `stats_groups`).
        group_by: Ident,
    },
    /// One record by id.
    Get {
        /// The id.
        id: IdValue,
    },
    /// Embedding similarity search for `query` (non-blank, trimmed).
    VectorSearch {
        /// The text to embed.
        query: String,
        /// Maximum results.
        limit: u32,
    },
}

/// One filter condition: `column op ?` with `value` bound, or a null test without one.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The column.
    pub column: Ident,
    /// The operator; `IsNull`/`IsNotNull` already account for a `false` argument.
    pub op: FilterOp,
    /// The bound value; `None` for null tests.
    pub value: Option<FilterValue>,
}

/// A typed filter value, always bound as a parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    /// Text.
    Text(String),
    /// A whole number.
    Integer(i64),
    /// A real number.
    Real(f64),
    /// A flag (stored as 1/0 in SQLite).
    Bool(bool),
}

/// The id asked for by `get`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdValue {
    /// A text id.
    Text(String),
    /// An integer id.
    Integer(i64),
}

impl std::fmt::Display for IdValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdValue::Text(s) => f.write_str(s),
            IdValue::Integer(i) => write!(f, "{i}"),
        }
    }
}

impl QueryRequest {
    /// Validates `payload` for `action` under `config`. `Ok(None)` means a blank query:
    /// answer [`empty_results`](crate::row::empty_results) without touching the database.
    pub fn parse(
        config: &QueryConfig,
        action: QueryAction,
        payload: &Map<String, Value>,
    ) -> Result<Option<QueryRequest>, QueryError> {
        if let Some(reason) = unsupported_reason(config, action) {
            return Err(QueryError::unsupported(action, reason));
        }
        check_action_key(action, payload)?;
        match action {
            QueryAction::Search | QueryAction::VectorSearch => {
                check_keys(payload, &["query", "limit"])?;
                let default = if action == QueryAction::Search {
                    DEFAULT_LIMIT
                } else {
                    DEFAULT_VECTOR_LIMIT
                };
                let limit = limit(payload, default)?;
                let query = match payload.get("query") {
                    None | Some(Value::Null) => {
                        return Err(QueryError::invalid(
                            "query",
                            "required: the text to search for",
                        ));
                    }
                    Some(Value::String(s)) => s.trim(),
                    Some(other) => {
                        return Err(QueryError::invalid(
                            "query",
                            format!("expected a string, found {}", json_kind(other)),
                        ));
                    }
                };
                if query.is_empty() {
                    return Ok(None);
                }
                let chars = query.chars().count();
                if chars > MAX_QUERY_CHARS {
                    return Err(QueryError::invalid(
                        "query",
                        format!(
                            "{chars} characters is longer than the maximum of {MAX_QUERY_CHARS}"
                        ),
                    ));
                }
                let query = query.to_owned();
                Ok(Some(if action == QueryAction::Search {
                    QueryRequest::Search { query, limit }
                } else {
                    QueryRequest::VectorSearch { query, limit }
                }))
            }
            QueryAction::Filter => {
                let mut allowed: Vec<&str> = config
                    .filter_fields
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect();
                allowed.push("limit");
                check_keys(payload, &allowed)?;
                let limit = limit(payload, DEFAULT_LIMIT)?;
                let mut conditions = Vec::new();
                for field in &config.filter_fields {
                    let name = field.name.as_str();
                    let Some(value) = payload.get(name).filter(|v| !v.is_null()) else {
                        continue;
                    };
                    let typed = filter_value(name, field.value_type, value)?;
                    let condition = match (field.op, typed) {
                        (FilterOp::IsNull | FilterOp::IsNotNull, FilterValue::Bool(flag)) => {
                            let op = match (field.op, flag) {
                                (FilterOp::IsNull, true) | (FilterOp::IsNotNull, false) => {
                                    FilterOp::IsNull
                                }
                                _ => FilterOp::IsNotNull,
                            };
                            Condition {
                                column: field.column.clone(),
                                op,
                                value: None,
                            }
                        }
                        (op, value) => Condition {
                            column: field.column.clone(),
                            op,
                            value: Some(value),
                        },
                    };
                    conditions.push(condition);
                }
                Ok(Some(QueryRequest::Filter { conditions, limit }))
            }
            QueryAction::Stats => {
                check_keys(payload, &["group_by"])?;
                let group_by = match payload.get("group_by") {
                    None | Some(Value::Null) => config.stats_groups.first().cloned(),
                    Some(Value::String(s)) => config
                        .stats_groups
                        .iter()
                        .find(|g| g.as_str() == s.trim())
                        .cloned(),
                    Some(other) => {
                        return Err(QueryError::invalid(
                            "group_by",
                            format!("expected a string, found {}", json_kind(other)),
                        ));
                    }
                };
                let allowed: Vec<&str> = config.stats_groups.iter().map(Ident::as_str).collect();
                match group_by {
                    Some(group_by) => Ok(Some(QueryRequest::Stats { group_by })),
                    None => {
                        let given = payload
                            .get("group_by")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        Err(QueryError::invalid(
                            "group_by",
                            format!(
                                "'{given}' is not an allowed group{} (allowed: {})",
                                suggestion(given, allowed.iter().copied()),
                                allowed.join(", ")
                            ),
                        ))
                    }
                }
            }
            QueryAction::Get => {
                let id_name = config.id_column.as_str();
                check_keys(payload, &[id_name, LEGACY_ID_ARGUMENT])?;
                let (field, value) = match payload.get(id_name).filter(|v| !v.is_null()) {
                    Some(v) => (id_name, v),
                    None => match payload.get(LEGACY_ID_ARGUMENT).filter(|v| !v.is_null()) {
                        Some(v) => (LEGACY_ID_ARGUMENT, v),
                        None => {
                            return Err(QueryError::invalid(
                                id_name,
                                format!(
                                    "required: the id of the record to get ({id_name} or {LEGACY_ID_ARGUMENT})"
                                ),
                            ));
                        }
                    },
                };
                let id = match value {
                    Value::String(s) if s.trim().is_empty() => {
                        return Err(QueryError::invalid(field, "the id is empty"));
                    }
                    Value::String(s) if s.chars().count() > MAX_VALUE_CHARS => {
                        return Err(QueryError::invalid(
                            field,
                            format!("longer than {MAX_VALUE_CHARS} characters"),
                        ));
                    }
                    Value::String(s) => IdValue::Text(s.clone()),
                    Value::Number(n) if n.is_i64() => {
                        IdValue::Integer(n.as_i64().unwrap_or_default())
                    }
                    other => {
                        return Err(QueryError::invalid(
                            field,
                            format!(
                                "expected a string or an integer, found {}",
                                json_kind(other)
                            ),
                        ));
                    }
                };
                Ok(Some(QueryRequest::Get { id }))
            }
        }
    }
}

/// The payload's `action`, if any, must name the action being run.
fn check_action_key(action: QueryAction, payload: &Map<String, Value>) -> Result<(), QueryError> {
    match payload.get("action") {
        None => Ok(()),
        Some(Value::String(s)) if s == action.as_str() => Ok(()),
        Some(other) => Err(QueryError::invalid(
            "action",
            format!(
                "this tool runs '{}', not {}; call the tool of that action instead",
                action.as_str(),
                other
            ),
        )),
    }
}

/// Rejects keys outside `allowed` (and `action`), naming all of them.
fn check_keys(payload: &Map<String, Value>, allowed: &[&str]) -> Result<(), QueryError> {
    let unknown: Vec<&str> = payload
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "action" && !allowed.contains(k))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let hint = match unknown.as_slice() {
        [one] => suggestion(one, allowed.iter().copied()),
        _ => String::new(),
    };
    let allowed_text = if allowed.is_empty() {
        "none".to_owned()
    } else {
        allowed.join(", ")
    };
    Err(QueryError::invalid(
        unknown.join(", "),
        format!("unknown argument{hint} (allowed: {allowed_text})"),
    ))
}

fn limit(payload: &Map<String, Value>, default: u32) -> Result<u32, QueryError> {
    match payload.get("limit") {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(l) if (1..=u64::from(MAX_LIMIT)).contains(&l) => Ok(l as u32),
            _ => Err(QueryError::invalid(
                "limit",
                format!(
                    "{n} is out of range: use an integer from 1 to {MAX_LIMIT} (default {default})"
                ),
            )),
        },
        Some(other) => Err(QueryError::invalid(
            "limit",
            format!(
                "expected an integer from 1 to {MAX_LIMIT}, found {}",
                json_kind(other)
            ),
        )),
    }
}

fn filter_value(name: &str, ty: FilterType, value: &Value) -> Result<FilterValue, QueryError> {
    let wrong = || {
        QueryError::invalid(
            name,
            format!("expected {}, found {}", article(ty), json_kind(value)),
        )
    };
    match (ty, value) {
        (FilterType::String, Value::String(s)) => {
            if s.chars().count() > MAX_VALUE_CHARS {
                Err(QueryError::invalid(
                    name,
                    format!("longer than {MAX_VALUE_CHARS} characters"),
                ))
            } else {
                Ok(FilterValue::Text(s.clone()))
            }
        }
        (FilterType::Integer, Value::Number(n)) => {
            n.as_i64().map(FilterValue::Integer).ok_or_else(wrong)
        }
        (FilterType::Number, Value::Number(n)) => Ok(match n.as_i64() {
            Some(i) => FilterValue::Integer(i),
            None => FilterValue::Real(n.as_f64().ok_or_else(wrong)?),
        }),
        (FilterType::Boolean, Value::Bool(b)) => Ok(FilterValue::Bool(*b)),
        _ => Err(wrong()),
    }
}

fn article(ty: FilterType) -> &'static str {
    match ty {
        FilterType::String => "a string",
        FilterType::Integer => "an integer",
        FilterType::Number => "a number",
        FilterType::Boolean => "a boolean",
    }
}

/// `a string`, `a number`… for messages.
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
