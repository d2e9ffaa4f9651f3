//! Query backend settings: `backend_config` parsed and validated into [`QueryConfig`].
//!
//! Every SQL fragment the original interpolated verbatim (table, columns, predicates,
//! aggregates, ORDER BY) is parsed here into typed values. Backends build SQL only
//! from those values, quoting every identifier, so configuration cannot smuggle SQL in
//! and payload values are always bound parameters.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `db_path` | required | database file, relative to the config file's directory |
//! | `table_name` | `documents` | table (or view) to query |
//! | `id_column` | `id` | key for `get` |
//! | `result_columns` | `["id"]` | columns returned by search, filter, get and vector_search |
//! | `json_columns` | `[]` | columns holding JSON text, parsed on read |
//! | `full_text_column` | `full_text` | added to `get` results; `null` disables it |
//! | `fts_fields` | `full_text,summary` | list or comma string: columns searched by `search` |
//! | `filter_fields` | `{}` | argument name → `"<column> <op> ?"`, `"<column> IS [NOT] NULL"` or `{column, op, type}` |
//! | `stats_groups` | `[]` | columns `stats` may group by; the first is the default |
//! | `stats_aggregates` | `["COUNT(*) AS record_count"]` | `COUNT(*)`, `COUNT(col)`, `SUM/AVG/MIN/MAX(col)`, each `AS alias` |
//! | `default_order_by` | `rowid` | `col [ASC\|DESC]`, comma-separated: ORDER BY of `filter` |
//! | `embedding_column` | `embedding` | stored vectors (JSON array text or f32 little-endian BLOB) |
//! | `embedding` | none | `{provider: openai\|ollama, url, model, api_key_env?, timeout_seconds?, batch_size?}`; `vector_search` needs it |
//! | `fts_extension` | none | DuckDB only: the FTS extension file (see the `duckdb` module); SQLite ignores it |

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::embed::{EmbeddingConfig, EmbeddingProvider};

/// `table_name` when `backend_config` does not say.
pub const DEFAULT_TABLE: &str = "documents";
/// `id_column` when `backend_config` does not say.
pub const DEFAULT_ID_COLUMN: &str = "id";
/// `full_text_column` when `backend_config` does not say.
pub const DEFAULT_FULL_TEXT_COLUMN: &str = "full_text";
/// `fts_fields` when `backend_config` does not say.
pub const DEFAULT_FTS_FIELDS: [&str; 2] = ["full_text", "summary"];
/// `stats_aggregates` when `backend_config` does not say.
pub const DEFAULT_AGGREGATE: &str = "COUNT(*) AS record_count";
/// `embedding_column` when `backend_config` does not say.
pub const DEFAULT_EMBEDDING_COLUMN: &str = "embedding";
/// `embedding.timeout_seconds` when not set.
pub const DEFAULT_EMBEDDING_TIMEOUT: Duration = Duration::from_secs(30);
/// `embedding.batch_size` when not set: texts per embedding request.
pub const DEFAULT_EMBEDDING_BATCH: usize = 64;
/// Largest accepted `embedding.batch_size`.
pub const MAX_EMBEDDING_BATCH: usize = 2048;
/// Longest accepted identifier, in bytes.
pub const MAX_IDENT_LEN: usize = 128;

/// Every key `backend_config` may hold.
pub const KNOWN_KEYS: &[&str] = &[
    "db_path",
    "table_name",
    "id_column",
    "result_columns",
    "json_columns",
    "full_text_column",
    "fts_fields",
    "filter_fields",
    "stats_groups",
    "stats_aggregates",
    "default_order_by",
    "embedding_column",
    "embedding",
    // Read by the DuckDB backend only (`duckdb::DuckDbOptions::from_backend_config`).
    "fts_extension",
];

/// Payload keys that filter fields may not use: they mean something else in every action.
pub const RESERVED_ARGUMENTS: &[&str] = &["limit", "action", "query", "group_by"];

/// One problem in `backend_config`, with the key path it is about
/// (`backend_config.filter_fields.min_score`), so a caller can point at the YAML line
/// with `loom_core::config::locate` after prefixing the entry's own path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// Dotted key path from `backend_config` down (`backend_config.result_columns[2]`).
    pub key_path: String,
    /// What is wrong, lowercase, naming the bad value.
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key_path, self.message)
    }
}

impl std::error::Error for ConfigProblem {}

/// A validated SQL identifier (`^[A-Za-z_][A-Za-z0-9_]*$`, at most [`MAX_IDENT_LEN`]
/// bytes). Backends always emit it [quoted](Ident::quoted).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ident(String);

