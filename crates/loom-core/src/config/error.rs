//! Configuration errors that point at a file, a line, a column and a key path.

use std::fmt;
use std::path::{Path, PathBuf};

/// A place in a config file: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Line, counting from 1.
    pub line: usize,
    /// Column, counting from 1, in characters.
    pub column: usize,
}

/// One problem found in a config file.
///
/// It prints as `path/to/file.yaml:12:7: tools.workers[2].tier: unknown tier 'fast' …`,
/// the form editors and terminals turn into links.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConfigError {
    /// The file the problem is in, as the user named it (or as it was reached from another config).
    pub file: PathBuf,
    /// Where in the file; `None` for problems with the file as a whole (missing, unreadable).
    pub location: Option<Location>,
    /// The key path from the document root, e.g. `pipeline_stages[1].input_mapping.text`;
    /// empty for the root.
    pub key_path: String,
    /// What is wrong, lowercase, naming the bad value and the fix where there is one.
    pub message: String,
}

impl ConfigError {
    /// A problem with the whole file (it cannot be read, is empty, is not YAML…).
    pub fn file(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.into(),
            location: None,
            key_path: String::new(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(loc) = self.location {
            write!(f, ":{}:{}", loc.line, loc.column)?;
        }
        if self.key_path.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, ": {}: {}", self.key_path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found while loading one config (and the configs it references).
///
/// Loading never stops at the first problem: a broken file yields all of its errors,
/// sorted by file and position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    pub(crate) fn new(mut errors: Vec<ConfigError>) -> Self {
        errors.sort();
        errors.dedup();
        ConfigErrors(errors)
    }

    /// A single whole-file problem.
    pub(crate) fn one(file: &Path, message: impl Into<String>) -> Self {
        ConfigErrors(vec![ConfigError::file(file, message)])
    }

    /// The errors, sorted by file and position.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }

    /// Takes the errors out.
    pub fn into_vec(self) -> Vec<ConfigError> {
        self.0
    }

    /// How many errors there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (never true for a returned `Err`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "{n} config error{}", if n == 1 { "" } else { "s" })?;
        for e in &self.0 {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// The closest of `candidates` to `word`, if any is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `"; did you mean 'x'?"` when a candidate is close, else `""`.
pub fn suggestion<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    match did_you_mean(word, candidates) {
        Some(c) => format!("; did you mean '{c}'?"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        assert_eq!(
            did_you_mean("timout_seconds", ["timeout_seconds", "name"]),
            Some("timeout_seconds")
        );
        assert_eq!(did_you_mean("nmae", ["name", "description"]), Some("name"));
        assert_eq!(did_you_mean("banana", ["name", "description"]), None);
    }

    #[test]
    fn displays_file_line_column_and_key_path() {
        let e = ConfigError {
            file: "configs/mcp.yaml".into(),
            location: Some(Location {
                line: 12,
                column: 7,
            }),
            key_path: "tools.workers[2].config".into(),
            message: "file not found".into(),
        };
        assert_eq!(
            e.to_string(),
            "configs/mcp.yaml:12:7: tools.workers[2].config: file not found"
        );
        assert_eq!(
            ConfigError::file("a.yaml", "file is empty").to_string(),
            "a.yaml: file is empty"
        );
    }
}
