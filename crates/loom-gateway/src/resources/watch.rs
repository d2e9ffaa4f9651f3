//! The change watcher: file-system events and `loom.resources.changed` messages, debounced
//! into [`ResourceEvent`]s.
//!
//! Each batch of raw events ends with a rescan of the workspace (the same scan as
//! listing). The rescan is compared with the previous one: a different set of URIs is a
//! [`ResourceEvent::ListChanged`]; a URI present in both whose size or modification time
//! changed, or that a content event (write, close after write, create, rename) named, is a
//! [`ResourceEvent::Updated`]. Comparing scans rather than translating raw events makes
//! renames, atomic replaces (write a hidden temporary file, rename it over the target),
//! overflowing event queues and platform differences come out right, and keeps files the
//! patterns or the hidden rule exclude silent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use loom_bus::{Message, Subscription};
use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::walk::{self, Found, is_hidden};
use super::{Inner, ResourceError, ResourceEvent, uri};

/// Raw file-system events buffered between the watcher thread and the debounce task.
/// When full, further events are dropped: a rescan is already due and catches every
/// change except a rewrite that keeps both size and modification time.
pub(super) const FS_EVENT_CAPACITY: usize = 1024;

/// A batch is flushed after at most this many debounce windows, even if events keep
/// coming (a file appended to every few milliseconds still produces updates).
const MAX_BATCH_WINDOWS: u32 = 10;

/// Size and modification time of a listed file, as last scanned.
type Snapshot = BTreeMap<String, (u64, Option<SystemTime>)>;

/// What one raw-event source produced.
enum Input {
    Fs(notify::Result<Event>),
    FsEnded,
    Bus(Message),
    BusEnded,
}

/// Raw events collected during one debounce window.
#[derive(Default)]
struct Batch {
    /// A file-system event arrived: rescan before flushing.
    rescan: bool,
    /// URIs a content event named.
    touched: BTreeSet<String>,
    /// A bus message asked for a list change.
    list_changed: bool,
    /// URIs bus messages named.
    updated: BTreeSet<String>,
}

/// Starts the OS watcher on `root` (canonical), recursively, feeding `sender`. Blocking:
/// a recursive inotify watch walks the tree.
pub(super) fn start_fs_watcher(
    root: &Path,
    sender: mpsc::Sender<notify::Result<Event>>,
) -> Result<RecommendedWatcher, ResourceError> {
    let watch_error = |source| ResourceError::Watch {
        root: root.to_path_buf(),
        source,
    };
    let handler_root = root.to_path_buf();
    let handler = move |event: notify::Result<Event>| {
        if let Ok(event) = &event {
            if !is_relevant(&handler_root, event) {
                return;
            }
        }
        // Full: a rescan is already due (see FS_EVENT_CAPACITY). Closed: the task ended.
        let _ = sender.try_send(event);
    };
    // Symlinked directories are not followed: one leading out of the root would watch
    // (and walk) foreign trees, and one leading inside is watched at its real path.
    let config = notify::Config::default().with_follow_symlinks(false);
    let mut watcher = RecommendedWatcher::new(handler, config).map_err(watch_error)?;
    watcher
        .watch(root, RecursiveMode::Recursive)
        .map_err(watch_error)?;
    Ok(watcher)
}

/// Whether a raw event can matter: not a read access (our own reads and listings make
/// those; reacting would loop), and not only about hidden paths (`.git` churn, the
/// temporary files of atomic writes).
fn is_relevant(root: &Path, event: &Event) -> bool {
    if let EventKind::Access(kind) = event.kind {
        if kind != AccessKind::Close(AccessMode::Write) {
            return false;
        }
    }
    event.paths.is_empty()
        || event
            .paths
            .iter()
            .any(|path| relative(root, path).is_some_and(|rel| !is_hidden(&rel)))
}

/// Whether an event says a file's content (may have) changed.
fn touches_content(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Any
            | EventKind::Create(_)
            | EventKind::Modify(
                ModifyKind::Any | ModifyKind::Data(_) | ModifyKind::Name(_) | ModifyKind::Other
            )
            | EventKind::Access(AccessKind::Close(AccessMode::Write))
    )
}

