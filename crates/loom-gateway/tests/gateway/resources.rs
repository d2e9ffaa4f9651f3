//! Workspace resources: listing, reading, the path jail, and change events from the file
//! watcher and from `loom.resources.changed` on a memory bus and a real nats-server.

use std::fs;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use loom_bus::{Bus, MemoryBus, NatsBus, NatsOptions};
use loom_core::config::load_gateway;
use loom_core::subject::RESOURCES_CHANGED;
use loom_core::workspace::Workspace;
use loom_gateway::resources::{
    DEFAULT_MAX_READ_BYTES, ResourceBody, ResourceContent, ResourceEntry, ResourceError,
    ResourceEvent, ResourceWatcher, URI_SCHEME, WorkspaceResources,
};
use loom_testkit::NatsServer;
use tempfile::TempDir;
use tokio::sync::broadcast;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_util::sync::CancellationToken;

/// Bound on any single non-watcher await.
const WAIT: Duration = Duration::from_secs(10);

/// How long a watcher event may take to arrive (file watchers on a loaded machine).
const EVENT_WAIT: Duration = Duration::from_secs(10);

/// Debounce used by watcher tests: long enough that one burst of writes from a test
/// never spans two windows on a busy 2-core machine.
const TEST_DEBOUNCE: Duration = Duration::from_millis(300);

/// How long "nothing happens" is watched for: a few debounce windows.
const QUIET: Duration = Duration::from_millis(1200);

/// A temporary directory holding the workspace `ws/` and a sibling `ws2/` that shares its
/// name as a prefix and holds a secret.
struct Fixture {
    _dir: TempDir,
    ws: PathBuf,
    sibling: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let ws = dir.path().join("ws");
        let sibling = dir.path().join("ws2");
        fs::create_dir_all(&ws).expect("create ws");
        fs::create_dir_all(&sibling).expect("create ws2");
        fs::write(sibling.join("secret.txt"), "top secret").expect("write secret");
        Fixture {
            _dir: dir,
            ws,
            sibling,
        }
    }

    fn write(&self, relative: &str, bytes: impl AsRef<[u8]>) {
        let path = self.ws.join(relative);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("create parent");
        }
        fs::write(&path, bytes).expect("write file");
    }

    fn open(&self, patterns: Option<&[&str]>) -> WorkspaceResources {
        let patterns = patterns.map(|list| list.iter().map(|p| (*p).to_owned()).collect());
        WorkspaceResources::open_dir(&self.ws, patterns).expect("open workspace")
    }
}

async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

async fn list(resources: &WorkspaceResources) -> Vec<ResourceEntry> {
    bounded("list", resources.list())
        .await
        .expect("list succeeds")
}

async fn names(resources: &WorkspaceResources) -> Vec<String> {
    list(resources).await.into_iter().map(|e| e.name).collect()
}

async fn read(resources: &WorkspaceResources, uri: &str) -> Result<ResourceContent, ResourceError> {
    bounded("read", resources.read(uri)).await
}

async fn read_text(resources: &WorkspaceResources, uri: &str) -> String {
    match read(resources, uri).await {
        Ok(ResourceContent {
            body: ResourceBody::Text(text),
            ..
        }) => text,
        other => panic!("expected text from {uri}, got {other:?}"),
    }
}

async fn watch(resources: &WorkspaceResources, bus: Option<Arc<dyn Bus>>) -> ResourceWatcher {
    bounded("watch", resources.watch(bus, CancellationToken::new()))
        .await
        .expect("watch starts")
}

/// Waits for `expected`; returns the events seen before it.
async fn expect_event(
    events: &mut broadcast::Receiver<ResourceEvent>,
    expected: &ResourceEvent,
) -> Vec<ResourceEvent> {
    let deadline = Instant::now() + EVENT_WAIT;
    let mut seen = Vec::new();
    loop {
        match timeout_at(deadline, events.recv()).await {
            Ok(Ok(event)) if event == *expected => return seen,
            Ok(Ok(event)) => seen.push(event),
            Ok(Err(err)) => panic!("event channel failed while waiting for {expected:?}: {err}"),
            Err(_) => panic!("timed out waiting for {expected:?}; saw {seen:?}"),
        }
    }
}

