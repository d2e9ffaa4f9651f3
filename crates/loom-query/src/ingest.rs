//! Getting data in: JSONL or CSV loaded into a SQLite table with an FTS5 index, in one
//! call (`loom query ingest`).
//!
//! * Columns are the keys of the records in order of first appearance (a CSV's
//!   header). Each must be an identifier. Types are inferred over all values: `INTEGER`
//!   when every value is a whole number (JSON booleans count, as 1/0), `REAL` when every
//!   value is a number, `TEXT` otherwise; nested JSON (lists, objects) is stored as JSON
//!   text. Empty CSV cells and JSON `null` are `NULL`.
//! * The id column is the primary key (`INTEGER PRIMARY KEY` for integer ids); a
//!   missing or repeated id is an error naming the line.
//! * Rows go in inside one transaction with one prepared statement; the table, its
//!   indexes and the FTS5 index appear together or not at all.
//! * The FTS5 table is `<table>_fts`, an external-content table over `fts_fields`
//!   (porter stemming, unicode61), rebuilt from the table.
//! * With `embed`, the text of `fts_fields` (joined by blank lines) of each record is
//!   embedded in batches and stored in `embedding_column` as f32 little-endian BLOBs.
//! * The file is read whole into memory (fine for the millions-of-rows scale, not beyond).

mod csv;

use std::path::{Path, PathBuf};

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, ErrorCode, OptionalExtension, params_from_iter};
use serde_json::Value;

use crate::config::{Ident, QueryConfig};
use crate::embed::{EmbedError, Embedder, EmbeddingConfig};
use crate::vector::encode_blob;

/// Where the records come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestSource {
    /// One JSON object per line (blank lines skipped).
    Jsonl(PathBuf),
    /// Comma-separated values with a header line (RFC 4180 quoting).
    Csv(PathBuf),
}

impl IngestSource {
    /// The source for `path` by its extension: `.csv` is CSV; `.jsonl`, `.ndjson` and
    /// `.json` are JSONL. `None` for anything else.
    pub fn from_path(path: impl Into<PathBuf>) -> Option<IngestSource> {
        let path = path.into();
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(IngestSource::Csv(path)),
            "jsonl" | "ndjson" | "json" => Some(IngestSource::Jsonl(path)),
            _ => None,
        }
    }

    /// The file read.
    pub fn path(&self) -> &Path {
        match self {
            IngestSource::Jsonl(p) | IngestSource::Csv(p) => p,
        }
    }
}

/// How to load the records.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct IngestOptions {
    /// The primary-key column (default `id`).
    pub id_column: String,
    /// Columns indexed for full-text search; empty means no FTS index.
    pub fts_fields: Vec<String>,
    /// Columns that get a B-tree index: one per column, led by it and covering the
    /// others, so filters, counts and stats over these columns read indexes only.
    pub index_columns: Vec<String>,
    /// Embed each record's `fts_fields` text and store it in `embedding_column`.
    pub embed: Option<EmbeddingConfig>,
    /// Column for stored embeddings (default `embedding`).
    pub embedding_column: String,
    /// Drop an existing table (and its FTS index) first; otherwise an existing table is
    /// an error.
    pub replace: bool,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            id_column: crate::config::DEFAULT_ID_COLUMN.to_owned(),
            fts_fields: Vec::new(),
            index_columns: Vec::new(),
            embed: None,
            embedding_column: crate::config::DEFAULT_EMBEDDING_COLUMN.to_owned(),
            replace: false,
        }
    }
}

impl IngestOptions {
    /// Options matching a query backend's config: its id column, `fts_fields`, an index
    /// on every filter, stats-group and ORDER BY column, and its embedding endpoint.
    pub fn from_config(config: &QueryConfig) -> Self {
        let mut index_columns: Vec<String> = Vec::new();
        let columns = config
            .filter_fields
            .iter()
            .map(|f| &f.column)
            .chain(&config.stats_groups)
            .chain(config.default_order_by.iter().map(|o| &o.column));
        for c in columns {
            let c = c.as_str();
            if c != "rowid"
                && c != config.id_column.as_str()
                && !index_columns.iter().any(|i| i == c)
            {
                index_columns.push(c.to_owned());
            }
        }
        Self {
            id_column: config.id_column.as_str().to_owned(),
            fts_fields: config
                .fts_fields
                .iter()
                .map(|f| f.as_str().to_owned())
                .collect(),
            index_columns,
            embed: config.embedding.clone(),
            embedding_column: config.embedding_column.as_str().to_owned(),
            replace: false,
        }
    }
}

