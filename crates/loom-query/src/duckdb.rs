//! The DuckDB backend (cargo feature `duckdb`), linked against DuckDB's prebuilt C
//! library: the original's `DuckDBQueryBackend` with its weaknesses fixed (spec L13).
//!
//! # Building and running with it
//!
//! The `duckdb` crate is used without its `bundled` feature: compiling DuckDB's ~2,000
//! C++ files takes over an hour on a 2-core machine. Instead it links DuckDB 1.5.5's
//! official `libduckdb.so`, and `search` loads the official full-text-search extension
//! of the same version from a local file (DuckDB only loads extensions built for its
//! exact version). `scripts/fetch-duckdb` downloads both (npm
//! `@duckdb/node-bindings-linux-x64@1.5.5-r.5` and PyPI `duckdb-extension-fts==1.5.5`,
//! checked against pinned SHA-256 sums) into `~/.cache/loom/duckdb/1.5.5` and prints the
//! environment to use:
//!
//! ```text
//! eval "$(scripts/fetch-duckdb)"     # DUCKDB_LIB_DIR, LD_LIBRARY_PATH, LOOM_DUCKDB_FTS_EXTENSION
//! cargo test -p loom-query --features duckdb
//! ```
//!
//! | variable | when | what |
//! |---|---|---|
//! | `DUCKDB_LIB_DIR` | build | directory holding `libduckdb.so` (the `duckdb` crate's build script links it) |
//! | `LD_LIBRARY_PATH` | run | must include that directory (no rpath is set) |
//! | `LOOM_DUCKDB_FTS_EXTENSION` | run | path of `fts.duckdb_extension` ([`DuckDbOptions::from_env`]), unless `backend_config.fts_extension` names one ([`DuckDbOptions::from_backend_config`]) |
//!
//! If you already have DuckDB 1.5.5, skip the script and set these yourself.
//! The `duckdb` crate's version encodes DuckDB's (`1.10505.x` is DuckDB 1.5.5); a
//! library of another version may fail to link or behave differently.
//!
//! # Behaviour
//!
//! * Every operation opens the database file **read-only** in one `spawn_blocking`
//!   closure and closes it afterwards, so another process may write the file between
//!   queries (DuckDB lets one process write a file only while no other has it open).
//!   Extension autoloading and autoinstalling are off; after setup each connection
//!   disables file-system access from SQL (`enable_external_access = false`).
//! * The FTS extension is loaded only by `search`, once per connection, from a
//!   configured file ([`DuckDbOptions`]); it is never `INSTALL`ed from the network.
//!   Without it (not configured, failing to load, no `fts_main_<table>` index, an index
//!   missing an `fts_fields` column, or a view), `search` falls back to a
//!   case-insensitive substring match (`ILIKE '%query%'`, wildcards escaped) over the
//!   `fts_fields`, newest id first, score 0 — and every other action works regardless.
//!   The original ran `LOAD fts` for every action, so all failed without it.
//! * `search` ranks with BM25: `fts_main_<table>.match_bm25(<id_column>, query,
//!   fields := '<fts_fields>')`, higher is better, ties by id. Build the index with
//!   `PRAGMA create_fts_index('<table>', '<id_column>', '<field>', …)`. The query text is
//!   a bound parameter: DuckDB's BM25 tokenizes it and has no query syntax.
//! * SQL comes only from the validated [`QueryConfig`] (identifiers checked and quoted,
//!   predicates and aggregates parsed); every payload value is a bound parameter.
//! * `get` compares ids by the id column's type: a text id that is not an integer
//!   cannot match an integer column (not found); ids of other types (UUID…) are compared
//!   as text.
//! * `vector_search` embeds the query at the configured endpoint only (the original let
//!   the payload pick the Ollama URL: SSRF) and ranks rows by
//!   `list_cosine_similarity`; the embedding column may be a `FLOAT[]`/`DOUBLE[]` list, a
//!   fixed-size array or JSON text; rows whose vector has another length, is unreadable
//!   or is all zeros are skipped.
//! * Values: `json_columns` are parsed; timestamps and dates become strings
//!   (`2024-01-01 10:00:00`), decimals numbers, BLOBs `null` (see `value.rs`).
//!
//! | action | output |
//! |---|---|
//! | `search` | `{results: [{<result_columns>, score}], total}` |
//! | `filter` | `{results: [{<result_columns>}], total: <all matches>}` |
//! | `stats` | `{results: [{<group>, <aliases>}], total: <rows in table>}` |
//! | `get` | `{document: {<result_columns>, <full_text_column>}}` |
//! | `vector_search` | `{results: [{<result_columns>, similarity}], total}` |

