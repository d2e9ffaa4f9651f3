//! The workspace path jail: mesh spec §8, §18 items 37–38 and §19 B5.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use loom_core::workspace::{Workspace, WorkspaceError};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;

/// `x/ws` (the root) beside `x/ws2` (a sibling whose name extends the root's) and
/// `x/outside.json`, so string-prefix checks would be fooled.
struct Layout {
    _dir: tempfile::TempDir,
    x: PathBuf,
    ws: Workspace,
}

impl Layout {
    fn new() -> Layout {
        let dir = tempfile::tempdir().expect("temp dir");
        let x = dir.path().canonicalize().expect("canonical temp dir");
        for d in ["ws/sub/deeper", "ws2"] {
            fs::create_dir_all(x.join(d)).expect("create dirs");
        }
        fs::write(x.join("ws/a.json"), r#"{"a": 1}"#).expect("write");
        fs::write(x.join("ws/sub/b.txt"), "bee").expect("write");
        fs::write(x.join("ws/sub/deeper/c.json"), "[1, 2]").expect("write");
        fs::write(x.join("ws2/secret.json"), r#"{"secret": true}"#).expect("write");
        fs::write(x.join("outside.json"), r#"{"outside": true}"#).expect("write");
        let ws = Workspace::open(x.join("ws")).expect("open workspace");
        Layout { _dir: dir, x, ws }
    }

    /// Every file outside the root with its content, to prove nothing there changed.
    fn outside_snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut out = BTreeMap::new();
        let mut stack = vec![self.x.clone()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).expect("read dir") {
                let path = entry.expect("dir entry").path();
                if path.starts_with(self.x.join("ws")) && !path.starts_with(self.x.join("ws2")) {
                    continue;
                }
                let meta = fs::symlink_metadata(&path).expect("metadata");
                if meta.is_dir() {
                    stack.push(path);
                } else if meta.is_file() {
                    out.insert(path.clone(), fs::read(&path).expect("read"));
                }
            }
        }
        out
    }
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).expect("create symlink");
}

#[test]
fn files_and_subdirectories_inside_are_accepted() {
    let l = Layout::new();
    let root = l.ws.root().to_path_buf();
    assert_eq!(root, l.x.join("ws"));
    for (r, want) in [
        ("a.json", "a.json"),
        ("./a.json", "a.json"),
        ("sub", "sub"),
        ("sub/b.txt", "sub/b.txt"),
        ("sub//deeper/./c.json", "sub/deeper/c.json"),
        (".", ""),
    ] {
        let p = l.ws.resolve(r).unwrap_or_else(|e| panic!("{r}: {e}"));
        assert_eq!(p.as_path(), root.join(want), "{r}");
        assert_eq!(p.file_ref(), r);
    }
}

#[test]
fn parent_components_are_rejected() {
    let l = Layout::new();
    for r in [
        "../outside.json",
        "sub/../../outside.json",
        "sub/../a.json",
        "..",
        "..\\outside.json",
        "sub\\..\\..\\x",
    ] {
        let err = l.ws.resolve(r).expect_err("must be rejected");
        assert!(matches!(err, WorkspaceError::Escapes { .. }), "{r}: {err}");
        assert!(
            matches!(
                l.ws.resolve_for_write(r),
                Err(WorkspaceError::Escapes { .. })
            ),
            "{r}"
        );
    }
}

#[test]
fn sibling_with_shared_prefix_is_not_inside() {
    // loom-ai 0.9.0 let this through: "/x/ws2/secret.json".startswith("/x/ws").
    let l = Layout::new();
    let err =
        l.ws.resolve("../ws2/secret.json")
            .expect_err("sibling escape");
    assert_eq!(
        err.to_string(),
        "path escapes the workspace: '../ws2/secret.json'"
    );
    assert!(l.ws.read_json("../ws2/secret.json").is_err());
    assert!(l.ws.write_json("../ws2/secret.json", &json!({})).is_err());
    assert_eq!(
        fs::read_to_string(l.x.join("ws2/secret.json")).expect("read"),
        r#"{"secret": true}"#
    );
}

#[test]
fn absolute_refs_are_rejected() {
    let l = Layout::new();
    let inside_but_absolute = l.ws.root().join("a.json").to_string_lossy().into_owned();
    for r in [
        "/etc/passwd",
        inside_but_absolute.as_str(),
        "C:\\x.json",
        "c:/x.json",
        "\\\\server\\share\\x",
        "\\x",
    ] {
        let err = l.ws.resolve(r).expect_err("absolute");
        assert!(matches!(err, WorkspaceError::Absolute { .. }), "{r}: {err}");
        assert!(
            matches!(
                l.ws.resolve_for_write(r),
                Err(WorkspaceError::Absolute { .. })
            ),
            "{r}"
        );
    }
}

