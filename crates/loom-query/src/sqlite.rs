//! The SQLite backend (rusqlite, bundled): the embedded default.
//!
//! * Connections are read-only (`SQLITE_OPEN_READ_ONLY` plus `PRAGMA query_only`), kept in
//!   a small pool, and every operation runs in one `spawn_blocking` closure.
//! * SQL is built only from the validated [`QueryConfig`], identifiers quoted; every
//!   payload value (query, filter values, id, limit) is a bound parameter.
//! * `search` uses the FTS5 table `<table>_fts` (as [`ingest`](crate::ingest()) builds it):
//!   BM25 ranking (`score` is `-bm25`, higher is better) and a `snippet` with matches in
//!   `**bold**`. The user's query never reaches FTS5 as syntax: it is split into words
//!   (runs of letters and digits), each word becomes a quoted FTS5 string, and the words
//!   are joined with `OR` (the original's bag-of-words BM25). So `NEAR(`, `*`, `"`, `:`,
//!   `AND`/`OR`/`NOT` and column filters are plain words or separators, never operators.
//!   A query with no words answers no results. Without a usable FTS table (none, one
//!   missing an `fts_fields` column, or a view) search falls back to `LIKE '%query%'`
//!   over `fts_fields` (wildcards in the query escaped), newest id first, score 0.
//! * `LIKE` and `ILIKE` filters both use SQLite's `LIKE`, which ignores ASCII case.
//! * `vector_search` embeds the query at the configured endpoint, then scans the
//!   embedding column (f32 little-endian BLOBs as ingest writes them, or JSON arrays)
//!   and keeps the top k by cosine similarity in Rust; rows whose vector has another
//!   length than the query's are skipped.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use loom_core::config::QueryAction;
use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params_from_iter};
use serde_json::{Map, Value};

use crate::backend::{QueryBackend, QueryError, supported_actions};
use crate::config::{FilterOp, Ident, QueryConfig};
use crate::embed::Embedder;
use crate::request::{Condition, FilterValue, IdValue, QueryRequest};
use crate::row::{self, number};
use crate::vector::{TopK, cosine, decode_blob, decode_json};

/// Idle read-only connections kept for reuse.
const POOL_SIZE: usize = 4;
/// How long a query waits for a writer (an ingest) to release the database.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Prepared statements cached per connection.
const STATEMENT_CACHE: usize = 64;
/// Most groups `stats` returns.
pub const MAX_STATS_GROUPS: usize = 1000;
/// Most distinct words of a search query passed to FTS5.
pub const MAX_SEARCH_TERMS: usize = 64;
/// Words in a search snippet.
const SNIPPET_TOKENS: u32 = 16;
/// Characters on each side of the match in a fallback (`LIKE`) snippet.
const LIKE_SNIPPET_CONTEXT: usize = 60;

/// A query backend over one SQLite table.
///
/// ```no_run
/// use loom_core::config::QueryAction;
/// use loom_query::{QueryBackend, SqliteBackend, config::QueryConfig};
/// use serde_json::json;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let map = json!({"db_path": "docs.db", "result_columns": ["id", "title"]});
/// let config = QueryConfig::from_backend_config(map.as_object().unwrap(), ".".as_ref())
///     .map_err(|p| format!("{p:?}"))?;
/// let backend = SqliteBackend::open(config).await?;
/// let args = json!({"query": "budget review", "limit": 5});
/// let output = backend.execute(QueryAction::Search, args.as_object().unwrap()).await?;
/// assert!(output["results"].is_array());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SqliteBackend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: QueryConfig,
    actions: Vec<QueryAction>,
    pool: Mutex<Vec<Connection>>,
    embedder: Option<Embedder>,
    search: SearchPlan,
    /// Views have no rowid: no FTS join, no two-step filter pages.
    is_view: bool,
}

/// How `search` runs, decided when the backend opens.
#[derive(Debug)]
enum SearchPlan {
    /// FTS5 `MATCH` over `<table>_fts`; `columns` is the column filter when the FTS
    /// table has more columns than `fts_fields`.
    Fts {
        sql: String,
        columns: Option<String>,
    },
    /// `LIKE` over `fts_fields`.
    Like { sql: String },
}