mod sql;
mod value;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ::duckdb::types::Value as DuckValue;
use ::duckdb::{AccessMode, Config, Connection, params_from_iter};
use async_trait::async_trait;
use loom_core::config::QueryAction;
use serde_json::{Map, Value};

use crate::backend::{QueryBackend, QueryError, supported_actions};
use crate::config::{ConfigProblem, FilterOp, Ident, QueryConfig};
use crate::embed::Embedder;
use crate::request::{Condition, FilterValue, IdValue, QueryRequest};
use crate::row::{self, number};

/// The environment variable naming the FTS extension file ([`DuckDbOptions::from_env`]).
pub const FTS_EXTENSION_ENV: &str = "LOOM_DUCKDB_FTS_EXTENSION";
/// The `backend_config` key naming the FTS extension file
/// ([`DuckDbOptions::from_backend_config`]).
pub const FTS_EXTENSION_KEY: &str = "fts_extension";
/// Most groups `stats` returns.
pub const MAX_STATS_GROUPS: usize = 1000;

/// A query backend over one DuckDB table.
///
/// ```no_run
/// use loom_core::config::QueryAction;
/// use loom_query::QueryBackend;
/// use loom_query::config::QueryConfig;
/// use loom_query::duckdb::{DuckDbBackend, DuckDbOptions};
/// use serde_json::json;
///
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let map = json!({"db_path": "docs.duckdb", "result_columns": ["id", "title"]});
/// let config = QueryConfig::from_backend_config(map.as_object().unwrap(), ".".as_ref())
///     .map_err(|p| format!("{p:?}"))?;
/// let options = DuckDbOptions::new().with_fts_extension("/opt/duckdb/fts.duckdb_extension");
/// let backend = DuckDbBackend::open_with(config, options).await?;
/// let args = json!({"query": "budget review", "limit": 5});
/// let output = backend.execute(QueryAction::Search, args.as_object().unwrap()).await?;
/// assert!(output["results"].is_array());
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct DuckDbBackend {
    inner: Arc<Inner>,
}

/// Settings of the DuckDB backend that are not part of `backend_config`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DuckDbOptions {
    /// The FTS extension file (`fts.duckdb_extension` of DuckDB 1.5.5); without one,
    /// `search` uses the `ILIKE` fallback.
    pub fts_extension: Option<PathBuf>,
}

impl DuckDbOptions {
    /// No FTS extension.
    pub fn new() -> Self {
        Self::default()
    }

