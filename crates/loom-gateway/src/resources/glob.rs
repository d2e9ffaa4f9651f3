//! Resource patterns: [`loom_core::glob`]'s `fnmatch`-style globs with `**/` for "any
//! number of directories", matched against a file's root-relative path and its name.

use loom_core::glob::{DoubleStar, GlobList};

/// The configured patterns: `None` lets every file through, `Some([])` none.
#[derive(Debug, Clone)]
pub(super) struct Patterns {
    globs: Option<GlobList>,
}

impl Patterns {
    /// Compiles `patterns`.
    pub(super) fn new(patterns: Option<&[String]>) -> Patterns {
        Patterns {
            globs: patterns.map(|list| GlobList::new(list, DoubleStar::Directories)),
        }
    }

    /// Whether no file can match (an empty pattern list).
    pub(super) fn matches_nothing(&self) -> bool {
        self.globs.as_ref().is_some_and(GlobList::is_empty)
    }

    /// Whether a file with root-relative path `relative` (`/`-separated) and file name
    /// `name` is served: some pattern matches the relative path or the name.
    pub(super) fn matches(&self, relative: &str, name: &str) -> bool {
        match &self.globs {
            None => true,
            Some(globs) => globs.is_match(relative) || globs.is_match(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_path_or_name() {
        let patterns = Patterns::new(Some(&["docs/*.md".to_owned(), "*.json".to_owned()]));
        assert!(patterns.matches("docs/a.md", "a.md"));
        assert!(patterns.matches("x/y/z.json", "z.json"));
        assert!(!patterns.matches("notes/a.md", "a.md"));
        assert!(Patterns::new(None).matches("anything", "anything"));
        assert!(Patterns::new(Some(&[])).matches_nothing());
        assert!(!Patterns::new(Some(&[])).matches("a", "a"));
    }
}