/// Collects every event that arrives until `window` passes without one.
async fn drain(
    events: &mut broadcast::Receiver<ResourceEvent>,
    window: Duration,
) -> Vec<ResourceEvent> {
    let mut seen = Vec::new();
    while let Ok(received) = timeout(window, events.recv()).await {
        seen.push(received.expect("event channel open"));
    }
    seen
}

async fn expect_quiet(events: &mut broadcast::Receiver<ResourceEvent>) {
    if let Ok(event) = timeout(QUIET, events.recv()).await {
        panic!("expected no event, got {event:?}");
    }
}

fn updated(resources: &WorkspaceResources, relative: &str) -> ResourceEvent {
    ResourceEvent::Updated {
        uri: resources.uri_for(relative),
    }
}

// ---------------------------------------------------------------------------------------
// Opening

#[tokio::test]
async fn open_requires_an_existing_directory() {
    let fixture = Fixture::new();
    let missing = fixture.ws.join("nope");
    let err = WorkspaceResources::open_dir(&missing, None).expect_err("missing dir");
    assert!(matches!(err, ResourceError::Root { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );

    fixture.write("file.txt", "x");
    let file = fixture.ws.join("file.txt");
    let err = WorkspaceResources::open_dir(&file, None).expect_err("a file is no root");
    assert!(matches!(err, ResourceError::Root { .. }), "{err:?}");
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[tokio::test]
async fn open_takes_the_gateway_config_section() {
    let fixture = Fixture::new();
    fixture.write("a.md", "# a");
    fixture.write("b.txt", "b");
    let config_path = fixture.ws.parent().expect("parent").join("gateway.yaml");
    fs::write(
        &config_path,
        "name: gw\nresources:\n  workspace_dir: ws\n  patterns: [\"*.md\"]\n",
    )
    .expect("write config");
    let config = load_gateway(&config_path).expect("valid config");
    let section = config.resources.expect("resources section");
    let resources = WorkspaceResources::open(&section).expect("open");
    assert_eq!(names(&resources).await, ["a.md"]);
    assert_eq!(resources.patterns(), Some(&["*.md".to_owned()][..]));
    assert_eq!(resources.max_read_bytes(), DEFAULT_MAX_READ_BYTES);
    assert_eq!(DEFAULT_MAX_READ_BYTES, 10 * 1024 * 1024);
}

// ---------------------------------------------------------------------------------------
// Listing

#[tokio::test]
async fn listing_is_recursive_sorted_and_skips_hidden_entries() {
    let fixture = Fixture::new();
    fixture.write("b.txt", "bb");
    fixture.write("a.md", "# a");
    fixture.write("docs/guide.md", "guide");
    fixture.write("docs/deep/x.json", "{}");
    fixture.write(".hidden.txt", "no");
    fixture.write(".git/config", "no");
    fixture.write("docs/.secret/key.txt", "no");
    fs::create_dir_all(fixture.ws.join("empty/dir")).expect("mkdir");
    let resources = fixture.open(None);

    let entries = list(&resources).await;
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["a.md", "b.txt", "docs/deep/x.json", "docs/guide.md"]
    );
    let uris: Vec<&str> = entries.iter().map(|e| e.uri.as_str()).collect();
    let mut sorted = uris.clone();
    sorted.sort_unstable();
    assert_eq!(uris, sorted);
    let b = &entries[1];
    assert_eq!(b.uri, "workspace:///b.txt");
    assert_eq!(b.description, "Workspace file: b.txt");
    assert_eq!(b.mime_type, "text/plain");
    assert_eq!(b.size, 2);
    assert_eq!(entries[2].uri, "workspace:///docs/deep/x.json");
}

#[tokio::test]
async fn patterns_filter_the_listing() {
    let fixture = Fixture::new();
    fixture.write("a.md", "a");
    fixture.write("notes.txt", "n");
    fixture.write("data.json", "{}");
    fixture.write("docs/guide.md", "g");
    fixture.write("docs/deep/y.md", "y");
    fixture.write("docs/deep/x.json", "{}");
    let cases: &[(Option<&[&str]>, &[&str])] = &[
        (
            None,
            &[
                "a.md",
                "data.json",
                "docs/deep/x.json",
                "docs/deep/y.md",
                "docs/guide.md",
                "notes.txt",
            ],
        ),
        (
            Some(&["*.md"]),
            &["a.md", "docs/deep/y.md", "docs/guide.md"],
        ),
        (
            Some(&["*.txt", "*.json"]),
            &["data.json", "docs/deep/x.json", "notes.txt"],
        ),
        (Some(&["*.pdf"]), &[]),
        (Some(&[]), &[]),
        // `*` crosses `/`, as fnmatch does.
        (Some(&["docs/*.md"]), &["docs/deep/y.md", "docs/guide.md"]),
        (Some(&["docs/**/*.json"]), &["docs/deep/x.json"]),
        (Some(&["docs/deep/?.md"]), &["docs/deep/y.md"]),
        // A bare name matches the file name at any depth.
        (Some(&["guide.md"]), &["docs/guide.md"]),
        (Some(&["[an]*"]), &["a.md", "notes.txt"]),
        // `*` crosses `/`: `d*` matches the path `docs/guide.md`.
        (Some(&["d*.json"]), &["data.json", "docs/deep/x.json"]),
    ];
    for (patterns, expected) in cases {
        let resources = fixture.open(*patterns);
        assert_eq!(names(&resources).await, *expected, "patterns {patterns:?}");
    }
}

#[tokio::test]
async fn mime_types_come_from_a_fixed_table() {
    let fixture = Fixture::new();
    let cases = [
        ("a.md", "text/markdown"),
        ("b.yaml", "application/yaml"),
        ("c.yml", "application/yaml"),
        ("d.json", "application/json"),
        ("e.png", "image/png"),
        ("f.svg", "image/svg+xml"),
        ("g.py", "text/x-python"),
        ("h.rs", "text/x-rust"),
        ("i.PDF", "application/pdf"),
        ("j.csv", "text/csv"),
        ("k.toml", "application/toml"),
        ("l.unknownext", "application/octet-stream"),
        ("Makefile", "text/plain"),
        ("noext", "application/octet-stream"),
    ];
    for (name, _) in cases {
        fixture.write(name, "x");
    }
    let resources = fixture.open(None);
    let entries = list(&resources).await;
    for (name, mime) in cases {
        let entry = entries
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("{name} listed"));
        assert_eq!(entry.mime_type, mime, "{name}");
    }
}

// ---------------------------------------------------------------------------------------
// Reading

#[tokio::test]
async fn reads_text_and_blobs() {
    let fixture = Fixture::new();
    let png = [
        0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d,
    ];
    fixture.write("a.md", "# Title\n");
    fixture.write("conf.yaml", "key: value\n");
    fixture.write("d.json", "{\"a\": 1}");
    fixture.write("pic.svg", "<svg/>");
    fixture.write("img.png", png);
    fixture.write("bad.txt", [b'o', b'k', 0xff, 0xfe]);
    let resources = fixture.open(None);

    let md = read(&resources, "workspace:///a.md")
        .await
        .expect("read md");
    assert_eq!(md.uri, "workspace:///a.md");
    assert_eq!(md.mime_type, "text/markdown");
    assert_eq!(md.body, ResourceBody::Text("# Title\n".to_owned()));
    assert_eq!(
        read_text(&resources, "workspace:///conf.yaml").await,
        "key: value\n"
    );
    assert_eq!(
        read_text(&resources, "workspace:///d.json").await,
        "{\"a\": 1}"
    );
    assert_eq!(
        read_text(&resources, "workspace:///pic.svg").await,
        "<svg/>"
    );

    let image = read(&resources, "workspace:///img.png")
        .await
        .expect("read png");
    assert_eq!(image.mime_type, "image/png");
    assert_eq!(image.body, ResourceBody::Blob(png.to_vec()));

    let bad = read(&resources, "workspace:///bad.txt")
        .await
        .expect("read bad utf-8");
    assert_eq!(bad.mime_type, "text/plain");
    assert_eq!(bad.body, ResourceBody::Blob(vec![b'o', b'k', 0xff, 0xfe]));
    assert_eq!(bad.body.as_text(), None);
}

#[tokio::test]
async fn reads_are_capped_by_size_but_large_files_are_listed() {
    let fixture = Fixture::new();
    fixture.write("big.txt", "0123456789A");
    fixture.write("edge.txt", "0123456789");
    let resources = fixture.open(None).with_max_read_bytes(10);

    let entries = list(&resources).await;
    let big = entries
        .iter()
        .find(|e| e.name == "big.txt")
        .expect("big listed");
    assert_eq!(big.size, 11);

    let err = read(&resources, "workspace:///big.txt")
        .await
        .expect_err("too large");
    assert!(
        matches!(
            &err,
            ResourceError::TooLarge {
                size: 11,
                limit: 10,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("workspace:///big.txt"), "{err}");
    assert_eq!(
        read_text(&resources, "workspace:///edge.txt").await,
        "0123456789"
    );
}

#[tokio::test]
async fn traversal_attempts_are_refused() {
    let fixture = Fixture::new();
    fixture.write("a/inner.txt", "inner");
    let resources = fixture.open(None);
    for uri in [
        "workspace:///../x",
        "workspace:///../ws2/secret.txt",
        "workspace:////etc/passwd",
        "workspace:///a/../../x",
        "workspace:///a/../../ws2/secret.txt",
        "workspace:///%2e%2e/x",
        "workspace:///%2E%2E/ws2/secret.txt",
        "workspace:///..%2fx",
        "workspace:///..%2Fws2%2Fsecret.txt",
        "workspace:///%2Fetc%2Fpasswd",
        "workspace:///..\\ws2\\secret.txt",
        "workspace:///a/..",
    ] {
        let err = read(&resources, uri).await.expect_err(uri);
        assert!(
            matches!(err, ResourceError::Escapes { .. }),
            "{uri}: {err:?}"
        );
        assert!(
            err.to_string()
                .starts_with("resource uri escapes the workspace"),
            "{err}"
        );
    }
    // Decoded once only: a doubly encoded `..` is a (missing) file name, not a parent.
    let err = read(&resources, "workspace:///%252e%252e/ws2/secret.txt")
        .await
        .expect_err("double encoding");
    assert!(matches!(err, ResourceError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn a_sibling_directory_sharing_the_root_prefix_is_outside() {
    let fixture = Fixture::new();
    let resources = fixture.open(None);
    let err = read(&resources, "workspace:///../ws2/secret.txt")
        .await
        .expect_err("sibling");
    assert!(matches!(err, ResourceError::Escapes { .. }), "{err:?}");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(fixture.sibling.join("secret.txt"), fixture.ws.join("s.txt"))
            .expect("symlink");
        let err = read(&resources, "workspace:///s.txt")
            .await
            .expect_err("via link");
        assert!(matches!(err, ResourceError::Escapes { .. }), "{err:?}");
        assert!(names(&resources).await.is_empty());
    }
}

#[cfg(unix)]
#[tokio::test]
async fn symlinks_are_followed_only_inside_the_root() {
    use std::os::unix::fs::symlink;

    let fixture = Fixture::new();
    fixture.write("a.md", "# a");
    fixture.write("sub/real.txt", "real");
    symlink("../ws2/secret.txt", fixture.ws.join("out.txt")).expect("file link out");
    symlink(&fixture.sibling, fixture.ws.join("outdir")).expect("dir link out");
    symlink("a.md", fixture.ws.join("alias.md")).expect("file link in");
    symlink("sub", fixture.ws.join("subalias")).expect("dir link in");
    symlink(".", fixture.ws.join("sub/loop")).expect("cycle");
    symlink("missing.txt", fixture.ws.join("dangling.txt")).expect("dangling");
    let resources = fixture.open(None);

    assert_eq!(
        names(&resources).await,
        ["a.md", "alias.md", "sub/real.txt", "subalias/real.txt"]
    );
    assert_eq!(read_text(&resources, "workspace:///alias.md").await, "# a");
    assert_eq!(
        read_text(&resources, "workspace:///subalias/real.txt").await,
        "real"
    );
    for uri in ["workspace:///out.txt", "workspace:///outdir/secret.txt"] {
        let err = read(&resources, uri).await.expect_err(uri);
        assert!(
            matches!(err, ResourceError::Escapes { .. }),
            "{uri}: {err:?}"
        );
    }
    let err = read(&resources, "workspace:///dangling.txt")
        .await
        .expect_err("dangling");
    assert!(matches!(err, ResourceError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn wrong_schemes_and_malformed_uris_are_invalid() {
    let fixture = Fixture::new();
    fixture.write("a.md", "a");
    let resources = fixture.open(None);
    for uri in [
        "file:///a.md",
        "a.md",
        "workspace://a.md",
        "workspace:/a.md",
        "workspace:///",
        "workspace:///a%00.md",
        "workspace:///%ff",
        "",
    ] {
        let err = read(&resources, uri).await.expect_err(uri);
        assert!(
            matches!(err, ResourceError::InvalidUri { .. }),
            "{uri:?}: {err:?}"
        );
        assert!(err.to_string().starts_with("invalid resource uri"), "{err}");
    }
    let err = read(&resources, "file:///etc/passwd")
        .await
        .expect_err("file scheme");
    assert!(err.to_string().contains("file:///etc/passwd"), "{err}");
}

#[tokio::test]
async fn names_needing_encoding_are_percent_encoded_and_read_either_way() {
    let fixture = Fixture::new();
    fixture.write("sp ace.txt", "space");
    fixture.write("100%.txt", "percent");
    fixture.write("dir é/ü.md", "unicode");
    let resources = fixture.open(None);

    let uris: Vec<String> = list(&resources).await.into_iter().map(|e| e.uri).collect();
    assert_eq!(
        uris,
        [
            "workspace:///100%25.txt",
            "workspace:///dir%20%C3%A9/%C3%BC.md",
            "workspace:///sp%20ace.txt",
        ]
    );
    assert_eq!(resources.uri_for("sp ace.txt"), "workspace:///sp%20ace.txt");
    for uri in ["workspace:///sp%20ace.txt", "workspace:///sp ace.txt"] {
        assert_eq!(read_text(&resources, uri).await, "space", "{uri}");
    }
    let content = read(&resources, "workspace:///sp ace.txt")
        .await
        .expect("plain");
    assert_eq!(content.uri, "workspace:///sp ace.txt", "the URI as asked");
    assert_eq!(
        read_text(&resources, "workspace:///100%25.txt").await,
        "percent"
    );
    assert_eq!(
        read_text(&resources, "workspace:///dir é/ü.md").await,
        "unicode"
    );
    assert_eq!(
        resources
            .canonical_uri("workspace:///dir é//./ü.md")
            .expect("canonical"),
        "workspace:///dir%20%C3%A9/%C3%BC.md"
    );
    assert!(resources.uri_for("x").starts_with(URI_SCHEME));
}

#[tokio::test]
async fn files_created_after_open_are_served_and_deleted_ones_are_not_found() {
    let fixture = Fixture::new();
    fixture.write("old.md", "old");
    let resources = fixture.open(Some(&["*.md"]));
    assert_eq!(names(&resources).await, ["old.md"]);

    fixture.write("new/later.md", "later");
    assert_eq!(names(&resources).await, ["new/later.md", "old.md"]);
    assert_eq!(
        read_text(&resources, "workspace:///new/later.md").await,
        "later"
    );

    fs::remove_file(fixture.ws.join("old.md")).expect("delete");
    assert_eq!(names(&resources).await, ["new/later.md"]);
    let err = read(&resources, "workspace:///old.md")
        .await
        .expect_err("deleted");
    assert!(matches!(err, ResourceError::NotFound { .. }), "{err:?}");
    assert_eq!(err.to_string(), "resource not found: 'workspace:///old.md'");

    fixture.write("excluded.txt", "no");
    fixture.write(".hidden.md", "no");
    fixture.write("dir.md/inner.md", "inner");
    for uri in [
        "workspace:///excluded.txt",
        "workspace:///.hidden.md",
        "workspace:///new",
        "workspace:///dir.md",
        "workspace:///old.md/child.md",
        "workspace:///never.md",
    ] {
        let err = read(&resources, uri).await.expect_err(uri);
        assert!(
            matches!(err, ResourceError::NotFound { .. }),
            "{uri}: {err:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Watching

#[tokio::test]
async fn watcher_reports_create_modify_and_delete() {
    let fixture = Fixture::new();
    fixture.write("existing.md", "v1");
    let resources = fixture.open(None).with_debounce(TEST_DEBOUNCE);
    let mut events = resources.events();
    let _watcher = watch(&resources, None).await;

    fixture.write("docs/created.md", "new");
    let before = expect_event(&mut events, &ResourceEvent::ListChanged).await;
    assert!(before.is_empty(), "{before:?}");

    fixture.write("existing.md", "version two");
    let before = expect_event(&mut events, &updated(&resources, "existing.md")).await;
    assert!(!before.contains(&ResourceEvent::ListChanged), "{before:?}");

    fs::remove_file(fixture.ws.join("docs/created.md")).expect("delete");
    let before = expect_event(&mut events, &ResourceEvent::ListChanged).await;
    assert!(before.is_empty(), "{before:?}");

    fs::rename(
        fixture.ws.join("existing.md"),
        fixture.ws.join("renamed.md"),
    )
    .expect("rename");
    expect_event(&mut events, &ResourceEvent::ListChanged).await;
}

#[tokio::test]
async fn watcher_debounces_bursts() {
    let fixture = Fixture::new();
    fixture.write("hot.log", "0");
    let resources = fixture.open(None).with_debounce(TEST_DEBOUNCE);
    let mut events = resources.events();
    let _watcher = watch(&resources, None).await;

    for i in 0..30 {
        fixture.write(&format!("burst/file{i}.txt"), "x");
    }
    expect_event(&mut events, &ResourceEvent::ListChanged).await;
    let more = drain(&mut events, QUIET).await;
    assert!(
        more.len() <= 1,
        "30 creates gave more than two batches: {more:?}"
    );

    for i in 0..30 {
        fixture.write("hot.log", format!("{i}").repeat(i + 1));
    }
    let hot = updated(&resources, "hot.log");
    expect_event(&mut events, &hot).await;
    let more = drain(&mut events, QUIET).await;
    assert!(
        more.iter().filter(|e| **e == hot).count() <= 1,
        "30 writes gave more than two updates: {more:?}"
    );
    assert!(!more.contains(&ResourceEvent::ListChanged), "{more:?}");
}

#[tokio::test]
async fn watcher_ignores_reads_hidden_and_excluded_files() {
    let fixture = Fixture::new();
    fixture.write("a.md", "a");
    let resources = fixture.open(Some(&["*.md"])).with_debounce(TEST_DEBOUNCE);
    let mut events = resources.events();
    let _watcher = watch(&resources, None).await;

    for _ in 0..3 {
        read_text(&resources, "workspace:///a.md").await;
        list(&resources).await;
    }
    fixture.write(".git/index", "churn");
    fixture.write(".draft.md", "hidden");
    fixture.write("notes.txt", "excluded");
    expect_quiet(&mut events).await;

    // Still alive: a served file is reported.
    fixture.write("b.md", "b");
    expect_event(&mut events, &ResourceEvent::ListChanged).await;
}

#[tokio::test]
async fn watcher_reports_an_atomic_replace_as_an_update() {
    let fixture = Fixture::new();
    fixture.write("report.json", "{}");
    let resources = fixture.open(None).with_debounce(TEST_DEBOUNCE);
    let mut events = resources.events();
    let _watcher = watch(&resources, None).await;

    // Workspace writes a hidden temporary sibling and renames it over the target.
    let workspace = Workspace::open(&fixture.ws).expect("workspace");
    workspace
        .write_json("report.json", &serde_json::json!({"ok": true}))
        .expect("atomic write");
    let before = expect_event(&mut events, &updated(&resources, "report.json")).await;
    assert!(!before.contains(&ResourceEvent::ListChanged), "{before:?}");
    let after = drain(&mut events, QUIET).await;
    assert!(!after.contains(&ResourceEvent::ListChanged), "{after:?}");
}

/// Publishes `payload` on `loom.resources.changed` until `expected` arrives (a NATS
/// subscription from another connection may need a moment to reach the server).
async fn publish_until(
    publisher: &Arc<dyn Bus>,
    payload: &'static str,
    events: &mut broadcast::Receiver<ResourceEvent>,
    expected: &ResourceEvent,
) -> Vec<ResourceEvent> {
    let deadline = Instant::now() + EVENT_WAIT;
    let mut seen = Vec::new();
    loop {
        bounded(
            "publish",
            publisher.publish(RESOURCES_CHANGED, payload.into()),
        )
        .await
        .expect("publish");
        let attempt_end = (Instant::now() + Duration::from_secs(1)).min(deadline);
        loop {
            match timeout_at(attempt_end, events.recv()).await {
                Ok(Ok(event)) if event == *expected => return seen,
                Ok(Ok(event)) => seen.push(event),
                Ok(Err(err)) => panic!("event channel failed: {err}"),
                Err(_) => break,
            }
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {expected:?} after publishing {payload}; saw {seen:?}"
        );
    }
}

async fn bus_messages_trigger_events(watch_bus: Arc<dyn Bus>, publisher: Arc<dyn Bus>) {
    let fixture = Fixture::new();
    fixture.write("a.md", "a");
    let resources = fixture.open(None).with_debounce(Duration::from_millis(100));
    let mut events = resources.events();
    let _watcher = watch(&resources, Some(watch_bus)).await;

    // A URI: Updated for it (and ListChanged).
    let a = updated(&resources, "a.md");
    let seen = publish_until(
        &publisher,
        r#"{"uri": "workspace:///a.md"}"#,
        &mut events,
        &a,
    )
    .await;
    let mut rest = drain(&mut events, QUIET).await;
    rest.extend(seen);
    assert!(rest.contains(&ResourceEvent::ListChanged), "{rest:?}");

    // Any other object: ListChanged.
    publish_until(&publisher, "{}", &mut events, &ResourceEvent::ListChanged).await;
    drain(&mut events, QUIET).await;

    // Malformed: skipped.
    for payload in [
        "not json",
        "[1, 2]",
        r#"{"uri": 7}"#,
        r#"{"uri": "workspace:///../x"}"#,
    ] {
        bounded(
            "publish",
            publisher.publish(RESOURCES_CHANGED, payload.into()),
        )
        .await
        .expect("publish");
    }
    expect_quiet(&mut events).await;

    // The URI comes out in the listed spelling.
    let spaced = ResourceEvent::Updated {
        uri: "workspace:///sp%20ace.txt".to_owned(),
    };
    publish_until(
        &publisher,
        r#"{"uri": "workspace:///sp ace.txt"}"#,
        &mut events,
        &spaced,
    )
    .await;
}

#[tokio::test]
async fn bus_messages_trigger_events_on_the_memory_bus() {
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());
    bus_messages_trigger_events(bus.clone(), bus).await;
}

#[tokio::test]
async fn bus_messages_trigger_events_on_nats() {
    let server = NatsServer::start().expect("start nats-server");
    let connect = || async {
        let bus = bounded("connect", NatsBus::connect(NatsOptions::new(&server.url())))
            .await
            .expect("connect to nats-server");
        Arc::new(bus) as Arc<dyn Bus>
    };
    let watcher_side = connect().await;
    let publisher = connect().await;
    bus_messages_trigger_events(watcher_side, publisher).await;
}

#[tokio::test]
async fn dropping_or_stopping_the_watcher_stops_events() {
    let fixture = Fixture::new();
    let resources = fixture.open(None).with_debounce(Duration::from_millis(100));
    let mut events = resources.events();
    let bus: Arc<dyn Bus> = Arc::new(MemoryBus::new());

    let watcher = watch(&resources, Some(bus.clone())).await;
    fixture.write("one.md", "1");
    expect_event(&mut events, &ResourceEvent::ListChanged).await;
    drain(&mut events, QUIET).await;
    drop(watcher);
    fixture.write("two.md", "2");
    bounded("publish", bus.publish(RESOURCES_CHANGED, "{}".into()))
        .await
        .expect("publish");
    expect_quiet(&mut events).await;

    let watcher = watch(&resources, None).await;
    fixture.write("three.md", "3");
    expect_event(&mut events, &ResourceEvent::ListChanged).await;
    drain(&mut events, QUIET).await;
    bounded("stop", watcher.stop()).await;
    fixture.write("four.md", "4");
    expect_quiet(&mut events).await;
}

#[tokio::test]
async fn cancelling_the_shutdown_token_stops_events() {
    let fixture = Fixture::new();
    let resources = fixture.open(None).with_debounce(Duration::from_millis(100));
    let mut events = resources.events();
    let shutdown = CancellationToken::new();
    let watcher = bounded("watch", resources.watch(None, shutdown.clone()))
        .await
        .expect("watch");

    fixture.write("one.md", "1");
    expect_event(&mut events, &ResourceEvent::ListChanged).await;
    drain(&mut events, QUIET).await;
    shutdown.cancel();
    bounded("watcher task ends", async {
        while !watcher.is_finished() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    fixture.write("two.md", "2");
    expect_quiet(&mut events).await;
}