    /// The FTS extension from `LOOM_DUCKDB_FTS_EXTENSION`, when set and not empty.
    pub fn from_env() -> Self {
        Self {
            fts_extension: std::env::var_os(FTS_EXTENSION_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
        }
    }

    /// The FTS extension from `backend_config.fts_extension` (a path relative to
    /// `base_dir`, the directory of the config file), else from the environment
    /// ([`from_env`](Self::from_env)).
    pub fn from_backend_config(
        map: &Map<String, Value>,
        base_dir: &Path,
    ) -> Result<Self, ConfigProblem> {
        match map.get(FTS_EXTENSION_KEY) {
            None | Some(Value::Null) => Ok(Self::from_env()),
            Some(Value::String(path)) if !path.trim().is_empty() => {
                Ok(Self::new().with_fts_extension(base_dir.join(path.trim())))
            }
            Some(other) => Err(ConfigProblem {
                key_path: format!("backend_config.{FTS_EXTENSION_KEY}"),
                message: format!(
                    "expected the path of fts.duckdb_extension, found {}",
                    match other {
                        Value::String(_) => "an empty string".to_owned(),
                        other => format!("'{other}'"),
                    }
                ),
            }),
        }
    }

    /// Loads the FTS extension from `path` for `search`.
    pub fn with_fts_extension(mut self, path: impl Into<PathBuf>) -> Self {
        self.fts_extension = Some(path.into());
        self
    }
}

#[derive(Debug)]
struct Inner {
    config: QueryConfig,
    actions: Vec<QueryAction>,
    embedder: Option<Embedder>,
    options: DuckDbOptions,
    table: TableInfo,
    /// Whether the `ILIKE` fallback has been logged (once per backend).
    fallback_logged: AtomicBool,
}

/// What `open` learnt about the table.
#[derive(Debug)]
struct TableInfo {
    is_view: bool,
    /// `(name, data_type)` as `information_schema.columns` reports them.
    columns: Vec<(String, String)>,
}

impl TableInfo {
    fn data_type(&self, column: &Ident) -> Option<&str> {
        self.columns
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(column.as_str()))
            .map(|(_, ty)| ty.as_str())
    }

    fn kind(&self, column: &Ident) -> ColumnKind {
        match self
            .data_type(column)
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            Some(
                "TINYINT" | "SMALLINT" | "INTEGER" | "BIGINT" | "HUGEINT" | "UTINYINT"
                | "USMALLINT" | "UINTEGER" | "UBIGINT" | "UHUGEINT",
            ) => ColumnKind::Integer,
            Some("VARCHAR") => ColumnKind::Text,
            _ => ColumnKind::Other,
        }
    }

    /// `rowid` for tables; views have none, so the id column.
    fn natural_order(&self, config: &QueryConfig) -> String {
        if self.is_view {
            config.id_column.quoted()
        } else {
            "rowid".to_owned()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnKind {
    Integer,
    Text,
    Other,
}

impl DuckDbBackend {
    /// Opens the backend with the FTS extension named by `LOOM_DUCKDB_FTS_EXTENSION`
    /// (see [`open_with`](Self::open_with)).
    pub async fn open(config: QueryConfig) -> Result<DuckDbBackend, QueryError> {
        Self::open_with(config, DuckDbOptions::from_env()).await
    }

    /// Opens `config.db_path` read-only once to check the table and every configured
    /// column (reporting all missing columns at once), builds the embedder when
    /// `embedding` is set, and logs whether `search` will use the FTS index.
    pub async fn open_with(
        config: QueryConfig,
        options: DuckDbOptions,
    ) -> Result<DuckDbBackend, QueryError> {
        let embedder = config.embedding.as_ref().map(Embedder::new).transpose()?;
        let inner = tokio::task::spawn_blocking(move || -> Result<Inner, QueryError> {
            let operation = format!("opening {}", config.db_path.display());
            if !config.db_path.is_file() {
                return Err(QueryError::database(
                    operation,
                    "the database file does not exist",
                ));
            }
            let conn =
                connect(&config.db_path, None).map_err(|e| QueryError::database(&operation, e))?;
            let table = inspect(&conn, &config).map_err(|m| QueryError::database(&operation, m))?;
            let inner = Inner {
                actions: supported_actions(&config),
                config,
                embedder,
                options,
                table,
                fallback_logged: AtomicBool::new(false),
            };
            drop(conn);
            match fts_status(&inner) {
                Ok(()) => tracing::debug!(table = %inner.config.table_name, "DuckDB search uses the FTS index."),
                Err(reason) => {
                    inner.fallback_logged.store(true, Ordering::Relaxed);
                    tracing::warn!(table = %inner.config.table_name, %reason, "DuckDB search falls back to ILIKE.");
                }
            }
            Ok(inner)
        })
        .await
        .map_err(|e| QueryError::database("opening the database", e))??;
        Ok(DuckDbBackend {
            inner: Arc::new(inner),
        })
    }

    /// The configuration the backend was opened with.
    pub fn config(&self) -> &QueryConfig {
        &self.inner.config
    }

    /// The options the backend was opened with.
    pub fn options(&self) -> &DuckDbOptions {
        &self.inner.options
    }

    /// Whether `search` can use BM25 now: the extension loads and the table has an FTS
    /// index covering every `fts_fields` column (false: the `ILIKE` fallback). Opens
    /// the database, so call it off the async runtime or rarely.
    pub fn has_fts(&self) -> bool {
        fts_status(&self.inner).is_ok()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        action: QueryAction,
        f: impl FnOnce(&Inner) -> Result<T, QueryError> + Send + 'static,
    ) -> Result<T, QueryError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner))
            .await
            .map_err(|e| QueryError::database(format!("running {}", action.as_str()), e))?
    }
}

