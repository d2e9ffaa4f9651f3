//! Workspace files as `workspace:///…` resources: listing, reading and change events.
//!
//! Protocol-neutral: the MCP server turns these types into `resources/list`,
//! `resources/read` and the change notifications. loom-ai 0.9.0 listed the top level
//! once at startup, guessed MIME types from the host, read whole files and never
//! announced a change (gateway spec §7, §13 item 5). [`WorkspaceResources`] instead:
//!
//! * **lists on every call**, recursively, so files created after start are listed and
//!   readable and deleted ones are [`ResourceError::NotFound`];
//! * **filters by patterns**: each glob is matched against the root-relative path
//!   (`docs/a.md`) *and* against the file name (`a.md`); `*` crosses `/` as in Python's
//!   `fnmatch`, `**/` matches zero or more directories, `?` and `[…]` as usual,
//!   case-sensitive everywhere. `None` serves every file, `Some([])` none;
//! * **skips hidden entries**: a file or directory whose name starts with `.` is neither
//!   listed nor readable (nor is anything below a hidden directory); the rule looks at
//!   the served path, not at where a symlink points;
//! * **follows symlinks only inside the root**: a link (to a file or a directory) whose
//!   target lies outside the canonical root is left out of the listing and reading
//!   through it is [`ResourceError::Escapes`]; links to directories on the current path
//!   are not entered again;
//! * **types files from a fixed table** (Markdown is `text/markdown`, YAML is
//!   `application/yaml`, served as text; see [`mime`](self#mime-types) below);
//! * **caps reads** at [`DEFAULT_MAX_READ_BYTES`] ([`WorkspaceResources::with_max_read_bytes`]):
//!   larger files are listed with their size, and reading them is
//!   [`ResourceError::TooLarge`], decided from the size before reading;
//! * **watches** the root and the bus subject `loom.resources.changed` and broadcasts
//!   debounced [`ResourceEvent`]s ([`WorkspaceResources::watch`],
//!   [`WorkspaceResources::events`]).
//!
//! # URIs
//!
//! A resource's URI is [`URI_SCHEME`] followed by its root-relative path, `/`-separated,
//! percent-encoded where a URI needs it ([`WorkspaceResources::uri_for`]:
//! `sp ace.txt` → `workspace:///sp%20ace.txt`). [`WorkspaceResources::read`] decodes once,
//! so the encoded and the plain spelling both work, drops empty and `.` segments, and
//! checks the result twice: lexically (a `..` segment, also spelled `%2e%2e` or `..%2f`,
//! an absolute path such as `workspace:////etc/passwd` or `%2Fetc%2Fpasswd`, or a drive
//! prefix is [`ResourceError::Escapes`]; another scheme, an empty path, a NUL byte or
//! invalid UTF-8 is [`ResourceError::InvalidUri`]), then on the file system through
//! [`Workspace::resolve`] (symlinks followed, the result compared with the canonical root
//! by path components, so a sibling `/x/ws2` of root `/x/ws` is outside). A directory, a
//! hidden file or a file the patterns exclude is [`ResourceError::NotFound`].
//! [`ResourceEvent::Updated`] always carries the [`uri_for`](WorkspaceResources::uri_for)
//! spelling; [`WorkspaceResources::canonical_uri`] turns a client's spelling into it.
//!
//! # MIME types
//!
//! By extension, case-insensitive: a fixed table first (`md` `text/markdown`, `txt`/`log`
//! `text/plain`, `json` `application/json`, `yaml`/`yml` `application/yaml`, `toml`
//! `application/toml`, `csv` `text/csv`, `html` `text/html`, `xml` `application/xml`,
//! `js` `text/javascript`, `ts` `text/x-typescript`, `py` `text/x-python`, `rs`
//! `text/x-rust`, `sh` `text/x-shellscript`, `pdf`, `png`, `jpg`/`jpeg`, `gif`, `webp`,
//! `svg` `image/svg+xml`, …), then well-known extension-less names (`README`, `LICENSE`,
//! `Makefile`, … as `text/plain`), then `mime_guess`'s compiled-in table (the same on
//! every platform), else `application/octet-stream`. The body is
//! [`ResourceBody::Text`] when the type is `text/*`, `application/json`, `jsonl`, `xml`,
//! `yaml`, `toml` or `javascript`, or ends in `+json`/`+xml`/`+yaml` (so SVG is text),
//! **and** the bytes are valid UTF-8; otherwise [`ResourceBody::Blob`].
//!
//! # Change events
//!
//! [`WorkspaceResources::watch`] starts one watcher; events go to every receiver from
//! [`WorkspaceResources::events`] (a broadcast channel of
//! [`EVENT_CHANNEL_CAPACITY`]). Raw file-system events are collected until
//! [`DEFAULT_DEBOUNCE`] passes without one (at most ten windows), then the workspace is
//! rescanned and compared with the previous scan: a different set of listed URIs gives
//! one [`ResourceEvent::ListChanged`] (create, delete, rename), and each listed file
//! whose size or modification time changed, or that a write event named, gives one
//! [`ResourceEvent::Updated`]. A deleted file gives only `ListChanged`. Files the
//! listing excludes (hidden, not matching) give nothing.
//!
//! With a bus, each message on `loom.resources.changed` joins the current batch:
//! `{"uri": "workspace:///x"}` gives `ListChanged` and `Updated` for that URI
//! (normalized); any other JSON object (and an empty payload) gives `ListChanged`;
//! anything else is skipped with a warning.
//!
//! A receiver that falls more than [`EVENT_CHANNEL_CAPACITY`] events behind gets
//! `RecvError::Lagged`; treat that as a `ListChanged` plus an update of every subscribed
//! URI.
//!
//! # Errors and the wire
//!
//! Suggested MCP mapping for the server: [`ResourceError::NotFound`] → `-32002`
//! (resource not found); [`ResourceError::InvalidUri`] and [`ResourceError::Escapes`] →
//! `-32602` (invalid params); the rest → `-32603` (internal error). Every message names
//! the URI.

