//! `loom validate`: check config files, report every error, exit 1 if any.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use loom_core::config::{self, ConfigError, ConfigKind};

use crate::EXIT_NO;

/// The long help of `loom validate`.
pub(crate) const LONG_ABOUT: &str = "Check config files and report every error with its file, line and key path.\n\n\
Each PATH is a config file or a directory, searched recursively for *.yaml and *.yml \
(skipping hidden entries and files whose names start with '_', such as templates). \
The kind of each file is told from its top-level keys: pipeline_stages → pipeline; \
tier_overrides or rate_limits → router rules; tools or resources → gateway; system_prompt, \
processing_backend or worker_kind → worker. A gateway is checked together with every worker \
and pipeline config it references.\n\n\
A file named on the command line whose kind cannot be told is an error; one found in a \
directory is skipped with a note on stderr.\n\n\
Exit status: 0 when every config is valid, 1 when any has errors, 2 when a path cannot be read.";

/// Arguments of `loom validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Config files or directories to check.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,

    /// Check every file as this kind instead of telling it from its keys.
    #[arg(long, value_name = "KIND", value_parser = parse_kind)]
    pub kind: Option<ConfigKind>,
}

fn parse_kind(s: &str) -> Result<ConfigKind, String> {
    s.parse()
}

/// Runs `loom validate`.
pub(crate) fn run(args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let files = config::find_config_files(&args.paths)?;

    let mut errors: BTreeSet<ConfigError> = BTreeSet::new();
    let mut checked = 0usize;
    let mut skipped = Vec::new();
    for found in &files {
        let file = &found.path;
        let kind = match (args.kind, found.named) {
            (Some(k), _) => Some(k),
            (None, true) => None,
            (None, false) => match config::detect_kind(file) {
                Ok(Some(k)) => Some(k),
                Ok(None) => {
                    skipped.push(file.clone());
                    continue;
                }
                Err(e) => {
                    checked += 1;
                    errors.extend(e);
                    continue;
                }
            },
        };
        checked += 1;
        match config::load_any(file, kind) {
            Ok(loaded) => errors.extend(component_errors(&loaded)),
            Err(e) => errors.extend(e),
        }
    }

    for s in &skipped {
        tracing::info!(file = %s.display(), "Skipped: not a Loom config (its keys match no config kind).");
    }
    let bad_files: BTreeSet<&Path> = errors.iter().map(|e| e.file.as_path()).collect();
    let mut out = std::io::stdout().lock();
    for e in &errors {
        writeln!(out, "{e}")?;
    }
    let summary = if errors.is_empty() {
        format!(
            "{checked} config file{} valid",
            if checked == 1 { "" } else { "s" }
        )
    } else {
        format!(
            "{} error{} in {} file{} ({checked} checked)",
            errors.len(),
            if errors.len() == 1 { "" } else { "s" },
            bad_files.len(),
            if bad_files.len() == 1 { "" } else { "s" },
        )
    };
    writeln!(out, "{summary}")?;
    if checked == 0 {
        anyhow::bail!("no config files found in {}", display_list(&args.paths));
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NO)
    })
}

/// Problems the config loader cannot see because they belong to a component: a
/// processor's backend and its `backend_config` are checked by building the processor,
/// exactly as `loom processor` and `loom up` would.
fn component_errors(loaded: &config::AnyConfig) -> Vec<ConfigError> {
    let config::AnyConfig::Worker(worker) = loaded else {
        return Vec::new();
    };
    if !matches!(worker.kind, config::WorkerKind::Processor { .. }) {
        return Vec::new();
    }
    let Err(e) = loom_mesh::processors::build_processor(worker) else {
        return Vec::new();
    };
    let problems: Vec<(String, String)> = match &e {
        loom_mesh::processors::BuildError::Config { problems, .. } => problems
            .iter()
            .map(|p| match p.split_once(": ") {
                Some((key, message)) => (key.to_owned(), message.to_owned()),
                None => ("backend_config".to_owned(), p.clone()),
            })
            .collect(),
        other => vec![("processing_backend".to_owned(), other.to_string())],
    };
    problems
        .into_iter()
        .map(|(key_path, message)| ConfigError {
            file: worker.source.clone(),
            location: config::locate(&worker.source, &key_path),
            key_path,
            message,
        })
        .collect()
}

fn display_list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
