//! Loader tests of `mcp_servers` in gateway, worker and pipeline configs.

use std::path::{Path, PathBuf};

use super::*;
use crate::config::{ConfigErrors, MCP_TOOL_WORKER, load_gateway, load_pipeline, load_worker};

fn write(dir: &Path, rel: &str, contents: &str) -> PathBuf {
    let p = dir.join(rel);
    std::fs::write(&p, contents).expect("write");
    p
}

fn lines(errors: &ConfigErrors, root: &Path) -> Vec<String> {
    let prefix = format!("{}/", root.display());
    errors
        .errors()
        .iter()
        .map(|e| e.to_string().replace(&prefix, ""))
        .collect()
}

#[test]
fn patterns_match_literals_and_stars() {
    assert!(pattern_matches("echo", "echo"));
    assert!(!pattern_matches("echo", "echoes"));
    assert!(pattern_matches("git_*", "git_status"));
    assert!(!pattern_matches("git_*", "status"));
    assert!(pattern_matches("*", "anything"));
    assert!(pattern_matches("*_status", "git_status"));
    assert!(pattern_matches("a*b*c", "axxbyyc"));
    assert!(!pattern_matches("a*b*c", "axxbyy"));
}

#[test]
fn gateway_reads_stdio_and_http_upstreams_with_allow_deny_and_prefix_mode() {
    let dir = tempfile::tempdir().expect("dir");
    let gw = write(
        dir.path(),
        "gw.yaml",
        "name: fed\ntools:\n  mcp_prefix_mode: always\n  mcp_servers:\n\
         \x20   everything:\n      command: node\n      args: [index.js, stdio]\n      env: {LOG: debug}\n      cwd: servers\n      deny: [get-env, 'trigger-*']\n\
         \x20   hosted:\n      url: http://127.0.0.1:9/mcp\n      headers: {Authorization: Bearer x}\n      allow: [echo]\n      timeout: 5\n\
         \x20   off: {command: nothing, disabled: true}\n",
    );
    let c = load_gateway(&gw).expect("valid");
    let mcp = c.mcp_servers.expect("section");
    assert_eq!(mcp.prefix_mode, McpPrefixMode::Always);
    assert_eq!(mcp.servers.len(), 2, "the disabled entry is left out");
    let e = &mcp.servers[0];
    assert_eq!(e.name, "everything");
    match &e.transport {
        McpTransportConfig::Stdio {
            command,
            args,
            env,
            cwd,
        } => {
            assert_eq!(command, "node");
            assert_eq!(args, &["index.js", "stdio"]);
            assert_eq!(env.get("LOG").map(String::as_str), Some("debug"));
            assert_eq!(cwd.as_deref(), Some(dir.path().join("servers").as_path()));
        }
        other => panic!("expected stdio, got {other:?}"),
    }
    assert!(e.exposes("echo"));
    assert!(!e.exposes("get-env"));
    assert!(!e.exposes("trigger-long-running-operation"));
    let h = &mcp.servers[1];
    assert!(
        matches!(&h.transport, McpTransportConfig::Http { url, headers }
        if url == "http://127.0.0.1:9/mcp" && headers.len() == 1)
    );
    assert_eq!(h.timeout_seconds, Some(5.0));
    assert!(h.exposes("echo") && !h.exposes("add"));
}

#[test]
fn gateway_reports_every_bad_upstream_entry_with_its_position() {
    let dir = tempfile::tempdir().expect("dir");
    let gw = write(
        dir.path(),
        "gw.yaml",
        "name: fed\ntools:\n  mcp_prefix_mode: sometimes\n  mcp_servers:\n\
         \x20   both: {command: x, url: http://h/mcp}\n\
         \x20   none: {args: [a]}\n\
         \x20   'bad name': {command: x}\n\
         \x20   ftp: {url: ftp://h/mcp}\n\
         \x20   typo: {command: x, alow: [a]}\n\
         \x20   envnum: {command: x, env: {PORT: 3000}}\n\
         \x20   mixed: {url: http://h/mcp, cwd: x}\n",
    );
    let errors = load_gateway(&gw).expect_err("invalid");
    assert_eq!(
        lines(&errors, dir.path()),
        [
            "gw.yaml:3:20: tools.mcp_prefix_mode: unknown prefix mode 'sometimes' (valid: conditional, always, never)",
            "gw.yaml:5:11: tools.mcp_servers.both: set either 'command' (stdio) or 'url' (HTTP), not both",
            "gw.yaml:6:11: tools.mcp_servers.none: missing required key 'command' (stdio) or 'url' (HTTP)",
            "gw.yaml:7:5: tools.mcp_servers.bad name: invalid MCP server name 'bad name': use 1 to 32 characters from [A-Za-z0-9_-], not starting with '-' and without '__'",
            "gw.yaml:8:16: tools.mcp_servers.ftp.url: invalid URL 'ftp://h/mcp': expected http:// or https://",
            "gw.yaml:9:24: tools.mcp_servers.typo.alow: unknown key 'alow'; did you mean 'allow'?",
            "gw.yaml:10:38: tools.mcp_servers.envnum.env.PORT: expected a string, found an integer (3000) (quote it)",
            "gw.yaml:11:12: tools.mcp_servers.mixed: 'cwd' needs 'command' (stdio servers only)",
        ]
    );
}