impl Ident {
    /// Checks `name`; the error says why it is not an identifier.
    pub fn new(name: &str) -> Result<Ident, String> {
        let mut chars = name.chars();
        let valid_start = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !valid_start || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "'{name}' is not a valid identifier (letters, digits and _, not starting with a digit)"
            ));
        }
        if name.len() > MAX_IDENT_LEN {
            return Err(format!(
                "identifier '{name}' is longer than {MAX_IDENT_LEN} bytes"
            ));
        }
        Ok(Ident(name.to_owned()))
    }

    /// The name as configured.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name in double quotes, ready for SQL (valid identifiers hold no quotes).
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A comparison a filter field applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterOp {
    /// `=`
    Eq,
    /// `!=` (also written `<>`)
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `LIKE` (the value is the pattern)
    Like,
    /// `ILIKE`: case-insensitive `LIKE`
    ILike,
    /// `IS NULL` when the argument is `true`, `IS NOT NULL` when `false`
    IsNull,
    /// `IS NOT NULL` when the argument is `true`, `IS NULL` when `false`
    IsNotNull,
}

impl FilterOp {
    /// The operator as written in a template (`>=`, `LIKE`, `IS NULL`).
    pub fn as_str(self) -> &'static str {
        match self {
            FilterOp::Eq => "=",
            FilterOp::Ne => "!=",
            FilterOp::Lt => "<",
            FilterOp::Le => "<=",
            FilterOp::Gt => ">",
            FilterOp::Ge => ">=",
            FilterOp::Like => "LIKE",
            FilterOp::ILike => "ILIKE",
            FilterOp::IsNull => "IS NULL",
            FilterOp::IsNotNull => "IS NOT NULL",
        }
    }

    fn parse(s: &str) -> Option<FilterOp> {
        Some(match s.to_ascii_uppercase().as_str() {
            "=" | "==" | "EQ" => FilterOp::Eq,
            "!=" | "<>" | "NE" => FilterOp::Ne,
            "<" | "LT" => FilterOp::Lt,
            "<=" | "LE" => FilterOp::Le,
            ">" | "GT" => FilterOp::Gt,
            ">=" | "GE" => FilterOp::Ge,
            "LIKE" => FilterOp::Like,
            "ILIKE" => FilterOp::ILike,
            "IS NULL" | "IS_NULL" => FilterOp::IsNull,
            "IS NOT NULL" | "IS_NOT_NULL" => FilterOp::IsNotNull,
            _ => return None,
        })
    }

    /// Whether the argument is a flag choosing the predicate or its negation.
    pub fn is_null_test(self) -> bool {
        matches!(self, FilterOp::IsNull | FilterOp::IsNotNull)
    }
}

/// The JSON type a filter argument must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterType {
    /// A JSON string.
    String,
    /// A JSON integer.
    Integer,
    /// Any JSON number.
    Number,
    /// `true` or `false` (bound as 1 or 0).
    Boolean,
}

impl FilterType {
    /// The JSON Schema `type`.
    pub fn as_str(self) -> &'static str {
        match self {
            FilterType::String => "string",
            FilterType::Integer => "integer",
            FilterType::Number => "number",
            FilterType::Boolean => "boolean",
        }
    }

    fn parse(s: &str) -> Option<FilterType> {
        Some(match s.to_ascii_uppercase().as_str() {
            "STRING" | "TEXT" | "VARCHAR" => FilterType::String,
            "INTEGER" | "INT" | "BIGINT" => FilterType::Integer,
            "NUMBER" | "REAL" | "DOUBLE" | "FLOAT" | "NUMERIC" | "DECIMAL" => FilterType::Number,
            "BOOLEAN" | "BOOL" => FilterType::Boolean,
            _ => return None,
        })
    }
}

/// One entry of `filter_fields`: payload argument `name` applies `column op ?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterField {
    /// The payload argument (and input-schema property).
    pub name: Ident,
    /// The column compared.
    pub column: Ident,
    /// The comparison.
    pub op: FilterOp,
    /// The argument's JSON type.
    pub value_type: FilterType,
}

/// An aggregate function allowed in `stats_aggregates`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggregateFn {
    /// `COUNT`
    Count,
    /// `SUM`
    Sum,
    /// `AVG`
    Avg,
    /// `MIN`
    Min,
    /// `MAX`
    Max,
}

impl AggregateFn {
    /// The SQL name.
    pub fn as_str(self) -> &'static str {
        match self {
            AggregateFn::Count => "COUNT",
            AggregateFn::Sum => "SUM",
            AggregateFn::Avg => "AVG",
            AggregateFn::Min => "MIN",
            AggregateFn::Max => "MAX",
        }
    }
}

