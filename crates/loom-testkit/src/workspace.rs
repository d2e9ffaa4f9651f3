//! A temporary directory that tests fill with files and that is removed on drop.

use std::path::{Component, Path, PathBuf};

use tempfile::TempDir;

use crate::TestkitError;

/// A temporary workspace directory, removed with everything in it on drop.
#[derive(Debug)]
pub struct TempWorkspace {
    dir: TempDir,
}

impl TempWorkspace {
    /// Creates an empty workspace under the system temporary directory.
    pub fn new() -> Result<Self, TestkitError> {
        let dir = tempfile::Builder::new()
            .prefix("loom-ws-")
            .tempdir()
            .map_err(|err| TestkitError::io("cannot create a temporary workspace", err))?;
        Ok(Self { dir })
    }

    /// The workspace root.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The absolute path of `rel` inside the workspace (not checked for existence).
    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes `contents` to `rel` (relative to the root), creating parent directories,
    /// and returns the absolute path written.
    ///
    /// `rel` must be relative and must not contain `..`.
    pub fn write(
        &self,
        rel: impl AsRef<Path>,
        contents: impl AsRef<[u8]>,
    ) -> Result<PathBuf, TestkitError> {
        let rel = rel.as_ref();
        if !rel
            .components()
            .all(|component| matches!(component, Component::Normal(_) | Component::CurDir))
        {
            return Err(TestkitError::PathEscapes {
                path: rel.to_owned(),
            });
        }
        let path = self.dir.path().join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|err| {
                TestkitError::io(format!("cannot create directory {}", parent.display()), err)
            })?;
        }
        std::fs::write(&path, contents)
            .map_err(|err| TestkitError::io(format!("cannot write {}", path.display()), err))?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_creates_parents_and_returns_the_absolute_path() {
        let ws = TempWorkspace::new().expect("create workspace");
        let path = ws.write("a/b/c.txt", "hello").expect("write file");
        assert_eq!(path, ws.path().join("a/b/c.txt"));
        assert_eq!(std::fs::read_to_string(&path).expect("read back"), "hello");
        assert_eq!(ws.join("a/b/c.txt"), path);
    }

    #[test]
    fn write_rejects_paths_that_leave_the_workspace() {
        let ws = TempWorkspace::new().expect("create workspace");
        for bad in ["../x", "/etc/passwd", "a/../../x"] {
            let err = ws.write(bad, "x").expect_err("path must be rejected");
            assert!(err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn drop_removes_the_directory() {
        let ws = TempWorkspace::new().expect("create workspace");
        ws.write("f", "x").expect("write file");
        let root = ws.path().to_owned();
        drop(ws);
        assert!(!root.exists());
    }
}