#[async_trait]
impl QueryBackend for DuckDbBackend {
    fn kind(&self) -> &'static str {
        "duckdb"
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
                self.blocking(action, move |inner| search(inner, &query, limit))
                    .await
            }
            QueryRequest::Filter { conditions, limit } => {
                self.blocking(action, move |inner| filter(inner, &conditions, limit))
                    .await
            }
            QueryRequest::Stats { group_by } => {
                self.blocking(action, move |inner| stats(inner, &group_by))
                    .await
            }
            QueryRequest::Get { id } => {
                let shown = id.to_string();
                let found = self.blocking(action, move |inner| get(inner, &id)).await?;
                found
                    .map(row::document)
                    .ok_or(QueryError::NotFound { id: shown })
            }
            QueryRequest::VectorSearch { query, limit } => {
                let embedder = self.inner.embedder.as_ref().ok_or_else(|| {
                    QueryError::unsupported(action, "no embedding endpoint is configured")
                })?;
                let vector = embedder.embed_one(&query).await?;
                self.blocking(action, move |inner| vector_search(inner, &vector, limit))
                    .await
            }
            // `QueryRequest` is non-exhaustive for other crates only.
            #[allow(unreachable_patterns)]
            _ => Err(QueryError::unsupported(
                action,
                "not implemented by the duckdb backend",
            )),
        }
    }
}

/// Opens `path` read-only for one operation (see [`connect_with_extension`]).
fn connect(path: &Path, extension: Option<&Path>) -> Result<Connection, ::duckdb::Error> {
    connect_with_extension(path, extension).map(|(conn, _)| conn)
}

/// Opens `path` read-only without extension autoloading or autoinstalling, loads the
/// extension file `extension` when given, then turns off SQL file-system access and
/// locks the configuration.
///
/// Returns the connection and whether the extension loaded (`Err` says why not); the
/// connection is usable either way.
fn connect_with_extension(
    path: &Path,
    extension: Option<&Path>,
) -> Result<(Connection, Result<(), String>), ::duckdb::Error> {
    let config = Config::default()
        .access_mode(AccessMode::ReadOnly)?
        .enable_autoload_extension(false)?
        .with("autoinstall_known_extensions", "false")?;
    let conn = Connection::open_with_flags(path, config)?;
    let loaded = match extension {
        None => Err("no FTS extension is configured (backend option fts_extension or LOOM_DUCKDB_FTS_EXTENSION)".to_owned()),
        Some(file) if !file.is_file() => Err(format!("the FTS extension {} does not exist", file.display())),
        Some(file) => match sql::load_extension(file) {
            None => Err(format!("the FTS extension path {} is not valid UTF-8", file.display())),
            Some(statement) => conn
                .execute_batch(&statement)
                .map_err(|e| format!("cannot load the FTS extension {}: {e}", file.display())),
        },
    };
    conn.execute_batch("SET enable_external_access = false; SET lock_configuration = true;")?;
    Ok((conn, loaded))
}

