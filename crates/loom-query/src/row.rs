//! Output shapes shared by every backend: `{results, total}`, `{document}`, and the
//! parsing of `json_columns` on read.

use serde_json::{Map, Value};

use crate::config::Ident;

/// `{results: [], total: 0}`: the answer to a blank query.
pub fn empty_results() -> Map<String, Value> {
    results(Vec::new(), 0)
}

/// `{results: rows, total}`.
pub fn results(rows: Vec<Map<String, Value>>, total: u64) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert(
        "results".to_owned(),
        Value::Array(rows.into_iter().map(Value::Object).collect()),
    );
    out.insert("total".to_owned(), Value::from(total));
    out
}

/// `{document: row}`.
pub fn document(row: Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("document".to_owned(), Value::Object(row));
    out
}

/// Parses the string values of `json_columns` in `row` as JSON; values that are not
/// valid JSON are left as they are (as the original did).
pub fn parse_json_columns(row: &mut Map<String, Value>, json_columns: &[Ident]) {
    for column in json_columns {
        if let Some(value) = row.get_mut(column.as_str())
            && let Value::String(text) = value
            && let Ok(parsed) = serde_json::from_str::<Value>(text)
        {
            *value = parsed;
        }
    }
}

/// A JSON number for `x`, or `null` when it is not finite.
pub fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}