/// `path` relative to `root`, `/`-separated; `None` outside the root or not UTF-8.
fn relative(root: &Path, path: &Path) -> Option<String> {
    let rest = path.strip_prefix(root).ok()?;
    let mut out = String::new();
    for component in rest.components() {
        let segment = component.as_os_str().to_str()?;
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(segment);
    }
    Some(out)
}

/// Takes a `loom.resources.changed` payload apart: `Ok(Some(uri))` for
/// `{"uri": "workspace:///…"}` (normalized), `Ok(None)` for any other JSON object or an
/// empty payload, `Err(reason)` otherwise.
fn parse_change(payload: &[u8]) -> Result<Option<String>, String> {
    if payload.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(payload).map_err(|err| format!("not JSON: {err}"))?;
    let Value::Object(object) = value else {
        return Err("not a JSON object".to_owned());
    };
    match object.get("uri") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(given)) => uri::parse(given)
            .map(|relative| Some(uri::encode(&relative)))
            .map_err(|err| err.to_string()),
        Some(_) => Err("'uri' is not a string".to_owned()),
    }
}

/// The debounce task: owns the OS watcher (dropping it stops the OS watch) and the bus
/// subscription, and runs until `token` is cancelled.
pub(super) struct WatchTask {
    pub(super) inner: Arc<Inner>,
    pub(super) debounce: Duration,
    pub(super) snapshot: Snapshot,
    pub(super) fs_events: Option<mpsc::Receiver<notify::Result<Event>>>,
    pub(super) bus: Option<Subscription>,
    pub(super) watcher: RecommendedWatcher,
}

/// Turns a scan into a snapshot.
pub(super) fn snapshot_of(found: Vec<Found>) -> Snapshot {
    found
        .into_iter()
        .map(|file| (file.uri, (file.size, file.modified)))
        .collect()
}

impl WatchTask {
    /// Runs until `token` is cancelled; nothing is emitted after that.
    pub(super) async fn run(mut self, token: CancellationToken) {
        let max_delay = self.debounce.saturating_mul(MAX_BATCH_WINDOWS);
        loop {
            let mut batch = Batch::default();
            tokio::select! {
                biased;
                () = token.cancelled() => break,
                input = next_input(&mut self.fs_events, &mut self.bus) => self.add(&mut batch, input),
            }
            let deadline = Instant::now() + max_delay;
            loop {
                let quiet_until = (Instant::now() + self.debounce).min(deadline);
                tokio::select! {
                    biased;
                    () = token.cancelled() => return self.stop(),
                    () = sleep_until(quiet_until) => break,
                    input = next_input(&mut self.fs_events, &mut self.bus) => self.add(&mut batch, input),
                }
            }
            tokio::select! {
                biased;
                () = token.cancelled() => break,
                () = self.flush(batch) => {}
            }
        }
        self.stop();
    }

    /// Ends the watch (the OS watcher and the subscription go with `self`).
    fn stop(self) {
        debug!(root = %self.inner.workspace.root().display(), "Workspace watcher stopped.");
        drop(self.watcher);
    }

    /// Adds one raw input to `batch`.
    fn add(&mut self, batch: &mut Batch, input: Input) {
        match input {
            Input::Fs(Ok(event)) => {
                batch.rescan = true;
                if touches_content(&event.kind) {
                    let root = self.inner.workspace.root();
                    for path in &event.paths {
                        if let Some(rel) = relative(root, path) {
                            if !rel.is_empty() && !is_hidden(&rel) {
                                batch.touched.insert(uri::encode(&rel));
                            }
                        }
                    }
                }
            }
            Input::Fs(Err(error)) => {
                batch.rescan = true;
                warn!(error = %error, "File watcher error; rescanning the workspace.");
            }
            Input::FsEnded => {
                warn!("File watcher ended; only bus messages will report changes.");
                self.fs_events = None;
            }
            Input::Bus(message) => match parse_change(&message.payload) {
                Ok(uri) => {
                    batch.list_changed = true;
                    batch.updated.extend(uri);
                }
                Err(reason) => warn!(
                    subject = %message.subject,
                    bytes = message.payload.len(),
                    reason = %reason,
                    "Skipping a malformed resource change message."
                ),
            },
            Input::BusEnded => {
                debug!("Resource change subscription ended.");
                self.bus = None;
            }
        }
    }