/// Checks the table (or view) and the configured columns.
fn inspect(conn: &Connection, config: &QueryConfig) -> Result<TableInfo, String> {
    let table = config.table_name.as_str();
    let table_type: Option<String> = conn
        .prepare(
            "SELECT table_type FROM information_schema.tables \
             WHERE table_schema = current_schema() AND lower(table_name) = lower($1)",
        )
        .and_then(|mut s| {
            let mut rows = s.query([table])?;
            rows.next()?.map(|r| r.get::<_, String>(0)).transpose()
        })
        .map_err(|e| e.to_string())?;
    let Some(table_type) = table_type else {
        return Err(format!(
            "no table or view named '{table}' (backend_config.table_name)"
        ));
    };
    let columns: Vec<(String, String)> = conn
        .prepare(
            "SELECT column_name, data_type FROM information_schema.columns \
             WHERE table_schema = current_schema() AND lower(table_name) = lower($1) \
             ORDER BY ordinal_position",
        )
        .and_then(|mut s| {
            s.query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| e.to_string())?;
    let info = TableInfo {
        is_view: table_type.eq_ignore_ascii_case("VIEW"),
        columns,
    };
    let mut referenced = config.referenced_columns();
    if config.embedding.is_some() {
        referenced.push((
            config.embedding_column.clone(),
            "backend_config.embedding_column".to_owned(),
        ));
    }
    let missing: Vec<String> = referenced
        .iter()
        .filter(|(c, _)| info.data_type(c).is_none())
        .map(|(c, key)| format!("{c} ({key})"))
        .collect();
    if !missing.is_empty() {
        let have: Vec<&str> = info.columns.iter().map(|(n, _)| n.as_str()).collect();
        return Err(format!(
            "table '{table}' has no column {} (it has: {})",
            missing.join(", "),
            have.join(", ")
        ));
    }
    Ok(info)
}

fn database(action: QueryAction) -> impl Fn(::duckdb::Error) -> QueryError {
    move |e| QueryError::database(format!("running {}", action.as_str()), e)
}

/// Why `search` cannot use BM25 right now, if it cannot (opens its own connection).
fn fts_status(inner: &Inner) -> Result<(), String> {
    let (conn, loaded) = connect_with_extension(
        &inner.config.db_path,
        inner.options.fts_extension.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    loaded?;
    fts_index(&conn, inner)
}

/// Whether the table has an FTS index covering every `fts_fields` column.
fn fts_index(conn: &Connection, inner: &Inner) -> Result<(), String> {
    let config = &inner.config;
    if inner.table.is_view {
        return Err(format!(
            "'{}' is a view, which DuckDB cannot index",
            config.table_name
        ));
    }
    if config.fts_fields.is_empty() {
        return Err("fts_fields is empty".to_owned());
    }
    let indexed: Vec<String> = conn
        .prepare(&sql::fts_fields_sql(config))
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|_| {
            format!(
                "table '{}' has no FTS index (PRAGMA create_fts_index('{}', '{}', …))",
                config.table_name, config.table_name, config.id_column
            )
        })?;
    let missing: Vec<&str> = config
        .fts_fields
        .iter()
        .map(Ident::as_str)
        .filter(|f| !indexed.iter().any(|i| i.eq_ignore_ascii_case(f)))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the FTS index of '{}' does not cover {} (it covers: {})",
            config.table_name,
            missing.join(", "),
            indexed.join(", ")
        ))
    }
}

/// Reads the leading `columns.len()` values of `row` into a JSON object keyed by
/// `columns`, parsing `json_columns`.
fn read_row(
    row: &::duckdb::Row<'_>,
    columns: &[Ident],
    json_columns: &[Ident],
) -> Result<Map<String, Value>, ::duckdb::Error> {
    let mut out = Map::with_capacity(columns.len() + 1);
    for (i, c) in columns.iter().enumerate() {
        out.insert(
            c.as_str().to_owned(),
            value::to_json(row.get::<_, DuckValue>(i)?),
        );
    }
    row::parse_json_columns(&mut out, json_columns);
    Ok(out)
}