#[test]
fn empty_and_nul_refs_are_rejected() {
    let l = Layout::new();
    assert!(matches!(l.ws.resolve(""), Err(WorkspaceError::EmptyRef)));
    let err = l.ws.resolve("a.json\0.txt").expect_err("NUL");
    assert!(matches!(err, WorkspaceError::InvalidRef { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "invalid file ref 'a.json\\0.txt': it contains a NUL byte"
    );
}

#[test]
fn missing_file_is_not_found() {
    let l = Layout::new();
    let err = l.ws.resolve("nope.json").expect_err("missing");
    assert_eq!(err.to_string(), "file not found in workspace: 'nope.json'");
    assert!(matches!(
        l.ws.read_json("sub/nope.json"),
        Err(WorkspaceError::NotFound { .. })
    ));
}

#[cfg(unix)]
#[test]
fn symlinks_leading_outside_are_rejected_for_read_and_write() {
    let l = Layout::new();
    let before = l.outside_snapshot();
    let root = l.ws.root().to_path_buf();
    symlink(&l.x.join("outside.json"), &root.join("file_out"));
    symlink(&l.x.join("ws2"), &root.join("dir_out"));
    symlink(&l.x.join("nowhere.json"), &root.join("dangling"));
    symlink(&l.x.join("no_dir"), &root.join("dangling_dir"));

    for r in ["file_out", "dir_out/secret.json", "dir_out"] {
        assert!(
            matches!(l.ws.resolve(r), Err(WorkspaceError::Escapes { .. })),
            "read {r}"
        );
        assert!(l.ws.read_bytes(r).is_err(), "read {r}");
    }
    for r in [
        "file_out",
        "dir_out/secret.json",
        "dir_out/new.json",
        "dangling",
        "dangling_dir/new.json",
        "dir_out/n/e/w.json",
    ] {
        let err =
            l.ws.write_text(r, "pwned")
                .expect_err("write must be refused");
        assert!(
            matches!(err, WorkspaceError::Escapes { .. }),
            "write {r}: {err}"
        );
    }
    assert_eq!(
        l.outside_snapshot(),
        before,
        "nothing outside the root changed"
    );
    assert!(!l.x.join("nowhere.json").exists());
    assert!(!l.x.join("no_dir").exists());
}

#[cfg(unix)]
#[test]
fn symlinks_inside_the_root_are_followed() {
    let l = Layout::new();
    let root = l.ws.root().to_path_buf();
    symlink(&root.join("sub/deeper/c.json"), &root.join("alias.json"));
    symlink(Path::new("sub"), &root.join("sub_link"));
    let p = l.ws.resolve("alias.json").expect("inside → inside");
    assert_eq!(p.as_path(), root.join("sub/deeper/c.json"));
    assert_eq!(
        l.ws.read_json("alias.json").expect("read through link"),
        json!([1, 2])
    );
    assert_eq!(
        l.ws.read_text("sub_link/b.txt")
            .expect("read through dir link"),
        "bee"
    );
    // Writing through the link replaces the real file, and the link stays a link.
    l.ws.write_json("alias.json", &json!({"new": 1}))
        .expect("write through link");
    assert_eq!(
        l.ws.read_json("sub/deeper/c.json").expect("read"),
        json!({"new": 1})
    );
    assert!(
        fs::symlink_metadata(root.join("alias.json"))
            .expect("meta")
            .file_type()
            .is_symlink()
    );
    l.ws.write_text("sub_link/new.txt", "n")
        .expect("write under dir link");
    assert_eq!(
        fs::read_to_string(root.join("sub/new.txt")).expect("read"),
        "n"
    );
}

#[test]
fn json_writes_are_pretty_with_two_space_indent() {
    let l = Layout::new();
    let written =
        l.ws.write_json("out/deep/r.json", &json!({"a": 1, "b": [1, 2], "c": {}}))
            .expect("write");
    assert_eq!(written.as_path(), l.ws.root().join("out/deep/r.json"));
    let text = fs::read_to_string(l.ws.root().join("out/deep/r.json")).expect("read");
    assert_eq!(
        text,
        "{\n  \"a\": 1,\n  \"b\": [\n    1,\n    2\n  ],\n  \"c\": {}\n}"
    );
    assert_eq!(
        l.ws.read_json("out/deep/r.json").expect("read"),
        json!({"a": 1, "b": [1, 2], "c": {}})
    );
    let leftovers: Vec<_> = fs::read_dir(l.ws.root().join("out/deep"))
        .expect("list")
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left behind");
}

#[test]
fn reads_parse_json_or_text() {
    let l = Layout::new();
    assert_eq!(l.ws.read_json("a.json").expect("json"), json!({"a": 1}));
    assert_eq!(l.ws.read_text("sub/b.txt").expect("text"), "bee");
    assert_eq!(l.ws.read_bytes("sub/b.txt").expect("bytes"), b"bee");
    let err = l.ws.read_json("sub/b.txt").expect_err("not JSON");
    assert!(
        err.to_string()
            .starts_with("invalid JSON in workspace file 'sub/b.txt': "),
        "{err}"
    );
    fs::write(l.ws.root().join("bin.dat"), [0xff, 0xfe]).expect("write");
    assert!(matches!(
        l.ws.read_text("bin.dat"),
        Err(WorkspaceError::NotUtf8 { .. })
    ));
    assert!(matches!(
        l.ws.read_text("sub"),
        Err(WorkspaceError::NotAFile { .. })
    ));
}

#[test]
fn writes_overwrite_files_but_not_directories_or_the_root() {
    let l = Layout::new();
    l.ws.write_text("sub/b.txt", "new").expect("overwrite");
    assert_eq!(l.ws.read_text("sub/b.txt").expect("read"), "new");
    for r in [".", "sub", "sub/", "./"] {
        assert!(
            matches!(
                l.ws.write_text(r, "x"),
                Err(WorkspaceError::NotAFile { .. })
            ),
            "{r}"
        );
    }
    // A file in the way of a directory.
    assert!(l.ws.write_text("a.json/inner.txt", "x").is_err());
}

#[test]
fn open_requires_an_existing_directory() {
    let l = Layout::new();
    assert!(matches!(
        Workspace::open(l.x.join("missing")),
        Err(WorkspaceError::Root { .. })
    ));
    let err = Workspace::open(l.x.join("outside.json")).expect_err("a file");
    assert!(
        matches!(err, WorkspaceError::RootNotDirectory { .. }),
        "{err}"
    );
}

fn arb_ref() -> impl Strategy<Value = String> {
    let parts = prop::sample::select(vec![
        "a", "b", "..", ".", "", "sub", "a.json", "new", "file_out", "dir_out", "in_link",
        "dangling",
    ]);
    (any::<bool>(), prop::collection::vec(parts, 1..6)).prop_map(|(absolute, parts)| {
        let joined = parts.join("/");
        if absolute {
            format!("/{joined}")
        } else {
            joined
        }
    })
}

#[cfg(unix)]
#[test]
fn no_generated_ref_resolves_or_writes_outside_the_root() {
    let l = Layout::new();
    let root = l.ws.root().to_path_buf();
    symlink(&l.x.join("outside.json"), &root.join("file_out"));
    symlink(&l.x.join("ws2"), &root.join("dir_out"));
    symlink(&root.join("sub"), &root.join("in_link"));
    symlink(&l.x.join("nowhere"), &root.join("dangling"));
    let before = l.outside_snapshot();

    let mut runner = TestRunner::new(Config {
        cases: 512,
        ..Config::default()
    });
    runner
        .run(&arb_ref(), |r| {
            let has_parent = r.split('/').any(|p| p == "..");
            match l.ws.resolve(&r) {
                Ok(p) => {
                    prop_assert!(!has_parent, "{r} has '..' but resolved");
                    prop_assert!(
                        p.as_path().starts_with(&root),
                        "{r} resolved to {:?}",
                        p.as_path()
                    );
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
            match l.ws.resolve_for_write(&r) {
                Ok(p) => {
                    prop_assert!(!has_parent, "{r} has '..' but resolved for write");
                    prop_assert!(
                        p.as_path().starts_with(&root),
                        "{r} resolved to {:?}",
                        p.as_path()
                    );
                    if let Ok(written) = l.ws.write_text(&r, "x") {
                        prop_assert!(written.as_path().starts_with(&root));
                    }
                }
                Err(e) => prop_assert!(!e.to_string().is_empty()),
            }
            Ok(())
        })
        .expect("no ref escapes");
    assert_eq!(
        l.outside_snapshot(),
        before,
        "nothing outside the root changed"
    );
    assert!(!l.x.join("nowhere").exists());
}