mod glob;
mod mime;
mod uri;
mod walk;
mod watch;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use loom_bus::{Bus, SubscribeError};
use loom_core::config::ResourcesSection;
use loom_core::subject::RESOURCES_CHANGED;
use loom_core::workspace::Workspace;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::warn;

use self::glob::Patterns;

/// The scheme and empty authority every resource URI starts with.
pub const URI_SCHEME: &str = "workspace:///";

/// Largest file [`WorkspaceResources::read`] returns unless
/// [`with_max_read_bytes`](WorkspaceResources::with_max_read_bytes) says otherwise: 10 MiB.
pub const DEFAULT_MAX_READ_BYTES: u64 = 10 * 1024 * 1024;

/// How long the watcher waits for quiet before reporting a burst of changes.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(100);

/// Capacity of the [`ResourceEvent`] broadcast channel. Events are few (one per batch and
/// changed file); a receiver further behind than this gets `Lagged`.
pub const EVENT_CHANNEL_CAPACITY: usize = 256;

/// A workspace directory served as resources. Cheap to clone; clones share the change
/// events.
#[derive(Debug, Clone)]
pub struct WorkspaceResources {
    inner: Arc<Inner>,
    max_read_bytes: u64,
    debounce: Duration,
}

/// What clones and the watcher share.
#[derive(Debug)]
struct Inner {
    /// The path jail around the canonical root.
    workspace: Workspace,
    /// The patterns as configured.
    pattern_texts: Option<Vec<String>>,
    /// The patterns compiled.
    patterns: Patterns,
    /// Where change events go.
    events: broadcast::Sender<ResourceEvent>,
}

