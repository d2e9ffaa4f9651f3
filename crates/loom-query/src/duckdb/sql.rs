//! The DuckDB backend's statements, built only from the validated [`QueryConfig`]:
//! every identifier quoted, every payload value a numbered parameter (`$1`, `$2`…).

use crate::config::{Ident, OrderBy, QueryConfig};
use crate::request::Condition;

use super::MAX_STATS_GROUPS;

/// Output column of the BM25 score (kept apart from any `score` column of the table).
const SCORE: &str = "\"__loom_score\"";
/// Output column of the cosine similarity.
const SIMILARITY: &str = "\"__loom_similarity\"";

/// `"a", "b"`: the columns quoted, comma-separated.
pub(super) fn select_list(columns: &[Ident]) -> String {
    columns
        .iter()
        .map(Ident::quoted)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The schema `PRAGMA create_fts_index` creates for `table`.
pub(super) fn fts_schema(config: &QueryConfig) -> String {
    format!("\"fts_main_{}\"", config.table_name.as_str())
}

/// The columns the table's FTS index covers (from `fts_main_<table>.fields`).
pub(super) fn fts_fields_sql(config: &QueryConfig) -> String {
    format!("SELECT field FROM {}.\"fields\"", fts_schema(config))
}

/// BM25 search: `$1` query text, `$2` comma-separated fields, `$3` limit. Ties are
/// broken by id so results are deterministic.
pub(super) fn bm25_search(config: &QueryConfig) -> String {
    let id = config.id_column.quoted();
    format!(
        "SELECT {cols}, {SCORE} FROM (\
         SELECT *, {schema}.match_bm25({id}, $1, fields := $2) AS {SCORE} FROM {table}\
         ) AS \"__loom_m\" WHERE {SCORE} IS NOT NULL ORDER BY {SCORE} DESC, {id} LIMIT $3",
        cols = select_list(&config.result_columns),
        schema = fts_schema(config),
        table = config.table_name.quoted(),
    )
}

/// The fallback search without an FTS index: a case-insensitive substring match
/// (`$1`, wildcards escaped with `\`) over the `fts_fields`, newest id first; `$2` limit.
pub(super) fn ilike_search(config: &QueryConfig) -> String {
    let predicate = if config.fts_fields.is_empty() {
        "false".to_owned()
    } else {
        config
            .fts_fields
            .iter()
            .map(|c| format!("CAST({} AS VARCHAR) ILIKE $1 ESCAPE '\\'", c.quoted()))
            .collect::<Vec<_>>()
            .join(" OR ")
    };
    format!(
        "SELECT {cols} FROM {table} WHERE {predicate} ORDER BY {id} DESC LIMIT $2",
        cols = select_list(&config.result_columns),
        table = config.table_name.quoted(),
        id = config.id_column.quoted(),
    )
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
pub(super) fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// ` WHERE "a" >= $1 AND "b" IS NULL…` for `conditions` (empty when there are none);
/// parameters are numbered from 1 in the order of the conditions that take a value.
pub(super) fn where_clause(conditions: &[Condition]) -> String {
    if conditions.is_empty() {
        return String::new();
    }
    let mut n = 0;
    let parts: Vec<String> = conditions
        .iter()
        .map(|c| {
            let column = c.column.quoted();
            if c.op.is_null_test() || c.value.is_none() {
                return format!("{column} {}", c.op.as_str());
            }
            n += 1;
            format!("{column} {} ${n}", c.op.as_str())
        })
        .collect();
    format!(" WHERE {}", parts.join(" AND "))
}

/// An ORDER BY key: DuckDB's `rowid` pseudo-column unquoted, other columns quoted.
fn order_key(o: &OrderBy) -> String {
    let column = if o.column.as_str().eq_ignore_ascii_case("rowid") {
        "rowid".to_owned()
    } else {
        o.column.quoted()
    };
    format!("{column} {}", if o.descending { "DESC" } else { "ASC" })
}

/// `filter`'s row query (`limit` is parameter `$params+1`) and its count query.
pub(super) fn filter(
    config: &QueryConfig,
    where_sql: &str,
    params: usize,
    natural_order: &str,
) -> (String, String) {
    let table = config.table_name.quoted();
    let order = if config.default_order_by.is_empty() {
        natural_order.to_owned()
    } else {
        config
            .default_order_by
            .iter()
            .map(order_key)
            .collect::<Vec<_>>()
            .join(", ")
    };
    (
        format!(
            "SELECT {} FROM {table}{where_sql} ORDER BY {order} LIMIT ${}",
            select_list(&config.result_columns),
            params + 1
        ),
        format!("SELECT COUNT(*) FROM {table}{where_sql}"),
    )
}

/// `stats` grouped by `group`: ordered by the first aggregate, largest first, then by
/// the group value, so equal counts come out in a stable order.
pub(super) fn stats(config: &QueryConfig, group: &Ident) -> String {
    let g = group.quoted();
    let aggregates: Vec<String> = config.stats_aggregates.iter().map(|a| a.sql()).collect();
    let first = config
        .stats_aggregates
        .first()
        .map_or_else(|| g.clone(), |a| a.alias.quoted());
    format!(
        "SELECT {g}, {} FROM {} GROUP BY {g} ORDER BY {first} DESC NULLS LAST, {g} ASC NULLS LAST LIMIT {MAX_STATS_GROUPS}",
        aggregates.join(", "),
        config.table_name.quoted(),
    )
}

/// `SELECT COUNT(*)` of the whole table.
pub(super) fn count(config: &QueryConfig) -> String {
    format!("SELECT COUNT(*) FROM {}", config.table_name.quoted())
}

/// `get`: the document columns of the row whose id equals `$1`; with `as_text` the id
/// column is compared as text (for id columns that are neither integers nor text).
pub(super) fn get(config: &QueryConfig, as_text: bool) -> String {
    let id = config.id_column.quoted();
    let key = if as_text {
        format!("CAST({id} AS VARCHAR)")
    } else {
        id
    };
    format!(
        "SELECT {} FROM {} WHERE {key} = $1 LIMIT 1",
        select_list(&config.document_columns()),
        config.table_name.quoted(),
    )
}

/// `vector_search`: cosine similarity between the embedding column (a list, an array
/// or JSON text of numbers) and `$1` (the query vector as JSON text), over rows whose
/// vector has `$2` dimensions; best first, ties by id; `$3` limit. Unreadable vectors
/// and zero vectors are skipped.
pub(super) fn vector_search(config: &QueryConfig) -> String {
    let e = config.embedding_column.quoted();
    let id = config.id_column.quoted();
    let stored = format!("TRY_CAST({e} AS DOUBLE[])");
    format!(
        "SELECT {cols}, {SIMILARITY} FROM (\
         SELECT *, list_cosine_similarity({stored}, CAST($1 AS DOUBLE[])) AS {SIMILARITY} \
         FROM {table} WHERE {e} IS NOT NULL AND len({stored}) = $2\
         ) AS \"__loom_v\" WHERE {SIMILARITY} IS NOT NULL AND NOT isnan({SIMILARITY}) \
         ORDER BY {SIMILARITY} DESC, {id} LIMIT $3",
        cols = select_list(&config.result_columns),
        table = config.table_name.quoted(),
    )
}

/// A JSON array literal of `vector`, bound as `$1` of [`vector_search`]; `None` when a
/// component is not finite.
pub(super) fn vector_text(vector: &[f32]) -> Option<String> {
    if vector.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let items: Vec<String> = vector.iter().map(|x| x.to_string()).collect();
    Some(format!("[{}]", items.join(",")))
}

/// `LOAD '<path>'` with the path as a SQL string literal (quotes doubled); `None` for
/// a path that is not UTF-8 or holds a NUL.
pub(super) fn load_extension(path: &std::path::Path) -> Option<String> {
    let text = path.to_str()?;
    if text.contains('\0') {
        return None;
    }
    Some(format!("LOAD '{}'", text.replace('\'', "''")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FilterOp;
    use crate::request::FilterValue;

    fn config() -> QueryConfig {
        let map = serde_json::json!({
            "db_path": "x.duckdb",
            "result_columns": ["id", "title"],
            "fts_fields": "title,body",
            "stats_aggregates": ["COUNT(*) AS n", "AVG(score) AS mean"],
            "default_order_by": "rowid DESC, year",
        });
        match QueryConfig::from_backend_config(
            map.as_object().unwrap_or(&serde_json::Map::new()),
            "/".as_ref(),
        ) {
            Ok(c) => c,
            Err(p) => panic!("{p:?}"),
        }
    }

    #[test]
    fn statements_quote_identifiers_and_number_parameters() {
        let c = config();
        assert_eq!(
            bm25_search(&c),
            "SELECT \"id\", \"title\", \"__loom_score\" FROM (SELECT *, \"fts_main_documents\".match_bm25(\"id\", $1, fields := $2) AS \"__loom_score\" FROM \"documents\") AS \"__loom_m\" WHERE \"__loom_score\" IS NOT NULL ORDER BY \"__loom_score\" DESC, \"id\" LIMIT $3"
        );
        assert_eq!(
            ilike_search(&c),
            "SELECT \"id\", \"title\" FROM \"documents\" WHERE CAST(\"title\" AS VARCHAR) ILIKE $1 ESCAPE '\\' OR CAST(\"body\" AS VARCHAR) ILIKE $1 ESCAPE '\\' ORDER BY \"id\" DESC LIMIT $2"
        );
        let conditions = vec![
            Condition {
                column: Ident::new("score").unwrap_or_else(|e| panic!("{e}")),
                op: FilterOp::Ge,
                value: Some(FilterValue::Real(0.5)),
            },
            Condition {
                column: Ident::new("summary").unwrap_or_else(|e| panic!("{e}")),
                op: FilterOp::IsNull,
                value: None,
            },
            Condition {
                column: Ident::new("title").unwrap_or_else(|e| panic!("{e}")),
                op: FilterOp::ILike,
                value: Some(FilterValue::Text("%a%".into())),
            },
        ];
        let w = where_clause(&conditions);
        assert_eq!(
            w,
            " WHERE \"score\" >= $1 AND \"summary\" IS NULL AND \"title\" ILIKE $2"
        );
        let (rows, count) = filter(&c, &w, 2, "rowid");
        assert!(
            rows.ends_with("ORDER BY rowid DESC, \"year\" ASC LIMIT $3"),
            "{rows}"
        );
        assert_eq!(count, format!("SELECT COUNT(*) FROM \"documents\"{w}"));
        assert_eq!(
            stats(&c, &Ident::new("year").unwrap_or_else(|e| panic!("{e}"))),
            "SELECT \"year\", COUNT(*) AS \"n\", AVG(\"score\") AS \"mean\" FROM \"documents\" GROUP BY \"year\" ORDER BY \"n\" DESC NULLS LAST, \"year\" ASC NULLS LAST LIMIT 1000"
        );
        assert!(get(&c, true).contains("WHERE CAST(\"id\" AS VARCHAR) = $1"));
    }

    #[test]
    fn values_are_escaped_where_they_must_be_literals() {
        assert_eq!(escape_like("50%_a\\"), "50\\%\\_a\\\\");
        assert_eq!(
            load_extension("/x/it's/fts.duckdb_extension".as_ref()).as_deref(),
            Some("LOAD '/x/it''s/fts.duckdb_extension'")
        );
        assert_eq!(
            vector_text(&[0.5, -1.0, 2.0]).as_deref(),
            Some("[0.5,-1,2]")
        );
        assert_eq!(vector_text(&[f32::NAN]), None);
    }
}
