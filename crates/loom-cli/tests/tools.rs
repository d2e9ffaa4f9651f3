//! `loom tools` and `loom agent run` driven as a user would: the built binary, a servers
//! file, real MCP servers (the loom-mcp fixture, the Loom gateway over HTTP) and, for the
//! agent, the LLM stand-in speaking OpenAI.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use loom_testkit::llm::{LlmStandIn, Reply};
use serde_json::{Value, json};

/// The MCP test servers (scripts/install-mcp-test-servers; installed once if needed).
fn servers_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Some(dir) = std::env::var_os("LOOM_MCP_TEST_SERVERS").filter(|d| !d.is_empty())
            && Path::new(&dir).join("venv/bin/python").exists()
        {
            return PathBuf::from(dir);
        }
        let script = repo().join("scripts/install-mcp-test-servers");
        let out = Command::new(&script).output().expect("run the installer");
        assert!(
            out.status.success(),
            "{} failed; the MCP test servers are required:\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn fixture_entry() -> Value {
    json!({
        "command": servers_dir().join("venv/bin/python"),
        "args": [repo().join("crates/loom-mcp/tests/fixtures/fixture_server.py")],
    })
}

fn servers_file(dir: &Path, servers: Value) -> PathBuf {
    let path = dir.join("servers.json");
    std::fs::write(&path, json!({"mcpServers": servers}).to_string()).expect("write");
    path
}

fn loom(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_loom"));
    command.args(args).stdin(Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run loom");
    wait_output(child, Duration::from_secs(90))
}

fn wait_output(mut child: std::process::Child, limit: Duration) -> Output {
    let started = std::time::Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("loom did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn tools_list_call_resources_and_prompts_from_a_servers_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = servers_file(
        dir.path(),
        json!({"fx": fixture_entry(), "ghost": {"command": "/nonexistent/server"}}),
    );
    let file = file.to_str().expect("utf-8");

    let list = loom(&["tools", "list", "--servers", file], &[]);
    assert!(list.status.success(), "{list:?}");
    assert!(
        stdout(&list).contains("echo\tfx\tfixture tool echo"),
        "{}",
        stdout(&list)
    );
    assert!(
        String::from_utf8_lossy(&list.stderr).contains("ghost"),
        "unreachable server reported"
    );

    let call = loom(
        &["tools", "call", "fx.echo", r#"{"a": 1}"#, "--servers", file],
        &[],
    );
    assert!(call.status.success(), "{call:?}");
    assert_eq!(stdout(&call), "{\"a\": 1}\n");

    let failed = loom(&["tools", "call", "fail", "--servers", file], &[]);
    assert_eq!(failed.status.code(), Some(1), "isError exits 1");
    assert_eq!(stdout(&failed), "it failed\n");

    let unknown = loom(&["tools", "call", "nope", "--servers", file], &[]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown MCP tool: nope"));

    let resources = loom(&["tools", "resources", "--servers", file], &[]);
    assert!(
        stdout(&resources).contains("fixture://readme\tfx"),
        "{resources:?}"
    );
    let read = loom(
        &[
            "tools",
            "resources",
            "--read",
            "fixture://readme",
            "--servers",
            file,
        ],
        &[],
    );
    assert_eq!(stdout(&read), "contents of fixture://readme\n");

    let prompts = loom(&["tools", "prompts", "--servers", file], &[]);
    assert!(stdout(&prompts).starts_with("greet\tfx"), "{prompts:?}");
    let prompt = loom(
        &[
            "tools",
            "prompts",
            "--get",
            "greet",
            "--args",
            r#"{"name": "Ann"}"#,
            "--servers",
            file,
        ],
        &[],
    );
    let prompt: Value = serde_json::from_str(&stdout(&prompt)).expect("json");
    assert_eq!(prompt["messages"][0]["content"], "Hello, Ann");
}

/// A background `loom mcp --transport http`, killed on drop.
struct Gateway(std::process::Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn tools_list_and_call_the_loom_gateway_over_http() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let config = repo().join("examples/docman/mcp.yaml");
    let _gateway = Gateway(
        Command::new(env!("CARGO_BIN_EXE_loom"))
            .args(["mcp", "--config"])
            .arg(&config)
            .args(["--transport", "http", "--port", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start loom mcp"),
    );
    let started = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "gateway did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = servers_file(
        dir.path(),
        json!({"docman": {"url": format!("http://127.0.0.1:{port}/mcp")}}),
    );
    let file = file.to_str().expect("utf-8");
    let list = loom(&["tools", "list", "--json", "--servers", file], &[]);
    assert!(list.status.success(), "{list:?}");
    let tools: Value = serde_json::from_str(&stdout(&list)).expect("json");
    let names: Vec<&str> = tools
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(names.contains(&"text_stats"), "{names:?}");
    let call = loom(
        &[
            "tools",
            "call",
            "text_stats",
            r#"{"text": "hello mesh"}"#,
            "--servers",
            file,
        ],
        &[],
    );
    assert!(call.status.success(), "{call:?}");
    assert!(stdout(&call).contains("word_count"), "{}", stdout(&call));
}

#[test]
fn agent_run_uses_the_tools_and_reports_an_unreachable_server() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let llm = runtime.block_on(LlmStandIn::start()).expect("stand-in");
    llm.push(Reply::tool_call("fx__echo", json!({"said": "hi"})));
    llm.push(Reply::text("the fixture said hi"));
    let dir = tempfile::tempdir().expect("tempdir");
    let file = servers_file(
        dir.path(),
        json!({"fx": fixture_entry(), "ghost": {"command": "/nonexistent/server"}}),
    );
    let out = loom(
        &[
            "agent",
            "run",
            "--servers",
            file.to_str().expect("utf-8"),
            "--model",
            "local",
            "--prefix-mode",
            "always",
            "say hi",
        ],
        &[
            ("LM_STUDIO_URL", format!("{}/v1", llm.base_url())),
            ("LOOM_HOME", dir.path().display().to_string()),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "interrupted exits 1: {out:?}");
    let result: Value = serde_json::from_str(&stdout(&out)).expect("json");
    assert_eq!(result["output"], "the fixture said hi");
    assert_eq!(result["turns"], 2);
    assert_eq!(result["interrupted"], true);
    assert_eq!(result["interruption_reason"], "mcp:ghost");
    assert_eq!(result["tool_calls"][0]["name"], "fx.echo");
    assert_eq!(result["tool_calls"][0]["result"], "{\"said\": \"hi\"}");
    let requests = llm.requests();
    let offered: Vec<&str> = requests[0].body["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert!(offered.contains(&"fx__echo"), "{offered:?}");
}