/// One file in a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceEntry {
    /// `workspace:///` + the percent-encoded relative path.
    pub uri: String,
    /// The root-relative path, `/`-separated, not encoded.
    pub name: String,
    /// `Workspace file: <relative path>`.
    pub description: String,
    /// The MIME type (see the [module docs](self#mime-types)).
    pub mime_type: String,
    /// Size in bytes, also for files too large to read.
    pub size: u64,
}

/// A file's content as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceContent {
    /// The URI as the caller gave it.
    pub uri: String,
    /// The MIME type.
    pub mime_type: String,
    /// Text or bytes.
    pub body: ResourceBody,
}

/// A resource body: text for text types with valid UTF-8, bytes otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceBody {
    /// UTF-8 text.
    Text(String),
    /// Raw bytes (the wire carries them base64-encoded).
    Blob(Vec<u8>),
}

impl ResourceBody {
    /// The text, if this is [`ResourceBody::Text`].
    pub fn as_text(&self) -> Option<&str> {
        match self {
            ResourceBody::Text(text) => Some(text),
            ResourceBody::Blob(_) => None,
        }
    }

    /// The raw bytes, whichever kind this is.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            ResourceBody::Text(text) => text.as_bytes(),
            ResourceBody::Blob(bytes) => bytes,
        }
    }
}

/// A change to the served files.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResourceEvent {
    /// The set of listed files changed (`notifications/resources/list_changed`).
    ListChanged,
    /// A listed file's content changed (`notifications/resources/updated`, for clients
    /// subscribed to `uri`).
    Updated {
        /// The file's URI, spelled as [`WorkspaceResources::uri_for`] spells it.
        uri: String,
    },
}