/// One entry of `stats_aggregates`: `FUNC(column) AS alias`, or `COUNT(*) AS alias`
/// when `column` is `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    /// The function.
    pub function: AggregateFn,
    /// The column, `None` for `COUNT(*)`.
    pub column: Option<Ident>,
    /// The output key.
    pub alias: Ident,
}

impl Aggregate {
    /// The SQL select item, every identifier quoted: `SUM("score") AS "total_score"`.
    pub fn sql(&self) -> String {
        let arg = self
            .column
            .as_ref()
            .map_or_else(|| "*".to_owned(), Ident::quoted);
        format!(
            "{}({arg}) AS {}",
            self.function.as_str(),
            self.alias.quoted()
        )
    }
}

/// One key of `default_order_by`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderBy {
    /// The column (`rowid` is allowed).
    pub column: Ident,
    /// `DESC` when true.
    pub descending: bool,
}

impl OrderBy {
    /// The SQL ORDER BY item: `"year" DESC`.
    pub fn sql(&self) -> String {
        let dir = if self.descending { "DESC" } else { "ASC" };
        format!("{} {dir}", self.column.quoted())
    }
}

/// Validated `backend_config` of a query backend (see the module docs for every key).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct QueryConfig {
    /// The database file, resolved against the base directory.
    pub db_path: PathBuf,
    /// The table (or view) queried.
    pub table_name: Ident,
    /// The key column of `get`.
    pub id_column: Ident,
    /// Columns in results, in order (never empty).
    pub result_columns: Vec<Ident>,
    /// Columns whose JSON text is parsed on read.
    pub json_columns: Vec<Ident>,
    /// Column added to `get` results, if any.
    pub full_text_column: Option<Ident>,
    /// Columns `search` looks in.
    pub fts_fields: Vec<Ident>,
    /// Filter arguments, in config order.
    pub filter_fields: Vec<FilterField>,
    /// Columns `stats` may group by; the first is the default.
    pub stats_groups: Vec<Ident>,
    /// `stats` aggregates (never empty); results are ordered by the first, descending.
    pub stats_aggregates: Vec<Aggregate>,
    /// ORDER BY of `filter`; empty means the backend's natural order (`rowid`).
    pub default_order_by: Vec<OrderBy>,
    /// Column holding stored embeddings.
    pub embedding_column: Ident,
    /// The embedding endpoint of `vector_search` (from config only, never the payload).
    pub embedding: Option<EmbeddingConfig>,
}

impl QueryConfig {
    /// Parses and validates `backend_config`, resolving a relative `db_path` against
    /// `base_dir` (the directory of the config file that holds it).
    ///
    /// Returns every problem at once, each with its key path.
    ///
    /// ```
    /// use loom_query::config::QueryConfig;
    /// use serde_json::json;
    ///
    /// let map = json!({"db_path": "docs.db", "filter_fields": {"min_score": "score >= ?"}});
    /// let config = QueryConfig::from_backend_config(map.as_object().unwrap(), "/data".as_ref()).unwrap();
    /// assert_eq!(config.db_path, std::path::Path::new("/data/docs.db"));
    ///
    /// let bad = json!({"db_path": "x.db", "table_name": "docs; DROP", "stats_aggregates": ["1"]});
    /// let problems = QueryConfig::from_backend_config(bad.as_object().unwrap(), "/".as_ref()).unwrap_err();
    /// assert_eq!(problems.len(), 2);
    /// ```
    pub fn from_backend_config(
        map: &Map<String, Value>,
        base_dir: &Path,
    ) -> Result<QueryConfig, Vec<ConfigProblem>> {
        let mut p = Problems::default();
        for key in map.keys() {
            if !KNOWN_KEYS.contains(&key.as_str()) {
                let hint = loom_core::config::suggestion(key, KNOWN_KEYS.iter().copied());
                p.push(
                    key,
                    format!(
                        "unknown key '{key}'{hint} (known: {})",
                        KNOWN_KEYS.join(", ")
                    ),
                );
            }
        }
        let db_path = match map.get("db_path") {
            Some(Value::String(s)) if !s.trim().is_empty() => Some(base_dir.join(s)),
            Some(Value::String(_)) | None | Some(Value::Null) => {
                p.push(
                    "db_path",
                    "required: the database file (relative to the config file)",
                );
                None
            }
            Some(other) => {
                p.push(
                    "db_path",
                    format!("expected a string, found {}", kind(other)),
                );
                None
            }
        };
        let default = |s: &str| Ident(s.to_owned());
        let table_name = p
            .ident_or(map, "table_name")
            .unwrap_or_else(|| default(DEFAULT_TABLE));
        let id_column = p
            .ident_or(map, "id_column")
            .unwrap_or_else(|| default(DEFAULT_ID_COLUMN));
        let result_columns = p
            .ident_list(map, "result_columns", false)
            .unwrap_or_else(|| vec![id_column.clone()]);
        let json_columns = p.ident_list(map, "json_columns", true).unwrap_or_default();
        let full_text_column = match map.get("full_text_column") {
            None => Some(default(DEFAULT_FULL_TEXT_COLUMN)),
            Some(Value::Null) => None,
            Some(_) => p.ident_or(map, "full_text_column"),
        };
        let fts_fields = p
            .ident_list(map, "fts_fields", true)
            .unwrap_or_else(|| DEFAULT_FTS_FIELDS.iter().map(|s| default(s)).collect());
        let filter_fields = p.filter_fields(map);
        let stats_groups = p.ident_list(map, "stats_groups", true).unwrap_or_default();
        let stats_aggregates = p
            .aggregates(map, &stats_groups)
            .unwrap_or_else(|| parse_aggregate(DEFAULT_AGGREGATE).into_iter().collect());
        let default_order_by = p.order_by(map);
        let embedding_column = p
            .ident_or(map, "embedding_column")
            .unwrap_or_else(|| default(DEFAULT_EMBEDDING_COLUMN));
        let embedding = p.embedding(map);

        match (db_path, p.0.is_empty()) {
            (Some(db_path), true) => Ok(QueryConfig {
                db_path,
                table_name,
                id_column,
                result_columns,
                json_columns,
                full_text_column,
                fts_fields,
                filter_fields,
                stats_groups,
                stats_aggregates,
                default_order_by,
                embedding_column,
                embedding,
            }),
            _ => Err(p.0),
        }
    }

