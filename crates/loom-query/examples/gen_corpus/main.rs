//! Writes the synthetic document corpus used by `examples/docman` as JSONL.
//!
//! Run with:
//!
//! ```text
//! cargo run -p loom-query --example gen_corpus -- --rows 3000 --out examples/docman/data/documents.jsonl
//! ```
//!
//! The output depends only on `--rows`: document `i` is the same on every run.

mod corpus;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: gen_corpus [--rows N] --out FILE";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("gen_corpus: {message}");
            }
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let mut rows = 3000usize;
    let mut out: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rows" => {
                let value = args.next().ok_or(USAGE)?;
                rows = value
                    .parse()
                    .map_err(|_| format!("--rows: '{value}' is not a number"))?;
            }
            "--out" => out = Some(PathBuf::from(args.next().ok_or(USAGE)?)),
            other => return Err(format!("unknown argument '{other}'; {USAGE}")),
        }
    }
    let out = out.ok_or(USAGE)?;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(&out, corpus::jsonl(rows))
        .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok(())
}