/// Reads every row of `stmt` run with `params`; `extra` names a trailing score column
/// added to each row as a number.
fn collect_rows(
    stmt: &mut ::duckdb::Statement<'_>,
    params: Vec<DuckValue>,
    config: &QueryConfig,
    extra: Option<&str>,
) -> Result<Vec<Map<String, Value>>, ::duckdb::Error> {
    let n = config.result_columns.len();
    let mut rows = Vec::new();
    let mut cursor = stmt.query(params_from_iter(params))?;
    while let Some(r) = cursor.next()? {
        let mut out = read_row(r, &config.result_columns, &config.json_columns)?;
        if let Some(name) = extra {
            let score: Option<f64> = r.get(n)?;
            out.insert(name.to_owned(), score.map_or(Value::Null, number));
        }
        rows.push(out);
    }
    Ok(rows)
}

fn search(inner: &Inner, query: &str, limit: u32) -> Result<Map<String, Value>, QueryError> {
    let config = &inner.config;
    let err = database(QueryAction::Search);
    let (conn, loaded) =
        connect_with_extension(&config.db_path, inner.options.fts_extension.as_deref())
            .map_err(&err)?;
    let plan = loaded.and_then(|()| fts_index(&conn, inner));
    let rows = match plan {
        Ok(()) => {
            let fields: Vec<&str> = config.fts_fields.iter().map(Ident::as_str).collect();
            let mut stmt = conn.prepare(&sql::bm25_search(config)).map_err(&err)?;
            let params = vec![
                DuckValue::Text(query.to_owned()),
                DuckValue::Text(fields.join(",")),
                DuckValue::BigInt(i64::from(limit)),
            ];
            collect_rows(&mut stmt, params, config, Some("score")).map_err(&err)?
        }
        Err(reason) => {
            if !inner.fallback_logged.swap(true, Ordering::Relaxed) {
                tracing::warn!(table = %config.table_name, %reason, "DuckDB search falls back to ILIKE.");
            }
            let mut stmt = conn.prepare(&sql::ilike_search(config)).map_err(&err)?;
            let params = vec![
                DuckValue::Text(format!("%{}%", sql::escape_like(query))),
                DuckValue::BigInt(i64::from(limit)),
            ];
            let mut rows = collect_rows(&mut stmt, params, config, None).map_err(&err)?;
            for r in &mut rows {
                r.insert("score".to_owned(), number(0.0));
            }
            rows
        }
    };
    let total = rows.len() as u64;
    Ok(row::results(rows, total))
}

/// The bound value of a filter condition: booleans compared with an integer column are
/// bound as 1/0.
fn filter_param(inner: &Inner, condition: &Condition) -> Option<DuckValue> {
    Some(match condition.value.as_ref()? {
        FilterValue::Text(s) => DuckValue::Text(s.clone()),
        FilterValue::Integer(i) => DuckValue::BigInt(*i),
        FilterValue::Real(f) => DuckValue::Double(*f),
        FilterValue::Bool(b) if inner.table.kind(&condition.column) == ColumnKind::Integer => {
            DuckValue::BigInt(i64::from(*b))
        }
        FilterValue::Bool(b) => DuckValue::Boolean(*b),
    })
}

fn filter(
    inner: &Inner,
    conditions: &[Condition],
    limit: u32,
) -> Result<Map<String, Value>, QueryError> {
    let config = &inner.config;
    let err = database(QueryAction::Filter);
    let params: Vec<DuckValue> = conditions
        .iter()
        .filter(|c| !matches!(c.op, FilterOp::IsNull | FilterOp::IsNotNull))
        .filter_map(|c| filter_param(inner, c))
        .collect();
    let where_sql = sql::where_clause(conditions);
    let (select, count) = sql::filter(
        config,
        &where_sql,
        params.len(),
        &inner.table.natural_order(config),
    );
    let conn = connect(&config.db_path, None).map_err(&err)?;
    let mut all = params.clone();
    all.push(DuckValue::BigInt(i64::from(limit)));
    let rows = {
        let mut stmt = conn.prepare(&select).map_err(&err)?;
        collect_rows(&mut stmt, all, config, None).map_err(&err)?
    };
    let total: i64 = conn
        .prepare(&count)
        .and_then(|mut s| s.query_row(params_from_iter(params), |r| r.get(0)))
        .map_err(&err)?;
    Ok(row::results(rows, u64::try_from(total).unwrap_or_default()))
}