    /// The filter field named `name`, if configured.
    pub fn filter_field(&self, name: &str) -> Option<&FilterField> {
        self.filter_fields.iter().find(|f| f.name.as_str() == name)
    }

    /// Columns of `get` results: the result columns, then the full-text column unless
    /// it is one of them already.
    pub fn document_columns(&self) -> Vec<Ident> {
        let mut columns = self.result_columns.clone();
        if let Some(full) = &self.full_text_column
            && !columns.contains(full)
        {
            columns.push(full.clone());
        }
        columns
    }

    /// Every column the configuration refers to, each once, with the first key path that
    /// names it (for checking them against the table when a backend opens).
    pub fn referenced_columns(&self) -> Vec<(Ident, String)> {
        let mut out: Vec<(Ident, String)> = Vec::new();
        let mut add = |c: &Ident, key: String| {
            if c.as_str() != "rowid" && !out.iter().any(|(o, _)| o == c) {
                out.push((c.clone(), key));
            }
        };
        add(&self.id_column, "backend_config.id_column".into());
        for (i, c) in self.result_columns.iter().enumerate() {
            add(c, format!("backend_config.result_columns[{i}]"));
        }
        for (i, c) in self.json_columns.iter().enumerate() {
            add(c, format!("backend_config.json_columns[{i}]"));
        }
        if let Some(c) = &self.full_text_column {
            add(c, "backend_config.full_text_column".into());
        }
        for (i, c) in self.fts_fields.iter().enumerate() {
            add(c, format!("backend_config.fts_fields[{i}]"));
        }
        for f in &self.filter_fields {
            add(
                &f.column,
                format!("backend_config.filter_fields.{}", f.name),
            );
        }
        for (i, c) in self.stats_groups.iter().enumerate() {
            add(c, format!("backend_config.stats_groups[{i}]"));
        }
        for (i, a) in self.stats_aggregates.iter().enumerate() {
            if let Some(c) = &a.column {
                add(c, format!("backend_config.stats_aggregates[{i}]"));
            }
        }
        for (i, o) in self.default_order_by.iter().enumerate() {
            add(&o.column, format!("backend_config.default_order_by[{i}]"));
        }
        out
    }
}

/// Collects problems; key paths are relative to `backend_config`.
#[derive(Default)]
struct Problems(Vec<ConfigProblem>);

impl Problems {
    fn push(&mut self, key: &str, message: impl Into<String>) {
        self.0.push(ConfigProblem {
            key_path: format!("backend_config.{key}"),
            message: message.into(),
        });
    }

    /// An identifier at `key`; `None` when absent or bad (bad ones are recorded).
    fn ident_or(&mut self, map: &Map<String, Value>, key: &str) -> Option<Ident> {
        match map.get(key)? {
            Value::String(s) => self.ident(key, s.trim()),
            other => {
                self.push(key, format!("expected a string, found {}", kind(other)));
                None
            }
        }
    }

