//! Finding config files: the paths a user names, and the YAML files inside directories.

use std::path::{Path, PathBuf};

/// A config file to read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct FoundConfig {
    /// The file.
    pub path: PathBuf,
    /// Whether the user named it (rather than it being found in a directory). A named
    /// file must be a Loom config; a found one whose keys match no kind is skipped.
    pub named: bool,
}

/// Expands `paths`: files are kept as given, directories are searched recursively for
/// `*.yaml` and `*.yml`, skipping hidden entries and files whose names start with `_`
/// (templates). Files found in one directory come sorted.
pub fn find_config_files(paths: &[PathBuf]) -> Result<Vec<FoundConfig>, std::io::Error> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot read {}: {e}", p.display()))
        })?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found).map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot list {}: {e}", p.display()))
            })?;
            found.sort();
            out.extend(
                found
                    .into_iter()
                    .map(|path| FoundConfig { path, named: false }),
            );
        } else {
            out.push(FoundConfig {
                path: p.clone(),
                named: true,
            });
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(&path, out)?;
        } else if !name.starts_with('_') && (name.ends_with(".yaml") || name.ends_with(".yml")) {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_directories_and_keeps_named_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        for f in [
            "b.yaml",
            "a.yml",
            "_template.yaml",
            ".hidden.yaml",
            "notes.txt",
            "sub/c.yaml",
            ".git/x.yaml",
        ] {
            let p = root.join(f);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, "x: 1\n").expect("write");
        }
        let named = root.join("notes.txt");
        let found = find_config_files(&[root.to_path_buf(), named.clone()]).expect("found");
        let rel: Vec<(String, bool)> = found
            .iter()
            .map(|f| {
                (
                    f.path
                        .strip_prefix(root)
                        .expect("inside")
                        .display()
                        .to_string(),
                    f.named,
                )
            })
            .collect();
        assert_eq!(
            rel,
            [
                ("a.yml".into(), false),
                ("b.yaml".into(), false),
                ("sub/c.yaml".into(), false),
                ("notes.txt".into(), true)
            ]
        );
        let err = find_config_files(&[root.join("missing")]).expect_err("missing");
        assert!(err.to_string().contains("cannot read"), "{err}");
    }
}