fn stats(inner: &Inner, group_by: &Ident) -> Result<Map<String, Value>, QueryError> {
    let config = &inner.config;
    let err = database(QueryAction::Stats);
    let conn = connect(&config.db_path, None).map_err(&err)?;
    let mut rows = Vec::new();
    {
        let mut stmt = conn.prepare(&sql::stats(config, group_by)).map_err(&err)?;
        let mut cursor = stmt.query([]).map_err(&err)?;
        while let Some(r) = cursor.next().map_err(&err)? {
            let mut out = Map::new();
            let group: DuckValue = r.get(0).map_err(&err)?;
            out.insert(group_by.as_str().to_owned(), value::to_json(group));
            for (i, a) in config.stats_aggregates.iter().enumerate() {
                let v: DuckValue = r.get(i + 1).map_err(&err)?;
                out.insert(a.alias.as_str().to_owned(), value::to_json(v));
            }
            rows.push(out);
        }
    }
    let total: i64 = conn
        .query_row(&sql::count(config), [], |r| r.get(0))
        .map_err(&err)?;
    Ok(row::results(rows, u64::try_from(total).unwrap_or_default()))
}

fn get(inner: &Inner, id: &IdValue) -> Result<Option<Map<String, Value>>, QueryError> {
    let config = &inner.config;
    let err = database(QueryAction::Get);
    let kind = inner.table.kind(&config.id_column);
    let value = match (kind, id) {
        (ColumnKind::Integer, IdValue::Integer(i)) => DuckValue::BigInt(*i),
        (ColumnKind::Integer, IdValue::Text(s)) => match s.trim().parse::<i64>() {
            Ok(i) => DuckValue::BigInt(i),
            // No integer row can have this id.
            Err(_) => return Ok(None),
        },
        (_, IdValue::Integer(i)) => DuckValue::Text(i.to_string()),
        (_, IdValue::Text(s)) => DuckValue::Text(s.clone()),
    };
    let columns = config.document_columns();
    let conn = connect(&config.db_path, None).map_err(&err)?;
    let mut stmt = conn
        .prepare(&sql::get(config, kind == ColumnKind::Other))
        .map_err(&err)?;
    let mut cursor = stmt.query([value]).map_err(&err)?;
    match cursor.next().map_err(&err)? {
        Some(r) => read_row(r, &columns, &config.json_columns)
            .map(Some)
            .map_err(&err),
        None => Ok(None),
    }
}

fn vector_search(
    inner: &Inner,
    vector: &[f32],
    limit: u32,
) -> Result<Map<String, Value>, QueryError> {
    let config = &inner.config;
    let err = database(QueryAction::VectorSearch);
    let text = sql::vector_text(vector).ok_or_else(|| {
        QueryError::database(
            "running vector_search",
            "the embedding endpoint returned a vector with a non-finite value",
        )
    })?;
    let conn = connect(&config.db_path, None).map_err(&err)?;
    let mut stmt = conn.prepare(&sql::vector_search(config)).map_err(&err)?;
    let params = vec![
        DuckValue::Text(text),
        DuckValue::BigInt(i64::try_from(vector.len()).unwrap_or(i64::MAX)),
        DuckValue::BigInt(i64::from(limit)),
    ];
    let rows = collect_rows(&mut stmt, params, config, Some("similarity")).map_err(&err)?;
    let total = rows.len() as u64;
    Ok(row::results(rows, total))
}
