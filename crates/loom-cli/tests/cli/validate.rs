//! Help, version, `loom validate` output and exit codes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn loom(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loom"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .output()
        .expect("run loom")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn version_and_help() {
    let o = loom(&fixtures(), &["--version"]);
    assert!(o.status.success());
    assert_eq!(
        stdout(&o).trim(),
        format!("loom {}", env!("CARGO_PKG_VERSION"))
    );

    let o = loom(&fixtures(), &["--help"]);
    assert!(o.status.success());
    let help = stdout(&o);
    for needle in ["validate", "Exit codes", "--verbose"] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
    let o = loom(&fixtures(), &["validate", "--help"]);
    let help = stdout(&o);
    for needle in ["pipeline_stages", "--kind", "Exit status"] {
        assert!(
            help.contains(needle),
            "validate --help lacks {needle}:\n{help}"
        );
    }
}

#[test]
fn usage_errors_exit_2() {
    let o = loom(&fixtures(), &["validate"]);
    assert_eq!(o.status.code(), Some(2));
    let o = loom(&fixtures(), &["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
    let o = loom(&fixtures(), &["validate", "--kind", "robot", "x.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown config kind 'robot'"));
}

#[test]
fn missing_path_is_a_runtime_error_naming_it() {
    let o = loom(&fixtures(), &["validate", "no/such/dir"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot read no/such/dir"), "{err}");
}

/// The error report is the product: the whole output for a broken config is pinned.
#[test]
fn broken_config_reports_every_error_with_its_line() {
    let o = loom(&fixtures(), &["validate", "broken/mcp.yaml"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let expected =
        std::fs::read_to_string(fixtures().join("broken/expected.txt")).expect("expected.txt");
    assert_eq!(stdout(&o), expected);
}

#[test]
fn shipped_examples_are_valid() {
    let o = loom(&repo_root(), &["validate", "examples"]);
    assert!(
        o.status.success(),
        "{}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout(&o).ends_with("config files valid\n"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn directory_walk_skips_yaml_that_is_not_a_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("examples.yaml"),
        "- input: a\n  output: b\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("w.yaml"),
        "name: w\nworker_kind: processor\nprocessing_backend: echo\n",
    )
    .expect("write");
    std::fs::write(dir.path().join("_template.yaml"), "name: {{name}}\n").expect("write");
    let o = loom(dir.path(), &["validate", "."]);
    assert!(
        o.status.success(),
        "{}{}",
        stdout(&o),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(stdout(&o), "1 config file valid\n");
    // Named explicitly, the same file is an error.
    let o = loom(dir.path(), &["validate", "examples.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).contains("examples.yaml: expected a YAML mapping at the top, found a list"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn processor_backends_are_checked_like_loom_processor_would() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("p.yaml"),
        "name: p\nworker_kind: processor\nprocessing_backend: peer_backend.TextStatsBackend\n",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("s.yaml"),
        "name: s\nworker_kind: processor\nprocessing_backend: subprocess\nbackend_config:\n  command: [python3]\n  io_mode: telepathy\n",
    )
    .expect("write");
    let o = loom(dir.path(), &["validate", "."]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("p.yaml:3:21: processing_backend: processing_backend 'peer_backend.TextStatsBackend' is a Python class path"), "{out}");
    assert!(
        out.contains("s.yaml:6:12: backend_config.io_mode: unknown io_mode 'telepathy'"),
        "{out}"
    );
}