/// What an ingest did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IngestReport {
    /// Rows inserted.
    pub rows: usize,
    /// The table written.
    pub table: String,
    /// Whether an FTS5 index was built.
    pub fts: bool,
    /// Rows that got an embedding.
    pub embedded: usize,
    /// The columns created, with their SQL types, in order.
    pub columns: Vec<(String, String)>,
}

/// Why an ingest failed; nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The source file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A record is malformed.
    #[error("{}:{line}: {message}", path.display())]
    Record {
        /// The file.
        path: PathBuf,
        /// The 1-based line the record starts on.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// The data as a whole does not fit the options (no records, missing columns…).
    #[error("{}: {message}", path.display())]
    Data {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An option is invalid.
    #[error("invalid ingest option {option}: {message}")]
    Option {
        /// The option.
        option: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The table exists and `replace` was not set.
    #[error("table '{table}' already exists in {}; pass replace (--replace) to overwrite it", db.display())]
    TableExists {
        /// The table.
        table: String,
        /// The database.
        db: PathBuf,
    },
    /// Embedding the records failed.
    #[error("cannot embed the records: {0}")]
    Embedding(#[from] EmbedError),
    /// The database could not be written.
    #[error("cannot write {}: {message}", db.display())]
    Database {
        /// The database.
        db: PathBuf,
        /// The database's message.
        message: String,
    },
}

/// Loads `source` into table `table` of the SQLite database at `db_path` (created if
/// missing), builds its FTS5 index over `options.fts_fields`, and embeds records when
/// `options.embed` is set.
pub async fn ingest(
    db_path: &Path,
    table: &str,
    source: IngestSource,
    options: IngestOptions,
) -> Result<IngestReport, IngestError> {
    let option =
        |option: &'static str| move |message: String| IngestError::Option { option, message };
    let table = Ident::new(table).map_err(option("table"))?;
    let id_column = Ident::new(&options.id_column).map_err(option("id_column"))?;
    let embedding_column =
        Ident::new(&options.embedding_column).map_err(option("embedding_column"))?;
    let fts_fields = options
        .fts_fields
        .iter()
        .map(|f| Ident::new(f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(option("fts_fields"))?;
    let index_columns = options
        .index_columns
        .iter()
        .map(|f| Ident::new(f))
        .collect::<Result<Vec<_>, _>>()
        .map_err(option("index_columns"))?;
    let fts = Ident::new(&format!("{table}_fts")).map_err(option("table"))?;
    if options.embed.is_some() && fts_fields.is_empty() {
        return Err(IngestError::Option {
            option: "embed",
            message: "embedding needs fts_fields to choose each record's text".to_owned(),
        });
    }
    let embedder = options.embed.as_ref().map(Embedder::new).transpose()?;

    let path = source.path().to_owned();
    let id_for_read = id_column.clone();
    let mut data = tokio::task::spawn_blocking(move || read_source(&source, &id_for_read))
        .await
        .map_err(|e| IngestError::Data {
            path: path.clone(),
            message: format!("reading task failed: {e}"),
        })??;
    let missing: Vec<&str> = fts_fields
        .iter()
        .chain(&index_columns)
        .filter(|c| data.column(c).is_none())
        .map(Ident::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(IngestError::Data {
            path,
            message: format!(
                "no column {} in the data (columns: {})",
                missing.join(", "),
                data.columns
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }

    let mut embedded = 0;
    if let Some(embedder) = embedder {
        let field_indexes: Vec<usize> = fts_fields.iter().filter_map(|f| data.column(f)).collect();
        let texts: Vec<String> = data
            .rows
            .iter()
            .map(|(_, values)| {
                field_indexes
                    .iter()
                    .filter_map(|&i| match &values[i] {
                        SqlValue::Text(t) if !t.trim().is_empty() => Some(t.clone()),
                        SqlValue::Integer(n) => Some(n.to_string()),
                        SqlValue::Real(f) => Some(f.to_string()),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join("\n\n")
            })
            .collect();
        let wanted: Vec<usize> = (0..texts.len()).filter(|&i| !texts[i].is_empty()).collect();
        let refs: Vec<&str> = wanted.iter().map(|&i| texts[i].as_str()).collect();
        let vectors = embedder.embed(&refs).await?;
        let column = match data.column(&embedding_column) {
            Some(i) => {
                data.columns[i].sql_type = "BLOB";
                i
            }
            None => {
                data.columns.push(Column {
                    name: embedding_column.clone(),
                    sql_type: "BLOB",
                });
                for (_, values) in &mut data.rows {
                    values.push(SqlValue::Null);
                }
                data.columns.len() - 1
            }
        };
        for (row_index, vector) in wanted.into_iter().zip(vectors) {
            data.rows[row_index].1[column] = SqlValue::Blob(encode_blob(&vector));
            embedded += 1;
        }
    }

    let db = db_path.to_owned();
    let plan = WritePlan {
        table,
        fts,
        id_column,
        fts_fields,
        index_columns,
        replace: options.replace,
        source_path: data.path.clone(),
    };
    let report = tokio::task::spawn_blocking(move || write(&db, &plan, &data))
        .await
        .map_err(|e| IngestError::Database {
            db: db_path.to_owned(),
            message: format!("writing task failed: {e}"),
        })??;
    Ok(IngestReport { embedded, ..report })
}

#[derive(Debug)]
struct Column {
    name: Ident,
    sql_type: &'static str,
}

/// Parsed records: columns and rows (with their lines), values in column order.
#[derive(Debug)]
struct Data {
    path: PathBuf,
    columns: Vec<Column>,
    rows: Vec<(usize, Vec<SqlValue>)>,
}

impl Data {
    fn column(&self, name: &Ident) -> Option<usize> {
        self.columns.iter().position(|c| &c.name == name)
    }
}

fn read_source(source: &IngestSource, id_column: &Ident) -> Result<Data, IngestError> {
    let path = source.path().to_owned();
    let text = std::fs::read_to_string(&path).map_err(|e| IngestError::Read {
        path: path.clone(),
        source: e,
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let record_error = |line: usize, message: String| IngestError::Record {
        path: path.clone(),
        line,
        message,
    };
    let (names, rows): Parsed = match source {
        IngestSource::Jsonl(_) => read_jsonl(text).map_err(|(l, m)| record_error(l, m))?,
        IngestSource::Csv(_) => read_csv(text).map_err(|(l, m)| record_error(l, m))?,
    };
    if rows.is_empty() {
        return Err(IngestError::Data {
            path,
            message: "no records".to_owned(),
        });
    }
    let mut columns = Vec::with_capacity(names.len());
    for (line, name) in &names {
        let ident =
            Ident::new(name).map_err(|e| record_error(*line, format!("key {e}; rename it")))?;
        columns.push(ident);
    }
    let Some(id_index) = columns.iter().position(|c| c == id_column) else {
        return Err(IngestError::Data {
            path,
            message: format!(
                "the records have no '{id_column}' (the id column; columns: {})",
                columns
                    .iter()
                    .map(Ident::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    };
    for (line, values) in &rows {
        if matches!(values.get(id_index), None | Some(SqlValue::Null)) {
            return Err(record_error(
                *line,
                format!("the record has no '{id_column}'"),
            ));
        }
    }
    let columns = columns
        .into_iter()
        .enumerate()
        .map(|(i, name)| Column {
            name,
            sql_type: infer_type(
                rows.iter()
                    .map(|(_, v)| v.get(i).unwrap_or(&SqlValue::Null)),
            ),
        })
        .collect();
    Ok(Data {
        path,
        columns,
        rows,
    })
}

type Parsed = (Vec<(usize, String)>, Vec<(usize, Vec<SqlValue>)>);

fn read_jsonl(text: &str) -> Result<Parsed, (usize, String)> {
    let mut names: Vec<(usize, String)> = Vec::new();
    let mut records: Vec<(usize, serde_json::Map<String, Value>)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value =
            serde_json::from_str(line).map_err(|e| (line_no, format!("not valid JSON: {e}")))?;
        let Value::Object(map) = value else {
            return Err((
                line_no,
                format!(
                    "expected a JSON object, found {}",
                    crate::request::json_kind(&value)
                ),
            ));
        };
        for key in map.keys() {
            if !names.iter().any(|(_, n)| n == key) {
                names.push((line_no, key.clone()));
            }
        }
        records.push((line_no, map));
    }
    let rows = records
        .into_iter()
        .map(|(line, mut map)| {
            let values = names
                .iter()
                .map(|(_, name)| json_to_sql(map.remove(name).unwrap_or(Value::Null)))
                .collect();
            (line, values)
        })
        .collect();
    Ok((names, rows))
}

fn json_to_sql(v: Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Bool(b) => SqlValue::Integer(i64::from(b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Integer(i),
            None => n.as_f64().map_or(SqlValue::Null, SqlValue::Real),
        },
        Value::String(s) => SqlValue::Text(s),
        nested @ (Value::Array(_) | Value::Object(_)) => SqlValue::Text(nested.to_string()),
    }
}

fn read_csv(text: &str) -> Result<Parsed, (usize, String)> {
    let mut records = csv::parse(text)?.into_iter();
    let Some((header_line, header)) = records.next() else {
        return Ok((Vec::new(), Vec::new()));
    };
    let names: Vec<(usize, String)> = header
        .into_iter()
        .map(|h| (header_line, h.trim().to_owned()))
        .collect();
    for (i, (_, n)) in names.iter().enumerate() {
        if names[..i].iter().any(|(_, m)| m == n) {
            return Err((
                header_line,
                format!("column '{n}' appears twice in the header"),
            ));
        }
    }
    let mut rows = Vec::new();
    for (line, fields) in records {
        if fields.len() != names.len() {
            return Err((
                line,
                format!(
                    "{} fields, but the header has {} columns",
                    fields.len(),
                    names.len()
                ),
            ));
        }
        rows.push((line, fields.into_iter().map(csv_to_sql).collect()));
    }
    Ok((names, rows))
}

fn csv_to_sql(cell: String) -> SqlValue {
    let trimmed = cell.trim();
    if trimmed.is_empty() {
        SqlValue::Null
    } else if let Ok(i) = trimmed.parse::<i64>() {
        SqlValue::Integer(i)
    } else if let Some(f) = trimmed.parse::<f64>().ok().filter(|f| f.is_finite()) {
        SqlValue::Real(f)
    } else {
        SqlValue::Text(cell)
    }
}

/// `INTEGER`, `REAL` or `TEXT` for a column holding `values`.
fn infer_type<'a>(values: impl Iterator<Item = &'a SqlValue>) -> &'static str {
    let mut ty = None;
    for v in values {
        ty = match (ty, v) {
            (t, SqlValue::Null) => t,
            (None | Some("INTEGER"), SqlValue::Integer(_)) => Some("INTEGER"),
            (None | Some("INTEGER") | Some("REAL"), SqlValue::Real(_))
            | (Some("REAL"), SqlValue::Integer(_)) => Some("REAL"),
            _ => return "TEXT",
        };
    }
    ty.unwrap_or("TEXT")
}

struct WritePlan {
    table: Ident,
    fts: Ident,
    id_column: Ident,
    fts_fields: Vec<Ident>,
    index_columns: Vec<Ident>,
    replace: bool,
    source_path: PathBuf,
}

fn write(db: &Path, plan: &WritePlan, data: &Data) -> Result<IngestReport, IngestError> {
    let fail = |message: String| IngestError::Database {
        db: db.to_owned(),
        message,
    };
    let sql_err = |e: rusqlite::Error| fail(e.to_string());
    if let Some(parent) = db.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| fail(format!("cannot create {}: {e}", parent.display())))?;
    }
    let mut conn = Connection::open(db).map_err(sql_err)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(sql_err)?;
    let tx = conn.transaction().map_err(sql_err)?;
    let exists: Option<String> = tx
        .query_row(
            "SELECT type FROM sqlite_master WHERE name = ?1",
            [plan.table.as_str()],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql_err)?;
    if let Some(kind) = exists {
        if !plan.replace {
            return Err(IngestError::TableExists {
                table: plan.table.to_string(),
                db: db.to_owned(),
            });
        }
        if kind != "table" {
            return Err(fail(format!(
                "'{}' is a {kind}, not a table; it was left alone",
                plan.table
            )));
        }
        tx.execute_batch(&format!(
            "DROP TABLE IF EXISTS {}; DROP TABLE {};",
            plan.fts.quoted(),
            plan.table.quoted()
        ))
        .map_err(sql_err)?;
    } else if plan.replace {
        tx.execute_batch(&format!("DROP TABLE IF EXISTS {};", plan.fts.quoted()))
            .map_err(sql_err)?;
    }
    let definitions: Vec<String> = data
        .columns
        .iter()
        .map(|c| {
            if c.name == plan.id_column {
                format!("{} {} PRIMARY KEY NOT NULL", c.name.quoted(), c.sql_type)
            } else {
                format!("{} {}", c.name.quoted(), c.sql_type)
            }
        })
        .collect();
    tx.execute_batch(&format!(
        "CREATE TABLE {} ({});",
        plan.table.quoted(),
        definitions.join(", ")
    ))
    .map_err(sql_err)?;
    {
        let placeholders: Vec<String> = (1..=data.columns.len()).map(|i| format!("?{i}")).collect();
        let columns: Vec<String> = data.columns.iter().map(|c| c.name.quoted()).collect();
        let mut insert = tx
            .prepare(&format!(
                "INSERT INTO {} ({}) VALUES ({})",
                plan.table.quoted(),
                columns.join(", "),
                placeholders.join(", ")
            ))
            .map_err(sql_err)?;
        let id_index = data.column(&plan.id_column).unwrap_or_default();
        for (line, values) in &data.rows {
            if let Err(e) = insert.execute(params_from_iter(values.iter())) {
                let message = match e.sqlite_error_code() {
                    Some(ErrorCode::ConstraintViolation) => format!(
                        "duplicate {} {}",
                        plan.id_column,
                        sql_display(&values[id_index])
                    ),
                    _ => e.to_string(),
                };
                return Err(IngestError::Record {
                    path: plan.source_path.clone(),
                    line: *line,
                    message,
                });
            }
        }
    }
    // Each index leads with one column and carries the others, so filters combining
    // them, their counts and stats read the index only.
    for column in &plan.index_columns {
        let mut key = vec![column.quoted()];
        key.extend(
            plan.index_columns
                .iter()
                .filter(|c| *c != column)
                .map(Ident::quoted),
        );
        tx.execute_batch(&format!(
            "CREATE INDEX {} ON {} ({});",
            Ident::new(&format!("{}_{}_idx", plan.table, column))
                .map_err(fail)?
                .quoted(),
            plan.table.quoted(),
            key.join(", ")
        ))
        .map_err(sql_err)?;
    }
    let fts = !plan.fts_fields.is_empty();
    if fts {
        let fields: Vec<String> = plan.fts_fields.iter().map(Ident::quoted).collect();
        tx.execute_batch(&format!(
            "CREATE VIRTUAL TABLE {fts} USING fts5({fields}, content='{table}', content_rowid='rowid', tokenize='porter unicode61 remove_diacritics 2');
             INSERT INTO {fts}({fts}) VALUES ('rebuild');",
            fts = plan.fts.quoted(),
            fields = fields.join(", "),
            table = plan.table.as_str(),
        ))
        .map_err(sql_err)?;
    }
    tx.execute_batch("ANALYZE;").map_err(sql_err)?;
    tx.commit().map_err(sql_err)?;
    Ok(IngestReport {
        rows: data.rows.len(),
        table: plan.table.to_string(),
        fts,
        embedded: 0,
        columns: data
            .columns
            .iter()
            .map(|c| (c.name.to_string(), c.sql_type.to_owned()))
            .collect(),
    })
}

fn sql_display(v: &SqlValue) -> String {
    match v {
        SqlValue::Null => "null".to_owned(),
        SqlValue::Integer(i) => i.to_string(),
        SqlValue::Real(f) => f.to_string(),
        SqlValue::Text(t) => format!("'{t}'"),
        SqlValue::Blob(b) => format!("<{} bytes>", b.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_inferred_over_all_values() {
        use SqlValue::{Integer, Null, Real, Text};
        assert_eq!(infer_type([Integer(1), Null, Integer(2)].iter()), "INTEGER");
        assert_eq!(infer_type([Integer(1), Real(0.5)].iter()), "REAL");
        assert_eq!(infer_type([Real(0.5), Integer(1)].iter()), "REAL");
        assert_eq!(infer_type([Integer(1), Text("x".into())].iter()), "TEXT");
        assert_eq!(infer_type([Null].iter()), "TEXT");
    }
}
