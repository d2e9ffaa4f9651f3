//! File refs resolved inside a workspace root that they cannot escape.
//!
//! Workers and the gateway receive file refs (`"report.json"`, `"docs/a.md"`) from
//! untrusted payloads. loom-ai 0.9.0 compared canonical paths as strings, so
//! `../ws2/secret.json` escaped a workspace at `/x/ws` into its sibling `/x/ws2`, and it did
//! not check writes at all (mesh spec §8, §19 B5). A [`Workspace`] closes both holes:
//!
//! * a ref must be relative and free of `..` components, NUL bytes and drive prefixes
//!   (checked on the text, before touching the file system; `\` counts as a separator);
//! * the joined path is canonicalised (following symlinks) and must lie under the
//!   canonical root **by path components** ([`Path::starts_with`]), never by string prefix;
//! * writes check the deepest existing ancestor the same way, refuse an existing target
//!   (or a symlink) that leads outside, create missing parent directories inside the root,
//!   and replace the file atomically (write to a temporary sibling, then rename), so a
//!   symlink at the target is replaced, never followed.
//!
//! A [`WorkspacePath`] can only come out of the resolver, so a function that takes one
//! knows it was checked.
//!
//! The checks defend against crafted refs. They do not defend against another process that
//! rewrites the directory tree *between* the check and the use: the workspace directory
//! itself must not be writable by an attacker.
//!
//! ```
//! use loom_core::workspace::Workspace;
//!
//! let dir = tempfile::tempdir()?;
//! let ws = Workspace::open(dir.path())?;
//! ws.write_json("out/report.json", &serde_json::json!({"ok": true}))?;
//! assert_eq!(ws.read_text("out/report.json")?, "{\n  \"ok\": true\n}");
//! assert!(ws.resolve("../elsewhere.json").is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Write};
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

/// A directory that file refs are resolved in and cannot leave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    /// Canonical (absolute, symlink-free) root.
    root: PathBuf,
}

/// A path that the resolver has checked to lie inside its workspace.
///
/// Only [`Workspace::resolve`] and [`Workspace::resolve_for_write`] build one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkspacePath {
    path: PathBuf,
    file_ref: String,
}

impl WorkspacePath {
    /// The checked absolute path. For reads it is canonical; for writes it is the canonical
    /// deepest existing ancestor joined with the names still to be created.
    pub fn as_path(&self) -> &Path {
        &self.path
    }

    /// The ref as given, relative to the workspace root.
    pub fn file_ref(&self) -> &str {
        &self.file_ref
    }
}

impl AsRef<Path> for WorkspacePath {
    fn as_ref(&self) -> &Path {
        &self.path
    }
}