#[test]
fn llm_workers_take_mcp_servers_and_processors_refuse_them() {
    let dir = tempfile::tempdir().expect("dir");
    let w = write(
        dir.path(),
        "w.yaml",
        "name: researcher\nsystem_prompt: Use the tools.\nmcp_servers:\n  git: {command: uvx, args: [mcp-server-git]}\n",
    );
    let c = load_worker(&w).expect("valid");
    assert_eq!(c.mcp_servers.expect("servers").servers[0].name, "git");
    let p = write(
        dir.path(),
        "p.yaml",
        "name: counter\nworker_kind: processor\nprocessing_backend: text_stats\nmcp_servers:\n  git: {command: uvx}\n",
    );
    let errors = load_worker(&p).expect_err("invalid");
    assert_eq!(
        lines(&errors, dir.path()),
        ["p.yaml:5:3: mcp_servers: mcp_servers needs an llm worker (processors do not call tools)"]
    );
}

#[test]
fn pipeline_stages_call_mcp_tools_instead_of_workers() {
    let dir = tempfile::tempdir().expect("dir");
    let p = write(
        dir.path(),
        "p.yaml",
        "name: fed\nmcp_servers:\n  everything: {command: node}\npipeline_stages:\n\
         \x20 - {name: echo, mcp_tool: everything.echo, input_mapping: {message: goal.context.text}}\n\
         \x20 - {name: count, worker_type: text_stats, input_mapping: {text: echo.output.text}}\n",
    );
    let c = load_pipeline(&p).expect("valid");
    assert_eq!(c.stages[0].mcp_tool.as_deref(), Some("everything.echo"));
    assert_eq!(c.stages[0].worker_type.as_str(), MCP_TOOL_WORKER);
    assert_eq!(c.stages[1].mcp_tool, None);
    assert_eq!(c.mcp_servers.expect("servers").servers.len(), 1);
    let bad = write(
        dir.path(),
        "bad.yaml",
        "name: fed\npipeline_stages:\n\
         \x20 - {name: a, mcp_tool: x.y, worker_type: w}\n\
         \x20 - {name: b}\n\
         \x20 - {name: c, mcp_tool: ''}\n",
    );
    let errors = load_pipeline(&bad).expect_err("invalid");
    assert_eq!(
        lines(&errors, dir.path()),
        [
            "bad.yaml:3:25: pipeline_stages[0].mcp_tool: set either 'worker_type' or 'mcp_tool', not both",
            "bad.yaml:4:5: pipeline_stages[1]: missing required key 'worker_type' (or 'mcp_tool' to call an MCP tool)",
            "bad.yaml:5:25: pipeline_stages[2].mcp_tool: must not be empty",
        ]
    );
}

#[test]
fn gateway_checks_the_servers_of_mcp_tool_stages() {
    let dir = tempfile::tempdir().expect("dir");
    write(
        dir.path(),
        "p.yaml",
        "name: fed\npipeline_stages:\n  - {name: status, mcp_tool: gti.git_status}\n  - {name: log, mcp_tool: git_log}\n",
    );
    let none = write(
        dir.path(),
        "none.yaml",
        "name: gw\ntools:\n  pipelines:\n    - {config: p.yaml, name: fed}\n",
    );
    let errors = load_gateway(&none).expect_err("invalid");
    assert_eq!(
        lines(&errors, dir.path()),
        [
            "none.yaml:4:7: tools.pipelines[0]: pipeline 'fed' stage 'log' calls MCP tool 'git_log', but neither tools.mcp_servers nor the pipeline's mcp_servers is set",
            "none.yaml:4:7: tools.pipelines[0]: pipeline 'fed' stage 'status' calls MCP tool 'gti.git_status', but neither tools.mcp_servers nor the pipeline's mcp_servers is set",
        ]
    );
    let typo = write(
        dir.path(),
        "typo.yaml",
        "name: gw\ntools:\n  pipelines:\n    - {config: p.yaml, name: fed}\n  mcp_servers:\n    git: {command: uvx}\n",
    );
    let errors = load_gateway(&typo).expect_err("invalid");
    assert_eq!(
        lines(&errors, dir.path()),
        [
            "typo.yaml:4:7: tools.pipelines[0]: pipeline 'fed' stage 'status' calls MCP tool 'gti.git_status', but there is no MCP server 'gti'; did you mean 'git'?"
        ]
    );
    // A pipeline with its own servers is fine without the gateway's.
    write(
        dir.path(),
        "own.yaml",
        "name: own\nmcp_servers:\n  git: {command: uvx}\npipeline_stages:\n  - {name: status, mcp_tool: git.git_status}\n",
    );
    let own = write(
        dir.path(),
        "own_gw.yaml",
        "name: gw\ntools:\n  pipelines:\n    - {config: own.yaml, name: own}\n",
    );
    load_gateway(&own).expect("the pipeline brings its servers");
}

#[test]
fn the_mcp_tool_worker_type_is_reserved() {
    let dir = tempfile::tempdir().expect("dir");
    let p = write(
        dir.path(),
        "p.yaml",
        "name: fed\npipeline_stages:\n  - {name: a, worker_type: mcp_tool}\n",
    );
    let errors = load_pipeline(&p).expect_err("reserved worker_type");
    assert_eq!(
        lines(&errors, dir.path()),
        [
            "p.yaml:3:28: pipeline_stages[0].worker_type: 'mcp_tool' is reserved for stages \
          that call an MCP tool: write 'mcp_tool: server.tool' instead"
        ]
    );
    let w = write(
        dir.path(),
        "w.yaml",
        "name: mcp_tool\nworker_kind: processor\nprocessing_backend: echo\n",
    );
    let errors = load_worker(&w).expect_err("reserved worker name");
    assert_eq!(
        lines(&errors, dir.path()),
        [
            "w.yaml:1:7: name: 'mcp_tool' is reserved for pipeline stages that call an MCP tool; \
          choose another name"
        ]
    );
}