impl SqliteBackend {
    /// Opens `config.db_path` read-only and checks the table and every configured column,
    /// reporting all missing columns at once; builds the embedder when `embedding` is set.
    pub async fn open(config: QueryConfig) -> Result<SqliteBackend, QueryError> {
        let embedder = config.embedding.as_ref().map(Embedder::new).transpose()?;
        let inner = tokio::task::spawn_blocking(move || -> Result<Inner, QueryError> {
            let operation = format!("opening {}", config.db_path.display());
            if !config.db_path.is_file() {
                return Err(QueryError::database(
                    operation,
                    "the database file does not exist (create it with `loom query ingest`)",
                ));
            }
            let conn = open_connection(&config.db_path)
                .map_err(|e| QueryError::database(&operation, e))?;
            let (search, is_view) =
                inspect(&conn, &config).map_err(|m| QueryError::database(&operation, m))?;
            Ok(Inner {
                actions: supported_actions(&config),
                config,
                pool: Mutex::new(vec![conn]),
                embedder,
                search,
                is_view,
            })
        })
        .await
        .map_err(|e| QueryError::database("opening the database", e))??;
        Ok(SqliteBackend {
            inner: Arc::new(inner),
        })
    }

    /// The configuration the backend was opened with.
    pub fn config(&self) -> &QueryConfig {
        &self.inner.config
    }

