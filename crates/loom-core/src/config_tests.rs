//! Tests across config kinds: detection, gateways with referenced files, robustness.

use std::path::{Path, PathBuf};

use proptest::prelude::*;

use super::*;
use crate::message::ModelTier;

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Self {
        Dir(tempfile::tempdir().expect("temp dir"))
    }

    fn write(&self, rel: &str, contents: &str) -> PathBuf {
        let p = self.0.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(&p, contents).expect("write");
        p
    }
}

fn lines(errors: &ConfigErrors, root: &Path) -> Vec<String> {
    let prefix = format!("{}/", root.display());
    errors
        .errors()
        .iter()
        .map(|e| e.to_string().replace(&prefix, ""))
        .collect()
}

const WORKER: &str = "name: summarizer\ndescription: Summarizes.\nsystem_prompt: Summarize.\n\
    input_schema: {type: object, required: [text], properties: {text: {type: string}}}\ndefault_model_tier: local\n";
const PIPELINE: &str = "name: ingest\npipeline_stages:\n  - {name: summarize, worker_type: summarizer, input_mapping: {text: goal.context.text}}\n";

#[test]
fn gateway_loads_referenced_configs_relative_to_itself() {
    let dir = Dir::new();
    dir.write("workers/summarizer.yaml", WORKER);
    dir.write("pipelines/ingest.yaml", PIPELINE);
    let gw = dir.write(
        "mcp/../gateway.yaml",
        "name: docman\ndescription: Documents.\ntools:\n  workers:\n    - config: workers/summarizer.yaml\n      tier: standard\n\
         \x20 pipelines:\n    - {config: pipelines/ingest.yaml, name: ingest_document}\n\
         \x20 queries:\n    - {backend: sqlite, actions: [search, get], name_prefix: docs, backend_config: {table_name: documents}}\n\
         \x20 workshop: {}\n  session: {enable: [status]}\nresources:\n  workspace_dir: workspace\n  patterns: ['*.json']\n",
    );
    let c = load_gateway(&gw).expect("valid gateway");
    assert_eq!(c.name, "docman");
    assert_eq!(c.workers[0].tool_name, "summarizer");
    assert_eq!(c.workers[0].tier, Some(ModelTier::Standard));
    assert_eq!(c.pipelines[0].pipeline.name.as_str(), "ingest");
    assert_eq!(c.queries[0].worker_type.as_str(), "docs_query");
    assert_eq!(c.queries[0].tool_name(QueryAction::Get), "docs_get");
    assert_eq!(c.queries[0].timeout_seconds, DEFAULT_QUERY_TIMEOUT_SECONDS);
    let ws = c.workshop.as_ref().expect("workshop enabled by {}");
    assert_eq!(ws.enable.len(), 4);
    assert!(!ws.enable.contains(&WorkshopGroup::Deadletter));
    assert_eq!(c.session.as_ref().map(|s| s.enable.len()), Some(1));
    let res = c.resources.as_ref().expect("resources");
    assert_eq!(res.workspace_dir, dir.0.path().join("mcp/../workspace"));
    assert!(matches!(load_any(&gw, None), Ok(AnyConfig::Gateway(_))));
}