    fn ident(&mut self, key: &str, s: &str) -> Option<Ident> {
        Ident::new(s).map_err(|e| self.push(key, e)).ok()
    }

    /// A list of identifiers (a YAML list or a comma string); `None` when absent or bad.
    fn ident_list(
        &mut self,
        map: &Map<String, Value>,
        key: &str,
        allow_empty: bool,
    ) -> Option<Vec<Ident>> {
        let items: Vec<(String, String)> = match map.get(key)? {
            Value::String(s) => s
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .enumerate()
                .map(|(i, s)| (format!("{key}[{i}]"), s.to_owned()))
                .collect(),
            Value::Array(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push((format!("{key}[{i}]"), s.trim().to_owned())),
                        other => self.push(
                            &format!("{key}[{i}]"),
                            format!("expected a column name, found {}", kind(other)),
                        ),
                    }
                }
                out
            }
            Value::Null => Vec::new(),
            other => {
                self.push(
                    key,
                    format!(
                        "expected a list of column names or a comma-separated string, found {}",
                        kind(other)
                    ),
                );
                return None;
            }
        };
        let before = self.0.len();
        let mut out: Vec<Ident> = Vec::new();
        for (path, s) in items {
            if let Some(id) = self.ident(&path, &s) {
                if out.contains(&id) {
                    self.push(&path, format!("'{id}' is listed twice"));
                } else {
                    out.push(id);
                }
            }
        }
        if out.is_empty() && !allow_empty && self.0.len() == before {
            self.push(key, "list at least one column");
        }
        // With problems the whole config fails; the valid part still serves cross-checks.
        Some(out)
    }

    fn filter_fields(&mut self, map: &Map<String, Value>) -> Vec<FilterField> {
        let mut out = Vec::new();
        let entries: Vec<(String, Value)> = match map.get("filter_fields") {
            None | Some(Value::Null) => return out,
            Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            // A list of names means equality on the column of the same name.
            Some(Value::Array(items)) => {
                let mut entries = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => entries.push((s.clone(), Value::Null)),
                        other => self.push(
                            &format!("filter_fields[{i}]"),
                            format!("expected a field name, found {}", kind(other)),
                        ),
                    }
                }
                entries
            }
            Some(other) => {
                self.push(
                    "filter_fields",
                    format!(
                        "expected a mapping of argument name to predicate, found {}",
                        kind(other)
                    ),
                );
                return out;
            }
        };
        for (name, spec) in entries {
            let key = format!("filter_fields.{name}");
            let Some(name_id) = self.ident(&key, &name) else {
                continue;
            };
            if RESERVED_ARGUMENTS.contains(&name.as_str()) {
                self.push(
                    &key,
                    format!(
                        "'{name}' is reserved (reserved: {}); rename the argument",
                        RESERVED_ARGUMENTS.join(", ")
                    ),
                );
                continue;
            }
            let parsed = match &spec {
                Value::Null => Ok((name_id.clone(), FilterOp::Eq, None)),
                Value::String(template) => parse_predicate(template),
                Value::Object(m) => structured_filter(&name_id, m),
                other => Err(format!(
                    "expected a predicate like \"score >= ?\" or {{column, op, type}}, found {}",
                    kind(other)
                )),
            };
            match parsed {
                Ok((column, op, explicit_type)) => {
                    let value_type =
                        explicit_type.unwrap_or_else(|| infer_type(name_id.as_str(), op));
                    if op.is_null_test() && value_type != FilterType::Boolean {
                        self.push(&key, format!("'{}' takes a boolean argument", op.as_str()));
                        continue;
                    }
                    out.push(FilterField {
                        name: name_id,
                        column,
                        op,
                        value_type,
                    });
                }
                Err(e) => self.push(&key, e),
            }
        }
        out
    }
}

/// Parses the structured filter form `{column, op, type}`.
fn structured_filter(
    name: &Ident,
    m: &Map<String, Value>,
) -> Result<(Ident, FilterOp, Option<FilterType>), String> {
    for k in m.keys() {
        if !["column", "op", "type"].contains(&k.as_str()) {
            return Err(format!("unknown key '{k}' (known: column, op, type)"));
        }
    }
    let column = match m.get("column") {
        None => name.clone(),
        Some(Value::String(s)) => Ident::new(s.trim())?,
        Some(other) => return Err(format!("column: expected a string, found {}", kind(other))),
    };
    let op = match m.get("op") {
            None => FilterOp::Eq,
            Some(Value::String(s)) => FilterOp::parse(s.trim()).ok_or_else(|| {
                format!("op: unknown operator '{s}' (allowed: =, !=, <, <=, >, >=, LIKE, ILIKE, IS NULL, IS NOT NULL)")
            })?,
            Some(other) => return Err(format!("op: expected a string, found {}", kind(other))),
        };
    let ty = match m.get("type") {
        None => None,
        Some(Value::String(s)) => Some(FilterType::parse(s.trim()).ok_or_else(|| {
            format!("type: unknown type '{s}' (allowed: string, integer, number, boolean)")
        })?),
        Some(other) => return Err(format!("type: expected a string, found {}", kind(other))),
    };
    Ok((column, op, ty))
}