/// Why resources could not be opened, listed, read or watched. Messages name the URI
/// (control characters escaped, long URIs cut).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResourceError {
    /// Not a `workspace:///<relative path>` URI.
    #[error("invalid resource uri '{uri}': expected workspace:///<path relative to the workspace>")]
    InvalidUri {
        /// The URI.
        uri: String,
    },
    /// The URI names something outside the workspace (`..`, an absolute path, a symlink
    /// leading out).
    #[error("resource uri escapes the workspace: '{uri}'")]
    Escapes {
        /// The URI.
        uri: String,
    },
    /// No served file at the URI: missing, deleted, a directory, hidden, or excluded by
    /// the patterns.
    #[error("resource not found: '{uri}'")]
    NotFound {
        /// The URI.
        uri: String,
    },
    /// The file is larger than the read limit.
    #[error("resource '{uri}' is {size} bytes, over the read limit of {limit} bytes")]
    TooLarge {
        /// The URI.
        uri: String,
        /// The file's size (at least `limit + 1` if it grew while being read).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Another I/O error.
    #[error("i/o error on resource '{uri}': {source}")]
    Io {
        /// The URI (`workspace:///` for the root).
        uri: String,
        /// The underlying error.
        source: io::Error,
    },
    /// The file watcher could not start.
    #[error("cannot watch workspace {}: {source}", root.display())]
    Watch {
        /// The canonical root.
        root: PathBuf,
        /// The watcher's error.
        source: notify::Error,
    },
    /// The subscription to `loom.resources.changed` failed.
    #[error("cannot subscribe to resource changes on '{subject}': {source}")]
    Bus {
        /// The subject.
        subject: String,
        /// The bus error.
        source: SubscribeError,
    },
    /// The workspace directory does not exist, is not a directory, or cannot be opened.
    #[error("cannot serve workspace directory {}: {source}", path.display())]
    Root {
        /// The directory as configured.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl WorkspaceResources {
    /// Opens the workspace of a gateway config's `resources` section. The directory must
    /// exist and be a directory; the error names the path.
    pub fn open(section: &ResourcesSection) -> Result<WorkspaceResources, ResourceError> {
        Self::open_dir(&section.workspace_dir, section.patterns.clone())
    }

    /// Opens `dir` with `patterns` (`None` serves every file, `Some(vec![])` none).
    pub fn open_dir(
        dir: impl AsRef<Path>,
        patterns: Option<Vec<String>>,
    ) -> Result<WorkspaceResources, ResourceError> {
        let dir = dir.as_ref();
        let root_error = |source| ResourceError::Root {
            path: dir.to_path_buf(),
            source,
        };
        let metadata = std::fs::metadata(dir).map_err(root_error)?;
        if !metadata.is_dir() {
            return Err(root_error(io::Error::new(
                io::ErrorKind::NotADirectory,
                "not a directory",
            )));
        }
        let workspace = Workspace::open(dir).map_err(|err| root_error(io::Error::other(err)))?;
        let (events, _) = broadcast::channel(EVENT_CHANNEL_CAPACITY);
        Ok(WorkspaceResources {
            inner: Arc::new(Inner {
                workspace,
                patterns: Patterns::new(patterns.as_deref()),
                pattern_texts: patterns,
                events,
            }),
            max_read_bytes: DEFAULT_MAX_READ_BYTES,
            debounce: DEFAULT_DEBOUNCE,
        })
    }

    /// Sets the largest file [`read`](Self::read) returns (default
    /// [`DEFAULT_MAX_READ_BYTES`]).
    pub fn with_max_read_bytes(mut self, n: u64) -> Self {
        self.max_read_bytes = n;
        self
    }

    /// Sets how long the watcher waits for quiet before reporting a burst (default
    /// [`DEFAULT_DEBOUNCE`]). Applies to watchers started afterwards.
    pub fn with_debounce(mut self, debounce: Duration) -> Self {
        self.debounce = debounce;
        self
    }

    /// The canonical workspace root.
    pub fn root(&self) -> &Path {
        self.inner.workspace.root()
    }

    /// The patterns as configured.
    pub fn patterns(&self) -> Option<&[String]> {
        self.inner.pattern_texts.as_deref()
    }

    /// The read limit in bytes.
    pub fn max_read_bytes(&self) -> u64 {
        self.max_read_bytes
    }

    /// Every served file under the root, recursively, sorted by URI (see the
    /// [module docs](self) for patterns, hidden entries and symlinks). Fails only when
    /// the root itself cannot be read.
    pub async fn list(&self) -> Result<Vec<ResourceEntry>, ResourceError> {
        let inner = Arc::clone(&self.inner);
        let found = blocking(URI_SCHEME, move || {
            walk::scan(inner.workspace.root(), &inner.patterns)
        })
        .await?;
        Ok(found
            .into_iter()
            .map(|file| {
                let name = file.relative.rsplit('/').next().unwrap_or(&file.relative);
                ResourceEntry {
                    mime_type: mime::mime_for(name).to_owned(),
                    description: format!("Workspace file: {}", file.relative),
                    uri: file.uri,
                    size: file.size,
                    name: file.relative,
                }
            })
            .collect())
    }

    /// Reads `workspace:///<relative path>` (percent-decoded once, then jailed). See the
    /// [module docs](self#uris) for what is refused and how.
    pub async fn read(&self, uri: &str) -> Result<ResourceContent, ResourceError> {
        let relative = uri::parse(uri)?;
        let name = relative.rsplit('/').next().unwrap_or(&relative);
        if walk::is_hidden(&relative) || !self.inner.patterns.matches(&relative, name) {
            return Err(ResourceError::NotFound {
                uri: uri::shown(uri),
            });
        }
        let inner = Arc::clone(&self.inner);
        let owned_uri = uri.to_owned();
        let limit = self.max_read_bytes;
        blocking(uri, move || {
            walk::read(&inner.workspace, &relative, &owned_uri, limit)
        })
        .await
    }

    /// Starts watching: the root recursively and, with a `bus`, the subject
    /// `loom.resources.changed`. Events go to [`events`](Self::events) receivers, debounced
    /// (see the [module docs](self#change-events)). Changes made after this returns are
    /// reported.
    ///
    /// The watch ends when the returned [`ResourceWatcher`] is dropped or stopped, or when
    /// `shutdown` is cancelled. Start one watcher per workspace: each one emits its own
    /// events.
    pub async fn watch(
        &self,
        bus: Option<Arc<dyn Bus>>,
        shutdown: CancellationToken,
    ) -> Result<ResourceWatcher, ResourceError> {
        let (sender, receiver) = mpsc::channel(watch::FS_EVENT_CAPACITY);
        let inner = Arc::clone(&self.inner);
        let watcher = blocking(URI_SCHEME, move || {
            watch::start_fs_watcher(inner.workspace.root(), sender)
        })
        .await?;
        let subscription = match &bus {
            Some(bus) => {
                let subscription =
                    bus.subscribe(RESOURCES_CHANGED, None)
                        .await
                        .map_err(|source| ResourceError::Bus {
                            subject: RESOURCES_CHANGED.to_owned(),
                            source,
                        })?;
                // Put the subscription on the wire before returning, so messages sent
                // after `watch` returns are not missed.
                if let Err(error) = bus.flush().await {
                    warn!(error = %error, "Cannot flush the bus after subscribing to resource changes.");
                }
                Some(subscription)
            }
            None => None,
        };
        let inner = Arc::clone(&self.inner);
        let found = blocking(URI_SCHEME, move || {
            walk::scan(inner.workspace.root(), &inner.patterns)
        })
        .await?;
        let task = watch::WatchTask {
            inner: Arc::clone(&self.inner),
            debounce: self.debounce,
            snapshot: watch::snapshot_of(found),
            fs_events: Some(receiver),
            bus: subscription,
            watcher,
        };
        let token = shutdown.child_token();
        let handle = tokio::spawn(task.run(token.clone()));
        Ok(ResourceWatcher {
            _guard: token.clone().drop_guard(),
            token,
            task: Some(handle),
        })
    }

    /// A new receiver of change events (only events sent after this call).
    pub fn events(&self) -> broadcast::Receiver<ResourceEvent> {
        self.inner.events.subscribe()
    }

    /// The URI of the file at root-relative `relative` (`/`-separated):
    /// [`URI_SCHEME`] + the percent-encoded path.
    pub fn uri_for(&self, relative: &str) -> String {
        uri::encode(relative)
    }

    /// The [`uri_for`](Self::uri_for) spelling of `uri` (decoded once, normalized,
    /// re-encoded), for matching a client's subscription against
    /// [`ResourceEvent::Updated`]. Lexical only: the file need not exist.
    pub fn canonical_uri(&self, uri: &str) -> Result<String, ResourceError> {
        uri::parse(uri).map(|relative| uri::encode(&relative))
    }
}

/// A running watch. Dropping it, [`stop`](Self::stop) or cancelling the token given to
/// [`WorkspaceResources::watch`] ends it; no event is sent after the end is noticed.
#[derive(Debug)]
pub struct ResourceWatcher {
    _guard: DropGuard,
    token: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl ResourceWatcher {
    /// Ends the watch without waiting.
    pub fn cancel(&self) {
        self.token.cancel();
    }

    /// Ends the watch and waits until the watcher task has stopped.
    pub async fn stop(mut self) {
        self.token.cancel();
        if let Some(task) = self.task.take() {
            // A panic in the task has already been reported by the runtime.
            let _ = task.await;
        }
    }

    /// Whether the watcher task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

/// Runs `work` on the blocking pool; a panic there becomes an I/O error on `uri`.
async fn blocking<T, F>(uri: &str, work: F) -> Result<T, ResourceError>
where
    F: FnOnce() -> Result<T, ResourceError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| ResourceError::Io {
            uri: uri::shown(uri),
            source: io::Error::other(err),
        })?
}
