//! Blocking file-system work: the recursive scan behind listing and watching, and reads.
//!
//! Everything here runs inside one `spawn_blocking` per operation (style rule 13).

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use loom_core::workspace::{Workspace, WorkspaceError};
use tracing::{debug, warn};

use super::glob::Patterns;
use super::{ResourceBody, ResourceContent, ResourceError, URI_SCHEME, mime, uri};

/// Deepest directory nesting a scan descends into. Real trees are far shallower; the cap
/// stops pathological symlink graphs (links inside the root to sibling directories that
/// link back) from multiplying the walk.
const MAX_DEPTH: usize = 64;

/// A file found by [`scan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Found {
    /// Root-relative path, `/`-separated.
    pub(super) relative: String,
    /// Its `workspace:///` URI.
    pub(super) uri: String,
    /// Size in bytes (of the symlink's target for a symlink).
    pub(super) size: u64,
    /// Last modification time, where the platform has one.
    pub(super) modified: Option<SystemTime>,
}

/// A directory still to read: where it is, its relative path, and the canonical
/// directories on the way down to it (to stop symlink cycles).
struct Pending {
    dir: PathBuf,
    relative: String,
    ancestors: Vec<PathBuf>,
}

/// Whether a root-relative path has a hidden (`.`-prefixed) segment.
pub(super) fn is_hidden(relative: &str) -> bool {
    relative.split('/').any(|segment| segment.starts_with('.'))
}

/// Every served file under `root` (canonical), sorted by URI.
///
/// Hidden entries are skipped, and so are their contents. A symlink is followed only when
/// its target lies inside the root; a symlinked directory is not entered when it leads
/// back to a directory on the current path. Entries that vanish mid-scan, unreadable
/// subdirectories (logged) and names that are not UTF-8 (logged) are skipped; only an
/// unreadable root fails the scan.
pub(super) fn scan(root: &Path, patterns: &Patterns) -> Result<Vec<Found>, ResourceError> {
    let mut found = Vec::new();
    if patterns.matches_nothing() {
        return Ok(found);
    }
    let mut stack = vec![Pending {
        dir: root.to_path_buf(),
        relative: String::new(),
        ancestors: vec![root.to_path_buf()],
    }];
    while let Some(pending) = stack.pop() {
        let entries = match fs::read_dir(&pending.dir) {
            Ok(entries) => entries,
            Err(source) if pending.relative.is_empty() => {
                return Err(ResourceError::Io {
                    uri: URI_SCHEME.to_owned(),
                    source,
                });
            }
            Err(error) => {
                warn!(dir = %pending.relative, error = %error, "Skipping unreadable workspace directory.");
                continue;
            }
        };
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let file_name = entry.file_name();
            let Some(name) = file_name.to_str() else {
                debug!(dir = %pending.relative, name = ?file_name, "Skipping a file name that is not UTF-8.");
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            let relative = if pending.relative.is_empty() {
                name.to_owned()
            } else {
                format!("{}/{name}", pending.relative)
            };
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            let (target, metadata, via_symlink) = if file_type.is_symlink() {
                let Ok(canonical) = fs::canonicalize(&path) else {
                    debug!(file = %relative, "Skipping a dangling symlink.");
                    continue;
                };
                if !canonical.starts_with(root) {
                    debug!(file = %relative, "Skipping a symlink that leads out of the workspace.");
                    continue;
                }
                let Ok(metadata) = fs::metadata(&canonical) else {
                    continue;
                };
                (canonical, metadata, true)
            } else {
                let Ok(metadata) = entry.metadata() else {
                    continue;
                };
                (path, metadata, false)
            };
            if metadata.is_dir() {
                let cycle = via_symlink && pending.ancestors.contains(&target);
                if cycle || pending.ancestors.len() > MAX_DEPTH {
                    debug!(dir = %relative, "Not descending: symlink cycle or depth limit.");
                    continue;
                }
                let mut ancestors = pending.ancestors.clone();
                ancestors.push(target.clone());
                stack.push(Pending {
                    dir: target,
                    relative,
                    ancestors,
                });
            } else if metadata.is_file() && patterns.matches(&relative, name) {
                found.push(Found {
                    uri: uri::encode(&relative),
                    relative,
                    size: metadata.len(),
                    modified: metadata.modified().ok(),
                });
            }
        }
    }
    found.sort_by(|a, b| a.uri.cmp(&b.uri));
    Ok(found)
}

/// Reads the file at root-relative `relative` (already lexically checked and found
/// served by the patterns) for the resource `uri`, refusing more than `limit` bytes.
pub(super) fn read(
    workspace: &Workspace,
    relative: &str,
    uri: &str,
    limit: u64,
) -> Result<ResourceContent, ResourceError> {
    let not_found = || ResourceError::NotFound {
        uri: uri::shown(uri),
    };
    let resolved = workspace
        .resolve(relative)
        .map_err(|err| from_workspace_error(err, uri))?;
    let io_error = |source: io::Error| {
        if is_not_found(&source) {
            not_found()
        } else {
            ResourceError::Io {
                uri: uri::shown(uri),
                source,
            }
        }
    };
    let metadata = fs::metadata(resolved.as_path()).map_err(io_error)?;
    if !metadata.is_file() {
        return Err(not_found());
    }
    let too_large = |size| ResourceError::TooLarge {
        uri: uri::shown(uri),
        size,
        limit,
    };
    if metadata.len() > limit {
        return Err(too_large(metadata.len()));
    }
    // The file may grow between the check and the read: read at most one byte more than
    // the limit, so growth is noticed without reading it all.
    let file = fs::File::open(resolved.as_path()).map_err(io_error)?;
    let capacity = usize::try_from(metadata.len()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(capacity);
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    let read_len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if read_len > limit {
        return Err(too_large(read_len));
    }
    let name = relative.rsplit('/').next().unwrap_or(relative);
    let mime_type = mime::mime_for(name);
    let body = if mime::is_text(mime_type) {
        match String::from_utf8(bytes) {
            Ok(text) => ResourceBody::Text(text),
            Err(err) => ResourceBody::Blob(err.into_bytes()),
        }
    } else {
        ResourceBody::Blob(bytes)
    };
    Ok(ResourceContent {
        uri: uri.to_owned(),
        mime_type: mime_type.to_owned(),
        body,
    })
}

/// Whether an I/O error means "nothing there" (also when a path segment is a file).
fn is_not_found(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// Maps a path-jail error to the resource error for `uri`.
fn from_workspace_error(error: WorkspaceError, uri: &str) -> ResourceError {
    let uri = uri::shown(uri);
    match error {
        WorkspaceError::Escapes { .. } | WorkspaceError::Absolute { .. } => {
            ResourceError::Escapes { uri }
        }
        WorkspaceError::NotFound { .. } | WorkspaceError::NotAFile { .. } => {
            ResourceError::NotFound { uri }
        }
        WorkspaceError::EmptyRef | WorkspaceError::InvalidRef { .. } => {
            ResourceError::InvalidUri { uri }
        }
        WorkspaceError::Io { source, .. } if is_not_found(&source) => {
            ResourceError::NotFound { uri }
        }
        WorkspaceError::Io { source, .. } => ResourceError::Io { uri, source },
        other => ResourceError::Io {
            uri,
            source: io::Error::other(other.to_string()),
        },
    }
}