impl Problems {
    fn aggregates(&mut self, map: &Map<String, Value>, groups: &[Ident]) -> Option<Vec<Aggregate>> {
        let items: Vec<Value> = match map.get("stats_aggregates")? {
            Value::Array(items) => items.clone(),
            Value::String(s) => vec![Value::String(s.clone())],
            Value::Null => return None,
            other => {
                self.push(
                    "stats_aggregates",
                    format!(
                        "expected a list like [\"COUNT(*) AS record_count\"], found {}",
                        kind(other)
                    ),
                );
                return None;
            }
        };
        let before = self.0.len();
        let mut out: Vec<Aggregate> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let key = format!("stats_aggregates[{i}]");
            match item {
                Value::String(s) => match parse_aggregate(s) {
                    Ok(a) if out.iter().any(|o| o.alias == a.alias) => {
                        self.push(&key, format!("alias '{}' is used twice", a.alias));
                    }
                    Ok(a) if groups.contains(&a.alias) => {
                        self.push(
                            &key,
                            format!(
                                "alias '{}' is also a stats group; pick another alias",
                                a.alias
                            ),
                        );
                    }
                    Ok(a) => out.push(a),
                    Err(e) => self.push(&key, e),
                },
                other => self.push(&key, format!("expected a string, found {}", kind(other))),
            }
        }
        if out.is_empty() && self.0.len() == before {
            self.push("stats_aggregates", "list at least one aggregate");
        }
        (self.0.len() == before).then_some(out)
    }

    fn order_by(&mut self, map: &Map<String, Value>) -> Vec<OrderBy> {
        let text = match map.get("default_order_by") {
            None | Some(Value::Null) => return Vec::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => {
                self.push(
                    "default_order_by",
                    format!(
                        "expected a string like \"year DESC\", found {}",
                        kind(other)
                    ),
                );
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for part in text.split(',') {
            let words: Vec<&str> = part.split_whitespace().collect();
            let parsed = match words.as_slice() {
                [col] => Ident::new(col).map(|c| (c, false)),
                [col, dir] if dir.eq_ignore_ascii_case("asc") => {
                    Ident::new(col).map(|c| (c, false))
                }
                [col, dir] if dir.eq_ignore_ascii_case("desc") => {
                    Ident::new(col).map(|c| (c, true))
                }
                _ => Err(format!("'{}' is not 'column [ASC|DESC]'", part.trim())),
            };
            match parsed {
                Ok((column, descending)) => out.push(OrderBy { column, descending }),
                Err(e) => self.push("default_order_by", e),
            }
        }
        out
    }

    fn embedding(&mut self, map: &Map<String, Value>) -> Option<EmbeddingConfig> {
        let m = match map.get("embedding")? {
            Value::Object(m) => m,
            Value::Null => return None,
            other => {
                self.push(
                    "embedding",
                    format!(
                        "expected a mapping {{provider, url, model}}, found {}",
                        kind(other)
                    ),
                );
                return None;
            }
        };
        const KEYS: &[&str] = &[
            "provider",
            "url",
            "model",
            "api_key_env",
            "timeout_seconds",
            "batch_size",
        ];
        let before = self.0.len();
        for k in m.keys() {
            if !KEYS.contains(&k.as_str()) {
                let hint = loom_core::config::suggestion(k, KEYS.iter().copied());
                self.push(
                    &format!("embedding.{k}"),
                    format!("unknown key '{k}'{hint} (known: {})", KEYS.join(", ")),
                );
            }
        }
        let string = |p: &mut Problems, k: &str, required: bool| -> Option<String> {
            match m.get(k) {
                Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
                None | Some(Value::Null) if !required => None,
                None | Some(Value::Null) | Some(Value::String(_)) => {
                    p.push(&format!("embedding.{k}"), "required");
                    None
                }
                Some(other) => {
                    p.push(
                        &format!("embedding.{k}"),
                        format!("expected a string, found {}", kind(other)),
                    );
                    None
                }
            }
        };
        let provider = string(self, "provider", true).and_then(|s| match s.as_str() {
            "openai" => Some(EmbeddingProvider::OpenAi),
            "ollama" => Some(EmbeddingProvider::Ollama),
            other => {
                self.push(
                    "embedding.provider",
                    format!("unknown provider '{other}' (allowed: openai, ollama)"),
                );
                None
            }
        });
        let url = string(self, "url", true).and_then(|u| {
            let lower = u.to_ascii_lowercase();
            let rest = lower
                .strip_prefix("http://")
                .or_else(|| lower.strip_prefix("https://"));
            if rest.is_some_and(|r| !r.is_empty() && !r.starts_with('/')) {
                Some(u)
            } else {
                self.push(
                    "embedding.url",
                    format!("'{u}' is not an http:// or https:// URL"),
                );
                None
            }
        });
        let model = string(self, "model", true);
        let api_key_env = string(self, "api_key_env", false).and_then(|v| {
            if v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                Some(v)
            } else {
                self.push(
                    "embedding.api_key_env",
                    format!("'{v}' is not an environment variable name"),
                );
                None
            }
        });
        let timeout = match m.get("timeout_seconds") {
            None | Some(Value::Null) => DEFAULT_EMBEDDING_TIMEOUT,
            Some(v) => match v.as_f64() {
                Some(s) if s > 0.0 && s <= 3600.0 => Duration::from_secs_f64(s),
                _ => {
                    self.push(
                        "embedding.timeout_seconds",
                        format!("expected a number of seconds in (0, 3600], found {v}"),
                    );
                    DEFAULT_EMBEDDING_TIMEOUT
                }
            },
        };
        let batch_size = match m.get("batch_size") {
            None | Some(Value::Null) => DEFAULT_EMBEDDING_BATCH,
            Some(v) => match v.as_u64() {
                Some(n) if (1..=MAX_EMBEDDING_BATCH as u64).contains(&n) => n as usize,
                _ => {
                    self.push(
                        "embedding.batch_size",
                        format!("expected an integer in 1..={MAX_EMBEDDING_BATCH}, found {v}"),
                    );
                    DEFAULT_EMBEDDING_BATCH
                }
            },
        };
        if self.0.len() != before {
            return None;
        }
        let mut config = EmbeddingConfig::new(provider?, url?, model?)
            .with_timeout(timeout)
            .with_batch_size(batch_size);
        if let Some(env) = api_key_env {
            config = config.with_api_key_env(env);
        }
        Some(config)
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// The default type of a filter argument: booleans for null tests and `has_` names
/// (as the original's gateway guessed), numbers for range comparisons (the original said
/// `integer`, which rejected `min_score: 0.5`), strings otherwise.
fn infer_type(name: &str, op: FilterOp) -> FilterType {
    match op {
        FilterOp::IsNull | FilterOp::IsNotNull => FilterType::Boolean,
        _ if name.starts_with("has_") => FilterType::Boolean,
        FilterOp::Lt | FilterOp::Le | FilterOp::Gt | FilterOp::Ge => FilterType::Number,
        _ => FilterType::String,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Sym(String),
    Question,
    LParen,
    RParen,
    Star,
}

fn tokenize(s: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Word(chars[start..i].iter().collect()));
        } else if "=<>!".contains(c) {
            let start = i;
            while i < chars.len() && "=<>!".contains(chars[i]) {
                i += 1;
            }
            out.push(Token::Sym(chars[start..i].iter().collect()));
        } else {
            out.push(match c {
                '?' => Token::Question,
                '(' => Token::LParen,
                ')' => Token::RParen,
                '*' => Token::Star,
                other => return Err(format!("unexpected character '{other}'")),
            });
            i += 1;
        }
    }
    Ok(out)
}