    /// Whether `search` uses the FTS5 index (false: the `LIKE` fallback).
    pub fn has_fts(&self) -> bool {
        matches!(self.inner.search, SearchPlan::Fts { .. })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        action: QueryAction,
        f: impl FnOnce(&Inner, &Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, QueryError> {
        let inner = Arc::clone(&self.inner);
        let operation = format!("running {}", action.as_str());
        tokio::task::spawn_blocking(move || {
            let conn = match lock(&inner.pool).pop() {
                Some(c) => c,
                None => open_connection(&inner.config.db_path)
                    .map_err(|e| QueryError::database(&operation, e))?,
            };
            let result = f(&inner, &conn).map_err(|e| QueryError::database(&operation, e));
            let mut pool = lock(&inner.pool);
            if pool.len() < POOL_SIZE {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|e| QueryError::database(format!("running {}", action.as_str()), e))?
    }
}

#[async_trait]
impl QueryBackend for SqliteBackend {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn actions(&self) -> &[QueryAction] {
        &self.inner.actions
    }

    fn input_schema(&self, action: QueryAction) -> Value {
        crate::schema::input_schema(&self.inner.config, action)
    }

    async fn execute(
        &self,
        action: QueryAction,
        payload: &Map<String, Value>,
    ) -> Result<Map<String, Value>, QueryError> {
        let Some(request) = QueryRequest::parse(&self.inner.config, action, payload)? else {
            return Ok(row::empty_results());
        };
        match request {
            QueryRequest::Search { query, limit } => {
                let Some(terms) = fts_terms(&query) else {
                    return Ok(row::empty_results());
                };
                self.blocking(action, move |inner, conn| {
                    search(inner, conn, &query, &terms, limit)
                })
                .await
            }
            QueryRequest::Filter { conditions, limit } => {
                self.blocking(action, move |inner, conn| {
                    filter(inner, conn, &conditions, limit)
                })
                .await
            }
            QueryRequest::Stats { group_by } => {
                self.blocking(action, move |inner, conn| stats(inner, conn, &group_by))
                    .await
            }
            QueryRequest::Get { id } => {
                let shown = id.to_string();
                let found = self
                    .blocking(action, move |inner, conn| get(inner, conn, &id))
                    .await?;
                found
                    .map(row::document)
                    .ok_or(QueryError::NotFound { id: shown })
            }
            QueryRequest::VectorSearch { query, limit } => {
                let embedder = self.inner.embedder.as_ref().ok_or_else(|| {
                    QueryError::unsupported(action, "no embedding endpoint is configured")
                })?;
                let vector = embedder.embed_one(&query).await?;
                self.blocking(action, move |inner, conn| {
                    vector_search(inner, conn, &vector, limit)
                })
                .await
            }
            // `QueryRequest` is non-exhaustive for other crates only.
            #[allow(unreachable_patterns)]
            _ => Err(QueryError::unsupported(
                action,
                "not implemented by the sqlite backend",
            )),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "query_only", true)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Checks the table and columns; decides the search plan; tells whether it is a view.
fn inspect(conn: &Connection, config: &QueryConfig) -> Result<(SearchPlan, bool), String> {
    let table = config.table_name.as_str();
    let kind: Option<String> = conn
        .query_row(
            "SELECT type FROM sqlite_master WHERE name = ?1 AND type IN ('table', 'view')",
            [table],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| e.to_string())?;
    let Some(kind) = kind else {
        return Err(format!(
            "no table or view named '{table}' (backend_config.table_name; create it with `loom query ingest`)"
        ));
    };
    let is_view = kind == "view";
    let columns = table_columns(conn, table).map_err(|e| e.to_string())?;
    let mut referenced = config.referenced_columns();
    if config.embedding.is_some() {
        referenced.push((
            config.embedding_column.clone(),
            "backend_config.embedding_column".to_owned(),
        ));
    }
    let missing: Vec<String> = referenced
        .iter()
        .filter(|(c, _)| {
            !columns
                .iter()
                .any(|have| have.eq_ignore_ascii_case(c.as_str()))
        })
        .map(|(c, key)| format!("{c} ({key})"))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "table '{table}' has no column {} (it has: {})",
            missing.join(", "),
            columns.join(", ")
        ));
    }
    let plan = match fts_table(conn, config, is_view).map_err(|e| e.to_string())? {
        Some((fts, columns)) => SearchPlan::Fts {
            sql: fts_sql(config, &fts),
            columns,
        },
        None => SearchPlan::Like {
            sql: like_sql(config),
        },
    };
    Ok((plan, is_view))
}

fn table_columns(conn: &Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1)")?;
    let names = stmt.query_map([table], |r| r.get::<_, String>(0))?;
    names.collect()
}

/// The FTS5 table `<table>_fts` if it exists and covers every `fts_fields` column,
/// with the column filter to use when it has more columns than that.
fn fts_table(
    conn: &Connection,
    config: &QueryConfig,
    is_view: bool,
) -> rusqlite::Result<Option<(Ident, Option<String>)>> {
    if is_view || config.fts_fields.is_empty() {
        return Ok(None);
    }
    let Ok(fts) = Ident::new(&format!("{}_fts", config.table_name)) else {
        return Ok(None);
    };
    let sql: Option<String> = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE name = ?1 AND type = 'table'",
            [fts.as_str()],
            |r| r.get(0),
        )
        .optional()?;
    if !sql.is_some_and(|s| s.to_ascii_lowercase().contains("using fts5")) {
        return Ok(None);
    }
    let columns = table_columns(conn, fts.as_str())?;
    if !config
        .fts_fields
        .iter()
        .all(|f| columns.iter().any(|c| c == f.as_str()))
    {
        tracing::warn!(table = %config.table_name, fts = %fts, "The FTS table lacks some fts_fields columns; search falls back to LIKE.");
        return Ok(None);
    }
    let filter = (columns.len() != config.fts_fields.len()).then(|| {
        let names: Vec<&str> = config.fts_fields.iter().map(Ident::as_str).collect();
        format!("{{{}}} : ", names.join(" "))
    });
    Ok(Some((fts, filter)))
}

fn select_list(prefix: &str, columns: &[Ident]) -> String {
    columns
        .iter()
        .map(|c| format!("{prefix}{}", c.quoted()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn fts_sql(config: &QueryConfig, fts: &Ident) -> String {
    let table = config.table_name.quoted();
    let f = fts.quoted();
    format!(
        "SELECT {cols}, m.score, m.snip FROM (\
         SELECT rowid AS rid, -rank AS score, snippet({f}, -1, '**', '**', '…', {SNIPPET_TOKENS}) AS snip \
         FROM {f} WHERE {f} MATCH ?1 ORDER BY rank LIMIT ?2\
         ) AS m JOIN {table} AS t ON t.rowid = m.rid ORDER BY m.score DESC, m.rid",
        cols = select_list("t.", &config.result_columns),
    )
}

fn like_sql(config: &QueryConfig) -> String {
    let table = config.table_name.quoted();
    let predicate = config
        .fts_fields
        .iter()
        .map(|c| format!("{} LIKE ?1 ESCAPE '\\'", c.quoted()))
        .collect::<Vec<_>>()
        .join(" OR ");
    let predicate = if predicate.is_empty() {
        "0".to_owned()
    } else {
        predicate
    };
    format!(
        "SELECT {cols}{sep}{fts} FROM {table} WHERE {predicate} ORDER BY {id} DESC LIMIT ?2",
        cols = select_list("", &config.result_columns),
        sep = if config.fts_fields.is_empty() {
            ""
        } else {
            ", "
        },
        fts = select_list("", &config.fts_fields),
        id = config.id_column.quoted(),
    )
}

/// The FTS5 MATCH expression for `query`: each distinct word quoted, joined with OR;
/// `None` when the query has no words.
fn fts_terms(query: &str) -> Option<String> {
    let mut terms: Vec<String> = Vec::new();
    for word in query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        let word = word.to_lowercase();
        if !terms.contains(&word) {
            terms.push(word);
        }
        if terms.len() == MAX_SEARCH_TERMS {
            break;
        }
    }
    if terms.is_empty() {
        return None;
    }
    // Words hold only letters and digits, so the quotes cannot be closed early.
    Some(
        terms
            .iter()
            .map(|t| format!("\"{t}\""))
            .collect::<Vec<_>>()
            .join(" OR "),
    )
}

/// Reads `columns.len()` leading columns of `row` into a JSON object keyed by `columns`.
fn read_row(
    row: &rusqlite::Row<'_>,
    columns: &[Ident],
    json_columns: &[Ident],
) -> rusqlite::Result<Map<String, Value>> {
    let mut out = Map::with_capacity(columns.len() + 2);
    for (i, c) in columns.iter().enumerate() {
        out.insert(c.as_str().to_owned(), to_json(row.get_ref(i)?));
    }
    row::parse_json_columns(&mut out, json_columns);
    Ok(out)
}

/// A SQLite value as JSON; BLOBs (binary data) become `null`.
fn to_json(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null | ValueRef::Blob(_) => Value::Null,
        ValueRef::Integer(i) => Value::from(i),
        ValueRef::Real(f) => number(f),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
    }
}

fn search(
    inner: &Inner,
    conn: &Connection,
    query: &str,
    terms: &str,
    limit: u32,
) -> rusqlite::Result<Map<String, Value>> {
    let config = &inner.config;
    let n = config.result_columns.len();
    let mut rows = Vec::new();
    match &inner.search {
        SearchPlan::Fts { sql, columns } => {
            let expression = match columns {
                Some(filter) => format!("{filter}({terms})"),
                None => terms.to_owned(),
            };
            let mut stmt = conn.prepare_cached(sql)?;
            let mut cursor = stmt.query(rusqlite::params![expression, i64::from(limit)])?;
            while let Some(r) = cursor.next()? {
                let mut out = read_row(r, &config.result_columns, &config.json_columns)?;
                out.insert("score".to_owned(), number(r.get::<_, f64>(n)?));
                out.insert("snippet".to_owned(), to_json(r.get_ref(n + 1)?));
                rows.push(out);
            }
        }
        SearchPlan::Like { sql } => {
            let pattern = format!("%{}%", escape_like(query));
            let mut stmt = conn.prepare_cached(sql)?;
            let mut cursor = stmt.query(rusqlite::params![pattern, i64::from(limit)])?;
            while let Some(r) = cursor.next()? {
                let mut out = read_row(r, &config.result_columns, &config.json_columns)?;
                let snippet = (0..config.fts_fields.len())
                    .filter_map(|i| r.get::<_, Option<String>>(n + i).ok().flatten())
                    .find_map(|text| like_snippet(&text, query));
                out.insert("score".to_owned(), number(0.0));
                out.insert(
                    "snippet".to_owned(),
                    snippet.map_or(Value::Null, Value::String),
                );
                rows.push(out);
            }
        }
    }
    let total = rows.len() as u64;
    Ok(row::results(rows, total))
}

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// About [`LIKE_SNIPPET_CONTEXT`] characters around the first case-insensitive
/// occurrence of `query` in `text`, the match in `**bold**`.
fn like_snippet(text: &str, query: &str) -> Option<String> {
    let lower_text: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    let lower_query: Vec<char> = query.chars().flat_map(char::to_lowercase).collect();
    let chars: Vec<char> = text.chars().collect();
    // Lower-casing may change lengths (rare); use the original text then.
    if lower_text.len() != chars.len() || lower_query.is_empty() {
        return None;
    }
    let at = lower_text
        .windows(lower_query.len())
        .position(|w| w == lower_query.as_slice())?;
    let end = at + lower_query.len();
    let start = at.saturating_sub(LIKE_SNIPPET_CONTEXT);
    let stop = (end + LIKE_SNIPPET_CONTEXT).min(chars.len());
    let piece = |a: usize, b: usize| chars[a..b].iter().collect::<String>();
    Some(format!(
        "{}{}**{}**{}{}",
        if start > 0 { "…" } else { "" },
        piece(start, at),
        piece(at, end),
        piece(end, stop),
        if stop < chars.len() { "…" } else { "" },
    ))
}

fn where_clause(conditions: &[Condition], params: &mut Vec<SqlValue>) -> String {
    if conditions.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = conditions
        .iter()
        .map(|c| {
            let column = c.column.quoted();
            let op = match c.op {
                FilterOp::IsNull => return format!("{column} IS NULL"),
                FilterOp::IsNotNull => return format!("{column} IS NOT NULL"),
                FilterOp::Like | FilterOp::ILike => "LIKE",
                other => other.as_str(),
            };
            let value = match &c.value {
                Some(FilterValue::Text(s)) => SqlValue::Text(s.clone()),
                Some(FilterValue::Integer(i)) => SqlValue::Integer(*i),
                Some(FilterValue::Real(f)) => SqlValue::Real(*f),
                Some(FilterValue::Bool(b)) => SqlValue::Integer(i64::from(*b)),
                None => SqlValue::Null,
            };
            params.push(value);
            format!("{column} {op} ?{}", params.len())
        })
        .collect();
    format!(" WHERE {}", parts.join(" AND "))
}

fn filter(
    inner: &Inner,
    conn: &Connection,
    conditions: &[Condition],
    limit: u32,
) -> rusqlite::Result<Map<String, Value>> {
    let config = &inner.config;
    let table = config.table_name.quoted();
    let mut params = Vec::new();
    let where_sql = where_clause(conditions, &mut params);
    let columns = select_list("", &config.result_columns);
    let limit_param = params.len() + 1;
    let configured: Vec<String> = config.default_order_by.iter().map(|o| o.sql()).collect();
    let select = if inner.is_view {
        let order = if configured.is_empty() {
            config.id_column.quoted()
        } else {
            configured.join(", ")
        };
        format!("SELECT {columns} FROM {table}{where_sql} ORDER BY {order} LIMIT ?{limit_param}")
    } else {
        // Pick the page's rowids first (from a covering index when ingest built one),
        // then read only those rows; rowid breaks ties so pages are deterministic.
        let mut order = configured;
        order.push("rowid".to_owned());
        let order = order.join(", ");
        format!(
            "SELECT {columns} FROM {table} WHERE rowid IN \
             (SELECT rowid FROM {table}{where_sql} ORDER BY {order} LIMIT ?{limit_param}) \
             ORDER BY {order}"
        )
    };
    let count = format!("SELECT COUNT(*) FROM {table}{where_sql}");
    let mut rows = Vec::new();
    {
        let mut stmt = conn.prepare_cached(&select)?;
        let mut all = params.clone();
        all.push(SqlValue::Integer(i64::from(limit)));
        let mut cursor = stmt.query(params_from_iter(all))?;
        while let Some(r) = cursor.next()? {
            rows.push(read_row(r, &config.result_columns, &config.json_columns)?);
        }
    }
    let total: i64 = conn
        .prepare_cached(&count)?
        .query_row(params_from_iter(params), |r| r.get(0))?;
    Ok(row::results(rows, u64::try_from(total).unwrap_or_default()))
}

fn stats(
    inner: &Inner,
    conn: &Connection,
    group_by: &Ident,
) -> rusqlite::Result<Map<String, Value>> {
    let config = &inner.config;
    let table = config.table_name.quoted();
    let group = group_by.quoted();
    let aggregates: Vec<String> = config.stats_aggregates.iter().map(|a| a.sql()).collect();
    let first = config
        .stats_aggregates
        .first()
        .map_or_else(|| group.clone(), |a| a.alias.quoted());
    let sql = format!(
        "SELECT {group}, {} FROM {table} GROUP BY {group} ORDER BY {first} DESC, {group} LIMIT {MAX_STATS_GROUPS}",
        aggregates.join(", ")
    );
    let mut rows = Vec::new();
    {
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut cursor = stmt.query([])?;
        while let Some(r) = cursor.next()? {
            let mut out = Map::new();
            out.insert(group_by.as_str().to_owned(), to_json(r.get_ref(0)?));
            for (i, a) in config.stats_aggregates.iter().enumerate() {
                out.insert(a.alias.as_str().to_owned(), to_json(r.get_ref(i + 1)?));
            }
            rows.push(out);
        }
    }
    let total: i64 = conn
        .prepare_cached(&format!("SELECT COUNT(*) FROM {table}"))?
        .query_row([], |r| r.get(0))?;
    Ok(row::results(rows, u64::try_from(total).unwrap_or_default()))
}

fn get(
    inner: &Inner,
    conn: &Connection,
    id: &IdValue,
) -> rusqlite::Result<Option<Map<String, Value>>> {
    let config = &inner.config;
    let columns = config.document_columns();
    let sql = format!(
        "SELECT {} FROM {} WHERE {} = ?1 LIMIT 1",
        select_list("", &columns),
        config.table_name.quoted(),
        config.id_column.quoted()
    );
    let value = match id {
        IdValue::Text(s) => SqlValue::Text(s.clone()),
        IdValue::Integer(i) => SqlValue::Integer(*i),
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut cursor = stmt.query([value])?;
    match cursor.next()? {
        Some(r) => read_row(r, &columns, &config.json_columns).map(Some),
        None => Ok(None),
    }
}

fn vector_search(
    inner: &Inner,
    conn: &Connection,
    query: &[f32],
    limit: u32,
) -> rusqlite::Result<Map<String, Value>> {
    let config = &inner.config;
    let n = config.result_columns.len();
    let embedding = config.embedding_column.quoted();
    let sql = format!(
        "SELECT {}, {embedding} FROM {} WHERE {embedding} IS NOT NULL",
        select_list("", &config.result_columns),
        config.table_name.quoted()
    );
    let mut top = TopK::new(limit as usize);
    let mut skipped = 0usize;
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut cursor = stmt.query([])?;
    while let Some(r) = cursor.next()? {
        let stored = match r.get_ref(n)? {
            ValueRef::Blob(b) => decode_blob(b),
            ValueRef::Text(t) => std::str::from_utf8(t).ok().and_then(decode_json),
            _ => None,
        };
        let Some(similarity) = stored.and_then(|v| cosine(query, &v)) else {
            skipped += 1;
            continue;
        };
        if top.admits(similarity) {
            top.push(
                similarity,
                read_row(r, &config.result_columns, &config.json_columns)?,
            );
        }
    }
    if skipped > 0 {
        tracing::warn!(table = %config.table_name, skipped, dimensions = query.len(), "Skipped stored embeddings that are unreadable or of another length than the query's.");
    }
    let rows: Vec<Map<String, Value>> = top
        .into_sorted()
        .into_iter()
        .map(|(similarity, mut out)| {
            out.insert("similarity".to_owned(), number(similarity));
            out
        })
        .collect();
    let total = rows.len() as u64;
    Ok(row::results(rows, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fts_terms_quote_words_and_drop_syntax() {
        assert_eq!(
            fts_terms("Budget review").as_deref(),
            Some("\"budget\" OR \"review\"")
        );
        assert_eq!(
            fts_terms("NEAR(a b) title:x* \"q\" AND").as_deref(),
            Some("\"near\" OR \"a\" OR \"b\" OR \"title\" OR \"x\" OR \"q\" OR \"and\"")
        );
        assert_eq!(fts_terms("* : \" ( )"), None);
        assert_eq!(fts_terms("' OR 1=1 --").as_deref(), Some("\"or\" OR \"1\""));
    }

    #[test]
    fn like_snippets_mark_the_match() {
        assert_eq!(
            like_snippet("The Budget review", "budget").as_deref(),
            Some("The **Budget** review")
        );
        assert_eq!(like_snippet("nothing", "budget"), None);
        assert_eq!(escape_like("50%_a\\"), "50\\%\\_a\\\\");
    }
}