impl Workspace {
    /// Opens the workspace at `root`, which must exist and be a directory. The root is
    /// canonicalised once, here.
    pub fn open(root: impl AsRef<Path>) -> Result<Workspace, WorkspaceError> {
        let given = root.as_ref();
        let root = fs::canonicalize(given).map_err(|source| WorkspaceError::Root {
            root: given.to_path_buf(),
            source,
        })?;
        if !root.is_dir() {
            return Err(WorkspaceError::RootNotDirectory { root });
        }
        Ok(Workspace { root })
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves `file_ref` for reading: it must name an existing file or directory inside
    /// the root once symlinks are followed.
    pub fn resolve(&self, file_ref: &str) -> Result<WorkspacePath, WorkspaceError> {
        let relative = lexical_check(file_ref)?;
        let joined = self.root.join(&relative);
        let canonical =
            fs::canonicalize(&joined).map_err(|source| not_found_or_io(file_ref, source))?;
        self.inside(file_ref, canonical)
    }

    /// Resolves `file_ref` for writing. The target need not exist, but:
    ///
    /// * its deepest existing ancestor must canonicalise to a directory inside the root;
    /// * if the target exists (as a file or as a symlink, even a dangling one), it must
    ///   canonicalise inside the root and must not be a directory;
    /// * it must not name the root itself.
    pub fn resolve_for_write(&self, file_ref: &str) -> Result<WorkspacePath, WorkspaceError> {
        let relative = lexical_check(file_ref)?;
        if relative.as_os_str().is_empty() {
            return Err(WorkspaceError::NotAFile {
                file_ref: file_ref.to_owned(),
            });
        }
        let target = self.root.join(&relative);
        if fs::symlink_metadata(&target).is_ok() {
            // Exists: follow it all the way, and refuse a dangling link (writing through it
            // would create a file wherever it points).
            let canonical = fs::canonicalize(&target).map_err(|_| WorkspaceError::Escapes {
                file_ref: file_ref.to_owned(),
            })?;
            let checked = self.inside(file_ref, canonical)?;
            if checked.path.is_dir() {
                return Err(WorkspaceError::NotAFile {
                    file_ref: file_ref.to_owned(),
                });
            }
            return Ok(checked);
        }
        // Does not exist: find the deepest existing ancestor and check it.
        let mut ancestor = target.as_path();
        let mut missing: Vec<&OsStr> = Vec::new();
        loop {
            if fs::symlink_metadata(ancestor).is_ok() {
                break;
            }
            match (ancestor.file_name(), ancestor.parent()) {
                (Some(name), Some(parent)) => {
                    missing.push(name);
                    ancestor = parent;
                }
                // Unreachable in practice: the root exists.
                _ => {
                    return Err(WorkspaceError::NotFound {
                        file_ref: file_ref.to_owned(),
                    });
                }
            }
        }
        let canonical = fs::canonicalize(ancestor).map_err(|_| WorkspaceError::Escapes {
            file_ref: file_ref.to_owned(),
        })?;
        let mut checked = self.inside(file_ref, canonical)?;
        if !checked.path.is_dir() {
            return Err(WorkspaceError::NotAFile {
                file_ref: file_ref.to_owned(),
            });
        }
        for name in missing.into_iter().rev() {
            checked.path.push(name);
        }
        Ok(checked)
    }

    /// Reads the file named by `file_ref`.
    pub fn read_bytes(&self, file_ref: &str) -> Result<Vec<u8>, WorkspaceError> {
        let path = self.resolve(file_ref)?;
        if !path.path.is_file() {
            return Err(WorkspaceError::NotAFile {
                file_ref: file_ref.to_owned(),
            });
        }
        fs::read(&path.path).map_err(|source| not_found_or_io(file_ref, source))
    }

    /// Reads the file named by `file_ref` as UTF-8 text.
    pub fn read_text(&self, file_ref: &str) -> Result<String, WorkspaceError> {
        String::from_utf8(self.read_bytes(file_ref)?).map_err(|_| WorkspaceError::NotUtf8 {
            file_ref: file_ref.to_owned(),
        })
    }

    /// Reads and parses the JSON file named by `file_ref`.
    pub fn read_json(&self, file_ref: &str) -> Result<Value, WorkspaceError> {
        let bytes = self.read_bytes(file_ref)?;
        serde_json::from_slice(&bytes).map_err(|source| WorkspaceError::InvalidJson {
            file_ref: file_ref.to_owned(),
            source,
        })
    }

    /// Writes `value` as pretty JSON with a 2-space indent and no trailing newline (Python's
    /// `json.dump(value, f, indent=2)` layout), creating parent directories inside the root.
    pub fn write_json(
        &self,
        file_ref: &str,
        value: &Value,
    ) -> Result<WorkspacePath, WorkspaceError> {
        let text = serde_json::to_vec_pretty(value).map_err(|source| WorkspaceError::Io {
            file_ref: file_ref.to_owned(),
            source: source.into(),
        })?;
        self.write_bytes(file_ref, &text)
    }

    /// Writes `text`, creating parent directories inside the root.
    pub fn write_text(&self, file_ref: &str, text: &str) -> Result<WorkspacePath, WorkspaceError> {
        self.write_bytes(file_ref, text.as_bytes())
    }

    /// Writes `bytes` atomically (temporary sibling, then rename), creating parent
    /// directories inside the root.
    pub fn write_bytes(
        &self,
        file_ref: &str,
        bytes: &[u8],
    ) -> Result<WorkspacePath, WorkspaceError> {
        let target = self.resolve_for_write(file_ref)?;
        let io_err = |source| WorkspaceError::Io {
            file_ref: file_ref.to_owned(),
            source,
        };
        let (Some(parent), Some(name)) = (target.path.parent(), target.path.file_name()) else {
            return Err(WorkspaceError::NotAFile {
                file_ref: file_ref.to_owned(),
            });
        };
        fs::create_dir_all(parent).map_err(io_err)?;
        // Re-check after creating directories, in case the tree changed since the check.
        let parent = fs::canonicalize(parent).map_err(io_err)?;
        if !parent.starts_with(&self.root) {
            return Err(WorkspaceError::Escapes {
                file_ref: file_ref.to_owned(),
            });
        }
        let mut tmp_name = OsStr::new(".").to_os_string();
        tmp_name.push(name);
        tmp_name.push(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
        let tmp = parent.join(tmp_name);
        let written = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .and_then(|mut f| {
                f.write_all(bytes)?;
                f.sync_all()
            })
            .and_then(|()| fs::rename(&tmp, parent.join(name)));
        if let Err(source) = written {
            // Best effort: the temporary file may not exist if `open` failed.
            let _ = fs::remove_file(&tmp);
            return Err(io_err(source));
        }
        Ok(WorkspacePath {
            path: parent.join(name),
            file_ref: file_ref.to_owned(),
        })
    }

    fn inside(&self, file_ref: &str, canonical: PathBuf) -> Result<WorkspacePath, WorkspaceError> {
        if canonical.starts_with(&self.root) {
            Ok(WorkspacePath {
                path: canonical,
                file_ref: file_ref.to_owned(),
            })
        } else {
            Err(WorkspaceError::Escapes {
                file_ref: file_ref.to_owned(),
            })
        }
    }
}

/// Checks `file_ref` as text and returns it as a relative path of normal components only
/// (`.` and empty segments dropped).
fn lexical_check(file_ref: &str) -> Result<PathBuf, WorkspaceError> {
    let owned = || file_ref.to_owned();
    if file_ref.is_empty() {
        return Err(WorkspaceError::EmptyRef);
    }
    if file_ref.contains('\0') {
        return Err(WorkspaceError::InvalidRef {
            file_ref: file_ref.escape_debug().to_string(),
            reason: "it contains a NUL byte",
        });
    }
    let bytes = file_ref.as_bytes();
    let drive_prefix = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    if file_ref.starts_with(['/', '\\']) || drive_prefix || Path::new(file_ref).is_absolute() {
        return Err(WorkspaceError::Absolute { file_ref: owned() });
    }
    // `\` is a separator on Windows; treat it as one everywhere so `..\x` cannot slip by.
    if file_ref.split(['/', '\\']).any(|segment| segment == "..") {
        return Err(WorkspaceError::Escapes { file_ref: owned() });
    }
    let mut relative = PathBuf::new();
    for component in Path::new(file_ref).components() {
        match component {
            Component::Normal(name) => relative.push(name),
            Component::CurDir => {}
            Component::ParentDir => return Err(WorkspaceError::Escapes { file_ref: owned() }),
            Component::RootDir | Component::Prefix(_) => {
                return Err(WorkspaceError::Absolute { file_ref: owned() });
            }
        }
    }
    Ok(relative)
}

fn not_found_or_io(file_ref: &str, source: io::Error) -> WorkspaceError {
    if source.kind() == io::ErrorKind::NotFound {
        WorkspaceError::NotFound {
            file_ref: file_ref.to_owned(),
        }
    } else {
        WorkspaceError::Io {
            file_ref: file_ref.to_owned(),
            source,
        }
    }
}

/// Why a workspace could not be opened or a ref could not be resolved, read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkspaceError {
    /// The root could not be canonicalised (missing, unreadable…).
    #[error("cannot open workspace root {}: {source}", root.display())]
    Root {
        /// The root as given.
        root: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The root exists but is not a directory.
    #[error("workspace root {} is not a directory", root.display())]
    RootNotDirectory {
        /// The canonical root.
        root: PathBuf,
    },
    /// The ref is the empty string.
    #[error("file ref is empty")]
    EmptyRef,
    /// The ref cannot name a file (e.g. it contains a NUL byte).
    #[error("invalid file ref '{file_ref}': {reason}")]
    InvalidRef {
        /// The ref, with control characters escaped.
        file_ref: String,
        /// Why.
        reason: &'static str,
    },
    /// The ref is an absolute path or has a drive prefix.
    #[error(
        "absolute paths are not allowed in the workspace: '{file_ref}' (use a path relative to the workspace root)"
    )]
    Absolute {
        /// The ref.
        file_ref: String,
    },
    /// The ref has a `..` component or resolves (through symlinks) outside the root.
    #[error("path escapes the workspace: '{file_ref}'")]
    Escapes {
        /// The ref.
        file_ref: String,
    },
    /// Nothing exists at the ref.
    #[error("file not found in workspace: '{file_ref}'")]
    NotFound {
        /// The ref.
        file_ref: String,
    },
    /// The ref names a directory (or the root) where a file is needed.
    #[error("not a file in workspace: '{file_ref}'")]
    NotAFile {
        /// The ref.
        file_ref: String,
    },
    /// The file is not valid JSON.
    #[error("invalid JSON in workspace file '{file_ref}': {source}")]
    InvalidJson {
        /// The ref.
        file_ref: String,
        /// The parse error.
        source: serde_json::Error,
    },
    /// The file is not valid UTF-8.
    #[error("workspace file '{file_ref}' is not valid UTF-8")]
    NotUtf8 {
        /// The ref.
        file_ref: String,
    },
    /// Another I/O error.
    #[error("i/o error on workspace file '{file_ref}': {source}")]
    Io {
        /// The ref.
        file_ref: String,
        /// The underlying error.
        source: io::Error,
    },
}