fn word_is(t: &Token, w: &str) -> bool {
    matches!(t, Token::Word(x) if x.eq_ignore_ascii_case(w))
}

/// Parses a predicate template into `(column, op, explicit type)`.
fn parse_predicate(template: &str) -> Result<(Ident, FilterOp, Option<FilterType>), String> {
    let usage = || {
        format!(
            "'{template}' is not a predicate of the form \"<column> <op> ?\" (op: =, !=, <, <=, >, >=, LIKE, ILIKE; the value may be CAST(? AS <type>)) or \"<column> IS [NOT] NULL\""
        )
    };
    let tokens = tokenize(template).map_err(|e| format!("{}: {e}", usage()))?;
    let Some(Token::Word(col)) = tokens.first() else {
        return Err(usage());
    };
    let column = Ident::new(col).map_err(|e| format!("{}: {e}", usage()))?;
    let rest = &tokens[1..];
    // `IS [NOT] NULL`
    match rest {
        [a, b] if word_is(a, "is") && word_is(b, "null") => {
            return Ok((column, FilterOp::IsNull, None));
        }
        [a, b, c] if word_is(a, "is") && word_is(b, "not") && word_is(c, "null") => {
            return Ok((column, FilterOp::IsNotNull, None));
        }
        _ => {}
    }
    let Some(op_token) = rest.first() else {
        return Err(usage());
    };
    let op = match op_token {
        Token::Sym(s) => FilterOp::parse(s),
        Token::Word(w) if w.eq_ignore_ascii_case("like") || w.eq_ignore_ascii_case("ilike") => {
            FilterOp::parse(w)
        }
        _ => None,
    }
    .filter(|op| !op.is_null_test())
    .ok_or_else(usage)?;
    match &rest[1..] {
        [Token::Question] => Ok((column, op, None)),
        [
            c,
            Token::LParen,
            Token::Question,
            a,
            Token::Word(ty),
            Token::RParen,
        ] if word_is(c, "cast") && word_is(a, "as") => {
            let ty = FilterType::parse(ty)
                .ok_or_else(|| format!("{}: unknown type '{ty}' in CAST", usage()))?;
            Ok((column, op, Some(ty)))
        }
        _ => Err(usage()),
    }
}

