//! `loom query`: work with query-backend databases.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use loom_query::{IngestOptions, IngestSource, ingest};

use crate::runtime::tokio_runtime;

/// Arguments of `loom query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: QueryCommand,
}

/// The `loom query` subcommands.
#[derive(Debug, Subcommand)]
pub enum QueryCommand {
    /// Load a JSONL or CSV file into a SQLite table with a full-text index.
    #[command(long_about = INGEST_ABOUT)]
    Ingest(IngestArgs),
}

const INGEST_ABOUT: &str = "Load a JSONL or CSV file into a SQLite table with a full-text index.\n\n\
The table's columns come from the first record (integers, reals and text; nested JSON is \
stored as JSON text). Rows are inserted in one transaction. With --fts-fields an FTS5 index \
is built over those columns, which the `search` action ranks with bm25. Point a query \
backend's `backend_config` at the result (db_path, table_name, fts_fields).\n\n\
Example:\n  loom query ingest --db data/documents.db --table documents \\\n    \
--fts-fields title,summary,full_text --index category,year examples/docman/data/documents.jsonl";

/// Arguments of `loom query ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// The JSONL (.jsonl, .ndjson) or CSV (.csv) file to load.
    #[arg(value_name = "FILE")]
    pub source: PathBuf,

    /// The SQLite database to write (created if missing).
    #[arg(long, value_name = "FILE")]
    pub db: PathBuf,

    /// The table to create.
    #[arg(long, value_name = "NAME", default_value = "documents")]
    pub table: String,

    /// The primary-key column.
    #[arg(long, value_name = "COLUMN", default_value = "id")]
    pub id_column: String,

    /// Columns to index for full-text search, comma-separated.
    #[arg(long, value_name = "COLUMNS", value_delimiter = ',')]
    pub fts_fields: Vec<String>,

    /// Columns to give a B-tree index (for filters and stats), comma-separated.
    #[arg(long = "index", value_name = "COLUMNS", value_delimiter = ',')]
    pub index_columns: Vec<String>,

    /// Drop the table first if it exists.
    #[arg(long)]
    pub replace: bool,
}

/// Runs `loom query …`.
pub(crate) fn run(args: &QueryArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        QueryCommand::Ingest(a) => run_ingest(a),
    }
}

#[allow(clippy::print_stdout)] // The report is the command's result.
fn run_ingest(args: &IngestArgs) -> anyhow::Result<ExitCode> {
    let Some(source) = IngestSource::from_path(args.source.clone()) else {
        bail!(
            "{} is neither .jsonl/.ndjson nor .csv",
            args.source.display()
        );
    };
    let mut options = IngestOptions::default();
    options.id_column = args.id_column.clone();
    options.fts_fields = args.fts_fields.clone();
    options.index_columns = args.index_columns.clone();
    options.replace = args.replace;
    let report = tokio_runtime()?
        .block_on(ingest(&args.db, &args.table, source, options))
        .with_context(|| {
            format!(
                "cannot load {} into {}",
                args.source.display(),
                args.db.display()
            )
        })?;
    println!(
        "{} rows into {}.{}{}",
        report.rows,
        args.db.display(),
        report.table,
        if report.fts {
            " with a full-text index"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}