#[test]
fn gateway_reports_errors_here_and_in_referenced_files() {
    let dir = Dir::new();
    dir.write(
        "workers/bad.yaml",
        "name: bad\nsystem_prompt: p\ntimeout_seconds: -3\n",
    );
    dir.write("workers/summarizer.yaml", WORKER);
    let gw = dir.write(
        "gateway.yaml",
        "name: docman\nnats_url: http://x\ntools:\n  workers:\n    - config: workers/bad.yaml\n\
         \x20   - config: workers/missing.yaml\n    - {config: workers/summarizer.yaml, tier: fast}\n\
         \x20   - {config: workers/summarizer.yaml, name: summarizer}\n\
         \x20 pipelines:\n    - config: workers/summarizer.yaml\n\
         \x20 queries:\n    - {backend: pkg.Backend, actions: [serch], name_prefix: docs}\n\
         \x20 workshop: {enable: [worker, deadletters]}\nresouces: {}\n",
    );
    let errs = load_gateway(&gw).expect_err("invalid");
    let got = lines(&errs, dir.0.path());
    let expected = [
        "gateway.yaml:2:11: nats_url: 'http://x' is not a NATS server URL (e.g. nats://127.0.0.1:4222)",
        "gateway.yaml:5:15: tools.workers[0].config: ",
        "gateway.yaml:6:15: tools.workers[1].config: ",
        "gateway.yaml:7:47: tools.workers[2].tier: unknown tier 'fast' (valid: local, standard, frontier)",
        "gateway.yaml:8:47: tools.workers[3]: duplicate tool name 'summarizer' (from tools.workers[2] and tools.workers[3])",
        "gateway.yaml:10:7: tools.pipelines[0]: missing required key 'name'",
        "gateway.yaml:10:15: tools.pipelines[0].config: ",
        "gateway.yaml:12:17: tools.queries[0].backend: 'pkg.Backend' is a Python class",
        "gateway.yaml:12:40: tools.queries[0].actions[0]: unknown query action 'serch'; did you mean 'search'?",
        "gateway.yaml:13:31: tools.workshop.enable[1]: unknown workshop group 'deadletters'; did you mean 'deadletter'?",
        "gateway.yaml:14:1: resouces: unknown key 'resouces'; did you mean 'resources'?",
        "workers/bad.yaml:3:18: timeout_seconds: must be a number greater than 0, found -3",
    ];
    assert_eq!(got.len(), expected.len(), "{got:#?}");
    for (g, e) in got.iter().zip(expected) {
        assert!(g.starts_with(e), "\n got: {g}\nwant: {e}…");
    }
    assert!(
        got[1].contains("bad.yaml has 1 error (listed with that file)"),
        "{}",
        got[1]
    );
    assert!(
        got[2].contains("missing.yaml: file not found (paths are relative to this config file)"),
        "{}",
        got[2]
    );
    assert!(
        got[6].ends_with("workers/summarizer.yaml is a worker config, not a pipeline config"),
        "{}",
        got[6]
    );
}

#[test]
fn gateway_keeps_the_originals_rules() {
    let dir = Dir::new();
    let errs = |src: &str| {
        let gw = dir.write("g.yaml", src);
        lines(&load_gateway(&gw).expect_err("invalid"), dir.0.path())
    };
    assert_eq!(
        errs("description: 3\n"),
        [
            "g.yaml:1:1: missing required key 'name'",
            "g.yaml:1:14: description: expected a string, found an integer (3)",
        ]
    );
    assert_eq!(
        errs("name: x\ntools:\n"),
        [
            "g.yaml:1:1: tools: 'tools' must be a mapping (remove the key or add workers/pipelines/queries)"
        ]
    );
    assert_eq!(
        errs("name: x\ntools: {workers: {config: a}}\n"),
        ["g.yaml:2:18: tools.workers: expected a list, found a mapping"]
    );
    assert_eq!(
        errs("name: x\nresources: {}\n"),
        ["g.yaml:2:12: resources: missing required key 'workspace_dir'"]
    );
    assert_eq!(
        errs("name: x\nresources: {workspace_dir: w, patterns: '*.md'}\n"),
        ["g.yaml:2:41: resources.patterns: expected a list, found a string ('*.md')"]
    );
    assert_eq!(
        errs("name: x\ntools: {session: {enable: [start, [x]]}}\n"),
        ["g.yaml:2:35: tools.session.enable[1]: expected a string, found a list"]
    );
    // Presence enables a section; null is absence.
    let gw = dir.write("g.yaml", "name: x\ntools: {workshop: null, session: {}}\n");
    let c = load_gateway(&gw).expect("valid");
    assert!(c.workshop.is_none());
    assert_eq!(c.session.map(|s| s.enable.len()), Some(5));
}