/// Parses `FUNC(col|*) AS alias`.
fn parse_aggregate(s: &str) -> Result<Aggregate, String> {
    let usage = || {
        format!(
            "'{s}' is not an allowed aggregate: use COUNT(*), COUNT(col), SUM(col), AVG(col), MIN(col) or MAX(col), followed by AS alias"
        )
    };
    let tokens = tokenize(s).map_err(|e| format!("{}: {e}", usage()))?;
    let [
        Token::Word(func),
        Token::LParen,
        arg,
        Token::RParen,
        as_kw,
        Token::Word(alias),
    ] = tokens.as_slice()
    else {
        return Err(usage());
    };
    if !word_is(as_kw, "as") {
        return Err(usage());
    }
    let function = match func.to_ascii_uppercase().as_str() {
        "COUNT" => AggregateFn::Count,
        "SUM" => AggregateFn::Sum,
        "AVG" => AggregateFn::Avg,
        "MIN" => AggregateFn::Min,
        "MAX" => AggregateFn::Max,
        _ => return Err(usage()),
    };
    let column = match arg {
        Token::Star if function == AggregateFn::Count => None,
        Token::Word(c) => Some(Ident::new(c).map_err(|e| format!("{}: {e}", usage()))?),
        _ => return Err(usage()),
    };
    let alias = Ident::new(alias).map_err(|e| format!("{}: {e}", usage()))?;
    Ok(Aggregate {
        function,
        column,
        alias,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predicates_parse_into_typed_conditions() {
        let p = |s| parse_predicate(s).map(|(c, op, t)| (c.0, op, t));
        assert_eq!(p("score >= ?"), Ok(("score".into(), FilterOp::Ge, None)));
        assert_eq!(
            p("  title ilike ? "),
            Ok(("title".into(), FilterOp::ILike, None))
        );
        assert_eq!(p("a<>?"), Ok(("a".into(), FilterOp::Ne, None)));
        assert_eq!(
            p("flag = CAST(? AS BOOLEAN)"),
            Ok(("flag".into(), FilterOp::Eq, Some(FilterType::Boolean)))
        );
        assert_eq!(
            p("summary IS NOT NULL"),
            Ok(("summary".into(), FilterOp::IsNotNull, None))
        );
        for bad in [
            "score >= ? OR 1=1",
            "score >= 5",
            "score; DROP TABLE x",
            "? = score",
            "score IS ?",
            "lower(title) = ?",
            "score => ?",
            "",
        ] {
            assert!(p(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn aggregates_allow_only_the_whitelist() {
        assert_eq!(
            parse_aggregate("count(*) as n").map(|a| a.sql()),
            Ok("COUNT(*) AS \"n\"".to_owned())
        );
        assert_eq!(
            parse_aggregate("AVG(score) AS avg_score").map(|a| a.sql()),
            Ok("AVG(\"score\") AS \"avg_score\"".to_owned())
        );
        for bad in [
            "COUNT(*)",
            "SUM(*) AS s",
            "group_concat(title) AS t",
            "SUM(score) AS s, (SELECT 1) AS x",
            "SUM(score)+1 AS s",
        ] {
            assert!(parse_aggregate(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn identifiers_are_strict() {
        assert!(Ident::new("documents").is_ok());
        assert!(Ident::new("_x9").is_ok());
        for bad in ["", "9a", "a b", "a\"b", "a;b", "docs--", "é"] {
            assert!(Ident::new(bad).is_err(), "{bad:?}");
        }
    }
}