    /// Rescans if needed, compares, and emits the batch's events.
    async fn flush(&mut self, batch: Batch) {
        let Batch {
            rescan,
            touched,
            mut list_changed,
            mut updated,
        } = batch;
        if rescan {
            let inner = Arc::clone(&self.inner);
            let scanned = tokio::task::spawn_blocking(move || {
                walk::scan(inner.workspace.root(), &inner.patterns)
            })
            .await;
            match scanned {
                Ok(Ok(found)) => {
                    let current = snapshot_of(found);
                    if !self.snapshot.keys().eq(current.keys()) {
                        list_changed = true;
                    }
                    for (uri, stamp) in &current {
                        let changed = self
                            .snapshot
                            .get(uri)
                            .is_some_and(|previous| previous != stamp || touched.contains(uri));
                        if changed {
                            updated.insert(uri.clone());
                        }
                    }
                    self.snapshot = current;
                }
                Ok(Err(error)) => {
                    warn!(error = %error, "Cannot rescan the workspace; reporting a list change.");
                    list_changed = true;
                    self.snapshot.clear();
                }
                Err(error) => {
                    warn!(error = %error, "Workspace rescan task failed; reporting a list change.");
                    list_changed = true;
                }
            }
        }
        // Sending fails only when nobody listens, which is fine.
        if list_changed {
            let _ = self.inner.events.send(ResourceEvent::ListChanged);
        }
        for uri in updated {
            let _ = self.inner.events.send(ResourceEvent::Updated { uri });
        }
    }
}

/// The next raw input from whichever source has one; pends forever when both ended.
async fn next_input(
    fs_events: &mut Option<mpsc::Receiver<notify::Result<Event>>>,
    bus: &mut Option<Subscription>,
) -> Input {
    let fs_next = async {
        match fs_events {
            Some(receiver) => receiver.recv().await,
            None => std::future::pending().await,
        }
    };
    let bus_next = async {
        match bus {
            Some(subscription) => subscription.next().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        event = fs_next => event.map_or(Input::FsEnded, Input::Fs),
        message = bus_next => message.map_or(Input::BusEnded, Input::Bus),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn change_messages() {
        assert_eq!(parse_change(b"{}"), Ok(None));
        assert_eq!(parse_change(b""), Ok(None));
        assert_eq!(parse_change(br#"{"other": 1}"#), Ok(None));
        assert_eq!(
            parse_change(br#"{"uri": "workspace:///sp ace.txt"}"#),
            Ok(Some("workspace:///sp%20ace.txt".to_owned()))
        );
        assert!(parse_change(b"not json").is_err());
        assert!(parse_change(b"[1]").is_err());
        assert!(parse_change(br#"{"uri": 3}"#).is_err());
        assert!(parse_change(br#"{"uri": "workspace:///../x"}"#).is_err());
    }

    #[test]
    fn relative_paths() {
        let root = Path::new("/w/root");
        assert_eq!(
            relative(root, Path::new("/w/root/a/b.md")).as_deref(),
            Some("a/b.md")
        );
        assert_eq!(relative(root, Path::new("/w/root")).as_deref(), Some(""));
        assert_eq!(relative(root, Path::new("/w/root2/a")), None);
    }

    #[test]
    fn read_accesses_are_irrelevant() {
        let root = PathBuf::from("/w");
        let open = Event::new(EventKind::Access(AccessKind::Open(AccessMode::Any)))
            .add_path(root.join("a.md"));
        let closed_write = Event::new(EventKind::Access(AccessKind::Close(AccessMode::Write)))
            .add_path(root.join("a.md"));
        let hidden = Event::new(EventKind::Create(notify::event::CreateKind::File))
            .add_path(root.join(".git/index"));
        assert!(!is_relevant(&root, &open));
        assert!(is_relevant(&root, &closed_write));
        assert!(!is_relevant(&root, &hidden));
    }
}