#[test]
fn detection_by_keys_and_explicit_kind() {
    let dir = Dir::new();
    let w = dir.write("w.yaml", WORKER);
    let p = dir.write("p.yaml", PIPELINE);
    let r = dir.write("r.yaml", "tier_overrides: {summarizer: local}\n");
    let unknown = dir.write("u.yaml", "schedules: []\n");
    let orch = dir.write("o.yaml", "name: o\navailable_workers: []\n");
    assert_eq!(load_any(&w, None).map(|c| c.kind()), Ok(ConfigKind::Worker));
    assert_eq!(
        load_any(&p, None).map(|c| c.kind()),
        Ok(ConfigKind::Pipeline)
    );
    assert_eq!(
        load_any(&r, None).map(|c| c.kind()),
        Ok(ConfigKind::RouterRules)
    );
    let e = load_any(&unknown, None).expect_err("undetectable");
    assert!(e.errors()[0].message.contains("pass --kind"), "{e}");
    let e = load_any(&orch, None).expect_err("orchestrator");
    assert!(e.errors()[0].message.contains("not supported"), "{e}");
    // An explicit kind overrides detection and reports what that kind needs.
    let e = load_any(&unknown, Some(ConfigKind::Worker)).expect_err("not a worker");
    assert_eq!(e.len(), 3, "{e}");
    assert_eq!(
        "router-rules".parse::<ConfigKind>(),
        Ok(ConfigKind::RouterRules)
    );
}

#[test]
fn whole_file_problems_are_one_clear_error() {
    let dir = Dir::new();
    let missing = dir.0.path().join("nope.yaml");
    let e = load_worker(&missing).expect_err("missing");
    assert_eq!(e.errors()[0].message, "file not found");
    let list = dir.write("list.yaml", "- a\n- b\n");
    let e = load_worker(&list).expect_err("list");
    assert_eq!(e.errors()[0].message, "expected a mapping, found a list");
    let e = load_any(dir.0.path(), None).expect_err("dir");
    assert_eq!(e.errors()[0].message, "is a directory, not a config file");
    let bin = dir.0.path().join("bin.yaml");
    std::fs::write(&bin, [0xff, 0xfe, 0x00]).expect("write");
    let e = load_worker(&bin).expect_err("binary");
    assert!(e.errors()[0].message.contains("not valid UTF-8"), "{e}");
}

fn arb_yamlish() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "name",
        "tools",
        "workers",
        "pipeline_stages",
        "system_prompt",
        "-",
        ":",
        " ",
        "\n",
        "  ",
        "{",
        "}",
        "[",
        "]",
        ",",
        "'",
        "\"",
        "&a",
        "*a",
        "!!str",
        "input_schema",
        "type",
        "object",
        "1",
        "-1.5",
        "true",
        "null",
        "~",
        "config",
        "x.yaml",
        "tier",
        "local",
        "condition",
        "==",
        "goal.context.x",
        "a.output",
        "#",
        "|",
        ">",
        "?",
        "rate_limits",
        "max_concurrent",
        "resources",
        "workspace_dir",
        "depends_on",
        "properties",
        "$ref",
        "%",
    ]);
    prop::collection::vec(atoms, 0..60).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// No input, however broken, panics a loader; every failure carries at least one error.
    #[test]
    fn loaders_never_panic(src in arb_yamlish()) {
        let dir = Dir::new();
        let p = dir.write("c.yaml", &src);
        for kind in ConfigKind::ALL {
            if let Err(e) = load_any(&p, Some(kind)) {
                prop_assert!(!e.is_empty());
            }
        }
        let _ = load_any(&p, None);
    }

    /// Arbitrary bytes never panic either.
    #[test]
    fn loaders_never_panic_on_bytes(src in prop::collection::vec(any::<u8>(), 0..200)) {
        let dir = Dir::new();
        let p = dir.0.path().join("c.yaml");
        std::fs::write(&p, &src).expect("write");
        let _ = load_any(&p, None);
        let _ = load_any(&p, Some(ConfigKind::Gateway));
    }
}

#[test]
fn locate_finds_nested_keys_and_falls_back_to_the_deepest() {
    let dir = Dir::new();
    let f = dir.write(
        "w.yaml",
        "name: w\nbackend_config:\n  command: [python3, x.py]\n  env: {A: b}\n",
    );
    assert_eq!(
        locate(&f, "backend_config.command[1]"),
        Some(Location {
            line: 3,
            column: 22
        })
    );
    assert_eq!(
        locate(&f, "backend_config.env.A"),
        Some(Location {
            line: 4,
            column: 12
        })
    );
    assert_eq!(
        locate(&f, "backend_config.missing"),
        Some(Location { line: 3, column: 3 })
    );
    assert_eq!(locate(&dir.0.path().join("nope.yaml"), "name"), None);
}
